// The two CPU passes every loss shares, parameterised by the loss's per-voxel
// math (core/voxel_math.h):
//   reduce:   statistics per (sample, class), with the input checks of
//             docs/losses.md section 5 folded in (no extra pass, nothing written
//             to caller memory);
//   gradient: one elementwise pass driven by the finalised coefficients.
//
// Determinism: the chunks of core/chunk_grid.h, one task of the thread pool
// each, accumulate into their own float64 slots, combined in chunk order; so
// the same inputs give bit-identical results with 1..N threads.
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

#include "../core/chunk_grid.h"
#include "../core/describe.h"
#include "../core/dispatch.h"
#include "../core/finalize.h"
#include "../core/thread_pool.h"
#include "../core/types.h"
#include "backend.h"
// Everything below is compiled for one instruction set (cpu/isa.h).
#include "isa.h"
#include "simd_math.h"
#include "../core/voxel_math.h"
#include "simd.h"
#include "vector_loops.h"
#include "label_loops.h"

namespace segloss {
namespace cpu {
namespace SEGLOSS_CPU_ISA {

using vm::make_ctx;

// Calls body(S, TK, ACT) with the layout, target kind and activation as
// compile-time constants (std::integral_constant), so that each combination
// is its own loop with the per-voxel branches folded away. S is 1 for a
// binary map (C = 1, K = 2), 2 for two channels, C itself for 3, 4 and 8
// channels on AVX-512, 0 for any other C (a loop over the classes).
template <class Body>
void dispatch_kinds(const vm::Ctx& c, TargetKind tk, Body&& body) {
  auto with_tk = [&](auto s) {
    return with_target_kind(tk, [&](auto k) { return with_activation(c.act, [&](auto a) { return body(s, k, a); }); });
  };
  if (c.C == 1) return with_tk(std::integral_constant<int, 1>{});
  if (c.C == 2) return with_tk(std::integral_constant<int, 2>{});
#if SEGLOSS_CPU_ISA_LEVEL >= 2
  // The usual class counts as constants (vector_loops.h), AVX-512 only: each
  // doubles the instances of a loss's passes.
  if (c.C == 3) return with_tk(std::integral_constant<int, 3>{});
  if (c.C == 4) return with_tk(std::integral_constant<int, 4>{});
  if (c.C == 8) return with_tk(std::integral_constant<int, 8>{});
#endif
  with_tk(std::integral_constant<int, 0>{});
}

// The loops of one (loss, layout, target kind, activation) combination: the
// label loops (label_loops.h) where they apply, else the vector loops
// (vector_loops.h), else one voxel at a time.
template <class Math, int S, TargetKind TK, Activation ACT>
struct Loops {
  using Vector = VectorLoops<Math, S, TK, ACT>;
  using Labels = LabelLoops<Math, S, TK, ACT>;

  // The context with every field this combination fixes made a constant, so
  // the compiler folds the per-voxel branches on them.
  static vm::Ctx fixed(vm::Ctx c) {
    if (S != 0) c = vm::fixed_channels<S>(c);
    c.act = ACT;
    c.multilabel = ACT == Activation::Sigmoid && !c.binary;
    c.one_hot = TK != TargetKind::Dense;
    return c;
  }

  // Sums of voxels [b, e) into out[stride]; false if any input is bad.
  static bool reduce(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, int64_t stride, double* out) {
    const vm::Ctx c = fixed(c0);
#if SEGLOSS_CPU_AVX2
    if constexpr (Labels::kLabelLoops) {
      if (!t.mask && !c.has_ignore) {
        if constexpr (Vector::kTwo) {
          if (Math::sums_of_r_p_pr(c)) return Labels::reduce_labels(c, t, b, e, out);
        } else if constexpr (Math::kClassLanes) {
          if (Labels::row_channels(c.C))
            return Labels::with_rows(
                c.C, [&](auto m) { return Labels::template reduce_rows<decltype(m)::value>(c, t, b, e, out); });
        }
      }
    }
    if (c.K <= Vector::KM)
      return (t.mask || c.has_ignore) ? Vector::template reduce_vector<false>(c, t, b, e, out)
                                      : Vector::template reduce_vector<true>(c, t, b, e, out);
#endif
    bool ok = true;
    Vector::reduce_scalar(c, t, b, e, stride, out, &ok);
    return ok;
  }

  // Gradient of voxels [b, e) from the sample's coefficients k.
  static void gradient(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, const double* k, float* grad) {
    const vm::Ctx c = fixed(c0);
#if SEGLOSS_CPU_AVX2
    if constexpr (Labels::kLabelLoops) {
      if (!t.mask && !c.has_ignore) {
        if constexpr (Vector::kTwo) {
          if constexpr (!Math::gradient_reads_prediction(ACT)) return Labels::gradient_labels(c, t, b, e, k, grad);
        } else if constexpr (Math::kClassLanes) {
          if (Labels::row_channels(c.C))
            return Labels::with_rows(
                c.C, [&](auto m) { Labels::template gradient_rows<decltype(m)::value>(c, t, b, e, k, grad); });
        }
      }
    }
    if (c.K <= Vector::KM) {
      if (t.mask || c.has_ignore) Vector::template gradient_vector<false>(c, t, b, e, k, grad);
      else Vector::template gradient_vector<true>(c, t, b, e, k, grad);
      return;
    }
#endif
    Vector::gradient_scalar(c, t, b, e, k, grad);
  }
};

// stats: [B][1 + K F], N first.
template <class Math>
Status reduce_pass(const Options& o, const Tensors& t, double* stats) {
  const vm::Ctx c = make_ctx(o, t);
  const ChunkGrid<kChunk> grid(t.V);
  const int64_t chunks = grid.count(t.B);
  const int64_t stride = 1 + static_cast<int64_t>(c.K) * Math::F;
  std::vector<double> partial(static_cast<size_t>(chunks) * stride, 0.0);
  std::vector<unsigned char> bad(chunks, 0);
  dispatch_kinds(c, t.target_kind, [&](auto s, auto tk, auto act) {
    using L = Loops<Math, decltype(s)::value, decltype(tk)::value, decltype(act)::value>;
    ThreadPool::instance().parallel_for(chunks, [&](int64_t i) {
      bad[i] = !L::reduce(c, t, grid.begin(i), grid.end(i), stride, partial.data() + i * stride);
    });
  });

  for (int64_t i = 0; i < chunks; ++i)
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
  const ChunkGrid<kChunk> grid(t.V);
  const int64_t chunks = grid.count(t.B);
  dispatch_kinds(c, t.target_kind, [&](auto s, auto tk, auto act) {
    using L = Loops<Math, decltype(s)::value, decltype(tk)::value, decltype(act)::value>;
    ThreadPool::instance().parallel_for(chunks, [&](int64_t i) {
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
