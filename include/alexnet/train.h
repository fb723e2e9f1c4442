// The training run and evaluation: what alexnet-train and alexnet-eval do.
#pragma once

#include <string>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/data.h"
#include "alexnet/net.h"

namespace alexnet {

struct TrainOptions {
  std::string config_path;        // may be empty: the checkpoint's config, or the defaults
  std::vector<std::string> sets;  // --set key=value
  std::string device = "auto";
  std::string out;     // run directory; default runs/<config name>
  std::string resume;  // "", "auto" or a checkpoint path
};

// Runs training to the end (or to train.max_steps, or to SIGINT/SIGTERM, after which it writes
// a checkpoint). Returns the process exit code: 0, or 128 + signal when stopped by one.
// Throws alexnet::Error for bad input.
int run_training(const TrainOptions& options);

struct EvalResult {
  int64_t images = 0;
  double loss = 0;  // mean cross-entropy of the (crop-averaged) softmax
  double top1_error = 0, top5_error = 0;
  std::vector<int64_t> class_images, class_top1_errors;  // per class
  std::vector<BadSample> skipped;                        // files that could not be decoded
};

// Error of the net on every image of `source`, in order, in batches of the net's capacity:
// the centre crop (crops = 1) or the softmax averaged over the paper's ten crops (crops = 10).
EvalResult evaluate(Net& net, const DataSource& source, const DataStats& stats,
                    const Config& config, int crops);

// "cpu", "cpu:N" or "auto" (which means the CPU until the CUDA backend exists); anything else is
// refused with a message naming the option.
void check_device(const std::string& device, const std::string& option);

}  // namespace alexnet
