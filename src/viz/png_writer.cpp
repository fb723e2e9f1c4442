// PNG files through libpng's simplified writer (the loader already links libpng to read the odd
// PNG among ImageNet's JPEGs; OpenCV's imgcodecs stays out of the binaries).
#include <png.h>

#include <cstring>
#include <string>
#include <vector>

#include "alexnet/error.h"
#include "alexnet/file_io.h"
#include "alexnet/plots.h"

namespace alexnet {

void write_png(const std::string& path, const cv::Mat& rgb) {
  if (rgb.type() != CV_8UC3 || rgb.empty())
    throw std::logic_error("write_png: expected a non-empty 8-bit RGB image");
  const cv::Mat pixels = rgb.isContinuous() ? rgb : rgb.clone();
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(pixels.cols);
  png.height = static_cast<png_uint_32>(pixels.rows);
  png.format = PNG_FORMAT_RGB;
  const auto stride = static_cast<png_int_32>(pixels.step[0]);
  png_alloc_size_t size = 0;
  // First the size, then the bytes.
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, pixels.data, stride, nullptr))
    throw Error("cannot encode '" + path + "' as PNG: " + png.message);
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&png, bytes.data(), &size, 0, pixels.data, stride, nullptr))
    throw Error("cannot encode '" + path + "' as PNG: " + png.message);
  bytes.resize(size);
  write_text_atomic(path, bytes);
}

}  // namespace alexnet

namespace alexnet {

void write_curves_png(const std::string& metrics_csv, const std::string& title,
                      const std::string& path) {
  write_png(path, draw_curves(read_metrics(metrics_csv), title));
}

void write_filters_png(const std::vector<std::byte>& conv1, int filters, int kernel, int towers,
                       const std::string& path) {
  std::vector<float> weights(conv1.size() / sizeof(float));
  std::memcpy(weights.data(), conv1.data(), weights.size() * sizeof(float));
  write_png(path, draw_filters(weights, filters, kernel, towers));
}

}  // namespace alexnet
