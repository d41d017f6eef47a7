// The vector side of the per-voxel math (core/voxel_math.h) for the CPU
// passes: vectors of four (Vd) or eight (Vd8) voxels' doubles, their lane
// masks, and the select / exp / log helpers the formulas call on them.
// voxel_math.h's templates call these unqualified, so this header comes
// first (cpu/passes.h includes it right before voxel_math.h), in the same
// namespace: vm's inline namespace of this instruction set (cpu/isa.h).
#pragma once

#include <cstdint>
#include <type_traits>

#include "isa.h"

namespace segloss {
namespace vm {
inline namespace SEGLOSS_VM_HOST_NS {

// Four or eight voxels' values, and the mask types comparisons of them
// produce (lanes of all ones for true, zeros for false).
typedef double Vd __attribute__((vector_size(32)));
typedef double Vd8 __attribute__((vector_size(64)));
typedef decltype(Vd{} < Vd{}) Vm;
typedef decltype(Vd8{} < Vd8{}) Vm8;

template <class V>
constexpr bool is_dvec = std::is_same_v<V, Vd> || std::is_same_v<V, Vd8>;
template <class V>
using MaskOf = decltype(V{} < V{});
// (enable_if on the return type: these overloads exist for Vd and Vd8 only)
template <class V>
using IfVec = std::enable_if_t<is_dvec<V>, V>;
template <class V>
using IfVecMask = std::enable_if_t<is_dvec<V>, MaskOf<V>>;

template <class V>
inline IfVec<V> sel(MaskOf<V> m, V a, V b) { return m ? a : b; }
inline Vm mnot(Vm m) { return ~m; }
inline Vm8 mnot(Vm8 m) { return ~m; }
template <class V>
inline IfVec<V> zero_like(V) { return V{}; }
// |v| < 2^52 (the range a label comparison lets through) is exact in int64.
template <class V>
inline IfVecMask<V> is_integral(V v) {
  return __builtin_convertvector(__builtin_convertvector(v, MaskOf<V>), V) == v;
}
template <class V>
inline IfVec<V> max_lanes(V a, V b) { return sel(a > b, a, b); }
template <class V>
inline IfVec<V> abs_lanes(V v) { return sel(v < 0.0, -v, v); }

// e^v: 2^k e^r with r = v - k ln2 in [-ln2/2, ln2/2] and a
// degree-13 Taylor polynomial (relative error near 1e-16, like libm's exp);
// v below -708 gives 0 (the loops only exponentiate v <= 0). NaN stays NaN.
#if SEGLOSS_CPU_ISA_LEVEL >= 2
// Eight lanes with AVX-512: e^v = 2^(k/16) e^r, k = round(16 v / ln2), r in
// [-ln2/32, ln2/32]. 2^(j/16) comes from a table of 16 doubles, two
// registers, with one two-source permute (j = k mod 16: the permute reads
// the low four bits of the index), and 2^floor(k/16) is added to its
// exponent; e^r - 1 takes a degree-7 Taylor polynomial (truncation 1.2e-18
// relative on that interval). 20 operations a vector against the 27 of the
// degree-13 polynomial below; the result is within 2 ulp as there.
struct ExpTable {
  double t[16];
};
constexpr ExpTable kExp2Sixteenths = {{1.0, 1.0442737824274138, 1.0905077326652577, 1.1387886347566916,
                                       1.189207115002721, 1.2418578120734840, 1.2968395546510096,
                                       1.3542555469368927, 1.4142135623730951, 1.4768261459394993,
                                       1.5422108254079407, 1.6104903319492543, 1.6817928305074290,
                                       1.7562521603732995, 1.8340080864093424, 1.9152065613971474}};
inline Vd8 exp_table_lanes(Vd8 v) {
  const Vd8 lo = Vd8{} - 708.0, hi = Vd8{} + 709.0;
  const Vm8 under = v < lo;
  const Vd8 x = sel(under, lo, sel(v > hi, hi, v));
  // 1.5 * 2^52: adding it rounds to an integer, k, which its low bits hold
  const Vd8 shift = Vd8{} + 6755399441055744.0;
  const Vd8 ks = x * 23.083120654223414 + shift;  // 16 / ln2
  const Vd8 k = ks - shift;
  // ln2 / 16 in two parts (the first with trailing zeros: k times it is exact)
  const Vd8 r = (x - k * 0.043321698773070240) - k * 1.1926343307941173e-11;
  Vm8 kbits;
  __builtin_memcpy(&kbits, &ks, sizeof kbits);
  const __m512d t = _mm512_permutex2var_pd(_mm512_loadu_pd(kExp2Sixteenths.t), (__m512i)kbits,
                                           _mm512_loadu_pd(kExp2Sixteenths.t + 8));
  // floor(k / 16) << 52: the bits of k above the four low ones, shifted to
  // the exponent (the shift constant's own bits leave at the top)
  Vm8 sbits;
  __builtin_memcpy(&sbits, &t, sizeof sbits);
  sbits += (kbits << 48) & (Vm8{} + static_cast<int64_t>(0xfff0000000000000ULL));
  Vd8 s;
  __builtin_memcpy(&s, &sbits, sizeof s);
  const Vd8 r2 = r * r, r4 = r2 * r2;
  const Vd8 a = r * (1.0 / 6.0) + 0.5, b = r * (1.0 / 120.0) + 1.0 / 24.0, c = r * (1.0 / 5040.0) + 1.0 / 720.0;
  const Vd8 em1 = r + r2 * (a + (r2 * b + r4 * c));
  return sel(under, Vd8{}, s + s * em1);
}
#endif

template <class V>
inline IfVec<V> exp_lanes(V v) {
#if SEGLOSS_CPU_ISA_LEVEL >= 2
  if constexpr (std::is_same_v<V, Vd8>) return exp_table_lanes(v);
#endif
  using M = MaskOf<V>;
  const V lo = V{} - 708.0, hi = V{} + 709.0;
  const M under = v < lo;
  const V x = sel(under, lo, sel(v > hi, hi, v));
  const V shift = V{} + 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  const V k = (x * 1.4426950408889634 + shift) - shift;
  const V r = (x - k * 0.6931471803691238) - k * 1.9082149292705877e-10;  // ln2 split in two
  // e^r = 1 + (r + r^2 (E + r O)), E and O the even and odd terms from r^2/2!
  // and r^3/3! on as two chains in r^2: five dependent multiply-adds each
  // instead of thirteen in one chain, and 1 and r, the largest terms, added
  // last, so the rounding stays that of the single chain.
  const V r2 = r * r;
  V even = V{} + 1.0 / 479001600.0, odd = V{} + 1.0 / 6227020800.0;  // 1/12!, 1/13!
  const double even_f[] = {1.0 / 3628800.0, 1.0 / 40320.0, 1.0 / 720.0, 1.0 / 24.0, 0.5};
  const double odd_f[] = {1.0 / 39916800.0, 1.0 / 362880.0, 1.0 / 5040.0, 1.0 / 120.0, 1.0 / 6.0};
  for (int i = 0; i < 5; ++i) {
    even = even * r2 + even_f[i];
    odd = odd * r2 + odd_f[i];
  }
  const V p = 1.0 + (r + r2 * (even + r * odd));
  const M bits = (__builtin_convertvector(k, M) + 1023) << 52;
  V scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return sel(under, V{}, p * scale);
}

// log(1 + f) = 2 atanh(f / (2 + f)), for f in [-0.3, 1]: |s| <= 1/3 and the
// odd series to s^33 leaves a relative error near 1e-16, with no cancellation
// for small f. The series sum_k s2^k / (2k + 1) runs as two Horner chains in
// s2^2 (even and odd k), which halves the chain of dependent multiply-adds
// that bounded the WCE reduce loops, with its leading 1 added last.
template <class V>
inline IfVec<V> log1p_lanes(V f) {
  const V s = f / (2.0 + f), s2 = s * s, s4 = s2 * s2;
  // 1 + s2 (odd + s2 even): odd = 1/3 + s4/7 + ..., even = 1/5 + s4/9 + ...;
  // the leading 1 is added last.
  V even = V{} + 1.0 / 33.0, odd = V{} + 1.0 / 31.0;
  for (int j = 7; j >= 1; --j) {
    even = even * s4 + 1.0 / (4 * j + 1);
    odd = odd * s4 + 1.0 / (4 * j - 1);
  }
  return 2.0 * s * (1.0 + s2 * (odd + s2 * even));
}
// log v for positive, normal v: v = 2^e m with m in [sqrt(1/2), sqrt(2)).
template <class V>
inline IfVec<V> log_lanes(V v) {
  using M = MaskOf<V>;
  M bits;
  __builtin_memcpy(&bits, &v, sizeof bits);
  M e = (bits >> 52) - 1023;
  M mbits = (bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;  // m in [1, 2)
  V m;
  __builtin_memcpy(&m, &mbits, sizeof m);
  const M big = m > 1.4142135623730951;
  m = sel(big, m * 0.5, m);
  e = e - big;  // big is -1 where true
  const V ed = __builtin_convertvector(e, V);
  return ed * 0.6931471803691238 + (log1p_lanes(m - 1.0) + ed * 1.9082149292705877e-10);
}

}  // namespace SEGLOSS_VM_HOST_NS
}  // namespace vm
}  // namespace segloss
