// The two kernels every loss shares, parameterised by the loss's per-voxel
// math (native/core/voxel_math.h, the same functions the CPU loops call):
//
//   reduce_kernel:   one block per chunk of kChunk voxels (chunks never span
//                    two samples); each thread accumulates its voxels' shares
//                    in registers (float64, or float32 per step of four
//                    voxels: ThreadSums), the block sums them in float64 with
//                    warp shuffles and one shared-memory step, and writes the
//                    chunk's partial statistics (plus a bad-input count).
//   combine_kernel:  (cuda/backend.cu) one block per sample sums its chunks' partials, each
//                    thread a fixed strided subset in order, then the same
//                    fixed tree. No float atomics anywhere: the same input
//                    gives bit-identical statistics run after run.
//   gradient_kernel: one elementwise pass from the finalised coefficients.
//
// These take one voxel per thread, for one or two channels (S, a compile-time
// constant). Three or more classes run on the class-lane kernels of
// class_lanes.cuh (one class of a voxel per lane), which share the chunk
// grid, the partials' layout and the combine step.
//
// Loads: with two or fewer channels and 16-byte-aligned tensors, a thread
// takes four consecutive voxels per step with one 16-byte load of
// predictions per channel pair, their sparse labels as one 4-byte (u8),
// 8-byte (u16) or 16-byte (i32, f32) load, and writes the gradient the same
// way. Indices are 64-bit throughout (volumes over 2^31 elements).
#pragma once

#include <cstdint>

#include "../native/core/chunk_grid.h"
#include "../native/core/dispatch.h"
#include "../native/core/voxel_math.h"
#include "simt.h"

namespace segloss {
namespace SEGLOSS_CUDA_NS {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kVec = 4;    // voxels per thread per step
constexpr int kSteps = 8;  // steps per thread per chunk
constexpr int64_t kChunk = int64_t(kThreads) * kVec * kSteps;
// Classes the CUDA kernels take (the class-lane kernels: up to 32 lanes of a
// warp, two classes each). More classes run on the CPU.
constexpr int kMaxClasses = 64;

// One call's tensors on the device. Voxel v (of the whole call) is element
// v - first of these arrays: a staged piece holds voxels [first, ...).
struct View {
  const float* x = nullptr;
  const void* target = nullptr;
  const uint8_t* mask = nullptr;
  int64_t first = 0;
  ChunkGrid<kChunk> grid;  // the call's chunks (core/chunk_grid.h)
  bool vec = false;        // 16-byte loads allowed: aligned arrays, V and first multiples of kVec
};

// What one launch covers: chunks [chunk0, chunk0 + chunks) of the call.
struct Launch {
  vm::Ctx ctx;
  TargetKind target_kind;
  View view;
  int64_t chunk0 = 0, chunks = 0;
  int stride = 0;             // statistics per sample: 1 + K F
  bool class_lanes = false;   // class-lane kernels (class_lanes.cuh); else one voxel per thread (C <= 2)
  double* partial = nullptr;  // reduce: [all chunks][stride + 1], the last field counts bad voxels
  const double* coef = nullptr;  // gradient: [B][K][NCOEF]
  float* grad = nullptr;         // gradient: element (v - first) C + ch
  cudaStream_t stream = nullptr;
};

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sums acc[0..n) over the block; thread f < n writes the total of field f to
// out[f]. Every thread of the block must call it (it has barriers).
template <int NA>
__device__ __forceinline__ void block_sum(const double* acc, int n, double* out) {
  __shared__ double warp_sums[kWarps][NA];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  SEGLOSS_UNROLL
  for (int f = 0; f < NA; ++f) {  // (unrolled: acc's indices stay compile-time constants, acc in registers)
    if (f < n) {
      const double s = warp_sum(acc[f]);
      if (lane == 0) warp_sums[warp][f] = s;
    }
  }
  __syncthreads();
  if (static_cast<int>(threadIdx.x) < n) {
    double s = 0;
    for (int w = 0; w < kWarps; ++w) s += warp_sums[w][threadIdx.x];
    out[threadIdx.x] = s;
  }
  __syncthreads();  // warp_sums may be reused by the caller
}

// Voxels [begin, end) of the chunk this block owns.
struct ChunkRange {
  int64_t sample, begin, end;
};
__device__ __forceinline__ ChunkRange chunk_range(const View& t, int64_t chunk) {
  const auto r = t.grid.range(chunk);
  return ChunkRange{r.sample, r.begin, r.end};
}

// The raw values of four consecutive voxels (element index e, a multiple of
// four) with 16-byte loads: S channels of predictions, the targets, the mask.
template <int S, TargetKind TK>
struct Quad {
  float x[kVec * S];
  typename std::conditional<TK == TargetKind::U8, uint8_t,
           typename std::conditional<TK == TargetKind::U16, uint16_t,
           typename std::conditional<TK == TargetKind::I32, int32_t, float>::type>::type>::type
      target[TK == TargetKind::Dense ? kVec * S : kVec];
  uint8_t mask[kVec];

  __device__ __forceinline__ void load_x(const float* x0, int64_t e) {
    const float4* p = reinterpret_cast<const float4*>(x0 + e * S);
    SEGLOSS_VECTOR_ACCESS(p, 16);
    for (int q = 0; q < S; ++q) {
      const float4 v = p[q];
      x[4 * q] = v.x, x[4 * q + 1] = v.y, x[4 * q + 2] = v.z, x[4 * q + 3] = v.w;
    }
  }
  __device__ __forceinline__ void load(const View& t, int64_t e, bool reads_x) {
    if (reads_x) load_x(t.x, e);
    if constexpr (TK == TargetKind::U8) {
      SEGLOSS_VECTOR_ACCESS(static_cast<const uint8_t*>(t.target) + e, 4);
      const uchar4 v = *reinterpret_cast<const uchar4*>(static_cast<const uint8_t*>(t.target) + e);
      target[0] = v.x, target[1] = v.y, target[2] = v.z, target[3] = v.w;
    } else if constexpr (TK == TargetKind::U16) {
      SEGLOSS_VECTOR_ACCESS(static_cast<const uint16_t*>(t.target) + e, 8);
      const ushort4 v = *reinterpret_cast<const ushort4*>(static_cast<const uint16_t*>(t.target) + e);
      target[0] = v.x, target[1] = v.y, target[2] = v.z, target[3] = v.w;
    } else {
      // 4-byte elements: i32 / f32 labels (one load), dense targets (S loads)
      const int n = TK == TargetKind::Dense ? S : 1;
      const int4* p = reinterpret_cast<const int4*>(static_cast<const float*>(t.target) + e * n);
      SEGLOSS_VECTOR_ACCESS(p, 16);
      for (int q = 0; q < n; ++q) {
        const int4 v = p[q];
        static_assert(sizeof(target[0]) == 4, "4-byte targets");
        memcpy(&target[4 * q], &v, sizeof v);
      }
    }
    if (t.mask) {
      SEGLOSS_VECTOR_ACCESS(t.mask + e, 4);
      const uchar4 m = *reinterpret_cast<const uchar4*>(t.mask + e);
      mask[0] = m.x, mask[1] = m.y, mask[2] = m.z, mask[3] = m.w;
    } else {
      mask[0] = mask[1] = mask[2] = mask[3] = 1;
    }
  }
};

// The call's context as the kernel sees it. The channel count is known at
// compile time (S = 1: a binary map, S = 2: two channels), and a local copy
// that says so lets nvcc fold every per-class loop of the voxel math to a
// fixed trip count: the per-voxel arrays then live in registers instead of a
// local-memory stack frame (ptxas -v: 80-176 bytes of stack per thread
// otherwise).

// A thread's statistics in the one- and two-channel reduce kernel: N, then
// the F fields of classes 0 and 1 (total(f) is field f of the partials).
// voxel() adds voxel i unless it is masked or ignored and returns false if
// its input is bad (every voxel is checked); end_step() follows each step.
template <class Math, int S, TargetKind TK, bool F32 = Math::kProductTerms && TK != TargetKind::Dense>
struct ThreadSums;

// float64 voxels and sums (the losses with logarithms, dense targets):
// vm::reduce_voxel.
template <class Math, int S, TargetKind TK>
struct ThreadSums<Math, S, TK, false> {
  static constexpr int NA = 1 + 2 * Math::F;
  double acc[NA];
  __device__ __forceinline__ explicit ThreadSums(const vm::Ctx&) {
    SEGLOSS_UNROLL
    for (int f = 0; f < NA; ++f) acc[f] = 0;
  }
  __device__ __forceinline__ bool voxel(const vm::Ctx& c, const float* x, const void* target, int64_t i, bool masked) {
    double p[2], r[2], xd[2];
    return vm::reduce_voxel<Math, 2, TK>(c, x, target, i, masked, p, r, xd, acc);
  }
  __device__ __forceinline__ void end_step() {}
  __device__ __forceinline__ double total(int f) const { return f < NA ? acc[f] : 0.0; }
};

// float32 voxels (Math::kProductTerms, sparse labels): the voxel math on
// vm::SplitF32 values (see there why a + b, and why not dense targets),
// summed in float32 over the four voxels of a step -- the a parts over the
// thread's 32, as integers they stay exact -- and each step's remainders
// added to float64: three float32 roundings.
// Summing 32 remainders in float32 would take 31, up to 5e-7 relative for
// 32 equal ones, and a volume of equal voxels repeats that in every thread
// instead of averaging it out. block_sum and the combine are float64, in a
// fixed order, as for every kernel.
template <class Math, int S, TargetKind TK>
struct ThreadSums<Math, S, TK, true> {
  static constexpr int NF = 2 * Math::F;
  vm::IgnoreMatch ig;
  vm::SplitF32 s[NF];  // .a: the thread's sums; .b: this step's
  double b[NF];        // the remainders of the finished steps
  int n = 0;           // voxels kept
  __device__ __forceinline__ explicit ThreadSums(const vm::Ctx& c) : ig(vm::ignore_match(c)) {
    SEGLOSS_UNROLL
    for (int f = 0; f < NF; ++f) {
      s[f] = vm::SplitF32{0.0f, -0.0f};
      b[f] = 0;
    }
  }
  __device__ __forceinline__ bool voxel(const vm::Ctx& c, const float* x, const void* target, int64_t i, bool masked) {
    vm::SplitF32 p[2], r[2];
    const int st = vm::read_target2<TK>(ig, target, i, r);
    const bool pok = vm::probabilities2<S>(c, x, p);
    if (st == 0 && !masked) {
      ++n;
      Math::template accumulate<2>(c, p, p, r, zero_like(p[0]), true, s);
    }
    return (st != 2) & pok;
  }
  __device__ __forceinline__ void end_step() {
    SEGLOSS_UNROLL
    for (int f = 0; f < NF; ++f) {
      b[f] += static_cast<double>(s[f].b);
      s[f].b = -0.0f;
    }
  }
  __device__ __forceinline__ double total(int f) const {
    return f == 0 ? static_cast<double>(n) : f <= NF ? static_cast<double>(s[f - 1].a) + b[f - 1] : 0.0;
  }
};

template <class Math, int S, TargetKind TK>
__global__ void reduce_kernel(Launch a) {
  static_assert(S == 1 || S == 2, "one or two channels");
  constexpr int KM = 2;  // classes: two on a binary map too
  constexpr int NA = 2 + KM * Math::F;  // N, the class sums, the bad count
  const vm::Ctx c = vm::fixed_channels<S>(a.ctx);
  const View& t = a.view;
  const int64_t chunk = a.chunk0 + blockIdx.x;
  const ChunkRange cr = chunk_range(t, chunk);
  const int na = a.stride + 1;
  ThreadSums<Math, S, TK> sums(c);
  bool ok = true;
  for (int s = 0; s < kSteps; ++s) {
    const int64_t v0 = cr.begin + (int64_t(s) * kThreads + threadIdx.x) * kVec;
    if (v0 >= cr.end) break;
    const int64_t e0 = v0 - t.first;
    if (t.vec && v0 + kVec <= cr.end) {
      Quad<S, TK> q;
      q.load(t, e0, true);
      SEGLOSS_UNROLL
      for (int j = 0; j < kVec; ++j) ok &= sums.voxel(c, q.x + j * S, q.target, j, !q.mask[j]);
    } else {
      const int64_t e1 = (v0 + kVec <= cr.end ? v0 + kVec : cr.end) - t.first;
      for (int64_t e = e0; e < e1; ++e) ok &= sums.voxel(c, t.x + e * c.C, t.target, e, t.mask && !t.mask[e]);
    }
    sums.end_step();
  }
  double acc[NA];
  SEGLOSS_UNROLL
  for (int f = 0; f < NA; ++f) acc[f] = f == na - 1 ? (ok ? 0.0 : 1.0) : sums.total(f);
  block_sum<NA>(acc, na, a.partial + chunk * na);
}

template <class Math, int S, TargetKind TK>
__global__ void gradient_kernel(Launch a) {
  static_assert(S == 1 || S == 2, "one or two channels");
  constexpr int KC = 2, KM = 2;
  const vm::Ctx c = vm::fixed_channels<S>(a.ctx);
  const View& t = a.view;
  const int64_t chunk = a.chunk0 + blockIdx.x;
  const ChunkRange cr = chunk_range(t, chunk);
  // The sample's coefficients, once per block.
  __shared__ double k[KM * Math::NCOEF];
  const int nk = c.K * Math::NCOEF;
  for (int i = threadIdx.x; i < nk; i += kThreads) k[i] = a.coef[cr.sample * nk + i];
  __syncthreads();
  const bool reads_x = Math::gradient_reads_prediction(c.act);
  double p[KM], r[KM], g[KM], dx[KM];
  for (int s = 0; s < kSteps; ++s) {
    const int64_t v0 = cr.begin + (int64_t(s) * kThreads + threadIdx.x) * kVec;
    if (v0 >= cr.end) break;
    const int64_t e0 = v0 - t.first;
    if (t.vec && v0 + kVec <= cr.end) {
      Quad<S, TK> q;
      q.load(t, e0, reads_x);
      float out[kVec * S];
      SEGLOSS_UNROLL
      for (int j = 0; j < kVec; ++j)
        vm::gradient_voxel<Math, KC, TK>(c, q.x + j * S, q.target, j, !q.mask[j], reads_x, k, p, r, g, dx,
                                         out + j * S);
      float4* dst = reinterpret_cast<float4*>(a.grad + e0 * S);
      SEGLOSS_VECTOR_ACCESS(dst, 16);
      for (int h = 0; h < S; ++h) dst[h] = float4{out[4 * h], out[4 * h + 1], out[4 * h + 2], out[4 * h + 3]};
    } else {
      const int64_t e1 = (v0 + kVec <= cr.end ? v0 + kVec : cr.end) - t.first;
      for (int64_t e = e0; e < e1; ++e)
        vm::gradient_voxel<Math, KC, TK>(c, t.x + e * c.C, t.target, e, t.mask && !t.mask[e], reads_x, k, p, r, g,
                                         dx, a.grad + e * c.C);
    }
  }
}

}  // namespace SEGLOSS_CUDA_NS
}  // namespace segloss

#include "class_lanes.cuh"

namespace segloss {
namespace SEGLOSS_CUDA_NS {

// Launches the kernel of the call's layout and target kind.
template <class Math, int S>
cudaError_t launch_layout(const Launch& a, bool reduce) {
  return with_target_kind(a.target_kind, [&](auto tk) {
    constexpr TargetKind TK = decltype(tk)::value;
    return reduce ? launch(reduce_kernel<Math, S, TK>, unsigned(a.chunks), kThreads, a.stream, a)
                  : launch(gradient_kernel<Math, S, TK>, unsigned(a.chunks), kThreads, a.stream, a);
  });
}

// The reduce (reduce = true) or gradient kernel of Math for a's chunks.
template <class Math>
cudaError_t launch_pass(const Launch& a, bool reduce) {
  if (a.ctx.C == 1) return launch_layout<Math, 1>(a, reduce);
  if (a.ctx.C == 2 && !a.class_lanes) return launch_layout<Math, 2>(a, reduce);
  return launch_lanes<Math>(a, reduce);
}

// One per loss, in cuda/<loss>.cu.
cudaError_t pass_generalized_dice(const Launch& a, bool reduce);
cudaError_t pass_dice(const Launch& a, bool reduce);
cudaError_t pass_sensitivity_specificity(const Launch& a, bool reduce);
cudaError_t pass_weighted_cross_entropy(const Launch& a, bool reduce);

}  // namespace SEGLOSS_CUDA_NS
}  // namespace segloss
