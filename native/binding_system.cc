// backends(), threads, and the memory-bandwidth probe used by the benchmark.
#include <cstring>

#include "engine.h"
#include "core/loss_traits.h"
#include "core/thread_pool.h"
#include "cpu/backend.h"
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
    if (!list[i].device.empty()) o.Set("device", list[i].device);
    if (list[i].name == "cpu") {
      o.Set("threads", ThreadPool::instance().threads());
      const cpu::IsaChoice& isa = cpu::isa();
      o.Set("isa", isa.name);
      Napi::Array isas = Napi::Array::New(env);
      size_t from = 0;
      while (from < isa.supported.size()) {
        size_t to = isa.supported.find(", ", from);
        if (to == std::string::npos) to = isa.supported.size();
        isas.Set(isas.Length(), isa.supported.substr(from, to - from));
        from = to + 2;
      }
      o.Set("isas", isas);
      if (!isa.error.empty()) {
        o.Set("available", false);
        o.Set("reason", isa.error);
      }
    }
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

#if defined(SEGLOSS_TEST_HOOKS)
// copy(src, dst): dst = src over the thread pool in the loss passes' chunk
// size, so the probe reads and writes memory the way the passes do. The
// benchmark's copy probe (bench/bandwidth.ts); a test hook.
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

#endif

// releaseDeviceMemory(): frees the CUDA backend's pooled device memory and
// pinned staging buffers (they are otherwise kept for the next call).
Napi::Value ReleaseDeviceMemory(const Napi::CallbackInfo& info) {
  release_device_memory();
  return info.Env().Undefined();
}

// Device memory for DeviceBuffer. `device` is the native Device value (cuda,
// or the emulation); addresses travel as BigInt.
Device device_arg(const Napi::Value& v) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  const int cuda = static_cast<int>(Device::Cuda), emulated = static_cast<int>(Device::CudaEmulated);
  if (d != cuda && d != emulated) {
    throw expected(v.Env(), ErrorKind::Range,
                   "a device id (" + std::to_string(cuda) + " = cuda or " + std::to_string(emulated) +
                       " = cuda-emulated)",
                   "device", describe(v));
  }
  return static_cast<Device>(static_cast<int>(d));
}

// {name: value} of one enum's names table (core/types.h).
template <size_t N>
Napi::Object enum_object(Napi::Env env, const char* const (&names)[N]) {
  Napi::Object o = Napi::Object::New(env);
  for (size_t i = 0; i < N; ++i) o.Set(names[i], static_cast<double>(i));
  o.Freeze();
  return o;
}

// The numbers lib/ sends for each enum, by the names JavaScript uses.
Napi::Object enums(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", enum_object(env, names::loss));
  o.Set("activation", enum_object(env, names::activation));
  o.Set("reduction", enum_object(env, names::reduction));
  o.Set("targetKind", enum_object(env, names::target_kind));
  o.Set("weighting", enum_object(env, names::weighting));
  o.Set("wceWeights", enum_object(env, names::wce_weights));
  o.Set("device", enum_object(env, names::device));
  o.Freeze();
  return o;
}

// Each loss's traits (core/loss_traits.h) by its JavaScript name: fields and
// coefficients per class, includeBackground's default, its own option names.
Napi::Object losses(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  for (const LossTraits& t : kLossTraits) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("fields", t.fields);
    o.Set("coefficients", t.coefficients);
    o.Set("includeBackground", t.include_background);
    Napi::Array names = Napi::Array::New(env);
    for (const char *p = t.options, *q = p;; ++q)
      if (*q == ',' || *q == 0) {
        if (q > p) names.Set(names.Length(), std::string(p, q));
        if (*q == 0) break;
        p = q + 1;
      }
    names.Freeze();
    o.Set("options", names);
    o.Freeze();
    out.Set(names::loss[static_cast<int>(t.loss)], o);
  }
  out.Freeze();
  return out;
}

// The numeric options' defaults and ranges (core/types.h) by name.
Napi::Object number_options(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  for (const NumberOption& n : kNumberOptions) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("default", n.initial);
    o.Set("min", n.min);
    o.Set("minOpen", n.min_open);
    o.Set("max", n.max);
    o.Set("expected", n.expected);
    o.Freeze();
    out.Set(n.name, o);
  }
  out.Freeze();
  return out;
}

void throw_if(Napi::Env env, const Status& s) {
  if (!s.ok()) throw make_error(env, s);
}

// deviceAlloc(device, bytes) -> BigInt
Napi::Value DeviceAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device d = device_arg(info[0]);
  const double n = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
  if (!(n >= 0 && n <= 9007199254740991.0) || n != static_cast<double>(static_cast<int64_t>(n)))
    throw expected(env, ErrorKind::Range, "a byte count", "bytes", describe(info[1]));
  void* p = nullptr;
  throw_if(env, device_alloc(d, static_cast<size_t>(n), &p));
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
}

// deviceFree(device, address)
Napi::Value DeviceFree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device d = device_arg(info[0]);
  throw_if(env, device_free(d, pointer(info[1], "pointer")));
  return env.Undefined();
}

// deviceCopy(device, address, typedArray, toDevice): the typed array's bytes
// to (toDevice) or from the device memory at address.
Napi::Value DeviceCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Device d = device_arg(info[0]);
  void* p = pointer(info[1], "pointer");
  if (!info[2].IsTypedArray()) throw expected(env, ErrorKind::Type, "a typed array", "data", describe(info[2]));
  auto a = info[2].As<Napi::TypedArray>();
  bool detached = false;
  uint8_t* host = typed_data(a, &detached);
  if (detached) throw expected(env, ErrorKind::Type, "a typed array", "data", "a detached buffer");
  const size_t bytes = a.ByteLength();
  throw_if(env, info[3].ToBoolean().Value() ? device_upload(d, p, host, bytes) : device_download(d, host, p, bytes));
  return env.Undefined();
}

}  // namespace

void register_system(Napi::Env env, Napi::Object exports) {
  exports.Set("enums", enums(env));
  exports.Set("backends", Napi::Function::New(env, Backends, "backends"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("losses", losses(env));
  exports.Set("numberOptions", number_options(env));
#if defined(SEGLOSS_TEST_HOOKS)
  exports.Set("testHooks", true);
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
#else
  exports.Set("testHooks", false);
#endif
  exports.Set("releaseDeviceMemory", Napi::Function::New(env, ReleaseDeviceMemory, "releaseDeviceMemory"));
  exports.Set("deviceAlloc", Napi::Function::New(env, DeviceAlloc, "deviceAlloc"));
  exports.Set("deviceFree", Napi::Function::New(env, DeviceFree, "deviceFree"));
  exports.Set("deviceCopy", Napi::Function::New(env, DeviceCopy, "deviceCopy"));
}

}  // namespace napi
}  // namespace segloss
