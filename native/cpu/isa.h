// The instruction set a CPU pass translation unit is compiled for.
//
// The passes (cpu/passes.h and the files that instantiate them) are compiled
// once per instruction set -- baseline x86-64, AVX2 + FMA, AVX-512
// (F/BW/DQ/VL) -- into one addon, and cpu/backend.cc picks one set at load
// from what the CPU reports (SEGLOSS_ISA may force a lower one). CMake passes
// SEGLOSS_CPU_ISA (baseline, avx2 or avx512) to each copy.
//
// Why per-unit copies with `#pragma GCC target` rather than -mavx2 on the
// whole unit: everything a unit defines after this header is compiled for its
// instruction set, and everything before it -- the standard library and the
// shared headers, whose inline functions and template instances the linker
// merges across units -- stays baseline, so a baseline CPU never runs an
// AVX instruction through a merged copy. What the unit defines lives in
// namespaces of its own (cpu::<isa>, and vm's inline namespace host_<isa>),
// so no symbol of one set is merged with another's.
//
// Include this after every standard and shared header of the unit; the rest
// of the unit is instruction-set code.
#pragma once

#if !defined(SEGLOSS_CPU_ISA)
#define SEGLOSS_CPU_ISA baseline
#define SEGLOSS_CPU_ISA_LEVEL 0
#endif

#if SEGLOSS_CPU_ISA_LEVEL >= 1 && !(defined(__x86_64__) || defined(__i386__))
#error "the AVX2 and AVX-512 passes are x86 code"
#endif

#if SEGLOSS_CPU_ISA_LEVEL == 2
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi,bmi2,f16c,popcnt,lzcnt,movbe,prefer-vector-width=256")
#elif SEGLOSS_CPU_ISA_LEVEL == 1
#pragma GCC target("avx2,fma,bmi,bmi2,f16c,popcnt,lzcnt,movbe")
#endif

// (prefer-vector-width=256: what GCC's own tuning for AVX-512 cores picks;
// measured neutral here against leaving it out, -8% to +7% per row.)

// The AVX2 code paths of the passes (the pragma does not define __AVX2__).
#define SEGLOSS_CPU_AVX2 (SEGLOSS_CPU_ISA_LEVEL >= 1)

#define SEGLOSS_CAT_(a, b) a##b
#define SEGLOSS_CAT(a, b) SEGLOSS_CAT_(a, b)
// voxel_math.h's host flavour for this set.
#define SEGLOSS_VM_HOST_NS SEGLOSS_CAT(host_, SEGLOSS_CPU_ISA)
