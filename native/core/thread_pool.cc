#include "thread_pool.h"

#include <utility>

namespace segloss {

ThreadPool& ThreadPool::instance() {
  // Leaked on purpose: joining threads from a static destructor at process
  // exit can deadlock with Node's own teardown.
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

ThreadPool::ThreadPool() { start(0); }
ThreadPool::~ThreadPool() { stop(); }

int ThreadPool::threads() {
  std::lock_guard<std::mutex> run(run_mutex_);
  return threads_;
}

void ThreadPool::set_threads(int n) {
  std::lock_guard<std::mutex> run(run_mutex_);
  stop();
  start(n);
}

void ThreadPool::start(int n) {
  if (n <= 0) {
    n = static_cast<int>(std::thread::hardware_concurrency());
    if (n <= 0) n = 1;
  }
  threads_ = n;
  quit_ = false;
  for (int i = 1; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

// Claims indices until none are left. An exception closes the job to
// further claims and is kept for parallel_for to rethrow (a worker's would
// otherwise end the process).
void ThreadPool::drain() {
  const auto& fn = *job_;
  for (int64_t i = next_.fetch_add(1); i < job_size_; i = next_.fetch_add(1)) {
    try {
      fn(i);
    } catch (...) {
      next_.store(job_size_);
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

// A worker joins a job only while it is open (job_ set): one that wakes
// after the caller has finished (a descheduled vCPU can take milliseconds to
// run again) finds it closed and goes back to sleep, and the caller never
// waits for a worker that has not started.
void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      wake_.wait(lk, [&] { return quit_ || (generation_ != seen && job_ != nullptr); });
      if (quit_) return;
      seen = generation_;
      ++active_;
    }
    drain();
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (--active_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> run(run_mutex_);
  if (workers_.empty() || n == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    job_size_ = n;
    next_.store(0);
    ++generation_;
  }
  wake_.notify_all();
  drain();
  // Every index is claimed; wait for the workers still running theirs, then
  // close the job to the ones that have not woken yet.
  std::unique_lock<std::mutex> lk(mu_);
  done_.wait(lk, [&] { return active_ == 0; });
  job_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace segloss
