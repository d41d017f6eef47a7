// The fixed chunk grid every backend reduces over. A call's B samples of V
// voxels are cut into chunks of kChunk voxels that never span two samples;
// each chunk's sums go to their own float64 slot, and the slots are combined
// in chunk order. The grid depends on the input's shape alone, never on the
// thread count, block count or staging piece, so a backend's results are
// bit-identical however it schedules the chunks.
//
// The chunk size is the backend's: 16384 voxels on the CPU (cpu/backend.h:
// one task of the thread pool), 8192 on CUDA (cuda/kernels.cuh: one thread
// block, 256 threads x 4 voxels x 8 steps).
#pragma once

#include <cstdint>

#include "hd.h"

namespace segloss {

template <int64_t kChunk>
struct ChunkGrid {
  int64_t V = 0;           // voxels per sample
  int64_t per_sample = 0;  // chunks per sample

  ChunkGrid() = default;
  SEGLOSS_HD explicit ChunkGrid(int64_t voxels) : V(voxels), per_sample((voxels + kChunk - 1) / kChunk) {}

  struct Range {
    int64_t sample, begin, end;
  };
  // Chunk i's sample and voxels [begin, end), with one division.
  SEGLOSS_HD Range range(int64_t i) const {
    Range r;
    r.sample = i / per_sample;
    r.begin = r.sample * V + (i % per_sample) * kChunk;
    const int64_t limit = (r.sample + 1) * V;
    r.end = r.begin + kChunk < limit ? r.begin + kChunk : limit;
    return r;
  }

  // Chunks of B samples.
  SEGLOSS_HD int64_t count(int64_t B) const { return B * per_sample; }
  SEGLOSS_HD int64_t sample(int64_t i) const { return i / per_sample; }
  // Voxels [begin(i), end(i)) of the call (voxel v of sample b is b V + v).
  SEGLOSS_HD int64_t begin(int64_t i) const { return sample(i) * V + (i % per_sample) * kChunk; }
  SEGLOSS_HD int64_t end(int64_t i) const {
    const int64_t e = begin(i) + kChunk, limit = (sample(i) + 1) * V;
    return e < limit ? e : limit;
  }
};

}  // namespace segloss
