// The jobs of segloss's TensorFlow ops. A pass is a job: the JS kernel
// creates one (options, shape, and for a gradient pass the statistics and
// the upstream scale), runs the op, whose kernel finds the job by the id it
// receives as an input tensor, and ends it. Shared pointers: a kernel (on a
// TensorFlow thread) keeps its job alive even if JS ended it meanwhile.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "../engine.h"

namespace segloss {
namespace tensorflow {

struct Job {
  Request r;  // options and shape; the kernel binds the tensor pointers
  bool gradient = false;
  std::vector<double> stats;  // out of a statistics pass, into a gradient pass
  GradScale gs;
  bool ran = false;  // a segloss kernel took the job (and set status)
  Status status;
};

// Stores a job under a fresh id (1 .. INT32_MAX, then round again, skipping
// ids still in use) and returns the id.
int32_t add_job(std::shared_ptr<Job> job);
// The job of an id, or null.
std::shared_ptr<Job> find_job(int32_t id);
// Removes the job of an id and returns it, or null.
std::shared_ptr<Job> take_job(int32_t id);
// An address unique to this copy of the addon in the process (op names).
const void* jobs_token();

}  // namespace tensorflow
}  // namespace segloss
