// Call-spec parsing shared by the binding_*.cc glue: the JS spec object
// (lib/native.ts NativeSpec) into the core's plain structs.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

#include "engine.h"

namespace segloss {
namespace napi {

// The options of a spec (and C); throws a RangeError / TypeError naming the field.
void parse_options(const Napi::Object& s, Request* r);
// B and V of a spec (after parse_options: C), at most 2^53 - 1 elements in all.
void parse_shape(const Napi::Object& s, Request* r);
// gradScale: one value, or B with per_sample.
GradScale parse_scale(const Napi::Value& v, bool per_sample, int64_t B);
Napi::Float64Array to_js(Napi::Env env, const std::vector<double>& v);

}  // namespace napi
}  // namespace segloss
