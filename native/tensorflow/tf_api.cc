// Finding TensorFlow's C API in this process (tensorflow/tf_api.h).
#include "tf_api.h"

#include <dlfcn.h>
#include <link.h>

#include <cstring>
#include <type_traits>
#include <vector>

namespace segloss {
namespace tensorflow {

namespace {

// Paths of the loaded shared objects whose file name starts with "libtensorflow".
int collect_tensorflow(struct dl_phdr_info* info, size_t, void* data) {
  const char* name = info->dlpi_name;
  const char* base = name ? std::strrchr(name, '/') : nullptr;
  base = base ? base + 1 : name;
  if (base && std::strncmp(base, "libtensorflow", 13) == 0)
    static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

}  // namespace

bool load_api(TfApi* api, std::string* why) {
  std::vector<std::string> paths;
  dl_iterate_phdr(collect_tensorflow, &paths);
  if (paths.empty()) {
    *why = "TensorFlow is not loaded in this process (load @tensorflow/tfjs-node before registering)";
    return false;
  }
  std::vector<void*> handles;
  for (const std::string& p : paths)
    if (void* h = dlopen(p.c_str(), RTLD_LAZY | RTLD_NOLOAD)) handles.push_back(h);
  std::string missing;
  auto find = [&](auto& fn, const char* name) {
    for (void* h : handles)
      if (void* s = dlsym(h, name)) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(s);
        return;
      }
    fn = nullptr;
    missing += missing.empty() ? name : std::string(", ") + name;
  };
  find(api->NewStatus, "TF_NewStatus");
  find(api->DeleteStatus, "TF_DeleteStatus");
  find(api->SetStatus, "TF_SetStatus");
  find(api->GetCode, "TF_GetCode");
  find(api->Message, "TF_Message");
  find(api->NewOpDefinitionBuilder, "TF_NewOpDefinitionBuilder");
  find(api->OpDefinitionBuilderAddInput, "TF_OpDefinitionBuilderAddInput");
  find(api->OpDefinitionBuilderAddOutput, "TF_OpDefinitionBuilderAddOutput");
  find(api->OpDefinitionBuilderAddAttr, "TF_OpDefinitionBuilderAddAttr");
  find(api->OpDefinitionBuilderSetIsStateful, "TF_OpDefinitionBuilderSetIsStateful");
  find(api->RegisterOpDefinition, "TF_RegisterOpDefinition");
  find(api->NewKernelBuilder, "TF_NewKernelBuilder");
  find(api->RegisterKernelBuilder, "TF_RegisterKernelBuilder");
  find(api->GetInput, "TF_GetInput");
  find(api->OpKernelContext_Failure, "TF_OpKernelContext_Failure");
  find(api->AllocateOutput, "TF_AllocateOutput");
  find(api->NumDims, "TF_NumDims");
  find(api->Dim, "TF_Dim");
  find(api->TensorType, "TF_TensorType");
  find(api->TensorElementCount, "TF_TensorElementCount");
  find(api->TensorData, "TF_TensorData");
  find(api->DeleteTensor, "TF_DeleteTensor");
  for (void* h : handles) dlclose(h);  // RTLD_NOLOAD took a reference; the libraries stay loaded by tfjs-node
  if (!missing.empty()) {
    *why = "the TensorFlow libraries loaded here (" + paths[0] + " ...) lack " + missing;
    return false;
  }
  return true;
}

}  // namespace tensorflow
}  // namespace segloss
