// Photo-like JPEGs at ImageNet's sizes: alexnet/synth_jpeg.h.
#include "alexnet/synth_jpeg.h"

#include <turbojpeg.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "alexnet/error.h"
#include "alexnet/thread_pool.h"

namespace fs = std::filesystem;

namespace alexnet {
namespace {

enum class Kind { baseline, progressive, cmyk, grayscale };

struct Plan {
  int width = 0, height = 0;
  Kind kind = Kind::baseline;
};

// The generator of image (seed, cls, index): its own stream, so the tree is the same whatever
// the number of workers.
std::mt19937_64 generator(uint64_t seed, int cls, int index) {
  std::seed_seq s{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                  static_cast<uint32_t>(cls), static_cast<uint32_t>(index)};
  return std::mt19937_64(s);
}

Plan plan_of(std::mt19937_64& gen) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Plan p;
  const bool large = u(gen) < 0.10;
  const int shorter =
      large ? 1000 + static_cast<int>(u(gen) * 1000) : 333 + static_cast<int>(u(gen) * 168);
  const double shape = u(gen);
  const double aspect = shape < 0.70 ? 4.0 / 3.0 : shape < 0.85 ? 1.0 + u(gen) * 0.2 : 1.5;
  const int longer = static_cast<int>(std::lround(shorter * aspect));
  const bool portrait = shape >= 0.85 || u(gen) < 0.1;
  p.width = portrait ? shorter : longer;
  p.height = portrait ? longer : shorter;
  const double k = u(gen);
  p.kind = k < 0.02   ? Kind::progressive
           : k < 0.03 ? Kind::cmyk
           : k < 0.05 ? Kind::grayscale
                      : Kind::baseline;
  return p;
}

// Smooth colour fields (hue set by the class), a few sharp-edged rectangles and discs, and
// Gaussian noise of sigma 5 grey levels.
std::vector<uint8_t> pixels_of(const Plan& p, int cls, std::mt19937_64& gen) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double pi2 = 2 * std::numbers::pi;
  double base[3], fx[3][2], fy[3][2], ph[3][2];
  const double hue = pi2 * (cls % 16) / 16.0;
  for (int c = 0; c < 3; ++c) {
    base[c] = 128 + 50 * std::cos(hue + c * pi2 / 3);
    for (int k = 0; k < 2; ++k)
      fx[c][k] = u(gen) * 6 - 3, fy[c][k] = u(gen) * 6 - 3, ph[c][k] = u(gen) * pi2;
  }
  struct Shape {
    double x0, y0, x1, y1;
    bool disc;
    double rgb[3];
  };
  std::vector<Shape> shapes(4 + static_cast<size_t>(u(gen) * 6));
  for (Shape& s : shapes) {
    const double cx = u(gen), cy = u(gen), r = 0.05 + 0.2 * u(gen);
    s = {cx - r, cy - r, cx + r, cy + r, u(gen) < 0.5, {u(gen) * 255, u(gen) * 255, u(gen) * 255}};
  }
  std::normal_distribution<double> noise(0.0, 5.0);
  std::vector<uint8_t> rgb(static_cast<size_t>(p.width) * p.height * 3);
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x) {
      const double fxn = static_cast<double>(x) / p.width, fyn = static_cast<double>(y) / p.height;
      const Shape* on = nullptr;
      for (const Shape& s : shapes) {
        const bool inside = s.disc ? std::hypot(fxn - (s.x0 + s.x1) / 2, fyn - (s.y0 + s.y1) / 2) <
                                         (s.x1 - s.x0) / 2
                                   : fxn >= s.x0 && fxn < s.x1 && fyn >= s.y0 && fyn < s.y1;
        if (inside) on = &s;
      }
      for (int c = 0; c < 3; ++c) {
        double v = on ? on->rgb[c] : base[c];
        for (int k = 0; k < 2; ++k)
          v += 35 * std::sin(pi2 * (fx[c][k] * fxn + fy[c][k] * fyn) + ph[c][k]);
        v += noise(gen);
        rgb[(static_cast<size_t>(y) * p.width + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  return rgb;
}

std::string encode(const Plan& p, const std::vector<uint8_t>& rgb) {
  std::vector<uint8_t> converted;
  const uint8_t* src = rgb.data();
  int format = TJPF_RGB, subsamp = TJSAMP_420, flags = 0;
  const size_t pixels = static_cast<size_t>(p.width) * p.height;
  if (p.kind == Kind::grayscale) {
    converted.resize(pixels);
    for (size_t i = 0; i < pixels; ++i)  // BT.601 luma, as libjpeg converts
      converted[i] = static_cast<uint8_t>(
          (299 * rgb[3 * i] + 587 * rgb[3 * i + 1] + 114 * rgb[3 * i + 2] + 500) / 1000);
    src = converted.data();
    format = TJPF_GRAY;
    subsamp = TJSAMP_GRAY;
  } else if (p.kind == Kind::cmyk) {
    // Adobe's inverted CMYK, as ImageNet's CMYK files hold it: TurboJPEG stores the values given
    // (as YCCK with an Adobe marker), and decoders invert them back.
    converted.resize(pixels * 4);
    for (size_t i = 0; i < pixels; ++i) {
      const uint8_t* q = &rgb[3 * i];
      const int k = std::max({q[0], q[1], q[2]});
      for (int c = 0; c < 3; ++c)
        converted[4 * i + c] = static_cast<uint8_t>(k == 0 ? 255 : (255 * q[c] + k / 2) / k);
      converted[4 * i + 3] = static_cast<uint8_t>(k);
    }
    src = converted.data();
    format = TJPF_CMYK;
  } else if (p.kind == Kind::progressive) {
    flags = TJFLAG_PROGRESSIVE;
  }
  tjhandle tj = tjInitCompress();
  if (tj == nullptr) throw Error("synth-jpeg: cannot start a TurboJPEG compressor");
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const int rc =
      tjCompress2(tj, src, p.width, 0, p.height, format, &jpeg, &size, subsamp, 90, flags);
  std::string bytes = rc == 0 ? std::string(reinterpret_cast<char*>(jpeg), size) : "";
  const std::string message = rc == 0 ? "" : tjGetErrorStr2(tj);
  tjFree(jpeg);
  tjDestroy(tj);
  if (rc != 0) throw Error("synth-jpeg: JPEG encoding failed: " + message);
  return bytes;
}

}  // namespace

std::string synthetic_jpeg(uint64_t seed, int cls, int index) {
  auto gen = generator(seed, cls, index);
  const Plan p = plan_of(gen);
  return encode(p, pixels_of(p, cls, gen));
}

SynthJpegSummary write_synthetic_jpeg_tree(const SynthJpegOptions& o) {
  if (o.out.empty()) throw Error("synth-jpeg: --out is required");
  if (o.classes < 1 || o.images_per_class < 1)
    throw Error("synth-jpeg: --classes and --images-per-class must be at least 1");
  for (int c = 0; c < o.classes; ++c) {
    const fs::path dir = fs::path(o.out) / fmt::format("class{:03}", c);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error("synth-jpeg: cannot create '" + dir.string() + "': " + ec.message());
  }
  const int64_t total = int64_t{o.classes} * o.images_per_class;
  std::atomic<int64_t> bytes{0}, progressive{0}, cmyk{0}, grayscale{0}, large{0};
  parallel_for(total, o.workers, [&](int64_t i) {
    const int cls = static_cast<int>(i / o.images_per_class);
    const int index = static_cast<int>(i % o.images_per_class);
    const fs::path path =
        fs::path(o.out) / fmt::format("class{:03}", cls) / fmt::format("img{:05}.JPEG", index);
    auto gen = generator(o.seed, cls, index);
    const Plan p = plan_of(gen);
    progressive += p.kind == Kind::progressive;
    cmyk += p.kind == Kind::cmyk;
    grayscale += p.kind == Kind::grayscale;
    large += std::min(p.width, p.height) >= 1000;
    std::error_code ec;
    if (fs::exists(path, ec)) {
      bytes += static_cast<int64_t>(fs::file_size(path, ec));
      return;
    }
    const std::string jpeg = encode(p, pixels_of(p, cls, gen));
    // Written under a temporary name and renamed: a killed run leaves no half file behind.
    const fs::path part = path.string() + ".part";
    {
      std::ofstream out(part, std::ios::binary);
      out.write(jpeg.data(), static_cast<std::streamsize>(jpeg.size()));
      if (!out) throw Error("synth-jpeg: cannot write '" + part.string() + "'");
    }
    fs::rename(part, path, ec);
    if (ec) throw Error("synth-jpeg: cannot write '" + path.string() + "': " + ec.message());
    bytes += static_cast<int64_t>(jpeg.size());
  });
  return {total, bytes, progressive, cmyk, grayscale, large};
}

}  // namespace alexnet
