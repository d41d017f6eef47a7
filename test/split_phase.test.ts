/**
 * The split phase: lossStats / mergeStats / lossFromStats / gradientFromStats
 * (and their Async twins) against the one-call API.
 *
 * (a) spatial chunks: a [2, 12, 10, 9, C] volume cut into z-slabs of 5, 4 and
 *     3 slices (each slab its own arrays), slab statistics merged in several
 *     orders; the loss from merged statistics and the reassembled slab
 *     gradients equal the one-call results;
 * (b) batch chunks: samples [0, 2) and [2, 4) of a batch of 4 placed with
 *     batchOffset: the same per-sample sums, so the same loss to the bit;
 * (c) misuse: statistics of other options, gaps, statistics not starting at
 *     sample 0 -> RangeError.
 *
 * Tolerances: test/tolerances.ts (splitLoss, splitGradient, batchSplit, samePath).
 */
import * as api from '../lib';
import type {LossStats} from '../lib';
import type {Activation, AnyLossArgs, LossName, LossResult, Reduction} from '../lib/types';
import {TOL, errorClass, expectClose, mulberry32, seedOf, thrown} from './tolerances';

const LOSSES: LossName[] = ['generalizedDice', 'dice', 'sensitivitySpecificity', 'weightedCrossEntropy'];

/**
 * Workaround, to be removed once lib/api.ts is fixed: `values` of lossStats()
 * is a Float64Array built by the addon in Node's main realm, and checkStats()
 * tests `values instanceof Float64Array`, which is false in jest's sandbox
 * realm, so mergeStats / lossFromStats / gradientFromStats reject every
 * lossStats() result under jest. The test 'lossStats() results are accepted
 * as they are' below shows the bug; every other test re-creates `values` in
 * this realm so that the rest of the split phase is still checked.
 */
function here(s: LossStats): LossStats {
  return {...s, values: Float64Array.from(s.values)};
}
const lossStats = (name: LossName, args: AnyLossArgs & {batchOffset?: number}) => here(api.lossStats(name, args));
const lossStatsAsync = async (name: LossName, args: AnyLossArgs & {batchOffset?: number}) => here(await api.lossStatsAsync(name, args));

const oneCall = (name: LossName, args: AnyLossArgs): LossResult => (api[name] as (a: AnyLossArgs) => LossResult)(args);

type TargetKind = 'Uint8' | 'Float32-binary' | 'dense';
interface Config { C: number; activation: Activation; target: TargetKind; masked?: boolean; ignore?: boolean }
const cfgName = (c: Config) => `C=${c.C} ${c.activation} ${c.target}${c.masked ? ' +mask' : ''}${c.ignore ? ' +ignoreIndex' : ''}`;
const CONFIGS: Config[] = [
  {C: 3, activation: 'softmax', target: 'Uint8', ignore: true, masked: true},
  {C: 1, activation: 'none', target: 'Float32-binary'},
  {C: 4, activation: 'sigmoid', target: 'dense', masked: true},
];

/** Loss options beyond the defaults, one set per loss, to make sure they travel through the statistics. */
const LOSS_OPTIONS: Record<LossName, Array<Record<string, unknown>>> = {
  generalizedDice: [{}, {weighting: 'simple', denominatorFloor: 1, smoothNumerator: 0, smoothDenominator: 0}],
  dice: [{}, {jaccard: true, squared: true}],
  sensitivitySpecificity: [{}, {lambda: 0.3, classReduction: 'sum', includeBackground: true}],
  weightedCrossEntropy: [{}, {classWeights: 'paper'}],
};

interface Volume {
  shape: number[];
  prediction: Float32Array;
  target: Uint8Array | Float32Array;
  mask?: Uint8Array;
  ignoreIndex?: number;
}

/** A random [B, Z, Y, X, C] volume for `cfg`. */
function volume(cfg: Config, B: number, Z: number, seed: string): Volume {
  const rand = mulberry32(seedOf(seed));
  const {C} = cfg;
  const shape = [B, Z, 10, 9, C];
  const voxels = B * Z * 90;
  const prediction = new Float32Array(voxels * C);
  for (let i = 0; i < prediction.length; i++) {
    prediction[i] = cfg.activation === 'none' ? 0.02 + 0.96 * rand() : 6 * (rand() - 0.5);
  }
  let target: Uint8Array | Float32Array;
  if (cfg.target === 'Uint8') {
    target = new Uint8Array(voxels);
    for (let v = 0; v < voxels; v++) target[v] = Math.floor(rand() * C);
  } else if (cfg.target === 'Float32-binary') {
    target = new Float32Array(voxels);
    for (let v = 0; v < voxels; v++) target[v] = rand() < 0.5 ? Math.round(rand()) : rand();
  } else {
    target = new Float32Array(voxels * C);
    for (let i = 0; i < target.length; i++) target[i] = rand() < 0.3 ? Math.round(rand()) : rand();
  }
  const vol: Volume = {shape, prediction, target};
  if (cfg.ignore) {
    for (let v = 0; v < voxels; v++) if (rand() < 0.1) target[v] = 255;
    vol.ignoreIndex = 255;
  }
  if (cfg.masked) {
    vol.mask = new Uint8Array(voxels);
    for (let v = 0; v < voxels; v++) vol.mask[v] = rand() < 0.15 ? 0 : 1;
  }
  return vol;
}

/** Slices z in [z0, z1) of every sample: its own arrays of shape [B, z1 - z0, Y, X, C]. */
function slab(vol: Volume, z0: number, z1: number): Volume {
  const [B, Z, Y, X, C] = vol.shape;
  const plane = Y * X;
  const dense = vol.target.length === vol.prediction.length && C > 1;
  const tPer = dense ? C : 1;
  const pick = <T extends Float32Array | Uint8Array>(a: T, per: number): T => {
    const out = new (a.constructor as new (n: number) => T)(B * (z1 - z0) * plane * per);
    for (let b = 0; b < B; b++) {
      out.set(a.subarray((b * Z + z0) * plane * per, (b * Z + z1) * plane * per), b * (z1 - z0) * plane * per);
    }
    return out;
  };
  const s: Volume = {shape: [B, z1 - z0, Y, X, C], prediction: pick(vol.prediction, C), target: pick(vol.target, tPer)};
  if (vol.mask) s.mask = pick(vol.mask, 1);
  if (vol.ignoreIndex !== undefined) s.ignoreIndex = vol.ignoreIndex;
  return s;
}

/** Writes a slab's gradient back into the whole volume's layout. */
function place(full: Float32Array, part: Float32Array, shape: number[], z0: number, z1: number): void {
  const [B, Z, Y, X, C] = shape;
  const n = Y * X * C;
  for (let b = 0; b < B; b++) full.set(part.subarray(b * (z1 - z0) * n, (b + 1) * (z1 - z0) * n), (b * Z + z0) * n);
}

/** Samples [b0, b1) of a volume, as their own arrays. */
function samples(vol: Volume, b0: number, b1: number): Volume {
  const [B, ...rest] = vol.shape;
  const C = rest[rest.length - 1];
  const perP = vol.prediction.length / B, perT = vol.target.length / B;
  const s: Volume = {shape: [b1 - b0, ...rest], prediction: vol.prediction.slice(b0 * perP, b1 * perP),
                     target: vol.target.slice(b0 * perT, b1 * perT)};
  if (vol.mask) s.mask = vol.mask.slice(b0 * (perP / C), b1 * (perP / C));
  if (vol.ignoreIndex !== undefined) s.ignoreIndex = vol.ignoreIndex;
  return s;
}

interface RedCase { name: string; reduction: Reduction; gradScale: (b0: number, b1: number) => number | Float64Array }
const PER_SAMPLE = [0.7, -1.3, 2.5, 0.4];
const REDUCTIONS: RedCase[] = [
  {name: 'pooled', reduction: 'pooled', gradScale: () => 0.7},
  {name: 'mean', reduction: 'mean', gradScale: () => 0.7},
  {name: 'sum', reduction: 'sum', gradScale: () => 0.7},
  {name: 'none (gradScale 0.7)', reduction: 'none', gradScale: () => 0.7},
  {name: 'none (per-sample)', reduction: 'none', gradScale: (b0, b1) => Float64Array.from(PER_SAMPLE.slice(b0, b1))},
];

const SLABS: Array<[number, number]> = [[0, 5], [5, 9], [9, 12]];
const ORDERS: Array<[string, (s: LossStats[]) => LossStats]> = [
  ['(0 + 1) + 2', (s) => api.mergeStats(api.mergeStats(s[0], s[1]), s[2])],
  ['2 + (1 + 0)', (s) => api.mergeStats(s[2], api.mergeStats(s[1], s[0]))],
  ['(0 + 2) + 1', (s) => api.mergeStats(api.mergeStats(s[0], s[2]), s[1])],
];

function argsOf(v: Volume, activation: Activation, red: RedCase, gs: number | Float64Array, opts: Record<string, unknown>): AnyLossArgs {
  return {...v, activation, reduction: red.reduction, gradScale: gs, ...opts} as AnyLossArgs;
}

// ---------------------------------------------------------------- (a) spatial chunks

describe('(a) spatial chunks: z-slabs of [2, 12, 10, 9, C], merged statistics vs one call', () => {
  const rows = LOSSES.flatMap((name) => LOSS_OPTIONS[name].flatMap((opts, oi) => CONFIGS.flatMap((cfg) =>
    REDUCTIONS.map((red) => [name, oi === 0 ? 'defaults' : JSON.stringify(opts), cfgName(cfg), red.name, opts, cfg, red] as const))));

  it.each(rows)('%s %s, %s, %s', (name, oname, cname, rname, opts, cfg, red) => {
    const vol = volume(cfg, 2, 12, `slabs ${name} ${oname} ${cname}`);
    const gs = red.gradScale(0, 2);
    const whole = oneCall(name, argsOf(vol, cfg.activation, red, gs, opts));

    const parts = SLABS.map(([z0, z1]) => slab(vol, z0, z1));
    const stats = parts.map((p) => lossStats(name, argsOf(p, cfg.activation, red, gs, opts)));
    stats.forEach((s) => { expect(s.first).toBe(0); expect(s.samples).toBe(2); });

    for (const [oname2, merge] of ORDERS) {
      const merged = merge(stats);
      const r = api.lossFromStats(merged);
      expectClose(r.loss, whole.loss, TOL.splitLoss, `loss, merged ${oname2}`);
      if (red.reduction === 'none') expectClose(r.losses, whole.losses, TOL.splitLoss, `losses, merged ${oname2}`);
      else expect(r.losses).toBeUndefined();
    }

    const merged = ORDERS[0][1](stats);
    const gradient = new Float32Array(vol.prediction.length).fill(Number.NaN);
    parts.forEach((p, i) => {
      const g = api.gradientFromStats(argsOf(p, cfg.activation, red, gs, opts), merged).gradient;
      expect(g.length).toBe(p.prediction.length);
      place(gradient, g, vol.shape, SLABS[i][0], SLABS[i][1]);
    });
    expectClose(gradient, whole.gradient, TOL.splitGradient, 'reassembled slab gradients');
  });
});

// ---------------------------------------------------------------- (b) batch chunks

describe('(b) batch chunks: samples [0, 2) and [2, 4) placed with batchOffset', () => {
  const rows = LOSSES.flatMap((name) => CONFIGS.flatMap((cfg) =>
    REDUCTIONS.map((red) => [name, cfgName(cfg), red.name, cfg, red] as const)));

  it.each(rows)('%s, %s, %s', (name, cname, rname, cfg, red) => {
    const vol = volume(cfg, 4, 6, `batch ${name} ${cname}`);
    const whole = oneCall(name, argsOf(vol, cfg.activation, red, red.gradScale(0, 4), {}));
    const chunks: Array<[number, number]> = [[0, 2], [2, 4]];
    const parts = chunks.map(([b0, b1]) => samples(vol, b0, b1));
    const stats = parts.map((p, i) => lossStats(name, {...argsOf(p, cfg.activation, red, 1, {}), batchOffset: chunks[i][0]}));
    expect(stats.map((s) => [s.first, s.samples])).toEqual([[0, 2], [2, 2]]);

    for (const merged of [api.mergeStats(stats[0], stats[1]), api.mergeStats(stats[1], stats[0])]) {
      expect([merged.first, merged.samples]).toEqual([0, 4]);
      const r = api.lossFromStats(merged);
      expectClose(r.loss, whole.loss, TOL.batchSplit, 'loss');
      if (red.reduction === 'none') {
        expect(r.losses!.length).toBe(4);
        expectClose(r.losses, whole.losses, TOL.batchSplit, 'losses');
      }
    }

    const merged = api.mergeStats(stats[0], stats[1]);
    const gradient = new Float32Array(vol.prediction.length).fill(Number.NaN);
    parts.forEach((p, i) => {
      const [b0, b1] = chunks[i];
      const buf = new Float32Array(p.prediction.length).fill(42);
      const res = api.gradientFromStats({...argsOf(p, cfg.activation, red, red.gradScale(b0, b1), {}),
                                               batchOffset: b0, gradient: buf}, merged);
      expect(res.gradient).toBe(buf);
      gradient.set(buf, b0 * (vol.prediction.length / 4));
    });
    expectClose(gradient, whole.gradient, TOL.splitGradient, 'reassembled batch-chunk gradients');
  });

  test('batch and spatial chunks together: 2 sample chunks x 2 slabs, merged in any order', () => {
    const cfg = CONFIGS[0];
    const vol = volume(cfg, 4, 8, 'batch x slabs');
    const red = REDUCTIONS[4];
    const whole = oneCall('generalizedDice', argsOf(vol, cfg.activation, red, red.gradScale(0, 4), {}));
    const pieces: Array<{v: Volume; b0: number}> = [];
    for (const [b0, b1] of [[0, 2], [2, 4]]) {
      const s = samples(vol, b0, b1);
      for (const [z0, z1] of [[0, 3], [3, 8]]) pieces.push({v: slab(s, z0, z1), b0});
    }
    const stats = pieces.map((p) => lossStats('generalizedDice', {...argsOf(p.v, cfg.activation, red, 1, {}), batchOffset: p.b0}));
    const m1 = api.mergeStats(api.mergeStats(stats[0], stats[2]), api.mergeStats(stats[1], stats[3]));
    const m2 = api.mergeStats(stats[3], api.mergeStats(stats[2], api.mergeStats(stats[1], stats[0])));
    for (const m of [m1, m2]) {
      const r = api.lossFromStats(m);
      expectClose(r.loss, whole.loss, TOL.splitLoss, 'loss');
      expectClose(r.losses, whole.losses, TOL.splitLoss, 'losses');
    }
  });
});

// ---------------------------------------------------------------- async twins

describe('the Async twins agree (bit-identical)', () => {
  it.each(LOSSES)('%s: lossStatsAsync and gradientFromStatsAsync', async (name) => {
    const cfg = CONFIGS[0];
    const red = REDUCTIONS[4];
    const vol = volume(cfg, 2, 12, `async ${name}`);
    const parts = SLABS.map(([z0, z1]) => slab(vol, z0, z1));
    const gs = red.gradScale(0, 2);
    const sync = parts.map((p) => lossStats(name, argsOf(p, cfg.activation, red, gs, {})));
    const asyn = await Promise.all(parts.map((p) => lossStatsAsync(name, argsOf(p, cfg.activation, red, gs, {}))));
    asyn.forEach((s, i) => {
      expectClose(s.values, sync[i].values, TOL.samePath, `slab ${i} statistics`);
      expect([s.first, s.samples, s.classes, s.fields, s.loss]).toEqual([sync[i].first, sync[i].samples, sync[i].classes, sync[i].fields, sync[i].loss]);
    });
    const merged = ORDERS[0][1](sync);
    for (const p of parts) {
      const g1 = api.gradientFromStats(argsOf(p, cfg.activation, red, gs, {}), merged).gradient;
      const g2 = (await api.gradientFromStatsAsync(argsOf(p, cfg.activation, red, gs, {}), merged)).gradient;
      expectClose(g2, g1, TOL.samePath, 'gradient');
    }
  });

  test('lossStatsAsync with a batchOffset places the samples', async () => {
    const vol = volume(CONFIGS[1], 3, 4, 'async offset');
    const s = await lossStatsAsync('dice', {...vol, batchOffset: 5} as AnyLossArgs & {batchOffset: number});
    expect([s.first, s.samples]).toEqual([5, 3]);
  });
});

// ---------------------------------------------------------------- realms

describe('statistics straight from the addon', () => {
  test('lossStats() results are accepted as they are by mergeStats, lossFromStats and gradientFromStats', async () => {
    const vol = volume(CONFIGS[1], 2, 3, 'realm');
    const args = {...vol} as AnyLossArgs;
    const whole = oneCall('dice', args);
    const s = api.lossStats('dice', args);
    expect(api.lossFromStats(s).loss).toBe(whole.loss);
    const twice = api.mergeStats(s, api.lossStats('dice', args));
    expect(twice.samples).toBe(2);
    expect(api.gradientFromStats(args, s).gradient).toEqual(whole.gradient);
    const sa = await api.lossStatsAsync('dice', args);
    expect(api.lossFromStats(sa).loss).toBe(whole.loss);
  });
});

// ---------------------------------------------------------------- (c) misuse

describe('(c) misuse of the split phase', () => {
  const vol = volume(CONFIGS[0], 4, 4, 'misuse');
  const base = {...vol, activation: 'softmax'} as AnyLossArgs;
  const lower = samples(vol, 0, 2), upper = samples(vol, 2, 4);
  const sA = lossStats('dice', {...lower, activation: 'softmax'} as AnyLossArgs);

  const expectRange = (f: () => unknown, re: RegExp) => {
    const e = thrown(f);
    expect(errorClass(e)).toBe('RangeError');
    expect(e.message).toMatch(re);
  };

  test('mergeStats of statistics with another option value -> RangeError', () => {
    const sB = lossStats('dice', {...lower, activation: 'softmax', smoothNumerator: 1e-3} as AnyLossArgs);
    expectRange(() => api.mergeStats(sA, sB), /Expected statistics of the same loss and options for b but received/);
  });

  test('mergeStats of statistics with another reduction / activation / mask use / class count -> RangeError', () => {
    const others: AnyLossArgs[] = [
      {...lower, activation: 'softmax', reduction: 'mean'} as AnyLossArgs,
      {...lower, activation: 'sigmoid'} as AnyLossArgs,
      {...lower, activation: 'softmax', includeBackground: false} as AnyLossArgs,
      {...lower, activation: 'softmax', target: lower.target.map((v) => (v === 255 ? 254 : v)), ignoreIndex: 254} as AnyLossArgs,
    ];
    for (const o of others) expectRange(() => api.mergeStats(sA, lossStats('dice', o)), /for b but received/);
    const c4 = volume({C: 4, activation: 'softmax', target: 'Uint8'}, 2, 4, 'c4');
    expectRange(() => api.mergeStats(sA, lossStats('dice', {...c4, activation: 'softmax'} as AnyLossArgs)), /for b but received/);
  });

  test('mergeStats of statistics of another loss -> RangeError', () => {
    const sB = lossStats('generalizedDice', {...lower, activation: 'softmax'} as AnyLossArgs);
    expectRange(() => api.mergeStats(sA, sB), /for b but received generalizedDice statistics/);
  });

  test('mergeStats with a gap ([0, 1) and [2, 3)) -> RangeError', () => {
    const s0 = lossStats('dice', {...samples(vol, 0, 1), activation: 'softmax'} as AnyLossArgs);
    const s2 = lossStats('dice', {...samples(vol, 2, 3), activation: 'softmax', batchOffset: 2} as AnyLossArgs);
    expectRange(() => api.mergeStats(s0, s2), /Expected statistics whose samples touch or overlap for b but received samples \[2, 3\)/);
    expectRange(() => api.mergeStats(s2, s0), /for b but received samples \[0, 1\)/);
  });

  test('lossFromStats of statistics not starting at sample 0 -> RangeError', () => {
    const sUp = lossStats('dice', {...upper, activation: 'softmax', batchOffset: 2} as AnyLossArgs);
    expectRange(() => api.lossFromStats(sUp), /for stats but received samples \[2, 4\)/);
  });

  test('gradientFromStats with statistics not starting at 0, of other options, or a batchOffset past them -> RangeError', () => {
    const sUp = lossStats('dice', {...upper, activation: 'softmax', batchOffset: 2} as AnyLossArgs);
    const buf = new Float32Array(upper.prediction.length).fill(42);
    expectRange(() => api.gradientFromStats({...upper, activation: 'softmax', batchOffset: 2, gradient: buf} as AnyLossArgs, sUp),
                /for stats but received samples \[2, 4\)/);
    const merged = api.mergeStats(sA, sUp);
    expectRange(() => api.gradientFromStats({...upper, activation: 'softmax', batchOffset: 2, jaccard: true, gradient: buf} as AnyLossArgs, merged),
                /for stats but received dice statistics with other options/);
    // (the loss is the statistics': args with another loss's option are refused by name)
    expectRange(() => api.gradientFromStats({...upper, activation: 'softmax', batchOffset: 2, weighting: 'simple', gradient: buf} as AnyLossArgs, merged),
                /Expected an option of dice .* for an option name but received 'weighting'/);
    expectRange(() => api.gradientFromStats({...upper, activation: 'softmax', batchOffset: 3, gradient: buf} as AnyLossArgs, merged),
                /for batchOffset but received 3/);
    expect(buf.every((x) => x === 42)).toBe(true);
  });

  test('garbage statistics -> TypeError; a bad batchOffset -> TypeError / RangeError', () => {
    let e = thrown(() => api.lossFromStats({} as LossStats));
    expect(errorClass(e)).toBe('TypeError');
    expect(e.message).toMatch(/Expected statistics from lossStats\(\) for stats but received an object/);
    e = thrown(() => api.mergeStats(sA, null as unknown as LossStats));
    expect(errorClass(e)).toBe('TypeError');
    e = thrown(() => api.lossFromStats({...sA, values: new Float64Array(3)}));
    expect(errorClass(e)).toBe('RangeError');
    expect(e.message).toMatch(/for stats.values but received length 3/);
    e = thrown(() => lossStats('dice', {...base, batchOffset: '1'} as unknown as AnyLossArgs));
    expect(errorClass(e)).toBe('TypeError');
    e = thrown(() => lossStats('dice', {...base, batchOffset: -1} as unknown as AnyLossArgs));
    expect(errorClass(e)).toBe('RangeError');
    expect(e.message).toMatch(/for batchOffset but received -1/);
  });

  test('the async versions reject with the same classes', async () => {
    const sUp = lossStats('dice', {...upper, activation: 'softmax', batchOffset: 2} as AnyLossArgs);
    const e1 = await api.gradientFromStatsAsync({...upper, activation: 'softmax', batchOffset: 2} as AnyLossArgs, sUp).then(() => null, (e) => e);
    expect(errorClass(e1)).toBe('RangeError');
    const e2 = await lossStatsAsync('dice', {...base, batchOffset: -1} as unknown as AnyLossArgs).then(() => null, (e) => e);
    expect(errorClass(e2)).toBe('RangeError');
  });

  test('gradientFromStats checks the chunk before writing: a bad label leaves the buffer untouched', () => {
    const merged = api.mergeStats(sA, lossStats('dice', {...upper, activation: 'softmax', batchOffset: 2} as AnyLossArgs));
    const bad = {...upper, target: (upper.target as Uint8Array).slice()};
    const V = bad.target.length / 2;
    bad.target[V + 7] = 9; // sample 3 (chunk sample 1), voxel 7
    const buf = new Float32Array(upper.prediction.length).fill(42);
    const e = thrown(() => api.gradientFromStats({...bad, activation: 'softmax', batchOffset: 2, gradient: buf} as AnyLossArgs, merged));
    expect(errorClass(e)).toBe('RangeError');
    expect(e.message).toMatch(new RegExp(`for target but received 9 at index ${V + 7}\\b`));
    expect(buf.every((x) => x === 42)).toBe(true);
  });
});
