#!/usr/bin/env bash
# segloss GPU check, for a machine with an NVIDIA GPU, nvcc, cmake and Python
# with PyTorch (Node is not needed). In one run, about 8 minutes on an H200:
#   1. builds bench/gpu/check.cu with the CUDA kernels for sm_90
#      (SEGLOSS_CUDA_ARCHITECTURES=... to change);
#   2. runs it: CUDA against the CPU kernels on random inputs of many shapes
#      and class counts up to 64, at the edges (logits +-80, a one-voxel
#      class), host and device data, a volume above 2^31 elements;
#      run-to-run bit identity; bad-input errors; loss + gradient of the four
#      losses at 512^3 x {2, 4, 8, 16} classes (softmax logits with uint8
#      labels, probabilities with dense one-hot targets) on device-resident
#      data, as GB/s against a device-to-device copy measured in the same run;
#      the host-data crossover against the CPU backend;
#   3. times the same Generalized Dice loss + gradient in PyTorch eager and
#      torch.compile (scripts/gpu_peers.py) and prints one table;
#   4. profiles one run of each timed kernel shape with ncu (PROFILE=0 skips).
#
#   scripts/gpu-check.sh [OUTDIR]       (default: $OUT, else ./gpu-check-out)
#   scripts/gpu-check.sh --emulated     the same program over the SIMT
#                                       emulation, small sizes, no GPU needed
#   scripts/gpu-check.sh --emulated --asan   ... built with AddressSanitizer
#                                       (emulated device memory is allocated
#                                       to the byte, so any out-of-bounds
#                                       access of a kernel is reported)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=gpu
ASAN=0
if [[ "${1:-}" == "--emulated" ]]; then MODE=emulated; shift; fi
if [[ $MODE == emulated && "${1:-}" == "--asan" ]]; then ASAN=1; shift; fi
OUTDIR=${1:-${OUT:-gpu-check-out}}
mkdir -p "$OUTDIR"
JOBS=$(nproc 2>/dev/null || echo 4)
start=$(date +%s)

if [[ $MODE == emulated ]]; then
  dir=build-gpu-emulated
  flags=()
  if [[ $ASAN == 1 ]]; then
    dir=build-gpu-emulated-asan
    flags=("-DCMAKE_CXX_FLAGS=-fsanitize=address -fno-omit-frame-pointer" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address")
  fi
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSEGLOSS_CUDA=OFF -DSEGLOSS_TEST_HOOKS=ON "${flags[@]}" > "$OUTDIR/configure.log" 2>&1 \
    || { tail -30 "$OUTDIR/configure.log"; exit 1; }
  cmake --build "$dir" --target segloss_gpu_check_emulated -j "$JOBS" > "$OUTDIR/build.log" 2>&1 \
    || { grep -E "error|Error" "$OUTDIR/build.log" | head -30; exit 1; }
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 "./$dir/segloss_gpu_check_emulated" --quick --json "$OUTDIR/check.json" \
    | tee "$OUTDIR/check.txt"
  echo "== emulated GPU check done in $(( $(date +%s) - start )) s"
  exit 0
fi

echo "== $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not found')"
echo "== $(nvcc --version | tail -1); $(cmake --version | head -1)"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSEGLOSS_CUDA=ON \
  -DSEGLOSS_CUDA_ARCHITECTURES="${SEGLOSS_CUDA_ARCHITECTURES:-90}" > "$OUTDIR/configure.log" 2>&1 \
  || { tail -30 "$OUTDIR/configure.log"; exit 1; }
cmake --build build-gpu --target segloss_gpu_check -j "$JOBS" > "$OUTDIR/build.log" 2>&1 \
  || { grep -E "error|Error" "$OUTDIR/build.log" | head -30; exit 1; }
# ptxas -v of every kernel (scripts/nvcc-record.sh), one file
cat build-gpu/ptxas/*.txt > "$OUTDIR/ptxas.txt" 2>/dev/null || true
echo "== built in $(( $(date +%s) - start )) s; kernels with a stack frame or spills: " \
  "$(grep -cE '[1-9][0-9]* bytes (stack frame|spill)' "$OUTDIR/ptxas.txt" 2>/dev/null || true)"

status=0
# (timeouts: one stage that hangs must not take the rest of the run with it)
# CHECK_FLAGS: e.g. "--quick-cases --no-huge --no-crossover" for a timing run
timeout "${CHECK_TIMEOUT:-400}" ./build-gpu/segloss_gpu_check ${CHECK_FLAGS:-} --json "$OUTDIR/check.json" \
  | tee "$OUTDIR/check.txt" \
  || status=$?
echo "== check done at $(( $(date +%s) - start )) s (exit $status)"

if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  timeout "${PEERS_TIMEOUT:-240}" python3 scripts/gpu_peers.py --check-json "$OUTDIR/check.json" \
    --json "$OUTDIR/peers.json" | tee "$OUTDIR/peers.txt" || status=1
else
  echo "== PyTorch with CUDA not available: peers skipped"
fi
echo "== peers done at $(( $(date +%s) - start )) s"

# The kernels' hardware counters (--profile: one run of each timed kernel
# shape, Generalized Dice): throughput against the roofs, occupancy, where
# warps stall. Clocks left as they are.
if [[ "${PROFILE:-1}" == 1 ]] && command -v ncu > /dev/null; then
  # NCU_FILTER / NCU_COUNT: which kernels (regex) and how many launches
  timeout "${NCU_TIMEOUT:-180}" ncu --clock-control none -k regex:"${NCU_FILTER:-reduce_kernel|gradient_kernel}" \
    -c "${NCU_COUNT:-100}" \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
    --section ComputeWorkloadAnalysis --section WarpStateStats --section InstructionStats \
    ./build-gpu/segloss_gpu_check --profile > "$OUTDIR/ncu-profile.txt" 2>&1 || echo "== ncu exit $?"
  grep -E '^  [a-z].*_kernel|Duration|DRAM Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per' \
    "$OUTDIR/ncu-profile.txt" | head -150 || true
else
  echo "== ncu skipped"
fi
echo "== total $(( $(date +%s) - start )) s; results in $OUTDIR"
exit $status
