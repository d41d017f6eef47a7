// SEGLOSS_HD: a function the CPU passes and the CUDA kernels (nvcc, or the
// SIMT emulation) both call, always inlined.
#pragma once

#if defined(__CUDACC__)
#define SEGLOSS_HD __host__ __device__ __forceinline__
#else
#define SEGLOSS_HD inline __attribute__((always_inline))
#endif
