// The gradient sum over the ranks' GPUs (src/comm/gradient_sum.h) on NCCL. Plain C++ (no CUDA
// header); defined only in a CUDA build.
#pragma once

#include <memory>
#include <string>

#include "src/comm/gradient_sum.h"

namespace alexnet::gpu {

// `count` new NCCL unique ids, as one string of bytes (rank 0 makes them; every rank is given
// them).
std::string nccl_unique_ids(int count);

// The sum for `net` (every Param on a GPU) as rank `rank` of `ranks`, one communicator per
// distinct GPU of the net made from the matching id of `ids` (nccl_unique_ids of that many).
// Every rank calls it with the same ids (in one process, from one thread per rank). When the
// communicators are not set up within `timeout_s`, the process ends with a line naming `who`.
std::unique_ptr<GradientSum> make_nccl_gradient_sum(Net& net, int ranks, int rank,
                                                    const std::string& ids, double timeout_s,
                                                    const std::string& who);

}  // namespace alexnet::gpu
