// The CUDA surface the kernels and host launchers use, in two builds:
//
//   nvcc (__CUDACC__):      the real CUDA runtime; nothing below is defined.
//   g++ with SEGLOSS_SIMT_EMULATE: the same .cu sources compiled as C++ and
//                           run on the CPU, so CI (which has no GPU) executes
//                           every kernel against the float64 reference.
//
// The emulation runs a launch's blocks one after another. Each CUDA thread of
// a block is a fiber (its own stack, switched cooperatively on one OS
// thread); __syncthreads and the warp shuffles are barriers that switch to
// the next fiber until every thread of the block (or warp) has arrived. So
// the kernels' synchronisation is executed for real: a barrier that some
// threads of a block never reach is reported as an error, not skipped.
//
// The runtime API subset (memory, streams, events, device query) works on
// host memory and runs everything at once, in issue order: asynchronous
// copies and launches are complete when they return.
#pragma once

#if defined(__CUDACC__)

#include <cuda_runtime.h>
#define SEGLOSS_CUDA_NS cuda
#define SEGLOSS_BACKEND_NAME "cuda"

#else  // ------------------------------------------------------ emulation

#if !defined(SEGLOSS_SIMT_EMULATE)
#error "cuda/*.cu compile with nvcc, or as C++ with -DSEGLOSS_SIMT_EMULATE"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#define SEGLOSS_CUDA_NS simt
#define SEGLOSS_BACKEND_NAME "cuda-emulated"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
// One copy per kernel instantiation and OS thread: blocks run one at a time
// on a thread, and concurrent launches from other threads get their own.
#define __shared__ static thread_local

namespace segloss {
namespace simt {

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

// The running fiber's coordinates.
struct ThreadCoords {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
const ThreadCoords& coords();

// Barriers. Every live thread of the block (warp) must arrive.
void sync_block();
void sync_warp();
// Exchange slot of the calling thread for warp shuffles (8 bytes).
void* shuffle_slot(unsigned lane_of_warp);
unsigned lane_id();

// Runs `body` as every thread of every block of `grid` (`block` threads
// each). Returns false when a barrier could not complete; last_error() says
// which.
bool run_grid(dim3 grid, dim3 block, const std::function<void()>& body);
const char* last_error();
// Records a fault a GPU would raise (the first one of a launch), which makes
// the launch fail: e.g. a vector load from an address it is not aligned for.
void fault(const char* what);

// The value of lane `src` of the calling warp (its own where src >= 32);
// every lane of the warp calls it.
template <class T>
T shfl_from(T v, unsigned src) {
  static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
  std::memcpy(shuffle_slot(lane_id()), &v, sizeof v);
  sync_warp();
  T out = v;
  if (src < 32) std::memcpy(&out, shuffle_slot(src), sizeof out);
  sync_warp();  // nobody overwrites a slot before every lane has read it
  return out;
}
template <class T>
T shfl_down(T v, unsigned delta) { return shfl_from(v, lane_id() + delta); }
template <class T>
T shfl_xor(T v, unsigned mask) { return shfl_from(v, lane_id() ^ mask); }

// Bit i set when lane i's predicate is true (every lane of the warp calls it).
inline unsigned ballot(bool pred) {
  const unsigned lane = lane_id();
  const uint64_t mine = pred ? 1 : 0;
  std::memcpy(shuffle_slot(lane), &mine, sizeof mine);
  sync_warp();
  unsigned bits = 0;
  for (unsigned i = 0; i < 32; ++i) {
    uint64_t b;
    std::memcpy(&b, shuffle_slot(i), sizeof b);
    bits |= b ? 1u << i : 0u;
  }
  sync_warp();
  return bits;
}

}  // namespace simt
}  // namespace segloss

#define threadIdx (::segloss::simt::coords().thread_idx)
#define blockIdx (::segloss::simt::coords().block_idx)
#define blockDim (::segloss::simt::coords().block_dim)
#define gridDim (::segloss::simt::coords().grid_dim)
#define __syncthreads() ::segloss::simt::sync_block()
#define __syncwarp(mask) ::segloss::simt::sync_warp()
#define __shfl_down_sync(mask, v, delta) ::segloss::simt::shfl_down((v), (delta))
#define __shfl_xor_sync(mask, v, lanemask) ::segloss::simt::shfl_xor((v), (lanemask))
#define __ballot_sync(mask, pred) ::segloss::simt::ballot(pred)
#define __ldg(p) (*(p))
// A 16-, 8- or 4-byte vector access must be aligned to its size on a GPU;
// x86 would let a misaligned one pass, so the emulation checks it.
#define SEGLOSS_VECTOR_ACCESS(p, bytes) \
  ((reinterpret_cast<uintptr_t>(p) % (bytes)) ? ::segloss::simt::fault("misaligned " #bytes "-byte vector access") : (void)0)

using segloss::simt::dim3;

// Vector types of the loads the kernels make.
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(4) uchar4 { unsigned char x, y, z, w; };
struct alignas(8) ushort4 { unsigned short x, y, z, w; };
struct alignas(16) int4 { int x, y, z, w; };

// ----------------------------------------------- runtime API subset
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int multiProcessorCount;
  int major, minor;
};

cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDisableTiming = 2;
constexpr unsigned cudaEventDefault = 0;

#endif  // emulation

// ------------------------------------------------------------ both builds
#if defined(__CUDACC__)
#define SEGLOSS_VECTOR_ACCESS(p, bytes) ((void)0)
// Loops over per-voxel or per-class register arrays: unrolled, so that every
// index is a compile-time constant and the arrays stay out of local memory.
#define SEGLOSS_UNROLL _Pragma("unroll")
#else
#define SEGLOSS_UNROLL
#endif
#include <string>

namespace segloss {
namespace SEGLOSS_CUDA_NS {

// The text of a CUDA error for a Status: name, description, where. Clears
// the sticky last error, so the next call starts clean.
std::string describe_cuda_error(cudaError_t e, const char* what, const char* file, int line);

// One launcher for both builds: kernel<<<grid, block, 0, stream>>>(args...)
// under nvcc, the fiber scheduler under emulation. Returns the launch error.
template <class... P, class... A>
cudaError_t launch(void (*kernel)(P...), unsigned grid, unsigned block, cudaStream_t stream, A... args) {
  if (grid == 0) return cudaSuccess;
#if defined(__CUDACC__)
  kernel<<<grid, block, 0, stream>>>(args...);
  return cudaGetLastError();
#else
  (void)stream;
  return simt::run_grid(dim3(grid), dim3(block), [&] { kernel(args...); }) ? cudaSuccess : cudaErrorLaunchFailure;
#endif
}

}  // namespace SEGLOSS_CUDA_NS
}  // namespace segloss

// Returns a Status from the enclosing function when a CUDA call fails.
#define SEGLOSS_CUDA_TRY(call)                                                              \
  do {                                                                                      \
    const cudaError_t segloss_e_ = (call);                                                  \
    if (segloss_e_ != cudaSuccess)                                                          \
      return ::segloss::Status::Device(                                                     \
          ::segloss::SEGLOSS_CUDA_NS::describe_cuda_error(segloss_e_, #call, __FILE__, __LINE__)); \
  } while (0)
