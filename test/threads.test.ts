/**
 * Determinism across thread counts (docs/losses.md section 4: "On the CPU this
 * holds for any number of threads as well"), the thread setting itself, and
 * device selection (STYLE.md rule 7: backends(), an explicit 'cuda' that
 * cannot run throws with the reason).
 *
 * The input spans many chunks: the CPU chunk is 16384 voxels and chunks never
 * span two samples, so [2, 40, 40, 40, 3] (64000 voxels per sample) gives 4
 * chunks per sample, the last one partial, 8 in all.
 *
 * Tolerances: test/tolerances.ts (threads: bit-identical).
 */
import * as api from '../lib';
import type {Activation, AnyLossArgs, LossName, LossResult, Reduction} from '../lib/types';
import {TOL, errorClass, expectBitIdentical, expectClose, mulberry32, seedOf, thrown} from './tolerances';

const LOSSES: LossName[] = ['generalizedDice', 'dice', 'sensitivitySpecificity', 'weightedCrossEntropy'];
const run = (name: LossName, args: AnyLossArgs): LossResult => (api[name] as (a: AnyLossArgs) => LossResult)(args);
const runAsync = (name: LossName, args: AnyLossArgs): Promise<LossResult> =>
  (api[`${name}Async`] as (a: AnyLossArgs) => Promise<LossResult>)(args);

const SHAPE = [2, 40, 40, 40, 3];
const C = 3;
const SIZE = SHAPE.reduce((p, d) => p * d, 1);
const VOXELS = SIZE / C;

/** Logits in [-3, 3] (softmax) or their softmax rows (activation 'none'); labels in [0, C). */
function inputs(activation: Activation): {prediction: Float32Array; target: Uint8Array} {
  const rand = mulberry32(seedOf(`threads ${activation}`));
  const prediction = new Float32Array(SIZE);
  for (let i = 0; i < SIZE; i++) prediction[i] = 6 * (rand() - 0.5);
  if (activation === 'none') {
    for (let v = 0; v < VOXELS; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += Math.exp(prediction[v * C + c]);
      for (let c = 0; c < C; c++) prediction[v * C + c] = Math.exp(prediction[v * C + c]) / s;
    }
  }
  const target = new Uint8Array(VOXELS);
  // a class-imbalanced map: class 2 rare, as in the paper's lesions
  for (let v = 0; v < VOXELS; v++) {
    const u = rand();
    target[v] = u < 0.02 ? 2 : u < 0.3 ? 1 : 0;
  }
  return {prediction, target};
}
const INPUTS = {softmax: inputs('softmax'), none: inputs('none')};

const THREADS = [1, 2, 4];
const ROWS: Array<[LossName, 'softmax' | 'none', Reduction]> = LOSSES.flatMap((name) =>
  (['softmax', 'none'] as const).flatMap((act) => (['pooled', 'none'] as Reduction[]).map((red) => [name, act, red] as [LossName, 'softmax' | 'none', Reduction])));

afterAll(() => api.setThreads(0));

describe('bit-identical results for setThreads(1), (2) and (4)', () => {
  afterEach(() => api.setThreads(0));

  it.each(ROWS)('%s, activation %s, reduction %s', (name, act, reduction) => {
    const args: AnyLossArgs = {...INPUTS[act], shape: SHAPE, activation: act, reduction,
                               gradScale: reduction === 'none' ? new Float64Array([0.7, -1.1]) : 0.7};
    const results = THREADS.map((t) => {
      api.setThreads(t);
      expect(api.getThreads()).toBe(t);
      return run(name, args);
    });
    for (let i = 1; i < THREADS.length; i++) {
      const label = `${THREADS[i]} threads vs 1`;
      expect(results[i].loss === results[0].loss).toBe(true);
      expectClose(results[i].loss, results[0].loss, TOL.threads, `${label}: loss`);
      if (reduction === 'none') expectClose(results[i].losses, results[0].losses, TOL.threads, `${label}: losses`);
      const a = results[i].gradient!, b = results[0].gradient!;
      const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
      const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
      let differ = 0;
      for (let k = 0; k < ua.length; k++) if (ua[k] !== ub[k]) differ++;
      if (differ > 0) expectClose(a, b, TOL.threads, `${label}: gradient`); // prints the first few
      expect(differ).toBe(0);
    }
  });

  it.each(LOSSES)('%s: the Async twin with 4 threads equals the sync call with 1', async (name) => {
    const args: AnyLossArgs = {...INPUTS.softmax, shape: SHAPE, activation: 'softmax', reduction: 'mean', gradScale: 1.3};
    api.setThreads(1);
    const one = run(name, args);
    api.setThreads(4);
    const four = await runAsync(name, args);
    expectClose(four.loss, one.loss, TOL.threads, 'loss');
    expectClose(four.gradient, one.gradient, TOL.threads, 'gradient');
  });

  test('split-phase statistics do not depend on the thread count either', () => {
    const args: AnyLossArgs = {...INPUTS.softmax, shape: SHAPE, activation: 'softmax'};
    api.setThreads(1);
    const one = api.lossStats('dice', args);
    api.setThreads(4);
    const four = api.lossStats('dice', args);
    expectClose(four.values, one.values, TOL.threads, 'statistics');
  });
});

describe('setThreads / getThreads', () => {
  afterEach(() => api.setThreads(0));

  test('getThreads reflects setThreads', () => {
    for (const t of [1, 2, 3, 4, 7]) {
      api.setThreads(t);
      expect(api.getThreads()).toBe(t);
    }
  });

  test('setThreads(0) restores the default (all cores, at least 1)', () => {
    api.setThreads(0);
    const all = api.getThreads();
    expect(Number.isInteger(all)).toBe(true);
    expect(all).toBeGreaterThanOrEqual(1);
    api.setThreads(3);
    api.setThreads(0);
    expect(api.getThreads()).toBe(all);
  });

  test('backends() reports the cpu thread count', () => {
    api.setThreads(2);
    const cpu = api.backends().find((b) => b.name === 'cpu') as {threads?: number} | undefined;
    expect(cpu?.threads).toBe(2);
  });

  test('a bad thread count throws TypeError / RangeError and keeps the setting', () => {
    api.setThreads(2);
    expect(errorClass(thrown(() => api.setThreads('4' as unknown as number)))).toBe('TypeError');
    expect(errorClass(thrown(() => api.setThreads(-1)))).toBe('RangeError');
    expect(errorClass(thrown(() => api.setThreads(1.5)))).toBe('RangeError');
    expect(errorClass(thrown(() => api.setThreads(Number.NaN)))).toBe('RangeError');
    expect(thrown(() => api.setThreads(-1)).message).toMatch(/Expected .* for threads but received -1/);
    expect(api.getThreads()).toBe(2);
  });
});

describe('devices', () => {
  const small: AnyLossArgs = {
    prediction: new Float32Array([0.2, 1.5, -0.3, 0.7, 0.1, -1.2]),
    target: new Uint8Array([1, 0]),
    shape: [1, 2, 3],
    activation: 'softmax',
  };

  // CI builds with nvcc on a machine without a GPU and sets
  // SEGLOSS_EXPECT_CUDA_COMPILED=1: CUDA must then be compiled in, and
  // unavailable with the driver's reason.
  const cudaInfo = () => api.backends().find((b) => b.name === 'cuda')!;
  const gpu = cudaInfo().available;

  test("backends() lists 'cpu' available and 'cuda' with compiled / available / reason", () => {
    const list = api.backends();
    const cpu = list.find((b) => b.name === 'cpu');
    const cuda = cudaInfo();
    expect(cpu).toMatchObject({name: 'cpu', compiled: true, available: true});
    expect(cuda.name).toBe('cuda');
    if (process.env.SEGLOSS_EXPECT_CUDA_COMPILED === '1') expect(cuda.compiled).toBe(true);
    if (!cuda.compiled) expect(cuda.reason).toMatch(/compiled without CUDA/);
    if (cuda.available) {
      expect(cuda.compiled).toBe(true);
      expect(typeof cuda.device).toBe('string');
    } else {
      expect(typeof cuda.reason).toBe('string');
      expect(cuda.reason!.length).toBeGreaterThan(10);
    }
    if (cuda.compiled && !cuda.available) expect(cuda.reason).toMatch(/^cudaGetDeviceCount failed with cuda\w+: |no CUDA device/);
  });

  (gpu ? test.skip : test).each(LOSSES)("%s: device 'cuda' without a GPU throws an Error (not TypeError / RangeError) carrying the reason", (name) => {
    const reason = cudaInfo().reason!;
    const err = thrown(() => run(name, {...small, device: 'cuda'}));
    expect(errorClass(err)).toBe('Error');
    expect(err.message).toBe(`Expected a usable CUDA device for device but received 'cuda': ${reason}`);
  });

  test('releaseDeviceMemory() is safe without a GPU and between calls', () => {
    api.releaseDeviceMemory();
    const a = run('generalizedDice', small);
    api.releaseDeviceMemory();
    expectBitIdentical(run('generalizedDice', small).gradient, a.gradient, 'gradient after release');
  });

  test.each(LOSSES)("%s: device 'auto' and 'cpu' work and agree with the default", (name) => {
    const base = run(name, small);
    for (const device of ['auto', 'cpu'] as const) {
      const r = run(name, {...small, device});
      expectClose(r.loss, base.loss, TOL.samePath, `${device} loss`);
      expectClose(r.gradient, base.gradient, TOL.samePath, `${device} gradient`);
    }
  });
});
