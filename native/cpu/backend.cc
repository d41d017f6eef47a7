// The CPU backend's entry points: the passes of the instruction set chosen
// once at load (cpu/isa.h says why there are several).
#include "backend.h"

#include <cstdlib>
#include <vector>

namespace segloss {
namespace cpu {

namespace baseline {
extern const Passes kPasses;
}
#if defined(SEGLOSS_CPU_HAVE_X86_ISAS)
namespace avx2 {
extern const Passes kPasses;
}
namespace avx512 {
extern const Passes kPasses;
}
#endif

namespace {

struct Candidate {
  const char* name;
  const Passes* passes;
  bool supported;
};

std::vector<Candidate> candidates() {
  std::vector<Candidate> c;
#if defined(SEGLOSS_CPU_HAVE_X86_ISAS)
  __builtin_cpu_init();
  // (libgcc's checks include the OS's support for the AVX / AVX-512 registers)
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  c.push_back({"avx512", &avx512::kPasses, avx512});
  c.push_back({"avx2", &avx2::kPasses, avx2});
#endif
  c.push_back({"baseline", &baseline::kPasses, true});
  return c;
}

IsaChoice choose() {
  IsaChoice out;
  const std::vector<Candidate> all = candidates();
  for (const Candidate& c : all)
    if (c.supported) out.supported += (out.supported.empty() ? "" : ", ") + std::string(c.name);
  const char* env = std::getenv("SEGLOSS_ISA");
  const std::string want = env ? env : "";
  for (const Candidate& c : all) {
    if (!want.empty() && want != c.name) continue;
    if (!c.supported) {
      out.name = c.name;
      out.error = "Expected an instruction set this CPU supports (" + out.supported + ") for SEGLOSS_ISA but received '" +
                  want + "': this CPU lacks " + c.name;
      return out;
    }
    out.name = c.name;
    out.passes = c.passes;
    return out;
  }
  std::string compiled;
  for (const Candidate& c : all) compiled += (compiled.empty() ? "" : ", ") + std::string(c.name);
  out.name = want;
  out.error = "Expected one of " + compiled + " for SEGLOSS_ISA but received '" + want + "'";
  return out;
}

}  // namespace

const IsaChoice& isa() {
  static const IsaChoice chosen = choose();
  return chosen;
}

Status reduce(const Options& o, const Tensors& t, double* stats) {
  const IsaChoice& i = isa();
  if (!i.passes) return Status::Range(i.error);
  return i.passes->reduce(o, t, stats);
}

Status check(const Options& o, const Tensors& t) {
  const IsaChoice& i = isa();
  if (!i.passes) return Status::Range(i.error);
  return i.passes->check(o, t);
}

void gradient(const Options& o, const Tensors& t, const double* coef, float* grad) {
  // (reduce or check ran first and refused an unusable SEGLOSS_ISA)
  const IsaChoice& i = isa();
  (i.passes ? i.passes : &baseline::kPasses)->gradient(o, t, coef, grad);
}

}  // namespace cpu
}  // namespace segloss
