#!/usr/bin/env node
// Builds segloss.node at install time with cmake-js, after checking for the
// tools it needs so that a missing one is named with how to install it.
// SEGLOSS_SKIP_BUILD=1 skips the build (e.g. to build later by hand). The
// build is the same on every machine: the CPU passes are compiled for each
// instruction set and the best one the CPU has is picked at load.
// SEGLOSS_CUDA=AUTO|ON|OFF: the CUDA kernels, built when nvcc is found (AUTO,
// the default), required (ON) or left out (OFF); SEGLOSS_CUDA_ARCHITECTURES
// overrides the GPU architectures (default sm_75..sm_90 + compute_90 PTX).
'use strict';
const {spawnSync} = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');

function works(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, {stdio: 'ignore'});
  return !r.error && r.status === 0;
}

function fail(lines) {
  console.error(['', 'segloss: cannot build the native addon.', ...lines, ''].join('\n'));
  process.exit(1);
}

if (process.env.SEGLOSS_SKIP_BUILD === '1') {
  console.log('segloss: SEGLOSS_SKIP_BUILD=1, not building the native addon (run `npm run build:native` later).');
  process.exit(0);
}

if (!works('cmake')) {
  fail(['cmake (>= 3.18) was not found on PATH. Install it, then run `npm rebuild segloss`:',
        '  Debian/Ubuntu: apt-get install cmake     anywhere with Python: pip install cmake']);
}
// (GCC on Linux is what the build supports: CMakeLists.txt says why)
const compilers = [process.env.CXX, 'g++'].filter(Boolean);
if (!compilers.some((c) => works(c))) {
  fail(['g++ (C++17) was not found (tried ' + compilers.join(', ') + '). Install it, then run `npm rebuild segloss`:',
        '  Debian/Ubuntu: apt-get install g++']);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--directory', root];
const cudaMode = (process.env.SEGLOSS_CUDA || '').toUpperCase();
if (cudaMode) {
  if (!['AUTO', 'ON', 'OFF'].includes(cudaMode)) {
    fail([`Expected AUTO, ON or OFF for SEGLOSS_CUDA but received ${JSON.stringify(process.env.SEGLOSS_CUDA)}`]);
  }
  args.push(`--CDSEGLOSS_CUDA=${cudaMode}`);
}
if (process.env.SEGLOSS_CUDA_ARCHITECTURES) args.push(`--CDSEGLOSS_CUDA_ARCHITECTURES=${process.env.SEGLOSS_CUDA_ARCHITECTURES}`);
const r = spawnSync(process.execPath, args, {stdio: 'inherit', cwd: root});
if (r.status !== 0) {
  fail(['cmake-js failed (see its output above). The usual causes: a compiler without C++17 support,',
        'or cmake older than 3.18 (`cmake --version`).']);
}
