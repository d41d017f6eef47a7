// segloss GPU check: the CUDA backend against the CPU backend on random
// inputs, then loss + gradient timings on device-resident data against a
// device-to-device copy measured in the same run, and the host-data
// crossover that 'auto' needs. Prints one table and writes JSON.
//
// Built by nvcc for a GPU (scripts/gpu-check.sh), and as C++ over the SIMT
// emulation (target segloss_gpu_check_emulated; `--quick` sizes), so the
// same program builds and runs on a machine without a GPU.
//
//   segloss_gpu_check [--quick] [--quick-cases] [--no-huge] [--no-crossover] [--profile] [--json FILE]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../../cuda/backend.h"
#include "../../cuda/simt.h"
#include "../../native/core/finalize.h"
#include "../../native/core/thread_pool.h"
#include "../../native/cpu/backend.h"

using namespace segloss;
namespace gpu = segloss::SEGLOSS_CUDA_NS;

namespace {

const char* kLossNames[] = {"generalizedDice", "dice", "sensitivitySpecificity", "weightedCrossEntropy"};
const char* kActNames[] = {"none", "softmax", "sigmoid"};
const char* kTargetNames[] = {"u8", "u16", "i32", "f32", "dense"};

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Counter-based random numbers (splitmix64 of the index), filled in parallel.
inline uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
inline double unit(uint64_t seed, int64_t i) { return (mix(seed * 0x100000001b3ULL + i) >> 11) * (1.0 / 9007199254740992.0); }

template <class F>
void parallel(int64_t n, F f) {
  const int64_t step = 1 << 20;
  ThreadPool::instance().parallel_for((n + step - 1) / step, [&](int64_t c) {
    const int64_t b = c * step, e = std::min(n, b + step);
    for (int64_t i = b; i < e; ++i) f(i);
  });
}

struct Case {
  Loss loss;
  int64_t B, V, C;
  Activation act;
  TargetKind tk;
  bool mask, ignore;
  // Edges: confident predictions (logits +-80, or probabilities 1e-6 from
  // the label) on 98% of the voxels, and the last class on one voxel only.
  bool edges = false;
  // C = 2 on the class-lane kernels (SEGLOSS_CUDA_CLASS_LANES_MIN_C=2).
  bool lanes2 = false;
};

std::string describe(const Case& c) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s B=%lld V=%lld C=%lld %s %s%s%s%s%s", kLossNames[int(c.loss)], (long long)c.B,
                (long long)c.V, (long long)c.C, kActNames[int(c.act)], kTargetNames[int(c.tk)], c.mask ? " mask" : "",
                c.ignore ? " ignore" : "", c.edges ? " edges" : "", c.lanes2 ? " class-lanes" : "");
  return buf;
}

// Inputs of one case in host memory.
struct Host {
  std::vector<float> x;
  std::vector<uint8_t> tgt;  // raw bytes of the target array
  std::vector<uint8_t> mask;
  Tensors t;
};

int64_t target_elem_bytes(TargetKind tk) { return tk == TargetKind::U8 ? 1 : tk == TargetKind::U16 ? 2 : 4; }

void make_inputs(const Case& c, uint64_t seed, Host* h) {
  const int64_t n = c.B * c.V, K = num_classes(c.C);
  h->x.resize(n * c.C);
  float* x = h->x.data();
  const bool probs = c.act == Activation::None;
  parallel(n, [&](int64_t v) {
    double s = 0;
    for (int64_t ch = 0; ch < c.C; ++ch) {
      const double u = unit(seed, v * c.C + ch);
      x[v * c.C + ch] = probs ? static_cast<float>(0.02 + 0.96 * u) : static_cast<float>(8 * u - 4);
      s += x[v * c.C + ch];
    }
    if (probs && c.C > 1 && (v & 1))  // half the voxels on the simplex
      for (int64_t ch = 0; ch < c.C; ++ch) x[v * c.C + ch] = static_cast<float>(x[v * c.C + ch] / s);
  });
  // The label of voxel v (edges: the last class on voxel 0 alone).
  auto label_of = [&](int64_t v) {
    const double u = unit(seed + 1, v);
    int64_t label = u < 0.03 * (K - 1) ? 1 + static_cast<int64_t>(u / 0.03) : 0;
    if (label >= K) label = K - 1;
    if (c.edges) label = v == 0 ? K - 1 : label == K - 1 ? 0 : label;
    return label;
  };
  if (c.edges)
    parallel(n, [&](int64_t v) {
      if (unit(seed + 6, v) < 0.02) return;  // unsure voxels keep their random values
      const int64_t label = label_of(v);
      for (int64_t ch = 0; ch < c.C; ++ch) {
        const bool hit = c.C == 1 ? label == 1 : ch == label;
        x[v * c.C + ch] = probs ? (hit ? 1.0f - 1e-6f : 1e-6f / static_cast<float>(c.C > 1 ? c.C - 1 : 1))
                                : (hit ? 80.0f : -80.0f);
      }
    });
  const int64_t eb = c.tk == TargetKind::Dense ? 4 * c.C : target_elem_bytes(c.tk);
  h->tgt.assign(n * eb, 0);
  uint8_t* t = h->tgt.data();
  parallel(n, [&](int64_t v) {
    // about 3% foreground per class beyond 0, as in an imbalanced volume
    const int64_t label = label_of(v);
    const bool ign = c.ignore && unit(seed + 2, v) < 0.05;
    switch (c.tk) {
      case TargetKind::U8: t[v] = ign ? 255 : static_cast<uint8_t>(label); break;
      case TargetKind::U16: reinterpret_cast<uint16_t*>(t)[v] = ign ? 65535 : static_cast<uint16_t>(label); break;
      case TargetKind::I32: reinterpret_cast<int32_t*>(t)[v] = ign ? -1 : static_cast<int32_t>(label); break;
      case TargetKind::F32Sparse: reinterpret_cast<float*>(t)[v] = ign ? -1.0f : static_cast<float>(label); break;
      case TargetKind::Dense: {
        float* d = reinterpret_cast<float*>(t) + v * c.C;
        if (c.C == 1) d[0] = static_cast<float>(unit(seed + 3, v) < 0.5 ? label : unit(seed + 4, v));
        else d[label] = 1.0f;
        break;
      }
    }
  });
  if (c.mask) {
    h->mask.resize(n);
    parallel(n, [&](int64_t v) { h->mask[v] = unit(seed + 5, v) < 0.1 ? 0 : 1; });
  } else {
    h->mask.clear();
  }
  h->t = Tensors{h->x.data(), c.B, c.V, c.C, h->tgt.data(), c.tk, c.mask ? h->mask.data() : nullptr};
}

Options options_of(const Case& c) {
  Options o;
  o.loss = c.loss;
  o.activation = c.act;
  o.reduction = Reduction::Mean;
  o.include_background = c.loss != Loss::SensitivitySpecificity;
  o.has_ignore = c.ignore;
  o.ignore_index = c.tk == TargetKind::U8 ? 255 : c.tk == TargetKind::U16 ? 65535 : -1;
  return o;
}

struct Result {
  double loss = 0;
  std::vector<float> grad;
  Status status;
};

// Loss and gradient with one backend: 0 = CPU, 1 = GPU from host memory,
// 2 = GPU on device-resident copies.
Result run(const Options& o, const Host& h, int how) {
  Result r;
  const StatsLayout L = stats_layout(o, h.t.C);
  std::vector<double> stats(h.t.B * L.stride());
  const int64_t n = h.t.B * h.t.V * h.t.C;
  r.grad.assign(n, std::nanf(""));
  const double scale = 1.0;
  if (how == 0) {
    r.status = cpu::reduce(o, h.t, stats.data());
    if (!r.status.ok()) return r;
    Finalized f = finalize(o, h.t.C, stats.data(), h.t.B, 0, h.t.B, &scale, false);
    cpu::gradient(o, h.t, f.coef.data(), r.grad.data());
    r.loss = f.loss;
    return r;
  }
  if (how == 1) {
    r.status = gpu::reduce(o, h.t, stats.data());
    if (!r.status.ok()) return r;
    Finalized f = finalize(o, h.t.C, stats.data(), h.t.B, 0, h.t.B, &scale, false);
    r.status = gpu::gradient(o, h.t, f.coef.data(), r.grad.data());
    r.loss = f.loss;
    return r;
  }
  // device-resident
  void *dx = nullptr, *dt = nullptr, *dm = nullptr, *dg = nullptr;
  auto fail = [&](Status s) {
    r.status = s;
    for (void* p : {dx, dt, dm, dg})
      if (p) gpu::device_free(p);
    return r;
  };
  Status s = gpu::device_alloc(h.x.size() * 4, &dx);
  if (s.ok()) s = gpu::device_alloc(h.tgt.size(), &dt);
  if (s.ok() && !h.mask.empty()) s = gpu::device_alloc(h.mask.size(), &dm);
  if (s.ok()) s = gpu::device_alloc(n * 4, &dg);
  if (s.ok()) s = gpu::copy_to_device(dx, h.x.data(), h.x.size() * 4);
  if (s.ok()) s = gpu::copy_to_device(dt, h.tgt.data(), h.tgt.size());
  if (s.ok() && dm) s = gpu::copy_to_device(dm, h.mask.data(), h.mask.size());
  if (!s.ok()) return fail(s);
  Tensors d = h.t;
  d.x = static_cast<const float*>(dx);
  d.target = dt;
  d.mask = static_cast<const uint8_t*>(dm);
  s = gpu::reduce_device(o, d, stats.data());
  if (!s.ok()) return fail(s);
  Finalized f = finalize(o, h.t.C, stats.data(), h.t.B, 0, h.t.B, &scale, false);
  s = gpu::gradient_device(o, d, f.coef.data(), static_cast<float*>(dg));
  if (s.ok()) s = gpu::copy_to_host(r.grad.data(), dg, n * 4);
  r.loss = f.loss;
  fail(s);
  return r;
}

// Two channels on the class-lane kernels while alive (backend.cu reads the
// variable per call).
struct ClassLanes {
  bool on;
  explicit ClassLanes(bool lanes2) : on(lanes2) {
    if (on) setenv("SEGLOSS_CUDA_CLASS_LANES_MIN_C", "2", 1);
  }
  ~ClassLanes() {
    if (on) unsetenv("SEGLOSS_CUDA_CLASS_LANES_MIN_C");
  }
};

// ||a - b|| / ||b|| over the gradient, and whether every element is finite.
double rel_l2(const std::vector<float>& a, const std::vector<float>& b, bool* finite) {
  double num = 0, den = 0;
  bool fin = true;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = double(a[i]) - double(b[i]);
    fin &= std::isfinite(a[i]);
    num += d * d;
    den += double(b[i]) * b[i];
  }
  *finite = fin;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// The GPU runs (host data, device data) of one case against the CPU's `ref`;
// counts and prints mismatches, keeps the worst errors.
struct Compare {
  int failures = 0;
  double worst_loss = 0, worst_grad = 0;
  void check(const Case& c, const Options& o, const Host& h, const Result& ref, bool verbose) {
    ClassLanes lanes(c.lanes2);
    for (int how = 1; how <= 2; ++how) {
      const Result g = run(o, h, how);
      bool finite = true;
      const double dl = std::fabs(g.loss - ref.loss) / std::max(std::fabs(ref.loss), 1e-3);
      const double dg = g.status.ok() ? rel_l2(g.grad, ref.grad, &finite) : 1.0;
      worst_loss = std::max(worst_loss, dl);
      worst_grad = std::max(worst_grad, dg);
      // docs/losses.md section 4's accuracy (the CPU backend is float64-exact to
      // ~1e-15, so it stands in for the float64 reference): the kernels take
      // exp / log in float32, which moves the loss by ~1e-8 relative.
      const bool ok = g.status.ok() && dl <= 1e-6 && dg <= 1e-6 && finite;
      failures += !ok;
      if (!ok || verbose)
        std::printf("%s %s (%s, %lld elements): loss %.17g vs cpu %.17g (rel %.2e), gradient rel L2 %.2e%s %s\n",
                    ok ? "ok" : "MISMATCH", describe(c).c_str(), how == 1 ? "host data" : "device data",
                    (long long)(c.B * c.V * c.C), g.loss, ref.loss, dl, dg, finite ? "" : " (non-finite)",
                    g.status.message.c_str());
    }
  }
};

struct Json {
  std::string s = "{";
  bool first = true;
  void field(const std::string& k, const std::string& raw) {
    s += (first ? "" : ",") + std::string("\n  \"") + k + "\": " + raw;
    first = false;
  }
};

std::string quote(const std::string& v) { return "\"" + v + "\""; }
// (std::to_string prints 6 fixed decimals: an error of 1e-8 would read 0.)
std::string sci(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3e", v);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, huge = true, profile = false, quick_cases = false, crossover = true;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--profile") profile = true;
    else if (a == "--no-huge") huge = false;
    else if (a == "--quick-cases") quick_cases = true;  // --quick's correctness matrix, full-size timings
    else if (a == "--no-crossover") crossover = false;
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--quick-cases] [--no-huge] [--no-crossover] [--profile] [--json FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  // --profile: one run of each Generalized Dice pass at 512^3 over the
  // class counts and inputs of the timing table, and nothing else, for a
  // profiler (ncu -k regex:_kernel) to look at.
  if (quick || profile) huge = false;
  const BackendInfo info = gpu::info();
  std::printf("segloss GPU check: backend %s, device %s\n", info.name.c_str(),
              info.available ? info.device.c_str() : ("unavailable: " + info.reason).c_str());
  if (!info.available) return 1;
  Json out;
  out.field("backend", quote(info.name));
  out.field("device", quote(info.device));
  out.field("cpu_threads", std::to_string(ThreadPool::instance().threads()));

  // ------------------------------------------------------------ correctness
  std::vector<Case> cases;
  const bool small = quick || quick_cases;
  const std::vector<std::pair<int64_t, int64_t>> shapes =
      small ? std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 1001}, {2, 16384 + 3}}
            : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 1001}, {2, 65536 + 3}, {1, 1 << 22}, {4, 96 * 96 * 96}};
  for (int l = 0; l < (profile ? 0 : 4); ++l) {
    for (const auto& bv : shapes)
      for (int64_t C : {1, 2, 3, 8})
        for (int a = 0; a < 3; ++a) {
          if (a == 1 && C == 1) continue;
          for (TargetKind tk : {TargetKind::U8, TargetKind::I32, TargetKind::Dense}) {
            const bool variant = (C + a + int(tk)) % 3 == 0;
            cases.push_back({Loss(l), bv.first, bv.second, C, Activation(a), tk, variant,
                             variant && tk != TargetKind::Dense});
          }
        }
    // Every class-lane shape (4, 8, 16, 32 lanes; two classes a lane past
    // 32) at its edges, on the first three shapes; C = 2 on the class lanes;
    // confident predictions with a one-voxel class.
    for (const auto& bv : small ? std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 1001}}
                                : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 1001}, {2, 16384 + 3}})
      for (int64_t C : {2, 4, 5, 16, 17, 32, 33, 64})
        for (int a = 0; a < 3; ++a)
          for (TargetKind tk : {TargetKind::U8, TargetKind::F32Sparse, TargetKind::Dense}) {
            const bool variant = (C + a + int(tk)) % 2 == 0;
            Case c{Loss(l), bv.first, bv.second, C, Activation(a), tk, variant,
                   variant && tk != TargetKind::Dense};
            c.lanes2 = C == 2;
            cases.push_back(c);
          }
    for (int64_t C : {1, 2, 3, 8, 64})
      for (int a = 0; a < 3; ++a) {
        if (a == 1 && C == 1) continue;
        for (TargetKind tk : {TargetKind::U8, TargetKind::Dense}) {
          Case c{Loss(l), 2, small ? 1001 : 16384 + 3, C, Activation(a), tk, false, false};
          c.edges = true;
          cases.push_back(c);
          if (C == 2) {
            c.lanes2 = true;
            cases.push_back(c);
          }
        }
      }
  }
  Compare cmp;
  const double t0 = now_ms();
  Host h;
  for (size_t i = 0; i < cases.size(); ++i) {
    make_inputs(cases[i], 1000 + i, &h);
    const Options o = options_of(cases[i]);
    cmp.check(cases[i], o, h, run(o, h, 0), false);
  }
  std::printf("correctness: %zu cases x {host data, device data} against the CPU backend in %.1f s: %d mismatches; "
              "worst loss rel %.2e, worst gradient rel L2 %.2e\n",
              cases.size(), (now_ms() - t0) / 1000, cmp.failures, cmp.worst_loss, cmp.worst_grad);
  int failures = cmp.failures;
  out.field("cases", std::to_string(cases.size()));
  out.field("mismatches", std::to_string(failures));
  out.field("worst_loss_rel", sci(cmp.worst_loss));
  out.field("worst_gradient_rel_l2", sci(cmp.worst_grad));

  // Bit identity run to run, and bad input found on the device.
  if (!profile) {
    Case c{Loss::GeneralizedDice, 2, quick ? 20000 : 3000000, 3, Activation::Softmax, TargetKind::U8, true, true};
    make_inputs(c, 7, &h);
    const Options o = options_of(c);
    const Result a = run(o, h, 2), b = run(o, h, 2);
    const bool same = a.loss == b.loss && std::memcmp(a.grad.data(), b.grad.data(), a.grad.size() * 4) == 0;
    std::printf("determinism: two device runs %s\n", same ? "bit-identical" : "DIFFER");
    failures += !same;
    h.tgt[h.tgt.size() - 5] = 9;
    const Result bad = run(o, h, 2), bad_cpu = run(o, h, 0);
    const bool ok = !bad.status.ok() && bad.status.message == bad_cpu.status.message;
    std::printf("bad input: %s\n", ok ? ("same error as the CPU: " + bad.status.message).c_str()
                                      : ("DIFFERS: " + bad.status.message + " vs " + bad_cpu.status.message).c_str());
    failures += !ok;
  }

  // A volume of more than 2^31 elements (64-bit indexing).
  if (huge) {
    // two classes (the one- and two-channel kernels, float32 voxels) and
    // eight (the class lanes): 64-bit indices, and sums over 2^30 voxels
    for (int64_t C : {2, 8}) {
      Case c{Loss::GeneralizedDice, 1, (int64_t(1) << 31) / C + 12345, C, Activation::Softmax, TargetKind::U8, false,
             false};
      const double th = now_ms();
      make_inputs(c, 99, &h);
      const Options o = options_of(c);
      Compare big;
      big.check(c, o, h, run(o, h, 0), true);
      failures += big.failures;
      std::printf("  (%.1f s)\n", (now_ms() - th) / 1000);
      h = Host();
    }
  }
  out.field("failures", std::to_string(failures));

  // ---------------------------------------------------------------- timing
  // Device-to-device copy bandwidth (bytes read + written per second).
  const int64_t copy_bytes = quick ? (int64_t(64) << 20) : (int64_t(2) << 30);
  double copy_gbs = 0;
  {
    void *a = nullptr, *b = nullptr;
    gpu::device_alloc(copy_bytes, &a);
    gpu::device_alloc(copy_bytes, &b);
    std::vector<double> ms;
    for (int r = 0; r < 12; ++r) {
      cudaDeviceSynchronize();
      const double s = now_ms();
      cudaMemcpy(b, a, copy_bytes, cudaMemcpyDeviceToDevice);
      cudaDeviceSynchronize();
      if (r >= 2) ms.push_back(now_ms() - s);
    }
    std::sort(ms.begin(), ms.end());
    copy_gbs = 2.0 * copy_bytes / (ms[ms.size() / 2] * 1e6);
    gpu::device_free(a);
    gpu::device_free(b);
    std::printf("device-to-device copy of %lld MiB: %.0f GB/s (read + write)\n", (long long)(copy_bytes >> 20), copy_gbs);
  }
  out.field("copy_gbs", std::to_string(copy_gbs));

  // Device-resident loss + gradient. Inputs: softmax logits with uint8
  // labels (what a network's last layer and a label volume give), and
  // probabilities with dense one-hot float32 targets. Bytes: the reduce pass
  // reads predictions and targets; the gradient pass reads the targets, the
  // predictions where the formula needs them (all but Generalized Dice with
  // 'none'), and writes the gradient.
  std::printf("\n| loss | input | volume | C | loss + gradient (ms, median; reduce + gradient pass) | GB moved | GB/s | "
              "%% of copy |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::string rows = "[";
  struct Row {
    int64_t side, C;
    Activation act;
    TargetKind tk;
    int losses;  // n losses from loss0 (0 = Generalized Dice)
    bool lanes2;
    int loss0 = 0;
  };
  std::vector<Row> table;
  if (profile) {
    // what ncu looks at (scripts/gpu-check.sh): Generalized Dice on every
    // kernel shape, weighted cross-entropy (logarithms, float64 voxels) on
    // the two-channel and class-lane kernels
    const int wce = int(Loss::WeightedCrossEntropy);
    for (int64_t C : {2, 4, 8, 16}) table.push_back({512, C, Activation::Softmax, TargetKind::U8, 1, false});
    for (int64_t C : {4, 8, 16}) table.push_back({512, C, Activation::None, TargetKind::Dense, 1, false});
    table.push_back({512, 2, Activation::Softmax, TargetKind::U8, 1, true});
    for (int64_t C : {2, 8}) table.push_back({512, C, Activation::Softmax, TargetKind::U8, 1, false, wce});
    table.push_back({512, 8, Activation::None, TargetKind::Dense, 1, false, wce});
  } else {
    const int64_t side = quick ? 16 : 512;
    for (TargetKind tk : {TargetKind::U8, TargetKind::Dense})
      for (int64_t C : {2, 4, 8, 16})
        table.push_back({side, C, tk == TargetKind::U8 ? Activation::Softmax : Activation::None, tk, 4, false});
    for (TargetKind tk : {TargetKind::U8, TargetKind::Dense})
      table.push_back({side, 2, tk == TargetKind::U8 ? Activation::Softmax : Activation::None, tk, 4, true});
    for (int64_t C : {32, 64}) table.push_back({quick ? 8 : 256, C, Activation::Softmax, TargetKind::U8, 1, false});
  }
  for (const Row& row : table) {
    Case c{Loss::GeneralizedDice, 1, row.side * row.side * row.side, row.C, row.act, row.tk, false, false};
    c.lanes2 = row.lanes2;
    ClassLanes lanes(row.lanes2);
    make_inputs(c, 5, &h);
    const int64_t n = c.V * row.C;
    void *dx = nullptr, *dt = nullptr, *dg = nullptr;
    const int64_t tbytes = static_cast<int64_t>(h.tgt.size());
    gpu::device_alloc(n * 4, &dx);
    gpu::device_alloc(tbytes, &dt);
    gpu::device_alloc(n * 4, &dg);
    gpu::copy_to_device(dx, h.x.data(), n * 4);
    gpu::copy_to_device(dt, h.tgt.data(), tbytes);
    Tensors d = h.t;
    d.x = static_cast<const float*>(dx);
    d.target = dt;
    const char* input = row.tk == TargetKind::U8 ? (row.lanes2 ? "softmax logits, u8 labels (class lanes)"
                                                                 : "softmax logits, u8 labels")
                                                  : (row.lanes2 ? "probabilities, dense one-hot (class lanes)"
                                                                : "probabilities, dense one-hot");
    for (int l = row.loss0; l < row.loss0 + row.losses; ++l) {
      Options o = options_of(c);
      o.loss = Loss(l);
      o.include_background = o.loss != Loss::SensitivitySpecificity;
      const StatsLayout L = stats_layout(o, row.C);
      std::vector<double> stats(L.stride());
      std::vector<double> ms, ms_reduce, ms_gradient;
      const double scale = 1;
      const int reps = profile ? 1 : quick ? 3 : 10;
      for (int r = 0; r < reps + (profile || quick ? 0 : 2); ++r) {
        const double s = now_ms();
        gpu::reduce_device(o, d, stats.data());
        const double s1 = now_ms();
        Finalized f = finalize(o, row.C, stats.data(), 1, 0, 1, &scale, false);
        const double s2 = now_ms();
        gpu::gradient_device(o, d, f.coef.data(), static_cast<float*>(dg));
        if (r >= 2 || quick || profile) {
          const double e = now_ms();
          ms.push_back(e - s);
          ms_reduce.push_back(s1 - s);  // reduce, combine, statistics to the host
          ms_gradient.push_back(e - s2);  // coefficients to the device, gradient
        }
      }
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      const double med = median(ms), med_reduce = median(ms_reduce), med_gradient = median(ms_gradient);
      const bool reads_x = !(o.loss == Loss::GeneralizedDice && o.activation == Activation::None);
      const double xb = double(n) * 4, tb = double(tbytes);
      const double gb = (xb + tb + (reads_x ? xb : 0) + tb + xb) / 1e9;
      const double gbs = gb / (med / 1e3);
      std::printf("| %s | %s | %lld^3 | %lld | %.3f (%.3f + %.3f) | %.3f | %.0f | %.0f%% |\n", kLossNames[l], input,
                  (long long)row.side, (long long)row.C, med, med_reduce, med_gradient, gb, gbs, 100 * gbs / copy_gbs);
      std::fflush(stdout);
      char buf[600];
      std::snprintf(buf, sizeof buf,
                    "%s{\"loss\": \"%s\", \"input\": \"%s\", \"activation\": \"%s\", \"target\": \"%s\", "
                    "\"class_lanes\": %s, \"side\": %lld, \"C\": %lld, \"ms\": %.4f, \"reduce_ms\": %.4f, "
                    "\"gradient_ms\": %.4f, \"gb\": %.4f, \"gbs\": %.1f, \"copy_share\": %.4f}",
                    rows.size() > 1 ? ", " : "", kLossNames[l], input, kActNames[int(row.act)],
                    kTargetNames[int(row.tk)], row.C >= 3 || row.lanes2 ? "true" : "false", (long long)row.side,
                    (long long)row.C, med, med_reduce, med_gradient, gb, gbs, gbs / copy_gbs);
      rows += buf;
    }
    gpu::device_free(dx);
    gpu::device_free(dt);
    gpu::device_free(dg);
  }
  rows += "]";
  out.field("timings", rows);

  // Host data: staged CUDA vs the CPU backend, for 'auto''s crossover: two
  // classes over every size, eight classes (the class lanes) over a few.
  if (!profile && crossover) {
    std::printf("\nhost typed arrays, GDL softmax u8, loss + gradient: CPU (%d threads) vs CUDA staged\n",
                ThreadPool::instance().threads());
    std::printf("| C | elements | CPU ms | CUDA ms | faster |\n|---|---|---|---|---|\n");
  }
  std::string cross = "[";
  for (int64_t C : {2, 8})
    for (int64_t e = quick ? 12 : C == 2 ? 16 : 18; e <= (profile || !crossover ? 0 : quick ? 16 : 27); e += quick ? 2 : C == 2 ? 1 : 3) {
      Case c{Loss::GeneralizedDice, 1, (int64_t(1) << e) / C, C, Activation::Softmax, TargetKind::U8, false, false};
      make_inputs(c, 11, &h);
      const Options o = options_of(c);
      double best[2] = {1e30, 1e30};
      for (int r = 0; r < 5; ++r)
        for (int how = 0; how < 2; ++how) {
          const double s = now_ms();
          run(o, h, how);
          best[how] = std::min(best[how], now_ms() - s);
        }
      std::printf("| %lld | 2^%lld | %.3f | %.3f | %s |\n", (long long)C, (long long)e, best[0], best[1],
                  best[1] < best[0] ? "CUDA" : "CPU");
      char row[200];
      std::snprintf(row, sizeof row, "%s{\"C\": %lld, \"log2_elements\": %lld, \"cpu_ms\": %.4f, \"cuda_ms\": %.4f}",
                    cross.size() > 1 ? ", " : "", (long long)C, (long long)e, best[0], best[1]);
      cross += row;
    }
  cross += "]";
  out.field("host_crossover", cross);
  out.s += "\n}\n";
  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (f) {
      std::fputs(out.s.c_str(), f);
      std::fclose(f);
    }
  }
  std::printf("\n%s\n", failures ? "GPU CHECK FAILED" : "GPU check passed");
  return failures ? 1 : 0;
}
