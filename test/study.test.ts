/**
 * The `segloss study` command (study/): the synthetic generator's foreground
 * fraction, patch sampling, the dilated convolution of the 3D network, CLI
 * argument errors, NIfTI reading, and a tiny study run end to end with every
 * output written and a rerun that resumes.
 *
 * Backend: tfjs-node ('tensorflow') when it loads, else @tensorflow/tfjs 'cpu'
 * (study/tf.ts; the run prints which).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';

import {mulberry32} from '../lib/reference/random';
import {main, parseArgs} from '../study/cli';
import {lossLabel, PATCH_KEYS, presetLabel, PRESETS, TABLE1_SHARE} from '../study/presets';
import type {LossKey} from '../study/presets';
import type {Preset} from '../study/presets';
import {codeVersion, lossOptions, MAX_SEED, medianShare, runStudy, syntheticData, volumeSeed} from '../study/run';
import {batchNorm5d, buildNet, dilatedConv3d, NET_DIMS, upsample3d} from '../study/nets';
import {findCases, loadCase, readNifti} from '../study/nifti';
import {formatDuration, Progress} from '../study/progress';
import {foregroundFraction, foregroundIndex, samplePatch, synthVolume} from '../study/synth';
import {loadTf} from '../study/tf';

const loaded = loadTf();
const {tf, note} = loaded;

function tmpDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `segloss-${name}-`));
}

/** Captures stdout / stderr writes of an async call. */
async function quiet<T>(fn: () => Promise<T>): Promise<{value: T; out: string; err: string}> {
  const out: string[] = [];
  const err: string[] = [];
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const value = await fn();
    return {value, out: out.join(''), err: err.join('')};
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('synthetic generator', () => {
  // The generator trims the last lesion to hit max(1, round(f * V)) voxels exactly,
  // so the tolerance is the rounding of the request: |fraction - f| <= 0.5 / V.
  const fractions = [0.3, 0.1, 0.01, 0.001, 0.0002];
  const cases: [string, number[]][] = [['2D', [128, 128]], ['3D', [48, 48, 48]]];
  for (const [name, dims] of cases) {
    for (const f of fractions) {
      it(`${name} ${dims.join('x')}: foreground fraction ${f * 100}% within 0.5 voxel of the request`, () => {
        const V = dims.reduce((a, b) => a * b, 1);
        const vol = synthVolume({dims, foregroundFraction: f, seed: 7 + Math.round(f * 1e4)});
        const got = foregroundFraction(vol.label);
        expect(vol.foreground).toBe(Math.max(1, Math.round(f * V)));
        expect(Math.abs(got - f)).toBeLessThanOrEqual(0.5 / V);
        expect(vol.image.length).toBe(V * 3);
        // z-scored channels; lesions brighter than the rest on FLAIR (channel 2), darker on T1 (channel 0)
        for (let ch = 0; ch < 3; ch++) {
          let s = 0, s2 = 0, fg = 0, bg = 0;
          for (let v = 0; v < V; v++) {
            const x = vol.image[v * 3 + ch];
            s += x;
            s2 += x * x;
            if (vol.label[v]) fg += x;
            else bg += x;
          }
          expect(Math.abs(s / V)).toBeLessThan(1e-3);
          expect(Math.abs(s2 / V - 1)).toBeLessThan(1e-3);
          const contrast = fg / vol.foreground - bg / (V - vol.foreground);
          if (ch === 2) expect(contrast).toBeGreaterThan(0.5);
          if (ch === 0) expect(contrast).toBeLessThan(-0.3);
        }
      });
    }
  }

  it('is deterministic per seed and differs across seeds', () => {
    const a = synthVolume({dims: [24, 24, 24], foregroundFraction: 0.01, seed: 3});
    const b = synthVolume({dims: [24, 24, 24], foregroundFraction: 0.01, seed: 3});
    const c = synthVolume({dims: [24, 24, 24], foregroundFraction: 0.01, seed: 4});
    expect(Buffer.compare(Buffer.from(a.image.buffer), Buffer.from(b.image.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(a.label), Buffer.from(b.label))).toBe(0);
    expect(Buffer.compare(Buffer.from(a.label), Buffer.from(c.label))).not.toBe(0);
  });

  it('every sampled patch holds at least one foreground voxel, even at 0.02% (3D)', () => {
    const vol = synthVolume({dims: [48, 48, 48], foregroundFraction: 0.0002, seed: 11});
    const idx = foregroundIndex(vol.label);
    const rand = mulberry32(5);
    for (let i = 0; i < 300; i++) {
      const p = samplePatch(vol, idx, [8, 8, 8], rand);
      expect(p.foreground).toBeGreaterThanOrEqual(1);
      expect(p.label.length).toBe(512);
    }
  });

  it('rejects fractions outside (0, 0.5]', () => {
    expect(() => synthVolume({dims: [8, 8], foregroundFraction: 0, seed: 1}))
      .toThrow('Expected a number in (0, 0.5] for foregroundFraction but received 0');
  });
});

describe('HighResNet dilated convolution', () => {
  // space-to-batch + undilated conv must equal a direct dilated convolution with zero padding
  for (const rate of [2, 4]) {
    it(`rate ${rate} equals a direct dilated 3^3 convolution`, async () => {
      const [D, H, W, C, F] = [8, 4, 8, 2, 3];
      const layer = dilatedConv3d(tf, {filters: F, rate, seed: 9});
      const rand = mulberry32(rate);
      const x = Float32Array.from({length: D * H * W * C}, () => rand() * 2 - 1);
      const y = (layer.apply(tf.tensor(x, [1, D, H, W, C])) as import('@tensorflow/tfjs').Tensor);
      const got = await y.data();
      const k = await layer.getWeights()[0].data();   // [3, 3, 3, C, F]
      let maxErr = 0;
      for (let z = 0; z < D; z++) for (let yy = 0; yy < H; yy++) for (let xx = 0; xx < W; xx++) for (let f = 0; f < F; f++) {
        let s = 0;
        for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) for (let c = 0; c < 3; c++) {
          const [zi, yi, xi] = [z + (a - 1) * rate, yy + (b - 1) * rate, xx + (c - 1) * rate];
          if (zi < 0 || zi >= D || yi < 0 || yi >= H || xi < 0 || xi >= W) continue;
          for (let ch = 0; ch < C; ch++) {
            s += x[((zi * H + yi) * W + xi) * C + ch] * k[(((a * 3 + b) * 3 + c) * C + ch) * F + f];
          }
        }
        maxErr = Math.max(maxErr, Math.abs(s - got[((z * H + yy) * W + xx) * F + f]));
      }
      expect(maxErr).toBeLessThan(1e-5);
      y.dispose();
    });
  }
});

describe('HighResNet batch norm and blocks', () => {
  it('batch norm on 5D tensors: batch moments in training, running moments (momentum 0.9) at inference', async () => {
    const layer = batchNorm5d(tf);
    const rand = mulberry32(4);
    const x = tf.tensor(Float32Array.from({length: 2 * 4 * 4 * 4 * 3}, (_, i) => 3 * rand() + (i % 3)), [2, 4, 4, 4, 3]);
    const {mean, variance} = tf.moments(x, [0, 1, 2, 3]);
    const y = layer.apply(x, {training: true}) as import('@tensorflow/tfjs').Tensor;
    const m = tf.moments(y, [0, 1, 2, 3]);
    for (const v of await m.mean.data()) expect(Math.abs(v)).toBeLessThan(1e-5);
    for (const v of await m.variance.data()) expect(v).toBeCloseTo(1, 2);          // epsilon 1e-3 against a variance near 0.75
    const [, , movingMean, movingVar] = layer.getWeights();
    const bm = await mean.data(), bv = await variance.data();
    (await movingMean.data()).forEach((v, c) => expect(v).toBeCloseTo(0.1 * bm[c], 5));
    (await movingVar.data()).forEach((v, c) => expect(v).toBeCloseTo(0.9 + 0.1 * bv[c], 5));
    const z = await (layer.apply(x) as import('@tensorflow/tfjs').Tensor).data();   // inference: the running moments
    const xs = await x.data();
    const mm = await movingMean.data(), mv = await movingVar.data();
    for (let i = 0; i < 12; i++) expect(z[i]).toBeCloseTo((xs[i] - mm[i % 3]) / Math.sqrt(mv[i % 3] + 1e-3), 4);
  });

  it('the quick layout (1 block per stage, constant width) and the published one (3 blocks, doubling) build and keep the input size', () => {
    const quick = buildNet(tf, 'highresnet3d', {channels: 3, width: 4, blocks: 1, constantWidth: true, seed: 1});
    const published = buildNet(tf, 'highresnet3d', {channels: 3, width: 4, blocks: 3, seed: 1});
    const x = tf.zeros([1, 8, 8, 8, 3]);
    for (const m of [quick, published]) expect((m.predict(x) as import('@tensorflow/tfjs').Tensor).shape).toEqual([1, 8, 8, 8, 1]);
    const convs = (m: import('@tensorflow/tfjs').LayersModel) => m.layers.filter((l) => l.getClassName() === 'SeglossDilatedConv3D').length;
    const norms = (m: import('@tensorflow/tfjs').LayersModel) => m.layers.filter((l) => l.getClassName() === 'SeglossBatchNorm5D').length;
    expect([convs(quick), norms(quick)]).toEqual([1 + 3 * 2, 3 * 2 + 1]);
    expect([convs(published), norms(published)]).toEqual([1 + 9 * 2, 9 * 2 + 1]);
    expect(published.countParams()).toBeGreaterThan(10 * quick.countParams());    // widths 4 / 8 / 16 against 4 throughout
  });

  it('trainOnBatch runs batch norm in training mode (its running mean moves)', async () => {
    const m = buildNet(tf, 'highresnet3d', {channels: 3, width: 4, blocks: 1, constantWidth: true, seed: 1});
    m.compile({optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError'});
    const bn = m.layers.find((l) => l.getClassName() === 'SeglossBatchNorm5D')!;
    await m.trainOnBatch(tf.randomNormal([2, 8, 8, 8, 3], 2, 1, 'float32', 3), tf.zeros([2, 8, 8, 8, 1]));
    expect(Math.max(...Array.from(await bn.getWeights()[2].data(), Math.abs))).toBeGreaterThan(0.01);
    m.dispose();
  });
});

describe('TwoPathCNN and DeepMedic', () => {
  it('3D nearest up-sampling repeats each voxel f^3 times; its gradient sums each block', async () => {
    const up = upsample3d(tf, 2);
    const x = tf.tensor(Array.from({length: 2 * 2 * 3 * 2 * 2}, (_, i) => i), [2, 2, 3, 2, 2]);
    const y = up.apply(x) as import('@tensorflow/tfjs').Tensor;
    expect(y.shape).toEqual([2, 4, 6, 4, 2]);
    const xv = x.arraySync() as number[][][][][];
    const yv = y.arraySync() as number[][][][][];
    for (let b = 0; b < 2; b++) for (let z = 0; z < 4; z++) for (let r = 0; r < 6; r++) for (let c = 0; c < 4; c++) {
      for (let ch = 0; ch < 2; ch++) expect(yv[b][z][r][c][ch]).toBe(xv[b][z >> 1][r >> 1][c >> 1][ch]);
    }
    const w = tf.tensor(Array.from({length: 2 * 4 * 6 * 4 * 2}, (_, i) => (i * 7) % 5), [2, 4, 6, 4, 2]);
    const g = tf.grad((t: import('@tensorflow/tfjs').Tensor) => tf.sum(tf.mul(up.apply(t) as import('@tensorflow/tfjs').Tensor, w)))(x);
    const want = tf.sum(tf.reshape(w, [2, 2, 2, 3, 2, 2, 2, 2]), [2, 4, 6]);
    expect(Array.from(await g.data())).toEqual(Array.from(await want.data()));
  });

  it('both build, keep the input size and train a step', async () => {
    for (const [net, shape] of [['twopath2d', [2, 12, 16, 3]], ['deepmedic3d', [2, 8, 4, 12, 3]]] as const) {
      const m = buildNet(tf, net, {channels: 3, width: 4, seed: 1});
      m.compile({optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError'});
      const x = tf.randomNormal([...shape], 0, 1, 'float32', 2);
      expect((m.predict(x) as import('@tensorflow/tfjs').Tensor).shape).toEqual([...shape.slice(0, -1), 1]);
      const loss = await m.trainOnBatch(x, tf.zeros([...shape.slice(0, -1), 1]));
      expect(Number.isFinite(loss as number)).toBe(true);
      m.dispose();
    }
  });
});

describe('study CLI arguments', () => {
  it('parses a preset with overrides', () => {
    const o = parseArgs(['--preset', 'tiny', '--lrs', '1e-4,1e-5', '--losses=GDLv,WCE', '--iterations', '3', '--out', '/tmp/x']);
    expect(o.preset.name).toBe('tiny');
    expect(o.preset.lrs).toEqual([1e-4, 1e-5]);
    expect(o.preset.losses).toEqual(['GDLv', 'WCE']);
    expect(o.preset.setups.unet2d.iterations).toBe(3);
    expect(o.preset.setups.highresnet3d.lastK).toBe(3);
    expect(o.out).toBe('/tmp/x');
  });
  it('the paper preset: its iteration counts and window, all four networks, 3 seeds, quick\'s data design', () => {
    const p = parseArgs(['--preset', 'paper']).preset;
    expect([p.seeds, p.nets.length, p.lrs, p.patches]).toEqual([3, 4, [1e-3, 1e-4, 1e-5], ['S', 'M', 'L']]);
    for (const net of p.nets) {
      const s = p.setups[net];
      expect([s.iterations, s.lastK]).toEqual([NET_DIMS[net] === 2 ? 1000 : 3000, 200]);
      expect({...s, iterations: 0, lastK: 0}).toEqual({...PRESETS.quick.setups[net], iterations: 0, lastK: 0});
    }
    expect(parseArgs(['--preset', 'paper', '--seeds', '1']).preset.seeds).toBe(1);
  });
  it('names the preset that actually runs: the preset, then every option that changed it', () => {
    // the 1000-iteration UNet run's summary called itself "preset 'quick'"
    const o = parseArgs(['--nets', 'unet2d', '--iterations', '1000', '--last', '200', '--out', 'x', '--seed', '2']);
    expect(presetLabel(o.preset)).toBe("'quick' with --nets unet2d --iterations 1000 --last 200");
    expect(presetLabel(parseArgs(['--preset', 'full']).preset)).toBe("'full'");
    expect(PRESETS.quick.changes).toEqual([]);     // parseArgs copies, never edits, the preset table
  });
  it.each([
    [['--preset', 'huge'], 'Expected one of tiny, quick, full, paper for --preset but received "huge"'],
    [['--losses', 'GDL'], 'Expected a comma-separated list of WCE, DL2, SS, GDLv for --losses but received "GDL"'],
    [['--lrs', '0.1,2'], 'Expected a comma-separated list of learning rates in (0, 1) for --lrs but received "0.1,2"'],
    [['--iterations', '0'], 'Expected an integer >= 1 for --iterations but received "0"'],
    [['--out'], 'Expected a value for --out but received null'],
    [['--ss', 'paper'], 'Expected one of niftynet, printed for --ss but received "paper"'],
    [['--wce-weights', 'inverse-frequency'], 'Expected one of reference, paper for --wce-weights but received "inverse-frequency"'],
    [['--bogus', '1'], 'for an option but received "--bogus"'],
  ])('%j -> %s', (argv, message) => {
    expect(() => parseArgs(argv as string[])).toThrow(message);
  });
  it('rejects an unknown command', async () => {
    await expect(main(['train'])).rejects.toThrow('Expected the command study for segloss but received "train"');
  });
});

describe('loss settings', () => {
  it('SS is NiftyNet\'s form by default, the printed form on request; WCE weights from the reference or the predictions', () => {
    const d = parseArgs([]).preset;
    expect([d.ss, d.wceWeights]).toEqual(['niftynet', 'reference']);
    expect(lossOptions('SS', d)).toEqual({activation: 'sigmoid', includeBackground: true, classReduction: 'sum'});
    expect(lossOptions('WCE', d)).toEqual({activation: 'sigmoid', classWeights: 'inverse-frequency'});
    const o = parseArgs(['--ss', 'printed', '--wce-weights', 'paper']).preset;
    expect(lossOptions('SS', o)).toEqual({activation: 'sigmoid', lambda: 0.05});
    expect(lossOptions('WCE', o)).toEqual({activation: 'sigmoid', classWeights: 'paper'});
    expect(lossOptions('GDLv', o)).toEqual({activation: 'sigmoid'});
    expect(presetLabel(o)).toBe("'quick' with --ss printed --wce-weights paper");
    expect(['WCE', 'DL2', 'SS', 'GDLv'].map((l) => lossLabel(l as LossKey, d)))
      .toEqual(['WCE (reference weights)', 'DL2', 'SS (NiftyNet)', 'GDLv']);
    expect(lossLabel('WCE', o)).toBe('WCE (paper weights)');
    expect(lossLabel('SS', o)).toBe('SS (printed, λ 0.05)');
  });

  it('NiftyNet\'s SS does not depend on lambda with two classes; the printed form does', () => {
    const {ops} = require('../lib/tfjs') as typeof import('../lib/tfjs');
    const rand = mulberry32(3);
    const logits = tf.tensor(Array.from({length: 64}, () => rand() * 4 - 2), [1, 8, 8, 1]);
    const labels = tf.tensor(Array.from({length: 64}, (_, i) => (i % 7 === 0 ? 1 : 0)), [1, 8, 8, 1]);
    const ss = (extra: object, lambda: number) =>
      ops.sensitivitySpecificity(labels, logits, {activation: 'sigmoid', lambda, ...extra}).dataSync()[0];
    const niftynet = {includeBackground: true, classReduction: 'sum'};
    expect(ss(niftynet, 0.05)).toBeCloseTo(ss(niftynet, 0.5), 6);
    expect(ss(niftynet, 0.05)).toBeCloseTo(ss(niftynet, 0.95), 6);
    expect(Math.abs(ss({}, 0.05) - ss({}, 0.5))).toBeGreaterThan(1e-3);
  });
});

describe('backend', () => {
  it('says which backend it uses, and int32 Round is the identity on it (TF 2.21 returns 0 without the patch)', () => {
    expect(note).toMatch(/^(@tensorflow\/tfjs-node, backend 'tensorflow'|FALLBACK to @tensorflow\/tfjs, backend 'cpu' \(.+\))/);
    expect(Array.from(tf.round(tf.tensor([1, 2, -3], undefined, 'int32')).dataSync())).toEqual([1, 2, -3]);
  });
});

describe('progress', () => {
  const sink = (tty: boolean) => {
    const chunks: string[] = [];
    return {chunks, stream: {isTTY: tty, write: (c: string) => (chunks.push(c), true)} as unknown as NodeJS.WriteStream};
  };
  it('redraws one bar with an ETA on a terminal, prints plain lines otherwise', () => {
    for (const tty of [true, false]) {
      const {chunks, stream} = sink(tty);
      const p = new Progress(stream, 10, 2, 0);
      p.start('a');
      for (let i = 1; i <= 5; i++) p.step(i, 0.5);
      p.finish('a done');
      p.end();
      const text = chunks.join('');
      expect(text).toMatch(/\[1\/2\] a done; elapsed \d+s, ETA \d+s\n/);
      if (tty) expect(text).toMatch(/\r\x1b\[K\[0\/2\] \[#*\.*\] \d+% a it \d/);
      else expect(text).not.toContain('\r');
    }
    expect(formatDuration(59)).toBe('59s');
    expect(formatDuration(125)).toBe('2m05s');
    expect(formatDuration(3700)).toBe('1h01m');
  });
});

const TINY_IT = 4;

describe('tiny study end to end', () => {
  const out = tmpDir('study');
  afterAll(() => fs.rmSync(out, {recursive: true, force: true}));

  it(`writes every output (${note}) and a rerun resumes`, async () => {
    const argv = ['study', '--preset', 'tiny', '--iterations', String(TINY_IT), '--out', out];
    const first = await quiet(() => main(argv));
    expect(first.value).toBe(0);
    expect(first.out).toContain(`segloss study, preset 'tiny' with --iterations ${TINY_IT}: tensorflow.js ${note}`);
    expect(fs.readFileSync(path.join(out, 'summary.md'), 'utf8').split('\n')[0])
      .toBe(`# segloss study: preset 'tiny' with --iterations ${TINY_IT}`);
    expect(fs.readFileSync(path.join(out, 'summary.md'), 'utf8'))
      .toContain(`- code: segloss ${codeVersion().package}, study and lib sources ${codeVersion().code}`);
    const nets = ['unet2d', 'highresnet3d'];
    for (const f of ['summary.md', 'results.json', ...nets.flatMap((n) => [`table_${n}.md`, `test_${n}.md`,
                                                                           `fig_dsc_${n}.svg`, `fig_isolines_${n}.svg`, `fig_curves_${n}.svg`, `fig_heldout_${n}.svg`])]) {
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    }
    for (const n of nets) {
      for (const f of [`fig_dsc_${n}.svg`, `fig_isolines_${n}.svg`, `fig_curves_${n}.svg`, `fig_heldout_${n}.svg`]) {
        const svg = fs.readFileSync(path.join(out, f), 'utf8');
        expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
        expect(svg.trim().endsWith('</svg>')).toBe(true);
      }
      expect(fs.readFileSync(path.join(out, `fig_curves_${n}.svg`), 'utf8').match(/<polyline/g)!.length).toBe(8);
      expect(fs.readFileSync(path.join(out, `fig_heldout_${n}.svg`), 'utf8').match(/<rect class="box"/g)!.length).toBe(4);
      expect(fs.readFileSync(path.join(out, `fig_isolines_${n}.png`)).subarray(1, 4).toString('latin1')).toBe('PNG');
      const table = fs.readFileSync(path.join(out, `table_${n}.md`), 'utf8');
      expect(table).toMatch(/^\| Patch \| Side \| Imbalance: Table 1 \/ here \| LR \| WCE \(reference weights\) \| DL2 \| SS \(NiftyNet\) \| GDLv \|/m);
      expect(table).toContain('† not converged: over the last 6 iterations');
      expect(fs.readFileSync(path.join(out, `test_${n}.md`), 'utf8'))
        .toMatch(/^\| Patch \| LR \| WCE \(reference weights\) \| DL2 \| SS \(NiftyNet\) \| GDLv \|/);
      expect(table.split('\n').filter((l) => l.startsWith('|'))).toHaveLength(2 + 2);   // header, rule, patch S and L at one LR
      expect(table).toMatch(/\| S \| [0-9x]+ \| [0-9.]+% \/ [0-9.]+% \| 1e-3 \| \d\.\d\d \(\d\.\d\d\)( †)? \|/);
    }
    const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json.ran).toBe(16);
    expect(json.skipped).toBe(0);
    expect(json.configs).toHaveLength(16);
    for (const c of json.configs) {
      expect(c.dscCurve).toHaveLength(TINY_IT);
      expect(c.lossCurve).toHaveLength(TINY_IT);
      for (const d of [...c.dscCurve, c.dscMedian, ...c.testDsc]) {
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(1);
      }
      expect(c.dscQ1).toBeLessThanOrEqual(c.dscMedian);
      expect(c.dscMedian).toBeLessThanOrEqual(c.dscQ3);
      expect(c.imbalanceMin).toBeGreaterThan(0);          // every training patch holds foreground
      expect(c.testDsc.length).toBe(2);
    }
    // the imbalance is a property of the patch size (same sampler and volumes for every loss)
    for (const n of nets) {
      for (const patch of ['S', 'L']) {
        const same = json.configs.filter((c: {net: string; patch: string}) => c.net === n && c.patch === patch);
        expect(new Set(same.map((c: {imbalanceMedian: number}) => c.imbalanceMedian)).size).toBe(1);
      }
    }
    expect(fs.readdirSync(path.join(out, 'configs')).filter((f) => f.endsWith('.json'))).toHaveLength(16);
    expect(first.err).toMatch(/\[16\/16\] highresnet3d__GDLv__lr1e-3__L__seed1: train DSC/);

    // rerun: nothing trains, every configuration comes from disk unchanged
    const keep = path.join(out, 'configs', 'unet2d__WCE__lr1e-3__S__seed1.json');
    const before = fs.readFileSync(keep, 'utf8');
    const second = await quiet(() => main(argv));
    expect(second.value).toBe(0);
    const json2 = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json2.ran).toBe(0);
    expect(json2.skipped).toBe(16);
    expect(json2.configs).toEqual(json.configs);
    expect(second.err).toContain('resuming: 16 of 16 configurations already in');

    // one configuration missing (an interrupted run): only it trains again, and reproduces its numbers
    const drop = path.join(out, 'configs', 'highresnet3d__SS__lr1e-3__S__seed1.json');
    const dropped = JSON.parse(fs.readFileSync(drop, 'utf8'));
    fs.unlinkSync(drop);
    const third = await quiet(() => main(argv));
    const json3 = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(third.value).toBe(0);
    expect(json3.ran).toBe(1);
    expect(json3.skipped).toBe(15);
    expect(fs.readFileSync(keep, 'utf8')).toBe(before);
    const redone = JSON.parse(fs.readFileSync(drop, 'utf8'));
    expect(redone.dscCurve).toEqual(dropped.dscCurve);      // seeded: the same run again

    // changed settings (another iteration count) do not reuse old results
    const fourth = await quiet(() => main([...argv.slice(0, 3), '--iterations', String(TINY_IT + 1), '--out', out,
                                          '--nets', 'highresnet3d', '--losses', 'GDLv', '--patches', 'S']));
    const json4 = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(fourth.value).toBe(0);
    expect(json4.ran).toBe(1);
    expect(json4.configs[0].dscCurve).toHaveLength(TINY_IT + 1);
  }, 120000);
});

/** The tiny preset narrowed to one configuration of `iterations` steps (for the fingerprint tests). */
function onePreset(iterations: number): Preset {
  const t = PRESETS.tiny;
  return {...t, nets: ['unet2d'], losses: ['GDLv'], patches: ['S'],
          setups: {...t.setups, unet2d: {...t.setups.unet2d, iterations, lastK: 1}}};
}

describe('imbalance by design', () => {
  // the paper's Table 1 (UNet 52 / 33 / 15%, HighResNet 2 / 1 / 0.3%): the quick and full presets' data and
  // patch sides put the median foreground share of the training patches near it, within a factor 1.6,
  // in the paper's order, with images larger than the L patch
  for (const name of ['quick'] as const) {
    for (const net of ['unet2d', 'twopath2d', 'highresnet3d', 'deepmedic3d'] as const) {
      it(`${name} ${net}: S / M / L patches land near Table 1's shares (full has the same design)`, () => {
        const preset = PRESETS[name];
        const design = ({volumeDims, patch, batch, volumeFraction, lesionVoxels}: typeof preset.setups.unet2d) =>
          ({volumeDims, patch, batch, volumeFraction, lesionVoxels});
        expect(design(PRESETS.full.setups[net])).toEqual(design(preset.setups[net]));
        const s = preset.setups[net];
        const small: Preset = {...preset, setups: {...preset.setups, [net]: {...s, trainVolumes: 16, testVolumes: 1}}};
        const data = syntheticData(small, net, 1);
        const got = PATCH_KEYS.map((k) => medianShare(data, net, s.patch[k], 600, 5));
        PATCH_KEYS.forEach((k, i) => {
          const ratio = got[i] / TABLE1_SHARE[net][k];
          expect([k, ratio > 1 / 1.6 && ratio < 1.6]).toEqual([k, true]);
          expect(s.volumeDims.every((d) => d > s.patch[k])).toBe(true);
        });
        expect(got[0]).toBeGreaterThan(got[1]);
        expect(got[1]).toBeGreaterThan(got[2]);
      });
    }
  }

  it('lesionVoxels sets lesion sizes and keeps the exact foreground count', () => {
    const v = synthVolume({dims: [80, 80], foregroundFraction: 0.12, seed: 3, lesionVoxels: [650, 900]});
    expect(v.foreground).toBe(Math.round(0.12 * 6400));
    expect(() => synthVolume({dims: [8, 8], foregroundFraction: 0.1, seed: 1, lesionVoxels: [5, 2]}))
      .toThrow('Expected [min, max] with 1 <= min <= max for lesionVoxels but received [5,2]');
  });
});

describe('held-out synthetic data', () => {
  it('never shares a generator seed with a training volume, however many training volumes', () => {
    // the old scheme offset the held-out seeds by 50: 64 training images (the full preset) overlapped 14 of 16
    const t = PRESETS.tiny;
    const many: Preset = {...t, setups: {...t.setups, unet2d: {...t.setups.unet2d, volumeDims: [8, 8],
                                                                 trainVolumes: 70, testVolumes: 20}}};
    const d = syntheticData(many, 'unet2d', 1);
    const trainSources = new Set(d.train.map((v) => v.source));
    expect(trainSources.size).toBe(70);
    expect(d.test.map((v) => v.source).filter((s) => trainSources.has(s))).toEqual([]);
    expect(new Set(d.test.map((v) => v.source)).size).toBe(20);
  });

  it('volumeSeed keeps the splits apart for every preset, network and seed', () => {
    for (const preset of Object.values(PRESETS)) {
      for (const [net, nd] of [['unet2d', 2], ['highresnet3d', 3]] as const) {
        const s = preset.setups[net];
        for (const seed of [0, 1, 2, 3, 100, MAX_SEED]) {
          const train = new Set(Array.from({length: s.trainVolumes}, (_, i) => volumeSeed(seed, nd, 'train', i)));
          const test = Array.from({length: s.testVolumes}, (_, i) => volumeSeed(seed, nd, 'test', i));
          expect(test.filter((x) => train.has(x))).toEqual([]);
          expect(Math.max(...train, ...test)).toBeLessThan(2 ** 32);   // mulberry32 keeps 32 bits
        }
      }
    }
    expect(() => volumeSeed(MAX_SEED + 1, 2, 'train', 0)).toThrow(`Expected an integer in [0, ${MAX_SEED}] for seed but received ${MAX_SEED + 1}`);
    expect(() => parseArgs(['--seed', String(MAX_SEED + 1)])).toThrow(`Expected an integer in [0, ${MAX_SEED}] for --seed`);
  });
});

describe('resume fingerprint', () => {
  const out = tmpDir('fingerprint');
  afterAll(() => fs.rmSync(out, {recursive: true, force: true}));

  it('names the package version, the code and the backend: a change in any of them trains again', async () => {
    const preset = onePreset(2);
    const data = {unet2d: syntheticData(preset, 'unet2d', 1)} as Parameters<typeof runStudy>[0]['data'];
    const sink = {isTTY: false, write: () => true} as unknown as NodeJS.WriteStream;
    const base = {preset, data, out, seed: 1, loaded, stream: sink};
    const v = codeVersion();
    expect(v.package).toBe(JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version);
    expect(v.code).toMatch(/^[0-9a-f]{16}$/);
    expect((await runStudy(base)).ran).toHaveLength(1);
    expect((await runStudy(base)).skipped).toHaveLength(1);                      // same code, same backend: resumes
    expect((await runStudy({...base, version: {...v, package: '9.9.9'}})).ran).toHaveLength(1);
    expect((await runStudy({...base, version: {...v, code: '0000000000000000'}})).ran).toHaveLength(1);
    expect((await runStudy({...base, loaded: {...loaded, backend: 'other'}})).ran).toHaveLength(1);
    expect((await runStudy(base)).ran).toHaveLength(1);                          // the file now holds the 'other' run
  }, 60000);
});

describe('TwoPathCNN and DeepMedic in a study', () => {
  const out = tmpDir('nets');
  afterAll(() => fs.rmSync(out, {recursive: true, force: true}));

  it('trains and reports them like the other two', async () => {
    const r = await quiet(() => main(['study', '--preset', 'tiny', '--nets', 'twopath2d,deepmedic3d', '--losses', 'GDLv',
                                      '--iterations', '2', '--out', out]));
    expect(r.value).toBe(0);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json.configs.map((c: {id: string}) => c.id)).toEqual([
      'twopath2d__GDLv__lr1e-3__S__seed1', 'twopath2d__GDLv__lr1e-3__L__seed1',
      'deepmedic3d__GDLv__lr1e-3__S__seed1', 'deepmedic3d__GDLv__lr1e-3__L__seed1']);
    expect(fs.readFileSync(path.join(out, 'table_twopath2d.md'), 'utf8')).toMatch(/\| S \| 8x8 \| 29.0% \/ [0-9.]+% \|/);
    expect(fs.readFileSync(path.join(out, 'table_deepmedic3d.md'), 'utf8')).toMatch(/\| S \| 4x4x4 \| 20.0% \/ [0-9.]+% \|/);
    expect(fs.readFileSync(path.join(out, 'summary.md'), 'utf8')).toContain('## DeepMedic (3D)');
  }, 60000);
});

describe('seeds', () => {
  const out = tmpDir('seeds');
  afterAll(() => fs.rmSync(out, {recursive: true, force: true}));

  it('--seeds N trains every configuration N times and tables show the median with the range', async () => {
    expect(parseArgs([]).preset.seeds).toBe(1);
    const r = await quiet(() => main(['study', '--preset', 'tiny', '--nets', 'unet2d', '--losses', 'GDLv,WCE', '--patches', 'S',
                                      '--iterations', '3', '--seeds', '2', '--seed', '5', '--out', out]));
    expect(r.value).toBe(0);
    expect(r.out).toContain("preset 'tiny' with --nets unet2d --losses GDLv,WCE --patches S --iterations 3 --seeds 2");
    expect(fs.readdirSync(path.join(out, 'configs')).sort()).toEqual([
      'unet2d__GDLv__lr1e-3__S__seed5.json', 'unet2d__GDLv__lr1e-3__S__seed6.json',
      'unet2d__WCE__lr1e-3__S__seed5.json', 'unet2d__WCE__lr1e-3__S__seed6.json']);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    const gdl = json.configs.filter((c: {loss: string}) => c.loss === 'GDLv');
    expect(gdl.map((c: {seed: number}) => c.seed)).toEqual([5, 6]);
    expect(gdl[0].dscCurve).not.toEqual(gdl[1].dscCurve);            // own weights and patches per seed
    expect(gdl[0].testDsc).toHaveLength(2);                          // the same held-out volumes for both
    const table = fs.readFileSync(path.join(out, 'table_unet2d.md'), 'utf8');
    expect(table).toContain('Median over 2 seeds [min, max]');
    expect(table).toMatch(/\| S \| 8x8 \| 52.0% \/ [0-9.]+% \| 1e-3 \| \d\.\d\d \[\d\.\d\d, \d\.\d\d\]( †)? \| \d\.\d\d \[/);
    expect(fs.readFileSync(path.join(out, 'summary.md'), 'utf8')).toContain('data seed 5, training seeds 5 .. 6');
  }, 60000);
});

// ---- NIfTI ----

/** A NIfTI-1 single file (.nii): 348-byte header, 4 extension bytes, then the voxels (x fastest). */
function niftiFile(dims: number[], datatype: 'uint8' | 'int16' | 'float32', values: ArrayLike<number>,
                   slope = 0, inter = 0): Buffer {
  const spec = {uint8: [2, 8, 1], int16: [4, 16, 2], float32: [16, 32, 4]}[datatype];
  const n = dims.reduce((a, b) => a * b, 1);
  const buf = Buffer.alloc(352 + n * spec[2]);
  buf.writeInt32LE(348, 0);
  buf.writeInt16LE(dims.length, 40);
  dims.forEach((d, i) => buf.writeInt16LE(d, 42 + 2 * i));
  for (let i = dims.length + 1; i < 8; i++) buf.writeInt16LE(1, 40 + 2 * i);
  buf.writeInt16LE(spec[0], 70);
  buf.writeInt16LE(spec[1], 72);
  for (let i = 0; i < 8; i++) buf.writeFloatLE(1, 76 + 4 * i);
  buf.writeFloatLE(352, 108);
  buf.writeFloatLE(slope, 112);
  buf.writeFloatLE(inter, 116);
  buf.write('n+1\0', 344, 'latin1');
  for (let i = 0; i < n; i++) {
    if (datatype === 'uint8') buf.writeUInt8(values[i], 352 + i);
    else if (datatype === 'int16') buf.writeInt16LE(values[i], 352 + 2 * i);
    else buf.writeFloatLE(values[i], 352 + 4 * i);
  }
  return buf;
}

describe('NIfTI input (--data)', () => {
  const dir = tmpDir('nifti');
  afterAll(() => fs.rmSync(dir, {recursive: true, force: true}));
  // 3 cases, x y z = 16 x 12 x 8, 2 channels (4D images), labels from the synthetic generator
  const [X, Y, Z] = [16, 12, 8];
  const V = X * Y * Z;
  const vols = [0, 1, 2].map((i) => synthVolume({dims: [Z, Y, X], foregroundFraction: 0.03, seed: 100 + i, channels: 2}));

  beforeAll(() => {
    vols.forEach((v, i) => {
      // channels-last [z, y, x, c] -> NIfTI [x, y, z, c] with x fastest: the flat voxel order is the same per channel
      const img = new Float32Array(V * 2);
      for (let c = 0; c < 2; c++) for (let k = 0; k < V; k++) img[c * V + k] = 100 + 20 * v.image[k * 2 + c];
      const name = `case${i}`;
      if (i === 1) {
        // int16 with scl_slope 0.5, gzip-compressed
        const raw = Array.from(img, (x) => Math.round(x * 2));
        fs.writeFileSync(path.join(dir, `${name}_image.nii.gz`), zlib.gzipSync(niftiFile([X, Y, Z, 2], 'int16', raw, 0.5)));
      } else {
        fs.writeFileSync(path.join(dir, `${name}_image.nii`), niftiFile([X, Y, Z, 2], 'float32', img));
      }
      fs.writeFileSync(path.join(dir, `${name}_label.nii`), niftiFile([X, Y, Z], 'uint8', Array.from(v.label, (l) => l * 2)));
    });
  });

  it('reads float32, int16 with scl_slope (gzip) and uint8 voxels in file order', () => {
    const a = readNifti(path.join(dir, 'case0_image.nii'));
    expect(a.dims).toEqual([X, Y, Z, 2]);
    expect(a.data[5]).toBeCloseTo(100 + 20 * vols[0].image[5 * 2], 3);
    expect(a.data[V + 5]).toBeCloseTo(100 + 20 * vols[0].image[5 * 2 + 1], 3);
    const b = readNifti(path.join(dir, 'case1_image.nii.gz'));
    expect(b.data[7]).toBe(Math.round((100 + 20 * vols[1].image[7 * 2]) * 2) * 0.5);
    const l = readNifti(path.join(dir, 'case2_label.nii'));
    expect(l.dims).toEqual([X, Y, Z]);
    expect(Array.from(l.data).filter((x) => x === 2).length).toBe(vols[2].foreground);
  });

  it('pairs cases, z-scores per channel and keeps the label (> 0) aligned', () => {
    const cases = findCases(dir);
    expect(cases.map((c) => c.name)).toEqual(['case0', 'case1', 'case2']);
    const v = loadCase(cases[2]);
    expect(v.dims).toEqual([Z, Y, X]);
    expect(v.channels).toBe(2);
    expect(Buffer.compare(Buffer.from(v.label), Buffer.from(vols[2].label))).toBe(0);
    // the synthetic image was already z-scored, so an affine map of it z-scores back to it
    for (let k = 0; k < 50; k++) expect(v.image[k]).toBeCloseTo(vols[2].image[k], 4);
    expect(() => findCases(path.join(dir, 'nope'))).toThrow('Expected a directory of NIfTI files for --data but received');
  });

  it('runs the study on the NIfTI cases (2D net on slices, 3D net on volumes)', async () => {
    const out = path.join(dir, 'results');
    const r = await quiet(() => main(['study', '--preset', 'tiny', '--data', dir, '--out', out, '--losses', 'GDLv,WCE',
                                      '--patches', 'S,L', '--iterations', '3']));
    expect(r.value).toBe(0);
    expect(r.out).toContain('data: 3 cases from');
    expect(r.out).toContain('held out: case2_image.nii');
    const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json.configs).toHaveLength(8);
    const unetL = json.configs.find((c: {net: string; patch: string}) => c.net === 'unet2d' && c.patch === 'L');
    expect(unetL.patchSize).toEqual([12, 16]);              // L clamped to the slice (y 12, x 16)
    const hrnL = json.configs.find((c: {net: string; patch: string}) => c.net === 'highresnet3d' && c.patch === 'L');
    expect(hrnL.patchSize).toEqual([8, 12, 16]);            // clamped to the volume (z 8, y 12, x 16)
    for (const c of json.configs) expect(c.testDsc).toHaveLength(1);   // one held-out volume, scored whole
    expect(json.data.unet2d).toContain(dir);
  }, 60000);
});
