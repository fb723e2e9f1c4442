#include "src/comm/nccl_watchdog.h"

#include <cstdio>
#include <cstdlib>

#include "alexnet/cuda_check.h"
#include "alexnet/error.h"
#include "src/cuda/device_memory.h"

namespace alexnet::gpu {

NcclWatchdog::NcclWatchdog(std::vector<ncclComm_t>& comms, std::vector<int> devices,
                           double timeout_s, std::string timeout_key, std::string stalled)
    : comms_(comms),
      devices_(std::move(devices)),
      timeout_s_(timeout_s),
      timeout_key_(std::move(timeout_key)),
      stalled_(std::move(stalled)),
      thread_([this] { watch(); }) {}

NcclWatchdog::~NcclWatchdog() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  for (Pending& p : pending_) (void)cudaEventDestroy(p.done);
}

NcclWatchdog::Group::Group(NcclWatchdog& watchdog) : lock_(watchdog.issuing_) {
  watchdog.check();
  AX_CUDA_CHECK(ncclGroupStart());
  open_ = true;
}

void NcclWatchdog::Group::end() {
  open_ = false;
  AX_CUDA_CHECK(ncclGroupEnd());
}

NcclWatchdog::Group::~Group() {
  if (open_) (void)ncclGroupEnd();
}

void NcclWatchdog::follow(size_t comm, cudaStream_t stream, std::string what) {
  const CurrentDevice current(devices_[comm]);
  cudaEvent_t done = nullptr;  // the watchdog's, destroyed once complete
  AX_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  AX_CUDA_CHECK(cudaEventRecord(done, stream));
  {
    const std::lock_guard lock(mutex_);
    pending_.push_back({done, comm, std::move(what), Clock::now()});
  }
  wake_.notify_all();
}

void NcclWatchdog::check() {
  if (failed_) {
    const std::lock_guard lock(mutex_);
    throw Error(failure_);
  }
}

// Aborting ends the collectives in flight, so the streams waiting for them (and the host
// waiting for those) go on. It waits a few seconds for a group being issued to finish first.
// A GPU hung inside a compute kernel cannot be freed that way: if the process has not ended
// a minute after the failure, it ends itself.
void NcclWatchdog::abort_all() {
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(60));
    std::fprintf(stderr, "alexnet: the run did not end within 60 s of the NCCL failure; exiting\n");
    std::fflush(stderr);
    std::_Exit(2);
  }).detach();
  std::unique_lock calls(issuing_, std::defer_lock);
  (void)calls.try_lock_for(std::chrono::seconds(5));
  for (ncclComm_t& c : comms_) {
    if (c != nullptr) (void)ncclCommAbort(c);
    c = nullptr;
  }
}

// Retires finished collectives; on an NCCL error or a timeout aborts every communicator and says
// why.
void NcclWatchdog::watch() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(20));
    if (failed_) continue;
    while (!pending_.empty()) {
      Pending& p = pending_.front();
      const cudaError_t status = [&] {
        const QuietCurrentDevice current(devices_[p.comm]);
        return cudaEventQuery(p.done);
      }();
      if (status == cudaSuccess) {
        (void)cudaEventDestroy(p.done);
        pending_.pop_front();
        continue;
      }
      if (status != cudaErrorNotReady) (void)cudaGetLastError();
      std::string why;
      for (size_t c = 0; c < comms_.size() && why.empty(); ++c) {
        ncclResult_t async = ncclSuccess;
        if (comms_[c] != nullptr && ncclCommGetAsyncError(comms_[c], &async) == ncclSuccess &&
            async != ncclSuccess && async != ncclInProgress)
          why = std::string("NCCL reports ") + ncclGetErrorString(async) +
                " on cuda:" + std::to_string(devices_[c]);
      }
      const double waited = std::chrono::duration<double>(Clock::now() - p.queued).count();
      if (why.empty() && status != cudaErrorNotReady)
        why = std::string("CUDA reports ") + cudaGetErrorString(status);
      if (why.empty() && waited > timeout_s_) {
        char text[200];
        std::snprintf(text, sizeof text, "not done after %.0f s (%s = %g): %s", waited,
                      timeout_key_.c_str(), timeout_s_, stalled_.c_str());
        why = text;
      }
      if (why.empty()) break;  // still running, within time
      // Say it first: the abort itself may take a while, or hang on a dead GPU.
      failure_ = p.what + ": " + why + "; the run is ended (the last checkpoint is intact)";
      failed_ = true;
      std::fprintf(stderr, "alexnet: %s\n", failure_.c_str());
      std::fflush(stderr);
      lock.unlock();  // the main thread may need mutex_ (follow()) to get out of its group
      abort_all();
      lock.lock();
      break;
    }
  }
}

}  // namespace alexnet::gpu
