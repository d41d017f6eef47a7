#include "engine.h"

#include "../cpu/backend.h"

namespace segloss {

std::vector<BackendInfo> backend_info() {
  return {
      {"cpu", true, true, ""},
      {"cuda", false, false, "this build of segloss was compiled without CUDA (nvcc was not found at build time)"},
  };
}

namespace {

// Device choice lives here alone: 'auto' runs where it can, an explicit
// 'cuda' that cannot run is an error carrying the reason.
Status resolve_device(Device d) {
  if (d == Device::Cuda) {
    for (const auto& b : backend_info())
      if (b.name == "cuda" && !b.available)
        return Status::Device("Expected a usable CUDA device for device but received 'cuda': " + b.reason);
  }
  return Status();
}

}  // namespace

Status compute_stats(const Request& r, std::vector<double>* stats) {
  Status s = resolve_device(r.device);
  if (!s.ok()) return s;
  stats->assign(static_cast<size_t>(r.t.B) * stats_layout(r.opt, r.t.C).stride(), 0.0);
  return cpu::reduce(r.opt, r.t, stats->data());
}

Status compute(const Request& r, const GradScale& gs, float* grad, Finalized* out) {
  std::vector<double> stats;
  Status s = compute_stats(r, &stats);
  if (!s.ok()) return s;
  *out = finalize(r.opt, r.t.C, stats.data(), r.t.B, 0, grad ? r.t.B : 0, gs.values.data(), gs.per_sample);
  if (grad) cpu::gradient(r.opt, r.t, out->coef.data(), grad);
  return Status();
}

Status gradient_from_stats(const Request& r, const double* stats, int64_t samples, int64_t first,
                           const GradScale& gs, float* grad, bool checked) {
  Status s = resolve_device(r.device);
  if (!s.ok()) return s;
  // Nothing may be written before the input is known to be valid.
  if (!checked) {
    s = cpu::check(r.opt, r.t);
    if (!s.ok()) return s;
  }
  Finalized f = finalize(r.opt, r.t.C, stats, samples, first, r.t.B, gs.values.data(), gs.per_sample);
  cpu::gradient(r.opt, r.t, f.coef.data(), grad);
  return Status();
}

}  // namespace segloss
