// Row-major GEMM overloaded on the element type, so templated ops call one name.
#pragma once

#include <cblas.h>

#include <algorithm>

namespace alexnet::cpu::detail {

// C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C. With beta == 0, BLAS does not read
// C, which is what lets the ops promise that NaN garbage in an output is harmless.
// Leading dimensions are clamped to 1 because CBLAS rejects 0 even when a dimension is empty.
inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                 int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, std::max(lda, 1), b,
              std::max(ldb, 1), beta, c, std::max(ldc, 1));
}

inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double* a,
                 int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, std::max(lda, 1), b,
              std::max(ldb, 1), beta, c, std::max(ldc, 1));
}

}  // namespace alexnet::cpu::detail
