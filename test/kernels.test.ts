/**
 * The native kernels (through the public API, '../lib') against the float64
 * reference (lib/reference) on seeded random inputs: loss, per-sample losses
 * and gradient, with a non-unit upstream gradient (STYLE.md rule 11).
 *
 * The matrix: loss x (C, activation, target kind) x shape (1 voxel, an odd
 * 3x7x11x13 volume, batch 3) x reduction (pooled / mean / sum / none with a
 * scalar gradScale, none with a per-sample Float64Array). Then every option
 * of docs/losses.md section 2 on a smaller set of configurations, and the call
 * paths that must not change a bit: `gradient: false`, a caller buffer, the
 * Async twins.
 *
 * Tolerances: test/tolerances.ts (nativeLoss, nativeLosses, nativeGradient, samePath).
 */
import * as api from '../lib';
import {reference} from '../lib/reference';
import type {Activation, AnyLossArgs, LossName, LossResult, Reduction} from '../lib/types';
import {Config, LOSSES, REDUCTIONS, RedCase, Runner, TargetKind, cfgName, compare as compareWith, defineReferenceSuites,
        makeInputs} from './kernel_suites';
import {TOL, expectBitIdentical, expectClose} from './tolerances';

type Sync = (a: AnyLossArgs) => LossResult;
type Async = (a: AnyLossArgs) => Promise<LossResult>;
const SYNC: Record<LossName, Sync> = {
  generalizedDice: api.generalizedDice as Sync,
  dice: api.dice as Sync,
  sensitivitySpecificity: api.sensitivitySpecificity as Sync,
  weightedCrossEntropy: api.weightedCrossEntropy as Sync,
};
const ASYNC: Record<LossName, Async> = {
  generalizedDice: api.generalizedDiceAsync as Async,
  dice: api.diceAsync as Async,
  sensitivitySpecificity: api.sensitivitySpecificityAsync as Async,
  weightedCrossEntropy: api.weightedCrossEntropyAsync as Async,
};
const runCpu: Runner = (name, a) => SYNC[name](a);
const compare = (name: LossName, args: AnyLossArgs) => compareWith(runCpu, name, args);

defineReferenceSuites('native', runCpu);


test('a 2-dimensional shape [B, C] (no spatial axes) works for every loss', () => {
  const cfg: Config = {C: 3, activation: 'softmax', target: 'Uint8'};
  for (const name of LOSSES) {
    const {prediction, target} = makeInputs(cfg, [7, 3], `${name} [B, C]`);
    compare(name, {prediction, target, shape: [7, 3], activation: 'softmax', reduction: 'mean', gradScale: 1.9});
  }
});

test('a Float32Array gradScale per sample equals the Float64Array one', () => {
  const cfg: Config = {C: 3, activation: 'softmax', target: 'Uint8'};
  const shape = [3, 4, 5, 3];
  const {prediction, target} = makeInputs(cfg, shape, 'f32 gradScale');
  for (const name of LOSSES) {
    const a = SYNC[name]({prediction, target, shape, activation: 'softmax', reduction: 'none',
                          gradScale: new Float32Array([0.5, -2, 0.25])});
    const b = SYNC[name]({prediction, target, shape, activation: 'softmax', reduction: 'none',
                          gradScale: new Float64Array([0.5, -2, 0.25])});
    expectBitIdentical(a.gradient, b.gradient, `${name} gradient`);
  }
});

// ---------------------------------------------------------------- call paths

const PATH_CONFIGS: Config[] = [
  {C: 1, activation: 'sigmoid', target: 'Float32-binary'},
  {C: 3, activation: 'softmax', target: 'Int32'},
  {C: 4, activation: 'none', target: 'dense-onehot'},
  {C: 3, activation: 'sigmoid', target: 'Float32-sparse'},
];
const PATH_ROWS = LOSSES.flatMap((name) => PATH_CONFIGS.flatMap((cfg) => REDUCTIONS.map((r) => [name, cfgName(cfg), r.name, cfg, r] as const)));

function pathArgs(cfg: Config, red: RedCase, seed: string): AnyLossArgs {
  const shape = [3, 6, 5, 3, cfg.C];
  const {prediction, target} = makeInputs(cfg, shape, seed);
  return {prediction, target, shape, activation: cfg.activation, reduction: red.reduction, gradScale: red.gradScale(3)};
}

describe('gradient: false runs the reduction pass only, with the same loss', () => {
  it.each(PATH_ROWS)('%s, %s, %s', (name, cname, rname, cfg, red) => {
    const args = pathArgs(cfg, red, `${name} ${cname} ${rname} nograd`);
    const full = SYNC[name](args);
    const bare = SYNC[name]({...args, gradient: false});
    expect(bare.gradient).toBeUndefined();
    expect('gradient' in bare).toBe(false);
    expectBitIdentical(bare.loss, full.loss, 'loss');
    if (red.reduction === 'none') expectBitIdentical(bare.losses, full.losses, 'losses');
    else expect(bare.losses).toBeUndefined();
  });
});

describe('a caller Float32Array is filled in place (every element written)', () => {
  it.each(PATH_ROWS)('%s, %s, %s', (name, cname, rname, cfg, red) => {
    const args = pathArgs(cfg, red, `${name} ${cname} ${rname} inplace`);
    const fresh = SYNC[name](args);
    const buf = new Float32Array(args.prediction.length).fill(Number.NaN);
    const res = SYNC[name]({...args, gradient: buf});
    expect(res.gradient).toBe(buf);
    expectBitIdentical(buf, fresh.gradient, 'caller buffer vs allocated gradient');
    expectBitIdentical(res.loss, fresh.loss, 'loss');
  });

  test('a gradient view into a larger buffer writes only its own range', () => {
    const args = pathArgs({C: 3, activation: 'softmax', target: 'Uint8'}, REDUCTIONS[0], 'subarray');
    const n = args.prediction.length;
    const big = new Float32Array(n + 20).fill(42);
    const view = big.subarray(10, 10 + n);
    const fresh = api.dice(args as api.DiceArgs);
    api.dice({...(args as api.DiceArgs), gradient: view});
    expectBitIdentical(view, fresh.gradient, 'view');
    for (const i of [...Array(10).keys(), ...Array.from({length: 10}, (_, k) => n + 10 + k)]) expect(big[i]).toBe(42);
  });
});

describe('the Async twins give bit-identical results', () => {
  it.each(PATH_ROWS)('%s, %s, %s', async (name, cname, rname, cfg, red) => {
    const args = pathArgs(cfg, red, `${name} ${cname} ${rname} async`);
    const s = SYNC[name](args);
    const a = await ASYNC[name](args);
    expectBitIdentical(a.loss, s.loss, 'loss');
    expectBitIdentical(a.gradient, s.gradient, 'gradient');
    if (red.reduction === 'none') expectBitIdentical(a.losses, s.losses, 'losses');
    const buf = new Float32Array(args.prediction.length).fill(Number.NaN);
    const b = await ASYNC[name]({...args, gradient: buf});
    expect(b.gradient).toBe(buf);
    expectBitIdentical(buf, s.gradient, 'async into a caller buffer');
    const c = await ASYNC[name]({...args, gradient: false});
    expect(c.gradient).toBeUndefined();
    expectBitIdentical(c.loss, s.loss, 'async, gradient: false');
  });

  test('many Async calls in flight at once agree with the sync results', async () => {
    const cfg: Config = {C: 3, activation: 'softmax', target: 'Uint8'};
    const jobs = LOSSES.flatMap((name) => REDUCTIONS.map((red) => ({name, args: pathArgs(cfg, red, `${name} ${red.name} flight`)})));
    const results = await Promise.all(jobs.map((j) => ASYNC[j.name](j.args)));
    jobs.forEach((j, i) => {
      const s = SYNC[j.name](j.args);
      expectBitIdentical(results[i].loss, s.loss, `${j.name} loss`);
      expectBitIdentical(results[i].gradient, s.gradient, `${j.name} gradient`);
    });
  });
});

// ---------------------------------------------------------------- edges

describe('edge cases vs the reference', () => {
  /** Many classes: the CPU's vector loops take up to 64 classes (native/cpu/vector_loops.h), the scalar loop any number. */
  const MANY = [13, 17, 33, 64, 65];
  const manyRows = LOSSES.flatMap((name) => MANY.flatMap((C) => (['none', 'softmax', 'sigmoid'] as Activation[])
    .flatMap((act) => (['Uint8', 'dense-soft'] as TargetKind[]).map((target) => [name, C, act, target] as const))));
  it.each(manyRows)('%s, C=%i, %s, %s (many classes)', (name, C, activation, target) => {
    const cfg: Config = {C, activation, target};
    const shape = [2, 5, 7, C];
    const {prediction, target: t} = makeInputs(cfg, shape, `many ${name} ${C} ${activation} ${target}`);
    for (const red of [REDUCTIONS[0], REDUCTIONS[4]]) {
      compare(name, {prediction, target: t, shape, activation, reduction: red.reduction, gradScale: red.gradScale(2)});
    }
  });

  /** Multi-chunk volumes (chunk = 16384 voxels; a partial last chunk per sample) against the reference. */
  it.each(LOSSES)('%s: [2, 20001, 3] softmax, and [2, 20001, 1] sigmoid (several chunks per sample)', (name) => {
    for (const cfg of [{C: 3, activation: 'softmax', target: 'Uint8'}, {C: 1, activation: 'sigmoid', target: 'Float32-binary'}] as Config[]) {
      const shape = [2, 20001, cfg.C];
      const {prediction, target} = makeInputs(cfg, shape, `chunks ${name} ${cfg.C}`);
      for (const red of [REDUCTIONS[0], REDUCTIONS[1], REDUCTIONS[4]]) {
        compare(name, {prediction, target, shape, activation: cfg.activation, reduction: red.reduction, gradScale: red.gradScale(2)});
      }
    }
  });

  it.each(LOSSES)('%s: many small samples [37, 2, 3, 4] (one chunk each), mean and none', (name) => {
    const cfg: Config = {C: 4, activation: 'softmax', target: 'Int32'};
    const shape = [37, 2, 3, 4];
    const {prediction, target} = makeInputs(cfg, shape, `small samples ${name}`);
    compare(name, {prediction, target, shape, activation: 'softmax', reduction: 'mean', gradScale: 3});
    compare(name, {prediction, target, shape, activation: 'softmax', reduction: 'none',
                   gradScale: Float64Array.from({length: 37}, (_, b) => b - 18)});
  });

  it.each(LOSSES)("%s: probabilities at and below WCE's 1e-7 clamp, and exactly 0 / 1 (activation 'none')", (name) => {
    // multi-class rows and a binary map, with p in {0, 1e-8, 1e-7, 1} on voxels of every class
    const pm = new Float32Array([0, 1, 0, 1e-8, 1 - 1e-8, 0, 1e-7, 0.5, 0.5 - 1e-7, 1, 0, 0, 0.2, 0.3, 0.5, 0, 0, 1]);
    const tm = new Uint8Array([0, 1, 2, 0, 0, 1]);
    compare(name, {prediction: pm, target: tm, shape: [1, 6, 3], gradScale: 0.7});
    const pb = new Float32Array([0, 1, 1e-8, 1e-7, 1 - 1e-7, 0.5, 1, 0]);
    const tb = new Uint8Array([1, 0, 1, 1, 0, 1, 1, 0]);
    compare(name, {prediction: pb, target: tb, shape: [2, 4, 1], reduction: 'none', gradScale: new Float64Array([0.7, -2])});
  });

  it.each(LOSSES)('%s: extreme logits (+-80 softmax, +-60 sigmoid)', (name) => {
    const x = new Float32Array([80, -80, 0, -80, 80, 80, 0, 0, 0, -80, -80, 80]);
    compare(name, {prediction: x, target: new Uint8Array([1, 0, 2, 2]), shape: [1, 4, 3], activation: 'softmax', gradScale: 0.7});
    const xs = new Float32Array([60, -60, 0, 30, -30, 60]);
    compare(name, {prediction: xs, target: new Float32Array([0, 1, 0.5, 1, 0, 1]), shape: [1, 6, 1], activation: 'sigmoid', gradScale: 0.7});
    compare(name, {prediction: x, target: new Uint8Array([1, 0, 2, 2]), shape: [1, 4, 3], activation: 'sigmoid', gradScale: 0.7});
  });

  it.each(LOSSES)('%s: every voxel masked -> loss 0 and an all-zero gradient', (name) => {
    const cfg: Config = {C: 3, activation: 'softmax', target: 'Uint8'};
    const shape = [2, 3, 3];
    const {prediction, target} = makeInputs(cfg, shape, `all masked ${name}`);
    for (const reduction of ['pooled', 'mean', 'sum', 'none'] as Reduction[]) {
      const r = compare(name, {prediction, target, shape, activation: 'softmax', reduction, mask: new Uint8Array(6), gradScale: 0.7});
      expect(r.loss).toBe(0);
      expect(r.gradient!.every((g) => g === 0)).toBe(true);
    }
  });

  test("dice: a class with zero denominator (p = 0 and absent, no smoothing) has d = 1 and no gradient", () => {
    const p = new Float32Array([0.7, 0.3, 0, 0.2, 0.8, 0, 0.6, 0.4, 0]);
    const t = new Uint8Array([0, 1, 0]);
    for (const extra of [{}, {jaccard: true}, {squared: true}]) {
      compare('dice', {prediction: p, target: t, shape: [1, 3, 3], smoothNumerator: 0, smoothDenominator: 0, gradScale: 0.7, ...extra} as AnyLossArgs);
    }
  });

  test('generalizedDice: Den = 0 (no foreground anywhere, background not counted, no smoothing) -> loss 0, zero gradient', () => {
    const r = compare('generalizedDice', {prediction: new Float32Array([0, 0, 0]), target: new Uint8Array(3), shape: [1, 3, 1],
                                          includeBackground: false, smoothNumerator: 0, smoothDenominator: 0});
    expect(r.loss).toBe(0);
    expect(r.gradient!.every((g) => g === 0)).toBe(true);
  });
});
