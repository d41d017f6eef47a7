/**
 * The call paths every loss shares: one-call (sync and async) and the split
 * phase (statistics, merge, loss and gradient from statistics).
 */
import {enums, native, NativeSpec} from './native';
import {DeviceBuffer, isDeviceBuffer} from './device_buffer';
import type {AnyLossArgs, DeviceLossArgs, DeviceLossResult, LossName, LossResult} from './types';
import {normalize, normalizeOnDevice, show} from './validate';

function result(n: ReturnType<typeof normalize>, r: {loss: number; losses: Float64Array}): LossResult {
  const out: LossResult = {loss: r.loss};
  if (n.spec.reduction === enums().reduction.none) out.losses = r.losses;
  if (n.gradient) out.gradient = n.gradient;
  return out;
}

/** Loss and gradient in one call: a reduction pass, then (unless `gradient: false`) a gradient pass. */
export function runLoss(name: LossName, args: AnyLossArgs): LossResult {
  const n = normalize(name, args);
  return result(n, native().compute(n.spec, n.gradient, n.gradScale, n.perSample, false));
}

/** As runLoss, on a worker thread; errors reject the Promise. */
export async function runLossAsync(name: LossName, args: AnyLossArgs): Promise<LossResult> {
  const n = normalize(name, args);
  return result(n, await native().compute(n.spec, n.gradient, n.gradScale, n.perSample, true));
}

function deviceCall(name: LossName, args: DeviceLossArgs<DeviceBuffer>) {
  const n = normalizeOnDevice(name, args as unknown as Record<string, unknown>, isDeviceBuffer);
  const gradient = n.gradient === true ? DeviceBuffer._alloc(n.deviceId, n.size, 'float32') : n.gradient as DeviceBuffer | null;
  const finish = (r: {loss: number; losses: Float64Array}): DeviceLossResult<DeviceBuffer> => {
    const out: DeviceLossResult<DeviceBuffer> = {loss: r.loss};
    if (n.spec.reduction === enums().reduction.none) out.losses = r.losses;
    if (gradient) out.gradient = gradient;
    return out;
  };
  // a buffer allocated here is freed again if the call fails
  const fail = (e: unknown) => {
    if (n.gradient === true) gradient?.release();
    throw e;
  };
  return {n, gradient, finish, fail};
}

/**
 * A loss and its gradient on tensors in GPU memory (DeviceBuffers of one
 * device): no host copies but the statistics. `gradient`: a DeviceBuffer to
 * fill, `true` (default) for a new one, or `false`. Options as for the loss
 * functions; `device` may only be 'cuda' or 'auto'.
 *
 * @example
 * ```ts
 * const x = DeviceBuffer.upload(logits), y = DeviceBuffer.upload(labels);
 * const {loss, gradient} = lossOnDevice('generalizedDice', {prediction: x, target: y, shape, activation: 'softmax'});
 * const g = gradient!.download();
 * ```
 */
export function lossOnDevice(name: LossName, args: DeviceLossArgs<DeviceBuffer>): DeviceLossResult<DeviceBuffer> {
  const {n, gradient, finish, fail} = deviceCall(name, args);
  try {
    return finish(native().computeOnDevice(n.spec, gradient ? gradient.pointer : null, n.gradScale, n.perSample, false));
  } catch (e) {
    return fail(e);
  }
}

/** As lossOnDevice, on a worker thread. */
export async function lossOnDeviceAsync(name: LossName, args: DeviceLossArgs<DeviceBuffer>): Promise<DeviceLossResult<DeviceBuffer>> {
  const {n, gradient, finish, fail} = deviceCall(name, args);
  try {
    return finish(await native().computeOnDevice(n.spec, gradient ? gradient.pointer : null, n.gradScale, n.perSample, true));
  } catch (e) {
    return fail(e);
  }
}

/**
 * Per-sample, per-class sums of a loss (the output of its reduction pass).
 * Statistics of chunks of one input merge with {@link mergeStats}: chunks of
 * the same samples (spatial slabs) add, chunks of other samples (data-parallel
 * shards, placed with `batchOffset`) append.
 */
export interface LossStats {
  readonly loss: LossName;
  /** The loss-defining options (everything but the tensors), as the native spec. */
  readonly options: Readonly<NativeSpec>;
  /** Classes K (2 on a binary map) and sums per class F. */
  readonly classes: number;
  readonly fields: number;
  /** The statistics cover samples [first, first + samples) of the whole batch. */
  readonly first: number;
  readonly samples: number;
  /** [samples][1 + classes * fields]: the sample's kept-voxel count N, then the class sums. */
  readonly values: Float64Array;
}


function optionsOf(spec: NativeSpec): NativeSpec {
  const {B: _b, V: _v, prediction: _p, target: _t, targetKind: _k, mask: _m, samples: _s, first: _f, ...rest} = spec;
  return rest;
}

function batchOffset(args: {batchOffset?: unknown}): number {
  const o = args.batchOffset;
  if (o === undefined) return 0;
  if (typeof o !== 'number') throw new TypeError(`Expected a number for batchOffset but received ${show(o)}`);
  if (!(Number.isSafeInteger(o) && o >= 0)) throw new RangeError(`Expected an integer >= 0 for batchOffset but received ${show(o)}`);
  return o;
}

function makeStats(name: LossName, n: ReturnType<typeof normalize>, first: number, values: Float64Array): LossStats {
  return {...statsFromSpec(name, n.spec, values), first};
}

export type StatsArgs = AnyLossArgs & {batchOffset?: number};

/**
 * Statistics of a whole batch from a native spec and the values of its
 * reduction pass (the tfjs kernel on TensorFlow's tensors). Internal.
 */
export function statsFromSpec(name: LossName, spec: NativeSpec, values: Float64Array): LossStats {
  const C = spec.C;
  return {loss: name, options: optionsOf(spec), classes: C === 1 ? 2 : C, fields: native().losses[name].fields, first: 0,
          samples: spec.B as number, values};
}

/** The reduction pass alone: statistics of `args`' samples, placed at `batchOffset` (default 0). */
export function lossStats(name: LossName, args: StatsArgs): LossStats {
  const n = normalize(name, {...args, gradient: false}, ['batchOffset']);
  return makeStats(name, n, batchOffset(args), native().stats(n.spec, false));
}

/** As lossStats, on a worker thread. */
export async function lossStatsAsync(name: LossName, args: StatsArgs): Promise<LossStats> {
  const n = normalize(name, {...args, gradient: false}, ['batchOffset']);
  return makeStats(name, n, batchOffset(args), await native().stats(n.spec, true));
}

function sameOptions(a: NativeSpec, b: NativeSpec): boolean {
  const ka = Object.keys(a) as Array<keyof NativeSpec>;
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => {
    const x = a[k], y = b[k];
    if (isFloat64Array(x) && isFloat64Array(y)) {
      return x.length === y.length && x.every((v, i) => v === y[i]);
    }
    return x === y;
  });
}

/** By tag, not instanceof: the addon's arrays may come from another realm (jest, vm contexts). */
function isFloat64Array(v: unknown): v is Float64Array {
  return Object.prototype.toString.call(v) === '[object Float64Array]';
}

function checkStats(s: unknown, arg: string): LossStats {
  const st = s as LossStats;
  if (typeof s !== 'object' || s === null || !isFloat64Array(st.values) || typeof st.loss !== 'string' ||
      !Object.prototype.hasOwnProperty.call(native().losses, st.loss)) {
    throw new TypeError(`Expected statistics from lossStats() for ${arg} but received ${show(s)}`);
  }
  if (st.values.length !== st.samples * (1 + st.classes * st.fields)) {
    throw new RangeError(`Expected ${st.samples * (1 + st.classes * st.fields)} values for ${arg}.values but received length ${st.values.length}`);
  }
  return st;
}

/**
 * Merges the statistics of two chunks of one input: samples both cover are
 * added (spatial chunks), the others are placed side by side (batch chunks).
 * The merged samples must be contiguous.
 */
export function mergeStats(a: LossStats, b: LossStats): LossStats {
  checkStats(a, 'a');
  checkStats(b, 'b');
  if (a.loss !== b.loss || !sameOptions(a.options, b.options)) {
    throw new RangeError(`Expected statistics of the same loss and options for b but received ${b.loss} ` +
                         `statistics with other options than a (${a.loss})`);
  }
  const lo = Math.min(a.first, b.first);
  const hi = Math.max(a.first + a.samples, b.first + b.samples);
  if (Math.max(a.first, b.first) > Math.min(a.first + a.samples, b.first + b.samples)) {
    throw new RangeError(`Expected statistics whose samples touch or overlap for b but received samples ` +
                         `[${b.first}, ${b.first + b.samples}) beside [${a.first}, ${a.first + a.samples}): merge the samples between first`);
  }
  const stride = 1 + a.classes * a.fields;
  const values = new Float64Array((hi - lo) * stride);
  for (const s of [a, b]) {
    const off = (s.first - lo) * stride;
    for (let i = 0; i < s.values.length; i++) values[off + i] += s.values[i];
  }
  return {...a, first: lo, samples: hi - lo, values};
}

function completeStats(s: LossStats, arg: string): void {
  if (s.first !== 0) {
    throw new RangeError(`Expected statistics of the whole batch (starting at sample 0) for ${arg} but received samples [${s.first}, ${s.first + s.samples})`);
  }
}

/** The loss of merged statistics: equal to the one-call loss of the whole input. */
export function lossFromStats(stats: LossStats): {loss: number; losses?: Float64Array} {
  checkStats(stats, 'stats');
  completeStats(stats, 'stats');
  const r = native().lossFromStats({...stats.options, samples: stats.samples}, stats.values);
  return stats.options.reduction === enums().reduction.none ? {loss: r.loss, losses: r.losses} : {loss: r.loss};
}

function gradientSpec(args: StatsArgs, stats: LossStats) {
  checkStats(stats, 'stats');
  completeStats(stats, 'stats');
  const name = stats.loss;
  const n = normalize(name, args, ['batchOffset']);
  if (!sameOptions(optionsOf(n.spec), stats.options as NativeSpec)) {
    throw new RangeError(`Expected statistics computed with the same options as args for stats but received ${name} statistics with other options`);
  }
  const first = batchOffset(args);
  if (first + n.B > stats.samples) {
    throw new RangeError(`Expected samples [batchOffset, batchOffset + B) inside the statistics' [0, ${stats.samples}) for batchOffset but received ${first} (B = ${n.B})`);
  }
  const gradient = n.gradient ?? new Float32Array(n.size);
  return {n: {...n, gradient}, spec: {...n.spec, samples: stats.samples, first}};
}

/**
 * The gradient of `args`' chunk of the loss `stats` were computed for, given
 * statistics merged over every chunk (`args.batchOffset` places the chunk's
 * samples; `args` carries the same options). Checks the chunk's data before
 * writing anything, which costs one extra read of it.
 */
export function gradientFromStats(args: StatsArgs, stats: LossStats): {gradient: Float32Array} {
  const {n, spec} = gradientSpec(args, stats);
  native().gradientFromStats(spec, stats.values, n.gradient, n.gradScale, n.perSample, false);
  return {gradient: n.gradient};
}

/**
 * gradientFromStats for tensors a reduction pass has just checked (the
 * tfjs backward kernel, whose forward kernel read the same tensors): no
 * second check pass. Internal: not exported from the package.
 */
export function gradientFromCheckedStats(args: StatsArgs, stats: LossStats): {gradient: Float32Array} {
  const {n, spec} = gradientSpec(args, stats);
  native().gradientFromStats({...spec, checked: true}, stats.values, n.gradient, n.gradScale, n.perSample, false);
  return {gradient: n.gradient};
}

/** As gradientFromStats, on a worker thread. */
export async function gradientFromStatsAsync(args: StatsArgs, stats: LossStats): Promise<{gradient: Float32Array}> {
  const {n, spec} = gradientSpec(args, stats);
  await native().gradientFromStats(spec, stats.values, n.gradient, n.gradScale, n.perSample, true);
  return {gradient: n.gradient};
}

/**
 * What is compiled into the addon and usable here: `cpu` always, with the
 * instruction set its passes run on as `isa` ('avx512', 'avx2' or
 * 'baseline': the best this CPU supports, or a lower one forced with
 * SEGLOSS_ISA) and what this CPU could run as `isas`; `cuda` with `compiled`
 * (the addon was built with nvcc), `available` (a GPU and driver were found),
 * the `reason` when not, and the GPU's name as `device`.
 *
 * @example
 * ```ts
 * const cuda = backends().find((b) => b.name === 'cuda')!;
 * if (!cuda.available) console.log(`CPU only: ${cuda.reason}`);
 * ```
 */
export function backends() {
  return native().backends();
}

/**
 * Frees the device memory and pinned host buffers the CUDA backend keeps
 * between calls (they are reused by the next call otherwise). Safe to call
 * at any time, also without a GPU.
 */
export function releaseDeviceMemory(): void {
  native().releaseDeviceMemory();
}

/** Threads of the CPU backend (the calling thread included); 0 = all cores. Results do not depend on it. */
export function setThreads(n: number): void {
  native().setThreads(n);
}

export function getThreads(): number {
  return native().getThreads();
}
