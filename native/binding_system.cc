// backends(), threads, and the memory-bandwidth probe used by the benchmark.
#include <cstring>

#include "core/engine.h"
#include "core/thread_pool.h"
#include "cpu/passes.h"
#include "napi_util.h"

namespace segloss {
namespace napi {
namespace {

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto list = backend_info();
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", list[i].name);
    o.Set("compiled", list[i].compiled);
    o.Set("available", list[i].available);
    if (!list[i].reason.empty()) o.Set("reason", list[i].reason);
    if (list[i].name == "cpu") o.Set("threads", ThreadPool::instance().threads());
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw expected(env, ErrorKind::Type, "a number", "threads", describe(info[0]));
  const double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 0 && n <= 1024) || static_cast<int>(n) != n)
    throw expected(env, ErrorKind::Range, "an integer in [0, 1024] (0 = all cores)", "threads", describe(info[0]));
  ThreadPool::instance().set_threads(static_cast<int>(n));
  return env.Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ThreadPool::instance().threads());
}

// copy(src, dst): dst = src over the thread pool in the loss passes' chunk
// size, so the probe reads and writes memory the way the passes do.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || !info[1].IsTypedArray())
    throw expected(env, ErrorKind::Type, "two Float32Arrays", "copy", describe(info[0]));
  auto src = info[0].As<Napi::TypedArray>();
  const int64_t n = static_cast<int64_t>(src.ElementLength());
  const float* s = typed<const float>(info[0], napi_float32_array, "Float32Array", "src", n);
  float* d = typed<float>(info[1], napi_float32_array, "Float32Array", "dst", n);
  const int64_t chunk = cpu::kChunk * 2;
  ThreadPool::instance().parallel_for((n + chunk - 1) / chunk, [&](int64_t i) {
    const int64_t b = i * chunk, e = b + chunk < n ? b + chunk : n;
    std::memcpy(d + b, s + b, static_cast<size_t>(e - b) * sizeof(float));
  });
  return env.Undefined();
}

}  // namespace

void register_system(Napi::Env env, Napi::Object exports) {
  exports.Set("backends", Napi::Function::New(env, Backends, "backends"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
}

}  // namespace napi
}  // namespace segloss
