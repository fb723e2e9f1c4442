// Image decoding (TurboJPEG, libpng), the shorter-side resize + centre crop (OpenCV imgproc)
// and JPEG encoding. Not OpenCV's imgcodecs: see CMakeLists.txt.
#include "alexnet/image.h"

#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace alexnet {
namespace {

// A decoder must not allocate whatever a 4-byte header claims: a corrupt file saying 65000 x
// 65000 would ask for 12 GB. ImageNet's largest image is under 100 MP.
constexpr int kMaxSide = 30000;
constexpr int64_t kMaxPixels = 200'000'000;

void check_dimensions(const char* format, int width, int height) {
  if (width <= 0 || height <= 0)
    throw BadImage(std::string(format) + " has no pixels (" + std::to_string(width) + "x" +
                   std::to_string(height) + ")");
  if (width > kMaxSide || height > kMaxSide || int64_t{width} * int64_t{height} > kMaxPixels)
    throw BadImage(std::string(format) + " claims " + std::to_string(width) + "x" +
                   std::to_string(height) + " pixels, over the limit of " +
                   std::to_string(kMaxSide) + " a side and " +
                   std::to_string(kMaxPixels / 1000000) + " megapixels");
}

// TurboJPEG handles are not thread-safe, and making one per image costs the setup of libjpeg's
// state; one per thread serves the loader's workers. But a handle that has failed is not reused:
// in libjpeg-turbo 2.1 a tjDecompressHeader3 error leaves the handle failing every later call
// with the same message (found by test), so any call that did not return 0 retires it.
class HandleLease {
 public:
  explicit HandleLease(bool compress) : slot_(compress ? compress_slot() : decompress_slot()) {
    if (slot_ == nullptr) slot_ = compress ? tjInitCompress() : tjInitDecompress();
    if (slot_ == nullptr)
      throw Error(std::string("cannot start TurboJPEG: ") + tjGetErrorStr2(nullptr));
  }
  ~HandleLease() {
    if (!clean_) {
      tjDestroy(slot_);
      slot_ = nullptr;
    }
  }
  HandleLease(const HandleLease&) = delete;
  HandleLease& operator=(const HandleLease&) = delete;
  tjhandle get() const { return slot_; }
  void succeeded() { clean_ = true; }

 private:
  struct Slot {
    tjhandle handle = nullptr;
    ~Slot() {
      if (handle != nullptr) tjDestroy(handle);
    }
  };
  static tjhandle& decompress_slot() {
    thread_local Slot slot;
    return slot.handle;
  }
  static tjhandle& compress_slot() {
    thread_local Slot slot;
    return slot.handle;
  }
  tjhandle& slot_;
  bool clean_ = false;
};

bool contains_ci(std::string_view haystack, std::string_view needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                     [](char a, char b) {
                       return std::tolower(static_cast<unsigned char>(a)) ==
                              std::tolower(static_cast<unsigned char>(b));
                     }) != haystack.end();
}

// Whether the JPEG carries Adobe's APP14 marker, found by walking the marker segments that
// precede the first scan. TurboJPEG does not expose libjpeg's saw_Adobe_marker.
bool has_adobe_marker(const uint8_t* data, size_t size) {
  size_t pos = 2;  // after SOI
  while (pos + 4 <= size) {
    // Stray bytes between segments: libjpeg skips them with a warning, so does this.
    if (data[pos] != 0xFF || data[pos + 1] == 0xFF) {
      ++pos;
      continue;
    }
    const uint8_t marker = data[pos + 1];
    if (marker == 0xDA || marker == 0xD9) return false;          // SOS or EOI: the header is over
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length field
      pos += 2;
      continue;
    }
    const size_t length = size_t{data[pos + 2]} << 8 | data[pos + 3];
    if (length < 2) return false;
    if (marker == 0xEE && length >= 2 + 5 && pos + 4 + 5 <= size &&
        std::memcmp(data + pos + 4, "Adobe", 5) == 0)
      return true;
    pos += 2 + length;
  }
  return false;
}

// CMYK to RGB by the naive formula PIL and OpenCV use; there is no colour management here (nor
// in those libraries, nor in any ImageNet pipeline). Adobe's applications write CMYK JPEGs with
// every channel inverted (0 = full ink) and mark them with the APP14 "Adobe" segment; libjpeg
// hands the stored values through unchanged (its jdapimin.c/jdcolor.c only map YCCK to CMYK),
// so the inversion is ours to undo. On the stored inverted values C' = 255 - C, K' = 255 - K,
// R = 255 * (1 - C/255) * (1 - K/255) becomes R = C' * K' / 255, which is what Pillow
// (JpegImagePlugin reads Adobe CMYK as "CMYK;I") and OpenCV (icvCvt_CMYK2BGR_8u_C4C3R, which
// assumes inversion always) compute. ImageNet's 22 CMYK JPEGs are all Adobe files; a CMYK JPEG
// without the marker holds plain ink amounts.
void cmyk_to_rgb(const uint8_t* cmyk, size_t pixels, bool adobe_inverted, uint8_t* rgb) {
  for (size_t i = 0; i < pixels; ++i, cmyk += 4, rgb += 3) {
    const int k = adobe_inverted ? cmyk[3] : 255 - cmyk[3];
    for (int c = 0; c < 3; ++c) {
      const int v = adobe_inverted ? cmyk[c] : 255 - cmyk[c];
      rgb[c] = static_cast<uint8_t>((v * k + 127) / 255);
    }
  }
}

// Decodes a JPEG to RGB at the address `destination(width, height)` returns once the header is
// read: a fresh Image's pixels, or a caller's buffer (decode_image_into), saving a copy. With
// min_shorter_side > 0, at the scale jpeg_dct_scale picks (width and height are then the scaled
// ones).
template <class Destination>
void decode_jpeg(const uint8_t* data, size_t size, int min_shorter_side,
                 Destination&& destination) {
  HandleLease lease(/*compress=*/false);
  tjhandle tj = lease.get();
  // TurboJPEG's API takes a non-const pointer but only reads the source.
  auto* src = const_cast<uint8_t*>(data);
  const auto src_size = static_cast<unsigned long>(size);
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  int rc = tjDecompressHeader3(tj, src, src_size, &width, &height, &subsamp, &colorspace);
  // A warning here (e.g. extraneous bytes between header markers) still yields the header.
  if (rc != 0 && tjGetErrorCode(tj) != TJERR_WARNING)
    throw BadImage(std::string("bad JPEG: ") + tjGetErrorStr2(tj));
  // Data that ends inside the header reads as a tables-only stream: success and no frame.
  if (width <= 0 || height <= 0) throw BadImage("truncated JPEG: no frame header");
  check_dimensions("JPEG", width, height);
  // TurboJPEG picks the largest of its scales whose output fits the size asked for: asking for
  // exactly the M/8 size gets M/8.
  const auto [num, denom] = jpeg_dct_scale(width, height, min_shorter_side);
  const tjscalingfactor factor{num, denom};
  width = TJSCALED(width, factor);
  height = TJSCALED(height, factor);

  uint8_t* const rgb = destination(width, height);
  const size_t pixels = static_cast<size_t>(width) * static_cast<size_t>(height);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  std::vector<uint8_t> cmyk_pixels(cmyk ? pixels * 4 : 0);
  const int decoded = tjDecompress2(tj, src, src_size, cmyk ? cmyk_pixels.data() : rgb, width, 0,
                                    height, cmyk ? TJPF_CMYK : TJPF_RGB, 0);
  if (decoded != 0) {
    const std::string message = tjGetErrorStr2(tj);
    if (tjGetErrorCode(tj) != TJERR_WARNING) throw BadImage("bad JPEG: " + message);
    // A warning means libjpeg decoded what it could. Running out of data ("Premature end of
    // JPEG file", or "premature end of data segment" when a marker cuts a scan short) leaves the
    // rest of the image grey, which must not reach training. Other warnings (extraneous bytes
    // before a marker, ...) come from files that decode completely, as in PIL and OpenCV.
    // TurboJPEG reports only the first warning, and truncation comes first in a cut file.
    if (contains_ci(message, "premature end")) throw BadImage("truncated JPEG: " + message);
  }
  if (rc == 0 && decoded == 0) lease.succeeded();
  if (cmyk) cmyk_to_rgb(cmyk_pixels.data(), pixels, has_adobe_marker(data, size), rgb);
}

// Into `image`, whose buffer is reused: a vector keeps its capacity when it shrinks.
void decode_jpeg(const uint8_t* data, size_t size, int min_shorter_side, Image& image) {
  decode_jpeg(data, size, min_shorter_side, [&image](int width, int height) {
    image.width = width;
    image.height = height;
    image.rgb.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
    return image.rgb.data();
  });
}

Image decode_png(const uint8_t* data, size_t size) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, data, size))
    throw BadImage(std::string("bad PNG: ") + png.message);
  try {
    check_dimensions("PNG", static_cast<int>(std::min<png_uint_32>(png.width, INT32_MAX)),
                     static_cast<int>(std::min<png_uint_32>(png.height, INT32_MAX)));
  } catch (...) {
    png_image_free(&png);
    throw;
  }
  // 8-bit sRGB RGB out of any PNG: libpng expands palettes and grayscale and reduces 16-bit
  // samples. Alpha is composited on white rather than dropped: what lies under a transparent
  // pixel is whatever the encoder left there (often black), while the picture the image's
  // author saw was drawn on a (usually white) page. ImageNet's one PNG has no alpha.
  png.format = PNG_FORMAT_RGB;
  // A 16-bit PNG without gAMA or sRGB chunk would otherwise be taken as linear light and come
  // out brightened; such files are sRGB in practice, and PIL reads them so too.
  png.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  Image image;
  image.width = static_cast<int>(png.width);
  image.height = static_cast<int>(png.height);
  image.rgb.resize(static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3);
  const png_color white{255, 255, 255};
  // png_image_finish_read frees the png_image on success and on failure alike.
  if (!png_image_finish_read(&png, &white, image.rgb.data(), 0, nullptr))
    throw BadImage(std::string("bad PNG: ") + png.message);
  return image;
}

std::string hex_prefix(const uint8_t* data, size_t size) {
  std::string s = "0x";
  char byte[3];
  for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) {
    std::snprintf(byte, sizeof byte, "%02X", data[i]);
    s += byte;
  }
  return s;
}

bool is_jpeg(const uint8_t* data, size_t size) {
  static constexpr uint8_t kJpegMagic[] = {0xFF, 0xD8, 0xFF};
  return size >= sizeof kJpegMagic && std::memcmp(data, kJpegMagic, sizeof kJpegMagic) == 0;
}

BadImage wrong_size(int width, int height, int want_width, int want_height) {
  return BadImage("decodes to " + std::to_string(width) + " x " + std::to_string(height) +
                  ", not the expected " + std::to_string(want_width) + " x " +
                  std::to_string(want_height));
}

}  // namespace

std::pair<int, int> jpeg_dct_scale(int width, int height, int min_shorter_side) {
  const int64_t shorter = std::min(width, height);
  if (min_shorter_side > 0)
    for (int m = 1; m < 8; ++m)
      if ((shorter * m + 7) / 8 >= min_shorter_side) return {m, 8};  // TJSCALED rounds up
  return {8, 8};
}

Image decode_image(const uint8_t* data, size_t size) {
  return decode_image(data, size, 0);
}

Image decode_image(const uint8_t* data, size_t size, int min_shorter_side) {
  Image image;
  decode_image(data, size, min_shorter_side, image);
  return image;
}

void decode_image(const uint8_t* data, size_t size, int min_shorter_side, Image& out) {
  static constexpr uint8_t kPngMagic[] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A};
  if (size == 0) throw BadImage("empty file");
  if (is_jpeg(data, size)) return decode_jpeg(data, size, min_shorter_side, out);
  if (size >= sizeof kPngMagic && std::memcmp(data, kPngMagic, sizeof kPngMagic) == 0) {
    out = decode_png(data, size);  // rare (ImageNet has one): no reuse
    return;
  }
  throw BadImage("not a JPEG or PNG (starts with " + hex_prefix(data, size) + ")");
}

void decode_image_into(const uint8_t* data, size_t size, int width, int height, uint8_t* rgb) {
  if (is_jpeg(data, size)) {
    decode_jpeg(data, size, 0, [&](int w, int h) {
      if (w != width || h != height) throw wrong_size(w, h, width, height);
      return rgb;
    });
    return;
  }
  // Anything else is rare where sizes are known (packed sets hold JPEGs): the general path.
  const Image image = decode_image(data, size);
  if (image.width != width || image.height != height)
    throw wrong_size(image.width, image.height, width, height);
  std::copy(image.rgb.begin(), image.rgb.end(), rgb);
}

std::pair<int, int> scaled_size(int width, int height, int side) {
  if (width <= 0 || height <= 0 || side <= 0)
    throw std::invalid_argument("scaled_size: non-positive size");
  const int64_t shorter = std::min(width, height), longer = std::max(width, height);
  // Rounded to nearest, halves up, in integers so no platform rounds differently.
  const auto scaled = static_cast<int>((2 * longer * side + shorter) / (2 * shorter));
  return width <= height ? std::pair{side, scaled} : std::pair{scaled, side};
}

Image resize_shorter_and_center_crop(const Image& image, int side) {
  Image out;
  out.width = out.height = side;
  out.rgb.resize(static_cast<size_t>(side) * static_cast<size_t>(side) * 3);
  std::vector<uint8_t> scratch;
  resize_shorter_and_center_crop(image, side, out.rgb.data(), scratch);
  return out;
}

void resize_shorter_and_center_crop(const Image& image, int side, uint8_t* out,
                                    std::vector<uint8_t>& scaled_pixels) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3)
    throw std::invalid_argument("resize_shorter_and_center_crop: malformed image");
  const auto [width, height] = scaled_size(image.width, image.height, side);
  // cv::Mat wants a non-const pointer; the source is only read.
  const cv::Mat source(image.height, image.width, CV_8UC3, const_cast<uint8_t*>(image.rgb.data()));
  cv::Mat scaled = source;
  if (width != image.width || height != image.height) {
    scaled_pixels.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
    scaled = cv::Mat(height, width, CV_8UC3, scaled_pixels.data());
    // Area averaging when shrinking (no aliasing); bilinear when enlarging, where INTER_AREA
    // would fall back to it anyway.
    const bool shrinking = side < std::min(image.width, image.height);
    cv::resize(source, scaled, cv::Size(width, height), 0, 0,
               shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  cv::Mat crop(side, side, CV_8UC3, out);
  scaled(cv::Rect((width - side) / 2, (height - side) / 2, side, side)).copyTo(crop);
}

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3)
    throw std::invalid_argument("encode_jpeg: malformed image");
  quality = std::clamp(quality, 1, 100);
  HandleLease lease(/*compress=*/true);
  tjhandle tj = lease.get();
  unsigned char* jpeg = nullptr;
  unsigned long jpeg_size = 0;
  // 4:2:0 halves the file at ordinary qualities; from 90 up the caller asked for fidelity,
  // and chroma subsampling would cost more than the quantisation does.
  const int subsamp = quality < 90 ? TJSAMP_420 : TJSAMP_444;
  const int rc = tjCompress2(tj, image.rgb.data(), image.width, 0, image.height, TJPF_RGB, &jpeg,
                             &jpeg_size, subsamp, quality, 0);
  std::unique_ptr<unsigned char, decltype(&tjFree)> owned(jpeg, &tjFree);
  if (rc != 0) throw Error(std::string("cannot encode JPEG: ") + tjGetErrorStr2(tj));
  lease.succeeded();
  return std::vector<uint8_t>(jpeg, jpeg + jpeg_size);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::vector<uint8_t> bytes;
  read_file(path, bytes);
  return bytes;
}

void read_file(const std::string& path, std::vector<uint8_t>& bytes) {
  auto fail = [&](int err) { return Error("cannot read '" + path + "': " + std::strerror(err)); };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw fail(errno);
  // open() succeeds on a directory; say so rather than report an empty read.
  if (S_ISDIR(st.st_mode)) throw fail(EISDIR);
  // st_size sizes the buffer; reading on to end of file also serves pipes and growing files.
  bytes.resize(S_ISREG(st.st_mode) ? static_cast<size_t>(st.st_size) : 0);
  size_t filled = 0;
  for (;;) {
    uint8_t spill[4096];
    const bool full = filled == bytes.size();
    const ssize_t n = full ? ::read(fd, spill, sizeof spill)
                           : ::read(fd, bytes.data() + filled, bytes.size() - filled);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw fail(errno);
    }
    if (n == 0) break;
    if (full) bytes.insert(bytes.end(), spill, spill + n);
    filled += static_cast<size_t>(n);
  }
  bytes.resize(filled);
}

}  // namespace alexnet
