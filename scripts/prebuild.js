#!/usr/bin/env node
// `npm run prebuild`: the addon that ships in the package, as
// prebuilds/<platform>-<arch>/segloss.napi.<libc>.node, the name whose tags
// node-gyp-build matches at load (napi: any Node with Node-API 8; glibc or
// musl: the C library it was linked against).
//
// It is the cmake-js build without the test hooks (SEGLOSS_TEST_HOOKS=OFF:
// no SIMT emulation, no copy probe), in build-prebuild/ so that a checkout's
// own build/ (with them) stays as it is: the CPU passes for baseline, AVX2
// and AVX-512 picked at load, and the CUDA kernels with the CUDA runtime
// linked statically, so one file serves machines with and without a GPU.
// An existing build-prebuild/ is reused (cmake-js compile only rebuilds what
// changed).
// The copy is stripped of its symbol table, loaded again in a child process
// through node-gyp-build, and described: size, the newest glibc symbol
// version it needs (= the oldest glibc it loads on), its shared libraries.
//
// A prebuild without the CUDA kernels is refused unless SEGLOSS_CUDA=OFF
// asks for a CPU-only one.
'use strict';
const {spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
const cpuOnly = (process.env.SEGLOSS_CUDA || '').toUpperCase() === 'OFF';

function die(message) {
  console.error(`segloss prebuild: ${message}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, {cwd: root, encoding: 'utf8', maxBuffer: 1 << 28, ...options});
  if (r.error) die(`${cmd} could not be run: ${r.error.message}`);
  return r;
}

/** Runs `code` (report() of an addon path expression) in a child process; what it printed, parsed. */
function describeAddon(code) {
  const r = run(process.execPath, ['-e', code], {env: {...process.env, PREBUILDS_ONLY: '1'}});
  if (r.status !== 0) die(`the addon does not load:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

const report = (expr) => `
  const addon = require(${expr});
  const cuda = addon.backends().find((b) => b.name === 'cuda');
  const cpu = addon.backends().find((b) => b.name === 'cpu');
  console.log(JSON.stringify({file: ${expr}, version: addon.version, cuda, isas: cpu.isas, testHooks: addon.testHooks}));`;

// 1. The build (incremental on an existing build-prebuild/).
const built = path.join(root, 'build-prebuild', 'Release', 'segloss.node');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--directory', root, '--out', path.join(root, 'build-prebuild'),
  `--CDSEGLOSS_CUDA=${cpuOnly ? 'OFF' : 'ON'}`, '--CDSEGLOSS_TEST_HOOKS=OFF'];
const b = run(process.execPath, args, {stdio: 'inherit'});
if (b.status !== 0) die('cmake-js failed (see above)');
const info = describeAddon(report(JSON.stringify(built)));
if (info.version !== pkg.version) die(`${built} is version ${info.version}, the package ${pkg.version}`);
if (info.testHooks !== false) die(`${built} carries the test hooks (SEGLOSS_TEST_HOOKS=ON)`);
if (!cpuOnly && !(info.cuda && info.cuda.compiled)) {
  die(`${built} was built without the CUDA kernels (nvcc not found when build/ was configured?). ` +
      'Put nvcc on PATH and remove build-prebuild/ to rebuild with them, or run with SEGLOSS_CUDA=OFF for a CPU-only prebuild.');
}

// 2. The prebuild: copied, stripped, found and loaded by node-gyp-build.
const glibc = process.report.getReport().header.glibcVersionRuntime;
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.rmSync(dir, {recursive: true, force: true});
fs.mkdirSync(dir, {recursive: true});
const file = path.join(dir, `segloss.napi.${glibc ? 'glibc' : 'musl'}.node`);
fs.copyFileSync(built, file);
const s = run('strip', ['--strip-unneeded', file]);
if (s.status !== 0) die(`strip --strip-unneeded failed: ${s.stderr}`);
const resolve = `require(${JSON.stringify(require.resolve('node-gyp-build'))}).resolve(${JSON.stringify(root)})`;
const loaded = describeAddon(report(resolve));
if (loaded.file !== file) die(`node-gyp-build picks ${loaded.file}, not ${file}`);

// 3. What it needs.
const mb = (f) => `${(fs.statSync(f).size / 1e6).toFixed(1)} MB`;
const symbols = run('objdump', ['-T', file]).stdout || '';
/** The newest version of a symbol-version family (GLIBC_, GLIBCXX_) the file needs. */
function newest(prefix) {
  const sortable = (v) => v.split('.').map((n) => n.padStart(4, '0')).join('.');
  return (symbols.match(new RegExp(`\\b${prefix}[0-9.]+`, 'g')) || []).map((v) => v.slice(prefix.length))
    .sort((x, y) => (sortable(x) < sortable(y) ? -1 : 1)).pop() || '?';
}
const needed = ((run('objdump', ['-p', file]).stdout || '').match(/NEEDED\s+\S+/g) || []).map((l) => l.split(/\s+/)[1]);
console.log([
  `segloss prebuild: ${path.relative(root, file)}, ${mb(file)} (${mb(built)} before strip)`,
  `  loads on: ${process.platform}-${process.arch}, ${glibc ? `glibc >= ${newest('GLIBC_')} (built on ${glibc})` : 'musl'}, ` +
    `libstdc++ with GLIBCXX_${newest('GLIBCXX_')}, Node-API ${pkg.binary.napi_versions[0]}+`,
  `  shared libraries: ${needed.join(', ') || '?'}`,
  `  CPU passes: ${loaded.isas.join(', ')} here; CUDA: ${loaded.cuda && loaded.cuda.compiled ? 'compiled' : 'not compiled'}` +
    `${loaded.cuda && !loaded.cuda.available ? ` (unavailable here: ${loaded.cuda.reason})` : ''}; test hooks: none`,
].join('\n'));
