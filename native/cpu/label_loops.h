// The label loops of the CPU passes: integer labels, activation 'none',
// every voxel kept (no mask, no ignoreIndex), AVX2 and above. A softmax
// network's output against its label map, with two channels (or a binary
// map) or 4, 8, 12 or 16 classes (the row loops). They run where
// cpu/passes.h picks them; everything else runs the vector loops.
// Compiled for one instruction set (cpu/isa.h).
#pragma once

#include <cstring>
#include <type_traits>

#include "../core/types.h"
#include "isa.h"
#include "simd.h"
#include "vector_loops.h"

namespace segloss {
namespace cpu {
namespace SEGLOSS_CPU_ISA {

template <class Math, int S, TargetKind TK, Activation ACT>
struct LabelLoops : VectorLoops<Math, S, TK, ACT> {
  using Base = VectorLoops<Math, S, TK, ACT>;
  using Base::KC;
  using Base::voxel;
  using Base::gradient_scalar;

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
  static bool row_channels(int64_t C) { return !Base::kTwo && C % 4 == 0 && C <= 16; }

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

};

}  // namespace SEGLOSS_CPU_ISA
}  // namespace cpu
}  // namespace segloss
