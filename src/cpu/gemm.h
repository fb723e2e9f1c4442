// Row-major GEMM overloaded on the element type, so templated ops call one name.
//
// BLAS runs single-threaded, in the calling thread: OpenBLAS's own threads busy-wait for a
// while after every call, and on a small machine that starves the threads the other ops run
// on (the per-image convolutions, LRN, pooling), which measured slower than no BLAS threads at
// all. The ops split their work over the cores themselves: the convolutions by image, the
// fully-connected layers by output columns (gemm_parallel).
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cstdint>

#include "kernels/for_each.h"

namespace alexnet::cpu::detail {

inline void use_serial_blas() {
  static const bool done = (openblas_set_num_threads(1), true);
  (void)done;
}

// C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C. With beta == 0, BLAS does not read
// C, which is what lets the ops promise that NaN garbage in an output is harmless.
// Leading dimensions are clamped to 1 because CBLAS rejects 0 even when a dimension is empty.
inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                 int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  use_serial_blas();
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, std::max(lda, 1), b,
              std::max(ldb, 1), beta, c, std::max(ldc, 1));
}

inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double* a,
                 int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  use_serial_blas();
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, std::max(lda, 1), b,
              std::max(ldb, 1), beta, c, std::max(ldc, 1));
}

// The same GEMM with C's columns split into blocks over the cores: every element of C is still
// one dot product over all of k, so nothing is summed across threads.
template <class T>
void gemm_parallel(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda,
                   const T* b, int ldb, T beta, T* c, int ldc) {
  constexpr int kMinColumns = 64;  // narrower blocks cost BLAS more than the threads save
  const int64_t work = static_cast<int64_t>(m) * n * k;
  const int blocks =
      static_cast<int>(std::clamp<int64_t>(n / kMinColumns, 1, kernels::core_count()));
  if (blocks == 1 || work < kernels::kMinElementsPerThread * 8) {
    gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  kernels::for_each_index(
      blocks,
      [&](int64_t block) {
        const int j0 = static_cast<int>(static_cast<int64_t>(n) * block / blocks);
        const int j1 = static_cast<int>(static_cast<int64_t>(n) * (block + 1) / blocks);
        // Columns j0..j1 of op(B): B's columns, or its rows when it is stored transposed.
        const T* b_block = b + (trans_b ? static_cast<int64_t>(j0) * ldb : j0);
        gemm(trans_a, trans_b, m, j1 - j0, k, alpha, a, lda, b_block, ldb, beta, c + j0, ldc);
      },
      1);
}

}  // namespace alexnet::cpu::detail
