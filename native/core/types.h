// Plain C++ description of one loss call: tensors, options, status.
// No <napi.h>, no CUDA: the N-API glue fills these structs, the CPU and CUDA
// backends read them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace segloss {

enum class Loss : int { GeneralizedDice = 0, Dice = 1, SensitivitySpecificity = 2, WeightedCrossEntropy = 3 };
enum class Activation : int { None = 0, Softmax = 1, Sigmoid = 2 };
enum class Reduction : int { Pooled = 0, Mean = 1, Sum = 2, None = 3 };
// Sparse kinds hold one class index per voxel; Dense holds C floats per voxel,
// or one r1 per voxel on a binary map (C = 1).
enum class TargetKind : int { U8 = 0, U16 = 1, I32 = 2, F32Sparse = 3, Dense = 4 };
enum class Weighting : int { Square = 0, Simple = 1, Uniform = 2 };
enum class WceWeights : int { InverseFrequency = 0, Paper = 1, Array = 2 };

// The names JavaScript gives the values of these enums, in value order. The
// addon exports them with their numbers (`enums`, binding_system.cc) and
// bounds each spec field by its table (binding_losses.cc); lib/ takes every
// number it sends from there. A value is added here and in its enum together.
namespace names {
inline constexpr const char* loss[] = {"generalizedDice", "dice", "sensitivitySpecificity", "weightedCrossEntropy"};
inline constexpr const char* activation[] = {"none", "softmax", "sigmoid"};
inline constexpr const char* reduction[] = {"pooled", "mean", "sum", "none"};
// (uint8 / uint16 / int32 / float32 class indices, or dense floats)
inline constexpr const char* target_kind[] = {"uint8", "uint16", "int32", "float32", "dense"};
inline constexpr const char* weighting[] = {"square", "simple", "uniform"};
inline constexpr const char* wce_weights[] = {"inverse-frequency", "paper", "array"};
}  // namespace names

// The numeric options: defaults and ranges, one table. Options' initialisers,
// the addon's spec parser (binding_losses.cc) and, through the addon's
// `numberOptions` export, lib/validate.ts all read it (docs/losses.md
// section 2 gives the meaning of each).
struct NumberOption {
  const char* name;      // the JavaScript option name
  double initial;        // its default
  double min;            // values >= min, or > min when min_open
  bool min_open;
  double max;            // values <= max (a finite value is asked for either way)
  const char* expected;  // "Expected <expected> for <name> but received ..."
};
namespace option {
enum : int { SmoothNumerator = 0, SmoothDenominator, DenominatorFloor, Lambda, Epsilon };
}
inline constexpr NumberOption kNumberOptions[] = {
    {"smoothNumerator", 1e-5, 0, false, 1.7976931348623157e308, "a finite number >= 0"},
    {"smoothDenominator", 1e-5, 0, false, 1.7976931348623157e308, "a finite number >= 0"},
    {"denominatorFloor", 0, 0, false, 1.7976931348623157e308, "a finite number >= 0"},
    {"lambda", 0.05, 0, false, 1, "a number in [0, 1]"},
    {"epsilon", 1e-5, 0, true, 1.7976931348623157e308, "a finite number > 0"},
};
constexpr bool in_range(const NumberOption& o, double v) {
  return v - v == 0 && (o.min_open ? v > o.min : v >= o.min) && v <= o.max;  // (v - v: NaN for NaN and +-inf)
}

// Options of docs/losses.md section 2, validated and defaulted.
struct Options {
  Loss loss = Loss::GeneralizedDice;
  Activation activation = Activation::None;
  Reduction reduction = Reduction::Pooled;
  bool include_background = true;
  bool has_ignore = false;
  double ignore_index = 0;
  // generalizedDice, dice
  Weighting weighting = Weighting::Square;
  double smooth_num = kNumberOptions[option::SmoothNumerator].initial;
  double smooth_den = kNumberOptions[option::SmoothDenominator].initial;
  double floor = kNumberOptions[option::DenominatorFloor].initial;
  bool squared = false, jaccard = false;
  // dice (weighted mean) and weightedCrossEntropy (Array): K entries
  std::vector<double> class_weights;
  // sensitivitySpecificity
  double lambda = kNumberOptions[option::Lambda].initial;
  double epsilon = kNumberOptions[option::Epsilon].initial;
  bool class_sum = false;
  // weightedCrossEntropy
  WceWeights wce_weights = WceWeights::InverseFrequency;
};

// The tensors. Voxel v of sample b is element (b * V + v); its C prediction
// channels are contiguous (channels-last). 64-bit indices throughout.
struct Tensors {
  const float* x = nullptr;  // [B, V, C]
  int64_t B = 0, V = 0, C = 0;
  const void* target = nullptr;  // [B, V] sparse or [B, V, C] dense
  TargetKind target_kind = TargetKind::U8;
  const uint8_t* mask = nullptr;  // [B, V] or null
};

// Number of classes the loss sees: the channels, or 2 on a binary map.
inline int64_t num_classes(int64_t C) { return C == 1 ? 2 : C; }
inline bool is_multilabel(const Options& o, int64_t C) { return o.activation == Activation::Sigmoid && C >= 2; }

// What went wrong, for the glue to turn into a JS error of the right class.
enum class ErrorKind : int { Ok = 0, Type = 1, Range = 2, Device = 3, Internal = 4 };

// A bad value a reduction pass found in the data (docs/losses.md section 5),
// as a record: any backend finds it, core/describe.cc words it, and the addon
// hands its fields to JavaScript on the RangeError (argument, index, value).
struct BadInput {
  std::string argument;  // "target" or "prediction"
  std::string expected;  // what its values must be
  std::string hint;      // appended to the message ("; for logits pass ...")
  double value = 0;
  int64_t voxel = 0;    // voxel of the call (b V + v)
  int64_t channel = 0;  // the value's place among the voxel's `width` values
  int64_t width = 1;    // values per voxel in `argument` (C, or 1 for a class index)
  int64_t index() const { return voxel * width + channel; }
};

struct Status {
  ErrorKind kind = ErrorKind::Ok;
  std::string message;
  std::shared_ptr<const BadInput> bad;  // set for bad data (kind Range)
  bool ok() const { return kind == ErrorKind::Ok; }
  static Status Range(std::string m) { return {ErrorKind::Range, std::move(m), nullptr}; }
  static Status Device(std::string m) { return {ErrorKind::Device, std::move(m), nullptr}; }
  static Status Internal(std::string m) { return {ErrorKind::Internal, std::move(m), nullptr}; }
};

// What backends() reports of one backend.
struct BackendInfo {
  std::string name;
  bool compiled = false;
  bool available = false;
  std::string reason;  // why not available
  std::string device;  // what it runs on, when available
};

}  // namespace segloss
