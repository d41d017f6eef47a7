// The SIMT emulation behind cuda/simt.h: blocks in sequence, every CUDA
// thread a fiber, barriers that switch fibers until all have arrived, and the
// runtime API subset on host memory.
//
// Fibers switch with a six-register context switch (x86-64 System V: the
// callee-saved registers and the stack pointer), so a barrier costs a few
// nanoseconds and a block of 256 threads with hundreds of shuffles runs in
// milliseconds. Other architectures use ucontext.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "simt.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#if defined(__x86_64__)
// void segloss_simt_switch(void** save_sp, void* load_sp): saves the
// callee-saved registers on the current stack, stores its pointer in
// *save_sp, and resumes the context whose stack pointer is load_sp.
extern "C" void segloss_simt_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl segloss_simt_switch
  .hidden segloss_simt_switch
  .type segloss_simt_switch, @function
segloss_simt_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size segloss_simt_switch, .-segloss_simt_switch
)");
#endif

namespace segloss {
namespace simt {
namespace {

constexpr size_t kStackBytes = 256 * 1024;
constexpr unsigned kWarp = 32;

enum State : int { kRunnable, kAtWarp, kAtBlock, kDone };

struct Fiber {
  ThreadCoords coords;
  State state = kRunnable;
  uint64_t slot = 0;
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
};

// One scheduler per OS thread: launches from different threads (the async
// API's workers) never share fibers.
struct Scheduler {
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;
  int current = -1;
  const std::function<void()>* body = nullptr;
  std::string error;
#if defined(__x86_64__)
  void* main_sp = nullptr;
#else
  ucontext_t main_ctx;
#endif
};

thread_local Scheduler sched;

void switch_to_main(Fiber& f) {
#if defined(__x86_64__)
  segloss_simt_switch(&f.sp, sched.main_sp);
#else
  swapcontext(&f.ctx, &sched.main_ctx);
#endif
}

[[noreturn]] void fiber_entry() {
  (*sched.body)();
  Fiber& f = sched.fibers[sched.current];
  f.state = kDone;
  switch_to_main(f);
  std::abort();  // a finished fiber is never resumed
}

void start_fiber(int i) {
  Fiber& f = sched.fibers[i];
  char* top = sched.stacks[i].get() + kStackBytes;
  top = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(top) & ~uintptr_t(15));
#if defined(__x86_64__)
  // Six zeroed registers, then the entry as the return address of the first
  // switch, then a fake return address so that the entry starts with the
  // stack alignment of a called function.
  void** sp = reinterpret_cast<void**>(top) - 8;
  for (int r = 0; r < 6; ++r) sp[r] = nullptr;
  sp[6] = reinterpret_cast<void*>(&fiber_entry);
  sp[7] = nullptr;
  f.sp = sp;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = sched.stacks[i].get();
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, reinterpret_cast<void (*)()>(&fiber_entry), 0);
#endif
}

void resume(int i) {
  sched.current = i;
  Fiber& f = sched.fibers[i];
#if defined(__x86_64__)
  segloss_simt_switch(&sched.main_sp, f.sp);
#else
  swapcontext(&sched.main_ctx, &f.ctx);
#endif
  sched.current = -1;
}

void wait(State s) {
  Fiber& f = sched.fibers[sched.current];
  f.state = s;
  switch_to_main(f);
}

// Runs one block to completion; false when its barriers cannot complete.
bool run_block(unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    sched.fibers[i].state = kRunnable;
    start_fiber(static_cast<int>(i));
  }
  for (;;) {
    for (unsigned i = 0; i < n; ++i)
      if (sched.fibers[i].state == kRunnable) resume(static_cast<int>(i));
    unsigned done = 0, at_block = 0;
    bool released = false;
    for (unsigned w = 0; w < n; w += kWarp) {
      const unsigned end = std::min(n, w + kWarp);
      unsigned at_warp = 0, exited = 0;
      for (unsigned i = w; i < end; ++i) {
        at_warp += sched.fibers[i].state == kAtWarp;
        exited += sched.fibers[i].state == kDone;
      }
      if (at_warp > 0 && at_warp + exited == end - w && exited > 0) {
        sched.error = "a warp shuffle or __syncwarp in warp " + std::to_string(w / kWarp) + " waits for " +
                      std::to_string(exited) + " lanes that have exited";
        return false;
      }
      if (at_warp == end - w) {
        for (unsigned i = w; i < end; ++i) sched.fibers[i].state = kRunnable;
        released = true;
      }
    }
    if (released) continue;
    for (unsigned i = 0; i < n; ++i) {
      done += sched.fibers[i].state == kDone;
      at_block += sched.fibers[i].state == kAtBlock;
    }
    if (done == n) return true;
    if (at_block == n) {
      for (unsigned i = 0; i < n; ++i) sched.fibers[i].state = kRunnable;
      continue;
    }
    sched.error = "__syncthreads or a warp barrier is not reached by every thread of the block (" +
                  std::to_string(at_block) + " at __syncthreads, " + std::to_string(done) + " exited, " +
                  std::to_string(n - at_block - done) + " at a warp barrier, of " + std::to_string(n) + ")";
    return false;
  }
}

}  // namespace

const ThreadCoords& coords() { return sched.fibers[sched.current].coords; }
void sync_block() { wait(kAtBlock); }
void sync_warp() { wait(kAtWarp); }
unsigned lane_id() { return static_cast<unsigned>(sched.current) % kWarp; }
void* shuffle_slot(unsigned lane) {
  const unsigned base = static_cast<unsigned>(sched.current) / kWarp * kWarp;
  const unsigned i = base + lane;
  return &sched.fibers[i < sched.fibers.size() ? i : sched.current].slot;
}
const char* last_error() { return sched.error.c_str(); }

namespace {
thread_local std::string fault_text;
}
void fault(const char* what) {
  if (fault_text.empty()) fault_text = what;
}

bool run_grid(dim3 grid, dim3 block, const std::function<void()>& body) {
  if (sched.current >= 0) {
    sched.error = "a kernel launched from a kernel";
    return false;
  }
  const unsigned n = block.x * block.y * block.z;
  if (n == 0 || n > 1024) {
    sched.error = "a block of " + std::to_string(n) + " threads";
    return false;
  }
  sched.fibers.resize(std::max<size_t>(sched.fibers.size(), n));
  while (sched.stacks.size() < n) sched.stacks.emplace_back(new char[kStackBytes]);
  sched.body = &body;
  sched.error.clear();
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        for (unsigned i = 0; i < n; ++i) {
          ThreadCoords& c = sched.fibers[i].coords;
          c.thread_idx = {i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
          c.block_idx = {bx, by, bz};
          c.block_dim = block;
          c.grid_dim = grid;
        }
        fault_text.clear();
        if (!run_block(n)) return false;
        if (!fault_text.empty()) {
          sched.error = fault_text + " in block (" + std::to_string(bx) + ", " + std::to_string(by) + ", " +
                        std::to_string(bz) + ")";
          return false;
        }
      }
  return true;
}

}  // namespace simt
}  // namespace segloss

// ---------------------------------------------------- runtime API subset
struct CUstream_st {};
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
};

namespace {
void* aligned(size_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
  // Exactly `bytes` (glibc aligns to 16, all the kernels' vector accesses
  // need), so that AddressSanitizer sees an access one byte past the end.
  return std::malloc(std::max<size_t>(bytes, 1));
#else
  const size_t a = 256;  // as cudaMalloc
  return std::aligned_alloc(a, (std::max<size_t>(bytes, 1) + a - 1) / a * a);
#endif
}
}  // namespace

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::memset(p, 0, sizeof *p);
  std::strcpy(p->name, "SIMT emulation on the CPU");
  p->multiProcessorCount = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = aligned(bytes);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeHost(void* p) { return cudaFree(p); }
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, k);
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new CUstream_st;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  e->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaGetLastError() { return cudaSuccess; }
cudaError_t cudaPeekAtLastError() { return cudaSuccess; }
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    default: return "cudaErrorLaunchFailure";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  if (e == cudaErrorLaunchFailure) return segloss::simt::last_error();
  return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "invalid argument";
}
