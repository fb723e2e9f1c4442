// Pictures of a run, drawn with OpenCV's imgproc and written as PNG with libpng (no imgcodecs,
// so the binaries that travel to the GPU machine stay small):
//   curves.png   the training curves of metrics.csv (loss; train and validation top-1/top-5
//                error with the learning rate on its own axis and its drops marked)
//   filters.png  conv1's kernels as RGB tiles, tower 0 in the top half and tower 1 in the
//                bottom half, as in the paper's Figure 3
//   a prediction sheet: images with their top-5 classes and probability bars (Figure 4)
// Images are 8-bit RGB cv::Mat (CV_8UC3, channels in R, G, B order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace alexnet {

// ---------------------------------------------------------------- curves
// One row of metrics.csv.
struct EpochMetrics {
  int epoch = 0;
  int64_t step = 0;
  double loss = 0, train_top1 = 0, train_top5 = 0, val_top1 = 0, val_top5 = 0, lr = 0;
  double images_per_s = 0;
  double data_wait = 0;  // share of the step time spent waiting for batches (0 in older files)
};
// Reads metrics.csv (the header the trainer writes, then one row per epoch; rows of runs before
// the data_wait column have 9 numbers). Throws alexnet::Error naming the file and line for
// anything else.
std::vector<EpochMetrics> read_metrics(const std::string& path);

constexpr int kCurvesWidth = 1000, kCurvesHeight = 720;
// Two panels: the training loss per epoch (top); the four error rates per epoch from 0 to a
// little above the largest (left axis) with the learning rate as steps on a log axis (right),
// each drop of the learning rate a dashed vertical line (bottom). kCurvesWidth x kCurvesHeight.
cv::Mat draw_curves(const std::vector<EpochMetrics>& rows, const std::string& title);

// ---------------------------------------------------------------- filters
// Where the kernels go. Kernel i of tower t (the whole tensor's row t * per_tower + i) is the
// tile in row `t * rows_per_tower + i / columns` and column `i % columns` of the grid; tiles are
// side = kernel_size * scale pixels square with kFilterGap pixels between them and around the
// grid, and the towers' blocks are kFilterTowerGap pixels apart.
constexpr int kFilterGap = 2, kFilterTowerGap = 10;
struct FilterGrid {
  int towers = 2, per_tower = 48, columns = 16, rows_per_tower = 3;
  int kernel_size = 11, scale = 4, side = 44;
  int width = 0, height = 0;
  // The top-left pixel of the tile of kernel i of tower t.
  cv::Point tile(int tower, int i) const;
};
// The grid for `kernels` kernels of kernel_size x kernel_size over `towers` towers: at most 16
// columns, and each tile at least 40 pixels wide (scale = ceil(40 / kernel_size)).
FilterGrid filter_grid(int kernels, int kernel_size, int towers);
// weights: conv1.weight as in the checkpoint, (kernels, 3, S, S), whole (both towers). Each
// kernel is contrast-normalised on its own: pixel = round(255 * (w - min) / (max - min)) over
// its 3 * S * S weights (128 everywhere when they are all equal), channel c of the image =
// input channel c (R, G, B), each weight a scale x scale block.
cv::Mat draw_filters(const std::vector<float>& weights, int kernels, int kernel_size, int towers);

// ---------------------------------------------------------------- predictions
struct SheetEntry {
  cv::Mat image;        // RGB, any size (shown as a 128 x 128 thumbnail)
  std::string caption;  // the file name
  std::vector<std::pair<std::string, double>> top;  // class name, probability; best first
  int true_rank = -1;  // the true class's place in `top`, -1 if not there or unknown
  bool true_known = false;
  std::string true_name;  // when known
};
// A contact sheet, two entries per row: each image beside its classes with probability bars;
// the true class (when the image's folder names one) is drawn in green where it appears in
// the list, and named in red below it when it does not.
cv::Mat draw_prediction_sheet(const std::vector<SheetEntry>& entries);

// ---------------------------------------------------------------- a run's pictures
// curves.png from `metrics_csv`, titled `title`; filters.png from conv1's whole weights
// (`conv1`: the bytes of (filters, 3, kernel, kernel) F32 values, as a checkpoint or
// Net::gather_whole holds them). Both written atomically to `path`.
void write_curves_png(const std::string& metrics_csv, const std::string& title,
                      const std::string& path);
void write_filters_png(const std::vector<std::byte>& conv1, int filters, int kernel, int towers,
                       const std::string& path);

// ---------------------------------------------------------------- files
// Writes an RGB image as PNG atomically (a temporary file, then rename). Throws alexnet::Error
// naming the path when it cannot.
void write_png(const std::string& path, const cv::Mat& rgb);

}  // namespace alexnet
