#include "engine.h"

#include <cstdlib>

#include "../cuda/backend.h"
#include "cpu/backend.h"

namespace segloss {

namespace {

// The passes of one backend.
struct Backend {
  Status (*reduce)(const Options&, const Tensors&, double*);
  Status (*gradient)(const Options&, const Tensors&, const double*, float*);
};

Status cpu_gradient(const Options& o, const Tensors& t, const double* coef, float* grad) {
  cpu::gradient(o, t, coef, grad);
  return Status();
}

const Backend kCpu{cpu::reduce, cpu_gradient};
#if defined(SEGLOSS_TEST_HOOKS)
const Backend kSimt{simt::reduce, simt::gradient};
#endif
#if defined(SEGLOSS_HAVE_CUDA)
const Backend kCuda{cuda::reduce, cuda::gradient};
#endif

// 'auto' keeps tensors in host memory on the CPU unless
// SEGLOSS_AUTO_CUDA_MIN_ELEMENTS names a size from which to stage them to
// CUDA. Measured by scripts/gpu-check.sh on an H200 machine (16 CPU threads):
// staged CUDA lost to the CPU at every size from 2^16 to 2^27 elements but
// one (2^17, within noise), by 1.6x to 2.2x from 2^19 up (README, CUDA): the
// staging copies and PCIe, not the kernels, bound it. Device-resident data
// (DeviceBuffer) needs no staging and always runs on CUDA.
constexpr int64_t kDefaultAutoCudaMinElements = INT64_MAX;

Status unusable(const std::string& why) {
  return Status::Device("Expected a usable CUDA device for device but received 'cuda': " + why);
}

#if !defined(SEGLOSS_TEST_HOOKS)
Status no_emulation() {
  return Status::Device(
      "Expected an addon built with the test hooks (cmake -DSEGLOSS_TEST_HOOKS=ON; a source checkout's npm install "
      "does this) for device but received 'cuda-emulated'");
}
#endif

// Device choice lives here alone: 'auto' runs where it can, an explicit
// 'cuda' that cannot run is an error carrying the reason.
Status resolve_device(const Request& r, const Backend** out) {
  *out = &kCpu;
  switch (r.device) {
    case Device::Cpu: return Status();
    case Device::CudaEmulated: {
#if defined(SEGLOSS_TEST_HOOKS)
      const std::string why = simt::unsupported(r.t);
      if (!why.empty()) return unusable(why);
      *out = &kSimt;
      return Status();
#else
      return no_emulation();
#endif
    }
    case Device::Cuda: {
#if defined(SEGLOSS_HAVE_CUDA)
      const BackendInfo b = cuda::info();
      if (!b.available) return unusable(b.reason);
      const std::string why = cuda::unsupported(r.t);
      if (!why.empty()) return unusable(why);
      *out = &kCuda;
      return Status();
#else
      return unusable(backend_info()[1].reason);
#endif
    }
    case Device::Auto: {
#if defined(SEGLOSS_HAVE_CUDA)
      if (r.t.B * r.t.V * r.t.C >= auto_cuda_min_elements() && cuda::info().available &&
          cuda::unsupported(r.t).empty())
        *out = &kCuda;
#endif
      return Status();
    }
  }
  return Status();
}

}  // namespace

std::vector<BackendInfo> backend_info() {
  BackendInfo cpu_info{"cpu", true, true, "", ""};
#if defined(SEGLOSS_HAVE_CUDA)
  BackendInfo cuda_info = cuda::info();
#else
  BackendInfo cuda_info{"cuda", false, false,
                        "this build of segloss was compiled without CUDA (nvcc was not found at build time, "
                        "or SEGLOSS_CUDA=OFF)",
                        ""};
#endif
  return {cpu_info, cuda_info};
}

int64_t auto_cuda_min_elements() {
  static const int64_t v = [] {
    const char* e = std::getenv("SEGLOSS_AUTO_CUDA_MIN_ELEMENTS");
    if (e && *e) {
      char* end = nullptr;
      const long long n = std::strtoll(e, &end, 10);
      if (end && *end == 0 && n >= 0) return static_cast<int64_t>(n);
    }
    return kDefaultAutoCudaMinElements;
  }();
  return v;
}

void release_device_memory() {
#if defined(SEGLOSS_TEST_HOOKS)
  simt::release_memory();
#endif
#if defined(SEGLOSS_HAVE_CUDA)
  if (cuda::info().available) cuda::release_memory();
#endif
}

namespace {

// The GPU backend (real or emulated) that serves device memory of `d`.
struct DeviceApi {
  Status (*reduce)(const Options&, const Tensors&, double*);
  Status (*gradient)(const Options&, const Tensors&, const double*, float*);
  Status (*alloc)(size_t, void**);
  void (*free)(void*);
  Status (*upload)(void*, const void*, size_t);
  Status (*download)(void*, const void*, size_t);
  std::string (*unsupported)(const Tensors&);
};

Status device_api(Device d, const DeviceApi** out) {
  if (d == Device::CudaEmulated) {
#if defined(SEGLOSS_TEST_HOOKS)
    static const DeviceApi simt_api{simt::reduce_device, simt::gradient_device, simt::device_alloc, simt::device_free,
                                    simt::copy_to_device, simt::copy_to_host, simt::unsupported};
    *out = &simt_api;
    return Status();
#else
    return no_emulation();
#endif
  }
#if defined(SEGLOSS_HAVE_CUDA)
  static const DeviceApi cuda_api{cuda::reduce_device, cuda::gradient_device, cuda::device_alloc, cuda::device_free,
                                  cuda::copy_to_device, cuda::copy_to_host, cuda::unsupported};
  const BackendInfo b = cuda::info();
  if (!b.available) return unusable(b.reason);
  *out = &cuda_api;
  return Status();
#else
  return unusable(backend_info()[1].reason);
#endif
}

}  // namespace

Status compute_on_device(const Request& r, const GradScale& gs, float* grad, Finalized* out) {
  const DeviceApi* api;
  Status s = device_api(r.device, &api);
  if (!s.ok()) return s;
  const std::string why = api->unsupported(r.t);
  if (!why.empty()) return unusable(why);
  std::vector<double> stats(static_cast<size_t>(r.t.B) * stats_layout(r.opt, r.t.C).stride(), 0.0);
  s = api->reduce(r.opt, r.t, stats.data());
  if (!s.ok()) return s;
  *out = finalize(r.opt, r.t.C, stats.data(), r.t.B, 0, grad ? r.t.B : 0, gs.values.data(), gs.per_sample);
  if (grad) return api->gradient(r.opt, r.t, out->coef.data(), grad);
  return Status();
}

Status device_alloc(Device d, size_t bytes, void** p) {
  const DeviceApi* api;
  Status s = device_api(d, &api);
  return s.ok() ? api->alloc(bytes, p) : s;
}
Status device_free(Device d, void* p) {
  const DeviceApi* api;
  Status s = device_api(d, &api);
  if (s.ok()) api->free(p);
  return s;
}
Status device_upload(Device d, void* dst, const void* src, size_t bytes) {
  const DeviceApi* api;
  Status s = device_api(d, &api);
  return s.ok() ? api->upload(dst, src, bytes) : s;
}
Status device_download(Device d, void* dst, const void* src, size_t bytes) {
  const DeviceApi* api;
  Status s = device_api(d, &api);
  return s.ok() ? api->download(dst, src, bytes) : s;
}

Status compute_stats(const Request& r, std::vector<double>* stats) {
  const Backend* be;
  Status s = resolve_device(r, &be);
  if (!s.ok()) return s;
  stats->assign(static_cast<size_t>(r.t.B) * stats_layout(r.opt, r.t.C).stride(), 0.0);
  return be->reduce(r.opt, r.t, stats->data());
}

Status compute(const Request& r, const GradScale& gs, float* grad, Finalized* out) {
  const Backend* be;
  Status s = resolve_device(r, &be);
  if (!s.ok()) return s;
  std::vector<double> stats(static_cast<size_t>(r.t.B) * stats_layout(r.opt, r.t.C).stride(), 0.0);
  s = be->reduce(r.opt, r.t, stats.data());
  if (!s.ok()) return s;
  *out = finalize(r.opt, r.t.C, stats.data(), r.t.B, 0, grad ? r.t.B : 0, gs.values.data(), gs.per_sample);
  if (grad) return be->gradient(r.opt, r.t, out->coef.data(), grad);
  return Status();
}

Status gradient_from_stats(const Request& r, const double* stats, int64_t samples, int64_t first,
                           const GradScale& gs, float* grad, bool checked) {
  const Backend* be;
  Status s = resolve_device(r, &be);
  if (!s.ok()) return s;
  // Nothing may be written before the input is known to be valid.
  if (!checked) {
    s = cpu::check(r.opt, r.t);
    if (!s.ok()) return s;
  }
  Finalized f = finalize(r.opt, r.t.C, stats, samples, first, r.t.B, gs.values.data(), gs.per_sample);
  return be->gradient(r.opt, r.t, f.coef.data(), grad);
}

}  // namespace segloss
