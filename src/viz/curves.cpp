// metrics.csv and the training-curve picture.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "alexnet/error.h"
#include "alexnet/plots.h"

namespace alexnet {

std::vector<EpochMetrics> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read '" + path + "'");
  std::string line;
  if (!std::getline(in, line) || line.rfind("epoch,step,loss,", 0) != 0)
    throw Error("'" + path + "' is not a metrics.csv written by alexnet-train (bad header)");
  std::vector<EpochMetrics> rows;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    EpochMetrics m;
    char comma[8];
    std::istringstream fields(line);
    fields >> m.epoch >> comma[0] >> m.step >> comma[1] >> m.loss >> comma[2] >> m.train_top1 >>
        comma[3] >> m.train_top5 >> comma[4] >> m.val_top1 >> comma[5] >> m.val_top5 >> comma[6] >>
        m.lr >> comma[7] >> m.images_per_s;
    bool ok = !fields.fail() && std::count(comma, comma + 8, ',') == 8;
    char last = 0;
    if (ok && fields >> last)
      ok = last == ',' && fields >> m.data_wait && (fields >> std::ws).eof();
    if (!ok)
      throw Error("'" + path + "' line " + std::to_string(number) +
                  ": expected 9 or 10 numbers, got '" + line + "'");
    rows.push_back(m);
  }
  return rows;
}

namespace {

const cv::Scalar kBlack(0, 0, 0), kGrey(160, 160, 160), kLightGrey(225, 225, 225);
// R, G, B
const cv::Scalar kBlue(31, 119, 180), kOrange(255, 127, 14), kGreen(44, 160, 44), kRed(214, 39, 40),
    kPurple(148, 103, 189);
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

void text(cv::Mat& img, const std::string& s, cv::Point at, double size = 0.45,
          const cv::Scalar& colour = kBlack, int thickness = 1) {
  cv::putText(img, s, at, kFont, size, colour, thickness, cv::LINE_AA);
}

// A value range with a little room, and "nice" ticks in it.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double map(double v) const {  // 0..1 along the axis
    if (log) return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return (v - lo) / (hi - lo);
  }
};

std::vector<double> ticks(const Axis& a) {
  std::vector<double> out;
  if (a.log) {
    for (double p = std::floor(std::log10(a.lo)); p <= std::ceil(std::log10(a.hi)); ++p) {
      const double v = std::pow(10.0, p);
      if (v >= a.lo * 0.999 && v <= a.hi * 1.001) out.push_back(v);
    }
    return out;
  }
  const double span = a.hi - a.lo, raw = span / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  for (double v = std::ceil(a.lo / step) * step; v <= a.hi + 1e-12; v += step) out.push_back(v);
  return out;
}

std::string number(double v) {
  char s[32];
  std::snprintf(s, sizeof s, "%g", v);
  return s;
}

// One panel: a frame at `box`, epochs along x.
struct Panel {
  cv::Rect box;
  double first_epoch = 1, last_epoch = 1;
  int x(double epoch) const {
    const double f =
        last_epoch > first_epoch ? (epoch - first_epoch) / (last_epoch - first_epoch) : 0.5;
    return box.x + static_cast<int>(std::lround(f * box.width));
  }
  int y(const Axis& a, double v) const {
    const double f = std::clamp(a.map(v), 0.0, 1.0);
    return box.y + box.height - static_cast<int>(std::lround(f * box.height));
  }
};

void frame(cv::Mat& img, const Panel& p, const Axis& left, const std::string& left_label) {
  for (const double v : ticks(left)) {
    const int y = p.y(left, v);
    cv::line(img, {p.box.x, y}, {p.box.x + p.box.width, y}, kLightGrey, 1);
    text(img, number(v), {p.box.x - 48, y + 5}, 0.4);
  }
  // Epoch ticks: about ten.
  const int epochs = static_cast<int>(p.last_epoch - p.first_epoch) + 1;
  const int every = std::max(1, epochs / 10);
  for (int e = static_cast<int>(p.first_epoch); e <= static_cast<int>(p.last_epoch); e += every) {
    const int x = p.x(e);
    cv::line(img, {x, p.box.y + p.box.height}, {x, p.box.y + p.box.height + 4}, kBlack, 1);
    text(img, std::to_string(e), {x - 6, p.box.y + p.box.height + 18}, 0.4);
  }
  cv::rectangle(img, p.box, kBlack, 1);
  text(img, left_label, {p.box.x, p.box.y - 8}, 0.5);
}

void series(cv::Mat& img, const Panel& p, const Axis& a, const std::vector<EpochMetrics>& rows,
            double EpochMetrics::*field, const cv::Scalar& colour) {
  std::vector<cv::Point> points;
  for (const auto& r : rows) points.emplace_back(p.x(r.epoch), p.y(a, r.*field));
  if (points.size() > 1) cv::polylines(img, points, false, colour, 2, cv::LINE_AA);
  for (const auto& pt : points) cv::circle(img, pt, 3, colour, cv::FILLED, cv::LINE_AA);
}

void legend(cv::Mat& img, cv::Point at,
            const std::vector<std::pair<std::string, cv::Scalar>>& items) {
  for (const auto& [name, colour] : items) {
    cv::line(img, {at.x, at.y - 4}, {at.x + 22, at.y - 4}, colour, 2, cv::LINE_AA);
    text(img, name, {at.x + 28, at.y}, 0.42);
    at.x += 34 + static_cast<int>(name.size()) * 8;
  }
}

}  // namespace

cv::Mat draw_curves(const std::vector<EpochMetrics>& rows, const std::string& title) {
  cv::Mat img(kCurvesHeight, kCurvesWidth, CV_8UC3, cv::Scalar(255, 255, 255));
  text(img, title, {70, 28}, 0.6, kBlack, 1);
  if (rows.empty()) {
    text(img, "no epoch finished yet", {70, 80}, 0.6, kGrey);
    return img;
  }
  const double first = rows.front().epoch, last = rows.back().epoch;

  // Top: the training loss.
  Panel loss_panel{{70, 60, 820, 230}, first, last};
  double lo = rows.front().loss, hi = lo;
  for (const auto& r : rows) lo = std::min(lo, r.loss), hi = std::max(hi, r.loss);
  const double pad = std::max(1e-3, 0.08 * (hi - lo));
  const Axis loss_axis{std::max(0.0, lo - pad), hi + pad, false};
  frame(img, loss_panel, loss_axis, "training loss (mean per epoch)");
  series(img, loss_panel, loss_axis, rows, &EpochMetrics::loss, kBlue);

  // Bottom: the error rates from 0 to a little above the largest, the learning rate on a log
  // axis at the right.
  Panel err_panel{{70, 350, 820, 300}, first, last};
  double worst = 0.05;
  for (const auto& r : rows)
    worst = std::max({worst, r.train_top1, r.val_top1, r.train_top5, r.val_top5});
  const Axis err_axis{0, std::min(1.0, std::ceil(worst * 1.1 * 20) / 20), false};
  frame(img, err_panel, err_axis, "error rate");
  double lr_lo = rows.front().lr, lr_hi = lr_lo;
  for (const auto& r : rows) lr_lo = std::min(lr_lo, r.lr), lr_hi = std::max(lr_hi, r.lr);
  const Axis lr_axis{lr_lo / 2, lr_hi * 2, true};
  for (const double v : ticks(lr_axis)) {
    const int y = err_panel.y(lr_axis, v);
    cv::line(img, {err_panel.box.x + err_panel.box.width, y},
             {err_panel.box.x + err_panel.box.width + 4, y}, kPurple, 1);
    text(img, number(v), {err_panel.box.x + err_panel.box.width + 8, y + 5}, 0.4, kPurple);
  }
  text(img, "learning rate", {err_panel.box.x + err_panel.box.width - 90, err_panel.box.y - 8}, 0.5,
       kPurple);
  // Each drop of the learning rate: a dashed line between the last epoch at the old rate and
  // the first at the new one.
  for (size_t i = 1; i < rows.size(); ++i) {
    if (!(rows[i].lr < rows[i - 1].lr)) continue;
    const int x = (err_panel.x(rows[i - 1].epoch) + err_panel.x(rows[i].epoch)) / 2;
    for (int y = err_panel.box.y; y < err_panel.box.y + err_panel.box.height; y += 10)
      cv::line(img, {x, y}, {x, std::min(y + 5, err_panel.box.y + err_panel.box.height)}, kPurple,
               1);
    text(img, "lr x" + number(rows[i].lr / rows[i - 1].lr), {x + 4, err_panel.box.y + 16}, 0.4,
         kPurple);
  }
  series(img, err_panel, err_axis, rows, &EpochMetrics::train_top1, kOrange);
  series(img, err_panel, err_axis, rows, &EpochMetrics::val_top1, kRed);
  series(img, err_panel, err_axis, rows, &EpochMetrics::train_top5, kGreen);
  series(img, err_panel, err_axis, rows, &EpochMetrics::val_top5, kBlue);
  // The learning rate as steps: each epoch's rate held until halfway to the next epoch.
  std::vector<cv::Point> lr_points;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int y = err_panel.y(lr_axis, rows[i].lr);
    const int left = i == 0 ? err_panel.x(rows[i].epoch)
                            : (err_panel.x(rows[i - 1].epoch) + err_panel.x(rows[i].epoch)) / 2;
    const int right = i + 1 == rows.size()
                          ? err_panel.x(rows[i].epoch)
                          : (err_panel.x(rows[i].epoch) + err_panel.x(rows[i + 1].epoch)) / 2;
    lr_points.emplace_back(left, y);
    lr_points.emplace_back(right, y);
  }
  cv::polylines(img, lr_points, false, kPurple, 1, cv::LINE_AA);
  text(img, "epoch", {err_panel.box.x + err_panel.box.width / 2 - 20, kCurvesHeight - 30}, 0.5);
  legend(img, {70, kCurvesHeight - 8},
         {{"train top-1", kOrange},
          {"val top-1", kRed},
          {"train top-5", kGreen},
          {"val top-5", kBlue},
          {"learning rate", kPurple}});
  char best[96];
  const auto best_row =
      std::min_element(rows.begin(), rows.end(),
                       [](const auto& a, const auto& b) { return a.val_top1 < b.val_top1; });
  std::snprintf(best, sizeof best, "best val top-1 error %.4f (epoch %d)", best_row->val_top1,
                best_row->epoch);
  text(img, best, {560, 28}, 0.5);
  return img;
}

}  // namespace alexnet
