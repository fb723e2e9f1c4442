// The run directory (README, "The run directory"): config.yaml, metrics.csv, train.log, curves.png,
// filters.png, checkpoints/.
#pragma once

#include <string>

namespace alexnet {

struct RunDir {
  std::string root;
  std::string checkpoints() const { return root + "/checkpoints"; }
  std::string last() const { return checkpoints() + "/last.safetensors"; }
  std::string best() const { return checkpoints() + "/best.safetensors"; }
  std::string epoch_file(int epoch) const;  // checkpoints/epoch-NNN.safetensors
  std::string log() const { return root + "/train.log"; }
  // Many ranks: rank 0 writes log(), rank R > 0 this.
  std::string rank_log(int rank) const {
    return root + "/train.rank-" + std::to_string(rank) + ".log";
  }
  std::string metrics() const { return root + "/metrics.csv"; }
  std::string config() const { return root + "/config.yaml"; }
  std::string curves() const { return root + "/curves.png"; }
  std::string filters() const { return root + "/filters.png"; }
};

// Creates the directories and proves they can be written, or throws alexnet::Error naming
// the directory and the reason.
void prepare_run_dir(const RunDir& dir);
bool has_checkpoints(const RunDir& dir);
// The newest checkpoint: last.safetensors, else the highest epoch-NNN; empty if none.
std::string newest_checkpoint(const RunDir& dir);
// Keeps the newest `keep` epoch-NNN files (0 keeps all).
void prune_epoch_checkpoints(const RunDir& dir, int keep);

}  // namespace alexnet
