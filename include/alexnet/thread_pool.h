// The one pool of threads behind the CPU backend and the data code: oneTBB's, started once and
// kept for the life of the process (src/cpu/thread_pool.cpp).
//
// Every index is handed to exactly one call, and no caller sums across calls, so results do not
// depend on how many threads there are. OpenBLAS stays single-threaded inside these calls
// (src/cpu/gemm.h): the pool is the only source of parallelism.
#pragma once

#include <cstdint>
#include <functional>

namespace alexnet {

// The hardware threads the pool uses.
int64_t core_count();

// body(begin, end) for `chunks` contiguous ranges that split [0, n) as evenly as integers allow
// (chunk k is [n*k/chunks, n*(k+1)/chunks)), one chunk per task, statically partitioned over
// the pool. Returns when all are done; an exception thrown by a chunk is rethrown here.
void parallel_chunks(int64_t n, int64_t chunks, const std::function<void(int64_t, int64_t)>& body);

// f(i) for every i in [0, n) on at most `threads` threads, the indices dealt out as threads come
// free (decoding images of different sizes balances itself). Returns when all are done; an
// exception thrown by f is rethrown here.
void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& f);

}  // namespace alexnet
