// Generalized Dice loss on the CPU: the reduction and gradient passes of cpu/passes.h with
// the per-voxel math of vm::GeneralizedDiceMath (core/voxel_math.h); the loss value and the
// gradient coefficients come from core/finalize.cc.
// Formula: docs/losses.md section 2, "Generalized Dice loss"; Sudre et al. 2017.
#include "passes.h"

namespace segloss {
namespace cpu {
namespace SEGLOSS_CPU_ISA {  // one copy per instruction set (cpu/isa.h)

Status reduce_generalized_dice(const Options& o, const Tensors& t, double* stats) {
  return reduce_pass<vm::GeneralizedDiceMath>(o, t, stats);
}

void gradient_generalized_dice(const Options& o, const Tensors& t, const double* coef, float* grad) {
  gradient_pass<vm::GeneralizedDiceMath>(o, t, coef, grad);
}

}  // namespace SEGLOSS_CPU_ISA
}  // namespace cpu
}  // namespace segloss
