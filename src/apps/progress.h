// A progress bar for the dataset tools: redrawn in place on a terminal, a plain line every 10%
// otherwise (logs, CI).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace alexnet {

class ProgressBar {
 public:
  explicit ProgressBar(std::string what) : what_(std::move(what)), tty_(::isatty(2) != 0) {}
  ~ProgressBar() {
    if (drawn_ && tty_) std::fputc('\n', stderr);
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(int64_t done, int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const int tenth = total > 0 ? static_cast<int>(10 * done / total) : 10;
    if (tty_ ? (now - last_ < std::chrono::milliseconds(200) && done < total)
             : tenth == last_tenth_)
      return;
    last_ = now;
    last_tenth_ = tenth;
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
    const int width = 30, filled = total > 0 ? static_cast<int>(width * done / total) : width;
    std::string bar(static_cast<size_t>(filled), '=');
    bar.resize(static_cast<size_t>(width), ' ');
    std::fprintf(stderr, "%s%s [%s] %lld/%lld  %.0f images/s  ETA %.0fs%s", tty_ ? "\r\033[K" : "",
                 what_.c_str(), bar.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total), rate, eta, tty_ ? "" : "\n");
    std::fflush(stderr);
    drawn_ = true;
  }

 private:
  std::string what_;
  bool tty_, drawn_ = false;
  int last_tenth_ = -1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

}  // namespace alexnet
