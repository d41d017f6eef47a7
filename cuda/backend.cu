// Host side of the GPU backend: device probe, memory pool, and the staged
// passes for tensors in host memory.
//
// Host tensors reach the device in pieces of whole chunks. Two slots, each
// with a pinned staging buffer, device buffers and a stream, alternate: while
// the device copies and reduces piece i from one slot, the CPU fills the
// other slot's pinned buffer with piece i + 1. Chunk partials are indexed by
// the chunk's place in the whole call, so the statistics do not depend on
// the piece size. The gradient comes back the same way.
//
// One call runs on the device at a time (a mutex): the slots and the pool
// are shared by every call.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "../native/core/describe.h"
#include "../native/core/finalize.h"
#include "backend.h"
#include "kernels.cuh"

namespace segloss {
namespace SEGLOSS_CUDA_NS {

std::string describe_cuda_error(cudaError_t e, const char* what, const char* file, int line) {
  std::string s = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e) + " (" + what + " at " + file + ":" +
                  std::to_string(line) + ")";
  cudaGetLastError();  // clear the sticky error
  return s;
}

namespace {

#if defined(SEGLOSS_SIMT_EMULATE)
// Small pieces, so that the tests' small inputs run the pipeline over many.
constexpr int64_t kPieceChunks = 1;
#else
constexpr int64_t kPieceChunks = 512;  // 4 Mi voxels
#endif

std::mutex& device_mutex() {
  static std::mutex m;
  return m;
}

// Device allocations by size class, reused across calls until
// release_memory(): cudaMalloc / cudaFree synchronise the device and cost far
// more than a pass over a small volume.
struct Pool {
  std::mutex m;
  std::multimap<size_t, void*> free_blocks;
  size_t held = 0;

  static size_t round(size_t bytes) {
    size_t n = size_t(1) << 20;
    while (n < bytes) n <<= 1;
    return n;
  }
  cudaError_t get(size_t bytes, void** p) {
    const size_t n = round(bytes);
    {
      std::lock_guard<std::mutex> lock(m);
      auto it = free_blocks.find(n);
      if (it != free_blocks.end()) {
        *p = it->second;
        free_blocks.erase(it);
        return cudaSuccess;
      }
    }
    cudaError_t e = cudaMalloc(p, n);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release();  // cached blocks first, then once more
      e = cudaMalloc(p, n);
    }
    if (e == cudaSuccess) {
      std::lock_guard<std::mutex> lock(m);
      held += n;
    }
    return e;
  }
  void put(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(m);
    free_blocks.emplace(round(bytes), p);
  }
  void release() {
    std::lock_guard<std::mutex> lock(m);
    for (auto& b : free_blocks) {
      cudaFree(b.second);
      held -= b.first;
    }
    free_blocks.clear();
  }
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: the driver may be gone at exit
  return *p;
}

// A pooled device allocation for the duration of one call.
struct Scoped {
  void* p = nullptr;
  size_t bytes = 0;
  cudaError_t get(size_t n) {
    bytes = n;
    return pool().get(n, &p);
  }
  void reset() {
    if (p) pool().put(p, bytes);
    p = nullptr;
    bytes = 0;
  }
  ~Scoped() { reset(); }
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

// One staging slot: pinned host buffers, device buffers, a stream, and an
// event marking that the pinned inputs have been copied out.
struct Slot {
  void* pinned = nullptr;
  size_t pinned_bytes = 0;
  Scoped dev;
  cudaStream_t stream = nullptr;
  cudaEvent_t copied = nullptr;
};

struct Slots {
  Slot s[2];
  bool ready = false;
  cudaError_t init() {
    if (ready) return cudaSuccess;
    for (Slot& x : s) {
      cudaError_t e = cudaStreamCreateWithFlags(&x.stream, cudaStreamNonBlocking);
      if (e == cudaSuccess) e = cudaEventCreateWithFlags(&x.copied, cudaEventDisableTiming);
      if (e != cudaSuccess) return e;
    }
    ready = true;
    return cudaSuccess;
  }
  // Pinned buffers of at least `bytes` (kept between calls; pinned memory is
  // slow to allocate).
  cudaError_t pinned(Slot& x, size_t bytes) {
    if (x.pinned_bytes >= bytes) return cudaSuccess;
    if (x.pinned) cudaFreeHost(x.pinned);
    x.pinned = nullptr;
    x.pinned_bytes = 0;
    const cudaError_t e = cudaMallocHost(&x.pinned, bytes);
    if (e == cudaSuccess) x.pinned_bytes = bytes;
    return e;
  }
  void release_pinned() {
    for (Slot& x : s) {
      if (x.pinned) cudaFreeHost(x.pinned);
      x.pinned = nullptr;
      x.pinned_bytes = 0;
    }
  }
};

Slots& slots() {
  static Slots* s = new Slots;
  return *s;
}

int64_t target_bytes(const Tensors& t) {
  switch (t.target_kind) {
    case TargetKind::U8: return 1;
    case TargetKind::U16: return 2;
    case TargetKind::Dense: return 4 * t.C;
    default: return 4;
  }
}

cudaError_t run_pass(const Options& o, const Launch& a, bool reduce) {
  switch (o.loss) {
    case Loss::GeneralizedDice: return pass_generalized_dice(a, reduce);
    case Loss::Dice: return pass_dice(a, reduce);
    case Loss::SensitivitySpecificity: return pass_sensitivity_specificity(a, reduce);
    case Loss::WeightedCrossEntropy: return pass_weighted_cross_entropy(a, reduce);
  }
  return cudaErrorInvalidValue;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// stats[b][f] = the sum over sample b's chunks of partial[chunk][f], for
// f < fields (fields = stride + 1: the bad count is summed too).
__global__ void combine_kernel(const double* partial, int64_t per_sample, int fields, double* stats) {
  const int64_t b = blockIdx.x;
  for (int f = 0; f < fields; ++f) {
    double s = 0;
    for (int64_t i = threadIdx.x; i < per_sample; i += kThreads) s += partial[(b * per_sample + i) * fields + f];
    block_sum<1>(&s, 1, stats + b * fields + f);
  }
}

// Voxels [begin, end) of chunks [c0, c1) of the call.
struct Piece {
  int64_t c0, c1, begin, end;
};
Piece piece(const ChunkGrid<kChunk>& grid, int64_t c0, int64_t c1) { return Piece{c0, c1, grid.begin(c0), grid.end(c1 - 1)}; }

// Two channels run on the one-voxel-per-thread kernels unless
// SEGLOSS_CUDA_CLASS_LANES_MIN_C (default 3) is 2: the GPU check times both
// (read per call, so that one process can).
int64_t class_lanes_min_c() {
  const char* e = std::getenv("SEGLOSS_CUDA_CLASS_LANES_MIN_C");
  return e && std::atoll(e) == 2 ? 2 : 3;
}

Launch base_launch(const Options& o, const Tensors& t) {
  Launch a;
  a.class_lanes = t.C >= class_lanes_min_c();
  a.ctx = vm::make_ctx(o, t);
  a.target_kind = t.target_kind;
  a.view.grid = ChunkGrid<kChunk>(t.V);
  a.stride = static_cast<int>(stats_layout(o, t.C).stride());
  return a;
}

// The reduction's per-chunk partials, [chunks of the call][stride + 1], into a.
cudaError_t alloc_partials(const Tensors& t, Launch* a, Scoped* partial) {
  const cudaError_t e = partial->get(sizeof(double) * a->view.grid.count(t.B) * (a->stride + 1));
  a->partial = partial->as<double>();
  return e;
}

// Combines the chunk partials into stats; on bad input, describes the first
// bad voxel from the host copy `host` (the caller's tensors, or a download).
Status finish_reduce(const Tensors& host, const Launch& a, cudaStream_t stream, double* stats,
                     const std::function<Status(int64_t, int64_t)>& describe) {
  const int64_t count = a.view.grid.count(host.B);
  const int fields = a.stride + 1;
  Scoped d_stats;
  SEGLOSS_CUDA_TRY(d_stats.get(sizeof(double) * host.B * fields));
  SEGLOSS_CUDA_TRY(launch(combine_kernel, unsigned(host.B), kThreads, stream, static_cast<const double*>(a.partial),
                          a.view.grid.per_sample, fields, d_stats.as<double>()));
  std::vector<double> s(static_cast<size_t>(host.B) * fields);
  SEGLOSS_CUDA_TRY(cudaMemcpyAsync(s.data(), d_stats.p, sizeof(double) * s.size(), cudaMemcpyDeviceToHost, stream));
  SEGLOSS_CUDA_TRY(cudaStreamSynchronize(stream));
  bool bad = false;
  for (int64_t b = 0; b < host.B; ++b) bad |= s[b * fields + a.stride] != 0;
  if (bad) {
    std::vector<double> partial(static_cast<size_t>(count) * fields);
    SEGLOSS_CUDA_TRY(cudaMemcpy(partial.data(), a.partial, sizeof(double) * partial.size(), cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < count; ++i)
      if (partial[i * fields + a.stride] != 0) {
        const Piece p = piece(a.view.grid, i, i + 1);
        return describe(p.begin, p.end);
      }
    return Status::Internal("the device flagged bad input that no chunk holds");
  }
  for (int64_t b = 0; b < host.B; ++b)
    std::memcpy(stats + b * a.stride, s.data() + b * fields, sizeof(double) * a.stride);
  return Status();
}

// How one call's pieces sit in a slot's pinned and device buffers:
// [x | target | mask | gradient], each sized for a whole piece.
struct Staging {
  const Tensors& t;
  bool with_x;
  size_t x_bytes, t_bytes, m_bytes, g_bytes;
  Staging(const Tensors& tensors, bool x, bool grad) : t(tensors), with_x(x) {
    const size_t piece_voxels = kPieceChunks * kChunk;
    x_bytes = x ? 4 * t.C * piece_voxels : 0;
    t_bytes = target_bytes(t) * piece_voxels;
    m_bytes = t.mask ? piece_voxels : 0;
    g_bytes = grad ? 4 * t.C * piece_voxels : 0;
  }
  size_t bytes() const { return x_bytes + t_bytes + m_bytes + g_bytes; }
  void* grad_of(void* base) const { return static_cast<char*>(base) + x_bytes + t_bytes + m_bytes; }

  // Both slots' buffers large enough for a piece.
  cudaError_t reserve(Slots& sl) const {
    for (Slot& s : sl.s) {
      cudaError_t e = sl.pinned(s, bytes());
      if (e == cudaSuccess && s.dev.bytes < bytes()) {
        s.dev.reset();
        e = s.dev.get(bytes());
      }
      if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
  }

  // Piece p's inputs into slot s's pinned buffer (once its previous copy to
  // the device is done), then onto the device on s's stream; points a's view
  // and chunk range at them.
  Status stage(Slot& s, const Piece& p, Launch* a) const {
    const int64_t n = p.end - p.begin, tb = target_bytes(t);
    SEGLOSS_CUDA_TRY(cudaEventSynchronize(s.copied));
    char* pin = static_cast<char*>(s.pinned);
    char* dev = s.dev.as<char>();
    const size_t parts[3][2] = {{0, with_x ? size_t(4 * t.C * n) : 0},
                                {x_bytes, size_t(tb * n)},
                                {x_bytes + t_bytes, t.mask ? size_t(n) : 0}};
    const char* src[3] = {reinterpret_cast<const char*>(t.x + p.begin * t.C),
                          static_cast<const char*>(t.target) + p.begin * tb,
                          t.mask ? reinterpret_cast<const char*>(t.mask) + p.begin : nullptr};
    for (int k = 0; k < 3; ++k) {
      if (parts[k][1] == 0) continue;
      std::memcpy(pin + parts[k][0], src[k], parts[k][1]);
      SEGLOSS_CUDA_TRY(cudaMemcpyAsync(dev + parts[k][0], pin + parts[k][0], parts[k][1], cudaMemcpyHostToDevice, s.stream));
    }
    SEGLOSS_CUDA_TRY(cudaEventRecord(s.copied, s.stream));
    a->view.x = with_x ? reinterpret_cast<const float*>(dev) : nullptr;
    a->view.target = dev + x_bytes;
    a->view.mask = t.mask ? reinterpret_cast<const uint8_t*>(dev + x_bytes + t_bytes) : nullptr;
    a->view.first = p.begin;
    a->view.vec = t.V % kVec == 0;  // pieces start at chunk starts; buffers are 256-byte aligned
    a->chunk0 = p.c0;
    a->chunks = p.c1 - p.c0;
    a->stream = s.stream;
    return Status();
  }
};

}  // namespace

BackendInfo info() {
  static const BackendInfo probed = [] {
    BackendInfo b;
    b.name = SEGLOSS_BACKEND_NAME;
    b.compiled = true;
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      b.reason = std::string("cudaGetDeviceCount failed with ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
#if defined(__CUDACC__)
      if (e == cudaErrorInsufficientDriver)
        b.reason += " (no NVIDIA driver is loaded on this machine, or it is older than CUDA " +
                    std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10) + " needs)";
#endif
      cudaGetLastError();
      return b;
    }
    if (n == 0) {
      b.reason = "no CUDA device is visible (cudaGetDeviceCount returned 0)";
      return b;
    }
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
      b.reason = "cudaGetDeviceProperties failed for device 0";
      cudaGetLastError();
      return b;
    }
    b.available = true;
    b.device = prop.name;
    return b;
  }();
  return probed;
}

std::string unsupported(const Tensors& t) {
  if (num_classes(t.C) > kMaxClasses)
    return "the CUDA kernels take at most " + std::to_string(kMaxClasses) + " classes per voxel and the input has C = " +
           std::to_string(t.C);
  return "";
}

Status reduce(const Options& o, const Tensors& t, double* stats) {
  std::lock_guard<std::mutex> lock(device_mutex());
  Slots& sl = slots();
  SEGLOSS_CUDA_TRY(sl.init());
  Launch a = base_launch(o, t);
  const int64_t count = a.view.grid.count(t.B);
  Scoped partial;
  SEGLOSS_CUDA_TRY(alloc_partials(t, &a, &partial));
  const Staging st(t, true, false);
  SEGLOSS_CUDA_TRY(st.reserve(sl));
  for (int64_t c0 = 0, i = 0; c0 < count; c0 += kPieceChunks, ++i) {
    Slot& s = sl.s[i % 2];
    const Piece p = piece(a.view.grid, c0, std::min(c0 + kPieceChunks, count));
    const Status staged = st.stage(s, p, &a);
    if (!staged.ok()) return staged;
    SEGLOSS_CUDA_TRY(run_pass(o, a, true));
  }
  SEGLOSS_CUDA_TRY(cudaStreamSynchronize(sl.s[1].stream));
  return finish_reduce(t, a, sl.s[0].stream, stats,
                       [&](int64_t b, int64_t e) { return describe_bad_input(o, t, b, e); });
}

Status gradient(const Options& o, const Tensors& t, const double* coef, float* grad) {
  std::lock_guard<std::mutex> lock(device_mutex());
  Slots& sl = slots();
  SEGLOSS_CUDA_TRY(sl.init());
  Launch a = base_launch(o, t);
  const int64_t count = a.view.grid.count(t.B);
  const int64_t nk = static_cast<int64_t>(num_classes(t.C)) * grad_coefficients(o.loss);
  Scoped d_coef;
  SEGLOSS_CUDA_TRY(d_coef.get(sizeof(double) * t.B * nk));
  // (on a stream, then waited for: both slots' kernels read it)
  SEGLOSS_CUDA_TRY(cudaMemcpyAsync(d_coef.p, coef, sizeof(double) * t.B * nk, cudaMemcpyHostToDevice, sl.s[0].stream));
  SEGLOSS_CUDA_TRY(cudaStreamSynchronize(sl.s[0].stream));
  a.coef = d_coef.as<double>();
  const Staging st(t, gradient_reads_prediction(o.loss, o.activation), true);
  SEGLOSS_CUDA_TRY(st.reserve(sl));
  // Copies piece `p`'s gradient out of slot `s` into the caller's array.
  auto drain = [&](Slot& s, const Piece& p) -> Status {
    SEGLOSS_CUDA_TRY(cudaStreamSynchronize(s.stream));
    std::memcpy(grad + p.begin * t.C, st.grad_of(s.pinned), 4 * t.C * (p.end - p.begin));
    return Status();
  };
  Piece prev{0, 0, 0, 0};
  int64_t i = 0;
  for (int64_t c0 = 0; c0 < count; c0 += kPieceChunks, ++i) {
    Slot& s = sl.s[i % 2];
    const Piece p = piece(a.view.grid, c0, std::min(c0 + kPieceChunks, count));
    Status staged = st.stage(s, p, &a);
    if (!staged.ok()) return staged;
    a.grad = reinterpret_cast<float*>(st.grad_of(s.dev.p));
    SEGLOSS_CUDA_TRY(run_pass(o, a, false));
    SEGLOSS_CUDA_TRY(cudaMemcpyAsync(st.grad_of(s.pinned), a.grad, 4 * t.C * (p.end - p.begin), cudaMemcpyDeviceToHost,
                                     s.stream));
    // the previous piece's gradient is copied out while this one runs
    if (i > 0) staged = drain(sl.s[(i - 1) % 2], prev);
    if (!staged.ok()) return staged;
    prev = p;
  }
  return i > 0 ? drain(sl.s[(i - 1) % 2], prev) : Status();
}

Status reduce_device(const Options& o, const Tensors& t, double* stats) {
  std::lock_guard<std::mutex> lock(device_mutex());
  Slots& sl = slots();
  SEGLOSS_CUDA_TRY(sl.init());
  Launch a = base_launch(o, t);
  Scoped partial;
  SEGLOSS_CUDA_TRY(alloc_partials(t, &a, &partial));
  a.view.x = t.x;
  a.view.target = t.target;
  a.view.mask = t.mask;
  a.view.vec = t.V % kVec == 0 && aligned16(t.x) && aligned16(t.target) && (!t.mask || aligned16(t.mask));
  a.chunks = a.view.grid.count(t.B);
  a.stream = sl.s[0].stream;
  SEGLOSS_CUDA_TRY(run_pass(o, a, true));
  // Bad input: the offending chunk is downloaded and described on the host.
  return finish_reduce(t, a, a.stream, stats, [&](int64_t b, int64_t e) -> Status {
    const int64_t C = t.C, tb = target_bytes(t), n = e - b;
    std::vector<float> x(static_cast<size_t>(n * C));
    std::vector<char> tg(static_cast<size_t>(n * tb));
    std::vector<uint8_t> m(t.mask ? static_cast<size_t>(n) : 0);
    SEGLOSS_CUDA_TRY(cudaMemcpy(x.data(), t.x + b * C, 4 * n * C, cudaMemcpyDeviceToHost));
    SEGLOSS_CUDA_TRY(cudaMemcpy(tg.data(), static_cast<const char*>(t.target) + b * tb, n * tb, cudaMemcpyDeviceToHost));
    if (t.mask) SEGLOSS_CUDA_TRY(cudaMemcpy(m.data(), t.mask + b, n, cudaMemcpyDeviceToHost));
    // A one-sample view of the chunk.
    Tensors h = t;
    h.B = 1;
    h.V = n;
    h.x = x.data();
    h.target = tg.data();
    h.mask = t.mask ? m.data() : nullptr;
    BadInput bad;
    if (!find_bad_input(o, h, 0, n, &bad)) return Status::Internal("input check flagged a chunk without a bad value");
    bad.voxel += b;  // back to the call's voxel
    return bad_input_status(bad);
  });
}

Status gradient_device(const Options& o, const Tensors& t, const double* coef, float* grad) {
  std::lock_guard<std::mutex> lock(device_mutex());
  Slots& sl = slots();
  SEGLOSS_CUDA_TRY(sl.init());
  Launch a = base_launch(o, t);
  const int64_t nk = static_cast<int64_t>(num_classes(t.C)) * grad_coefficients(o.loss);
  Scoped d_coef;
  SEGLOSS_CUDA_TRY(d_coef.get(sizeof(double) * t.B * nk));
  SEGLOSS_CUDA_TRY(cudaMemcpyAsync(d_coef.p, coef, sizeof(double) * t.B * nk, cudaMemcpyHostToDevice, sl.s[0].stream));
  a.coef = d_coef.as<double>();
  a.view.x = t.x;
  a.view.target = t.target;
  a.view.mask = t.mask;
  a.view.vec = t.V % kVec == 0 && aligned16(t.x) && aligned16(t.target) && (!t.mask || aligned16(t.mask)) &&
               aligned16(grad);
  a.grad = grad;
  a.chunks = a.view.grid.count(t.B);
  a.stream = sl.s[0].stream;
  SEGLOSS_CUDA_TRY(run_pass(o, a, false));
  SEGLOSS_CUDA_TRY(cudaStreamSynchronize(a.stream));
  return Status();
}

Status device_alloc(size_t bytes, void** p) {
  SEGLOSS_CUDA_TRY(cudaMalloc(p, bytes == 0 ? 1 : bytes));
  return Status();
}
void device_free(void* p) { cudaFree(p); }
Status copy_to_device(void* dst, const void* src, size_t bytes) {
  SEGLOSS_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  // From pageable memory cudaMemcpy may return before the DMA has landed,
  // and the kernels run on non-blocking streams that do not wait for it.
  SEGLOSS_CUDA_TRY(cudaDeviceSynchronize());
  return Status();
}
Status copy_to_host(void* dst, const void* src, size_t bytes) {
  SEGLOSS_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
  return Status();
}
size_t pooled_bytes() {
  std::lock_guard<std::mutex> lock(pool().m);
  return pool().held;
}
void release_memory() {
  std::lock_guard<std::mutex> lock(device_mutex());
  Slots& sl = slots();
  for (Slot& s : sl.s) s.dev.reset();
  sl.release_pinned();
  pool().release();
}

}  // namespace SEGLOSS_CUDA_NS
}  // namespace segloss
