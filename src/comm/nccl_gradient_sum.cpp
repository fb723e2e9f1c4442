// The gradient sum over the ranks' GPUs. Ordering, as in the NCCL exchange: a communication
// stream per GPU waits (by event) for what that GPU's queues hold when backward hands over a
// layer, all-reduces the layer's gradients in place, and the queues wait (by event) for the last
// all-reduce at finish(): the sums of fc8, fc7, ... run while backward computes the layers below
// them. Every rank issues the same all-reduces in the same order on communicators of the same
// ranks, and NCCL hands every rank the same sum, so the replicas stay identical.
#include "src/comm/nccl_gradient_sum.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "alexnet/cuda_check.h"
#include "alexnet/error.h"
#include "alexnet/net.h"
#include "src/comm/nccl_watchdog.h"
#include "src/cuda/device_memory.h"
#include "src/cuda/ops_cuda.h"

namespace alexnet::gpu {
namespace {

// Ends the process with `message` unless destroyed within `seconds`: NCCL's set-up waits for
// every rank with no limit of its own, and a rank that never comes must not hang the others.
class Deadline {
 public:
  Deadline(double seconds, std::string message)
      : seconds_(seconds), message_(std::move(message)), thread_([this] { watch(); }) {}
  ~Deadline() {
    {
      const std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    if (cv_.wait_for(lock, std::chrono::duration<double>(seconds_), [this] { return done_; }))
      return;
    std::fprintf(stderr, "alexnet: %s\n", message_.c_str());
    std::fflush(stderr);
    std::_Exit(3);
  }
  double seconds_;
  std::string message_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

cudaEvent_t new_event(int device, bool timing) {
  const CurrentDevice current(device);
  cudaEvent_t e = nullptr;
  AX_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return e;
}

class NcclGradientSum final : public GradientSum {
 public:
  NcclGradientSum(Net& net, int ranks, int rank, const std::string& ids, double timeout_s,
                  const std::string& who)
      : net_(net), who_(who) {
    const std::vector<Device>& towers = net.devices();
    for (const Device& d : towers) {
      if (d.is_cpu()) throw Error("the NCCL gradient sum needs every tower on a GPU");
      if (std::find(devices_.begin(), devices_.end(), d.index) == devices_.end())
        devices_.push_back(d.index);
    }
    if (ids.size() != devices_.size() * sizeof(ncclUniqueId))
      throw Error("the NCCL gradient sum needs one unique id per GPU of the replica");
    // The queues each communicator waits for and makes wait: its GPU's main queue and the
    // queues of the towers on it.
    queues_.resize(devices_.size(), {0});
    for (size_t t = 0; t < towers.size(); ++t)
      queues_[comm_of(towers[t].index)].push_back(static_cast<int>(t) + 1);
    for (size_t i = 0; i < net.params().size(); ++i) {
      const Param& p = net.params()[i];
      if (p.grad.dtype() != DType::f32)
        throw Error("the NCCL gradient sum moves F32 gradients only");
      layers_[p.name.substr(0, p.name.find('.'))].push_back(i);
      bytes_ += static_cast<int64_t>(p.grad.nbytes());
    }

    comms_.assign(devices_.size(), nullptr);
    watchdog_ = std::make_unique<NcclWatchdog>(comms_, devices_, timeout_s, "dist.timeout_s",
                                               "a rank or its GPU stopped answering");
    try {
      const Deadline deadline(
          timeout_s, fmt_seconds(who + ": NCCL's communicators across the ranks were not set up "
                                       "after ",
                                 timeout_s) +
                         " (dist.timeout_s): a rank died or hangs; ending the job");
      NcclWatchdog::Group group(*watchdog_);
      for (size_t c = 0; c < devices_.size(); ++c) {
        const CurrentDevice current(devices_[c]);
        ncclUniqueId id;
        std::memcpy(&id, ids.data() + c * sizeof id, sizeof id);
        AX_CUDA_CHECK(ncclCommInitRank(&comms_[c], ranks, id, rank));
      }
      group.end();
    } catch (...) {
      watchdog_.reset();
      for (ncclComm_t& c : comms_)
        if (c != nullptr) (void)ncclCommAbort(c);
      throw;
    }
    for (const int device : devices_) {
      const CurrentDevice current(device);
      cudaStream_t s = nullptr;
      // Non-blocking: it waits only for the events it is given, not the legacy default stream.
      AX_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
      streams_.push_back(s);
      ready_.push_back(new_event(device, false));
    }
    start_ = new_event(devices_[0], true);
    backward_end_ = new_event(devices_[0], true);
    sums_end_ = new_event(devices_[0], true);
  }

  ~NcclGradientSum() override {
    // Leaving on an error, the other ranks may never join the sums in flight: abort them
    // instead of waiting for them.
    const bool clean = !watchdog_->failed() && std::uncaught_exceptions() == 0;
    watchdog_.reset();
    for (size_t c = 0; c < streams_.size() && clean; ++c) {
      const QuietCurrentDevice current(devices_[c]);
      (void)cudaStreamSynchronize(streams_[c]);
    }
    for (ncclComm_t c : comms_)
      if (c != nullptr) (void)(clean ? ncclCommDestroy(c) : ncclCommAbort(c));
    for (size_t c = 0; c < streams_.size(); ++c) {
      const QuietCurrentDevice current(devices_[c]);
      (void)cudaStreamDestroy(streams_[c]);
      (void)cudaEventDestroy(ready_[c]);
    }
    for (cudaEvent_t e : {start_, backward_end_, sums_end_}) (void)cudaEventDestroy(e);
  }

  void layer_ready(const std::string& layer) override {
    watchdog_->check();
    const auto it = layers_.find(layer);
    if (it == layers_.end()) return;
    for (size_t c = 0; c < devices_.size(); ++c) {
      const CurrentDevice current(devices_[c]);
      for (const int queue : queues_[c]) {
        AX_CUDA_CHECK(cudaEventRecord(ready_[c], stream(c, queue)));
        AX_CUDA_CHECK(cudaStreamWaitEvent(streams_[c], ready_[c], 0));
      }
    }
    if (!started_) {  // the step's first layer: the last step's events are free again
      harvest_timing();
      const CurrentDevice current(devices_[0]);
      AX_CUDA_CHECK(cudaEventRecord(start_, streams_[0]));
      started_ = true;
    }
    {
      NcclWatchdog::Group group(*watchdog_);
      for (const size_t i : it->second) {
        Param& p = net_.params()[i];
        const size_t c = comm_of(p.grad.device().index);
        AX_CUDA_CHECK(ncclAllReduce(p.grad.raw(), p.grad.raw(), static_cast<size_t>(p.grad.numel()),
                                    ncclFloat32, ncclSum, comms_[c], streams_[c]));
      }
      group.end();
    }
    for (size_t c = 0; c < devices_.size(); ++c)
      watchdog_->follow(c, streams_[c],
                        "NCCL all-reduce of " + layer + "'s gradients on cuda:" +
                            std::to_string(devices_[c]) + " (" + who_ + ")");
  }

  void finish() override {
    watchdog_->check();
    if (!started_) return;
    started_ = false;
    const CurrentDevice first(devices_[0]);
    AX_CUDA_CHECK(cudaEventRecord(backward_end_, stream(0, 1)));  // tower 0's queue
    AX_CUDA_CHECK(cudaEventRecord(sums_end_, streams_[0]));
    for (size_t c = 0; c < devices_.size(); ++c) {
      const CurrentDevice current(devices_[c]);
      AX_CUDA_CHECK(cudaEventRecord(ready_[c], streams_[c]));
      for (const int queue : queues_[c])
        AX_CUDA_CHECK(cudaStreamWaitEvent(stream(c, queue), ready_[c], 0));
    }
    timed_ = true;
  }

  GradientSumTiming last_timing() const override { return timing_; }
  int64_t bytes() const override { return bytes_; }

 private:
  static std::string fmt_seconds(const std::string& head, double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%.0f s", seconds);
    return head + text;
  }

  size_t comm_of(int device) const {
    return static_cast<size_t>(std::find(devices_.begin(), devices_.end(), device) -
                               devices_.begin());
  }
  cudaStream_t stream(size_t comm, int queue) const {
    return static_cast<cudaStream_t>(gpu_ops::queue_stream(devices_[comm], queue));
  }

  // The last step's events, read only once they are done (by the next step's first layer they
  // are: that step read its loss, which waited for them), so that this never waits.
  void harvest_timing() {
    if (!timed_) return;
    const CurrentDevice current(devices_[0]);
    for (cudaEvent_t e : {start_, backward_end_, sums_end_})
      if (cudaEventQuery(e) != cudaSuccess) {
        (void)cudaGetLastError();
        return;
      }
    float all = 0, exposed = 0;
    AX_CUDA_CHECK(cudaEventElapsedTime(&all, start_, sums_end_));
    AX_CUDA_CHECK(cudaEventElapsedTime(&exposed, backward_end_, sums_end_));
    timing_ = {all, std::max(0.0f, exposed)};
  }

  Net& net_;
  std::string who_;
  std::vector<int> devices_;                           // the replica's GPUs, one communicator each
  std::vector<std::vector<int>> queues_;               // per communicator
  std::map<std::string, std::vector<size_t>> layers_;  // layer -> indices into net.params()
  int64_t bytes_ = 0;
  std::vector<ncclComm_t> comms_;
  std::vector<cudaStream_t> streams_;
  std::vector<cudaEvent_t> ready_;  // per communicator, reused
  cudaEvent_t start_ = nullptr, backward_end_ = nullptr, sums_end_ = nullptr;  // on devices_[0]
  bool started_ = false, timed_ = false;
  GradientSumTiming timing_;
  std::unique_ptr<NcclWatchdog> watchdog_;  // destroyed first
};

}  // namespace

std::string nccl_unique_ids(int count) {
  std::string ids;
  for (int i = 0; i < count; ++i) {
    ncclUniqueId id;
    AX_CUDA_CHECK(ncclGetUniqueId(&id));
    ids.append(reinterpret_cast<const char*>(&id), sizeof id);
  }
  return ids;
}

std::unique_ptr<GradientSum> make_nccl_gradient_sum(Net& net, int ranks, int rank,
                                                    const std::string& ids, double timeout_s,
                                                    const std::string& who) {
  return std::make_unique<NcclGradientSum>(net, ranks, rank, ids, timeout_s, who);
}

}  // namespace alexnet::gpu
