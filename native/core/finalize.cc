// Loss values and gradient coefficients from statistics (docs/losses.md section 2).
// Per group: `g` points at [N, K x F fields]; `k` (optional) receives K x NCOEF
// unscaled coefficients of the per-voxel gradient in core/voxel_math.h.
#include "finalize.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "voxel_math.h"

namespace segloss {
namespace {

bool counted(const Options& o, int l) { return o.include_background || l != 0; }

// Generalized Dice: w_l = 1/G^2 | 1/G | 1; absent classes take the largest
// finite weight of the group (all 0 if none is finite).
// loss = 1 - (2 sum w I + sNr) / (sum w max(S, floor) + sDr).
double generalized_dice(const Options& o, const double* g, int K, double* k) {
  constexpr int F = vm::GeneralizedDiceMath::F;
  // 1/G overflows to inf for G = 0 (and 1/G^2 for G below ~1e-154): every
  // non-finite weight becomes the largest finite one, or 0 if there is none.
  std::vector<double> w(K, 0.0);
  double wmax = -1;
  for (int l = 0; l < K; ++l) {
    if (!counted(o, l)) continue;
    const double G = g[1 + l * F];
    w[l] = o.weighting == Weighting::Uniform ? 1.0 : o.weighting == Weighting::Square ? 1.0 / (G * G) : 1.0 / G;
    if (std::isfinite(w[l])) wmax = std::max(wmax, w[l]);
  }
  for (int l = 0; l < K; ++l)
    if (counted(o, l) && !std::isfinite(w[l])) w[l] = wmax >= 0 ? wmax : 0.0;
  double num = o.smooth_num, den = o.smooth_den;
  for (int l = 0; l < K; ++l) {
    if (!counted(o, l)) continue;
    const double S = g[1 + l * F + 0] + g[1 + l * F + 1];
    num += 2.0 * w[l] * g[1 + l * F + 2];
    den += w[l] * std::max(S, o.floor);
  }
  if (den == 0) return 0.0;
  if (k) {
    for (int l = 0; l < K; ++l) {
      if (!counted(o, l)) continue;
      const double S = g[1 + l * F + 0] + g[1 + l * F + 1];
      k[l * 2 + 0] = -2.0 * w[l] / den;
      // At S == floor the derivative of max(S, floor) is taken as 1 (NiftyNet).
      k[l * 2 + 1] = S >= o.floor ? w[l] * num / (den * den) : 0.0;
    }
  }
  return 1.0 - num / den;
}

// Soft Dice: d_l = (2 I + sNr) / (S + sDr), or Jaccard (I + sNr) / (S - I + sDr);
// loss = 1 - weighted mean of d_l over L. A zero denominator gives d_l = 1.
double dice(const Options& o, const double* g, int K, double* k) {
  constexpr int F = vm::DiceMath::F;
  double csum = 0;
  for (int l = 0; l < K; ++l)
    if (counted(o, l)) csum += o.class_weights.empty() ? 1.0 : o.class_weights[l];
  double acc = 0;
  for (int l = 0; l < K; ++l) {
    if (!counted(o, l)) continue;
    const double* s = g + 1 + l * F;
    const double G = s[0], P = s[1], I = s[2];
    const double S = o.squared ? s[3] + s[4] : P + G;
    const double num = (o.jaccard ? I : 2.0 * I) + o.smooth_num;
    const double den = (o.jaccard ? S - I : S) + o.smooth_den;
    const double c = (o.class_weights.empty() ? 1.0 : o.class_weights[l]) / csum;
    if (den == 0) {
      acc += c;
      continue;
    }
    acc += c * num / den;
    if (k) {
      // dd/dp = (A r + (-num) s') / den^2 with s' = 1 or 2p;
      // A = 2 den (dice) or den + num (jaccard); dL/dp = -c dd/dp.
      const double d2 = den * den;
      const double A = o.jaccard ? den + num : 2.0 * den;
      k[l * 3 + 0] = -c * A / d2;
      k[l * 3 + 1] = o.squared ? 0.0 : c * num / d2;
      k[l * 3 + 2] = o.squared ? 2.0 * c * num / d2 : 0.0;
    }
  }
  return 1.0 - acc;
}

// Sensitivity-specificity: SS_l = lambda E1 / (G + eps) + (1 - lambda) E0 / (N - G + eps),
// mean (or sum) over L.
double sensitivity_specificity(const Options& o, const double* g, int K, double* k) {
  constexpr int F = vm::SensitivitySpecificityMath::F;
  const double N = g[0];
  int nl = 0;
  for (int l = 0; l < K; ++l) nl += counted(o, l);
  const double scale = o.class_sum ? 1.0 : 1.0 / nl;
  double acc = 0;
  for (int l = 0; l < K; ++l) {
    if (!counted(o, l)) continue;
    const double* s = g + 1 + l * F;
    const double sens = s[0] + o.epsilon, spec = N - s[0] + o.epsilon;
    acc += o.lambda * s[1] / sens + (1.0 - o.lambda) * s[2] / spec;
    if (k) {
      k[l * 2 + 0] = -2.0 * o.lambda / sens * scale;
      k[l * 2 + 1] = -2.0 * (1.0 - o.lambda) / spec * scale;
    }
  }
  return acc * scale;
}

// Weighted cross-entropy: loss = -(1/N) sum_{l in L} (w_l A_l [+ A0_l multi-label]).
double weighted_cross_entropy(const Options& o, const double* g, int K, bool multilabel, double* k) {
  constexpr int F = vm::WeightedCrossEntropyMath::F;
  const double N = g[0];
  double acc = 0;
  for (int l = 0; l < K; ++l) {
    if (!counted(o, l)) continue;
    const double* s = g + 1 + l * F;
    double w;
    if (o.wce_weights == WceWeights::Array) {
      w = o.class_weights[l];
    } else if (l == 0 && !multilabel) {
      w = 1.0;
    } else {
      // inverse frequency from the reference (G) or, as printed in the paper,
      // from the predictions (P); no gradient flows through either.
      const double f = o.wce_weights == WceWeights::Paper ? s[1] : s[0];
      w = f > 0 ? (N - f) / f : 0.0;
    }
    acc += w * s[2] + (multilabel ? s[3] : 0.0);
    if (k) {
      k[l * 2 + 0] = w / N;
      k[l * 2 + 1] = 1.0 / N;
    }
  }
  return -acc / N;
}

double group_loss(const Options& o, const double* g, int K, bool multilabel, double* k) {
  if (g[0] == 0) return 0.0;  // no kept voxel: loss 0, gradient 0
  switch (o.loss) {
    case Loss::GeneralizedDice: return generalized_dice(o, g, K, k);
    case Loss::Dice: return dice(o, g, K, k);
    case Loss::SensitivitySpecificity: return sensitivity_specificity(o, g, K, k);
    case Loss::WeightedCrossEntropy: return weighted_cross_entropy(o, g, K, multilabel, k);
  }
  return 0.0;
}

}  // namespace

int stats_fields(Loss loss) { return loss_traits(loss).fields; }

int grad_coefficients(Loss loss) { return loss_traits(loss).coefficients; }

StatsLayout stats_layout(const Options& o, int64_t C) {
  return StatsLayout{static_cast<int>(num_classes(C)), stats_fields(o.loss)};
}

Finalized finalize(const Options& o, int64_t C, const double* stats, int64_t samples, int64_t coef_first,
                   int64_t coef_count, const double* grad_scale, bool per_sample_scale) {
  const StatsLayout lay = stats_layout(o, C);
  const int K = lay.K;
  const int nc = grad_coefficients(o.loss);
  const int64_t stride = lay.stride();
  const bool ml = is_multilabel(o, C);
  Finalized out;
  std::vector<double> kgroup(static_cast<size_t>(K) * nc);
  if (coef_count > 0) out.coef.assign(static_cast<size_t>(coef_count) * K * nc, 0.0);
  auto scale_of = [&](int64_t b) {
    double s = per_sample_scale ? grad_scale[b - coef_first] : grad_scale[0];
    if (o.reduction == Reduction::Mean) s /= static_cast<double>(samples);
    return s;
  };
  auto emit = [&](int64_t b, const std::vector<double>& kg) {
    const double s = scale_of(b);
    double* dst = out.coef.data() + (b - coef_first) * K * nc;
    for (size_t i = 0; i < kg.size(); ++i) dst[i] = kg[i] * s;
  };

  if (o.reduction == Reduction::Pooled) {
    // One group: the samples' statistics summed in sample order (fixed, so
    // the result does not depend on how the batch was split).
    std::vector<double> g(stride, 0.0);
    for (int64_t b = 0; b < samples; ++b)
      for (int64_t i = 0; i < stride; ++i) g[i] += stats[b * stride + i];
    std::fill(kgroup.begin(), kgroup.end(), 0.0);
    out.loss = group_loss(o, g.data(), K, ml, coef_count > 0 ? kgroup.data() : nullptr);
    out.losses = {out.loss};
    for (int64_t b = coef_first; b < coef_first + coef_count; ++b) emit(b, kgroup);
    return out;
  }
  out.losses.resize(samples);
  double total = 0;
  for (int64_t b = 0; b < samples; ++b) {
    const bool want = b >= coef_first && b < coef_first + coef_count;
    std::fill(kgroup.begin(), kgroup.end(), 0.0);
    out.losses[b] = group_loss(o, stats + b * stride, K, ml, want ? kgroup.data() : nullptr);
    total += out.losses[b];
    if (want) emit(b, kgroup);
  }
  out.loss = o.reduction == Reduction::Sum ? total : total / static_cast<double>(samples);
  return out;
}

}  // namespace segloss
