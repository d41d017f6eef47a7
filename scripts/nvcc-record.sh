#!/bin/sh
# CUDA compiler launcher (CMakeLists.txt): runs one nvcc command line and
# keeps its diagnostics -- ptxas -v's registers, stack frame and spills of
# every kernel for every architecture -- in DIR/<object file>.txt, where the
# build test (test/cuda_build.test.ts) checks that no kernel has a stack
# frame or spills. Everything else nvcc says still reaches the build output.
#   nvcc-record.sh DIR nvcc ARGS...
dir=$1
shift
obj=nvcc
prev=
for a in "$@"; do
  [ "$prev" = "-o" ] && obj=$a
  prev=$a
done
mkdir -p "$dir"
log="$dir/$(basename "$obj").txt"
"$@" 2> "$log"
rc=$?
grep -v -E '^ptxas info|bytes stack frame|^ *$' "$log" >&2
exit $rc
