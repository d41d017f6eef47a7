// The job table of segloss's TensorFlow ops (tensorflow/jobs.h).
#include "jobs.h"

#include <climits>
#include <mutex>
#include <unordered_map>

namespace segloss {
namespace tensorflow {

namespace {
std::mutex g_jobs_mutex;
std::unordered_map<int32_t, std::shared_ptr<Job>> g_jobs;
int32_t g_next_job = 1;
}  // namespace

int32_t add_job(std::shared_ptr<Job> job) {
  std::lock_guard<std::mutex> lock(g_jobs_mutex);
  auto after = [](int32_t i) { return i >= INT32_MAX || i <= 0 ? 1 : i + 1; };
  int32_t id = g_next_job;
  while (id <= 0 || g_jobs.count(id)) id = after(id);
  g_next_job = after(id);
  g_jobs.emplace(id, std::move(job));
  return id;
}

std::shared_ptr<Job> find_job(int32_t id) {
  std::lock_guard<std::mutex> lock(g_jobs_mutex);
  auto it = g_jobs.find(id);
  return it == g_jobs.end() ? nullptr : it->second;
}

std::shared_ptr<Job> take_job(int32_t id) {
  std::lock_guard<std::mutex> lock(g_jobs_mutex);
  auto it = g_jobs.find(id);
  if (it == g_jobs.end()) return nullptr;
  std::shared_ptr<Job> job = std::move(it->second);
  g_jobs.erase(it);
  return job;
}

const void* jobs_token() { return &g_jobs; }

}  // namespace tensorflow
}  // namespace segloss
