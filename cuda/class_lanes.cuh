// Class-lane kernels: the reduce and gradient passes for three or more
// classes (up to kMaxClasses), included by kernels.cuh.
//
// A group of G consecutive lanes (G = 1, 2, 4, 8 or 16, a power of two that
// divides the warp) holds one voxel, each lane J = 4 consecutive classes of
// it: lane i of the group classes 4i .. 4i + 3, as one 16-byte load when the
// class count is a multiple of four. Why: with one voxel per thread and a
// run-time class count, a per-voxel array of C doubles lives in local memory
// (ptxas: a 512-656 byte stack frame per thread; the H200 profile showed the
// warps stalled on it). Here every per-class array has J entries at
// compile-time indices, so it stays in registers. A first version gave each
// class its own lane; the H200 profile found it issue-bound (70-80% of issue
// slots busy, DRAM at 12-25%): each of the C lanes of a voxel repeated the
// voxel's own work (label decoding, the softmax max, sum and reciprocal).
// With four classes a lane that work is done C / 4 times a voxel.
//
// What couples the classes of a voxel goes through warp shuffles inside the
// group (butterflies over xor offsets G/2 .. 1, so every lane ends with the
// result): the softmax max and sum, the softmax chain rule's sum (see
// vm::softmax_term), and, for dense targets, whether any class of the voxel
// is bad. The per-class statistics accumulate in float64 registers per lane;
// a block sums the lanes of each class over its warps in a fixed order, so the
// statistics are bit-identical run to run as for the other kernels.
//
// A thread loads U steps of voxels before it computes any of them, so that
// U loads per thread are in flight.
#pragma once

namespace segloss {
namespace SEGLOSS_CUDA_NS {

constexpr unsigned kFullWarp = 0xffffffffu;

// Classes per lane, and lanes per voxel for K classes (K >= 2): the
// smallest power of two G with G kLaneClasses >= K.
constexpr int kLaneClasses = 4;
inline int lanes_per_voxel(int64_t K) {
  int G = 1;
  while (G * kLaneClasses < K) G *= 2;
  return G;
}

// Steps a thread loads ahead: sixteen prediction values per thread in flight
// (with dense targets, eight of each), which is what keeps enough bytes in
// flight per SM for the memory system at two blocks of 256 threads per SM
// (__launch_bounds__ below) with no register spills (ptxas -v).
// Weighted cross-entropy's reduce pass (log-softmax too) spills at four
// steps on sm_75-sm_89 (ptxas -v), where it takes two; sm_90 holds four.
template <class Math>
constexpr int lane_steps(int J, bool dense, bool reduce) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  if (Math::kLogSoftmax && reduce && !dense) return 8 / J;
#endif
  (void)reduce;
  return (dense ? 8 : 16) / J;
}

template <int G, class T>
__device__ __forceinline__ T group_max(T v) {
  for (int o = G / 2; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(kFullWarp, v, o);
    v = w > v ? w : v;
  }
  return v;
}
template <int G, class T>
__device__ __forceinline__ T group_sum(T v) {
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(kFullWarp, v, o);
  return v;
}
// Whether `pred` holds on any lane of the caller's group.
template <int G>
__device__ __forceinline__ bool group_any(bool pred) {
  const unsigned bits = __ballot_sync(kFullWarp, pred);
  const unsigned lane = threadIdx.x % 32;
  const unsigned mask = G == 32 ? kFullWarp : ((1u << G) - 1) << (lane & ~unsigned(G - 1));
  return (bits & mask) != 0;
}

// Whether a lane's four values are one aligned 16-byte access in every
// array the pass touches: C a multiple of four (then every lane's first
// element index is one too) and 16-byte-aligned arrays.
__device__ __forceinline__ bool quad_loads(const Launch& a, bool gradient) {
  auto al = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return a.ctx.C % 4 == 0 && al(a.view.x) && (a.target_kind != TargetKind::Dense || al(a.view.target)) &&
         (!gradient || al(a.grad));
}

// The call's context as one lane sees it: one class (K = 1). C >= 2, so
// `binary` is false and every per-class function of voxel_math.h applies to
// the lane's class alone.
__device__ __forceinline__ vm::Ctx lane_ctx(const vm::Ctx& c) {
  vm::Ctx l = c;
  l.K = 1;
  l.C = 1;
  return l;
}

// The raw inputs of U steps of one lane: J prediction values, the voxel's
// label as its raw 32 bits (sparse) or J target values (dense), the mask.
// Step u's voxel is v0 + u VB (VB voxels per block step): its index and
// whether it exists are recomputed rather than held, which keeps the
// registers per thread low enough for several blocks per SM.
template <int G, int J, int U, bool DENSE>
struct LaneLoads {
  static constexpr int VB = kThreads / G;
  float x[U][J];
  float tv[DENSE ? U : 1][J];  // dense target values
  uint32_t label[DENSE ? 1 : U];
  uint32_t masked = 0;  // bit u: step u's voxel is masked out
  int64_t v0 = 0, end = 0, first = 0;

  __device__ __forceinline__ bool valid(int u) const { return v0 + u * VB < end; }
  __device__ __forceinline__ int64_t e(int u) const { return v0 + u * VB - first; }

  template <class L>
  __device__ __forceinline__ void labels(const void* target) {
    const L* p = static_cast<const L*>(target);
    SEGLOSS_UNROLL
    for (int u = 0; u < U; ++u) {
      L v{};
      if (valid(u)) v = __ldg(p + e(u));
      uint32_t bits = 0;
      if constexpr (sizeof(L) == 4) memcpy(&bits, &v, 4);
      else bits = v;
      label[u] = bits;
    }
  }

  // Steps s0 .. s0 + U - 1 of this thread in chunk range cr. quad: the J = 4
  // values of a lane are one aligned 16-byte load (C a multiple of four,
  // 16-byte-aligned arrays).
  __device__ __forceinline__ void load(const View& t, const ChunkRange& cr, TargetKind tk, int64_t C, int cls0,
                                       int64_t s0, bool reads_x, bool quad) {
    v0 = cr.begin + s0 * VB + threadIdx.x / G;
    end = cr.end;
    first = t.first;
    const int64_t l0 = int64_t(cls0) * J;
    SEGLOSS_UNROLL
    for (int u = 0; u < U; ++u) {
      if (J == 4 && quad) {
        const float4 z = {0.0f, 0.0f, 0.0f, 0.0f};
        const bool in = valid(u) && l0 < C;
        const float4* px = reinterpret_cast<const float4*>(t.x + e(u) * C + l0);
        if (in && reads_x) SEGLOSS_VECTOR_ACCESS(px, 16);
        const float4 a = in && reads_x ? __ldg(px) : z;
        x[u][0] = a.x, x[u][1] = a.y, x[u][2] = a.z, x[u][3] = a.w;
        if constexpr (DENSE) {
          const float4* pt = reinterpret_cast<const float4*>(static_cast<const float*>(t.target) + e(u) * C + l0);
          if (in) SEGLOSS_VECTOR_ACCESS(pt, 16);
          const float4 b = in ? __ldg(pt) : z;
          tv[u][0] = b.x, tv[u][1] = b.y, tv[u][2] = b.z, tv[u][3] = b.w;
        }
        continue;
      }
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j) {
        const int64_t l = l0 + j;
        const bool in = valid(u) && l < C;
        x[u][j] = in && reads_x ? __ldg(t.x + e(u) * C + l) : 0.0f;
        if constexpr (DENSE) tv[u][j] = in ? __ldg(static_cast<const float*>(t.target) + e(u) * C + l) : 0.0f;
      }
    }
    if constexpr (!DENSE) {
      switch (tk) {  // (uniform: one branch per U steps)
        case TargetKind::U8: labels<uint8_t>(t.target); break;
        case TargetKind::U16: labels<uint16_t>(t.target); break;
        default: labels<uint32_t>(t.target); break;  // i32 and f32 labels: their bits
      }
    }
    masked = 0;
    if (t.mask) {
      SEGLOSS_UNROLL
      for (int u = 0; u < U; ++u) masked |= (valid(u) && !__ldg(t.mask + e(u))) ? 1u << u : 0u;
    }
  }
  // Step u's label as a number (tk: the call's target kind).
  __device__ __forceinline__ double label_value(int u, TargetKind tk) const {
    const uint32_t b = label[DENSE ? 0 : u];
    if (tk == TargetKind::I32) return static_cast<double>(static_cast<int32_t>(b));
    if (tk == TargetKind::F32Sparse) {
      float f;
      memcpy(&f, &b, 4);
      return static_cast<double>(f);
    }
    return static_cast<double>(b);  // u8, u16
  }
};

// One step of one lane after the loads: the voxel's targets and probabilities
// for the lane's J classes. Every lane of the warp calls it (shuffles).
template <int G, int J, bool DENSE>
struct LaneVoxel {
  double p[J], r[J], x[J];
  double lse = 0;
  bool in[J];    // the class exists and the voxel does
  bool pok = true;   // probabilities / logits valid on this lane
  bool ignored = false;
  bool bad = false;  // target breaks the rules (dense: on this lane's classes)

  template <int U>
  __device__ __forceinline__ void make(const vm::Ctx& c, const vm::Ctx& c1, const LaneLoads<G, J, U, DENSE>& L, int u,
                                       int cls0, TargetKind tk, bool reads_x, bool want_lse) {
    const bool valid = L.valid(u);
    // targets
    if constexpr (DENSE) {
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j) {
        in[j] = valid && cls0 * J + j < c.C;
        const double tv = L.tv[u][j];
        bool ig, b;
        vm::decode_dense<1>(c1, &tv, &r[j], &ig, &b);
        bad |= in[j] && b;
      }
    } else {
      bool ig, b;
      const double label = vm::label_class(c, c.K, L.label_value(u, tk), tk == TargetKind::F32Sparse, &ig, &b);
      ignored = valid && ig;
      bad = valid && b;
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j) {
        in[j] = valid && cls0 * J + j < c.C;
        r[j] = label == static_cast<double>(cls0 * J + j) ? 1.0 : 0.0;
      }
    }
    if (!reads_x) {
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j) p[j] = x[j] = 0.0;  // (read by no formula that runs without them)
      return;
    }
    SEGLOSS_UNROLL
    for (int j = 0; j < J; ++j) x[j] = L.x[u][j];
    if (c.act == Activation::Softmax) {
      float m = -3.402823466e38f;
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j)
        if (in[j]) m = L.x[u][j] > m ? L.x[u][j] : m;
      m = group_max<G>(m);
      double s = 0;
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j) {
        p[j] = in[j] ? vm::exp_lanes(x[j] - static_cast<double>(m)) : 0.0;
        s += p[j];
        pok &= !in[j] || (x[j] - x[j]) == 0.0;  // finite
      }
      s = group_sum<G>(s);
      const double inv = 1.0 / s;
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j) p[j] *= inv;
      if (want_lse) lse = static_cast<double>(m) + vm::log_lanes(s);
    } else if (c.act == Activation::None) {
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j) pok &= !in[j] || vm::probabilities_none<1>(c1, &x[j], &p[j]);
    } else {
      double mm, ss;
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j) pok &= !in[j] || vm::probabilities_logits<1>(c1, &x[j], &p[j], &mm, &ss);
    }
  }
};

template <class Math, int G, int J, bool DENSE>
__global__ void __launch_bounds__(kThreads, 2) lanes_reduce_kernel(Launch a) {
  constexpr int F = Math::F;
  constexpr int U = lane_steps<Math>(J, DENSE, true);
  constexpr int VB = kThreads / G;
  constexpr int NL = J * F + 1;  // a lane's accumulators: its classes' fields, then N
  const vm::Ctx c = a.ctx;
  const vm::Ctx c1 = lane_ctx(c);
  const View& t = a.view;
  const int64_t chunk = a.chunk0 + blockIdx.x;
  const ChunkRange cr = chunk_range(t, chunk);
  const int cls0 = threadIdx.x % G;
  const bool quad = quad_loads(a, false);
  double acc[NL];
  SEGLOSS_UNROLL
  for (int f = 0; f < NL; ++f) acc[f] = 0;
  bool ok = true;
  const int64_t steps = (cr.end - cr.begin + VB - 1) / VB;  // the same for every thread of the block
  for (int64_t s0 = 0; s0 < steps; s0 += U) {
    LaneLoads<G, J, U, DENSE> L;
    L.load(t, cr, a.target_kind, c.C, cls0, s0, true, quad);
    SEGLOSS_UNROLL
    for (int u = 0; u < U; ++u) {
      LaneVoxel<G, J, DENSE> v;
      v.make(c, c1, L, u, cls0, a.target_kind, true, Math::kLogSoftmax);
      ok &= !v.bad && v.pok;
      const bool keep = L.valid(u) && !(L.masked >> u & 1) && !v.ignored && !v.bad;
      if (keep && cls0 == 0) acc[NL - 1] += 1;
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j)
        if (keep && v.in[j]) Math::template accumulate<1>(c1, &v.x[j], &v.p[j], &v.r[j], v.lse, true, acc + j * F);
    }
  }
  // Lanes of one class: sum over the warp, then over the warps in order.
  __shared__ double sums[kWarps][G][NL];
  __shared__ bool bad[kWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  SEGLOSS_UNROLL
  for (int f = 0; f < NL; ++f) {
    double s = acc[f];
    for (int o = 16; o >= G; o >>= 1) s += __shfl_xor_sync(kFullWarp, s, o);
    if (lane < G) sums[warp][lane][f] = s;
  }
  const bool any_bad = __ballot_sync(kFullWarp, !ok) != 0;
  if (lane == 0) bad[warp] = any_bad;
  __syncthreads();
  const int K = c.K;
  double* out = a.partial + chunk * (a.stride + 1);
  for (int i = threadIdx.x; i < K * F + 2; i += kThreads) {
    // out: [N, class l's F fields for each l, bad count]
    double s = 0;
    if (i == 0) {
      for (int w = 0; w < kWarps; ++w) s += sums[w][0][NL - 1];
    } else if (i == K * F + 1) {
      for (int w = 0; w < kWarps; ++w) s += bad[w] ? 1.0 : 0.0;
    } else {
      const int l = (i - 1) / F, f = (i - 1) % F;
      for (int w = 0; w < kWarps; ++w) s += sums[w][l / J][(l % J) * F + f];
    }
    out[i] = s;
  }
}

template <class Math, int G, int J, bool DENSE>
__global__ void __launch_bounds__(kThreads, 2) lanes_gradient_kernel(Launch a) {
  constexpr int NC = Math::NCOEF;
  constexpr int U = lane_steps<Math>(J, DENSE, false);
  constexpr int VB = kThreads / G;
  const vm::Ctx c = a.ctx;
  const vm::Ctx c1 = lane_ctx(c);
  const View& t = a.view;
  const int64_t chunk = a.chunk0 + blockIdx.x;
  const ChunkRange cr = chunk_range(t, chunk);
  const int cls0 = threadIdx.x % G;
  const bool quad = quad_loads(a, true);
  // This lane's classes' coefficients.
  double k[J][NC];
  SEGLOSS_UNROLL
  for (int j = 0; j < J; ++j)
    SEGLOSS_UNROLL
    for (int i = 0; i < NC; ++i) {
      const int l = cls0 * J + j;
      k[j][i] = l < c.K ? a.coef[(cr.sample * c.K + l) * NC + i] : 0.0;
    }
  const bool reads_x = Math::gradient_reads_prediction(c.act);
  const bool softmax = c.act == Activation::Softmax;
  const int64_t steps = (cr.end - cr.begin + VB - 1) / VB;
  for (int64_t s0 = 0; s0 < steps; s0 += U) {
    LaneLoads<G, J, U, DENSE> L;
    L.load(t, cr, a.target_kind, c.C, cls0, s0, reads_x, quad);
    SEGLOSS_UNROLL
    for (int u = 0; u < U; ++u) {
      LaneVoxel<G, J, DENSE> v;
      v.make(c, c1, L, u, cls0, a.target_kind, reads_x, false);
      bool zero = (L.masked >> u & 1) || v.ignored;
      zero |= DENSE ? group_any<G>(v.bad) : v.bad;
      double dx[J];
      if (softmax) {
        double term[J], st = 0;
        SEGLOSS_UNROLL
        for (int j = 0; j < J; ++j) {
          term[j] = vm::softmax_term<Math>(c1, v.p[j], v.r[j], k[j]);
          st += v.in[j] ? term[j] : 0.0;
        }
        st = group_sum<G>(st);
        SEGLOSS_UNROLL
        for (int j = 0; j < J; ++j) dx[j] = term[j] - v.p[j] * st;
      } else {
        SEGLOSS_UNROLL
        for (int j = 0; j < J; ++j) {
          double g;
          Math::template grad_x<1>(c1, static_cast<const double*>(nullptr), &v.p[j], &v.r[j], k[j], &g, &dx[j]);
        }
      }
      float out[J];
      SEGLOSS_UNROLL
      for (int j = 0; j < J; ++j) out[j] = zero ? 0.0f : static_cast<float>(dx[j]);
      float* dst = a.grad + L.e(u) * c.C + cls0 * J;
      if (J == 4 && quad && v.in[0]) {
        SEGLOSS_VECTOR_ACCESS(dst, 16);
        *reinterpret_cast<float4*>(dst) = float4{out[0], out[1], out[2], out[3]};
      } else {
        SEGLOSS_UNROLL
        for (int j = 0; j < J; ++j)
          if (v.in[j]) dst[j] = out[j];
      }
    }
  }
}

// Launches the class-lane kernel of a's class count and target layout.
template <class Math, int G, int J>
cudaError_t launch_lanes_shape(const Launch& a, bool reduce) {
  const unsigned grid = unsigned(a.chunks);
  if (a.target_kind == TargetKind::Dense)
    return reduce ? launch(lanes_reduce_kernel<Math, G, J, true>, grid, kThreads, a.stream, a)
                  : launch(lanes_gradient_kernel<Math, G, J, true>, grid, kThreads, a.stream, a);
  return reduce ? launch(lanes_reduce_kernel<Math, G, J, false>, grid, kThreads, a.stream, a)
                : launch(lanes_gradient_kernel<Math, G, J, false>, grid, kThreads, a.stream, a);
}

template <class Math>
cudaError_t launch_lanes(const Launch& a, bool reduce) {
  switch (lanes_per_voxel(a.ctx.K)) {
    case 1: return launch_lanes_shape<Math, 1, kLaneClasses>(a, reduce);
    case 2: return launch_lanes_shape<Math, 2, kLaneClasses>(a, reduce);
    case 4: return launch_lanes_shape<Math, 4, kLaneClasses>(a, reduce);
    case 8: return launch_lanes_shape<Math, 8, kLaneClasses>(a, reduce);
    default: return launch_lanes_shape<Math, 16, kLaneClasses>(a, reduce);
  }
}

}  // namespace SEGLOSS_CUDA_NS
}  // namespace segloss
