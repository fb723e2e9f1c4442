// Image files made at test time, so that no binary fixture is checked in: a smooth colourful
// pattern, JPEGs of each kind ImageNet holds (RGB, grayscale, Adobe CMYK, progressive) written
// with TurboJPEG, PNGs (RGB, grayscale, palette, 16-bit, RGBA) written with libpng, and damaged
// copies. Each *_bytes function has a write_* twin that puts the same bytes in a file.
//
// What a decoder should return for each file: the image itself (PNG kRgb, kPalette, kRgb16, and
// kRgba with opaque alpha: exactly; JPEG kRgb, kProgressive, kCmyk: within JPEG loss), or
// grayscale_of(image) for the grayscale kinds.
#pragma once

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "alexnet/image.h"

namespace alexnet::test {

// A smooth, colourful width x height image: per channel, a sum of two low-frequency waves (at
// most two cycles across the image) whose directions and phases the seed picks, kept within
// [16, 239] so that no JPEG round trip clips. Different seeds give different images.
inline Image test_pattern(int width, int height, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> freq(-2.0, 2.0), phase(0.0, 2 * std::numbers::pi);
  double fx[3][2], fy[3][2], ph[3][2];
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 2; ++k) fx[c][k] = freq(gen), fy[c][k] = freq(gen), ph[c][k] = phase(gen);
  Image image{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) {
        double v = 127.5;
        for (int k = 0; k < 2; ++k)
          v += 55.0 *
               std::sin(2 * std::numbers::pi * (fx[c][k] * x / width + fy[c][k] * y / height) +
                        ph[c][k]);
        image.rgb[(static_cast<size_t>(y) * width + x) * 3 + c] =
            static_cast<uint8_t>(std::lround(v));
      }
  return image;
}

// The luma a grayscale file stores (BT.601, as libjpeg's RGB->YCbCr uses), one byte a pixel.
inline std::vector<uint8_t> luma_of(const Image& image) {
  std::vector<uint8_t> y(static_cast<size_t>(image.width) * image.height);
  for (size_t i = 0; i < y.size(); ++i) {
    const uint8_t* p = &image.rgb[3 * i];
    y[i] = static_cast<uint8_t>(std::lround(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]));
  }
  return y;
}

// The RGB image a decoder should return for a grayscale file written from `image`: R = G = B.
inline Image grayscale_of(const Image& image) {
  const std::vector<uint8_t> y = luma_of(image);
  Image out{image.width, image.height, std::vector<uint8_t>(y.size() * 3)};
  for (size_t i = 0; i < y.size(); ++i)
    out.rgb[3 * i] = out.rgb[3 * i + 1] = out.rgb[3 * i + 2] = y[i];
  return out;
}

// The CMYK an Adobe application stores for `image`: every channel inverted (255 = no ink), with
// all the darkness in K (K' = max(R, G, B)) and C' = 255 R / K' etc., so that the conventional
// decode R = C' K' / 255 gives the image back to within rounding.
inline std::vector<uint8_t> adobe_cmyk_of(const Image& image) {
  const size_t pixels = static_cast<size_t>(image.width) * image.height;
  std::vector<uint8_t> cmyk(pixels * 4);
  for (size_t i = 0; i < pixels; ++i) {
    const uint8_t* p = &image.rgb[3 * i];
    const int k = std::max({p[0], p[1], p[2]});
    for (int c = 0; c < 3; ++c)
      cmyk[4 * i + c] = static_cast<uint8_t>(k == 0 ? 255 : (255 * p[c] + k / 2) / k);
    cmyk[4 * i + 3] = static_cast<uint8_t>(k);
  }
  return cmyk;
}

enum class JpegKind {
  kRgb,          // baseline YCbCr
  kGrayscale,    // one component: luma_of(image)
  kCmyk,         // YCCK with Adobe's APP14 marker, storing adobe_cmyk_of(image)
  kProgressive,  // progressive YCbCr: the same pixels as kRgb at the same quality
};

// A JPEG of `image`, 4:4:4 from quality 90 up and 4:2:0 below (as alexnet::encode_jpeg).
// TurboJPEG writes CMYK input as YCCK with an Adobe APP14 marker (transform 2) and stores the
// given values without inverting them, so kCmyk hands it the already inverted adobe_cmyk_of().
inline std::vector<uint8_t> jpeg_bytes(const Image& image, int quality = 95,
                                       JpegKind kind = JpegKind::kRgb) {
  tjhandle tj = tjInitCompress();
  if (tj == nullptr) throw std::runtime_error("tjInitCompress failed");
  std::vector<uint8_t> pixels;
  int format = TJPF_RGB, subsamp = quality >= 90 ? TJSAMP_444 : TJSAMP_420, flags = 0;
  const uint8_t* src = image.rgb.data();
  if (kind == JpegKind::kGrayscale) {
    pixels = luma_of(image);
    src = pixels.data();
    format = TJPF_GRAY;
    subsamp = TJSAMP_GRAY;
  } else if (kind == JpegKind::kCmyk) {
    pixels = adobe_cmyk_of(image);
    src = pixels.data();
    format = TJPF_CMYK;
  } else if (kind == JpegKind::kProgressive) {
    flags = TJFLAG_PROGRESSIVE;
  }
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj, src, image.width, 0, image.height, format, &jpeg, &size, subsamp,
                             quality, flags);
  const std::string message = rc == 0 ? "" : tjGetErrorStr2(tj);
  std::vector<uint8_t> bytes;
  if (rc == 0) bytes.assign(jpeg, jpeg + size);
  tjFree(jpeg);
  tjDestroy(tj);
  if (rc != 0) throw std::runtime_error("tjCompress2: " + message);
  return bytes;
}

// Overwrites the frame size in the JPEG's SOF header: a file whose header lies. Walks the
// marker segments, as 0xFF 0xC0 can also occur inside a table.
inline void patch_jpeg_size(std::vector<uint8_t>& jpeg, int width, int height) {
  size_t pos = 2;
  while (pos + 9 <= jpeg.size() && jpeg[pos] == 0xFF) {
    const uint8_t marker = jpeg[pos + 1];
    if (marker >= 0xC0 && marker <= 0xC2) {
      jpeg[pos + 5] = static_cast<uint8_t>(height >> 8);
      jpeg[pos + 6] = static_cast<uint8_t>(height);
      jpeg[pos + 7] = static_cast<uint8_t>(width >> 8);
      jpeg[pos + 8] = static_cast<uint8_t>(width);
      return;
    }
    pos += 2 + (size_t{jpeg[pos + 2]} << 8 | jpeg[pos + 3]);
  }
  throw std::runtime_error("patch_jpeg_size: no SOF0/1/2 header");
}

enum class PngKind {
  kRgb,        // 8-bit RGB
  kGrayscale,  // 8-bit gray: luma_of(image)
  kPalette,    // 8-bit palette of the image's distinct colours (at most 256)
  kRgb16,      // 16-bit RGB, each sample v stored as 257 v (no gAMA chunk, as most such files)
  kRgba,       // 8-bit RGBA with the given alpha (w * h values; empty: opaque)
};

// libpng's writer behind setjmp, apart from png_bytes so that no local of a function that
// calls setjmp changes after it (which -Wclobbered rightly flags).
inline void write_png_rows(std::vector<uint8_t>& out, png_uint_32 width, png_uint_32 height,
                           int depth, int color_type, const std::vector<png_color>& palette,
                           png_bytepp rows) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("png_bytes: libpng failed");
  }
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, size_t n) {
        auto* v = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
        v->insert(v->end(), data, data + n);
      },
      nullptr);
  png_set_IHDR(png, info, width, height, depth, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  png_set_rows(png, info, rows);
  // PNG_TRANSFORM_IDENTITY: 16-bit rows are already big-endian, as PNG stores them.
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
}

// A PNG of `image`, by libpng's low-level writer: the simplified one writes no palettes, and
// 16-bit only as linear light.
inline std::vector<uint8_t> png_bytes(const Image& image, PngKind kind = PngKind::kRgb,
                                      const std::vector<uint8_t>& alpha = {}) {
  const size_t w = static_cast<size_t>(image.width), h = static_cast<size_t>(image.height);
  std::vector<uint8_t> out;
  std::vector<png_color> palette;
  std::map<uint32_t, uint8_t> index;
  int color_type = PNG_COLOR_TYPE_RGB, depth = 8;
  size_t channels = 3;
  std::vector<uint8_t> rows;  // the image as stored, row-major
  if (kind == PngKind::kGrayscale) {
    color_type = PNG_COLOR_TYPE_GRAY, channels = 1;
    rows = luma_of(image);
  } else if (kind == PngKind::kPalette) {
    color_type = PNG_COLOR_TYPE_PALETTE, channels = 1;
    rows.resize(w * h);
    for (size_t i = 0; i < w * h; ++i) {
      const uint8_t* p = &image.rgb[3 * i];
      const uint32_t key = uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2];
      auto it = index.find(key);
      if (it == index.end()) {
        if (palette.size() == 256) throw std::invalid_argument("png_bytes: over 256 colours");
        it = index.emplace(key, static_cast<uint8_t>(palette.size())).first;
        palette.push_back(png_color{p[0], p[1], p[2]});
      }
      rows[i] = it->second;
    }
  } else if (kind == PngKind::kRgb16) {
    depth = 16, channels = 6;  // bytes a pixel
    rows.resize(w * h * 6);
    for (size_t i = 0; i < w * h * 3; ++i) rows[2 * i] = rows[2 * i + 1] = image.rgb[i];  // 257 v
  } else if (kind == PngKind::kRgba) {
    color_type = PNG_COLOR_TYPE_RGB_ALPHA, channels = 4;
    if (!alpha.empty() && alpha.size() != w * h)
      throw std::invalid_argument("png_bytes: alpha size");
    rows.resize(w * h * 4);
    for (size_t i = 0; i < w * h; ++i) {
      std::copy_n(&image.rgb[3 * i], 3, &rows[4 * i]);
      rows[4 * i + 3] = alpha.empty() ? 255 : alpha[i];
    }
  } else {
    rows = image.rgb;
  }
  std::vector<png_bytep> row_pointers(h);
  for (size_t y = 0; y < h; ++y) row_pointers[y] = rows.data() + y * w * channels;

  write_png_rows(out, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), depth, color_type,
                 palette, row_pointers.data());
  return out;
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path.string());
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

inline void write_jpeg(const std::filesystem::path& path, const Image& image, int quality = 95,
                       JpegKind kind = JpegKind::kRgb) {
  write_bytes(path, jpeg_bytes(image, quality, kind));
}

inline void write_png(const std::filesystem::path& path, const Image& image,
                      PngKind kind = PngKind::kRgb, const std::vector<uint8_t>& alpha = {}) {
  write_bytes(path, png_bytes(image, kind, alpha));
}

// The first keep_bytes bytes of path_in (all of it if shorter): a download cut short.
inline void write_truncated_copy(const std::filesystem::path& path_in,
                                 const std::filesystem::path& path_out, size_t keep_bytes) {
  std::vector<uint8_t> bytes = read_bytes(path_in);
  bytes.resize(std::min(bytes.size(), keep_bytes));
  write_bytes(path_out, bytes);
}

// Mean and largest |a - b| over all samples; infinite if the sizes differ.
inline double mean_abs_diff(const Image& a, const Image& b) {
  if (a.width != b.width || a.height != b.height || a.rgb.size() != b.rgb.size()) return INFINITY;
  double sum = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) sum += std::abs(int{a.rgb[i]} - int{b.rgb[i]});
  return a.rgb.empty() ? 0 : sum / static_cast<double>(a.rgb.size());
}

inline int max_abs_diff(const Image& a, const Image& b) {
  if (a.width != b.width || a.height != b.height || a.rgb.size() != b.rgb.size()) return 1 << 30;
  int worst = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i)
    worst = std::max(worst, std::abs(int{a.rgb[i]} - int{b.rgb[i]}));
  return worst;
}

}  // namespace alexnet::test
