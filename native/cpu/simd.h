// Vector types and loads of the CPU passes: the raw floats, labels and mask
// bytes of W consecutive voxels (W = 4, or 8 with AVX-512) as vectors of
// doubles (simd_math.h) or as the raw values the checks run on. Compiled for
// one instruction set (cpu/isa.h); the AVX2 helpers exist in the AVX2 and
// AVX-512 copies only.
#pragma once

#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <type_traits>

#include "../core/types.h"
#include "isa.h"
#include "simd_math.h"

namespace segloss {
namespace cpu {
namespace SEGLOSS_CPU_ISA {

typedef float Vf __attribute__((vector_size(16)));
typedef float Vf8 __attribute__((vector_size(32)));
typedef float Vf16 __attribute__((vector_size(64)));
typedef uint8_t Vb __attribute__((vector_size(4)));
typedef uint8_t Vb8 __attribute__((vector_size(8)));
typedef uint16_t Vh __attribute__((vector_size(8)));
typedef uint16_t Vh8 __attribute__((vector_size(16)));
typedef int32_t Vi __attribute__((vector_size(16)));
typedef int32_t Vi8 __attribute__((vector_size(32)));
typedef uint32_t Vu8 __attribute__((vector_size(32)));
typedef int64_t Vl4 __attribute__((vector_size(32)));
// Lane masks of float vectors.
typedef int32_t Vfm __attribute__((vector_size(16)));
typedef int32_t Vfm8 __attribute__((vector_size(32)));
typedef int32_t Vfm16 __attribute__((vector_size(64)));

// The types of W voxels (W = 4 or 8): doubles, their mask, floats, int32,
// label bytes and halves.
template <int W>
struct Lanes;
template <>
struct Lanes<4> {
  typedef vm::Vd D;
  typedef vm::Vm M;
  typedef Vf F;
  typedef Vf8 F2;  // two floats a voxel
  typedef Vi I;
  typedef Vb B;
  typedef Vh H;
};
template <>
struct Lanes<8> {
  typedef vm::Vd8 D;
  typedef vm::Vm8 M;
  typedef Vf8 F;
  typedef Vf16 F2;
  typedef Vi8 I;
  typedef Vb8 B;
  typedef Vh8 H;
};

template <class V>
inline V load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The [0, 1] test of raw floats (false for NaN), and finiteness.
template <class F>
inline auto vf_in_unit(F v) { return (v >= 0.0f) & (v <= 1.0f); }
template <class F>
inline auto vf_finite(F v) { return (v - v) == 0.0f; }

// Doubles of the even (h = 0) or odd (h = 1) floats of a vector of 2W.
template <int W>
inline typename Lanes<W>::D half_of_pairs(typename Lanes<W>::F2 v, int h) {
  typedef typename Lanes<W>::D D;
  if constexpr (W == 4) {
    return h == 0 ? __builtin_convertvector(__builtin_shufflevector(v, v, 0, 2, 4, 6), D)
                  : __builtin_convertvector(__builtin_shufflevector(v, v, 1, 3, 5, 7), D);
  } else {
    return h == 0 ? __builtin_convertvector(__builtin_shufflevector(v, v, 0, 2, 4, 6, 8, 10, 12, 14), D)
                  : __builtin_convertvector(__builtin_shufflevector(v, v, 1, 3, 5, 7, 9, 11, 13, 15), D);
  }
}

// Voxels v..v+W-1 of a prediction or dense target with S channels (S = 1 or 2).
template <int W, int S>
inline void load_channels(const float* a, int64_t v, typename Lanes<W>::D* out) {
  typedef Lanes<W> L;
  if constexpr (S == 1) {
    out[0] = __builtin_convertvector(load<typename L::F>(a + v), typename L::D);
  } else {
    const typename L::F2 raw = load<typename L::F2>(a + 2 * v);
    out[0] = half_of_pairs<W>(raw, 0);
    out[1] = half_of_pairs<W>(raw, 1);
  }
}

// W lanes of a mask array as a lane mask (true where the byte is nonzero).
template <int W>
inline typename Lanes<W>::M load_mask(const uint8_t* mask, int64_t v) {
  typedef Lanes<W> L;
  return __builtin_convertvector(__builtin_convertvector(load<typename L::B>(mask + v), typename L::I),
                                 typename L::M) != 0;
}

#if SEGLOSS_CPU_AVX2
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

// Channel l of voxels v..v+W-1 of a [.., C] float array (C > 2), as doubles:
// one gather of W floats at stride C.
template <int W>
inline typename Lanes<W>::D gather_channel(const float* a, int64_t v, int64_t C, int l) {
  const float* base = a + v * C + l;
  const int c = static_cast<int>(C);
  if constexpr (W == 4) {
    return (vm::Vd)_mm256_cvtps_pd(_mm_i32gather_ps(base, _mm_setr_epi32(0, c, 2 * c, 3 * c), 4));
  } else {
    const __m256i idx = _mm256_setr_epi32(0, c, 2 * c, 3 * c, 4 * c, 5 * c, 6 * c, 7 * c);
    return (vm::Vd8)_mm512_cvtps_pd(_mm256_i32gather_ps(base, idx, 4));
  }
}

template <int KC>
struct ChannelTranspose;  // (AVX-512)
#if SEGLOSS_CPU_ISA_LEVEL >= 2
// Eight voxels of KC channels (KC = 4, 8 or 16) between the voxel-major
// layout of a [.., C] array (voxel j's channel l at j KC + l) and one
// vector of eight per channel (at l 8 + j), in registers: the W KC floats
// are W KC / 16 512-bit vectors, and each of log2 of that many steps
// exchanges one bit of a value's register number with one of its position
// in the register (a two-source permute per register). Cheaper than one
// gather per channel in, and far cheaper than one scatter per channel out.
constexpr int transpose_steps(int KC) { return KC == 4 ? 1 : KC == 8 ? 2 : 3; }
template <int KC>
struct TransposeTable {
  int32_t idx[transpose_steps(KC)][KC / 2][16];
  bool ok;  // every register holds 16 values after every step
};
// Register of value e (voxel-major index) in the voxel-major layout or the
// per-channel one; after step s, bits 0..s of its register are the target
// layout's, the rest the source's. Positions within a register before the
// last step: the values in index order. idx[s][r][i] is the source of
// position i of register r in step s, in the pair (r with bit s clear, r
// with bit s set), as _mm512_permutex2var_ps reads it.
template <int KC>
constexpr int transpose_flat(int e, bool voxel_major) {
  return voxel_major ? e : (e % KC) * 8 + e / KC;
}
template <int KC>
constexpr TransposeTable<KC> transpose_table(bool to_channels) {
  constexpr int M = 8 * KC, N = KC / 2, S = transpose_steps(KC);
  TransposeTable<KC> t{};
  t.ok = true;
  int reg[S + 1][M] = {}, pos[S + 1][M] = {};
  for (int e = 0; e < M; ++e) {
    const int f = transpose_flat<KC>(e, to_channels);  // the source layout
    reg[0][e] = f / 16;
    pos[0][e] = f % 16;
  }
  for (int s = 0; s < S; ++s) {
    const int low = (2 << s) - 1;
    for (int e = 0; e < M; ++e) reg[s + 1][e] = ((transpose_flat<KC>(e, !to_channels) / 16) & low) | (reg[0][e] & ~low);
    for (int r = 0; r < N; ++r) {
      int n = 0;
      for (int e = 0; e < M; ++e) {
        if (reg[s + 1][e] != r) continue;
        const int i = s + 1 == S ? transpose_flat<KC>(e, !to_channels) % 16 : n;
        ++n;
        pos[s + 1][e] = i;
        t.idx[s][r][i] = pos[s][e] + ((reg[s][e] >> s) & 1) * 16;
      }
      t.ok &= n == 16;
    }
  }
  return t;
}

template <int KC>
struct ChannelTranspose {
  static constexpr int kN = KC / 2;  // registers
  static constexpr int kSteps = transpose_steps(KC);
  static_assert(KC == 4 || KC == 8 || KC == 16, "4, 8 or 16 channels");
  typedef TransposeTable<KC> Table;
  static constexpr Table kToChannels = transpose_table<KC>(true), kToVoxels = transpose_table<KC>(false);
  static_assert(kToChannels.ok && kToVoxels.ok, "each step a permute of register pairs");

  static inline void run(const Table& t, __m512* v) {
    for (int s = 0; s < kSteps; ++s) {
      __m512 o[kN];
      for (int r = 0; r < kN; ++r)
        o[r] = _mm512_permutex2var_ps(v[r & ~(1 << s)], _mm512_loadu_si512(t.idx[s][r]), v[r | (1 << s)]);
      for (int r = 0; r < kN; ++r) v[r] = o[r];
    }
  }
  // Channels 0..KC-1 of voxels v..v+7 of a [.., KC] array, as doubles.
  static inline void load(const float* a, int64_t v, vm::Vd8* out) {
    __m512 r[kN];
    for (int q = 0; q < kN; ++q) r[q] = _mm512_loadu_ps(a + v * KC + 16 * q);
    run(kToChannels, r);
    for (int q = 0; q < kN; ++q) {
      const Vf16 v = (Vf16)r[q];
      out[2 * q] = __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), vm::Vd8);
      out[2 * q + 1] = __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), vm::Vd8);
    }
  }
  // The inverse: channel l's eight values d[l] to voxels v..v+7 of a [.., KC]
  // array, as floats.
  static inline void store(float* a, int64_t v, const vm::Vd8* d) {
    __m512 r[kN];
    for (int q = 0; q < kN; ++q) {
      const Vf8 lo = __builtin_convertvector(d[2 * q], Vf8), hi = __builtin_convertvector(d[2 * q + 1], Vf8);
      r[q] = (__m512)__builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    }
    run(kToVoxels, r);
    for (int q = 0; q < kN; ++q) _mm512_storeu_ps(a + v * KC + 16 * q, r[q]);
  }
};
#endif

// Four or eight floats to a[0], a[C], a[2C], ...: one scatter with AVX-512.
inline void scatter_channel(float* a, int64_t C, Vf f) {
  for (int j = 0; j < 4; ++j) a[j * C] = f[j];
}
#if SEGLOSS_CPU_ISA_LEVEL >= 2
inline void scatter_channel(float* a, int64_t C, Vf8 f) {
  const int c = static_cast<int>(C);
  _mm256_i32scatter_ps(a, _mm256_setr_epi32(0, c, 2 * c, 3 * c, 4 * c, 5 * c, 6 * c, 7 * c), (__m256)f, 4);
}
#endif
#endif

// Two channels' values of W voxels, interleaved (c0 c1 c0 c1 ...).
inline Vf8 interleave(Vf a, Vf b) { return __builtin_shufflevector(a, b, 0, 4, 1, 5, 2, 6, 3, 7); }
inline Vf16 interleave(Vf8 a, Vf8 b) {
  return __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
}

// Voxels v..v+W-1 of a sparse target, as doubles.
template <int W, TargetKind TK>
inline typename Lanes<W>::D load_labels(const void* target, int64_t v) {
  typedef Lanes<W> L;
#if SEGLOSS_CPU_AVX2
  if constexpr (W == 8 && TK != TargetKind::F32Sparse && TK != TargetKind::Dense)
    return __builtin_convertvector(load_labels_i32<TK>(target, v), typename L::D);
#endif
  // Widened to int32 first: a direct 8/16-bit -> double conversion is done
  // one lane at a time.
  if constexpr (TK == TargetKind::U8)
    return __builtin_convertvector(
        __builtin_convertvector(load<typename L::B>(static_cast<const uint8_t*>(target) + v), typename L::I),
        typename L::D);
  if constexpr (TK == TargetKind::U16)
    return __builtin_convertvector(
        __builtin_convertvector(load<typename L::H>(static_cast<const uint16_t*>(target) + v), typename L::I),
        typename L::D);
  if constexpr (TK == TargetKind::I32)
    return __builtin_convertvector(load<typename L::I>(static_cast<const int32_t*>(target) + v), typename L::D);
  return __builtin_convertvector(load<typename L::F>(static_cast<const float*>(target) + v), typename L::D);
}

// Voxels v..v+2W-1 of a sparse target as two vectors of W: for W = 4, one
// load and one widening for integer labels.
template <int W, TargetKind TK>
inline void load_labels2(const void* target, int64_t v, typename Lanes<W>::D* out) {
#if SEGLOSS_CPU_AVX2
  if constexpr (W == 4 && TK != TargetKind::F32Sparse && TK != TargetKind::Dense) {
    const Vi8 w = load_labels_i32<TK>(target, v);
    out[0] = widen_half(w, 0);
    out[1] = widen_half(w, 1);
    return;
  }
#endif
  out[0] = load_labels<W, TK>(target, v);
  out[1] = load_labels<W, TK>(target, v + W);
}

}  // namespace SEGLOSS_CPU_ISA
}  // namespace cpu
}  // namespace segloss
