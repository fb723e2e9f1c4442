// AX_HD marks arithmetic that both the CUDA kernels and the CPU backend run.
#pragma once

#if defined(__CUDACC__)
#define AX_HD __host__ __device__ __forceinline__
#else
#define AX_HD inline
#endif
