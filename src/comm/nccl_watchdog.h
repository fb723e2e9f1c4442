// Follows NCCL collectives until they are done, for the exchange between towers and for the
// gradient sum over ranks: when NCCL reports an error, or a collective outlives its timeout, it
// says why on stderr at once and aborts the communicators, so that the streams (and the host)
// waiting for them go on and the run ends with a named error instead of hanging.
// CUDA code (NCCL types); plain C++ callers use the exchange and the gradient sum.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace alexnet::gpu {

class NcclWatchdog {
 public:
  // comms[i] runs on GPU devices[i]; the caller owns them and destroys this first. An aborted
  // communicator's entry becomes null. A timeout's message names the config key of timeout_s
  // ("cuda.exchange_timeout_s") and what it means ("a GPU stopped answering").
  NcclWatchdog(std::vector<ncclComm_t>& comms, std::vector<int> devices, double timeout_s,
               std::string timeout_key, std::string stalled);
  ~NcclWatchdog();
  NcclWatchdog(const NcclWatchdog&) = delete;
  NcclWatchdog& operator=(const NcclWatchdog&) = delete;

  // Follows the work queued so far on `stream`, a stream of comms[comm]'s GPU; `what` names it
  // in the failure ("NCCL all-reduce of fc8 on cuda:1").
  void follow(size_t comm, cudaStream_t stream, std::string what);
  // One group of NCCL calls (ncclGroupStart ... end()): holds the watchdog's issuing lock, so
  // that an abort waits for it (a few seconds at most) and never lands inside a group; refuses
  // to start after a failure; and closes the group even when a call in it throws (an open group
  // would defer every later NCCL call of this thread).
  class Group {
   public:
    explicit Group(NcclWatchdog& watchdog);
    void end();
    ~Group();
    Group(const Group&) = delete;
    Group& operator=(const Group&) = delete;

   private:
    std::unique_lock<std::timed_mutex> lock_;
    bool open_ = false;
  };
  bool failed() const { return failed_; }
  // Throws alexnet::Error saying what failed, when something did.
  void check();

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    cudaEvent_t done;
    size_t comm;
    std::string what;
    Clock::time_point queued;
  };
  void watch();
  void abort_all();

  std::vector<ncclComm_t>& comms_;
  std::vector<int> devices_;
  double timeout_s_;
  std::string timeout_key_, stalled_;
  std::timed_mutex issuing_;
  std::mutex mutex_;  // guards pending_, failure_, stopping_
  std::condition_variable wake_;
  std::deque<Pending> pending_;
  std::string failure_;
  std::atomic<bool> failed_{false};
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace alexnet::gpu
