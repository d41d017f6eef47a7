// The two CPU passes every loss shares, parameterised by the loss's per-voxel
// math (core/voxel_math.h):
//   reduce:   statistics per (sample, class), with the input checks of
//             LOSSES.md section 5 folded in (no extra pass, nothing written
//             to caller memory);
//   gradient: one elementwise pass driven by the finalised coefficients.
//
// Determinism: the volume is cut into fixed chunks of kChunk voxels that never
// span two samples, whatever the thread count. Each chunk accumulates into
// its own float64 slot; slots are combined in chunk order afterwards. So the
// same inputs give bit-identical results with 1..N threads.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <string>
#include <type_traits>
#include <vector>

#include "../core/finalize.h"
#include "../core/thread_pool.h"
#include "../core/types.h"
#include "backend.h"
// Everything below is compiled for one instruction set (cpu/isa.h).
#include "isa.h"
#include "../core/voxel_math.h"

namespace segloss {
namespace cpu {
namespace SEGLOSS_CPU_ISA {

struct ChunkGrid {
  int64_t B, V, per_sample, count;
  explicit ChunkGrid(const Tensors& t)
      : B(t.B), V(t.V), per_sample((t.V + kChunk - 1) / kChunk), count(t.B * per_sample) {}
  int64_t sample(int64_t i) const { return i / per_sample; }
  int64_t begin(int64_t i) const { return sample(i) * V + (i % per_sample) * kChunk; }
  int64_t end(int64_t i) const {
    const int64_t e = begin(i) + kChunk, limit = (sample(i) + 1) * V;
    return e < limit ? e : limit;
  }
};

using vm::make_ctx;

// Per-voxel work arrays (p, r, dL/dp, dL/dx, logits: K values each, C <= K), on the
// stack for the usual class counts so the compiler keeps them in registers.
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



// Calls body(S, TK, ACT) with the layout, target kind and activation as
// compile-time constants (std::integral_constant), so that each combination
// is its own loop with the per-voxel branches folded away. S is 1 for a
// binary map (C = 1, K = 2), 2 for two channels, 0 for any other C (a loop
// over the classes).
template <class Body>
void dispatch_kinds(const vm::Ctx& c, TargetKind tk, Body&& body) {
  auto with_act = [&](auto s, auto k) {
    switch (c.act) {
      case Activation::None: return body(s, k, std::integral_constant<Activation, Activation::None>{});
      case Activation::Softmax: return body(s, k, std::integral_constant<Activation, Activation::Softmax>{});
      case Activation::Sigmoid: return body(s, k, std::integral_constant<Activation, Activation::Sigmoid>{});
    }
  };
  auto with_tk = [&](auto s) {
    switch (tk) {
      case TargetKind::U8: return with_act(s, std::integral_constant<TargetKind, TargetKind::U8>{});
      case TargetKind::U16: return with_act(s, std::integral_constant<TargetKind, TargetKind::U16>{});
      case TargetKind::I32: return with_act(s, std::integral_constant<TargetKind, TargetKind::I32>{});
      case TargetKind::F32Sparse: return with_act(s, std::integral_constant<TargetKind, TargetKind::F32Sparse>{});
      case TargetKind::Dense: return with_act(s, std::integral_constant<TargetKind, TargetKind::Dense>{});
    }
  };
  if (c.C == 1) with_tk(std::integral_constant<int, 1>{});
  else if (c.C == 2) with_tk(std::integral_constant<int, 2>{});
  else with_tk(std::integral_constant<int, 0>{});
}

// ------------------------------------------------------------ vector loads
// The vector loops below take four voxels at a time, as vm::Vd lanes.
typedef float Vf __attribute__((vector_size(16)));
typedef float Vf8 __attribute__((vector_size(32)));
typedef uint8_t Vb __attribute__((vector_size(4)));
typedef uint16_t Vh __attribute__((vector_size(8)));
typedef int32_t Vi __attribute__((vector_size(16)));

template <class V>
inline V load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Lane masks of float vectors, and the [0, 1] test on them (false for NaN).
typedef int32_t Vfm __attribute__((vector_size(16)));
typedef int32_t Vfm8 __attribute__((vector_size(32)));
inline Vfm vf_in_unit(Vf v) { return (v >= 0.0f) & (v <= 1.0f); }
inline Vfm8 vf_in_unit(Vf8 v) { return (v >= 0.0f) & (v <= 1.0f); }
inline Vfm vf_finite(Vf v) { return (v - v) == 0.0f; }
inline Vfm8 vf_finite(Vf8 v) { return (v - v) == 0.0f; }

// Four voxels' values of an interleaved two-channel array, channel by channel.
inline void load_pairs(const float* a, vm::Vd* out) {
  const Vf8 v = load<Vf8>(a);
  out[0] = __builtin_convertvector(__builtin_shufflevector(v, v, 0, 2, 4, 6), vm::Vd);
  out[1] = __builtin_convertvector(__builtin_shufflevector(v, v, 1, 3, 5, 7), vm::Vd);
}

// Voxels v..v+3 of a prediction or dense target with S channels (S = 1 or 2).
template <int S>
inline void load_channels(const float* a, int64_t v, vm::Vd* out) {
  if (S == 1) out[0] = __builtin_convertvector(load<Vf>(a + v), vm::Vd);
  else load_pairs(a + 2 * v, out);
}

// Voxels v..v+3 of a sparse target, as doubles.
template <TargetKind TK>
inline vm::Vd load_labels(const void* target, int64_t v) {
  // Widened to int32 first: a direct 8/16-bit -> double conversion is done
  // one lane at a time.
  if (TK == TargetKind::U8)
    return __builtin_convertvector(__builtin_convertvector(load<Vb>(static_cast<const uint8_t*>(target) + v), Vi), vm::Vd);
  if (TK == TargetKind::U16)
    return __builtin_convertvector(__builtin_convertvector(load<Vh>(static_cast<const uint16_t*>(target) + v), Vi), vm::Vd);
  if (TK == TargetKind::I32) return __builtin_convertvector(load<Vi>(static_cast<const int32_t*>(target) + v), vm::Vd);
  return __builtin_convertvector(load<Vf>(static_cast<const float*>(target) + v), vm::Vd);
}

#if SEGLOSS_CPU_AVX2
typedef int32_t Vi8 __attribute__((vector_size(32)));
typedef uint32_t Vu8 __attribute__((vector_size(32)));
typedef int64_t Vl4 __attribute__((vector_size(32)));

// Voxels v..v+7 of an integer label map (U8, U16 or I32), widened to int32
// with one instruction (the compiler does not find vpmovzxbd / vpmovzxwd for
// a generic conversion).
template <TargetKind TK>
inline Vi8 load_labels_i32(const void* target, int64_t v) {
  static_assert(TK == TargetKind::U8 || TK == TargetKind::U16 || TK == TargetKind::I32, "integer labels");
  if (TK == TargetKind::U8)
    return (Vi8)_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(
        static_cast<const uint8_t*>(target) + v)));
  if (TK == TargetKind::U16)
    return (Vi8)_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(
        static_cast<const uint16_t*>(target) + v)));
  return load<Vi8>(static_cast<const int32_t*>(target) + v);
}

// Half h (lanes 4h..4h+3) of eight floats or int32 as four doubles, or of
// eight int32 sign-extended to int64, each with one widening instruction (the
// compiler splits a generic conversion of a shuffled half into two narrow ones).
inline __m128i half128(Vi8 a, int h) {
  return h == 0 ? _mm256_castsi256_si128((__m256i)a) : _mm256_extracti128_si256((__m256i)a, 1);
}
inline vm::Vd widen_half(Vf8 a, int h) {
  return (vm::Vd)_mm256_cvtps_pd(h == 0 ? _mm256_castps256_ps128((__m256)a) : _mm256_extractf128_ps((__m256)a, 1));
}
inline vm::Vd widen_half(Vi8 a, int h) { return (vm::Vd)_mm256_cvtepi32_pd(half128(a, h)); }
inline Vl4 widen_half_i64(Vi8 a, int h) { return (Vl4)_mm256_cvtepi32_epi64(half128(a, h)); }
inline Vu8 max_u(Vu8 a, Vu8 b) { return a > b ? a : b; }
#endif

// Voxels v..v+7 of a sparse target as two Vd of four: one load and one
// widening for integer labels.
template <TargetKind TK>
inline void load_labels8(const void* target, int64_t v, vm::Vd* out) {
#if SEGLOSS_CPU_AVX2
  if constexpr (TK != TargetKind::F32Sparse && TK != TargetKind::Dense) {
    const Vi8 w = load_labels_i32<TK>(target, v);
    out[0] = widen_half(w, 0);
    out[1] = widen_half(w, 1);
    return;
  }
#endif
  out[0] = load_labels<TK>(target, v);
  out[1] = load_labels<TK>(target, v + 4);
}

// The loops of one (loss, layout, target kind, activation) combination.
template <class Math, int S, TargetKind TK, Activation ACT>
struct Loops {
  static constexpr int KC = S == 0 ? 0 : 2;  // classes, when fixed

  // The context with every field this combination fixes made a constant, so
  // the compiler folds the per-voxel branches on them.
  static vm::Ctx fixed(vm::Ctx c) {
    c.act = ACT;
    if (S != 0) {
      c.C = S;
      c.K = 2;
      c.binary = S == 1;
    }
    c.multilabel = ACT == Activation::Sigmoid && !c.binary;
    c.one_hot = TK != TargetKind::Dense;
    return c;
  }

  // Adds voxel v's share to acc ([N, K x F]) unless it is masked or
  // ignored; false if its input is bad (vm::reduce_voxel).
  static inline bool voxel(const vm::Ctx& c, const Tensors& t, int64_t v, double* p, double* r, double* xd,
                           double* acc) {
    return vm::reduce_voxel<Math, KC, TK>(c, t.x + v * c.C, t.target, v, t.mask && !t.mask[v], p, r, xd, acc);
  }

  // Whether this combination runs four voxels at a time (any layout; with
  // more than two channels, up to kMaxVectorK classes), given a CPU with
  // 256-bit vectors (without AVX2 the compiler splits them into slower code
  // than the scalar loop).
#if SEGLOSS_CPU_AVX2
  static constexpr bool kVector = true;
#else
  static constexpr bool kVector = false;
#endif

  // Classes a vector loop holds in registers / on the stack: 2, or up to
  // kMaxVectorK for more channels (more than that run the scalar loop).
  static constexpr int kMaxVectorK = 16;
  static constexpr int KM = S == 0 ? kMaxVectorK : 2;

  // Channel l of voxels v..v+3 of a [.., C] array with C > 2 (a gather).
  static inline vm::Vd gather4(const float* a, int64_t v, int64_t C, int l) {
    return vm::Vd{a[v * C + l], a[(v + 1) * C + l], a[(v + 2) * C + l], a[(v + 3) * C + l]};
  }

  // ALL: no mask and no ignoreIndex, so every voxel with valid input is
  // kept (and with invalid input the call fails before its sums are used):
  // the loops then skip the per-lane keep masks altogether.
  template <bool ALL>
  using Keep = std::conditional_t<ALL, vm::AllLanes, vm::Vm>;

  // With ALL, has_ignore is false: a local copy says so as a constant, so
  // the per-lane ignore test folds away.
  template <bool ALL>
  static vm::Ctx no_ignore(vm::Ctx c) {
    if (ALL) c.has_ignore = false;
    return c;
  }

  // Targets of voxels v..v+3 into r[2]; returns which are kept;
  // bad |= lanes with bad targets. `labels`: the four sparse labels, when
  // the caller loaded them already.
  template <bool ALL>
  static inline Keep<ALL> targets4(const vm::Ctx& c, const Tensors& t, int64_t v, vm::Vd* r, vm::Vm* bad,
                                   const vm::Vd* labels = nullptr) {
    vm::Vm ignored, wrong;
    if constexpr (ALL && S != 0 && TK != TargetKind::Dense && TK != TargetKind::F32Sparse) {
      // Integer labels of two classes and no ignoreIndex: a valid label is 0
      // or 1 and so is its own one-hot (r1 = v, r0 = 1 - v); any other
      // value fails the call, so its r does not matter.
      const vm::Vd lab = labels ? *labels : load_labels<TK>(t.target, v);
      *bad |= (lab < 0.0) | (lab > 1.0);
      r[1] = lab;
      r[0] = 1.0 - lab;
      return vm::AllLanes{};
    }
    if (TK == TargetKind::Dense) {
      vm::Vd tv[KM];
      if constexpr (S == 0) {
        for (int l = 0; l < c.K; ++l) tv[l] = gather4(static_cast<const float*>(t.target), v, c.C, l);
      } else {
        load_channels<S>(static_cast<const float*>(t.target), v, tv);
      }
      vm::decode_dense<KC>(c, tv, r, &ignored, &wrong);
    } else {
      vm::decode_label<KC>(c, labels ? *labels : load_labels<TK>(t.target, v), TK == TargetKind::F32Sparse, r,
                           &ignored, &wrong);
    }
    *bad |= wrong;
    if constexpr (ALL) {
      return vm::AllLanes{};
    } else {
      vm::Vm keep = vm::mnot(ignored) & vm::mnot(wrong);
      if (t.mask) keep &= __builtin_convertvector(__builtin_convertvector(load<Vb>(t.mask + v), Vi), vm::Vm) != 0;
      return keep;
    }
  }

  // Lanes of raw prediction values that failed their check (S floats per voxel).
  using BadX = std::conditional_t<S == 0, vm::Vm, std::conditional_t<S == 1, Vfm, Vfm8>>;
  static constexpr int kBadLanes = S == 0 ? 4 : 4 * S;

  // Probabilities of voxels v..v+3 into p[2]. The raw floats are checked
  // eight per compare rather than four doubles: in [0, 1] for 'none',
  // finite for logits. xv receives the values as doubles (the logits, for
  // log-softmax / log-sigmoid), *lse the log-sum-exp for softmax.
  static inline void prediction4(const vm::Ctx& c, const float* x, int64_t v, vm::Vd* p, BadX* bad, vm::Vd* xv,
                                 vm::Vd* lse) {
    if constexpr (S == 0) {
      for (int l = 0; l < c.K; ++l) {
        xv[l] = gather4(x, v, c.C, l);
        *bad |= ~(ACT == Activation::None ? (xv[l] >= 0.0) & (xv[l] <= 1.0) : (xv[l] - xv[l]) == 0.0);
      }
    } else if constexpr (S == 1) {
      const Vf raw = load<Vf>(x + v);
      *bad |= ~(ACT == Activation::None ? vf_in_unit(raw) : vf_finite(raw));
      xv[0] = __builtin_convertvector(raw, vm::Vd);
    } else {
      const Vf8 raw = load<Vf8>(x + 2 * v);
      *bad |= ~(ACT == Activation::None ? vf_in_unit(raw) : vf_finite(raw));
      xv[0] = __builtin_convertvector(__builtin_shufflevector(raw, raw, 0, 2, 4, 6), vm::Vd);
      xv[1] = __builtin_convertvector(__builtin_shufflevector(raw, raw, 1, 3, 5, 7), vm::Vd);
    }
    // (their own masks repeat the checks above)
    if (ACT == Activation::None) {
      vm::probabilities_none<KC>(c, xv, p);
    } else {
      vm::Vd m, s;
      vm::probabilities_logits<KC>(c, xv, p, &m, &s);
      if (ACT == Activation::Softmax) *lse = m + vm::log_lanes(s);  // dropped unless WCE reads it
    }
  }

  // reduce() four voxels at a time. Two sets of Vd accumulators (voxel
  // v % 8 < 4 and >= 4) keep the add chains short; the lanes are combined in
  // a fixed order, so results do not depend on the thread count.
  template <bool ALL>
  static bool reduce_vector(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, double* out) {
    const vm::Ctx c = no_ignore<ALL>(c0);
    constexpr int NA = 1 + KM * Math::F;
    const int na = 1 + c.K * Math::F;
    vm::Vd acc[2][NA] = {};
    vm::Vm bad = {};
    BadX badx = {};
    const vm::Vd one = vm::Vd{} + 1.0;
    int64_t v = b;
    for (; v + 8 <= e; v += 8) {
      vm::Vd labels[2];
      if (TK != TargetKind::Dense) load_labels8<TK>(t.target, v, labels);
      for (int h = 0; h < 2; ++h) {
        vm::Vd r[KM], p[KM], xv[KM], lse = {};
        const Keep<ALL> keep = targets4<ALL>(c, t, v + 4 * h, r, &bad, labels + h);
        prediction4(c, t.x, v + 4 * h, p, &badx, xv, &lse);
        if constexpr (!ALL) acc[h][0] += vm::sel(keep, one, vm::Vd{});
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
        for (int j = 0; j < 4; ++j) sum += acc[h][f][j];
      out[f] = sum + tail[f];
    }
    for (int j = 0; j < 4; ++j) ok &= bad[j] == 0;
    for (int j = 0; j < kBadLanes; ++j) ok &= badx[j] == 0;
    return ok;
  }

  // gradient() four voxels at a time.
  template <bool ALL>
  static void gradient_vector(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, const double* k, float* grad) {
    const vm::Ctx c = no_ignore<ALL>(c0);
    constexpr bool reads_x = Math::gradient_reads_prediction(ACT);
    int64_t v = b;
    for (; v + 8 <= e; v += 8) {
      vm::Vd labels[2];
      if (TK != TargetKind::Dense) load_labels8<TK>(t.target, v, labels);
      for (int h = 0; h < 2; ++h) {
        const int64_t w = v + 4 * h;
        vm::Vd r[KM], p[KM] = {}, g[KM], dx[KM];
        vm::Vm bad = {};
        BadX badx = {};
        const Keep<ALL> keep = targets4<ALL>(c, t, w, r, &bad, labels + h);
        vm::Vd xv[KM], lse;
        if (reads_x) prediction4(c, t.x, w, p, &badx, xv, &lse);
        Math::template grad_x<KC>(c, static_cast<const vm::Vd*>(nullptr), p, r, k, g, dx);
        const Vf d0 = __builtin_convertvector(vm::sel(keep, dx[0], vm::Vd{}), Vf);
        if constexpr (S == 0) {
          for (int64_t l = 0; l < c.C; ++l) {
            const Vf d = __builtin_convertvector(vm::sel(keep, dx[l], vm::Vd{}), Vf);
            for (int j = 0; j < 4; ++j) grad[(w + j) * c.C + l] = d[j];
          }
        } else if (S == 1) {
          std::memcpy(grad + w, &d0, sizeof d0);
        } else {
          const Vf d1 = __builtin_convertvector(vm::sel(keep, dx[1], vm::Vd{}), Vf);
          const Vf8 both = __builtin_shufflevector(d0, d1, 0, 4, 1, 5, 2, 6, 3, 7);
          std::memcpy(grad + 2 * w, &both, sizeof both);
        }
      }
    }
    if (v < e) gradient_scalar(c, t, v, e, k, grad);
  }

  // ------------------------------------------------------ label loops
  // Two classes (S = 1 or 2), integer labels, probabilities as given
  // (activation 'none'), every voxel kept (no mask, no ignoreIndex): a
  // softmax network's output against its label map. A voxel's target is then
  // its label j in {0, 1}, and
  // - reduce, for statistics that are sums of r, p and p r alone
  //   (Math::sums_of_r_p_pr): sum r_l counts labels, and sum p_l r_l is the
  //   sum of p_l over the voxels labelled l. The loop keeps sum p_l and
  //   sum p_l [j = 1] in float64 lanes (each float32 value masked by its
  //   voxel's label, then widened: both exact), and the labels summed as
  //   integers; G, P and I follow at the end of the chunk, the label-0 sums
  //   as differences. The checks run on bits: a label read as unsigned is at
  //   most 1, and a probability plus 0 (-0 becomes +0), its bits read as
  //   unsigned, at most those of 1.0f (negative values, NaN and values above
  //   1 are larger).
  // - gradient, for a gradient that does not read the prediction
  //   (Math::gradient_reads_prediction): a voxel's S values are one of two
  //   pairs, by its label, each computed once by Math::grad_x.
  // Label masks: -j is all ones for j = 1. With S = 2 a voxel's two floats
  // take its label's mask widened to 64 bits.
  // With C = 4, 8, 12 or 16 channels (the row loops below) a voxel's C
  // values are one vector row, taken four classes at a time, r being 1 in the
  // lane of its label; the loss's own accumulate and grad_x run on those
  // lanes (Generalized Dice, Dice and sensitivity-specificity).
#if SEGLOSS_CPU_AVX2
  static constexpr bool kLabelLoops =
      ACT == Activation::None && (TK == TargetKind::U8 || TK == TargetKind::U16 || TK == TargetKind::I32);
#else
  static constexpr bool kLabelLoops = false;
#endif
  // Whether the row loops take C channels.
  static bool row_channels(int64_t C) { return S == 0 && C % 4 == 0 && C <= 16; }

#if SEGLOSS_CPU_AVX2
  // The label mask of each of the eight floats of part h of voxels v..v+7
  // (S = 1: eight voxels; S = 2: voxels 4h..4h+3, two floats each).
  static inline Vi8 float_masks(Vi8 labels, int h) {
    return S == 1 ? -labels : (Vi8)(-widen_half_i64(labels, h));
  }

  static bool reduce_labels(const vm::Ctx& c, const Tensors& t, int64_t b, int64_t e, double* out) {
    constexpr int NA = 1 + 2 * Math::F;
    Vu8 label_max = {}, x_max = {}, n1 = {};
    vm::Vd sp[2] = {}, st[2] = {};  // sum p, sum p [j = 1]; lanes (p0, p1, p0, p1) when S = 2
    int64_t v = b;
    for (; v + 8 <= e; v += 8) {
      const Vi8 labels = load_labels_i32<TK>(t.target, v);
      label_max = max_u(label_max, (Vu8)labels);
      n1 += (Vu8)labels;
      for (int h = 0; h < S; ++h) {
        const Vf8 x = load<Vf8>(t.x + S * v + 8 * h);
        x_max = max_u(x_max, (Vu8)(x + 0.0f));
        const Vf8 x1 = (Vf8)((Vi8)x & float_masks(labels, h));
        for (int q = 0; q < 2; ++q) {
          sp[q] += widen_half(x, q);
          st[q] += widen_half(x1, q);
        }
      }
    }
    bool ok = true;
    double count1 = 0;
    for (int j = 0; j < 8; ++j) {
      ok &= label_max[j] <= 1u && x_max[j] <= 0x3f800000u;
      count1 += n1[j];
    }
    // Sums of p_l over all voxels (P) and over those labelled 1 (T1).
    double P[2] = {}, T1[2] = {};
    for (int q = 0; q < 2; ++q)
      for (int j = 0; j < 4; ++j) {
        P[S == 1 ? 1 : j % 2] += sp[q][j];
        T1[S == 1 ? 1 : j % 2] += st[q][j];
      }
    const double n = static_cast<double>(v - b);
    if (S == 1) {
      // p1 = x, p0 = 1 - x; the voxels labelled 0 add 1 - x to I_0
      P[0] = n - P[1];
      T1[0] = count1 - T1[1];
    }
    const double G[2] = {n - count1, count1};
    const double I[2] = {P[0] - T1[0], T1[1]};
    double tail[NA] = {};
    Scratch sc(2);
    for (; v < e; ++v) ok &= voxel(c, t, v, sc.p, sc.r, sc.x, tail);
    out[0] = n + tail[0];
    for (int l = 0; l < 2; ++l) {
      for (int f = 0; f < Math::F; ++f) out[1 + l * Math::F + f] = tail[1 + l * Math::F + f];
      out[1 + l * Math::F + 0] += G[l];
      out[1 + l * Math::F + 1] += P[l];
      out[1 + l * Math::F + 2] += I[l];
    }
    return ok;
  }

  // dx (C values) of a voxel labelled j, for a gradient that does not read
  // the prediction (Math::gradient_reads_prediction false): the one value per
  // label the label loops write.
  static void label_gradient(const vm::Ctx& c, const double* k, int j, double* dx) {
    double p[Scratch::kStackK] = {}, r[Scratch::kStackK] = {}, g[Scratch::kStackK];
    r[j] = 1.0;
    Math::template grad_x<KC>(c, static_cast<const double*>(nullptr), p, r, k, g, dx);
  }

  static void gradient_labels(const vm::Ctx& c, const Tensors& t, int64_t b, int64_t e, const double* k,
                              float* grad) {
    // value[j]: the S floats of a voxel labelled j, repeated over eight lanes
    Vf8 value[2];
    for (int j = 0; j < 2; ++j) {
      double dx[2];
      label_gradient(c, k, j, dx);
      for (int i = 0; i < 8; ++i) value[j][i] = static_cast<float>(dx[i % S]);
    }
    int64_t v = b;
    for (; v + 8 <= e; v += 8) {
      const Vi8 labels = load_labels_i32<TK>(t.target, v);
      for (int h = 0; h < S; ++h) {
        const Vi8 m = float_masks(labels, h);
        const Vf8 out = (Vf8)(((Vi8)value[0] & ~m) | ((Vi8)value[1] & m));
        std::memcpy(grad + S * v + 8 * h, &out, sizeof out);
      }
    }
    if (v < e) gradient_scalar(c, t, v, e, k, grad);
  }

  // Voxel v's label as unsigned (a negative int32 becomes large).
  static inline uint32_t label_u32(const void* target, int64_t v) {
    if (TK == TargetKind::U8) return static_cast<const uint8_t*>(target)[v];
    if (TK == TargetKind::U16) return static_cast<const uint16_t*>(target)[v];
    return static_cast<uint32_t>(static_cast<const int32_t*>(target)[v]);
  }

  // The row loops (C = 4 M channels) call Math::accumulate and Math::grad_x
  // with four classes as the lanes (Math::kClassLanes): a context of one
  // class per call, r 1 in the label's lane, and per-class coefficients.
  static vm::Ctx class_lanes(vm::Ctx c) {
    c.K = 1;
    c.binary = false;
    return c;
  }

  // The row loop of reduce. (SQ: c.squared as a constant, so that Dice's
  // test of it folds away.)
  template <int M>
  static bool reduce_rows(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, double* out) {
    return c0.squared ? reduce_rows<M, true>(c0, t, b, e, out) : reduce_rows<M, false>(c0, t, b, e, out);
  }
  template <int M, bool SQ>
  static bool reduce_rows(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, double* out) {
    typedef uint32_t Vu4 __attribute__((vector_size(16)));
    constexpr int C = 4 * M, F = Math::F;
    vm::Ctx c = class_lanes(c0);
    c.squared = SQ;
    const vm::Vd one = vm::Vd{} + 1.0;
    Vu4 x_max[M] = {};
    vm::Vd acc[M][F] = {};
    uint32_t label_max = 0;
    for (int64_t v = b; v < e; ++v) {
      const uint32_t label = label_u32(t.target, v);
      label_max = label > label_max ? label : label_max;
      const Vi lanes = Vi{} + static_cast<int32_t>(label);
      for (int q = 0; q < M; ++q) {
        const Vf x = load<Vf>(t.x + v * C + 4 * q);
        x_max[q] = (Vu4)(x + 0.0f) > x_max[q] ? (Vu4)(x + 0.0f) : x_max[q];
        const vm::Vd p = (vm::Vd)_mm256_cvtps_pd((__m128)x);
        const vm::Vd r = class_hit(lanes, q, one);
        Math::template accumulate<1>(c, &p, &p, &r, vm::Vd{}, vm::AllLanes{}, acc[q]);
      }
    }
    bool ok = label_max < static_cast<uint32_t>(C);
    out[0] = static_cast<double>(e - b);
    for (int q = 0; q < M; ++q)
      for (int j = 0; j < 4; ++j) {
        ok &= x_max[q][j] <= 0x3f800000u;
        for (int f = 0; f < F; ++f) out[1 + (4 * q + j) * F + f] = acc[q][f][j];
      }
    return ok;
  }

  // r of classes 4q..4q+3 for a voxel whose label fills `lanes`: 1 in the
  // label's lane (none for a label out of range, which the reduction pass
  // rejects).
  static inline vm::Vd class_hit(Vi lanes, int q, vm::Vd one) {
    const Vi hit = Vi{4 * q, 4 * q + 1, 4 * q + 2, 4 * q + 3} == lanes;
    return vm::sel((vm::Vm)_mm256_cvtepi32_epi64((__m128i)hit), one, vm::Vd{});
  }

  // The row loop of gradient. Without p (Math::gradient_reads_prediction
  // false) a voxel's row is the one of its label, computed once per class;
  // with p, grad_x runs on the row four classes at a time. (A label out of
  // range, which the reduction pass rejects, reads row 0 / matches no lane
  // rather than memory outside.)
  template <int M>
  static void gradient_rows(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, const double* k,
                            float* grad) {
    constexpr int C = 4 * M, N = Math::NCOEF;
    if constexpr (!Math::gradient_reads_prediction(ACT)) {
      Vf rows[C][M];
      for (int j = 0; j < C; ++j) {
        double dx[C];
        label_gradient(c0, k, j, dx);
        for (int l = 0; l < C; ++l) rows[j][l / 4][l % 4] = static_cast<float>(dx[l]);
      }
      for (int64_t v = b; v < e; ++v) {
        const uint32_t label = label_u32(t.target, v);
        std::memcpy(grad + v * C, rows[label < static_cast<uint32_t>(C) ? label : 0], sizeof rows[0]);
      }
    } else {
      const vm::Ctx c = class_lanes(c0);
      const vm::Vd one = vm::Vd{} + 1.0;
      vm::Vd kv[M][N];  // coefficient i of classes 4q..4q+3
      for (int l = 0; l < C; ++l)
        for (int i = 0; i < N; ++i) kv[l / 4][i][l % 4] = k[l * N + i];
      for (int64_t v = b; v < e; ++v) {
        const Vi lanes = Vi{} + static_cast<int32_t>(label_u32(t.target, v));
        for (int q = 0; q < M; ++q) {
          const vm::Vd p = (vm::Vd)_mm256_cvtps_pd((__m128)load<Vf>(t.x + v * C + 4 * q));
          const vm::Vd r = class_hit(lanes, q, one);
          vm::Vd g, dx;
          Math::template grad_x<1>(c, &p, &p, &r, kv[q], &g, &dx);
          const Vf out = (Vf)_mm256_cvtpd_ps((__m256d)dx);
          std::memcpy(grad + v * C + 4 * q, &out, sizeof out);
        }
      }
    }
  }

  template <class F>
  static auto with_rows(int64_t C, F&& f) {
    switch (C) {
      case 4: return f(std::integral_constant<int, 1>{});
      case 8: return f(std::integral_constant<int, 2>{});
      case 12: return f(std::integral_constant<int, 3>{});
      default: return f(std::integral_constant<int, 4>{});
    }
  }
#endif

  // Sums of voxels [b, e) into out[stride]; false if any input is bad.
  static bool reduce(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, int64_t stride, double* out) {
    const vm::Ctx c = fixed(c0);
    bool ok = true;
#if SEGLOSS_CPU_AVX2
    if constexpr (kLabelLoops) {
      if (!t.mask && !c.has_ignore) {
        if constexpr (S != 0) {
          if (Math::sums_of_r_p_pr(c)) return reduce_labels(c, t, b, e, out);
        } else if constexpr (Math::kClassLanes) {
          if (row_channels(c.C))
            return with_rows(c.C, [&](auto m) { return reduce_rows<decltype(m)::value>(c, t, b, e, out); });
        }
      }
    }
#endif
    if (kVector && c.K <= KM) {
      ok = (t.mask || c.has_ignore) ? reduce_vector<false>(c, t, b, e, out) : reduce_vector<true>(c, t, b, e, out);
    } else if constexpr (S != 0) {
      // Two sets of accumulators (even and odd voxels) halve the add-latency
      // chains; they are combined in a fixed order, so results stay
      // independent of the thread count.
      constexpr int NA = 1 + 2 * Math::F;
      double a0[NA] = {}, a1[NA] = {};
      double p0[2], r0[2], x0[2], p1[2], r1[2], x1[2];
      int64_t v = b;
      for (; v + 1 < e; v += 2) {
        ok &= voxel(c, t, v, p0, r0, x0, a0);
        ok &= voxel(c, t, v + 1, p1, r1, x1, a1);
      }
      if (v < e) ok &= voxel(c, t, v, p0, r0, x0, a0);
      for (int j = 0; j < NA; ++j) out[j] = a0[j] + a1[j];
    } else {
      Scratch sc(c.K);
      std::vector<double> acc(stride, 0.0);
      for (int64_t v = b; v < e; ++v) ok &= voxel(c, t, v, sc.p, sc.r, sc.x, acc.data());
      for (int64_t j = 0; j < stride; ++j) out[j] = acc[j];
    }
    return ok;
  }

  // Gradient of voxels [b, e) from the sample's coefficients k.
  static void gradient(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, const double* k, float* grad) {
    const vm::Ctx c = fixed(c0);
#if SEGLOSS_CPU_AVX2
    if constexpr (kLabelLoops) {
      if (!t.mask && !c.has_ignore) {
        if constexpr (S != 0) {
          if constexpr (!Math::gradient_reads_prediction(ACT)) return gradient_labels(c, t, b, e, k, grad);
        } else if constexpr (Math::kClassLanes) {
          if (row_channels(c.C))
            return with_rows(c.C, [&](auto m) { gradient_rows<decltype(m)::value>(c, t, b, e, k, grad); });
        }
      }
    }
#endif
    if (kVector && c.K <= KM) {
      if (t.mask || c.has_ignore) gradient_vector<false>(c, t, b, e, k, grad);
      else gradient_vector<true>(c, t, b, e, k, grad);
    }
    else gradient_scalar(c, t, b, e, k, grad);
  }

  static void gradient_scalar(const vm::Ctx& c, const Tensors& t, int64_t b, int64_t e, const double* k, float* grad) {
    Scratch sc(c.K);
    const int64_t C = c.C;
    for (int64_t v = b; v < e; ++v)
      vm::gradient_voxel<Math, KC, TK>(c, t.x + v * C, t.target, v, t.mask && !t.mask[v],
                                       Math::gradient_reads_prediction(ACT), k, sc.p, sc.r, sc.g, sc.dx, grad + v * C);
  }
};

// stats: [B][1 + K F], N first.
template <class Math>
Status reduce_pass(const Options& o, const Tensors& t, double* stats) {
  const vm::Ctx c = make_ctx(o, t);
  const ChunkGrid grid(t);
  const int64_t stride = 1 + static_cast<int64_t>(c.K) * Math::F;
  std::vector<double> partial(static_cast<size_t>(grid.count) * stride, 0.0);
  std::vector<unsigned char> bad(grid.count, 0);
  dispatch_kinds(c, t.target_kind, [&](auto s, auto tk, auto act) {
    using L = Loops<Math, decltype(s)::value, decltype(tk)::value, decltype(act)::value>;
    ThreadPool::instance().parallel_for(grid.count, [&](int64_t i) {
      bad[i] = !L::reduce(c, t, grid.begin(i), grid.end(i), stride, partial.data() + i * stride);
    });
  });

  for (int64_t i = 0; i < grid.count; ++i)
    if (bad[i]) return describe_bad_input(o, t, grid.begin(i), grid.end(i));

  for (int64_t b = 0; b < t.B; ++b) {
    double* dst = stats + b * stride;
    for (int64_t j = 0; j < stride; ++j) dst[j] = 0;
    for (int64_t i = b * grid.per_sample; i < (b + 1) * grid.per_sample; ++i)
      for (int64_t j = 0; j < stride; ++j) dst[j] += partial[i * stride + j];
  }
  return Status();
}

// coef: [B][K][NCOEF], scaled. grad: [B, V, C], every element written.
template <class Math>
void gradient_pass(const Options& o, const Tensors& t, const double* coef, float* grad) {
  const vm::Ctx c = make_ctx(o, t);
  const ChunkGrid grid(t);
  dispatch_kinds(c, t.target_kind, [&](auto s, auto tk, auto act) {
    using L = Loops<Math, decltype(s)::value, decltype(tk)::value, decltype(act)::value>;
    ThreadPool::instance().parallel_for(grid.count, [&](int64_t i) {
      L::gradient(c, t, grid.begin(i), grid.end(i), coef + grid.sample(i) * c.K * Math::NCOEF, grad);
    });
  });
}

// The input checks of reduce_pass alone, for gradientFromStats, which must
// not write a single gradient value before it knows the input is valid.
Status check_pass(const Options& o, const Tensors& t);

// One pair per loss, in cpu/<loss>.cc.
Status reduce_generalized_dice(const Options& o, const Tensors& t, double* stats);
void gradient_generalized_dice(const Options& o, const Tensors& t, const double* coef, float* grad);
Status reduce_dice(const Options& o, const Tensors& t, double* stats);
void gradient_dice(const Options& o, const Tensors& t, const double* coef, float* grad);
Status reduce_sensitivity_specificity(const Options& o, const Tensors& t, double* stats);
void gradient_sensitivity_specificity(const Options& o, const Tensors& t, const double* coef, float* grad);
Status reduce_weighted_cross_entropy(const Options& o, const Tensors& t, double* stats);
void gradient_weighted_cross_entropy(const Options& o, const Tensors& t, const double* coef, float* grad);

// This instruction set's passes (cpu/passes.cc), for cpu/backend.cc.
extern const Passes kPasses;

}  // namespace SEGLOSS_CPU_ISA
}  // namespace cpu
}  // namespace segloss
