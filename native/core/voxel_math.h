// Per-voxel math of docs/losses.md, written once for the CPU loops and the CUDA
// kernels (hence SEGLOSS_HD). Nothing else computes these formulas; the
// float64 TypeScript reference (lib/reference) is the independent check.
//
// A voxel is turned into K class probabilities p and K targets r (K = C, or
// 2 on a binary map where class 0 is 1 - channel), both in double. Each loss
// then supplies
//   accumulate: the voxel's share of the per-(sample, class) statistics
//               (F doubles per class), and
//   grad_p:     dL/dp_l from the statistics-derived coefficients,
// and the shared chain rule turns dL/dp into dL/d(prediction as given).
//
// The value type T is double (one voxel, on the CPU and the GPU) or, in the
// CPU passes, a vector of doubles holding several voxels: the same formulas
// then run on several voxels at once. Conditions are masks (bool, or a
// vector of all-ones / all-zeros lanes) combined with sel / mnot. The vector
// overloads of those helpers and of exp / log are CPU code and live in
// cpu/simd_math.h, which the passes include before this header.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "hd.h"
#include "loss_traits.h"
#include "types.h"

// Two flavours of this header, told apart by an inline namespace so that the
// CPU build and the kernels (nvcc, or the SIMT emulation) can be linked into
// one addon without two different bodies sharing one symbol:
//   host:   every function in float64, exp / log from libm (host_<isa> in
//           the CPU passes, one copy per instruction set: cpu/isa.h);
//   device: the same, except that the scalar exp, log and log1p take their
//           argument in float32 and return the float32 result widened
//           (see exp_lanes below for why, and why that keeps the contract).
#if defined(__CUDACC__) || defined(SEGLOSS_SIMT_EMULATE)
#define SEGLOSS_DEVICE_MATH 1
#else
#define SEGLOSS_DEVICE_MATH 0
#endif

namespace segloss {
namespace vm {
#if SEGLOSS_DEVICE_MATH
inline namespace device {
#elif defined(SEGLOSS_VM_HOST_NS)
inline namespace SEGLOSS_VM_HOST_NS {  // the CPU passes' copy for one instruction set (cpu/isa.h)
#else
inline namespace host {
#endif

// Probabilities below this are clamped in WCE with activation 'none'
// (docs/losses.md: q = max(p, 1e-7)); its gradient is 0 there.
constexpr double kProbClamp = 1e-7;

// Voxel-independent facts the per-voxel functions branch on. Branches on
// these are uniform across a launch, so they cost nothing on the GPU and are
// predicted on the CPU.
struct Ctx {
  Activation act;
  int64_t C;
  int K;
  bool binary;      // C == 1: class 1 is the channel, class 0 its complement
  bool multilabel;  // sigmoid with C >= 2
  bool squared;     // dice: S = sum p^2 + sum r^2
  bool has_ignore;
  double ignore;
  bool one_hot;     // sparse targets: r is one-hot (all zero where ignored or bad)
};

// ------------------------------------------------------ lanes and masks
SEGLOSS_HD double sel(bool m, double a, double b) { return m ? a : b; }
SEGLOSS_HD bool mnot(bool m) { return !m; }
SEGLOSS_HD double zero_like(double) { return 0.0; }
SEGLOSS_HD bool is_integral(double v) { return floor(v) == v; }
// A mask known at compile time to keep every lane (no mask, no ignoreIndex).
struct AllLanes {};
template <class T>
SEGLOSS_HD T sel(AllLanes, T a, T) { return a; }

#if SEGLOSS_DEVICE_MATH
// Device flavour: e^v, log v and log(1 + v) through their float32 versions.
// A float64 exp or log is some forty float64 instructions on a GPU, and the
// passes run two to eight of them per voxel: at float64 rates (1/2 of
// float32 on sm_80 / sm_90, 1/64 on consumer GPUs) that, not memory, bounded
// the kernels (measured on an H200: README, CUDA). The float32 versions (a
// few instructions, error within 2 ulp) only perturb each term e_l by a
// relative 1e-7 or so (every exp argument is <= 0: x - max, -|z|). What
// follows stays float64: p_l = e_l / sum_k e_k, so the p_l still sum to 1 to
// float64 rounding and 1 - p_l, g_l - sum_k p_k g_k or r - p of a confident
// voxel cancel float64 numbers, not float32 ones. Sums, divisions, chain
// rule and statistics are float64 as on the CPU.
// (exp: rounding v to float32 would cost a relative |v| 6e-8 of e^v, 5e-7 at
// v = -8; e^v = e^f (1 + (v - f)) with f = float32(v) takes that back for
// one float64 subtraction and one fused multiply-add. v is clamped at -104
// before both, so that a difference of two finite logits beyond float32's
// range, or -inf, gives 0 rather than -inf times 0.)
SEGLOSS_HD double exp_lanes(double v) {
  const double w = v < -104.0 ? -104.0 : v;
  const float f = static_cast<float>(w);
  return static_cast<double>(expf(f)) * (1.0 + (w - static_cast<double>(f)));
}
// (log: for v near 1 -- a confident class's q = 1 - p, or log-softmax's
// sum = 1 + the other terms -- rounding v to float32 would lose log v
// entirely; v - 1 is exact there, and log1p of it keeps the relative
// precision.)
SEGLOSS_HD double log_lanes(double v) {
  return static_cast<double>(v > 0.5 ? log1pf(static_cast<float>(v - 1.0)) : logf(static_cast<float>(v)));
}
SEGLOSS_HD double log1p_lanes(double v) { return static_cast<double>(log1pf(static_cast<float>(v))); }
#else
SEGLOSS_HD double exp_lanes(double v) { return exp(v); }
SEGLOSS_HD double log_lanes(double v) { return log(v); }
SEGLOSS_HD double log1p_lanes(double v) { return log1p(v); }
#endif
SEGLOSS_HD double max_lanes(double a, double b) { return a > b ? a : b; }
SEGLOSS_HD double abs_lanes(double v) { return fabs(v); }

// log(1 + e^y) without overflow or loss of precision for large |y|.
template <class T>
SEGLOSS_HD T softplus(T y) {
  return max_lanes(y, zero_like(y)) + log1p_lanes(exp_lanes(-abs_lanes(y)));
}

// Number of classes, fixed at compile time when KC > 0.
#define SEGLOSS_K(KC, ctx) ((KC) > 0 ? (KC) : (ctx).K)
// A binary map (two classes from one channel). KC = 1 is one class of
// several, as the CUDA class-lane kernels call these functions: never binary.
#define SEGLOSS_BINARY(KC, ctx) ((KC) != 1 && (ctx).binary)


// ---------------------------------------------------------------- targets
// Sparse label value(s) v -> one-hot r[K]. *ignored: v is ignoreIndex;
// *bad: v breaks docs/losses.md section 5 (outside [0, K-1] -- {0, 1} on a binary
// map -- or, when `integral` is checked, not an integer). The range test also
// rejects NaN. r is zero for ignored and bad values.
// The checks alone, for K classes: returns v where it names a class and is
// not ignoreIndex, else -1 (which matches no class).
template <class T, class M>
SEGLOSS_HD T label_class(const Ctx& c, int K, T v, bool check_integral, M* ignored, M* bad) {
  const T zero = zero_like(v);
  const M ign = c.has_ignore ? (v == c.ignore) : (v != v) & (v == v);  // all false
  M ok = (v >= 0.0) & (v < static_cast<double>(K));
  if (check_integral) ok = ok & is_integral(sel(ok, v, zero));
  *ignored = ign;
  *bad = mnot(ok) & mnot(ign);
  return sel(ok & mnot(ign), v, zero - 1.0);
}

template <int KC, class T, class M>
SEGLOSS_HD void decode_label(const Ctx& c, T v, bool check_integral, T* r, M* ignored, M* bad) {
  const int K = SEGLOSS_K(KC, c);
  const T zero = zero_like(v);
  const T label = label_class(c, K, v, check_integral, ignored, bad);
  for (int l = 0; l < K; ++l) r[l] = sel(label == static_cast<double>(l), zero + 1.0, zero);
}

// Dense target value(s): t[K] per class, or t[0] = r1 on a binary map.
template <int KC, class T, class M>
SEGLOSS_HD void decode_dense(const Ctx& c, const T* t, T* r, M* ignored, M* bad) {
  const int K = SEGLOSS_K(KC, c);
  const T zero = zero_like(t[0]);
  if (SEGLOSS_BINARY(KC, c)) {
    const M ign = c.has_ignore ? (t[0] == c.ignore) : (t[0] != t[0]) & (t[0] == t[0]);
    const M ok = (t[0] >= 0.0) & (t[0] <= 1.0);
    const T r1 = sel(ok, t[0], zero);
    r[0] = 1.0 - r1;
    r[1] = r1;
    *ignored = ign;
    *bad = mnot(ok) & mnot(ign);
    return;
  }
  M ok = (t[0] >= 0.0) & (t[0] <= 1.0);
  for (int l = 0; l < K; ++l) {
    const M in = (t[l] >= 0.0) & (t[l] <= 1.0);
    ok = ok & in;
    r[l] = sel(in, t[l], zero);
  }
  *ignored = ok & mnot(ok);  // dense targets have no ignore value
  *bad = mnot(ok);
}

// Reads voxel i's target into r[K]. Returns 0 when the voxel is kept, 1 when
// it is ignored (ignoreIndex), 2 when the value breaks docs/losses.md section 5.
template <int KC, TargetKind TK>
SEGLOSS_HD int read_target(const Ctx& c, const void* target, int64_t i, double* r) {
  bool ignored, bad;
  if (TK == TargetKind::Dense) {
    const float* t = static_cast<const float*>(target) + (c.binary ? i : i * c.C);
    double tv[KC > 0 ? KC : 1];
    double* tp = tv;
    if (KC == 0) {
      // any K: decode in place (r doubles as the input)
      for (int l = 0; l < (c.binary ? 1 : c.K); ++l) r[l] = t[l];
      tp = r;
    } else {
      for (int l = 0; l < (c.binary ? 1 : SEGLOSS_K(KC, c)); ++l) tv[l] = t[l];
    }
    decode_dense<KC>(c, tp, r, &ignored, &bad);
  } else {
    double v;
    if (TK == TargetKind::U8) v = static_cast<const uint8_t*>(target)[i];
    else if (TK == TargetKind::U16) v = static_cast<const uint16_t*>(target)[i];
    else if (TK == TargetKind::I32) v = static_cast<const int32_t*>(target)[i];
    else v = static_cast<const float*>(target)[i];
    decode_label<KC>(c, v, TK == TargetKind::F32Sparse, r, &ignored, &bad);
  }
  return ignored ? 1 : bad ? 2 : 0;
}

// ----------------------------------------------------------- activations
// p[K] from the voxel's C prediction values. Returns false when the input
// breaks docs/losses.md section 5 (probabilities outside [0, 1] with 'none',
// non-finite logits). For softmax, *lse receives log(sum exp(x)) so that
// WCE can use log-softmax without recomputing it.
// Activation 'none': the values are the probabilities (x[0] = p1 on a
// binary map). Returns the mask of voxels whose values are all in [0, 1].
template <int KC, class T>
SEGLOSS_HD auto probabilities_none(const Ctx& c, const T* x, T* p) {
  const int K = SEGLOSS_K(KC, c);
  if (SEGLOSS_BINARY(KC, c)) {
    const T v = x[0];  // x may alias p
    p[1] = v;
    p[0] = 1.0 - v;
    return (v >= 0.0) & (v <= 1.0);
  }
  auto ok = (x[0] >= 0.0) & (x[0] <= 1.0);
  for (int l = 0; l < K; ++l) {
    ok = ok & (x[l] >= 0.0) & (x[l] <= 1.0);
    p[l] = x[l];
  }
  return ok;
}

// Activations 'sigmoid' and 'softmax' on logits x (x[0] on a binary map).
// Returns the mask of voxels whose logits are all finite. For softmax, *m and
// *s receive the max logit and sum_l e^(x_l - m), so that log-softmax needs
// no second pass (WCE).
template <int KC, class T>
SEGLOSS_HD auto probabilities_logits(const Ctx& c, const T* x, T* p, T* m, T* s) {
  const int K = SEGLOSS_K(KC, c);
  auto ok = (x[0] - x[0]) == 0.0;  // false for inf and NaN
  for (int l = 1; l < (c.binary ? 1 : K); ++l) ok = ok & ((x[l] - x[l]) == 0.0);
  if (c.act == Activation::Sigmoid) {
    // e = e^-|z| never overflows; 1 / (1 + e) and e / (1 + e) are the two
    // sides of the sigmoid, each without cancellation.
    for (int l = 0; l < (c.binary ? 1 : K); ++l) {
      const T z = x[l];
      const T e = exp_lanes(-abs_lanes(z));
      const T big = 1.0 / (1.0 + e), small = e * big;
      const auto pos = z >= 0.0;
      if (SEGLOSS_BINARY(KC, c)) {
        p[1] = sel(pos, big, small);
        p[0] = sel(pos, small, big);  // not 1 - p1: keeps precision for large z
      } else {
        p[l] = sel(pos, big, small);
      }
    }
    return ok;
  }
  if constexpr (KC == 2) {
    // softmax of two logits: the sigmoid of their difference d, for one exp
    // a voxel instead of two. The same numbers as the loop below, which
    // takes e^0 = 1 for the larger logit and e^-|d| for the other.
    const T d = x[1] - x[0];
    const T e = exp_lanes(-abs_lanes(d));
    const T sum = 1.0 + e, big = 1.0 / sum, small = e * big;
    const auto pos = d >= 0.0;
    p[1] = sel(pos, big, small);
    p[0] = sel(pos, small, big);
    *m = max_lanes(x[0], x[1]);
    *s = sum;
    return ok;
  }
  // softmax over the C channels (C >= 2, so K == C)
  T mx = x[0];
  for (int l = 1; l < K; ++l) mx = max_lanes(mx, x[l]);
  T sum = zero_like(x[0]);
  for (int l = 0; l < K; ++l) {
    p[l] = exp_lanes(x[l] - mx);
    sum += p[l];
  }
  const T inv = 1.0 / sum;
  for (int l = 0; l < K; ++l) p[l] *= inv;
  *m = mx;
  *s = sum;
  return ok;
}

template <int KC>
SEGLOSS_HD bool probabilities(const Ctx& c, const float* x, double* p, double* lse) {
  const int K = SEGLOSS_K(KC, c);
  double xv[KC > 0 ? KC : 1];
  double* xp = KC == 0 ? p : xv;  // any K: p doubles as the input
  for (int l = 0; l < (c.binary ? 1 : K); ++l) xp[l] = x[l];
  if (c.act == Activation::None) return probabilities_none<KC>(c, xp, p);
  double m, s;
  const bool ok = probabilities_logits<KC>(c, xp, p, &m, &s);
  if (c.act == Activation::Softmax) *lse = m + log_lanes(s);
  return ok;
}

// ------------------------------------------------------------ chain rule
// docs/losses.md section 3: dL/dp -> dL/d(prediction as given), into dx[C].
template <int KC, class T>
SEGLOSS_HD void chain_rule(const Ctx& c, const T* p, const T* g, T* dx) {
  const int K = SEGLOSS_K(KC, c);
  if (SEGLOSS_BINARY(KC, c)) {
    // Both classes depend on the one channel: p1 = f(x), p0 = 1 - p1.
    const T gp = g[1] - g[0];
    dx[0] = c.act == Activation::Sigmoid ? gp * p[1] * p[0] : gp;
    return;
  }
  if (c.act == Activation::None) {
    for (int l = 0; l < K; ++l) dx[l] = g[l];
  } else if (c.act == Activation::Sigmoid) {
    for (int l = 0; l < K; ++l) dx[l] = g[l] * p[l] * (1.0 - p[l]);
  } else {
    T pg = zero_like(p[0]);
    for (int l = 0; l < K; ++l) pg += p[l] * g[l];
    for (int l = 0; l < K; ++l) dx[l] = p[l] * (g[l] - pg);
  }
}

// ------------------------------------------------------------------ losses
// Each loss's struct takes F (statistics per class), NCOEF (gradient
// coefficients per class) and whether the gradient pass reads the prediction
// from the loss table (core/loss_traits.h).
template <Loss L>
struct LossShape {
  static constexpr int F = loss_traits(L).fields;
  static constexpr int NCOEF = loss_traits(L).coefficients;
  static constexpr bool kReadsUnactivated = loss_traits(L).reads_prediction_unactivated;
  static constexpr bool gradient_reads_prediction(Activation a) { return a != Activation::None || kReadsUnactivated; }
};

// Generalized Dice. Statistics per class: G = sum r, P = sum p, I = sum p r.
// Gradient dL/dp_l = a_l r_l + b_l with a_l = -2 w_l / Den and
// b_l = w_l Num [S_l >= floor] / Den^2 (see core/finalize.cc).
struct GeneralizedDiceMath : LossShape<Loss::GeneralizedDice> {
  // Whether each class's statistics are exactly sum r, sum p, sum p r in
  // slots 0, 1, 2 (any further slot 0): the CPU's label-sum loops
  // (cpu/passes.h) then compute them from per-label sums of p.
  static constexpr bool sums_of_r_p_pr(const Ctx&) { return true; }
  // Whether accumulate and grad_x hold with the lanes of T being classes
  // (with activation 'none' no term couples two classes, and k may then be
  // a vector of per-class coefficients): the CPU's row loops (cpu/passes.h)
  // call them four classes at a time.
  static constexpr bool kClassLanes = true;
  static constexpr bool kLogSoftmax = false;
  // Whether accumulate's terms are sums and products of p, r and integer
  // constants: the CUDA one- and two-channel reduce kernel then runs it on
  // SplitF32 (float32) values.
  static constexpr bool kProductTerms = true;
  template <int KC, class T, class M>
  SEGLOSS_HD static void accumulate(const Ctx& c, const T*, const T* p, const T* r, T, M keep, T* acc) {
    const T zero = zero_like(p[0]);
    for (int l = 0; l < SEGLOSS_K(KC, c); ++l) {
      acc[l * F + 0] += sel(keep, r[l], zero);
      acc[l * F + 1] += sel(keep, p[l], zero);
      acc[l * F + 2] += sel(keep, p[l] * r[l], zero);
    }
  }
  template <int KC, class T, class KT>
  SEGLOSS_HD static void grad_x(const Ctx& c, const T*, const T* p, const T* r, const KT* k, T* g, T* dx) {
    for (int l = 0; l < SEGLOSS_K(KC, c); ++l) g[l] = k[l * NCOEF] * r[l] + k[l * NCOEF + 1];
    chain_rule<KC>(c, p, g, dx);
  }
};

// Soft Dice (DL2 and its multi-class / Jaccard / squared forms). Statistics
// per class: G, P, I, sum p^2, sum r^2 (the last two only when squared).
// dL/dp_l = a_l r_l + b_l + e_l p_l (e_l != 0 only when squared).
struct DiceMath : LossShape<Loss::Dice> {
  static constexpr bool sums_of_r_p_pr(const Ctx& c) { return !c.squared; }
  static constexpr bool kClassLanes = true;
  static constexpr bool kLogSoftmax = false;
  static constexpr bool kProductTerms = true;
  template <int KC, class T, class M>
  SEGLOSS_HD static void accumulate(const Ctx& c, const T*, const T* p, const T* r, T, M keep, T* acc) {
    const T zero = zero_like(p[0]);
    for (int l = 0; l < SEGLOSS_K(KC, c); ++l) {
      acc[l * F + 0] += sel(keep, r[l], zero);
      acc[l * F + 1] += sel(keep, p[l], zero);
      acc[l * F + 2] += sel(keep, p[l] * r[l], zero);
      if (c.squared) {
        acc[l * F + 3] += sel(keep, p[l] * p[l], zero);
        acc[l * F + 4] += sel(keep, r[l] * r[l], zero);
      }
    }
  }
  template <int KC, class T, class KT>
  SEGLOSS_HD static void grad_x(const Ctx& c, const T*, const T* p, const T* r, const KT* k, T* g, T* dx) {
    for (int l = 0; l < SEGLOSS_K(KC, c); ++l)
      g[l] = k[l * NCOEF] * r[l] + k[l * NCOEF + 1] + k[l * NCOEF + 2] * p[l];
    chain_rule<KC>(c, p, g, dx);
  }
};

// Sensitivity-specificity. Statistics per class: G = sum r,
// E1 = sum (r - p)^2 r, E0 = sum (r - p)^2 (1 - r).
// dL/dp_l = (r - p)(alpha_l r + beta_l (1 - r)).
struct SensitivitySpecificityMath : LossShape<Loss::SensitivitySpecificity> {
  static constexpr bool sums_of_r_p_pr(const Ctx&) { return false; }
  static constexpr bool kClassLanes = true;
  static constexpr bool kLogSoftmax = false;
  static constexpr bool kProductTerms = true;
  template <int KC, class T, class M>
  SEGLOSS_HD static void accumulate(const Ctx& c, const T*, const T* p, const T* r, T, M keep, T* acc) {
    const T zero = zero_like(p[0]);
    for (int l = 0; l < SEGLOSS_K(KC, c); ++l) {
      const T d = r[l] - p[l];
      acc[l * F + 0] += sel(keep, r[l], zero);
      acc[l * F + 1] += sel(keep, d * d * r[l], zero);
      acc[l * F + 2] += sel(keep, d * d * (1.0 - r[l]), zero);
    }
  }
  template <int KC, class T, class KT>
  SEGLOSS_HD static void grad_x(const Ctx& c, const T*, const T* p, const T* r, const KT* k, T* g, T* dx) {
    for (int l = 0; l < SEGLOSS_K(KC, c); ++l)
      g[l] = (r[l] - p[l]) * (k[l * NCOEF] * r[l] + k[l * NCOEF + 1] * (1.0 - r[l]));
    chain_rule<KC>(c, p, g, dx);
  }
};

// Weighted cross-entropy. Statistics per class: G = sum r, P = sum p,
// A = sum r log q, A0 = sum (1 - r) log(1 - q) (multi-label sigmoid only).
// Coefficients per class: w_l s / N for classes in L (0 otherwise), and for
// multi-label the unweighted [l in L] s / N of the (1 - r) term.
struct WeightedCrossEntropyMath : LossShape<Loss::WeightedCrossEntropy> {
  static constexpr bool sums_of_r_p_pr(const Ctx&) { return false; }
  // (not with log q per class lane: the label loops take one logarithm per voxel)
  static constexpr bool kClassLanes = false;
  // Reads log-softmax (log q = x - lse), and its softmax gradient is
  // p_l sum_k w_k r_k - w_l r_l (see softmax_term).
  static constexpr bool kLogSoftmax = true;
  // (logarithms: the one- and two-channel reduce kernel keeps float64 voxels)
  static constexpr bool kProductTerms = false;

  // log q_l of docs/losses.md: clamped for 'none', exact log-softmax /
  // log-sigmoid of the logits x otherwise.
  template <class T>
  SEGLOSS_HD static T log_q(const Ctx& c, const T* x, const T* p, T lse, int l) {
    if (c.act == Activation::None) return log_lanes(max_lanes(p[l], zero_like(p[l]) + kProbClamp));
    if (c.act == Activation::Softmax) return x[l] - lse;
    if (c.binary) return l == 1 ? -softplus(-x[0]) : -softplus(x[0]);
    return -softplus(-x[l]);
  }
  template <int KC, class T, class M>
  SEGLOSS_HD static void accumulate(const Ctx& c, const T* x, const T* p, const T* r, T lse, M keep, T* acc) {
    const T zero = zero_like(p[0]);
    bool one_log = false;
    T lq = zero;
    if constexpr (!std::is_same_v<T, double>) {
      one_log = c.one_hot && c.act != Activation::Softmax;
      if (one_log) lq = label_log_q<KC>(c, x, p, r);
    }
    for (int l = 0; l < SEGLOSS_K(KC, c); ++l) {
      acc[l * F + 0] += sel(keep, r[l], zero);
      acc[l * F + 1] += sel(keep, p[l], zero);
      // One voxel: one logarithm (sparse targets are one-hot). Lanes: every
      // class's, kept where r != 0 (q is never 0, so r * log q is finite).
      if constexpr (std::is_same_v<T, double>) {
        if (keep && r[l] != 0.0) acc[l * F + 2] += r[l] * log_q(c, x, p, lse, l);
        if (keep && c.multilabel && r[l] != 1.0) acc[l * F + 3] += (1.0 - r[l]) * -softplus(x[l]);
      } else {
        acc[l * F + 2] += sel(keep, r[l] * (one_log ? lq : log_q(c, x, p, lse, l)), zero);
        if (c.multilabel) acc[l * F + 3] += sel(keep, (1.0 - r[l]) * -softplus(x[l]), zero);
      }
    }
  }
  // Lanes with one-hot targets: sum_l r_l log q_l is log q of the label's
  // class, so one logarithm per voxel instead of K. The argument is picked
  // with exact products (r_l is 0 or 1), so lq is bit for bit the label's
  // log_q and the sums do not change. Softmax needs no logarithm per class
  // (x_l - lse) and keeps the per-class form.
  template <int KC, class T>
  SEGLOSS_HD static T label_log_q(const Ctx& c, const T* x, const T* p, const T* r) {
    const T zero = zero_like(p[0]);
    if (c.act == Activation::None) {
      T q = zero;
      for (int l = 0; l < SEGLOSS_K(KC, c); ++l) q += r[l] * p[l];
      return log_lanes(max_lanes(q, zero + kProbClamp));
    }
    if (SEGLOSS_BINARY(KC, c)) return -softplus((r[0] - r[1]) * x[0]);  // log q1 = -softplus(-x), log q0 = -softplus(x)
    T y = zero;
    for (int l = 0; l < SEGLOSS_K(KC, c); ++l) y -= r[l] * x[l];
    return -softplus(y);
  }
  template <int KC, class T, class KT>
  SEGLOSS_HD static void grad_x(const Ctx& c, const T*, const T* p, const T* r, const KT* k, T* g, T* dx) {
    const int K = SEGLOSS_K(KC, c);
    const T zero = zero_like(p[0]);
    if (c.act == Activation::None) {
      // dL/dp_l = -(w_l / N) r_l / p_l where p_l > 1e-7, else 0.
      for (int l = 0; l < K; ++l) g[l] = sel(p[l] > kProbClamp, -k[l * NCOEF] * r[l] / p[l], zero);
      chain_rule<KC>(c, p, g, dx);
    } else if (c.act == Activation::Softmax) {
      // dL/dz_c = (1/N)(p_c sum_l w_l r_l - w_c r_c), log-softmax form.
      T wr = zero;
      for (int l = 0; l < K; ++l) wr += k[l * NCOEF] * r[l];
      for (int l = 0; l < K; ++l) dx[l] = p[l] * wr - k[l * NCOEF] * r[l];
    } else if (SEGLOSS_BINARY(KC, c)) {
      // dL/dz = -(1/N)(w1 r (1 - p) - w0 (1 - r) p), p = sigmoid(z).
      dx[0] = -(k[1 * NCOEF] * r[1] * p[0] - k[0 * NCOEF] * r[0] * p[1]);
    } else {
      // multi-label: dL/dz_c = -(1/N)(w_c r_c (1 - p_c) - (1 - r_c) p_c).
      for (int l = 0; l < K; ++l) dx[l] = -(k[l * NCOEF] * r[l] * (1.0 - p[l]) - k[l * NCOEF + 1] * (1.0 - r[l]) * p[l]);
    }
  }
};

// ------------------------------------------------------------ class lanes
// The CUDA class-lane kernels (cuda/class_lanes.cuh) give each class of a
// voxel its own GPU lane and call accumulate / grad_x with one class (KC = 1,
// k pointing at that class's coefficients). Every term is per class there
// except the softmax chain rule, sum_k p_k g_k: with t_l = p_l dL/dp_l,
// dL/dz_l = t_l - p_l sum_k t_k, and the lanes of a voxel sum the t_k.
// softmax_term is t_l. WCE's is -w_l r_l (log-softmax form: no division by
// a p_l that may have underflowed), which gives p_l sum_k w_k r_k - w_l r_l
// as its scalar path computes.
template <class Math>
SEGLOSS_HD double softmax_term(const Ctx& c, double p, double r, const double* k) {
  if constexpr (Math::kLogSoftmax) {
    (void)c;
    (void)p;
    return -k[0] * r;
  } else {
    Ctx cn = c;
    cn.act = Activation::None;  // dL/dp alone: the chain rule is taken across the lanes
    double g, dx;
    Math::template grad_x<1>(cn, static_cast<const double*>(nullptr), &p, &r, k, &g, &dx);
    return p * g;
  }
}

#if SEGLOSS_DEVICE_MATH
// ------------------------------------------------- two classes in float32
// The CUDA reduce kernel for one or two channels (cuda/kernels.cuh) runs
// the voxel math of the losses with kProductTerms on sparse labels in
// float32: no float64
// conversions, reciprocal or label comparisons, which with the float64
// sums bounded it (docs/cuda.md: issue slots, float64 pipe).
//
// A plain float32 p would lose 1 - p near 1 (6e-8 absolute), and with it a
// confident voxel's share of the loss: 1 - 2I / (G + P) of a near-perfect
// prediction is made of those shares, and the contract's floor (1e-3 on the
// loss) asks for 1e-9 absolute there. So every value is a + b (SplitF32):
// a an integer, b a float32 remainder. p >= 1/2 is 1 + (p - 1), with p - 1
// taken as minus the other side of the sigmoid (or, for given
// probabilities, as an exact difference), never by cancelling; r is a
// label's 0 or 1. The terms (sums and products of p, r and integer constants)
// keep every a a small exact integer, so a statistic's error is the float32
// rounding of remainders: relative to each voxel's distance from its target,
// which is what the loss is made of, not to the statistic. Per voxel a
// remainder carries expf's 2 ulp and up to three float32 roundings: 4.2e-7
// relative at most (float64 voxels: 2.4e-7, expf's alone), against the
// contract's 1e-6.
struct SplitF32 {
  float a, b;
};
SEGLOSS_HD SplitF32 operator+(SplitF32 x, SplitF32 y) { return {x.a + y.a, x.b + y.b}; }
SEGLOSS_HD SplitF32 operator-(SplitF32 x, SplitF32 y) { return {x.a - y.a, x.b - y.b}; }
SEGLOSS_HD SplitF32& operator+=(SplitF32& x, SplitF32 y) { return x = x + y; }
// a1 a2 + (a1 b2 + b1 (a2 + b2)): a1 b2 is exact (a is 0 or +-1 in the terms).
SEGLOSS_HD SplitF32 operator*(SplitF32 x, SplitF32 y) { return {x.a * y.a, fmaf(x.b, y.a + y.b, x.a * y.b)}; }
// k - v for an integer constant k of the formulas (1 - r).
SEGLOSS_HD SplitF32 operator-(double k, SplitF32 v) { return {static_cast<float>(k) - v.a, -v.b}; }
SEGLOSS_HD SplitF32 sel(bool m, SplitF32 x, SplitF32 y) { return m ? x : y; }
// (-0: x + -0 is x for every x, so nvcc drops additions of a remainder that
// is always zero, a sparse target's.)
SEGLOSS_HD SplitF32 zero_like(SplitF32) { return {0.0f, -0.0f}; }
// v in [0, 1]: v - 1 is exact for v >= 1/2.
SEGLOSS_HD SplitF32 split_unit(float v) { return v >= 0.5f ? SplitF32{1.0f, v - 1.0f} : SplitF32{0.0f, v}; }

// The sides of a sigmoid from e = e^-|z|: hi = 1 / (1 + e) as 1 - lo, and
// lo = e / (1 + e).
SEGLOSS_HD void sigmoid_sides(float e, SplitF32* hi, SplitF32* lo) {
  const float small = e / (1.0f + e);
  *hi = {1.0f, -small};
  *lo = {0.0f, small};
}
// e^-|d| for d = x1 - x0, and whether d >= 0 (a softmax of two logits is the
// sigmoid of their difference). d is s + err exactly (TwoSum, s = fl(x1 -
// x0)): rounding d would move e^-|d| by |d| 6e-8 relative, and the factor
// (1 -+ err) takes that back as exp_lanes does in float64. |s| >= 104 gives
// 0 (e^-104 is below float32's range; s may be inf for two finite logits).
SEGLOSS_HD float exp_neg_abs_diff(float x1, float x0, bool* pos) {
  const float s = x1 - x0, t = s - x1;
  const float err = (x1 - (s - t)) + (-x0 - t);
  const float e = expf(-fabsf(s));
  *pos = s >= 0.0f;
  return fabsf(s) < 104.0f ? fmaf(e, s > 0.0f ? -err : err, e) : 0.0f;
}

// ignoreIndex as label_class compares it (in float64) with an int32 or a
// float32 label: equal only where it is such a number itself.
struct IgnoreMatch {
  bool has_i = false, has_f = false;
  int32_t i = 0;
  float f = 0.0f;
};
SEGLOSS_HD IgnoreMatch ignore_match(const Ctx& c) {
  IgnoreMatch m;
  const double v = c.ignore;
  if (!c.has_ignore || v != v) return m;
  m.has_i = v >= -2147483648.0 && v <= 2147483647.0 && floor(v) == v;
  m.i = m.has_i ? static_cast<int32_t>(v) : 0;
  m.has_f = v == INFINITY || v == -INFINITY || (fabs(v) <= 3.4028234663852886e38 && static_cast<double>(static_cast<float>(v)) == v);
  m.f = m.has_f ? static_cast<float>(v) : 0.0f;
  return m;
}

// read_target for two classes (K = 2: two channels or a binary map) and
// sparse labels, in float32 and integers: the same checks, the same 0 / 1 /
// 2. r is 0 or 1, so products with it are exact. (Dense targets stay on
// float64 voxels: a product of two float32 remainders rounds, and where the
// gradient is a small difference of large terms -- one voxel with a soft
// target -- statistics that the gradient pass does not reproduce exactly
// move it by 2%.)
template <TargetKind TK>
SEGLOSS_HD int read_target2(const IgnoreMatch& ig, const void* target, int64_t i, SplitF32* r) {
  static_assert(TK != TargetKind::Dense, "sparse labels");
  bool ignored, ok;
  int32_t label;
  if (TK == TargetKind::F32Sparse) {
    const float v = static_cast<const float*>(target)[i];
    ignored = ig.has_f && v == ig.f;
    ok = v == 0.0f || v == 1.0f;  // in [0, 2) and an integer
    label = v == 1.0f;
  } else {
    label = TK == TargetKind::U8    ? static_cast<const uint8_t*>(target)[i]
            : TK == TargetKind::U16 ? static_cast<const uint16_t*>(target)[i]
                                    : static_cast<const int32_t*>(target)[i];
    ignored = ig.has_i && label == ig.i;
    ok = static_cast<uint32_t>(label) < 2u;
  }
  const float on = ok && !ignored ? 1.0f : 0.0f;
  r[0] = {label == 0 ? on : 0.0f, -0.0f};
  r[1] = {label == 1 ? on : 0.0f, -0.0f};
  return ignored ? 1 : ok ? 0 : 2;
}

// probabilities for two classes from S = 1 or 2 channels: false for the
// same inputs, each side held as above.
SEGLOSS_HD bool in_unit(float v) { return v >= 0.0f && v <= 1.0f; }
SEGLOSS_HD bool finite_f(float v) { return v - v == 0.0f; }
template <int S>
SEGLOSS_HD bool probabilities2(const Ctx& c, const float* x, SplitF32* p) {
  if (c.act == Activation::None) {
    if (S == 1) {
      p[1] = split_unit(x[0]);
      p[0] = 1.0 - p[1];
      return in_unit(x[0]);
    }
    p[0] = split_unit(x[0]);
    p[1] = split_unit(x[S - 1]);
    return in_unit(x[0]) && in_unit(x[S - 1]);
  }
  SplitF32 hi, lo;
  if (S == 2 && c.act == Activation::Softmax) {
    bool pos;
    sigmoid_sides(exp_neg_abs_diff(x[S - 1], x[0], &pos), &hi, &lo);
    p[1] = pos ? hi : lo;
    p[0] = pos ? lo : hi;
    return finite_f(x[0]) && finite_f(x[S - 1]);
  }
  // sigmoid: one class per channel, or a binary map's classes 1 and 0
  bool ok = true;
  for (int l = 0; l < S; ++l) {
    sigmoid_sides(expf(-fabsf(x[l])), &hi, &lo);
    const bool pos = x[l] >= 0.0f;
    p[S == 1 ? 1 : l] = pos ? hi : lo;
    if (S == 1) p[0] = pos ? lo : hi;
    ok = ok && finite_f(x[l]);
  }
  return ok;
}
#endif  // SEGLOSS_DEVICE_MATH

// ------------------------------------------------------------ one voxel
// The scalar reduction and gradient steps for one voxel, shared by the CPU
// scalar loops and the CUDA kernels. x: the voxel's C prediction values;
// the target is element ti of `target` (read_target); `masked`: the mask
// drops it. Scratch p, r, xd, g, dx hold K doubles each.

// Adds the voxel's share to acc ([N, K x F]) unless it is masked or ignored;
// false if its input is bad. Every voxel is checked, masked and ignored ones
// included (docs/losses.md section 5 makes no exception).
template <class Math, int KC, TargetKind TK>
SEGLOSS_HD bool reduce_voxel(const Ctx& c, const float* x, const void* target, int64_t ti, bool masked, double* p,
                             double* r, double* xd, double* acc) {
  const int st = read_target<KC, TK>(c, target, ti, r);
  double lse = 0;
  const bool pok = probabilities<KC>(c, x, p, &lse);
  if (st == 0 && !masked) {
    for (int64_t ch = 0; ch < c.C; ++ch) xd[ch] = x[ch];  // logits, for log-softmax / log-sigmoid
    acc[0] += 1;
    Math::template accumulate<KC>(c, xd, p, r, lse, true, acc + 1);
  }
  return (st != 2) & pok;
}

// Writes the voxel's C gradient values to out (zero where masked or ignored).
// k: the sample's K x NCOEF coefficients. reads_x:
// Math::gradient_reads_prediction(activation), a constant of the call.
template <class Math, int KC, TargetKind TK>
SEGLOSS_HD void gradient_voxel(const Ctx& c, const float* x, const void* target, int64_t ti, bool masked,
                               bool reads_x, const double* k, double* p, double* r, double* g, double* dx,
                               float* out) {
  if (masked || read_target<KC, TK>(c, target, ti, r) != 0) {
    for (int64_t ch = 0; ch < c.C; ++ch) out[ch] = 0.0f;
    return;
  }
  double lse = 0;
  if (reads_x) probabilities<KC>(c, x, p, &lse);
  Math::template grad_x<KC>(c, static_cast<const double*>(nullptr), p, r, k, g, dx);
  for (int64_t ch = 0; ch < c.C; ++ch) out[ch] = static_cast<float>(dx[ch]);
}

// The context with the channel count a compile-time constant S (a loop or
// kernel instance of S channels): C, K and binary fold.
template <int S>
SEGLOSS_HD Ctx fixed_channels(Ctx c) {
  c.C = S;
  c.K = S == 1 ? 2 : S;
  c.binary = S == 1;
  return c;
}

// The context of a call: its fields are uniform over every voxel.
inline Ctx make_ctx(const Options& o, const Tensors& t) {
  Ctx c;
  c.act = o.activation;
  c.C = t.C;
  c.K = static_cast<int>(num_classes(t.C));
  c.binary = t.C == 1;
  c.multilabel = is_multilabel(o, t.C);
  c.squared = o.squared;
  c.has_ignore = o.has_ignore;
  c.ignore = o.ignore_index;
  c.one_hot = t.target_kind != TargetKind::Dense;
  return c;
}

}  // namespace device / host
}  // namespace vm
}  // namespace segloss
