// From per-(sample, class) statistics to losses and gradient coefficients:
// the small host-side step between the reduction pass and the gradient pass,
// shared by every backend.
#pragma once

#include <cstdint>
#include <vector>

#include "types.h"

namespace segloss {

// Statistics of one sample: [N, class 0's F fields, class 1's F fields, ...].
struct StatsLayout {
  int K = 0;  // classes (2 on a binary map)
  int F = 0;  // fields per class, fixed per loss
  int64_t stride() const { return 1 + static_cast<int64_t>(K) * F; }
};

int stats_fields(Loss loss);
int grad_coefficients(Loss loss);
StatsLayout stats_layout(const Options& o, int64_t C);

// Everything the gradient pass needs: per sample, K * NCOEF coefficients,
// with the upstream gradient, 'mean''s 1/B and 1/N already folded in.
struct Finalized {
  double loss = 0;
  std::vector<double> losses;  // one per group: 1 for 'pooled', else one per sample
  std::vector<double> coef;    // [coef_count][K][NCOEF], when asked for
};

// stats: [samples][stride]. Coefficients are produced for samples
// [coef_first, coef_first + coef_count) (coef_count = 0: loss only), scaled by
// grad_scale[0] (scalar) or grad_scale[b - coef_first] (per_sample_scale).
Finalized finalize(const Options& o, int64_t C, const double* stats, int64_t samples, int64_t coef_first,
                   int64_t coef_count, const double* grad_scale, bool per_sample_scale);

}  // namespace segloss
