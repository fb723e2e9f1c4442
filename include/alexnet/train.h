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
// With many ranks (alexnet/dist.h), every rank must call it: each evaluates every world-size-th
// batch, and the counts are summed over the ranks (`skipped` stays this rank's own).
EvalResult evaluate(Net& net, const DataSource& source, const DataStats& stats,
                    const Config& config, int crops);

// This rank's share of every global batch of `batch` images (alexnet/dist.h): its batch / ranks
// images start at position rank * batch / ranks; with one rank, the whole batch. Throws
// alexnet::Error, naming both numbers, when the batch does not divide over the ranks.
BatchSlice rank_share(int batch);

// Many ranks (alexnet/dist.h): every Param::grad of a CPU net summed over the ranks, in place,
// as one array in reverse layer order (fc8 first), through `buffer` (kept from step to step).
// Returns the seconds it took; 0, touching nothing, with one rank.
double sum_gradients_over_ranks(Net& net, std::vector<float>& buffer);

// Every replica must hold the same weights: the ranks take the same update from the same summed
// gradients. A fingerprint (64-bit FNV-1a) of the bytes of every parameter, in params() order,
// copied to the host.
uint64_t weights_fingerprint(const Net& net);
// Compares this rank's fingerprint with every other rank's (a collective: every rank calls it
// after the same step). Throws dist::AgreedError, on every rank alike and said by rank 0, naming
// the ranks whose weights differ from rank 0's after `step`. Nothing with one rank.
void check_replicas_agree(const Net& net, int64_t step);

// ---------------------------------------------------------------------------- the data wait
// The share of its step time a run may spend waiting for batches before the trainer says the
// input pipeline is what limits it.
inline constexpr double kInputBoundShare = 0.10;
// The line the trainer prints at the end of an epoch that waited more than kInputBoundShare of
// its step time for data, with what to change; empty below that.
std::string input_bound_warning(double data_wait_share, const Config& config,
                                unsigned hardware_threads);

// ---------------------------------------------------------------------------- devices
// Empty when GPU `index` is usable (a CUDA build and cuda:index present), else why not, in a
// few words: "this build has no CUDA support", "no CUDA-capable device is detected", ...
std::string cuda_unavailable_reason(int index = 0);

// What a --device or model.devices value means here: "auto" is cuda:0 when the build has CUDA
// and a GPU is usable, else the CPU; "cpu" and "cpu:N" are the CPU (the index is only a name);
// "cuda" and "cuda:N" that GPU. A bad spelling, or a GPU that is not usable, is an
// alexnet::Error of one line naming `option` and the value ("--device = 'cuda': no usable CUDA
// device: ...").
Device resolve_device(const std::string& device, const std::string& option);

// Where each tower runs (one device per tower, model.towers of them):
// - --device other than "auto": every tower there;
// - else model.devices: one entry for every tower, or one entry per tower ([cpu:0, cpu:1] puts
//   the towers on two CPU devices with separate memory; [cuda:0, cuda:1] on two GPUs);
// - "auto" (the default list): two towers on cuda:0 and cuda:1 when two GPUs are usable, else
//   every tower on cuda:0 when one is, else on the CPU.
// A bad entry, a wrong number of entries or a GPU that is not usable: alexnet::Error naming
// model.devices and the value.
std::vector<Device> select_placement(const std::string& device_option, const Config& config);

// This rank's placement in a data-parallel run (alexnet/dist.h), agreed over the ranks: a
// collective, every rank calls it, with select_placement's `placement` (made from the same
// --device and config). Each rank of a host gets GPUs of its own: local rank L takes GPU i + L·k
// for the placement's GPU i, k being the GPUs of one replica (1, or 2 for two towers on two GPUs),
// unless the launcher already gave the ranks of a host separate GPUs (CUDA_VISIBLE_DEVICES per
// rank, Slurm's --gpus-per-task: the ranks see disjoint sets of PCI bus ids), which they then keep.
// With model.devices [auto] a replica takes two GPUs when the host has two for every rank, else
// one. Throws dist::AgreedError (on every rank, said by rank 0) for too few GPUs for a host's
// ranks, for two ranks of a host on one GPU, and for ranks whose placements differ in kind (the
// CPU, one GPU or two per replica): they would call different collectives.
std::vector<Device> agreed_rank_placement(std::vector<Device> placement,
                                          const std::string& device_option, const Config& config);
// The rule for one rank of a host: `placement` as select_placement made it (`automatic`: from
// model.devices [auto]), for local rank `rank` of `ranks` on `host`, which shows this process
// `gpus` GPUs. CPU placements and a rank alone on its host keep `placement`; alexnet::Error when
// the host has too few GPUs.
struct HostShare {
  int rank = 0, ranks = 1, gpus = 0;
  std::string host;
};
std::vector<Device> place_on_host_share(std::vector<Device> placement, bool automatic,
                                        const HostShare& share);

// resolve_device, for callers that only check the value.
void check_device(const std::string& device, const std::string& option);

// Applies the config's section cuda (convolution scratch, algorithm choice, determinism, TF32)
// to every GPU among `devices`, before a Net on them runs. They are settings of the device, kept
// until changed: a net made without this call runs with the defaults of that section.
void configure_devices(const std::vector<Device>& devices, const Config& config);

}  // namespace alexnet
