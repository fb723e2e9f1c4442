// The NCCL exchange. Ordering: each collective runs on a communication stream per GPU that waits
// (by event) for the work already queued on that GPU's main queue and on its tower's queue; both
// queues wait (by event) for it when the net calls wait(layer), so the work queued in between
// (the weight gradients of the layer whose input gradients are being exchanged) overlaps it. A
// watchdog (src/comm/nccl_watchdog.h) follows every collective until it is done, and aborts the
// communicators when NCCL reports an error or a collective outlives the timeout, so a dead peer
// ends the run instead of hanging it.
#include "src/comm/nccl_exchange.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include "alexnet/cuda_check.h"
#include "alexnet/error.h"
#include "src/comm/nccl_watchdog.h"
#include "src/comm/receive_buffers.h"
#include "src/cuda/device_memory.h"
#include "src/cuda/ops_cuda.h"

namespace alexnet::gpu {
namespace {

class NcclExchange final : public Exchange {
 public:
  NcclExchange(std::vector<Device> devices, double timeout_s) : devices_(std::move(devices)) {
    const size_t ranks = devices_.size();
    std::vector<int> list;
    for (const Device& d : devices_) list.push_back(d.index);
    comms_.resize(ranks, nullptr);
    AX_CUDA_CHECK(ncclCommInitAll(comms_.data(), static_cast<int>(ranks), list.data()));
    for (size_t t = 0; t < ranks; ++t) {
      const CurrentDevice current(devices_[t].index);
      cudaStream_t s = nullptr;
      // Non-blocking: it must not wait for the legacy default stream of its GPU, only for the
      // events it is given.
      AX_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
      streams_.push_back(s);
    }
    watchdog_ = std::make_unique<NcclWatchdog>(comms_, list, timeout_s, "cuda.exchange_timeout_s",
                                               "a GPU stopped answering");
  }

  ~NcclExchange() override {
    const bool failed = watchdog_->failed();
    watchdog_.reset();
    // The communicators first (an aborted one is already gone: its entry is null), then the
    // streams they ran on.
    for (size_t t = 0; t < streams_.size() && !failed; ++t) {
      const QuietCurrentDevice current(devices_[t].index);
      (void)cudaStreamSynchronize(streams_[t]);
    }
    for (ncclComm_t c : comms_)
      if (c != nullptr) (void)ncclCommDestroy(c);
    for (size_t t = 0; t < streams_.size(); ++t) {
      const QuietCurrentDevice current(devices_[t].index);
      (void)cudaStreamDestroy(streams_[t]);
    }
    for (auto& [layer, events] : ready_)
      for (cudaEvent_t e : events) (void)cudaEventDestroy(e);
    for (Timed& t : timed_)
      for (cudaEvent_t e : {t.comm_start, t.comm_end, t.work_start, t.work_end})
        if (e != nullptr) (void)cudaEventDestroy(e);
  }

  std::vector<std::vector<Tensor>> all_gather(const char* layer, const std::vector<Tensor>& own,
                                              int64_t count) override {
    check_failed();
    const size_t ranks = devices_.size();
    std::vector<std::vector<Tensor>> out(ranks, std::vector<Tensor>(ranks));
    for (size_t t = 0; t < ranks; ++t)
      for (size_t r = 0; r < ranks; ++r)
        out[t][r] = t == r ? own[r] : buffer("gather", layer, t, r, own[r]);
    begin();
    NcclWatchdog::Group group(*watchdog_);
    // One broadcast per owner: every rank receives into a tensor of its own (an all-gather would
    // need one contiguous receive buffer); the same bytes move. (A non-root rank's send buffer is
    // not read; it is given its own receive buffer, a pointer on its own GPU.)
    for (size_t r = 0; r < ranks; ++r)
      for (size_t t = 0; t < ranks; ++t)
        AX_CUDA_CHECK(ncclBroadcast(out[t][r].raw(), out[t][r].raw(), static_cast<size_t>(count),
                                    type(own[r]), static_cast<int>(r), comms_[t], streams_[t]));
    group.end();
    end("all-gather", layer);
    return out;
  }

  void reduce_scatter(const char* layer, const std::vector<std::vector<Tensor>>& partial,
                      std::vector<Tensor>& out, int64_t count) override {
    check_failed();
    const size_t ranks = devices_.size();
    begin();
    NcclWatchdog::Group group(*watchdog_);
    // One reduction per owner r of the shares partial[t][r] (with two towers a sum of two, so
    // the order NCCL adds in cannot change the result).
    for (size_t r = 0; r < ranks; ++r)
      for (size_t t = 0; t < ranks; ++t)
        AX_CUDA_CHECK(ncclReduce(partial[t][r].raw(), t == r ? out[r].raw() : nullptr,
                                 static_cast<size_t>(count), type(partial[t][r]), ncclSum,
                                 static_cast<int>(r), comms_[t], streams_[t]));
    group.end();
    end("reduce-scatter", layer);
  }

  std::vector<Tensor> broadcast(const char* layer, const Tensor& source, int64_t count) override {
    check_failed();
    std::vector<Tensor> out;
    for (size_t t = 0; t < devices_.size(); ++t)
      out.push_back(t == 0 ? source : buffer("broadcast", layer, t, 0, source));
    begin();
    NcclWatchdog::Group group(*watchdog_);
    for (size_t t = 0; t < devices_.size(); ++t)
      AX_CUDA_CHECK(ncclBroadcast(out[t].raw(), out[t].raw(), static_cast<size_t>(count),
                                  type(source), 0, comms_[t], streams_[t]));
    group.end();
    end("broadcast", layer);
    return out;
  }

 private:
  static ncclDataType_t type(const Tensor& t) {
    if (t.dtype() != DType::f32) throw std::logic_error("the NCCL exchange moves F32 tensors only");
    return ncclFloat32;
  }

  // The receiving tower's buffer for (what, layer, to, from), shaped like `like`.
  Tensor buffer(const char* what, const char* layer, size_t to, size_t from, const Tensor& like) {
    return buffers_.get(what, layer, to, from, like, devices_[to]);
  }

  // Each communication stream waits for what its GPU's main queue and tower queue hold now.
  void begin() {
    for (size_t t = 0; t < devices_.size(); ++t) {
      const int device = devices_[t].index;
      const CurrentDevice current(device);
      for (const int queue : {0, static_cast<int>(t) + 1}) {
        cudaEvent_t e = nullptr;
        AX_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
        AX_CUDA_CHECK(
            cudaEventRecord(e, static_cast<cudaStream_t>(gpu_ops::queue_stream(device, queue))));
        AX_CUDA_CHECK(cudaStreamWaitEvent(streams_[t], e, 0));
        AX_CUDA_CHECK(cudaEventDestroy(e));  // released once the wait no longer needs it
      }
    }
    if (timing_) timed_.push_back({"", "", timed_event(streams_[0]), nullptr, nullptr, nullptr});
  }

  // ---------------------------------------------------------------- timing (tower 0's GPU)
  // Per collective: its start and end on the communication stream, and the window in which
  // tower 0 queued other work before waiting for it (from the collective's end() to wait()).
  struct Timed {
    std::string op, layer;
    cudaEvent_t comm_start, comm_end, work_start, work_end;
  };

  cudaEvent_t timed_event(cudaStream_t stream) {
    const CurrentDevice current(devices_[0].index);
    cudaEvent_t e = nullptr;
    AX_CUDA_CHECK(cudaEventCreate(&e));
    AX_CUDA_CHECK(cudaEventRecord(e, stream));
    return e;
  }

  cudaStream_t tower0_queue() {
    return static_cast<cudaStream_t>(gpu_ops::queue_stream(devices_[0].index, 1));
  }

  void set_timing(bool on) override { timing_ = on; }

  std::vector<ExchangeTiming> timings() override {
    const CurrentDevice current(devices_[0].index);
    std::vector<ExchangeTiming> out;
    for (Timed& t : timed_) {
      if (t.work_end == nullptr) t.work_end = timed_event(tower0_queue());  // never waited for
      AX_CUDA_CHECK(cudaEventSynchronize(t.comm_end));
      AX_CUDA_CHECK(cudaEventSynchronize(t.work_end));
      float comm = 0, work0 = 0, work1 = 0;  // milliseconds after comm_start
      AX_CUDA_CHECK(cudaEventElapsedTime(&comm, t.comm_start, t.comm_end));
      AX_CUDA_CHECK(cudaEventElapsedTime(&work0, t.comm_start, t.work_start));
      AX_CUDA_CHECK(cudaEventElapsedTime(&work1, t.comm_start, t.work_end));
      const double overlap = std::max(0.0, std::min<double>(comm, work1) - std::max(0.0f, work0));
      auto it = std::find_if(out.begin(), out.end(), [&](const ExchangeTiming& e) {
        return e.op == t.op && e.layer == t.layer;
      });
      if (it == out.end()) it = out.insert(out.end(), {t.op, t.layer});
      ++it->calls;
      it->ms += comm;
      it->overlap_ms += overlap;
      for (cudaEvent_t e : {t.comm_start, t.comm_end, t.work_start, t.work_end})
        (void)cudaEventDestroy(e);
    }
    timed_.clear();
    return out;
  }

  // Marks the end of the collective for wait(layer); the watchdog follows it.
  void end(const char* op, const char* layer) {
    if (timing_) {
      Timed& t = timed_.back();
      t.op = op;
      t.layer = layer;
      t.comm_end = timed_event(streams_[0]);
      t.work_start = timed_event(tower0_queue());
    }
    std::vector<cudaEvent_t>& ready = ready_[layer];
    ready.resize(devices_.size(), nullptr);
    for (size_t t = 0; t < devices_.size(); ++t) {
      const int device = devices_[t].index;
      const CurrentDevice current(device);
      if (ready[t] == nullptr)
        AX_CUDA_CHECK(cudaEventCreateWithFlags(&ready[t], cudaEventDisableTiming));
      AX_CUDA_CHECK(cudaEventRecord(ready[t], streams_[t]));
      watchdog_->follow(t, streams_[t],
                        std::string("NCCL ") + op + " of " + layer + " on " + devices_[t].str() +
                            " (tower " + std::to_string(t) + ")");
    }
  }

  void wait(const char* layer) override {
    check_failed();
    const auto it = ready_.find(layer);
    if (it == ready_.end()) return;
    if (timing_)  // the tower's overlapping work ends here
      for (auto t = timed_.rbegin(); t != timed_.rend(); ++t)
        if (t->layer == layer && t->work_end == nullptr) {
          t->work_end = timed_event(tower0_queue());
          break;
        }
    for (size_t t = 0; t < devices_.size(); ++t) {
      const int device = devices_[t].index;
      const CurrentDevice current(device);
      for (const int queue : {0, static_cast<int>(t) + 1})
        AX_CUDA_CHECK(cudaStreamWaitEvent(
            static_cast<cudaStream_t>(gpu_ops::queue_stream(device, queue)), it->second[t], 0));
    }
  }

  void check() override { check_failed(); }
  void check_failed() { watchdog_->check(); }

  std::vector<Device> devices_;
  std::vector<ncclComm_t> comms_;
  std::vector<cudaStream_t> streams_;
  ReceiveBuffers buffers_;
  std::map<std::string, std::vector<cudaEvent_t>> ready_;  // per layer, per rank: see wait()
  bool timing_ = false;
  std::vector<Timed> timed_;  // since the last timings()

  std::unique_ptr<NcclWatchdog> watchdog_;  // follows every collective; destroyed first
};

}  // namespace

std::unique_ptr<Exchange> make_nccl_exchange(const std::vector<Device>& devices, double timeout_s) {
  for (size_t t = 0; t < devices.size(); ++t)
    for (size_t r = 0; r < t; ++r)
      if (devices[t].is_cpu() || devices[t] == devices[r])
        throw Error("the NCCL exchange needs one GPU per tower, all different (got " +
                    devices[r].str() + " and " + devices[t].str() + ")");
  return std::make_unique<NcclExchange>(devices, timeout_s);
}

}  // namespace alexnet::gpu
