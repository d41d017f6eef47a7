// The slow path after a reduction found bad input: which value, where, as the
// error message says it. Baseline code only (cpu/isa.h): it runs once per
// failed call.
#include <cstdio>
#include <cstdlib>

#include "passes.h"

namespace segloss {
namespace cpu {

using baseline::Scratch;

std::string format_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  // Shortest text that reads back as the same float32 (how JS prints the
  // element of a Float32Array, mostly), else as the same double.
  char buf[32];
  const bool is_float = static_cast<double>(static_cast<float>(v)) == v;
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    const double back = std::strtod(buf, nullptr);
    if (is_float ? static_cast<float>(back) == static_cast<float>(v) : back == v) break;
  }
  return buf;
}

namespace {

double target_value(const Tensors& t, int64_t i) {
  switch (t.target_kind) {
    case TargetKind::U8: return static_cast<const uint8_t*>(t.target)[i];
    case TargetKind::U16: return static_cast<const uint16_t*>(t.target)[i];
    case TargetKind::I32: return static_cast<const int32_t*>(t.target)[i];
    default: return static_cast<const float*>(t.target)[i];
  }
}

std::string ignore_clause(const Options& o) {
  return o.has_ignore ? " or ignoreIndex " + format_number(o.ignore_index) : "";
}

Status bad_value(const std::string& what, const std::string& arg, double value, int64_t index,
                 const std::string& hint = "") {
  return Status::Range("Expected " + what + " for " + arg + " but received " + format_number(value) + " at index " +
                       std::to_string(index) + hint);
}

}  // namespace

Status describe_bad_input(const Options& o, const Tensors& t, int64_t begin, int64_t end) {
  const vm::Ctx c = vm::make_ctx(o, t);
  Scratch sc(c.K);
  for (int64_t v = begin; v < end; ++v) {
    int st;
    switch (t.target_kind) {
      case TargetKind::U8: st = vm::read_target<0, TargetKind::U8>(c, t.target, v, sc.r); break;
      case TargetKind::U16: st = vm::read_target<0, TargetKind::U16>(c, t.target, v, sc.r); break;
      case TargetKind::I32: st = vm::read_target<0, TargetKind::I32>(c, t.target, v, sc.r); break;
      case TargetKind::F32Sparse: st = vm::read_target<0, TargetKind::F32Sparse>(c, t.target, v, sc.r); break;
      default: st = vm::read_target<0, TargetKind::Dense>(c, t.target, v, sc.r); break;
    }
    if (st == 2) {
      if (t.target_kind != TargetKind::Dense) {
        const std::string range = c.binary ? "class indices 0 or 1 (binary map)"
                                           : "integer class indices in [0, " + std::to_string(t.C - 1) + "]";
        return bad_value(range + ignore_clause(o), "target", target_value(t, v), v);
      }
      if (c.binary) return bad_value("values in [0, 1]" + ignore_clause(o), "target", target_value(t, v), v);
      const float* tv = static_cast<const float*>(t.target) + v * t.C;
      for (int64_t ch = 0; ch < t.C; ++ch)
        if (!(tv[ch] >= 0.0f && tv[ch] <= 1.0f)) return bad_value("values in [0, 1]", "target", tv[ch], v * t.C + ch);
    }
    double lse;
    if (vm::probabilities<0>(c, t.x + v * t.C, sc.p, &lse)) continue;
    for (int64_t ch = 0; ch < t.C; ++ch) {
      const float x = t.x[v * t.C + ch];
      if (o.activation == Activation::None) {
        if (!(x >= 0.0f && x <= 1.0f))
          return bad_value("probabilities in [0, 1] (activation 'none')", "prediction", x, v * t.C + ch,
                           "; for logits pass activation: 'softmax' or 'sigmoid'");
      } else if (!std::isfinite(x)) {
        return bad_value("finite values", "prediction", x, v * t.C + ch);
      }
    }
  }
  return Status::Internal("input check flagged a chunk without a bad value");
}

}  // namespace cpu
}  // namespace segloss
