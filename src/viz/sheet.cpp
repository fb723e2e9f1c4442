// The prediction contact sheet (the paper's Figure 4).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "alexnet/plots.h"

namespace alexnet {
namespace {

constexpr int kThumb = 128, kCellWidth = 520, kCellHeight = 176, kColumns = 2, kMargin = 12;
constexpr int kBarWidth = 160;
const cv::Scalar kBlack(0, 0, 0), kBar(31, 119, 180), kTrue(44, 160, 44), kMissed(214, 39, 40),
    kFrame(200, 200, 200);

void text(cv::Mat& img, const std::string& s, cv::Point at, double size, const cv::Scalar& colour) {
  cv::putText(img, s, at, cv::FONT_HERSHEY_SIMPLEX, size, colour, 1, cv::LINE_AA);
}

// Long class names are cut to fit beside the bars.
std::string fit(const std::string& s, size_t chars) {
  return s.size() <= chars ? s : s.substr(0, chars - 3) + "...";
}

}  // namespace

cv::Mat draw_prediction_sheet(const std::vector<SheetEntry>& entries) {
  const int n = static_cast<int>(entries.size());
  const int rows = std::max(1, (n + kColumns - 1) / kColumns);
  cv::Mat sheet(rows * kCellHeight + kMargin, kColumns * kCellWidth + kMargin, CV_8UC3,
                cv::Scalar(255, 255, 255));
  for (int i = 0; i < n; ++i) {
    const SheetEntry& e = entries[static_cast<size_t>(i)];
    const cv::Point cell{kMargin + (i % kColumns) * kCellWidth,
                         kMargin + (i / kColumns) * kCellHeight};
    // The image, as a square thumbnail.
    if (!e.image.empty()) {
      cv::Mat thumb;
      cv::resize(e.image, thumb, {kThumb, kThumb}, 0, 0, cv::INTER_AREA);
      thumb.copyTo(sheet(cv::Rect(cell.x, cell.y, kThumb, kThumb)));
    }
    cv::rectangle(sheet, cv::Rect(cell.x - 1, cell.y - 1, kThumb + 2, kThumb + 2), kFrame, 1);
    text(sheet, fit(e.caption, 22), {cell.x, cell.y + kThumb + 16}, 0.4, kBlack);
    // The classes, best first, each with a bar as long as its probability.
    const int x0 = cell.x + kThumb + 12;
    for (size_t k = 0; k < e.top.size() && k < 5; ++k) {
      const int y = cell.y + 14 + static_cast<int>(k) * 24;
      const bool is_true = e.true_known && static_cast<int>(k) == e.true_rank;
      const cv::Scalar colour = is_true ? kTrue : kBar;
      const int bar =
          static_cast<int>(std::lround(std::clamp(e.top[k].second, 0.0, 1.0) * kBarWidth));
      cv::rectangle(sheet, cv::Rect(x0, y - 10, std::max(bar, 1), 12), colour, cv::FILLED);
      char p[16];
      std::snprintf(p, sizeof p, "%.3f", e.top[k].second);
      text(sheet, p, {x0 + kBarWidth + 6, y}, 0.4, kBlack);
      text(sheet, fit(e.top[k].first, 24), {x0 + kBarWidth + 56, y}, 0.42,
           is_true ? kTrue : kBlack);
    }
    if (e.true_known && e.true_rank < 0)
      text(sheet, "true: " + fit(e.true_name, 34), {x0, cell.y + 14 + 5 * 24}, 0.42, kMissed);
  }
  return sheet;
}

}  // namespace alexnet
