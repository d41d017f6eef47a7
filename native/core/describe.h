// The slow path after a reduction pass (of any backend) flagged bad input:
// which value, where, and the error that says so. Runs once per failed call,
// on host memory.
#pragma once

#include <cstdint>
#include <string>

#include "types.h"

namespace segloss {

// The first bad value in voxels [begin, end) of host tensors t, into *out;
// false if there is none.
bool find_bad_input(const Options& o, const Tensors& t, int64_t begin, int64_t end, BadInput* out);

// The RangeError of a bad value: "Expected <expected> for <argument> but
// received <value> at index <index><hint>", carrying the record.
Status bad_input_status(const BadInput& b);

// find_bad_input as a Status; an internal error if the voxels hold none.
Status describe_bad_input(const Options& o, const Tensors& t, int64_t begin, int64_t end);

// A number as the error messages print it (JS-like).
std::string format_number(double v);

}  // namespace segloss
