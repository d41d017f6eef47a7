// The GPU backend as the engine sees it: plain C++ types only, so the engine
// (compiled by the host compiler) calls it without CUDA headers. The same
// source, cuda/backend.cu, is built twice: by nvcc into namespace cuda (when
// SEGLOSS_CUDA finds nvcc), and as C++ over the SIMT emulation into
// namespace simt (always; the tests run the CUDA code through it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../native/core/types.h"

namespace segloss {

#define SEGLOSS_GPU_BACKEND_API                                                                          \
  /* compiled / available / reason / device name; probes the driver once */                            \
  BackendInfo info();                                                                                  \
  /* Empty when the kernels run these tensors, else why not (more classes than they hold). */          \
  std::string unsupported(const Tensors& t);                                                           \
  /* stats [B][1 + K F] of host tensors, staged through pinned buffers; checks the input. */           \
  Status reduce(const Options& o, const Tensors& t, double* stats);                                    \
  /* every element of grad (host memory) from coef [B][K][NCOEF]. */                                   \
  Status gradient(const Options& o, const Tensors& t, const double* coef, float* grad);                \
  /* The same two on tensors already in device memory (grad too): no staging. */                        \
  Status reduce_device(const Options& o, const Tensors& t, double* stats);                             \
  Status gradient_device(const Options& o, const Tensors& t, const double* coef, float* grad);         \
  /* Device memory: allocate / free / copy for DeviceBuffer; the pool's size; release it. */           \
  Status device_alloc(size_t bytes, void** p);                                                         \
  void device_free(void* p);                                                                           \
  Status copy_to_device(void* dst, const void* src, size_t bytes);                                     \
  Status copy_to_host(void* dst, const void* src, size_t bytes);                                       \
  size_t pooled_bytes();                                                                               \
  void release_memory();

namespace simt {
SEGLOSS_GPU_BACKEND_API
}
#if defined(SEGLOSS_HAVE_CUDA) || defined(__CUDACC__)
namespace cuda {
SEGLOSS_GPU_BACKEND_API
}
#endif

}  // namespace segloss
