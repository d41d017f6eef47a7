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

// Calls body(KC, TK) with the class count and target kind as compile-time
// constants (std::integral_constant): K = 2, which covers binary maps and the
// two-class case, is unrolled; other K run a loop.
template <class Body>
void dispatch_kinds(const vm::Ctx& c, TargetKind tk, Body&& body) {
  auto with_k = [&](auto kc) {
    using K = decltype(kc);
    switch (tk) {
      case TargetKind::U8: return body(K{}, std::integral_constant<TargetKind, TargetKind::U8>{});
      case TargetKind::U16: return body(K{}, std::integral_constant<TargetKind, TargetKind::U16>{});
      case TargetKind::I32: return body(K{}, std::integral_constant<TargetKind, TargetKind::I32>{});
      case TargetKind::F32Sparse: return body(K{}, std::integral_constant<TargetKind, TargetKind::F32Sparse>{});
      case TargetKind::Dense: return body(K{}, std::integral_constant<TargetKind, TargetKind::Dense>{});
    }
  };
  if (c.K == 2) with_k(std::integral_constant<int, 2>{});
  else with_k(std::integral_constant<int, 0>{});
}

// stats: [B][1 + K F], N first.
template <class Math>
Status reduce_pass(const Options& o, const Tensors& t, double* stats) {
  const vm::Ctx c = make_ctx(o, t);
  const ChunkGrid grid(t);
  const int K = c.K;
  const int64_t stride = 1 + static_cast<int64_t>(K) * Math::F;
  std::vector<double> partial(static_cast<size_t>(grid.count) * stride, 0.0);
  std::vector<unsigned char> bad(grid.count, 0);

  double* partial_p = partial.data();
  unsigned char* bad_p = bad.data();
  dispatch_kinds(c, t.target_kind, [&](auto kc, auto tk) {
    constexpr int KC = decltype(kc)::value;
    constexpr TargetKind TK = decltype(tk)::value;
      ThreadPool::instance().parallel_for(grid.count, [&](int64_t i) {
        double* acc = partial_p + i * stride;
        Scratch sc(c.K);
        double* pp = sc.p;
        double* rp = sc.r;
        bool ok = true;
        double n = 0;
        for (int64_t v = grid.begin(i), e = grid.end(i); v < e; ++v) {
          if (t.mask && !t.mask[v]) continue;
          const int st = vm::read_target<KC, TK>(c, t.target, v, rp);
          if (st == 1) continue;
          double lse = 0;
          const bool pok = vm::probabilities<KC>(c, t.x + v * t.C, pp, &lse);
          ok &= (st == 0) & pok;
          n += 1;
          Math::template accumulate<KC>(c, t.x + v * t.C, pp, rp, lse, acc + 1);
        }
        acc[0] = n;
        bad_p[i] = !ok;
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
  const bool reads_x = Math::gradient_reads_prediction(o.activation);

  dispatch_kinds(c, t.target_kind, [&](auto kc, auto tk) {
    constexpr int KC = decltype(kc)::value;
    constexpr TargetKind TK = decltype(tk)::value;
      ThreadPool::instance().parallel_for(grid.count, [&](int64_t i) {
        const int K = c.K;
        Scratch sc(K);
        double *p = sc.p, *r = sc.r, *g = sc.g, *dx = sc.dx;
        const double* k = coef + grid.sample(i) * K * Math::NCOEF;
        for (int64_t v = grid.begin(i), e = grid.end(i); v < e; ++v) {
          float* out = grad + v * t.C;
          if ((t.mask && !t.mask[v]) || vm::read_target<KC, TK>(c, t.target, v, r) != 0) {
            for (int64_t ch = 0; ch < t.C; ++ch) out[ch] = 0.0f;
            continue;
          }
          double lse = 0;
          if (reads_x) vm::probabilities<KC>(c, t.x + v * t.C, p, &lse);
          Math::template grad_x<KC>(c, t.x + v * t.C, p, r, k, g, dx);
          for (int64_t ch = 0; ch < t.C; ++ch) out[ch] = static_cast<float>(dx[ch]);
        }
      });
  });
}

// The input checks of reduce_pass alone, for gradientFromStats, which must
// not write a single gradient value before it knows the input is valid.
Status check_pass(const Options& o, const Tensors& t);

}  // namespace cpu
}  // namespace segloss
