// What every layer knows of a loss beyond its per-voxel math: the shape of
// its statistics and gradient coefficients, whether its gradient pass reads
// the prediction, and its per-loss option defaults. One table; the voxel math
// (core/voxel_math.h), finalize, both backends and, through the addon's
// `losses` export, lib/ take these from here.
#pragma once

#include "types.h"

namespace segloss {

struct LossTraits {
  Loss loss;
  int fields;                    // statistics per class (after the sample's kept-voxel count N)
  int coefficients;              // gradient coefficients per class, from finalize
  bool reads_prediction_unactivated;  // the gradient pass reads the prediction with activation 'none'
  bool include_background;       // includeBackground's default
  const char* options;           // the loss's own option names, beyond the common ones (comma-separated)
};

// Indexed by Loss. What the statistics and coefficients are: each loss's
// struct in core/voxel_math.h; its formulas and options: docs/losses.md
// section 2.
inline constexpr LossTraits kLossTraits[] = {
    // (with 'none' dL/dp_l = a_l r_l + b_l needs the target alone)
    {Loss::GeneralizedDice, 3, 2, false, true, "weighting,smoothNumerator,smoothDenominator,denominatorFloor"},
    {Loss::Dice, 5, 3, true, true, "smoothNumerator,smoothDenominator,squared,jaccard,classWeights"},
    {Loss::SensitivitySpecificity, 3, 2, true, false, "lambda,epsilon,classReduction"},
    {Loss::WeightedCrossEntropy, 4, 2, true, true, "classWeights"},
};

constexpr const LossTraits& loss_traits(Loss l) { return kLossTraits[static_cast<int>(l)]; }

// Whether the gradient pass reads the prediction (else the target and the
// coefficients alone give dL/dx).
constexpr bool gradient_reads_prediction(Loss l, Activation a) {
  return a != Activation::None || loss_traits(l).reads_prediction_unactivated;
}

}  // namespace segloss
