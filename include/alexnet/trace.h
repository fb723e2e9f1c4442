// Named ranges on a profiler's timeline: NVTX in a CUDA build, so that Nsight Systems shows each
// training step and each layer's forward and backward pass beside the kernels they launched,
// without the benchmark's per-layer clocks (which synchronise the device). Nothing otherwise.
// NVTX costs a few nanoseconds per range when no profiler is attached.
#pragma once

#include <string>

namespace alexnet {

class TraceRange {
 public:
  // "name" or, with a suffix, "name suffix" ("conv1 backward"): the two are joined only when
  // NVTX is built in, so a CPU build allocates nothing per layer.
  explicit TraceRange(const char* name, const char* suffix = nullptr);
  explicit TraceRange(const std::string& name) : TraceRange(name.c_str()) {}
  ~TraceRange();
  TraceRange(const TraceRange&) = delete;
  TraceRange& operator=(const TraceRange&) = delete;
};

}  // namespace alexnet
