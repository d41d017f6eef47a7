// The part of TensorFlow's C API (its stable ABI; these match
// tensorflow/c/ops.h, kernels.h, tf_status.h, tf_tensor.h) that segloss's ops
// use, looked up at run time in the TensorFlow libraries tfjs-node has
// loaded into this process: the addon does not link TensorFlow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace segloss {
namespace tensorflow {

extern "C" {
struct TF_Status;
struct TF_Tensor;
struct TF_OpDefinitionBuilder;
struct TF_KernelBuilder;
struct TF_OpKernelConstruction;
struct TF_OpKernelContext;
}
constexpr int kTfOk = 0;
constexpr int kTfInvalidArgument = 3;
constexpr int kTfFloat = 1;
constexpr int kTfInt32 = 3;

struct TfApi {
  TF_Status* (*NewStatus)();
  void (*DeleteStatus)(TF_Status*);
  void (*SetStatus)(TF_Status*, int code, const char* msg);
  int (*GetCode)(const TF_Status*);
  const char* (*Message)(const TF_Status*);
  TF_OpDefinitionBuilder* (*NewOpDefinitionBuilder)(const char*);
  void (*OpDefinitionBuilderAddInput)(TF_OpDefinitionBuilder*, const char*);
  void (*OpDefinitionBuilderAddOutput)(TF_OpDefinitionBuilder*, const char*);
  void (*OpDefinitionBuilderAddAttr)(TF_OpDefinitionBuilder*, const char*);
  void (*OpDefinitionBuilderSetIsStateful)(TF_OpDefinitionBuilder*, bool);
  void (*RegisterOpDefinition)(TF_OpDefinitionBuilder*, TF_Status*);
  TF_KernelBuilder* (*NewKernelBuilder)(const char*, const char*, void* (*)(TF_OpKernelConstruction*),
                                        void (*)(void*, TF_OpKernelContext*), void (*)(void*));
  void (*RegisterKernelBuilder)(const char*, TF_KernelBuilder*, TF_Status*);
  void (*GetInput)(TF_OpKernelContext*, int, TF_Tensor**, TF_Status*);
  void (*OpKernelContext_Failure)(TF_OpKernelContext*, TF_Status*);
  TF_Tensor* (*AllocateOutput)(TF_OpKernelContext*, int, int dtype, const int64_t* dims, int num_dims, size_t len,
                               TF_Status*);
  int (*NumDims)(const TF_Tensor*);
  int64_t (*Dim)(const TF_Tensor*, int);
  int (*TensorType)(const TF_Tensor*);
  int64_t (*TensorElementCount)(const TF_Tensor*);
  void* (*TensorData)(const TF_Tensor*);
  void (*DeleteTensor)(TF_Tensor*);
};

// The API from the TensorFlow libraries in this process, or why not.
bool load_api(TfApi* api, std::string* why);

}  // namespace tensorflow
}  // namespace segloss
