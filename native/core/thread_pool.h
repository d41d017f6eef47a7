// A persistent pool of worker threads for the CPU passes.
//
// parallel_for(n, fn) runs fn(0..n-1), each index exactly once, on the
// workers and the calling thread, and returns when all are done. If fn
// throws, the indices not yet started are skipped and parallel_for rethrows
// the first exception on the calling thread once every running fn returned.
// Which thread runs an index is not fixed, so callers write per-index results
// to per-index slots and combine them in index order: that makes results
// independent of the thread count (bit-identical for 1..N threads).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace segloss {

class ThreadPool {
 public:
  static ThreadPool& instance();

  // Total threads used by parallel_for, the caller included (>= 1).
  int threads();
  // 0 selects the hardware concurrency.
  void set_threads(int n);
  void parallel_for(int64_t n, const std::function<void(int64_t)>& fn);

  ~ThreadPool();

 private:
  ThreadPool();
  void start(int n);
  void stop();
  void worker_loop();
  void drain();

  // Serialises parallel_for calls from different threads (the main thread
  // and async workers) and resizing.
  std::mutex run_mutex_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  bool quit_ = false;
  uint64_t generation_ = 0;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t job_size_ = 0;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;  // the job's first exception (under mu_)
  int active_ = 0;  // workers inside the current job
  int threads_ = 1;
};

}  // namespace segloss
