// The composition root: the one place that knows every backend, picks one
// and sequences the passes: reduce (with input checks) -> finalize ->
// gradient. It sits above core/ (which knows no backend), cpu/ and cuda/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/finalize.h"
#include "core/types.h"

namespace segloss {

// CudaEmulated: the CUDA kernels run on the CPU through the SIMT emulation
// (cuda/simt.h); for tests, not part of the public device option, and only
// in an addon built with SEGLOSS_TEST_HOOKS.
enum class Device : int { Auto = 0, Cpu = 1, Cuda = 2, CudaEmulated = 3 };
namespace names {
inline constexpr const char* device[] = {"auto", "cpu", "cuda", "cuda-emulated"};
}  // namespace names

struct Request {
  Options opt;
  Tensors t;
  Device device = Device::Auto;
};

// Upstream gradient: one value, or one per sample of the call.
struct GradScale {
  std::vector<double> values{1.0};
  bool per_sample = false;
};

std::vector<BackendInfo> backend_info();

// Elements (B V C) from which 'auto' runs host tensors on CUDA, when a
// device is available: SEGLOSS_AUTO_CUDA_MIN_ELEMENTS, else the default.
int64_t auto_cuda_min_elements();

// Frees the CUDA backend's pooled device memory and pinned staging buffers.
void release_device_memory();

// ------------------------------------------------ device-resident tensors
// r.t's pointers (and grad) are device memory of r.device (Cuda, or
// CudaEmulated whose "device memory" is host memory). No staging, no copies
// but the statistics (and the coefficients back).
Status compute_on_device(const Request& r, const GradScale& gs, float* grad, Finalized* out);

// Device memory for DeviceBuffer, on Cuda or CudaEmulated.
Status device_alloc(Device d, size_t bytes, void** p);
Status device_free(Device d, void* p);
Status device_upload(Device d, void* dst, const void* src, size_t bytes);
Status device_download(Device d, void* dst, const void* src, size_t bytes);

// Loss (and, when grad != nullptr, the gradient written to grad).
Status compute(const Request& r, const GradScale& gs, float* grad, Finalized* out);
// Per-sample statistics [B][stride] of the call's tensors.
Status compute_stats(const Request& r, std::vector<double>* stats);
// The gradient of the call's samples, which are samples [first, first + B) of
// `stats` ([samples][stride], merged over every chunk of the full input).
// `checked`: the caller's tensors already passed the checks of a reduction
// pass over them (the tfjs backward kernel), so the check pass is skipped.
Status gradient_from_stats(const Request& r, const double* stats, int64_t samples, int64_t first,
                           const GradScale& gs, float* grad, bool checked = false);

}  // namespace segloss
