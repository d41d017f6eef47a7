/**
 * How the addon is linked: the CUDA runtime is static (STYLE.md rule 8), so
 * the addon needs no libcudart and loads on machines without a GPU driver;
 * the backend then reports why CUDA is unavailable (test/threads.test.ts).
 */
import {execFileSync} from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as api from '../lib';
import {addonFile} from '../lib/native';

const addon = addonFile();

(process.platform === 'linux' ? test : test.skip)('ldd: the addon links no CUDA library dynamically', () => {
  expect(fs.existsSync(addon)).toBe(true);
  const deps = execFileSync('ldd', [addon], {encoding: 'utf8'});
  expect(deps).not.toMatch(/libcudart|libcuda\.so|libcublas|libnvrtc/);
  expect(deps).toMatch(/libc\.so/);
});

test('a CUDA build carries the kernels; the addon loaded all the same', () => {
  const cuda = api.backends().find((b) => b.name === 'cuda')!;
  if (!cuda.compiled) {
    // built without nvcc: allowed, except where the build was meant to have CUDA
    expect(process.env.SEGLOSS_EXPECT_CUDA_COMPILED).not.toBe('1');
    return;
  }
  const bytes = fs.readFileSync(addon);
  // the fat binary's kernels (mangled names of segloss::cuda::reduce_kernel)
  expect(bytes.includes(Buffer.from('_ZN7segloss4cuda13reduce_kernel'))).toBe(true);
});

/**
 * ptxas -v's record of every kernel the build compiled, for every GPU
 * architecture (build/ptxas/, written by scripts/nvcc-record.sh): a stack
 * frame or a spill means per-voxel or per-class arrays indexed at run time
 * went to local memory, which made the old C >= 3 kernels stall on it
 * (docs: the H200 profile). Local memory is visible at compile time, so the
 * build test rejects it without a GPU.
 */
interface KernelUse { name: string; arch: string; registers: number; stack: number; spillStores: number; spillLoads: number }

function parsePtxas(text: string): KernelUse[] {
  const out: KernelUse[] = [];
  let cur: KernelUse | undefined;
  for (const line of text.split('\n')) {
    const entry = /Compiling entry function '([^']+)' for '([^']+)'/.exec(line);
    if (entry) {
      cur = {name: entry[1], arch: entry[2], registers: -1, stack: -1, spillStores: -1, spillLoads: -1};
      out.push(cur);
      continue;
    }
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (frame && cur) [cur.stack, cur.spillStores, cur.spillLoads] = frame.slice(1).map(Number);
    const regs = /Used (\d+) registers/.exec(line);
    if (regs && cur) cur.registers = Number(regs[1]);
  }
  return out;
}

test('parsePtxas reads what ptxas -v prints, stack frames and spills included', () => {
  const sample = [
    "ptxas info    : Compiling entry function '_ZN7segloss4cuda1kE' for 'sm_90'",
    'ptxas info    : Function properties for _ZN7segloss4cuda1kE',
    '    64 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads',
    'ptxas info    : Used 80 registers, used 1 barriers, 64 bytes cumulative stack size, 512 bytes smem',
  ].join('\n');
  expect(parsePtxas(sample)).toEqual([{name: '_ZN7segloss4cuda1kE', arch: 'sm_90', registers: 80, stack: 64,
                                       spillStores: 8, spillLoads: 4}]);
});

test('ptxas: no CUDA kernel has a stack frame or spills, on any architecture', () => {
  const cuda = api.backends().find((b) => b.name === 'cuda')!;
  if (!cuda.compiled) return;  // built without nvcc (the test above says whether that was allowed)
  const dir = path.join(path.dirname(addon), '..', 'ptxas');
  expect(fs.existsSync(dir)).toBe(true);
  const kernels = fs.readdirSync(dir).filter((f) => f.endsWith('.txt'))
    .flatMap((f) => parsePtxas(fs.readFileSync(path.join(dir, f), 'utf8')));
  // four losses x (the one- and two-channel kernels, 5 target kinds, and the
  // class-lane kernels, 5 lane shapes x sparse / dense) x reduce / gradient,
  // plus the combine kernel, on every architecture
  const archs = [...new Set(kernels.map((k) => k.arch))];
  expect(archs.length).toBeGreaterThanOrEqual(1);
  for (const arch of archs) expect(kernels.filter((k) => k.arch === arch).length).toBe(4 * (2 * 5 + 5 * 2) * 2 + 1);
  const bad = kernels.filter((k) => k.stack !== 0 || k.spillStores !== 0 || k.spillLoads !== 0);
  expect(bad.map((k) => `${k.arch} ${k.name}: ${k.stack} B stack, ${k.spillStores} B spill stores`)).toEqual([]);
  expect(kernels.every((k) => k.registers > 0)).toBe(true);
});
