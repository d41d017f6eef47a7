// Argument checks for the N-API glue, and the one helper that builds errors.
//
// The TypeScript layer validates first and says more; these checks make sure
// that a direct caller of the .node file cannot crash the process: wrong
// types give TypeError, wrong lengths and values RangeError, both with
// "Expected <what> for <argument> but received <value>".
#pragma once

#include <napi.h>

#include <cmath>
#include <new>
#include <stdexcept>
#include <string>

#include "core/describe.h"
#include "core/types.h"

namespace segloss {
namespace napi {

inline std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsTypedArray()) {
    static const char* names[] = {"Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
                                  "Int32Array", "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array",
                                  "BigUint64Array"};
    const auto t = v.As<Napi::TypedArray>().TypedArrayType();
    return (t >= 0 && t <= 10) ? names[t] : "a typed array";
  }
  if (v.IsArray()) return "an Array";
  if (v.IsNumber()) {
    return format_number(v.As<Napi::Number>().DoubleValue());
  }
  if (v.IsString()) return "'" + v.As<Napi::String>().Utf8Value() + "'";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsFunction()) return "a function";
  return "an object";
}

// The single place where errors are built.
inline Napi::Error make_error(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::Type: return Napi::TypeError::New(env, message);
    case ErrorKind::Range: return Napi::RangeError::New(env, message);
    default: return Napi::Error::New(env, message);
  }
}

// A failed Status as a JS error. Bad data found by a pass (Status::bad) also
// carries its record: error.argument, error.index (the element of that
// argument) and error.value.
inline Napi::Error make_error(Napi::Env env, const Status& s) {
  Napi::Error e = make_error(env, s.kind, s.message);
  if (s.bad) {
    Napi::Object o = e.Value();
    o.Set("argument", s.bad->argument);
    o.Set("index", static_cast<double>(s.bad->index()));
    o.Set("value", s.bad->value);
  }
  return e;
}

// The single catch site of each entry point: C++ exceptions become JS errors.
template <class F>
Napi::Value guarded(const Napi::CallbackInfo& info, F&& f) {
  try {
    return f();
  } catch (const Napi::Error& e) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(info.Env(), "segloss: out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("segloss: internal error: ") + e.what());
  }
}

inline Napi::Error expected(Napi::Env env, ErrorKind kind, const std::string& what, const std::string& arg,
                            const std::string& received) {
  return make_error(env, kind, "Expected " + what + " for " + arg + " but received " + received);
}

inline Napi::Value field(const Napi::Object& o, const char* name) { return o.Get(name); }

inline double number(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsNumber()) throw expected(o.Env(), ErrorKind::Type, "a number", name, describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

inline int64_t count(const Napi::Object& o, const char* name) {
  const double d = number(o, name);
  if (!(d >= 1 && d <= 9007199254740991.0) || std::floor(d) != d)
    throw expected(o.Env(), ErrorKind::Range, "a positive integer", name, describe(field(o, name)));
  return static_cast<int64_t>(d);
}

inline int enumeration(const Napi::Object& o, const char* name, int n) {
  const double d = number(o, name);
  if (!(d >= 0 && d < n) || std::floor(d) != d)
    throw expected(o.Env(), ErrorKind::Range, "an integer in [0, " + std::to_string(n - 1) + "]", name,
                   describe(field(o, name)));
  return static_cast<int>(d);
}

inline bool boolean(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsBoolean()) throw expected(o.Env(), ErrorKind::Type, "a boolean", name, describe(v));
  return v.As<Napi::Boolean>().Value();
}

// The first byte of a typed array's elements, on an ArrayBuffer or a
// SharedArrayBuffer (how worker_threads share a volume: plain memory too).
// napi_get_typedarray_info gives the address for both; Napi::TypedArray's
// ArrayBuffer() goes through napi_get_arraybuffer_info, which refuses a
// SharedArrayBuffer ("Invalid argument"). *detached: its ArrayBuffer was
// detached (a SharedArrayBuffer cannot be).
inline uint8_t* typed_data(const Napi::TypedArray& a, bool* detached) {
  napi_typedarray_type type;
  size_t length, offset;
  void* data = nullptr;
  napi_value buffer;
  NAPI_THROW_IF_FAILED(a.Env(), napi_get_typedarray_info(a.Env(), a, &type, &length, &data, &buffer, &offset),
                       nullptr);
  const Napi::Value b(a.Env(), buffer);
  *detached = b.IsArrayBuffer() && b.As<Napi::ArrayBuffer>().IsDetached();
  return static_cast<uint8_t*>(data);  // (already at the array's byte offset)
}

// A typed array of the given type and exact length, on a live buffer.
template <class T>
T* typed(const Napi::Value& v, napi_typedarray_type type, const char* type_name, const char* name, int64_t length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw expected(v.Env(), ErrorKind::Type, std::string("a ") + type_name, name, describe(v));
  auto a = v.As<Napi::TypedArray>();
  bool detached = false;
  uint8_t* data = typed_data(a, &detached);
  if (detached) throw expected(v.Env(), ErrorKind::Type, std::string("a ") + type_name, name, "a detached buffer");
  if (static_cast<int64_t>(a.ElementLength()) != length)
    throw expected(v.Env(), ErrorKind::Range, std::string("a ") + type_name + " of length " + std::to_string(length),
                   name, "length " + std::to_string(a.ElementLength()));
  return reinterpret_cast<T*>(data);
}

// A device address passed from JS as a BigInt (DeviceBuffer.pointer).
inline void* pointer(const Napi::Value& v, const char* name) {
  if (!v.IsBigInt()) throw expected(v.Env(), ErrorKind::Type, "a device address (BigInt)", name, describe(v));
  bool lossless = false;
  const uint64_t p = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless || p == 0) throw expected(v.Env(), ErrorKind::Range, "a non-null 64-bit device address", name, describe(v));
  return reinterpret_cast<void*>(static_cast<uintptr_t>(p));
}

}  // namespace napi
}  // namespace segloss
