// Fully-connected layers as single cuBLAS calls over the whole batch.
//
// cuBLAS is column-major, and a row-major (R, C) buffer read column-major is its transpose
// (C, R) with leading dimension C. So each product is computed transposed: y = x w^T is
// y^T = w x^T, where w's buffer read column-major is w^T (I, O) (hence CUBLAS_OP_T) and x's is
// x^T (I, N). Every leading dimension is the row length of the row-major matrix.
#include "src/cuda/fc_cublas.h"

#include <stdexcept>
#include <string>

#include "alexnet/cuda_check.h"

namespace alexnet::gpu {
namespace {

void check_dims(int n, int in, int out) {
  if (n <= 0 || in <= 0 || out <= 0) {
    throw std::invalid_argument("cuBLAS fc: bad sizes n=" + std::to_string(n) +
                                " in=" + std::to_string(in) + " out=" + std::to_string(out));
  }
}

}  // namespace

// alpha and beta are host floats (cuBLAS's default pointer mode) for float data.
void fc_forward(Handles& h, int n, int in, int out, const float* x, const float* w, const float* b,
                float* y, float beta) {
  check_dims(n, in, out);
  const float one = 1.0f;
  // y^T (O, N) = beta*y^T + [w^T (I, O)]^T x^T (I, N)
  AX_CUDA_CHECK(cublasSgemm(h.cublas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, in, x, in,
                            &beta, y, out));
  if (b != nullptr) {
    // y^T (O, N) += b (O) 1^T (N): the rank-1 update adds b to every row of y.
    AX_CUDA_CHECK(cublasSger(h.cublas, out, n, &one, b, 1, h.ones(n), 1, y, out));
  }
}

void fc_backward_data(Handles& h, int n, int in, int out, const float* dy, const float* w,
                      float* dx, float beta) {
  check_dims(n, in, out);
  const float one = 1.0f;
  // dx^T (I, N) = beta*dx^T + w^T (I, O) dy^T (O, N)
  AX_CUDA_CHECK(cublasSgemm(h.cublas, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy, out,
                            &beta, dx, in));
}

void fc_backward_weights(Handles& h, int n, int in, int out, const float* x, const float* dy,
                         float* dw, float* db, float beta) {
  check_dims(n, in, out);
  const float one = 1.0f;
  // dw^T (I, O) = beta*dw^T + x^T (I, N) [dy^T (O, N)]^T
  AX_CUDA_CHECK(cublasSgemm(h.cublas, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy, out,
                            &beta, dw, in));
  if (db != nullptr) {
    // db (O) = beta*db + dy^T (O, N) 1 (N): the sum of dy over the batch.
    AX_CUDA_CHECK(
        cublasSgemv(h.cublas, CUBLAS_OP_N, out, n, &one, dy, out, h.ones(n), 1, &beta, db, 1));
  }
}

}  // namespace alexnet::gpu
