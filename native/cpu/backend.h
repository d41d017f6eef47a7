// The CPU backend: the two passes of each loss, on the shared thread pool,
// compiled once per instruction set (cpu/isa.h) and picked at load.
#pragma once

#include <string>

#include "../core/types.h"

namespace segloss {
namespace cpu {

// Voxels per chunk of the passes' chunk grid (core/chunk_grid.h): one task
// of the thread pool.
constexpr int64_t kChunk = 1 << 14;

// stats: [B][1 + K F] (core/finalize.h). Checks the input as it reads it.
Status reduce(const Options& o, const Tensors& t, double* stats);
// The checks of reduce alone.
Status check(const Options& o, const Tensors& t);
// coef: [B][K][NCOEF] from finalize(); writes every element of grad.
void gradient(const Options& o, const Tensors& t, const double* coef, float* grad);

// The passes of one instruction set.
struct Passes {
  Status (*reduce)(const Options& o, const Tensors& t, double* stats);
  void (*gradient)(const Options& o, const Tensors& t, const double* coef, float* grad);
  Status (*check)(const Options& o, const Tensors& t);
};

// The instruction set the passes run on: the best the CPU supports, or the
// one SEGLOSS_ISA names (avx512, avx2 or baseline) when the CPU has it.
// `error` is set, and the CPU backend refuses to run, when SEGLOSS_ISA names
// one this CPU or build lacks.
struct IsaChoice {
  std::string name;       // "avx512", "avx2" or "baseline"
  std::string supported;  // what this CPU and build could run, best first: "avx512, avx2, baseline"
  std::string error;
  const Passes* passes = nullptr;
};
const IsaChoice& isa();

}  // namespace cpu
}  // namespace segloss
