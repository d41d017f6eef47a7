// Run-time values made compile-time constants, for the passes of every
// backend: f is called with std::integral_constant of the value, so that each
// value gets its own instance of the loop or kernel with its branches folded
// away. The CPU passes (cpu/passes.h) and the CUDA launches (cuda/kernels.cuh)
// both dispatch through these.
#pragma once

#include <type_traits>

#include "types.h"

namespace segloss {

template <TargetKind TK>
using TargetKindC = std::integral_constant<TargetKind, TK>;
template <Activation A>
using ActivationC = std::integral_constant<Activation, A>;

template <class F>
decltype(auto) with_target_kind(TargetKind tk, F&& f) {
  switch (tk) {
    case TargetKind::U8: return f(TargetKindC<TargetKind::U8>{});
    case TargetKind::U16: return f(TargetKindC<TargetKind::U16>{});
    case TargetKind::I32: return f(TargetKindC<TargetKind::I32>{});
    case TargetKind::F32Sparse: return f(TargetKindC<TargetKind::F32Sparse>{});
    case TargetKind::Dense: break;
  }
  return f(TargetKindC<TargetKind::Dense>{});
}

template <class F>
decltype(auto) with_activation(Activation a, F&& f) {
  switch (a) {
    case Activation::None: return f(ActivationC<Activation::None>{});
    case Activation::Softmax: return f(ActivationC<Activation::Softmax>{});
    case Activation::Sigmoid: break;
  }
  return f(ActivationC<Activation::Sigmoid>{});
}

}  // namespace segloss
