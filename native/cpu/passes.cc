// The check-only pass and this instruction set's table of passes
// (cpu/isa.h), compiled once per instruction set.
#include "passes.h"

namespace segloss {
namespace cpu {
namespace SEGLOSS_CPU_ISA {

Status check_pass(const Options& o, const Tensors& t) {
  // The reduction pass of the cheapest loss does every check; its sums are dropped.
  std::vector<double> stats(static_cast<size_t>(t.B) * (1 + num_classes(t.C) * vm::GeneralizedDiceMath::F));
  return reduce_pass<vm::GeneralizedDiceMath>(o, t, stats.data());
}

namespace {

Status reduce(const Options& o, const Tensors& t, double* stats) {
  switch (o.loss) {
    case Loss::GeneralizedDice: return reduce_generalized_dice(o, t, stats);
    case Loss::Dice: return reduce_dice(o, t, stats);
    case Loss::SensitivitySpecificity: return reduce_sensitivity_specificity(o, t, stats);
    case Loss::WeightedCrossEntropy: return reduce_weighted_cross_entropy(o, t, stats);
  }
  return Status::Internal("unknown loss");
}

void gradient(const Options& o, const Tensors& t, const double* coef, float* grad) {
  switch (o.loss) {
    case Loss::GeneralizedDice: return gradient_generalized_dice(o, t, coef, grad);
    case Loss::Dice: return gradient_dice(o, t, coef, grad);
    case Loss::SensitivitySpecificity: return gradient_sensitivity_specificity(o, t, coef, grad);
    case Loss::WeightedCrossEntropy: return gradient_weighted_cross_entropy(o, t, coef, grad);
  }
}

}  // namespace

const Passes kPasses = {reduce, gradient, check_pass};

}  // namespace SEGLOSS_CPU_ISA
}  // namespace cpu
}  // namespace segloss
