// Checkpoints (README, "Checkpoints"): one safetensors file with the whole (untowered)
// PyTorch-layout weights, their momentum as momentum.<name>, the input statistics, and metadata
// that lets a run resume exactly: the resolved config, position in the data, LR schedule, RNG
// state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/data.h"
#include "alexnet/net.h"
#include "alexnet/safetensors.h"
#include "alexnet/sgd.h"

namespace alexnet {

inline constexpr const char* kCheckpointFormat = "alexnet-checkpoint/1";

// Where training stands. Everything a resumed run needs besides weights and momentum.
struct TrainState {
  int epoch = 0;               // epochs completed
  int64_t step = 0;            // optimizer steps taken in all
  int64_t batch_in_epoch = 0;  // batches of the current epoch already trained on
  LrState lr;
  double best_val_top1 = 2.0;  // best validation top-1 error so far (2 = none yet)
  // the current epoch's running training metrics
  double epoch_loss_sum = 0;
  int64_t epoch_top1 = 0, epoch_top5 = 0, epoch_images = 0;
  int64_t epoch_skipped = 0;  // undecodable files met this epoch
  double epoch_seconds = 0;
  double epoch_data_wait_seconds = 0;  // of epoch_seconds, the time spent waiting for batches
};

// classes: the label order (wnids); class_names: human-readable, the same length.
void save_checkpoint(const std::string& path, const Net& net, const Config& config,
                     const TrainState& state, const DataStats& stats,
                     const std::vector<std::string>& classes,
                     const std::vector<std::string>& class_names);

struct Checkpoint {
  std::string path;
  Config config;  // as stored, plus any overrides given when reading
  TrainState state;
  DataStats stats;
  std::vector<std::string> classes, class_names;
  SafetensorsFile file;
};

// Reads and checks the format; the stored config is parsed with `overrides` applied.
Checkpoint read_checkpoint(const std::string& path, const std::vector<std::string>& overrides);
// Copies weights (and momentum) into the net, refusing any missing tensor or wrong shape with
// a message naming the file, the tensor and both shapes.
void load_weights(const Checkpoint& ckpt, Net& net, bool with_momentum);

}  // namespace alexnet
