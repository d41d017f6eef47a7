// JS values -> plain structs -> core call -> JS values, for the loss entry
// points. No voxel loops here.
//
// A call spec is the plain object lib/native.ts builds from validated user
// arguments (enums as integers). Every entry point takes an `async` flag:
// false runs on the calling thread, true on a libuv worker and returns a
// Promise. Either way errors leave through one catch site per entry point.
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>

#include "engine.h"
#include "binding_spec.h"
#include "core/finalize.h"
#include "napi_util.h"

namespace segloss {
namespace napi {

void parse_options(const Napi::Object& s, Request* r) {
  Options& o = r->opt;
  o.loss = static_cast<Loss>(enumeration(s, "loss", std::size(names::loss)));
  o.activation = static_cast<Activation>(enumeration(s, "activation", std::size(names::activation)));
  o.reduction = static_cast<Reduction>(enumeration(s, "reduction", std::size(names::reduction)));
  o.include_background = boolean(s, "includeBackground");
  r->t.C = count(s, "C");
  r->device = static_cast<Device>(enumeration(s, "device", std::size(names::device)));
  Napi::Value ig = field(s, "ignoreIndex");
  o.has_ignore = !ig.IsNull() && !ig.IsUndefined();
  if (o.has_ignore) o.ignore_index = number(s, "ignoreIndex");
  o.weighting = static_cast<Weighting>(enumeration(s, "weighting", std::size(names::weighting)));
  double* const numbers[] = {&o.smooth_num, &o.smooth_den, &o.floor, &o.lambda, &o.epsilon};  // option:: order
  static_assert(std::size(numbers) == std::size(kNumberOptions), "one field per numeric option");
  for (size_t i = 0; i < std::size(kNumberOptions); ++i) *numbers[i] = number(s, kNumberOptions[i].name);
  o.squared = boolean(s, "squared");
  o.jaccard = boolean(s, "jaccard");
  o.class_sum = boolean(s, "classSum");
  o.wce_weights = static_cast<WceWeights>(enumeration(s, "wceWeights", std::size(names::wce_weights)));
  const Napi::Env env = s.Env();
  for (size_t i = 0; i < std::size(kNumberOptions); ++i)
    if (!in_range(kNumberOptions[i], *numbers[i]))
      throw expected(env, ErrorKind::Range, kNumberOptions[i].expected, kNumberOptions[i].name,
                     describe(field(s, kNumberOptions[i].name)));
  if (o.activation == Activation::Softmax && r->t.C == 1)
    throw expected(env, ErrorKind::Range, "at least 2 channels with activation 'softmax'", "shape", "C = 1");
  Napi::Value cw = field(s, "classWeights");
  if (!cw.IsNull() && !cw.IsUndefined()) {
    const int64_t K = num_classes(r->t.C);
    const double* w = typed<const double>(cw, napi_float64_array, "Float64Array", "classWeights", K);
    o.class_weights.assign(w, w + K);
  }
  if (o.wce_weights == WceWeights::Array && o.class_weights.empty())
    throw expected(env, ErrorKind::Type, "a Float64Array", "classWeights", "null");
}

void parse_shape(const Napi::Object& s, Request* r) {
  Tensors& t = r->t;
  t.B = count(s, "B");
  t.V = count(s, "V");
  const double n = static_cast<double>(t.B) * static_cast<double>(t.V) * static_cast<double>(t.C);
  if (n > 9007199254740991.0)
    throw expected(s.Env(), ErrorKind::Range, "at most 2^53 - 1 elements", "shape", std::to_string(n));
}

namespace {

void parse_tensors(const Napi::Object& s, Request* r) {
  parse_shape(s, r);
  Tensors& t = r->t;
  const int64_t voxels = t.B * t.V;
  t.x = typed<const float>(field(s, "prediction"), napi_float32_array, "Float32Array", "prediction", voxels * t.C);
  t.target_kind = static_cast<TargetKind>(enumeration(s, "targetKind", std::size(names::target_kind)));
  Napi::Value tv = field(s, "target");
  switch (t.target_kind) {
    case TargetKind::U8: t.target = typed<const uint8_t>(tv, napi_uint8_array, "Uint8Array", "target", voxels); break;
    case TargetKind::U16: t.target = typed<const uint16_t>(tv, napi_uint16_array, "Uint16Array", "target", voxels); break;
    case TargetKind::I32: t.target = typed<const int32_t>(tv, napi_int32_array, "Int32Array", "target", voxels); break;
    case TargetKind::F32Sparse: t.target = typed<const float>(tv, napi_float32_array, "Float32Array", "target", voxels); break;
    case TargetKind::Dense: t.target = typed<const float>(tv, napi_float32_array, "Float32Array", "target", voxels * t.C); break;
  }
  Napi::Value mv = field(s, "mask");
  t.mask = (mv.IsNull() || mv.IsUndefined()) ? nullptr : typed<const uint8_t>(mv, napi_uint8_array, "Uint8Array", "mask", voxels);
}

Request parse(const Napi::Value& v) {
  if (!v.IsObject()) throw expected(v.Env(), ErrorKind::Type, "a call spec object", "spec", describe(v));
  Request r;
  parse_options(v.As<Napi::Object>(), &r);
  parse_tensors(v.As<Napi::Object>(), &r);
  return r;
}

}  // namespace

GradScale parse_scale(const Napi::Value& v, bool per_sample, int64_t B) {
  GradScale gs;
  gs.per_sample = per_sample;
  const int64_t n = per_sample ? B : 1;
  const double* d = typed<const double>(v, napi_float64_array, "Float64Array", "gradScale", n);
  gs.values.assign(d, d + n);
  return gs;
}

Napi::Float64Array to_js(Napi::Env env, const std::vector<double>& v) {
  auto a = Napi::Float64Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(double));
  return a;
}

namespace {

Napi::Object loss_result(Napi::Env env, const Finalized& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", Napi::Number::New(env, f.loss));
  o.Set("losses", to_js(env, f.losses));
  return o;
}

// Runs `work` now, or on a libuv worker thread when `async`, then turns its
// Status into a thrown error / rejected Promise, or `done`'s value. `keep`
// holds the JS arguments (and so their buffers) alive while a worker runs.
class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, const Napi::Value& keep, std::function<Status()> work,
         std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env, "segloss"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), done_(std::move(done)) {
    keep_ = Napi::Persistent(keep.As<Napi::Object>());
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { status_ = work_(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!status_.ok()) {
      deferred_.Reject(make_error(env, status_).Value());
      return;
    }
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<Status()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  Napi::ObjectReference keep_;
  Status status_;
};

Napi::Value run(const Napi::CallbackInfo& info, bool async, std::function<Status()> work,
                std::function<Napi::Value(Napi::Env)> done) {
  Napi::Env env = info.Env();
  if (async) {
    Napi::Array keep = Napi::Array::New(env, info.Length());
    for (size_t i = 0; i < info.Length(); ++i) keep.Set(static_cast<uint32_t>(i), info[i]);
    auto* w = new Worker(env, keep, std::move(work), std::move(done));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }
  Status s = work();
  if (!s.ok()) throw make_error(env, s);
  return done(env);
}

bool async_flag(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && info[i].ToBoolean().Value(); }

// compute(spec, gradient: Float32Array | null, gradScale: Float64Array, perSample, async)
Napi::Value Compute(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Request r = parse(info[0]);
    float* grad = nullptr;
    if (!info[1].IsNull() && !info[1].IsUndefined())
      grad = typed<float>(info[1], napi_float32_array, "Float32Array", "gradient", r.t.B * r.t.V * r.t.C);
    GradScale gs = parse_scale(info[2], info[3].ToBoolean().Value(), r.t.B);
    auto out = std::make_shared<Finalized>();
    return run(
        info, async_flag(info, 4), [r, gs, grad, out] { return compute(r, gs, grad, out.get()); },
        [out](Napi::Env env) -> Napi::Value { return loss_result(env, *out); });
  });
}

// stats(spec, async) -> Float64Array [B][stride]
Napi::Value Stats(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Request r = parse(info[0]);
    auto out = std::make_shared<std::vector<double>>();
    return run(
        info, async_flag(info, 1), [r, out] { return compute_stats(r, out.get()); },
        [out](Napi::Env env) -> Napi::Value { return to_js(env, *out); });
  });
}

const double* stats_array(const Napi::Value& v, const Request& r, int64_t samples) {
  return typed<const double>(v, napi_float64_array, "Float64Array", "stats.values",
                             samples * stats_layout(r.opt, r.t.C).stride());
}

// lossFromStats(optionsSpec with `samples`, stats: Float64Array) -> {loss, losses}
Napi::Value LossFromStats(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw expected(info.Env(), ErrorKind::Type, "a call spec object", "spec", describe(info[0]));
    Request r;
    parse_options(info[0].As<Napi::Object>(), &r);
    const int64_t samples = count(info[0].As<Napi::Object>(), "samples");
    const double* stats = stats_array(info[1], r, samples);
    const double one = 1.0;
    return loss_result(info.Env(), finalize(r.opt, r.t.C, stats, samples, 0, 0, &one, false));
  });
}

// gradientFromStats(spec with `samples` and `first`, stats, gradient, gradScale, perSample, async)
Napi::Value GradientFromStats(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Request r = parse(info[0]);
    const Napi::Object spec = info[0].As<Napi::Object>();
    const int64_t samples = count(spec, "samples");
    const double first_d = number(spec, "first");
    if (!(first_d >= 0) || first_d + static_cast<double>(r.t.B) > static_cast<double>(samples))
      throw expected(info.Env(), ErrorKind::Range, "samples [first, first + B) inside the statistics' samples", "batchOffset",
                     describe(field(spec, "first")));
    const int64_t first = static_cast<int64_t>(first_d);
    const double* stats = stats_array(info[1], r, samples);
    float* grad = typed<float>(info[2], napi_float32_array, "Float32Array", "gradient", r.t.B * r.t.V * r.t.C);
    GradScale gs = parse_scale(info[3], info[4].ToBoolean().Value(), r.t.B);
    std::vector<double> copy(stats, stats + samples * stats_layout(r.opt, r.t.C).stride());
    const Napi::Value ck = field(spec, "checked");
    const bool checked = ck.IsBoolean() && ck.As<Napi::Boolean>().Value();
    return run(
        info, async_flag(info, 5),
        [r, copy, samples, first, gs, grad, checked] {
          return gradient_from_stats(r, copy.data(), samples, first, gs, grad, checked);
        },
        [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
  });
}

// computeOnDevice(spec, gradient: BigInt | null, gradScale, perSample, async):
// spec.prediction / target / mask are device addresses (BigInt) of
// spec.device's memory, as is the gradient.
Napi::Value ComputeOnDevice(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw expected(info.Env(), ErrorKind::Type, "a call spec object", "spec", describe(info[0]));
    const Napi::Object s = info[0].As<Napi::Object>();
    Request r;
    parse_options(s, &r);
    Tensors& t = r.t;
    t.B = count(s, "B");
    t.V = count(s, "V");
    t.target_kind = static_cast<TargetKind>(enumeration(s, "targetKind", std::size(names::target_kind)));
    t.x = static_cast<const float*>(pointer(field(s, "prediction"), "prediction"));
    t.target = pointer(field(s, "target"), "target");
    const Napi::Value mv = field(s, "mask");
    t.mask = (mv.IsNull() || mv.IsUndefined()) ? nullptr : static_cast<const uint8_t*>(pointer(mv, "mask"));
    float* grad = (info[1].IsNull() || info[1].IsUndefined()) ? nullptr : static_cast<float*>(pointer(info[1], "gradient"));
    GradScale gs = parse_scale(info[2], info[3].ToBoolean().Value(), r.t.B);
    auto out = std::make_shared<Finalized>();
    return run(
        info, async_flag(info, 4), [r, gs, grad, out] { return compute_on_device(r, gs, grad, out.get()); },
        [out](Napi::Env env) -> Napi::Value { return loss_result(env, *out); });
  });
}

}  // namespace

void register_losses(Napi::Env env, Napi::Object exports) {
  exports.Set("compute", Napi::Function::New(env, Compute, "compute"));
  exports.Set("stats", Napi::Function::New(env, Stats, "stats"));
  exports.Set("lossFromStats", Napi::Function::New(env, LossFromStats, "lossFromStats"));
  exports.Set("gradientFromStats", Napi::Function::New(env, GradientFromStats, "gradientFromStats"));
  exports.Set("computeOnDevice", Napi::Function::New(env, ComputeOnDevice, "computeOnDevice"));
}

}  // namespace napi
}  // namespace segloss
