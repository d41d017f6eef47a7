/**
 * The CPU passes are compiled once per instruction set and one is picked at
 * load (native/cpu/isa.h). Here: what backends() reports, SEGLOSS_ISA in a
 * child process (every set this CPU has gives the reference's loss and
 * gradient within the contract's tolerances; a name that is not a set is
 * refused with the reason), and, from the object files, that no AVX code
 * sits where another set's unit could pick it up.
 *
 * The whole kernel matrix runs under every set in CI: scripts/test-isas.js.
 */
import {spawnSync} from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as api from '../lib';
import {addonFile} from '../lib/native';

const cpu = () => api.backends().find((b) => b.name === 'cpu')!;

test('backends() names the instruction set the CPU passes run on', () => {
  const b = cpu();
  expect(b.isas).toContain('baseline');
  expect(b.isas).toContain(b.isa);
  // the best one by default, else the one asked for (scripts/test-isas.js)
  expect(b.isa).toBe(process.env.SEGLOSS_ISA || b.isas![0]);
  if (process.arch === 'x64') expect(['avx512', 'avx2', 'baseline']).toEqual(expect.arrayContaining(b.isas!));
});

// A 2 x 9 x 10 x 11 x 8 softmax volume (the row loops and the vector exp run)
// and a binary map, in a child process under SEGLOSS_ISA; prints loss and
// gradient as JSON.
const script = `
const api = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'lib'))});
const {reference} = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'lib', 'reference'))});
const out = {isa: api.backends().find((b) => b.name === 'cpu').isa, rows: []};
let s = 7;
const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
for (const [shape, activation, loss] of [[[2, 9, 10, 11, 8], 'softmax', 'weightedCrossEntropy'],
                                         [[2, 9, 10, 11, 8], 'none', 'generalizedDice'],
                                         [[1, 40, 30, 1], 'sigmoid', 'dice']]) {
  const C = shape[shape.length - 1], n = shape.reduce((a, b) => a * b, 1);
  const prediction = new Float32Array(n);
  for (let v = 0; v < n / C; v++) {
    let t = 0;
    for (let c = 0; c < C; c++) { prediction[v * C + c] = activation === 'none' ? 0.05 + rand() : 6 * rand() - 3; t += prediction[v * C + c]; }
    if (activation === 'none' && C > 1) for (let c = 0; c < C; c++) prediction[v * C + c] /= t;
    else if (activation === 'none') prediction[v] = Math.min(prediction[v], 1);
  }
  const target = new Uint8Array(n / C).map(() => Math.floor(rand() * Math.max(C, 2)));
  const args = {prediction, target, shape, activation};
  try {
    const got = api[loss](args), want = reference(loss, args);
    let d = 0, w = 0;
    for (let i = 0; i < n; i++) { d += (got.gradient[i] - want.gradient[i]) ** 2; w += want.gradient[i] ** 2; }
    out.rows.push({loss, value: got.loss, lossRel: Math.abs(got.loss - want.loss) / Math.abs(want.loss), gradRelL2: Math.sqrt(d / w)});
  } catch (e) {
    out.error = e.constructor.name + ': ' + e.message;
    break;
  }
}
console.log(JSON.stringify(out));
`;

function runUnder(isa: string) {
  const r = spawnSync(process.execPath, ['-e', script], {encoding: 'utf8', env: {...process.env, SEGLOSS_ISA: isa}});
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

const distBuilt = fs.existsSync(path.join(__dirname, '..', 'dist', 'lib', 'index.js'));
(distBuilt ? test : test.skip)('SEGLOSS_ISA: every set this CPU has matches the float64 reference', () => {
  for (const isa of cpu().isas!) {
    const out = runUnder(isa);
    expect(out.error).toBeUndefined();
    expect(out.isa).toBe(isa);
    expect(out.rows).toHaveLength(3);
    for (const row of out.rows) {
      expect(row.lossRel).toBeLessThan(1e-6);
      expect(row.gradRelL2).toBeLessThan(1e-6);
    }
  }
});

// The vector sets' own exp (cpu/simd_math.h: a table of 2^(j/16) with
// AVX-512, a longer polynomial with AVX2) against baseline's scalar passes,
// which call libm's: both within 2 ulp, summed in float64 in other orders,
// so the losses agree far inside the contract (a float32 exp would move them
// by ~1e-8 here).
(distBuilt ? test : test.skip)('SEGLOSS_ISA: every set gives baseline\'s losses to 1e-12 (float64 exp)', () => {
  const base = runUnder('baseline');
  for (const isa of cpu().isas!.filter((i) => i !== 'baseline')) {
    const out = runUnder(isa);
    out.rows.forEach((row: {value: number}, i: number) => {
      expect(Math.abs(row.value - base.rows[i].value) / Math.abs(base.rows[i].value)).toBeLessThan(1e-12);
    });
  }
});

(distBuilt ? test : test.skip)('SEGLOSS_ISA: a name that is not an instruction set is refused with the reason', () => {
  const out = runUnder('sse9');
  expect(out.error).toBe("RangeError: Expected one of " + (process.arch === 'x64' ? 'avx512, avx2, baseline' : 'baseline') +
                         " for SEGLOSS_ISA but received 'sse9'");
});

/**
 * The AVX2 and AVX-512 units compile their code under `#pragma GCC target`
 * after the standard headers, so the inline functions and template instances
 * the linker merges across units stay baseline. Checked on the objects: a
 * vector-register instruction in a function outside the unit's own
 * namespaces (cpu::<isa>, vm's host_<isa>) would be one a baseline CPU could
 * reach through a merged copy. The baseline unit has none at all.
 */
const objects = path.join(path.dirname(addonFile()), '..', 'CMakeFiles');
const objdump = spawnSync('objdump', ['--version']).status === 0;
(objdump && fs.existsSync(path.join(objects, 'segloss_cpu_baseline.dir')) ? test : test.skip)(
  'objdump: AVX code only inside each instruction set\'s own namespaces', () => {
    const isas = fs.readdirSync(objects).map((d) => /^segloss_cpu_(\w+)\.dir$/.exec(d)?.[1]).filter(Boolean) as string[];
    expect(isas).toContain('baseline');
    const leaks: string[] = [];
    let vectorFunctions = 0;
    for (const isa of isas) {
      const dir = path.join(objects, `segloss_cpu_${isa}.dir`, 'native', 'cpu');
      for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.o'))) {
        const asm = spawnSync('objdump', ['-d', '-C', '--no-show-raw-insn', path.join(dir, f)],
                              {encoding: 'utf8', maxBuffer: 1 << 30}).stdout;
        let fn = '';
        const seen = new Set<string>();
        for (const line of asm.split('\n')) {
          const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
          if (head) { fn = head[1]; continue; }
          if (!/%[yz]mm|%k[0-7]\b|\bvfmadd/.test(line) || seen.has(fn)) continue;
          seen.add(fn);
          vectorFunctions++;
          const own = isa !== 'baseline' && (fn.includes(`::${isa}::`) || fn.includes(`host_${isa}`));
          if (!own) leaks.push(`${isa}/${f}: ${fn}`);
        }
      }
    }
    expect(leaks).toEqual([]);
    if (isas.includes('avx2')) expect(vectorFunctions).toBeGreaterThan(10);
  });
