// The CPU backend: the two passes of each loss, on the shared thread pool.
#pragma once

#include "../core/types.h"

namespace segloss {
namespace cpu {

// stats: [B][1 + K F] (core/finalize.h). Checks the input as it reads it.
Status reduce(const Options& o, const Tensors& t, double* stats);
// The checks of reduce alone.
Status check(const Options& o, const Tensors& t);
// coef: [B][K][NCOEF] from finalize(); writes every element of grad.
void gradient(const Options& o, const Tensors& t, const double* coef, float* grad);

// The first bad value in voxels [begin, end) as a RangeError (the slow path
// after a reduction found one; any backend's).
Status describe_bad_input(const Options& o, const Tensors& t, int64_t begin, int64_t end);

// One pair per loss, in cpu/<loss>.cc.
Status reduce_generalized_dice(const Options& o, const Tensors& t, double* stats);
void gradient_generalized_dice(const Options& o, const Tensors& t, const double* coef, float* grad);
Status reduce_dice(const Options& o, const Tensors& t, double* stats);
void gradient_dice(const Options& o, const Tensors& t, const double* coef, float* grad);
Status reduce_sensitivity_specificity(const Options& o, const Tensors& t, double* stats);
void gradient_sensitivity_specificity(const Options& o, const Tensors& t, const double* coef, float* grad);
Status reduce_weighted_cross_entropy(const Options& o, const Tensors& t, double* stats);
void gradient_weighted_cross_entropy(const Options& o, const Tensors& t, const double* coef, float* grad);

}  // namespace cpu
}  // namespace segloss
