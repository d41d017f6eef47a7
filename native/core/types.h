// Plain C++ description of one loss call: tensors, options, status.
// No <napi.h>, no CUDA: the N-API glue fills these structs, the CPU and CUDA
// backends read them.
#pragma once

#include <cstdint>
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

// Options of docs/losses.md section 2, already validated and defaulted by the
// TypeScript layer.
struct Options {
  Loss loss = Loss::GeneralizedDice;
  Activation activation = Activation::None;
  Reduction reduction = Reduction::Pooled;
  bool include_background = true;
  bool has_ignore = false;
  double ignore_index = 0;
  // generalizedDice, dice
  Weighting weighting = Weighting::Square;
  double smooth_num = 1e-5, smooth_den = 1e-5, floor = 0;
  bool squared = false, jaccard = false;
  // dice (weighted mean) and weightedCrossEntropy (Array): K entries
  std::vector<double> class_weights;
  // sensitivitySpecificity
  double lambda = 0.05, epsilon = 1e-5;
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

struct Status {
  ErrorKind kind = ErrorKind::Ok;
  std::string message;
  bool ok() const { return kind == ErrorKind::Ok; }
  static Status Range(std::string m) { return {ErrorKind::Range, std::move(m)}; }
  static Status Device(std::string m) { return {ErrorKind::Device, std::move(m)}; }
  static Status Internal(std::string m) { return {ErrorKind::Internal, std::move(m)}; }
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
