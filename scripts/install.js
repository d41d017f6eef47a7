#!/usr/bin/env node
// The install script. The package ships a prebuilt addon for linux-x64 with
// glibc (prebuilds/linux-x64/segloss.napi.glibc.node, made by
// scripts/prebuild.js); it is test-loaded in a child process, so that a
// crash or a missing glibc symbol cannot take npm down, and when it loads
// nothing is compiled. Otherwise segloss.node is built from source with
// cmake-js, after checking for the tools the build needs so that a missing
// one is named with how to install it.
//
// npm_config_build_from_source=true (`npm install --build-from-source`) or
// SEGLOSS_BUILD_FROM_SOURCE=1 builds from source even where the prebuild
// loads, and so does a git checkout. SEGLOSS_SKIP_BUILD=1 does neither (e.g. to build later by hand).
// The build is the same on every machine: the CPU passes are compiled for
// each instruction set and the best one the CPU has is picked at load.
// SEGLOSS_TEST_HOOKS=1|0: the test hooks (the SIMT emulation of the CUDA
// kernels, the benchmark's copy probe; CMakeLists.txt), built by default in
// a source checkout (where the tests and the benchmark live) and nowhere else.
// SEGLOSS_CUDA=AUTO|ON|OFF: the CUDA kernels, built when nvcc is found (AUTO,
// the default), required (ON) or left out (OFF); SEGLOSS_CUDA_ARCHITECTURES
// overrides the GPU architectures (default sm_75..sm_90 + compute_90 PTX).
'use strict';
const {spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const {version} = require(path.join(root, 'package.json'));

function works(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, {stdio: 'ignore'});
  return !r.error && r.status === 0;
}

function fail(lines) {
  console.error(['', 'segloss: cannot build the native addon.', ...lines, ''].join('\n'));
  process.exit(1);
}

/**
 * Loads the prebuild (only: PREBUILDS_ONLY makes node-gyp-build skip build/)
 * in a child process. Returns {file} when it loads and is this version's,
 * else {why}.
 */
function testPrebuild() {
  const probe = `
    try {
      const file = require(${JSON.stringify(require.resolve('node-gyp-build'))}).resolve(${JSON.stringify(root)});
      const addon = require(file);
      if (addon.version !== ${JSON.stringify(version)}) throw new Error(file + ' is version ' + addon.version);
      process.stdout.write(file);
    } catch (e) {
      process.stderr.write(e.message.trim().split('\\n')[0]);
      process.exit(1);
    }`;
  const r = spawnSync(process.execPath, ['-e', probe], {cwd: root, encoding: 'utf8',
                                                       env: {...process.env, PREBUILDS_ONLY: '1'}});
  if (r.status === 0) return {file: r.stdout};
  return {why: r.stderr.trim() || `the test load ended with ${r.signal || `exit code ${r.status}`}`};
}

if (process.env.SEGLOSS_SKIP_BUILD === '1') {
  console.log('segloss: SEGLOSS_SKIP_BUILD=1, not building the native addon (run `npm run build:native` later).');
  process.exit(0);
}

// (A git checkout builds too: there `npm install` should build the sources
// as edited, even after `npm run prebuild` left a prebuild beside them.)
const forced = process.env.npm_config_build_from_source === 'true' ? '--build-from-source'
  : process.env.SEGLOSS_BUILD_FROM_SOURCE === '1' ? 'SEGLOSS_BUILD_FROM_SOURCE=1'
  : fs.existsSync(path.join(root, '.git')) ? 'a git checkout' : '';
let prebuildNote = '';
if (forced) {
  console.log(`segloss: ${forced}, building the native addon from source.`);
} else {
  const prebuild = testPrebuild();
  if (prebuild.file) {
    console.log(`segloss: using the prebuilt addon ${path.relative(root, prebuild.file)}.`);
    process.exit(0);
  }
  prebuildNote = `No prebuilt addon loads here (${prebuild.why}), so it is built from source.`;
  console.log(`segloss: ${prebuildNote}`);
}

if (!works('cmake')) {
  fail([prebuildNote,
        'cmake (>= 3.18) was not found on PATH. Install it, then run `npm rebuild segloss`:',
        '  Debian/Ubuntu: apt-get install cmake     anywhere with Python: pip install cmake'].filter(Boolean));
}
// (GCC on Linux is what the build supports: CMakeLists.txt says why)
const compilers = [process.env.CXX, 'g++'].filter(Boolean);
if (!compilers.some((c) => works(c))) {
  fail([prebuildNote,
        'g++ (C++17) was not found (tried ' + compilers.join(', ') + '). Install it, then run `npm rebuild segloss`:',
        '  Debian/Ubuntu: apt-get install g++'].filter(Boolean));
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
const hooks = process.env.SEGLOSS_TEST_HOOKS !== undefined ? process.env.SEGLOSS_TEST_HOOKS === '1'
  : fs.existsSync(path.join(root, 'test'));
args.push(`--CDSEGLOSS_TEST_HOOKS=${hooks ? 'ON' : 'OFF'}`);
if (process.env.SEGLOSS_CUDA_ARCHITECTURES) args.push(`--CDSEGLOSS_CUDA_ARCHITECTURES=${process.env.SEGLOSS_CUDA_ARCHITECTURES}`);
const r = spawnSync(process.execPath, args, {stdio: 'inherit', cwd: root});
if (r.status !== 0) {
  fail(['cmake-js failed (see its output above). The usual causes: a compiler without C++17 support,',
        'or cmake older than 3.18 (`cmake --version`).']);
}
