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
#include <string>
#include <type_traits>
#include <vector>

#include "../core/finalize.h"
#include "../core/thread_pool.h"
#include "../core/types.h"
#include "../core/voxel_math.h"

namespace segloss {
namespace cpu {

constexpr int64_t kChunk = 1 << 14;

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

inline vm::Ctx make_ctx(const Options& o, const Tensors& t) {
  vm::Ctx c;
  c.act = o.activation;
  c.C = t.C;
  c.K = static_cast<int>(num_classes(t.C));
  c.binary = t.C == 1;
  c.multilabel = is_multilabel(o, t.C);
  c.squared = o.squared;
  c.has_ignore = o.has_ignore;
  c.ignore = o.ignore_index;
  return c;
}

// Per-voxel work arrays (p, r, dL/dp, dL/dx: K values each, C <= K), on the
// stack for the usual class counts so the compiler keeps them in registers.
struct Scratch {
  static constexpr int kStackK = 16;
  double stack[4 * kStackK];
  std::vector<double> heap;
  double *p, *r, *g, *dx;
  explicit Scratch(int K) {
    double* base = stack;
    if (K > kStackK) {
      heap.assign(4 * static_cast<size_t>(K), 0.0);
      base = heap.data();
    }
    p = base;
    r = base + K;
    g = base + 2 * K;
    dx = base + 3 * K;
  }
};

std::string format_number(double v);

// Finds and describes the first bad value in [begin, end) (called only for a
// chunk already known to hold one, so speed does not matter).
Status describe_bad_input(const Options& o, const Tensors& t, int64_t begin, int64_t end);

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
    return c;
  }

  // Adds voxel v's share to acc ([N, K x F]) unless it is masked or
  // ignored; false if its input is bad. Every voxel is checked, masked and
  // ignored ones included (LOSSES.md section 5 makes no exception).
  static inline bool voxel(const vm::Ctx& c, const Tensors& t, int64_t v, double* p, double* r, double* acc) {
    const int st = vm::read_target<KC, TK>(c, t.target, v, r);
    double lse = 0;
    const float* x = t.x + v * c.C;
    const bool pok = vm::probabilities<KC>(c, x, p, &lse);
    if (st == 0 && !(t.mask && !t.mask[v])) {
      acc[0] += 1;
      Math::template accumulate<KC>(c, x, p, r, lse, acc + 1);
    }
    return (st != 2) & pok;
  }

  // Sums of voxels [b, e) into out[stride]; false if any input is bad.
  static bool reduce(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, int64_t stride, double* out) {
    const vm::Ctx c = fixed(c0);
    bool ok = true;
    if constexpr (S != 0) {
      // Two sets of accumulators (even and odd voxels) halve the add-latency
      // chains; they are combined in a fixed order, so results stay
      // independent of the thread count.
      constexpr int NA = 1 + 2 * Math::F;
      double a0[NA] = {}, a1[NA] = {};
      double p0[2], r0[2], p1[2], r1[2];
      int64_t v = b;
      for (; v + 1 < e; v += 2) {
        ok &= voxel(c, t, v, p0, r0, a0);
        ok &= voxel(c, t, v + 1, p1, r1, a1);
      }
      if (v < e) ok &= voxel(c, t, v, p0, r0, a0);
      for (int j = 0; j < NA; ++j) out[j] = a0[j] + a1[j];
    } else {
      Scratch sc(c.K);
      std::vector<double> acc(stride, 0.0);
      for (int64_t v = b; v < e; ++v) ok &= voxel(c, t, v, sc.p, sc.r, acc.data());
      for (int64_t j = 0; j < stride; ++j) out[j] = acc[j];
    }
    return ok;
  }

  // Gradient of voxels [b, e) from the sample's coefficients k.
  static void gradient(const vm::Ctx& c0, const Tensors& t, int64_t b, int64_t e, const double* k, float* grad) {
    const vm::Ctx c = fixed(c0);
    constexpr bool reads_x = Math::gradient_reads_prediction(ACT);
    Scratch sc(c.K);
    const int64_t C = c.C;
    for (int64_t v = b; v < e; ++v) {
      float* out = grad + v * C;
      if ((t.mask && !t.mask[v]) || vm::read_target<KC, TK>(c, t.target, v, sc.r) != 0) {
        for (int64_t ch = 0; ch < C; ++ch) out[ch] = 0.0f;
        continue;
      }
      double lse = 0;
      if (reads_x) vm::probabilities<KC>(c, t.x + v * C, sc.p, &lse);
      Math::template grad_x<KC>(c, t.x + v * C, sc.p, sc.r, k, sc.g, sc.dx);
      for (int64_t ch = 0; ch < C; ++ch) out[ch] = static_cast<float>(sc.dx[ch]);
    }
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

}  // namespace cpu
}  // namespace segloss
