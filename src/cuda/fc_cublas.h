// Fully-connected layers through cuBLAS, with exactly the semantics of the CPU ops in
// alexnet/cpu_ops.h: x (N, I), w (O, I), y (N, O), all row-major as in PyTorch's nn.Linear.
// Float only; every pointer is device memory; every call is queued on the Handles' stream and
// returns before the work is done. TF32 only where the Handles allow it (exact fp32 otherwise).
// `beta` follows cuBLAS: out = beta * out + result (0 overwrites, 1 accumulates; with
// beta == 0 the old contents are never read, so they may be garbage or NaN).
// n >= 1, in >= 1, out >= 1 (std::invalid_argument otherwise).
// For translation units built with the CUDA toolkit only.
#pragma once

#include "src/cuda/handles.h"

namespace alexnet::gpu {

// y (N, O) = beta*y + x w^T + b   (b may be null)
void fc_forward(Handles& h, int n, int in, int out, const float* x, const float* w, const float* b,
                float* y, float beta);
// dx (N, I) = beta*dx + dy w
void fc_backward_data(Handles& h, int n, int in, int out, const float* dy, const float* w,
                      float* dx, float beta);
// dw (O, I) = beta*dw + dy^T x;  db (O) = beta*db + sum_n dy  (db may be null)
void fc_backward_weights(Handles& h, int n, int in, int out, const float* x, const float* dy,
                         float* dw, float* db, float beta);

}  // namespace alexnet::gpu
