/**
 * The reference-comparison matrix shared by every backend's kernel tests:
 * seeded random inputs for each (C, activation, target kind), the shapes and
 * reductions of the main matrix, and every option of docs/losses.md section 2 on
 * a smaller set of configurations. `defineReferenceSuites` registers them
 * for one way of running a loss (the public API on the CPU in
 * kernels.test.ts, the CUDA kernels through the SIMT emulation in
 * cuda_emulated.test.ts).
 *
 * Tolerances: test/tolerances.ts (nativeLoss, nativeLosses, nativeGradient).
 */
import {reference, ReferenceArgs} from '../lib/reference';
import type {Activation, AnyLossArgs, LossName, LossResult, Reduction} from '../lib/types';
import {TOL, expectClose, mulberry32, seedOf} from './tolerances';

export const LOSSES: LossName[] = ['generalizedDice', 'dice', 'sensitivitySpecificity', 'weightedCrossEntropy'];
/** Runs one loss on one set of arguments. */
export type Runner = (name: LossName, a: AnyLossArgs) => LossResult;

// ---------------------------------------------------------------- inputs

/**
 * Target kinds: sparse class indices in each integer type and in a
 * Float32Array (C >= 2), the binary map's float r1 (C = 1: 0, 1 and soft
 * values), dense one-hot and dense soft (C >= 2).
 */
export type TargetKind = 'Uint8' | 'Uint16' | 'Int32' | 'Float32-sparse' | 'Float32-binary' | 'dense-onehot' | 'dense-soft';
/** Probabilities for activation 'none' with C >= 2: rows of a softmax, or independent values (multi-label style). */
type Probs = 'simplex' | 'independent';
export interface Config {
  C: number;
  activation: Activation;
  target: TargetKind;
  probs?: Probs;
}
export const cfgName = (c: Config) => `C=${c.C} ${c.activation}${c.probs === 'independent' ? '(independent)' : ''} ${c.target}`;

export function configs(): Config[] {
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
  // C = 4, 8, 12, 16 with labels and 'none': the CPU's row loops (native/cpu/passes.h)
  out.push({C: 4, activation: 'none', target: 'Uint8'}, {C: 8, activation: 'none', target: 'Int32'},
           {C: 12, activation: 'none', target: 'Uint16'}, {C: 16, activation: 'none', target: 'Uint8'});
  out.push({C: 3, activation: 'none', probs: 'independent', target: 'Uint8'});
  out.push({C: 3, activation: 'none', probs: 'independent', target: 'dense-soft'});
  return out;
}

/** Random prediction and target of `shape` for `cfg`, from `seed`. */
export function makeInputs(cfg: Config, shape: number[], seed: string): {prediction: Float32Array; target: AnyLossArgs['target']} {
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
export interface RedCase { name: string; reduction: Reduction; gradScale: (B: number) => number | Float64Array | Float32Array }
export const REDUCTIONS: RedCase[] = [
  {name: 'pooled', reduction: 'pooled', gradScale: () => 0.7},
  {name: 'mean', reduction: 'mean', gradScale: () => 0.7},
  {name: 'sum', reduction: 'sum', gradScale: () => -0.7},
  {name: 'none (gradScale 0.7)', reduction: 'none', gradScale: () => 0.7},
  {name: 'none (per-sample Float64Array)', reduction: 'none',
   gradScale: (B) => Float64Array.from({length: B}, (_, b) => [0.7, -1.3, 2.5][b % 3])},
];

/** Runs native and reference on `args` and compares loss, losses ('none') and gradient. */
export function compare(run: Runner, name: LossName, args: AnyLossArgs): LossResult {
  const got = run(name, args);
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


// ---------------------------------------------------------------- every option

/** Configurations the options run on: binary maps, multi-class, multi-label, each target family. */
export const OPT_CONFIGS: Config[] = [
  {C: 1, activation: 'none', target: 'Float32-binary'},
  {C: 1, activation: 'sigmoid', target: 'Uint8'},
  {C: 2, activation: 'softmax', target: 'Uint16'},
  {C: 3, activation: 'softmax', target: 'Uint8'},
  {C: 4, activation: 'none', target: 'dense-soft'},
  {C: 4, activation: 'sigmoid', target: 'Int32'},
  {C: 8, activation: 'none', target: 'Uint8'},
];
const OPT_SHAPE = (C: number) => [3, 5, 4, 3, C];

/** The value that marks an ignored voxel for a target kind, or null (dense targets have none). */
export function ignoreValue(kind: TargetKind): number | null {
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

const WEIGHTS = [0.5, 1.5, 3, 0.25, 2, 0.6, 1.3, 0.8];

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

/**
 * Registers the main matrix (loss x config x shape x reduction) and the
 * option matrix for `run`, named after `label`. `extraShapes` join the main
 * matrix with two reductions: 'pooled' and 'none' with a per-sample
 * gradScale (the others differ from these only on the host, in finalize).
 */
export function defineReferenceSuites(label: string, run: Runner,
                                      extraShapes: Array<[string, (C: number) => number[]]> = []): void {
  const MATRIX = [
    ...SHAPES.flatMap(([sname, shapeOf]) => REDUCTIONS.map((r) => [sname, r.name, shapeOf, r] as const)),
    ...extraShapes.flatMap(([sname, shapeOf]) =>
      [REDUCTIONS[0], REDUCTIONS[4]].map((r) => [sname, r.name, shapeOf, r] as const)),
  ];
  describe.each(LOSSES)(`%s: ${label} vs float64 reference`, (name) => {
    describe.each(configs().map((c) => [cfgName(c), c] as const))('%s', (cname, cfg) => {
      it.each(MATRIX)('%s, %s', (sname, rname, shapeOf, red) => {
        const shape = shapeOf(cfg.C);
        const {prediction, target} = makeInputs(cfg, shape, `${name} ${cname} ${sname}`);
        compare(run, name, {prediction, target, shape, activation: cfg.activation, reduction: red.reduction,
                       gradScale: red.gradScale(shape[0])});
      });
    });
  });

  describe.each(LOSSES)(`%s options: ${label} vs float64 reference`, (name) => {
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
        const got = compare(run, name, args);
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
}
