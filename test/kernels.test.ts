/**
 * The native kernels (through the public API, '../lib') against the float64
 * reference (lib/reference) on seeded random inputs: loss, per-sample losses
 * and gradient, with a non-unit upstream gradient (STYLE.md rule 11).
 *
 * The matrix: loss x (C, activation, target kind) x shape (1 voxel, an odd
 * 3x7x11x13 volume, batch 3) x reduction (pooled / mean / sum / none with a
 * scalar gradScale, none with a per-sample Float64Array). Then every option
 * of LOSSES.md section 2 on a smaller set of configurations, and the call
 * paths that must not change a bit: `gradient: false`, a caller buffer, the
 * Async twins.
 *
 * Tolerances: test/tolerances.ts (nativeLoss, nativeLosses, nativeGradient, samePath).
 */
import * as api from '../lib';
import {reference, ReferenceArgs} from '../lib/reference';
import type {Activation, AnyLossArgs, LossName, LossResult, Reduction} from '../lib/types';
import {TOL, expectBitIdentical, expectClose, mulberry32, seedOf} from './tolerances';

const LOSSES: LossName[] = ['generalizedDice', 'dice', 'sensitivitySpecificity', 'weightedCrossEntropy'];
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

// ---------------------------------------------------------------- inputs

/**
 * Target kinds: sparse class indices in each integer type and in a
 * Float32Array (C >= 2), the binary map's float r1 (C = 1: 0, 1 and soft
 * values), dense one-hot and dense soft (C >= 2).
 */
type TargetKind = 'Uint8' | 'Uint16' | 'Int32' | 'Float32-sparse' | 'Float32-binary' | 'dense-onehot' | 'dense-soft';
/** Probabilities for activation 'none' with C >= 2: rows of a softmax, or independent values (multi-label style). */
type Probs = 'simplex' | 'independent';
interface Config {
  C: number;
  activation: Activation;
  target: TargetKind;
  probs?: Probs;
}
const cfgName = (c: Config) => `C=${c.C} ${c.activation}${c.probs === 'independent' ? '(independent)' : ''} ${c.target}`;

function configs(): Config[] {
  const out: Config[] = [];
  for (const activation of ['none', 'sigmoid'] as Activation[]) {
    for (const target of ['Uint8', 'Uint16', 'Int32', 'Float32-binary'] as TargetKind[]) out.push({C: 1, activation, target});
  }
  for (const C of [2, 3, 5]) {
    for (const activation of ['none', 'softmax', 'sigmoid'] as Activation[]) {
      for (const target of ['Uint8', 'Uint16', 'Int32', 'Float32-sparse', 'dense-onehot', 'dense-soft'] as TargetKind[]) {
        out.push({C, activation, target});
      }
    }
  }
  out.push({C: 3, activation: 'none', probs: 'independent', target: 'Uint8'});
  out.push({C: 3, activation: 'none', probs: 'independent', target: 'dense-soft'});
  return out;
}

/** Random prediction and target of `shape` for `cfg`, from `seed`. */
function makeInputs(cfg: Config, shape: number[], seed: string): {prediction: Float32Array; target: AnyLossArgs['target']} {
  const rand = mulberry32(seedOf(seed));
  const {C} = cfg;
  const size = shape.reduce((p, d) => p * d, 1);
  const voxels = size / C;
  const x = new Float32Array(size);
  for (let v = 0; v < voxels; v++) {
    if (cfg.activation !== 'none') {
      for (let c = 0; c < C; c++) x[v * C + c] = 6 * (rand() - 0.5);
    } else if (C === 1 || cfg.probs === 'independent') {
      // away from 0 and 1: WCE's 1e-7 clamp and the [0, 1] check stay out of play
      for (let c = 0; c < C; c++) x[v * C + c] = 0.02 + 0.96 * rand();
    } else {
      const e: number[] = [];
      let s = 0;
      for (let c = 0; c < C; c++) { e.push(Math.exp(4 * (rand() - 0.5))); s += e[c]; }
      for (let c = 0; c < C; c++) x[v * C + c] = e[c] / s;
    }
  }
  const K = C === 1 ? 2 : C;
  const labels = new Int32Array(voxels);
  for (let v = 0; v < voxels; v++) labels[v] = Math.floor(rand() * K);
  let target: AnyLossArgs['target'];
  switch (cfg.target) {
    case 'Uint8': target = Uint8Array.from(labels); break;
    case 'Uint16': target = Uint16Array.from(labels); break;
    case 'Int32': target = labels; break;
    case 'Float32-sparse': target = Float32Array.from(labels); break;
    case 'Float32-binary': {
      const t = new Float32Array(voxels);
      for (let v = 0; v < voxels; v++) t[v] = rand() < 0.4 ? labels[v] : rand();
      target = t;
      break;
    }
    case 'dense-onehot': {
      const t = new Float32Array(size);
      for (let v = 0; v < voxels; v++) t[v * C + labels[v]] = 1;
      target = t;
      break;
    }
    case 'dense-soft': {
      const t = new Float32Array(size);
      for (let v = 0; v < voxels; v++) {
        if (cfg.activation === 'sigmoid' || cfg.probs === 'independent') {
          for (let c = 0; c < C; c++) t[v * C + c] = rand() < 0.3 ? Math.round(rand()) : rand();
        } else {
          const e: number[] = [];
          let s = 0;
          for (let c = 0; c < C; c++) { e.push(rand()); s += e[c]; }
          for (let c = 0; c < C; c++) t[v * C + c] = e[c] / s;
        }
      }
      target = t;
      break;
    }
  }
  return {prediction: x, target};
}

/** Reductions with their upstream gradient: a scalar 0.7, or one value per sample with 'none'. */
interface RedCase { name: string; reduction: Reduction; gradScale: (B: number) => number | Float64Array | Float32Array }
const REDUCTIONS: RedCase[] = [
  {name: 'pooled', reduction: 'pooled', gradScale: () => 0.7},
  {name: 'mean', reduction: 'mean', gradScale: () => 0.7},
  {name: 'sum', reduction: 'sum', gradScale: () => -0.7},
  {name: 'none (gradScale 0.7)', reduction: 'none', gradScale: () => 0.7},
  {name: 'none (per-sample Float64Array)', reduction: 'none',
   gradScale: (B) => Float64Array.from({length: B}, (_, b) => [0.7, -1.3, 2.5][b % 3])},
];

/** Runs native and reference on `args` and compares loss, losses ('none') and gradient. */
function compare(name: LossName, args: AnyLossArgs): LossResult {
  const got = SYNC[name](args);
  const {gradient: _g, device: _d, ...refArgs} = args;
  const want = reference(name, refArgs as ReferenceArgs);
  expectClose(got.loss, want.loss, TOL.nativeLoss, `${name} loss`);
  if ((args.reduction ?? 'pooled') === 'none') {
    expectClose(got.losses, want.losses, TOL.nativeLosses, `${name} losses`);
  } else if (got.losses !== undefined) {
    throw new Error(`${name}: losses returned with reduction '${args.reduction ?? 'pooled'}'`);
  }
  if (args.gradient !== false) expectClose(got.gradient, want.gradient, TOL.nativeGradient, `${name} gradient`);
  return got;
}

// ---------------------------------------------------------------- the main matrix

const SHAPES: Array<[string, (C: number) => number[]]> = [
  ['1 voxel [1,1,C]', (C) => [1, 1, C]],
  ['odd volume [1,3,7,11,13,C]', (C) => [1, 3, 7, 11, 13, C]],
  ['batch 3 [3,5,4,3,C]', (C) => [3, 5, 4, 3, C]],
];

const MATRIX = SHAPES.flatMap(([sname, shapeOf]) => REDUCTIONS.map((r) => [sname, r.name, shapeOf, r] as const));

describe.each(LOSSES)('%s: native vs float64 reference', (name) => {
  describe.each(configs().map((c) => [cfgName(c), c] as const))('%s', (cname, cfg) => {
    it.each(MATRIX)('%s, %s', (sname, rname, shapeOf, red) => {
      const shape = shapeOf(cfg.C);
      const {prediction, target} = makeInputs(cfg, shape, `${name} ${cname} ${sname}`);
      compare(name, {prediction, target, shape, activation: cfg.activation, reduction: red.reduction,
                     gradScale: red.gradScale(shape[0])});
    });
  });
});

// ---------------------------------------------------------------- every option

/** Configurations the options run on: binary maps, multi-class, multi-label, each target family. */
const OPT_CONFIGS: Config[] = [
  {C: 1, activation: 'none', target: 'Float32-binary'},
  {C: 1, activation: 'sigmoid', target: 'Uint8'},
  {C: 2, activation: 'softmax', target: 'Uint16'},
  {C: 3, activation: 'softmax', target: 'Uint8'},
  {C: 4, activation: 'none', target: 'dense-soft'},
  {C: 4, activation: 'sigmoid', target: 'Int32'},
];
const OPT_SHAPE = (C: number) => [3, 5, 4, 3, C];

/** The value that marks an ignored voxel for a target kind, or null (dense targets have none). */
function ignoreValue(kind: TargetKind): number | null {
  switch (kind) {
    case 'Uint8': return 255;
    case 'Uint16': return 65535;
    case 'Int32': return -1;
    case 'Float32-sparse': return -1;
    case 'Float32-binary': return -1;
    default: return null;
  }
}

/** Moves every voxel of the last class to class 0, so that class K-1 is absent (G = 0). */
function dropLastClass(cfg: Config, target: AnyLossArgs['target']): void {
  const C = cfg.C;
  if (cfg.target.startsWith('dense')) {
    for (let v = 0; v < target.length / C; v++) {
      target[v * C] += target[v * C + C - 1];
      target[v * C + C - 1] = 0;
    }
  } else if (C === 1) {
    target.fill(0); // binary map: no foreground at all
  } else {
    for (let v = 0; v < target.length; v++) if (target[v] === C - 1) target[v] = 0;
  }
}

interface Variant {
  name: string;
  /** Options to add (given the config's class count K). */
  options?: (K: number, cfg: Config) => Partial<AnyLossArgs> & Record<string, unknown>;
  /** Changes the inputs (ignore labels, absent classes) and returns extra options. */
  mutate?: (cfg: Config, t: AnyLossArgs['target'], rand: () => number, voxels: number) => Record<string, unknown>;
  /** The configurations the variant applies to (default: all). */
  applies?: (cfg: Config) => boolean;
}
const sparseOrBinary = (cfg: Config) => !cfg.target.startsWith('dense');

const WEIGHTS = [0.5, 1.5, 3, 0.25, 2];

const COMMON_VARIANTS: Variant[] = [
  {name: 'ignoreIndex on ~25% of voxels', applies: sparseOrBinary, mutate: (cfg, t, rand) => {
    const ig = ignoreValue(cfg.target)!;
    for (let v = 0; v < t.length; v++) if (rand() < 0.25) t[v] = ig;
    return {ignoreIndex: ig};
  }},
  {name: 'ignoreIndex 0 (a valid class label, or r1 = 0 on a binary float map)', applies: sparseOrBinary,
   options: () => ({ignoreIndex: 0})},
  {name: 'mask, sample 1 fully masked', mutate: (cfg, _t, rand, voxels) => {
    const V = voxels / 3;
    const mask = new Uint8Array(voxels);
    for (let v = 0; v < voxels; v++) mask[v] = rand() < 0.3 ? 0 : 1 + Math.floor(rand() * 200);
    mask.fill(0, V, 2 * V);
    return {mask};
  }},
  {name: 'includeBackground false', options: () => ({includeBackground: false})},
  {name: 'includeBackground true', options: () => ({includeBackground: true})},
  {name: 'mask + ignoreIndex + includeBackground false', mutate: (cfg, t, rand, voxels) => {
    const mask = new Uint8Array(voxels);
    for (let v = 0; v < voxels; v++) mask[v] = rand() < 0.2 ? 0 : 1;
    const ig = ignoreValue(cfg.target);
    const extra: Record<string, unknown> = {mask, includeBackground: false};
    if (ig !== null) {
      for (let v = 0; v < t.length; v++) if (rand() < 0.2) t[v] = ig;
      extra.ignoreIndex = ig;
    }
    return extra;
  }},
];

const absent: Variant['mutate'] = (cfg, t) => { dropLastClass(cfg, t); return {}; };

const LOSS_VARIANTS: Record<LossName, Variant[]> = {
  generalizedDice: [
    {name: "weighting 'square' (default)", options: () => ({weighting: 'square'})},
    {name: "weighting 'simple'", options: () => ({weighting: 'simple'})},
    {name: "weighting 'uniform'", options: () => ({weighting: 'uniform'})},
    {name: "weighting 'square', absent class", options: () => ({weighting: 'square'}), mutate: absent},
    {name: "weighting 'simple', absent class", options: () => ({weighting: 'simple'}), mutate: absent},
    {name: "weighting 'uniform', absent class", options: () => ({weighting: 'uniform'}), mutate: absent},
    {name: 'no smoothing (sNr = sDr = 0)', options: () => ({smoothNumerator: 0, smoothDenominator: 0})},
    {name: 'smoothing sNr = 1, sDr = 2', options: () => ({smoothNumerator: 1, smoothDenominator: 2})},
    {name: 'denominatorFloor 1, NiftyNet (sNr = sDr = 0)',
     options: () => ({denominatorFloor: 1, smoothNumerator: 0, smoothDenominator: 0})},
    {name: 'denominatorFloor 30 (active for some classes)', options: () => ({denominatorFloor: 30})},
    {name: 'denominatorFloor 1e4 (active for every class)', options: () => ({denominatorFloor: 1e4})},
  ],
  dice: [
    {name: 'squared', options: () => ({squared: true})},
    {name: 'jaccard', options: () => ({jaccard: true})},
    {name: 'squared + jaccard', options: () => ({squared: true, jaccard: true})},
    {name: 'classWeights (Array)', options: (K) => ({classWeights: WEIGHTS.slice(0, K)})},
    {name: 'classWeights (Float32Array), includeBackground false',
     options: (K) => ({classWeights: Float32Array.from(WEIGHTS.slice(0, K)), includeBackground: false})},
    {name: 'classWeights with a zero entry', options: (K) => ({classWeights: [0, ...WEIGHTS.slice(1, K)]})},
    {name: 'no smoothing (sNr = sDr = 0)', options: () => ({smoothNumerator: 0, smoothDenominator: 0})},
    {name: "the paper's DL2 (sNr = 2e, sDr = e, e = 0.1)", options: () => ({smoothNumerator: 0.2, smoothDenominator: 0.1})},
    {name: 'absent class', mutate: absent},
    {name: 'absent class, jaccard, no smoothing',
     options: () => ({jaccard: true, smoothNumerator: 0, smoothDenominator: 0}), mutate: absent},
  ],
  sensitivitySpecificity: [
    {name: 'lambda 0', options: () => ({lambda: 0})},
    {name: 'lambda 0.5', options: () => ({lambda: 0.5})},
    {name: 'lambda 1', options: () => ({lambda: 1})},
    {name: 'epsilon 1e-2', options: () => ({epsilon: 1e-2})},
    {name: "classReduction 'sum'", options: () => ({classReduction: 'sum'})},
    {name: "NiftyNet (includeBackground true, classReduction 'sum')",
     options: () => ({includeBackground: true, classReduction: 'sum'})},
    {name: 'absent class', options: () => ({includeBackground: true}), mutate: absent},
  ],
  weightedCrossEntropy: [
    {name: "classWeights 'inverse-frequency'", options: () => ({classWeights: 'inverse-frequency'})},
    {name: "classWeights 'paper'", options: () => ({classWeights: 'paper'})},
    {name: 'classWeights array', options: (K) => ({classWeights: WEIGHTS.slice(0, K)})},
    {name: 'classWeights Float64Array, includeBackground false',
     options: (K) => ({classWeights: Float64Array.from(WEIGHTS.slice(0, K)), includeBackground: false})},
    {name: "'inverse-frequency', absent class", mutate: absent},
    {name: "'paper', includeBackground false", options: () => ({classWeights: 'paper', includeBackground: false})},
  ],
};

describe.each(LOSSES)('%s options: native vs float64 reference', (name) => {
  const variants = [...COMMON_VARIANTS, ...LOSS_VARIANTS[name]];
  describe.each(variants.map((v) => [v.name, v] as const))('%s', (vname, variant) => {
    const rows = OPT_CONFIGS.filter((cfg) => variant.applies?.(cfg) ?? true)
      .flatMap((cfg) => REDUCTIONS.map((r) => [cfgName(cfg), r.name, cfg, r] as const));
    it.each(rows)('%s, %s', (cname, rname, cfg, red) => {
      const shape = OPT_SHAPE(cfg.C);
      const seed = `${name} ${vname} ${cname} ${rname}`;
      const {prediction, target} = makeInputs(cfg, shape, seed);
      const K = cfg.C === 1 ? 2 : cfg.C;
      const voxels = prediction.length / cfg.C;
      const extra = variant.mutate?.(cfg, target, mulberry32(seedOf(seed + ' mutate')), voxels) ?? {};
      const args = {prediction, target, shape, activation: cfg.activation, reduction: red.reduction,
                    gradScale: red.gradScale(shape[0]), ...(variant.options?.(K, cfg) ?? {}), ...extra} as AnyLossArgs;
      const got = compare(name, args);
      // ignored and masked voxels: exactly zero gradient in every channel
      const C = cfg.C;
      for (let v = 0; v < voxels; v++) {
        const masked = args.mask !== undefined && args.mask[v] === 0;
        const ignored = args.ignoreIndex !== undefined && !cfg.target.startsWith('dense') && target[v] === args.ignoreIndex;
        if (!masked && !ignored) continue;
        for (let c = 0; c < C; c++) {
          if (got.gradient![v * C + c] !== 0) {
            throw new Error(`gradient of ignored voxel ${v}, channel ${c} is ${got.gradient![v * C + c]}, expected 0`);
          }
        }
      }
    });
  });
});

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
  /** Many classes: the CPU keeps per-voxel scratch on the stack up to 16 classes and per-chunk sums up to 64 doubles. */
  const MANY = [13, 17, 33];
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
