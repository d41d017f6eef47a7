#include "backend.h"

#include "passes.h"

namespace segloss {
namespace cpu {

Status reduce(const Options& o, const Tensors& t, double* stats) {
  switch (o.loss) {
    case Loss::GeneralizedDice: return reduce_generalized_dice(o, t, stats);
    case Loss::Dice: return reduce_dice(o, t, stats);
    case Loss::SensitivitySpecificity: return reduce_sensitivity_specificity(o, t, stats);
    case Loss::WeightedCrossEntropy: return reduce_weighted_cross_entropy(o, t, stats);
  }
  return Status::Internal("unknown loss");
}

Status check(const Options& o, const Tensors& t) { return check_pass(o, t); }

void gradient(const Options& o, const Tensors& t, const double* coef, float* grad) {
  switch (o.loss) {
    case Loss::GeneralizedDice: return gradient_generalized_dice(o, t, coef, grad);
    case Loss::Dice: return gradient_dice(o, t, coef, grad);
    case Loss::SensitivitySpecificity: return gradient_sensitivity_specificity(o, t, coef, grad);
    case Loss::WeightedCrossEntropy: return gradient_weighted_cross_entropy(o, t, coef, grad);
  }
}

}  // namespace cpu
}  // namespace segloss
