// The general vector loops of the CPU passes: W voxels at a time (W = 8 with
// AVX-512, 4 with AVX2) as the lanes of vectors of doubles, any layout and
// target kind, up to kMaxVectorK classes, the loss's own per-voxel math
// (core/voxel_math.h) running on those lanes. A voxel's channels come from
// one load (one or two channels) or one gather per class (more channels).
// Compiled for one instruction set (cpu/isa.h); used with AVX2 and above.
#pragma once

#include <cstring>
#include <type_traits>

#include "../core/types.h"
#include "isa.h"
#include "simd.h"
#include "../core/voxel_math.h"

namespace segloss {
namespace cpu {
namespace SEGLOSS_CPU_ISA {

// Classes the vector loops take (their per-voxel arrays live on the stack).
constexpr int kMaxVectorK = 64;

// Per-voxel work arrays (p, r, dL/dp, dL/dx, logits: K values each, C <= K),
// on the stack for the usual class counts, for the scalar loop.
struct Scratch {
  static constexpr int kStackK = 16;
  double stack[5 * kStackK];
  std::vector<double> heap;
  double *p, *r, *g, *dx, *x;
  explicit Scratch(int K) {
    double* base = stack;
    if (K > kStackK) {
      heap.assign(5 * static_cast<size_t>(K), 0.0);
      base = heap.data();
    }
    p = base;
    r = base + K;
    g = base + 2 * K;
    dx = base + 3 * K;
    x = base + 4 * K;
  }
};

// The loops of one (loss, layout, target kind, activation) combination, one
// voxel at a time (scalar) and W at a time (vector). S, the layout: 1 for a
// binary map, 2 for two channels, 0 for any other C, or a fixed C >= 3 (the
// class loops then unroll, and a voxel's per-class values stay in registers).
template <class Math, int S, TargetKind TK, Activation ACT>
struct VectorLoops {
  static constexpr bool kTwo = S == 1 || S == 2;  // two classes: one load a voxel
  static constexpr int KC = S == 0 ? 0 : kTwo ? 2 : S;  // classes, when fixed
#if SEGLOSS_CPU_ISA_LEVEL >= 2
  static constexpr int W = 8;
#else
  static constexpr int W = 4;
#endif
  typedef Lanes<W> L;
  typedef typename L::D Vd;
  typedef typename L::M Vm;

  // Whether this combination runs W voxels at a time, given the instruction
  // set (without AVX2 the compiler splits the vectors into slower code than
  // the scalar loop, and there is no gather).
  static constexpr bool kVector = SEGLOSS_CPU_AVX2;
  static constexpr int KM = S == 0 ? kMaxVectorK : KC;
  // Whether a voxel's KC channels move between memory and one vector per
  // channel by in-register transposes (simd.h) instead of gathers and
  // scatters.
  static constexpr bool kTranspose = W == 8 && (KC == 4 || KC == 8 || KC == 16);

  // Adds voxel v's share to acc ([N, K x F]) unless it is masked or
  // ignored; false if its input is bad (vm::reduce_voxel).
  static inline bool voxel(const vm::Ctx& c, const Tensors& t, int64_t v, double* p, double* r, double* xd,
                           double* acc) {
    return vm::reduce_voxel<Math, KC, TK>(c, t.x + v * c.C, t.target, v, t.mask && !t.mask[v], p, r, xd, acc);
  }

  static void reduce_scalar(const vm::Ctx& c, const Tensors& t, int64_t b, int64_t e, int64_t stride, double* out,
                            bool* ok) {
    if constexpr (kTwo) {
      // Two sets of accumulators (even and odd voxels) halve the add-latency
      // chains; they are combined in a fixed order, so results stay
      // independent of the thread count.
      constexpr int NA = 1 + 2 * Math::F;
      double a0[NA] = {}, a1[NA] = {};
      double p0[2], r0[2], x0[2], p1[2], r1[2], x1[2];
      int64_t v = b;
      for (; v + 1 < e; v += 2) {
        *ok &= voxel(c, t, v, p0, r0, x0, a0);
        *ok &= voxel(c, t, v + 1, p1, r1, x1, a1);
      }
      if (v < e) *ok &= voxel(c, t, v, p0, r0, x0, a0);
      for (int j = 0; j < NA; ++j) out[j] = a0[j] + a1[j];
    } else {
      Scratch sc(c.K);
      std::vector<double> acc(stride, 0.0);
      for (int64_t v = b; v < e; ++v) *ok &= voxel(c, t, v, sc.p, sc.r, sc.x, acc.data());
      for (int64_t j = 0; j < stride; ++j) out[j] = acc[j];
    }
  }

  static void gradient_scalar(const vm::Ctx& c, const Tensors& t, int64_t b, int64_t e, const double* k, float* grad) {
    Scratch sc(c.K);
    const int64_t C = c.C;
    for (int64_t v = b; v < e; ++v)
      vm::gradient_voxel<Math, KC, TK>(c, t.x + v * C, t.target, v, t.mask && !t.mask[v],
                                       Math::gradient_reads_prediction(ACT), k, sc.p, sc.r, sc.g, sc.dx, grad + v * C);
  }

#if SEGLOSS_CPU_AVX2
  // ALL: no mask and no ignoreIndex, so every voxel with valid input is
  // kept (and with invalid input the call fails before its sums are used):
  // the loops then skip the per-lane keep masks altogether.
  template <bool ALL>
  using Keep = std::conditional_t<ALL, vm::AllLanes, Vm>;

  // With ALL, has_ignore is false: a local copy says so as a constant, so
  // the per-lane ignore test folds away.
  template <bool ALL>
  static vm::Ctx no_ignore(vm::Ctx c) {
    if (ALL) c.has_ignore = false;
    return c;
  }

  // Targets of voxels v..v+W-1 into r[K]; returns which are kept;
  // bad |= lanes with bad targets. `labels`: the sparse labels, when the
  // caller loaded them already.
  template <bool ALL>
  static inline Keep<ALL> targets(const vm::Ctx& c, const Tensors& t, int64_t v, Vd* r, Vm* bad,
                                  const Vd* labels) {
    Vm ignored, wrong;
    if constexpr (ALL && kTwo && TK != TargetKind::Dense && TK != TargetKind::F32Sparse) {
      // Integer labels of two classes and no ignoreIndex: a valid label is 0
      // or 1 and so is its own one-hot (r1 = v, r0 = 1 - v); any other
      // value fails the call, so its r does not matter.
      const Vd lab = *labels;
      *bad |= (lab < 0.0) | (lab > 1.0);
      r[1] = lab;
      r[0] = 1.0 - lab;
      return vm::AllLanes{};
    }
    if constexpr (TK == TargetKind::Dense) {
      Vd tv[KM];
      if constexpr (kTranspose) {
        ChannelTranspose<KC>::load(static_cast<const float*>(t.target), v, tv);
      } else if constexpr (!kTwo) {
        for (int l = 0; l < c.K; ++l) tv[l] = gather_channel<W>(static_cast<const float*>(t.target), v, c.C, l);
      } else {
        load_channels<W, S>(static_cast<const float*>(t.target), v, tv);
      }
      vm::decode_dense<KC>(c, tv, r, &ignored, &wrong);
    } else {
      vm::decode_label<KC>(c, *labels, TK == TargetKind::F32Sparse, r, &ignored, &wrong);
    }
    *bad |= wrong;
    if constexpr (ALL) {
      return vm::AllLanes{};
    } else {
      Vm keep = vm::mnot(ignored) & vm::mnot(wrong);
      if (t.mask) keep &= load_mask<W>(t.mask, v);
      return keep;
    }
  }

  // Lanes of raw prediction values that failed their check (S floats per
  // voxel; with more channels, checked as doubles).
  using BadX = std::conditional_t<!kTwo, Vm, decltype(vf_finite(std::conditional_t<S == 1, typename L::F,
                                                                                     typename L::F2>{}))>;
  static constexpr int kBadLanes = !kTwo ? W : W * S;

  // Probabilities of voxels v..v+W-1 into p[K]. The raw floats of one or two
  // channels are checked as floats: in [0, 1] for 'none', finite for logits.
  // xv receives the values as doubles (the logits, for log-softmax /
  // log-sigmoid), *lse the log-sum-exp for softmax.
  static inline void prediction(const vm::Ctx& c, const float* x, int64_t v, Vd* p, BadX* bad, Vd* xv, Vd* lse) {
    if constexpr (!kTwo) {
      if constexpr (kTranspose) ChannelTranspose<KC>::load(x, v, xv);
      for (int l = 0; l < c.K; ++l) {
        if constexpr (!kTranspose) xv[l] = gather_channel<W>(x, v, c.C, l);
        *bad |= ~(ACT == Activation::None ? (xv[l] >= 0.0) & (xv[l] <= 1.0) : (xv[l] - xv[l]) == 0.0);
      }
    } else if constexpr (S == 1) {
      const typename L::F raw = load<typename L::F>(x + v);
      *bad |= ~(ACT == Activation::None ? vf_in_unit(raw) : vf_finite(raw));
      xv[0] = __builtin_convertvector(raw, Vd);
    } else {
      const typename L::F2 raw = load<typename L::F2>(x + 2 * v);
      *bad |= ~(ACT == Activation::None ? vf_in_unit(raw) : vf_finite(raw));
      xv[0] = half_of_pairs<W>(raw, 0);
      xv[1] = half_of_pairs<W>(raw, 1);
    }
    // (their own masks repeat the checks above)
    if (ACT == Activation::None) {
      vm::probabilities_none<KC>(c, xv, p);
    } else {
      Vd m, s;
      vm::probabilities_logits<KC>(c, xv, p, &m, &s);
      if (ACT == Activation::Softmax) *lse = m + vm::log_lanes(s);  // dropped unless WCE reads it
    }
  }

  // reduce() W voxels at a time. Two sets of accumulators (voxel
  // v % 2W < W and >= W) keep the add chains short; the lanes are combined
  // in a fixed order, so results do not depend on the thread count.
  template <bool ALL>
  static bool reduce_vector(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, double* out) {
    const vm::Ctx c = no_ignore<ALL>(c0);
    constexpr int NA = 1 + KM * Math::F;
    const int na = 1 + c.K * Math::F;
    Vd acc[2][NA];
    for (int h = 0; h < 2; ++h)
      for (int f = 0; f < na; ++f) acc[h][f] = Vd{};
    Vm bad = {};
    BadX badx = {};
    const Vd one = Vd{} + 1.0;
    int64_t v = b;
    for (; v + 2 * W <= e; v += 2 * W) {
      Vd labels[2];
      if constexpr (TK != TargetKind::Dense) load_labels2<W, TK>(t.target, v, labels);
      for (int h = 0; h < 2; ++h) {
        Vd r[KM], p[KM], xv[KM], lse = {};
        const Keep<ALL> keep = targets<ALL>(c, t, v + W * h, r, &bad, labels + h);
        prediction(c, t.x, v + W * h, p, &badx, xv, &lse);
        if constexpr (!ALL) acc[h][0] += vm::sel(keep, one, Vd{});
        Math::template accumulate<KC>(c, xv, p, r, lse, keep, acc[h] + 1);
      }
    }
    if constexpr (ALL) acc[0][0][0] = static_cast<double>(v - b);  // every voxel counts
    double tail[NA] = {};
    Scratch sc(c.K);
    bool ok = true;
    for (; v < e; ++v) ok &= voxel(c, t, v, sc.p, sc.r, sc.x, tail);
    for (int f = 0; f < na; ++f) {
      double sum = 0;
      for (int h = 0; h < 2; ++h)
        for (int j = 0; j < W; ++j) sum += acc[h][f][j];
      out[f] = sum + tail[f];
    }
    for (int j = 0; j < W; ++j) ok &= bad[j] == 0;
    for (int j = 0; j < kBadLanes; ++j) ok &= badx[j] == 0;
    return ok;
  }

  // Channel l's W gradient values (dx of voxels w..w+W-1) into a [.., C] array.
  static inline void store_channel(float* grad, int64_t w, int64_t C, int l, Vd d) {
    scatter_channel(grad + w * C + l, C, __builtin_convertvector(d, typename L::F));
  }

  // gradient() W voxels at a time.
  template <bool ALL>
  static void gradient_vector(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, const double* k, float* grad) {
    const vm::Ctx c = no_ignore<ALL>(c0);
    constexpr bool reads_x = Math::gradient_reads_prediction(ACT);
    int64_t v = b;
    for (; v + 2 * W <= e; v += 2 * W) {
      Vd labels[2];
      if constexpr (TK != TargetKind::Dense) load_labels2<W, TK>(t.target, v, labels);
      for (int h = 0; h < 2; ++h) {
        const int64_t w = v + W * h;
        Vd r[KM], p[KM], g[KM], dx[KM];
        Vm bad = {};
        BadX badx = {};
        const Keep<ALL> keep = targets<ALL>(c, t, w, r, &bad, labels + h);
        Vd xv[KM], lse;
        if constexpr (reads_x) {
          prediction(c, t.x, w, p, &badx, xv, &lse);
        } else {
          for (int l = 0; l < c.K; ++l) p[l] = Vd{};  // (not read; set only per class, not all KM)
        }
        Math::template grad_x<KC>(c, static_cast<const Vd*>(nullptr), p, r, k, g, dx);
        if constexpr (kTranspose) {
          for (int l = 0; l < KC; ++l) dx[l] = vm::sel(keep, dx[l], Vd{});
          ChannelTranspose<KC>::store(grad, w, dx);
        } else if constexpr (!kTwo) {
          for (int l = 0; l < c.C; ++l) store_channel(grad, w, c.C, l, vm::sel(keep, dx[l], Vd{}));
        } else if constexpr (S == 1) {
          const typename L::F d0 = __builtin_convertvector(vm::sel(keep, dx[0], Vd{}), typename L::F);
          std::memcpy(grad + w, &d0, sizeof d0);
        } else {
          const typename L::F d0 = __builtin_convertvector(vm::sel(keep, dx[0], Vd{}), typename L::F);
          const typename L::F d1 = __builtin_convertvector(vm::sel(keep, dx[1], Vd{}), typename L::F);
          const typename L::F2 both = interleave(d0, d1);
          std::memcpy(grad + 2 * w, &both, sizeof both);
        }
      }
    }
    if (v < e) gradient_scalar(c, t, v, e, k, grad);
  }
#endif
};

}  // namespace SEGLOSS_CPU_ISA
}  // namespace cpu
}  // namespace segloss
