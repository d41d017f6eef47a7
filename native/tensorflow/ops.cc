// segloss inside TensorFlow's own runtime, for tfjs-node's 'tensorflow'
// backend: two TensorFlow ops whose CPU kernels run segloss's passes on the
// tensors' memory where TensorFlow holds it.
//   SeglossStats<token>(job, y_true, y_pred)              the reduction pass
//   SeglossGradient<token>(job, y_true, y_pred) -> grad   the gradient pass
// (<token> tells this copy of the addon from others in the process.)
// Without them, every step copies yPred and yTrue out of TensorFlow
// (readSync) into fresh memory, and the gradient back in; the copies and
// the page faults of the fresh memory cost more than the passes themselves.
// The gradient is a tensor TensorFlow allocates (and recycles), so it
// reaches the next op of the backward pass without a copy.
//
// The addon does not link TensorFlow. registerTensorflowOps() finds the
// TensorFlow libraries tfjs-node has already loaded into this process and
// looks up the functions of TensorFlow's stable C API for ops and kernels
// (tensorflow/c/ops.h, kernels.h, tf_tensor.h) there; without tfjs-node it
// says why and the JS side keeps its copying path, as it does when
// TensorFlow cannot run the ops.
//
// A pass is a job (tensorflow/jobs.h): the JS kernel creates one, runs the
// op through tfjs-node's executeMultipleOutputs, and ends the job, which
// returns the statistics or throws the pass's error with segloss's own
// message. The job id travels as an input tensor, not as an attribute:
// TensorFlow caches one kernel per attribute value.
//
// This file: the ops' kernels, their registration, and the N-API entry
// points; tf_api.cc finds the C API, jobs.cc keeps the jobs.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "../binding_spec.h"
#include "../core/finalize.h"
#include "../engine.h"
#include "../napi_util.h"
#include "jobs.h"
#include "tf_api.h"

namespace segloss {
namespace napi {

namespace {

using namespace tensorflow;

TfApi g_api;

// The ops' names end in a token of this copy of the addon: TensorFlow
// aborts the process when an op name is registered twice, as two copies of
// segloss in one process (two versions in node_modules) would otherwise do,
// and each copy's kernels must run its own jobs.
std::string op_name(const char* stem) {
  char token[32];
  std::snprintf(token, sizeof token, "%llx", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(jobs_token())));
  return std::string(stem) + token;
}
const std::string kStatsOp = op_name("SeglossStats");
const std::string kGradientOp = op_name("SeglossGradient");

// The tensors this job's shape calls for, bound into r; or what is wrong.
std::string bind(Job* job, TF_Tensor* y_true, TF_Tensor* y_pred) {
  Tensors& t = job->r.t;
  const int64_t voxels = t.B * t.V;
  if (g_api.TensorType(y_pred) != kTfFloat || g_api.TensorElementCount(y_pred) != voxels * t.C)
    return "y_pred is not the float32 tensor of " + std::to_string(voxels * t.C) + " elements the job was made for";
  const bool ints = t.target_kind == TargetKind::I32;
  const int64_t n = t.target_kind == TargetKind::Dense ? voxels * t.C : voxels;
  if (!ints && t.target_kind != TargetKind::F32Sparse && t.target_kind != TargetKind::Dense)
    return "the job's target kind is not one a tfjs tensor holds (int32 or float32)";
  if (g_api.TensorType(y_true) != (ints ? kTfInt32 : kTfFloat) || g_api.TensorElementCount(y_true) != n)
    return "y_true is not the " + std::string(ints ? "int32" : "float32") + " tensor of " + std::to_string(n) +
           " elements the job was made for";
  t.x = static_cast<const float*>(g_api.TensorData(y_pred));
  t.target = g_api.TensorData(y_true);
  t.mask = nullptr;
  return "";
}

// Both ops: (job: int32, y_true: T, y_pred: float). The pass's own errors (a
// label out of range, say) go to the job, so that JS throws them with
// segloss's message; only a broken call fails the op. Returns that failure's
// message ("" when none); in[] and *grad receive what the caller deletes.
std::string run_job(TF_OpKernelContext* ctx, bool gradient, TF_Status* s, TF_Tensor** in, TF_Tensor** grad) {
  for (int i = 0; i < 3; ++i) {
    g_api.GetInput(ctx, i, &in[i], s);
    if (g_api.GetCode(s) != kTfOk) return std::string("segloss: ") + g_api.Message(s);
  }
  if (g_api.TensorType(in[0]) != kTfInt32 || g_api.TensorElementCount(in[0]) != 1)
    return "segloss: the first input of a segloss op is not an int32 job id";
  const std::shared_ptr<Job> job = find_job(*static_cast<const int32_t*>(g_api.TensorData(in[0])));
  if (!job || job->gradient != gradient)
    return "segloss: a segloss op ran with no such job (jobs are made by the segloss tfjs kernels)";
  job->ran = true;
  if (gradient) {
    // the gradient has y_pred's shape
    std::vector<int64_t> dims(g_api.NumDims(in[2]));
    for (size_t d = 0; d < dims.size(); ++d) dims[d] = g_api.Dim(in[2], static_cast<int>(d));
    const size_t bytes = static_cast<size_t>(g_api.TensorElementCount(in[2])) * sizeof(float);
    *grad = g_api.AllocateOutput(ctx, 0, kTfFloat, dims.data(), static_cast<int>(dims.size()), bytes, s);
    if (g_api.GetCode(s) != kTfOk) {
      std::string error = std::string("segloss: TensorFlow could not allocate the gradient: ") + g_api.Message(s);
      job->status = Status::Range(error);
      return error;
    }
  }
  const std::string wrong = bind(job.get(), in[1], in[2]);
  if (!wrong.empty()) {
    job->status = Status::Internal("segloss: internal error: " + wrong);
  } else if (!gradient) {
    job->status = compute_stats(job->r, &job->stats);
  } else {
    // The statistics pass checked these same tensors (the tape saved them).
    float* out = static_cast<float*>(g_api.TensorData(*grad));
    job->status = gradient_from_stats(job->r, job->stats.data(), job->r.t.B, 0, job->gs, out, true);
  }
  return "";
}

// A kernel's compute function: no C++ exception may cross TensorFlow's C API.
void run_kernel(TF_OpKernelContext* ctx, bool gradient) {
  TF_Status* s = g_api.NewStatus();
  TF_Tensor* in[3] = {nullptr, nullptr, nullptr};
  TF_Tensor* grad = nullptr;
  std::string error;
  const char* fixed = nullptr;  // when even building the message failed
  try {
    error = run_job(ctx, gradient, s, in, &grad);
  } catch (const std::bad_alloc&) {
    fixed = "segloss: out of memory";
  } catch (const std::exception& e) {
    try {
      error = std::string("segloss: internal error: ") + e.what();
    } catch (...) {
      fixed = "segloss: internal error";
    }
  } catch (...) {
    fixed = "segloss: internal error";
  }
  for (TF_Tensor* t : in)
    if (t) g_api.DeleteTensor(t);
  if (grad) g_api.DeleteTensor(grad);  // the context keeps the output
  if (fixed || !error.empty()) {
    g_api.SetStatus(s, kTfInvalidArgument, fixed ? fixed : error.c_str());
    g_api.OpKernelContext_Failure(ctx, s);
  }
  g_api.DeleteStatus(s);
}

void stats_kernel(void*, TF_OpKernelContext* ctx) { run_kernel(ctx, false); }
void gradient_kernel(void*, TF_OpKernelContext* ctx) { run_kernel(ctx, true); }

// Once per process: TensorFlow's registries are process-wide.
std::mutex g_register_mutex;
bool g_registered = false;
std::string g_register_error;

bool register_op(const std::string& op_name, bool gradient, void (*compute)(void*, TF_OpKernelContext*), TF_Status* s) {
  const char* name = op_name.c_str();
  TF_OpDefinitionBuilder* op = g_api.NewOpDefinitionBuilder(name);
  g_api.OpDefinitionBuilderAddInput(op, "job: int32");
  g_api.OpDefinitionBuilderAddInput(op, "y_true: T");
  g_api.OpDefinitionBuilderAddInput(op, "y_pred: float");
  if (gradient) g_api.OpDefinitionBuilderAddOutput(op, "gradient: float");
  g_api.OpDefinitionBuilderAddAttr(op, "T: {int32, float}");
  g_api.OpDefinitionBuilderSetIsStateful(op, true);  // it reads and writes the job: never fold, prune or cache it
  g_api.RegisterOpDefinition(op, s);
  if (g_api.GetCode(s) != kTfOk) return false;
  // (no per-kernel state: TensorFlow skips a null create and delete function)
  TF_KernelBuilder* k = g_api.NewKernelBuilder(name, "CPU", nullptr, compute, nullptr);
  g_api.RegisterKernelBuilder(name, k, s);
  return g_api.GetCode(s) == kTfOk;
}

bool register_ops(std::string* why) {
  std::lock_guard<std::mutex> lock(g_register_mutex);
  if (g_registered) return true;
  if (!g_register_error.empty()) {
    *why = g_register_error;
    return false;
  }
  if (!load_api(&g_api, why)) return false;  // tfjs-node may be loaded later: try again then
  TF_Status* s = g_api.NewStatus();
  const bool ok = register_op(kStatsOp, false, stats_kernel, s) && register_op(kGradientOp, true, gradient_kernel, s);
  // TensorFlow's registries keep what they took; a second attempt would clash with it
  if (!ok) *why = g_register_error = std::string("TensorFlow refused segloss's ops: ") + g_api.Message(s);
  g_api.DeleteStatus(s);
  g_registered = ok;
  return ok;
}

// registerTensorflowOps() -> {available, reason?, statsOp, gradientOp}
Napi::Value RegisterTensorflowOps(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    std::string why;
    const bool ok = register_ops(&why);
    Napi::Object o = Napi::Object::New(env);
    o.Set("available", Napi::Boolean::New(env, ok));
    o.Set("statsOp", Napi::String::New(env, kStatsOp));
    o.Set("gradientOp", Napi::String::New(env, kGradientOp));
    if (!ok) o.Set("reason", Napi::String::New(env, why));
    return o;
  });
}

// tensorflowJob(spec without data, stats: Float64Array | null, gradScale, perSample) -> id.
// Without stats, a statistics job; with them, a gradient job.
Napi::Value TensorflowJob(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw expected(env, ErrorKind::Type, "a call spec object", "spec", describe(info[0]));
    const Napi::Object spec = info[0].As<Napi::Object>();
    auto job = std::make_shared<Job>();
    Request& r = job->r;
    parse_options(spec, &r);
    parse_shape(spec, &r);
    r.t.target_kind = static_cast<TargetKind>(enumeration(spec, "targetKind", std::size(names::target_kind)));
    if (!info[1].IsNull() && !info[1].IsUndefined()) {
      const int64_t n = r.t.B * stats_layout(r.opt, r.t.C).stride();
      const double* st = typed<const double>(info[1], napi_float64_array, "Float64Array", "stats.values", n);
      job->stats.assign(st, st + n);
      job->gs = parse_scale(info[2], info[3].ToBoolean().Value(), r.t.B);
      job->gradient = true;
    }
    return Napi::Number::New(env, add_job(std::move(job)));
  });
}

// endTensorflowJob(id) -> null when no segloss kernel ran the job (TensorFlow
// failed before it: the op could not be placed, say); else the statistics
// (Float64Array) of a statistics pass, undefined after a gradient pass, or
// the pass's error thrown.
Napi::Value EndTensorflowJob(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int32_t id = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
    const std::shared_ptr<Job> job = take_job(id);
    if (!job) throw expected(env, ErrorKind::Range, "the id of a running job", "job", describe(info[0]));
    if (!job->ran) return env.Null();
    if (!job->status.ok()) throw make_error(env, job->status);
    if (job->gradient) return env.Undefined();
    return to_js(env, job->stats);
  });
}

}  // namespace

void register_tensorflow(Napi::Env env, Napi::Object exports) {
  exports.Set("registerTensorflowOps", Napi::Function::New(env, RegisterTensorflowOps, "registerTensorflowOps"));
  exports.Set("tensorflowJob", Napi::Function::New(env, TensorflowJob, "tensorflowJob"));
  exports.Set("endTensorflowJob", Napi::Function::New(env, EndTensorflowJob, "endTensorflowJob"));
}

}  // namespace napi
}  // namespace segloss
