// The one place that picks a backend and sequences the passes:
// reduce (with input checks) -> finalize -> gradient.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "finalize.h"
#include "types.h"

namespace segloss {

enum class Device : int { Auto = 0, Cpu = 1, Cuda = 2 };

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

// What backends() reports.
struct BackendInfo {
  std::string name;
  bool compiled = false;
  bool available = false;
  std::string reason;  // why not available
};
std::vector<BackendInfo> backend_info();

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
