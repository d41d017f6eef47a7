// Export table of segloss.node. The JS side (lib/native.ts) is the only caller.
#include <napi.h>

namespace segloss {
namespace napi {
void register_losses(Napi::Env env, Napi::Object exports);
void register_system(Napi::Env env, Napi::Object exports);
void register_tensorflow(Napi::Env env, Napi::Object exports);
}  // namespace napi
}  // namespace segloss

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  segloss::napi::register_losses(env, exports);
  segloss::napi::register_system(env, exports);
  segloss::napi::register_tensorflow(env, exports);
  exports.Set("version", Napi::String::New(env, SEGLOSS_VERSION));
  return exports;
}

NODE_API_MODULE(segloss, Init)
