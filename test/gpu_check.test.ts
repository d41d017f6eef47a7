/**
 * The native GPU check (bench/gpu/check.cu, what scripts/gpu-check.sh runs
 * on a GPU machine) built over the SIMT emulation, run at its --quick sizes:
 * the CUDA backend against the CPU backend on host and device data, run-to-
 * run bit identity, the bad-input error, and the timing code paths.
 */
import {spawnSync} from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const exe = path.join(__dirname, '..', 'build', 'segloss_gpu_check_emulated');

test('segloss_gpu_check_emulated --quick passes and writes its JSON', () => {
  expect(fs.existsSync(exe)).toBe(true);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segloss-gpu-check-'));
  const json = path.join(dir, 'check.json');
  const r = spawnSync(exe, ['--quick', '--json', json], {encoding: 'utf8', timeout: 300000});
  const text = fs.existsSync(json) ? fs.readFileSync(json, 'utf8') : '';
  fs.rmSync(dir, {recursive: true, force: true});
  expect(r.stdout).toMatch(/backend cuda-emulated/);
  expect(r.stdout).toMatch(/against the CPU backend in [\d.]+ s: 0 mismatches/);
  expect(r.stdout).toMatch(/determinism: two device runs bit-identical/);
  expect(r.stdout).toMatch(/bad input: same error as the CPU: Expected integer class indices/);
  expect(r.stdout).toMatch(/GPU check passed/);
  expect(r.status).toBe(0);
  const out = JSON.parse(text);
  expect(out.mismatches).toBe(0);
  expect(out.cases).toBeGreaterThan(300);
  // 4 losses x (softmax labels and dense probabilities at C = 2, 4, 8, 16,
  // and C = 2 on the class lanes), and Generalized Dice at C = 32 and 64
  expect(out.timings).toHaveLength(4 * (2 * 4 + 2) + 2);
  expect(new Set(out.timings.map((t: {C: number}) => t.C))).toEqual(new Set([2, 4, 8, 16, 32, 64]));
  expect(out.copy_gbs).toBeGreaterThan(0);
}, 320000);
