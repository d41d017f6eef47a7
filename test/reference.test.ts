/**
 * Checks of the float64 reference (lib/reference) against itself and against
 * docs/losses.md: central finite differences of `reference(...).losses` against
 * `reference(...).gradient` for every loss x activation x target kind x
 * reduction and every option, plus identities the contract implies (binary map
 * == two explicit channels, sparse == one-hot dense, ignoreIndex == mask,
 * DL2 == dice with sNr = 2e / sDr = e, the paper's two-class GDL gradient, ...).
 *
 * Tolerances (one table, with reasons):
 */
import {reference, ReferenceArgs, ReferenceResult} from '../lib/reference';
import {mulberry32} from '../lib/reference/random';
import type {Activation, LossName, Reduction} from '../lib/types';

const TOL = {
  /**
   * Central differences in float64 with step h = 1e-6: the truncation error is
   * h^2/6 |f'''| ~ 1.7e-13 |f'''| (|f'''| stays below ~1e4 here, since
   * probabilities are kept in [0.05, 0.95] and group counts are >= 12), the
   * rounding error is ~ 2 eps |F| / (2h) ~ 2.2e-10 |F| with |F| <= ~50
   * (WCE inverse-frequency weights reach ~23). So the absolute error is below
   * ~1e-8; we allow 1e-8 absolute plus 1e-6 of the largest gradient entry.
   */
  fdAbs: 1e-8,
  fdRel: 1e-6,
  /** Identities between two float64 evaluations of the same sums in another order: rounding only. */
  same: 1e-12,
};
const H = 1e-6;
const LOSSES: LossName[] = ['generalizedDice', 'dice', 'sensitivitySpecificity', 'weightedCrossEntropy'];
const REDUCTIONS: Reduction[] = ['pooled', 'mean', 'sum', 'none'];

// ---------------------------------------------------------------- random inputs

const rng = mulberry32;
function seedOf(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

type Kind = 'sparse' | 'dense' | 'binarySparse' | 'binaryFloat';
interface Config { C: number; activation: Activation; kind: Kind }

/** Every activation x target kind the contract allows (softmax needs C >= 2; binary maps are C = 1). */
const CONFIGS: Config[] = [
  {C: 1, activation: 'none', kind: 'binarySparse'},
  {C: 1, activation: 'none', kind: 'binaryFloat'},
  {C: 1, activation: 'sigmoid', kind: 'binarySparse'},
  {C: 1, activation: 'sigmoid', kind: 'binaryFloat'},
  {C: 2, activation: 'none', kind: 'sparse'},
  {C: 3, activation: 'none', kind: 'sparse'},
  {C: 3, activation: 'none', kind: 'dense'},
  {C: 2, activation: 'softmax', kind: 'sparse'},
  {C: 3, activation: 'softmax', kind: 'sparse'},
  {C: 3, activation: 'softmax', kind: 'dense'},
  {C: 2, activation: 'sigmoid', kind: 'dense'},
  {C: 3, activation: 'sigmoid', kind: 'sparse'},
  {C: 3, activation: 'sigmoid', kind: 'dense'},
];
const label = (c: Config) => `C=${c.C} ${c.activation} ${c.kind}`;

const B = 2, S = [3, 4];
const V = S[0] * S[1];
const IGNORE = 255;

interface MakeOptions { masked?: boolean; seed?: string }

/**
 * Random inputs of shape [2, 3, 4, C]. Probabilities for activation 'none'
 * stay in [0.05, 0.95] (away from the 1e-7 clamp and from 0/1); multi-class
 * 'none' rows are a softmax of logits in [-1, 1], so they sum to 1. Sparse
 * targets use every class of the config. `masked` adds a mask (and, for
 * sparse or binary targets, ignoreIndex 255 on other voxels).
 */
function makeArgs(cfg: Config, opt: MakeOptions = {}): ReferenceArgs {
  const rand = rng(seedOf(label(cfg) + (opt.seed ?? '') + (opt.masked ? 'm' : '')));
  const {C, activation, kind} = cfg;
  const n = B * V;
  const x = new Float64Array(n * C);
  for (let v = 0; v < n; v++) {
    if (activation !== 'none') {
      for (let c = 0; c < C; c++) x[v * C + c] = 3 * (rand() - 0.5);
    } else if (C === 1) {
      x[v] = 0.05 + 0.9 * rand();
    } else {
      let s = 0;
      const e: number[] = [];
      for (let c = 0; c < C; c++) { e.push(Math.exp(2 * rand() - 1)); s += e[c]; }
      for (let c = 0; c < C; c++) x[v * C + c] = e[c] / s;
    }
  }
  let target: ReferenceArgs['target'];
  if (kind === 'sparse') {
    const t = new Uint8Array(n);
    for (let v = 0; v < n; v++) t[v] = v % C === 0 ? 0 : Math.floor(rand() * C); // every class appears
    for (let v = 0; v < C; v++) t[v * 5] = v;
    target = t;
  } else if (kind === 'dense') {
    const t = new Float32Array(n * C);
    for (let v = 0; v < n; v++) {
      if (activation === 'sigmoid') {
        for (let c = 0; c < C; c++) t[v * C + c] = rand() < 0.3 ? Math.round(rand()) : rand();
      } else if (rand() < 0.5) {
        t[v * C + Math.floor(rand() * C)] = 1; // one-hot
      } else {
        let s = 0;
        const e: number[] = [];
        for (let c = 0; c < C; c++) { e.push(rand()); s += e[c]; }
        for (let c = 0; c < C; c++) t[v * C + c] = e[c] / s; // soft
      }
    }
    target = t;
  } else if (kind === 'binarySparse') {
    const t = new Uint8Array(n);
    for (let v = 0; v < n; v++) t[v] = rand() < 0.35 ? 1 : 0;
    t[0] = 1; t[V] = 1; t[1] = 0; t[V + 1] = 0;
    target = t;
  } else {
    const t = new Float32Array(n);
    for (let v = 0; v < n; v++) t[v] = rand() < 0.3 ? Math.round(rand()) : rand();
    target = t;
  }
  const args: ReferenceArgs = {prediction: x, target, shape: [B, ...S, C], activation};
  if (opt.masked) {
    const mask = new Uint8Array(n).fill(1);
    for (let v = 0; v < n; v++) if (rand() < 0.2) mask[v] = 0;
    mask[2] = 0; mask[V + 3] = 0;
    args.mask = mask;
    if (kind !== 'dense') {
      const t = target as Uint8Array | Float32Array;
      t[4] = IGNORE; t[V + 5] = IGNORE; t[7] = IGNORE;
      args.ignoreIndex = IGNORE;
    }
  }
  return args;
}

// ---------------------------------------------------------------- finite differences

/** The function whose gradient `reference(...).gradient` is: gradScale times the reduced losses. */
function objective(res: ReferenceResult, args: ReferenceArgs): number {
  const reduction = args.reduction ?? 'pooled';
  const gs = args.gradScale ?? 1;
  let f = 0;
  for (let b = 0; b < res.losses.length; b++) {
    const s = typeof gs === 'number' ? gs : gs[b];
    f += s * res.losses[b];
  }
  return reduction === 'mean' ? f / res.losses.length : f;
}

/** The reduction of `losses` that `loss` must equal. */
function reduced(losses: Float64Array, reduction: Reduction): number {
  if (reduction === 'pooled') return losses[0];
  let s = 0;
  for (const l of losses) s += l;
  return reduction === 'sum' ? s : s / losses.length;
}

/** Central differences of `objective` in every prediction entry. */
function finiteDifferences(name: LossName, args: ReferenceArgs, f = (a: ReferenceArgs) => objective(reference(name, a), a)): Float64Array {
  const x = args.prediction as Float64Array;
  const fd = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xp = x.slice(), xm = x.slice();
    xp[i] += H;
    xm[i] -= H;
    fd[i] = (f({...args, prediction: xp}) - f({...args, prediction: xm})) / (2 * H);
  }
  return fd;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Expects `got` to match `want` within abs + rel * ||want||_inf, printing the count and first bad entries. */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, abs: number, rel: number, what: string): void {
  expect(got.length).toBe(want.length);
  const tol = abs + rel * maxAbs(want);
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol)) {
      count++;
      if (bad.length < 5) bad.push(`[${i}] got ${got[i]} want ${want[i]}`);
    }
  }
  if (count > 0) throw new Error(`${what}: ${count} of ${want.length} entries off by more than ${tol}: ${bad.join(', ')}`);
}

/** Runs the loss, checks `loss` against `losses`, and checks the gradient against central differences. */
function checkGradient(name: LossName, args: ReferenceArgs, what: string): ReferenceResult {
  const res = reference(name, args);
  const reduction = args.reduction ?? 'pooled';
  expect(res.losses.length).toBe(reduction === 'pooled' ? 1 : B);
  expect(Math.abs(res.loss - reduced(res.losses, reduction))).toBeLessThanOrEqual(TOL.same);
  for (const l of res.losses) expect(Number.isFinite(l)).toBe(true);
  const fd = finiteDifferences(name, args);
  expectClose(res.gradient, fd, TOL.fdAbs, TOL.fdRel, `${what}: gradient vs central differences`);
  return res;
}

/** Scalar gradScale for most reductions; one value per sample (one negative) for 'none' half of the time. */
function withReduction(args: ReferenceArgs, reduction: Reduction, perSample = true): ReferenceArgs {
  const gradScale = reduction === 'none' && perSample ? new Float64Array([0.7, -1.3]) : 0.7;
  return {...args, reduction, gradScale};
}

// ---------------------------------------------------------------- FD: defaults, every combination

describe('finite differences, default options', () => {
  for (const name of LOSSES) {
    for (const cfg of CONFIGS) {
      it(`${name} ${label(cfg)}, every reduction`, () => {
        for (const reduction of REDUCTIONS) {
          const args = withReduction(makeArgs(cfg), reduction);
          const res = checkGradient(name, args, `${name} ${label(cfg)} ${reduction}`);
          expect(maxAbs(res.gradient)).toBeGreaterThan(1e-4); // not trivially zero
        }
        // 'none' with a scalar gradScale: s * d(sum_b losses[b]) / dx
        checkGradient(name, withReduction(makeArgs(cfg), 'none', false), `${name} ${label(cfg)} none scalar`);
      });
    }
  }
});

describe('finite differences, ignoreIndex and mask', () => {
  for (const name of LOSSES) {
    for (const cfg of CONFIGS) {
      it(`${name} ${label(cfg)}`, () => {
        for (const reduction of ['pooled', 'none'] as Reduction[]) {
          const args = withReduction(makeArgs(cfg, {masked: true}), reduction);
          const res = checkGradient(name, args, `${name} ${label(cfg)} masked ${reduction}`);
          // ignored voxels: zero gradient in all channels
          const t = args.target;
          for (let v = 0; v < B * V; v++) {
            const ignored = args.mask![v] === 0 || (args.ignoreIndex !== undefined && t[v] === args.ignoreIndex);
            if (!ignored) continue;
            for (let c = 0; c < cfg.C; c++) expect(res.gradient[v * cfg.C + c]).toBe(0);
          }
        }
      });
    }
  }
});

// ---------------------------------------------------------------- FD: every option

/** A few configs that cover the class-space paths: binary map, multi-class, multi-label. */
const OPTION_CONFIGS: Config[] = [
  {C: 1, activation: 'sigmoid', kind: 'binaryFloat'},
  {C: 1, activation: 'none', kind: 'binarySparse'},
  {C: 3, activation: 'softmax', kind: 'sparse'},
  {C: 3, activation: 'none', kind: 'dense'},
  {C: 3, activation: 'sigmoid', kind: 'sparse'},
];

const OPTIONS: Array<[LossName, string, Partial<ReferenceArgs>]> = [
  ['generalizedDice', 'weighting simple', {weighting: 'simple'}],
  ['generalizedDice', 'weighting uniform', {weighting: 'uniform'}],
  ['generalizedDice', 'sNr = sDr = 0', {smoothNumerator: 0, smoothDenominator: 0}],
  ['generalizedDice', 'sNr = 0.5, sDr = 0.25', {smoothNumerator: 0.5, smoothDenominator: 0.25}],
  ['generalizedDice', 'includeBackground false', {includeBackground: false}],
  ['generalizedDice', 'floor above every S_l', {denominatorFloor: 1000}],
  ['dice', 'squared', {squared: true}],
  ['dice', 'jaccard', {jaccard: true}],
  ['dice', 'squared jaccard', {squared: true, jaccard: true}],
  ['dice', 'sNr = sDr = 0', {smoothNumerator: 0, smoothDenominator: 0}],
  ['dice', 'includeBackground false', {includeBackground: false}],
  ['sensitivitySpecificity', 'lambda 0.7', {lambda: 0.7}],
  ['sensitivitySpecificity', 'epsilon 0.1', {epsilon: 0.1}],
  ['sensitivitySpecificity', 'classReduction sum, includeBackground true', {classReduction: 'sum', includeBackground: true}],
  ['sensitivitySpecificity', 'lambda 1', {lambda: 1}],
  ['sensitivitySpecificity', 'lambda 0', {lambda: 0}],
  ['weightedCrossEntropy', 'includeBackground false', {includeBackground: false}],
];

describe('finite differences, options', () => {
  for (const [name, what, extra] of OPTIONS) {
    for (const cfg of OPTION_CONFIGS) {
      it(`${name} ${what}, ${label(cfg)}`, () => {
        for (const reduction of ['pooled', 'mean', 'none'] as Reduction[]) {
          const args = withReduction({...makeArgs(cfg, {seed: what}), ...extra}, reduction);
          const res = checkGradient(name, args, `${name} ${what} ${label(cfg)} ${reduction}`);
          if (extra.denominatorFloor === undefined) expect(maxAbs(res.gradient)).toBeGreaterThan(1e-5);
        }
      });
    }
  }

  /** classWeights arrays: K entries (2 on a binary map), one of them 0. */
  for (const cfg of OPTION_CONFIGS) {
    const K = cfg.C === 1 ? 2 : cfg.C;
    const cw = K === 2 ? [0.3, 2] : [0.5, 0, 2.5];
    for (const name of ['dice', 'weightedCrossEntropy'] as LossName[]) {
      it(`${name} classWeights [${cw}], ${label(cfg)}`, () => {
        for (const reduction of ['pooled', 'sum', 'none'] as Reduction[]) {
          for (const includeBackground of [true, false]) {
            const args = withReduction({...makeArgs(cfg, {seed: 'cw'}), classWeights: cw, includeBackground}, reduction);
            checkGradient(name, args, `${name} classWeights ${label(cfg)} ${reduction} bg=${includeBackground}`);
          }
        }
      });
    }
  }
});

// ---------------------------------------------------------------- FD: GDL floor with both branches

/** Class probabilities in class space (binary map: [1 - p, p]), written here independently of lib/reference. */
function classProbs(args: ReferenceArgs): {p: Float64Array; K: number} {
  const C = args.shape[args.shape.length - 1];
  const x = args.prediction;
  const n = x.length / C;
  const K = C === 1 ? 2 : C;
  const p = new Float64Array(n * K);
  const sig = (z: number) => 1 / (1 + Math.exp(-z));
  for (let v = 0; v < n; v++) {
    if (C === 1) {
      const p1 = args.activation === 'sigmoid' ? sig(x[v]) : x[v];
      p[2 * v] = 1 - p1;
      p[2 * v + 1] = p1;
    } else if (args.activation === 'softmax') {
      let s = 0;
      for (let c = 0; c < C; c++) s += Math.exp(x[v * C + c]);
      for (let c = 0; c < C; c++) p[v * C + c] = Math.exp(x[v * C + c]) / s;
    } else {
      for (let c = 0; c < C; c++) p[v * C + c] = args.activation === 'sigmoid' ? sig(x[v * C + c]) : x[v * C + c];
    }
  }
  return {p, K};
}

/** Class targets in class space, no ignored voxels. */
function classTargets(args: ReferenceArgs): Float64Array {
  const C = args.shape[args.shape.length - 1];
  const n = args.prediction.length / C;
  const K = C === 1 ? 2 : C;
  const r = new Float64Array(n * K);
  const t = args.target;
  for (let v = 0; v < n; v++) {
    if (C === 1) { r[2 * v + 1] = t[v]; r[2 * v] = 1 - t[v]; }
    else if (t.length === n * C) for (let c = 0; c < C; c++) r[v * C + c] = t[v * C + c];
    else r[v * C + t[v]] = 1;
  }
  return r;
}

describe('GDL denominatorFloor with S_l on both sides of the floor', () => {
  for (const cfg of [{C: 3, activation: 'none', kind: 'dense'}, {C: 3, activation: 'softmax', kind: 'sparse'},
    {C: 1, activation: 'sigmoid', kind: 'binaryFloat'}] as Config[]) {
    it(label(cfg), () => {
      for (const reduction of ['pooled', 'mean'] as Reduction[]) {
        const base = withReduction(makeArgs(cfg, {seed: 'floor'}), reduction);
        const {p, K} = classProbs(base);
        const r = classTargets(base);
        const groups = reduction === 'pooled' ? [[0, B * V]] : [[0, V], [V, 2 * V]];
        const sl: number[] = [];
        for (const [a, e] of groups) {
          for (let l = 0; l < K; l++) {
            let s = 0;
            for (let v = a; v < e; v++) s += p[v * K + l] + r[v * K + l];
            sl.push(s);
          }
        }
        sl.sort((a, b) => a - b);
        // the floor sits in the middle of the widest gap: some S_l below it, some above, none near it
        let best = 0;
        for (let i = 1; i < sl.length; i++) if (sl[i] - sl[i - 1] > sl[best + 1] - sl[best]) best = i - 1;
        const floor = (sl[best] + sl[best + 1]) / 2;
        expect(sl[best + 1] - sl[best]).toBeGreaterThan(0.1);
        checkGradient('generalizedDice', {...base, denominatorFloor: floor}, `GDL floor ${floor} ${label(cfg)} ${reduction}`);
        const a = reference('generalizedDice', {...base, denominatorFloor: floor});
        const b0 = reference('generalizedDice', base);
        expect(a.loss).not.toBeCloseTo(b0.loss, 6); // the floor changed something
      }
    });
  }

  it('at a tie S_l = floor the gradient counts the Num term (the derivative from above, as NiftyNet)', () => {
    // C = 2, 'none', exact binary fractions so that S_1 = P_1 + G_1 = 2 + 2 = 4 exactly.
    const prediction = new Float64Array([0.5, 0.5, 0.25, 0.75, 0.75, 0.25, 0.5, 0.5]);
    const target = new Uint8Array([1, 1, 0, 0]);
    const args: ReferenceArgs = {prediction, target, shape: [1, 4, 2], denominatorFloor: 4.5, smoothNumerator: 0, smoothDenominator: 0};
    // S_0 = P_0 + G_0 = 2 + 2 = 4 and S_1 = 4: with floor 4 both classes sit exactly on the floor.
    const tie: ReferenceArgs = {...args, denominatorFloor: 4};
    const res = reference('generalizedDice', tie);
    // one-sided differences from above in each channel: S_l rises above the floor, so d max/dS = 1
    const f = (a: ReferenceArgs) => reference('generalizedDice', a).loss;
    for (let i = 0; i < prediction.length; i++) {
      const xp = prediction.slice();
      xp[i] += 1e-7;
      const fwd = (f({...tie, prediction: xp}) - f(tie)) / 1e-7;
      expect(Math.abs(fwd - res.gradient[i])).toBeLessThan(1e-5);
    }
    // and from below (floor above every S_l) the Num term is absent: the gradients differ
    const below = reference('generalizedDice', args);
    expect(Math.abs(below.gradient[0] - res.gradient[0])).toBeGreaterThan(1e-3);
  });
});

// ---------------------------------------------------------------- FD: WCE 'paper' weights

/**
 * 'paper' weights are computed from the predictions but held constant in the
 * gradient (docs/losses.md), so plain finite differences of the 'paper' loss would
 * include the weights' own derivative. Instead: freeze each group's weights
 * (computed here independently from the class probabilities), check that the
 * 'paper' losses equal array-weight losses with the frozen weights, and check
 * the 'paper' gradient against finite differences of the frozen-weight loss.
 */
describe("WCE 'paper' weights, frozen for finite differences", () => {
  for (const cfg of [...OPTION_CONFIGS, {C: 3, activation: 'softmax', kind: 'dense'} as Config]) {
    it(label(cfg), () => {
      for (const reduction of ['pooled', 'mean', 'none'] as Reduction[]) {
        for (const masked of [false, true]) {
          const args = withReduction({...makeArgs(cfg, {seed: 'paper', masked}), classWeights: 'paper'}, reduction);
          const {p, K} = classProbs(args);
          const multiLabel = cfg.activation === 'sigmoid' && cfg.C >= 2;
          const groups = reduction === 'pooled' ? [[0, B * V]] : [[0, V], [V, 2 * V]];
          const kept = (v: number) => (args.mask === undefined || args.mask[v] !== 0) &&
            (args.ignoreIndex === undefined || args.target[v] !== args.ignoreIndex);
          const frozen = groups.map(([a, e]) => {
            let N = 0;
            const P = new Float64Array(K);
            for (let v = a; v < e; v++) {
              if (!kept(v)) continue;
              N++;
              for (let l = 0; l < K; l++) P[l] += p[v * K + l];
            }
            return Array.from(P, (Pl, l) => (l === 0 && !multiLabel ? 1 : Pl === 0 ? 0 : (N - Pl) / Pl));
          });
          const res = reference('weightedCrossEntropy', args);
          // the same sample-by-sample with frozen array weights: sample b alone, pooled
          const slice = (xx: Float64Array, b: number, gi: number): ReferenceArgs => {
            const [a, e] = groups[gi];
            const C = cfg.C;
            const sub: ReferenceArgs = {
              ...args,
              prediction: xx.slice(a * C, e * C),
              target: args.target.length === B * V ? args.target.slice(a, e) : args.target.slice(a * C, e * C),
              mask: args.mask?.slice(a, e),
              shape: [(e - a) / V, ...S, C],
              reduction: 'pooled',
              classWeights: frozen[gi],
              gradScale: 1,
            };
            return sub;
          };
          groups.forEach((_, gi) => {
            const frozenLoss = reference('weightedCrossEntropy', slice(args.prediction as Float64Array, gi, gi)).loss;
            expect(Math.abs(res.losses[gi] - frozenLoss)).toBeLessThanOrEqual(TOL.same);
          });
          const f = (a: ReferenceArgs) => {
            const gs = a.gradScale ?? 1;
            let total = 0;
            groups.forEach((_, gi) => {
              const s = typeof gs === 'number' ? gs : gs[gi];
              total += s * reference('weightedCrossEntropy', slice(a.prediction as Float64Array, gi, gi)).loss;
            });
            return reduction === 'mean' ? total / B : total;
          };
          const fd = finiteDifferences('weightedCrossEntropy', args, f);
          expectClose(res.gradient, fd, TOL.fdAbs, TOL.fdRel, `WCE paper ${label(cfg)} ${reduction}`);
        }
      }
    });
  }

  it("binary map, hand example: w1 = (N - sum p) / sum p", () => {
    // p = .8 .6 .2 .4, r = 1 0 0 1: sum p = 2, N = 4, w1 = (4 - 2)/2 = 1, w0 = 1.
    // loss = -(1/4)[log .8 + log .4 + log .8 + log .4] = -(1/2)(log .8 + log .4)
    const res = reference('weightedCrossEntropy', {prediction: new Float64Array([0.8, 0.6, 0.2, 0.4]),
      target: new Uint8Array([1, 0, 0, 1]), shape: [1, 4, 1], classWeights: 'paper'});
    expect(res.loss).toBeCloseTo(-0.5 * (Math.log(0.8) + Math.log(0.4)), 14);
    // gradient: -(1/4)(w1 r / p) + (1/4)(w0 (1 - r)/(1 - p))
    const want = [-0.25 / 0.8, 0.25 / 0.4, 0.25 / 0.8, -0.25 / 0.4];
    for (let i = 0; i < 4; i++) expect(res.gradient[i]).toBeCloseTo(want[i], 14);
  });
});

// ---------------------------------------------------------------- identities from the contract

describe('identities', () => {
  it("paper's two-class GDL gradient: -0.2339 on foreground, +0.1392 on background", () => {
    const res = reference('generalizedDice', {prediction: new Float32Array([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15]),
      target: new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]), shape: [1, 8, 1], smoothNumerator: 0, smoothDenominator: 0});
    for (let i = 0; i < 8; i++) expect(res.gradient[i]).toBeCloseTo(i < 2 ? -0.2339 : 0.1392, 4);
  });

  it("binary GDL with sNr = sDr = 0 matches the paper's closed-form gradient (docs/losses.md sign)", () => {
    for (const cfg of [CONFIGS[0], CONFIGS[1]]) {
      const args = makeArgs(cfg, {seed: 'closed'});
      const x = args.prediction, t = args.target;
      const N = x.length;
      let G1 = 0, spr = 0, sppr = 0;
      for (let i = 0; i < N; i++) { G1 += t[i]; spr += x[i] * t[i]; sppr += x[i] + t[i]; }
      const w1 = 1 / (G1 * G1), w2 = 1 / ((N - G1) * (N - G1));
      const res = reference('generalizedDice', {...args, smoothNumerator: 0, smoothDenominator: 0});
      const den = (w1 - w2) * sppr + 2 * N * w2;
      for (let i = 0; i < N; i++) {
        const ri = t[i];
        const want = 2 * ((w1 * w1 - w2 * w2) * (spr - ri * sppr) + N * w2 * (w1 + w2) * (1 - 2 * ri)) / (den * den);
        expect(Math.abs(res.gradient[i] - want)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want)));
      }
    }
  });

  it("the paper's DL2 with epsilon e is dice on a binary map with sNr = 2e, sDr = e", () => {
    const e = 0.01;
    for (const cfg of [CONFIGS[0], CONFIGS[1]]) {
      const args = makeArgs(cfg, {seed: 'dl2'});
      const p = args.prediction, r = args.target;
      let a = 0, b = 0, c = 0, d = 0;
      for (let i = 0; i < p.length; i++) {
        a += p[i] * r[i]; b += p[i] + r[i]; c += (1 - p[i]) * (1 - r[i]); d += 2 - p[i] - r[i];
      }
      const dl2 = 1 - (a + e) / (b + e) - (c + e) / (d + e);
      const res = reference('dice', {...args, smoothNumerator: 2 * e, smoothDenominator: e});
      expect(Math.abs(res.loss - dl2)).toBeLessThanOrEqual(TOL.same);
    }
  });

  it("the paper's SS on a binary map (foreground only by default)", () => {
    const args = makeArgs(CONFIGS[1], {seed: 'ss'});
    const p = args.prediction, r = args.target;
    let num1 = 0, num2 = 0, G = 0;
    for (let i = 0; i < p.length; i++) {
      num1 += (r[i] - p[i]) ** 2 * r[i]; num2 += (r[i] - p[i]) ** 2 * (1 - r[i]); G += r[i];
    }
    const ss = 0.05 * num1 / (G + 1e-5) + 0.95 * num2 / (p.length - G + 1e-5);
    expect(Math.abs(reference('sensitivitySpecificity', args).loss - ss)).toBeLessThanOrEqual(TOL.same);
  });

  it("the paper's two-class WCE on a binary map with inverse-frequency weights", () => {
    const args = makeArgs(CONFIGS[0], {seed: 'wce'});
    const p = args.prediction, r = args.target, N = p.length;
    let G = 0;
    for (let i = 0; i < N; i++) G += r[i];
    const w = (N - G) / G;
    let s = 0;
    for (let i = 0; i < N; i++) s += w * r[i] * Math.log(p[i]) + (1 - r[i]) * Math.log(1 - p[i]);
    expect(Math.abs(reference('weightedCrossEntropy', args).loss + s / N)).toBeLessThanOrEqual(TOL.same);
  });

  it('a binary map equals two explicit channels [1 - p, p] with one-hot targets (loss; g = g1 - g0)', () => {
    for (const name of LOSSES) {
      for (const includeBackground of [true, false]) {
        for (const reduction of REDUCTIONS) {
          const args = withReduction({...makeArgs(CONFIGS[1], {seed: 'two', masked: true}), includeBackground}, reduction);
          const x = args.prediction;
          const two = new Float64Array(2 * x.length), t2 = new Float64Array(2 * x.length); // float64: 1 - r must not round
          for (let i = 0; i < x.length; i++) {
            two[2 * i] = 1 - x[i]; two[2 * i + 1] = x[i];
            const ti = args.target[i] === IGNORE ? 0 : args.target[i];
            t2[2 * i] = 1 - ti; t2[2 * i + 1] = ti;
          }
          const mask = args.mask!.slice();
          for (let i = 0; i < x.length; i++) if (args.target[i] === IGNORE) mask[i] = 0;
          const a = reference(name, args);
          const b = reference(name, {...args, prediction: two, target: t2, shape: [B, ...S, 2], mask, ignoreIndex: undefined});
          for (let g = 0; g < a.losses.length; g++) expect(Math.abs(a.losses[g] - b.losses[g])).toBeLessThanOrEqual(1e-12);
          for (let i = 0; i < x.length; i++) {
            expect(Math.abs(a.gradient[i] - (b.gradient[2 * i + 1] - b.gradient[2 * i]))).toBeLessThanOrEqual(1e-12 * Math.max(1, maxAbs(a.gradient)));
          }
        }
      }
    }
  });

  it('sparse targets equal one-hot dense targets; ignoreIndex equals a mask', () => {
    for (const name of LOSSES) {
      for (const cfg of CONFIGS.filter((c) => c.kind === 'sparse')) {
        const args = withReduction(makeArgs(cfg, {seed: 'sd', masked: true}), 'none');
        const C = cfg.C;
        const t = args.target as Uint8Array;
        const dense = new Float32Array(t.length * C);
        const mask = args.mask!.slice();
        for (let v = 0; v < t.length; v++) {
          if (t[v] === IGNORE) mask[v] = 0;
          else dense[v * C + t[v]] = 1;
        }
        const a = reference(name, args);
        const b = reference(name, {...args, target: dense, mask, ignoreIndex: undefined});
        expectClose(a.losses, b.losses, 1e-12, 0, `${name} ${label(cfg)} losses`);
        expectClose(a.gradient, b.gradient, 1e-12, 0, `${name} ${label(cfg)} gradient`);
      }
    }
  });

  it("ignored voxels are gone: pooled loss equals the loss on the kept voxels only", () => {
    for (const name of LOSSES) {
      for (const cfg of [CONFIGS[1], CONFIGS[5], CONFIGS[8], CONFIGS[11]]) {
        const args = makeArgs(cfg, {seed: 'gone', masked: true});
        const C = cfg.C;
        const keep: number[] = [];
        for (let v = 0; v < B * V; v++) if (args.mask![v] !== 0 && args.target[v] !== IGNORE) keep.push(v);
        const x = args.prediction as Float64Array;
        const px = new Float64Array(keep.length * C);
        const pt = new Float64Array(keep.length);
        keep.forEach((v, j) => { for (let c = 0; c < C; c++) px[j * C + c] = x[v * C + c]; pt[j] = args.target[v]; });
        const a = reference(name, args);
        const b = reference(name, {prediction: px, target: C === 1 ? pt : Uint8Array.from(pt), shape: [1, keep.length, C], activation: cfg.activation});
        expect(Math.abs(a.loss - b.loss)).toBeLessThanOrEqual(1e-12);
        keep.forEach((v, j) => { for (let c = 0; c < C; c++) expect(Math.abs(a.gradient[v * C + c] - b.gradient[j * C + c])).toBeLessThanOrEqual(1e-12); });
      }
    }
  });

  it("a group with no kept voxel: loss 0, gradient 0, still counts in B for 'mean'", () => {
    for (const name of LOSSES) {
      for (const cfg of [CONFIGS[0], CONFIGS[8], CONFIGS[12]]) {
        const args = withReduction(makeArgs(cfg, {seed: 'empty'}), 'mean');
        const mask = new Uint8Array(B * V).fill(1);
        mask.fill(0, V);
        const res = reference(name, {...args, mask});
        expect(res.losses[1]).toBe(0);
        expect(res.loss).toBe(res.losses[0] / 2);
        for (let i = V * cfg.C; i < 2 * V * cfg.C; i++) expect(res.gradient[i]).toBe(0);
        expect(maxAbs(res.gradient)).toBeGreaterThan(0);
        const all = reference(name, {...args, mask: new Uint8Array(B * V), reduction: 'pooled'});
        expect(all.loss).toBe(0);
        expect(maxAbs(all.gradient)).toBe(0);
      }
    }
  });

  it("reductions: 'sum' = B x 'mean' (loss and gradient); 'none' per-sample gradient = pooled gradient of that sample", () => {
    for (const name of LOSSES) {
      for (const cfg of [CONFIGS[2], CONFIGS[9]]) {
        const args = makeArgs(cfg, {seed: 'red'});
        const m = reference(name, {...args, reduction: 'mean'});
        const s = reference(name, {...args, reduction: 'sum'});
        expect(Math.abs(s.loss - B * m.loss)).toBeLessThanOrEqual(1e-12);
        expectClose(s.gradient, Array.from(m.gradient, (g) => g * B), 1e-14, 1e-12, 'sum vs mean');
        const gs = new Float64Array([2, -0.5]);
        const none = reference(name, {...args, reduction: 'none', gradScale: gs});
        for (let b = 0; b < B; b++) {
          const C = cfg.C;
          const one = reference(name, {...args, prediction: args.prediction.slice(b * V * C, (b + 1) * V * C),
            target: args.target.length === B * V ? args.target.slice(b * V, (b + 1) * V) : args.target.slice(b * V * C, (b + 1) * V * C),
            shape: [1, ...S, C], reduction: 'pooled', gradScale: gs[b]});
          expect(Math.abs(none.losses[b] - one.loss)).toBeLessThanOrEqual(1e-14);
          expectClose(none.gradient.slice(b * V * C, (b + 1) * V * C), one.gradient, 1e-14, 1e-12, 'none sample');
        }
      }
    }
  });

  it('softmax / sigmoid losses equal the same loss on the activated probabilities (chain rule of section 3)', () => {
    for (const name of LOSSES) {
      for (const cfg of [CONFIGS[2], CONFIGS[9], CONFIGS[12]]) {
        const args = makeArgs(cfg, {seed: 'act'});
        const {p, K} = classProbs(args);
        const probs = cfg.C === 1 ? p.filter((_, i) => i % 2 === 1) : p;
        if (cfg.activation === 'sigmoid' && cfg.C >= 2) {
          // multi-label: dice-type losses treat channels as classes, same as 'none' on the sigmoid outputs
          if (name === 'weightedCrossEntropy') continue;
        }
        const a = reference(name, args);
        const b = reference(name, {...args, prediction: probs, activation: 'none'});
        expect(Math.abs(a.loss - b.loss)).toBeLessThanOrEqual(1e-12);
        expect(K).toBeGreaterThan(1);
      }
    }
  });

  it('multi-label sigmoid WCE: each channel its own binary map with an unweighted background term', () => {
    const cfg = CONFIGS[12];
    for (const classWeights of [undefined, [0.5, 2, 3]]) {
      const args = {...makeArgs(cfg, {seed: 'ml'}), classWeights};
      const res = reference('weightedCrossEntropy', args);
      // per channel c: binary map with w = [1, w_c], loss -(1/N) sum [w_c r log q + (1 - r) log(1 - q)]
      let total = 0;
      const C = cfg.C, n = B * V;
      for (let c = 0; c < C; c++) {
        const x = new Float64Array(n), t = new Float32Array(n);
        let G = 0;
        for (let v = 0; v < n; v++) { x[v] = args.prediction[v * C + c]; t[v] = args.target[v * C + c]; G += t[v]; }
        const wc = classWeights === undefined ? (n - G) / G : classWeights[c];
        total += reference('weightedCrossEntropy', {prediction: x, target: t, shape: [B, ...S, 1], activation: 'sigmoid', classWeights: [1, wc]}).loss;
      }
      expect(Math.abs(res.loss - total)).toBeLessThanOrEqual(1e-12);
    }
  });

  it("WCE: the 1e-7 clamp applies to activation 'none' only, with zero gradient where p <= 1e-7", () => {
    const prediction = new Float64Array([1e-9, 1 - 1e-9, 0.5, 0.5]);
    const target = new Uint8Array([0, 1]);
    const res = reference('weightedCrossEntropy', {prediction, target, shape: [1, 2, 2], classWeights: [1, 1]});
    // voxel 0: r = class 0, q = max(1e-9, 1e-7); voxel 1: log .5
    expect(res.loss).toBeCloseTo(-(Math.log(1e-7) + Math.log(0.5)) / 2, 12);
    expect(Array.from(res.gradient, (g) => g + 0)).toEqual([0, 0, 0, -1 / 2 / 0.5]); // + 0: -0 -> 0
    // binary map: q0 = max(1 - p, 1e-7) with p = 1 - 1e-9
    const bin = reference('weightedCrossEntropy', {prediction: new Float64Array([1 - 1e-9, 0.5]), target: new Uint8Array([0, 1]),
      shape: [1, 2, 1], classWeights: [1, 1]});
    expect(bin.loss).toBeCloseTo(-(Math.log(1e-7) + Math.log(0.5)) / 2, 12);
    expect(bin.gradient[0] + 0).toBe(0);
    // logits are not clamped: a confident wrong logit gives a loss far above -log(1e-7)
    const logit = reference('weightedCrossEntropy', {prediction: new Float64Array([40, -40]), target: new Uint8Array([1]),
      shape: [1, 1, 2], activation: 'softmax', classWeights: [1, 1]});
    expect(logit.loss).toBeCloseTo(80, 10);
    expect(logit.gradient[0]).toBeCloseTo(1, 12);
    expect(logit.gradient[1]).toBeCloseTo(-1, 12);
    const sig = reference('weightedCrossEntropy', {prediction: new Float64Array([-40]), target: new Uint8Array([1]),
      shape: [1, 1, 1], activation: 'sigmoid', classWeights: [1, 1]});
    expect(sig.loss).toBeCloseTo(40, 10);
  });

  it('GDL absent-class rule and the all-absent / Den = 0 cases', () => {
    // C = 3 'none', class 2 absent: w_2 = max(w_0, w_1)
    const prediction = new Float64Array([0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.6, 0.3, 0.1]);
    const target = new Uint8Array([0, 1, 0]);
    const g = reference('generalizedDice', {prediction, target, shape: [1, 3, 3], smoothNumerator: 0, smoothDenominator: 0});
    const w = [1 / 4, 1, 1]; // G = 2, 1, 0
    const I = [0.7 + 0.6, 0.8, 0], Ssum = [1.4 + 2, 1.3 + 1, 0.3];
    const num = 2 * (w[0] * I[0] + w[1] * I[1] + w[2] * I[2]);
    const den = w[0] * Ssum[0] + w[1] * Ssum[1] + w[2] * Ssum[2];
    expect(g.loss).toBeCloseTo(1 - num / den, 14);
    // binary map, includeBackground false, all-background target: L = {1}, G_1 = 0, no finite weight -> w = 0
    const none = reference('generalizedDice', {prediction: new Float64Array([0.3, 0.6]), target: new Uint8Array([0, 0]),
      shape: [1, 2, 1], includeBackground: false, smoothNumerator: 0, smoothDenominator: 0});
    expect(none.loss).toBe(0);
    expect(maxAbs(none.gradient)).toBe(0);
    // same with the default smoothing: Num = sNr, Den = sDr -> loss 1 - 1 = 0, gradient 0 (w = 0)
    const sm = reference('generalizedDice', {prediction: new Float64Array([0.3, 0.6]), target: new Uint8Array([0, 0]),
      shape: [1, 2, 1], includeBackground: false});
    expect(sm.loss).toBeCloseTo(0, 15);
    expect(maxAbs(sm.gradient)).toBe(0);
  });

  it('dice: a class with a zero denominator has d_l = 1 and no gradient', () => {
    // class 2 has p = 0 and r = 0 everywhere; sDr = 0
    const prediction = new Float64Array([0.75, 0.25, 0, 0.5, 0.5, 0]);
    const target = new Uint8Array([0, 1]);
    for (const jaccard of [false, true]) {
      const res = reference('dice', {prediction, target, shape: [1, 2, 3], smoothNumerator: 0, smoothDenominator: 0, jaccard});
      const d0 = jaccard ? 0.75 / (1.25 + 1 - 0.75) : 1.5 / 2.25;
      const d1 = jaccard ? 0.5 / (0.75 + 1 - 0.5) : 1 / 1.75;
      expect(res.loss).toBeCloseTo(1 - (d0 + d1 + 1) / 3, 14);
      expect(res.gradient[2]).toBe(0);
      expect(res.gradient[5]).toBe(0);
    }
  });

  it('unknown loss names throw', () => {
    expect(() => reference('focal' as LossName, {prediction: new Float32Array(1), target: new Uint8Array(1), shape: [1, 1]})).toThrow(Error);
  });
});
