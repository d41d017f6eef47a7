// Finding and wording bad input (core/describe.h). Scalar host code: it runs
// once per failed call.
#include "describe.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "voxel_math.h"

namespace segloss {

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
  // JS writes the exponent without leading zeros: 1e-9, not 1e-09
  std::string s = buf;
  const size_t e = s.find('e');
  if (e != std::string::npos) {
    size_t d = e + 2;  // after the sign
    while (d + 1 < s.size() && s[d] == '0') s.erase(d, 1);
  }
  return s;
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

}  // namespace

Status bad_input_status(const BadInput& b) {
  Status s = Status::Range("Expected " + b.expected + " for " + b.argument + " but received " +
                           format_number(b.value) + " at index " + std::to_string(b.index()) + b.hint);
  s.bad = std::make_shared<const BadInput>(b);
  return s;
}

bool find_bad_input(const Options& o, const Tensors& t, int64_t begin, int64_t end, BadInput* out) {
  const vm::Ctx c = vm::make_ctx(o, t);
  std::vector<double> p(c.K), r(c.K);
  auto found = [&](const std::string& what, const char* arg, double value, int64_t v, int64_t channel, int64_t width,
                   const char* hint = "") {
    *out = BadInput{arg, what, hint, value, v, channel, width};
    return true;
  };
  for (int64_t v = begin; v < end; ++v) {
    int st;
    switch (t.target_kind) {
      case TargetKind::U8: st = vm::read_target<0, TargetKind::U8>(c, t.target, v, r.data()); break;
      case TargetKind::U16: st = vm::read_target<0, TargetKind::U16>(c, t.target, v, r.data()); break;
      case TargetKind::I32: st = vm::read_target<0, TargetKind::I32>(c, t.target, v, r.data()); break;
      case TargetKind::F32Sparse: st = vm::read_target<0, TargetKind::F32Sparse>(c, t.target, v, r.data()); break;
      default: st = vm::read_target<0, TargetKind::Dense>(c, t.target, v, r.data()); break;
    }
    if (st == 2) {
      if (t.target_kind != TargetKind::Dense) {
        const std::string range = c.binary ? "class indices 0 or 1 (binary map)"
                                           : "integer class indices in [0, " + std::to_string(t.C - 1) + "]";
        return found(range + ignore_clause(o), "target", target_value(t, v), v, 0, 1);
      }
      if (c.binary) return found("values in [0, 1]" + ignore_clause(o), "target", target_value(t, v), v, 0, 1);
      const float* tv = static_cast<const float*>(t.target) + v * t.C;
      for (int64_t ch = 0; ch < t.C; ++ch)
        if (!(tv[ch] >= 0.0f && tv[ch] <= 1.0f)) return found("values in [0, 1]", "target", tv[ch], v, ch, t.C);
    }
    double lse;
    if (vm::probabilities<0>(c, t.x + v * t.C, p.data(), &lse)) continue;
    for (int64_t ch = 0; ch < t.C; ++ch) {
      const float x = t.x[v * t.C + ch];
      if (o.activation == Activation::None) {
        if (!(x >= 0.0f && x <= 1.0f))
          return found("probabilities in [0, 1] (activation 'none')", "prediction", x, v, ch, t.C,
                       "; for logits pass activation: 'softmax' or 'sigmoid'");
      } else if (!std::isfinite(x)) {
        return found("finite values", "prediction", x, v, ch, t.C);
      }
    }
  }
  return false;
}

Status describe_bad_input(const Options& o, const Tensors& t, int64_t begin, int64_t end) {
  BadInput b;
  if (find_bad_input(o, t, begin, end, &b)) return bad_input_status(b);
  return Status::Internal("input check flagged a chunk without a bad value");
}

}  // namespace segloss
