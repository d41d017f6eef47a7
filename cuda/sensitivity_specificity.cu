// Sensitivity-specificity loss on CUDA (and on the CPU through the SIMT emulation): the reduce and
// gradient kernels of cuda/kernels.cuh with the per-voxel math of
// vm::SensitivitySpecificityMath (native/core/voxel_math.h), the same functions the CPU loops
// run; the loss value and gradient coefficients come from core/finalize.cc.
// Formula: docs/losses.md section 2, "Sensitivity-specificity loss"; Sudre et al. 2017.
#include "kernels.cuh"

namespace segloss {
namespace SEGLOSS_CUDA_NS {

cudaError_t pass_sensitivity_specificity(const Launch& a, bool reduce) { return launch_pass<vm::SensitivitySpecificityMath>(a, reduce); }

}  // namespace SEGLOSS_CUDA_NS
}  // namespace segloss
