/**
 * Argument validation, all in one message shape:
 * `Expected <what> for <argument> but received <value>`.
 * TypeError for a wrong type or a detached buffer, RangeError for a bad value,
 * length or range (docs/losses.md section 5). Checks of the data itself (label
 * range, NaN, probabilities outside [0, 1]) run inside the native reduction
 * pass, which reads the data anyway, before anything is written.
 */
import {enums, native, NativeEnums, NativeSpec, NumberOptionName} from './native';
import type {AnyLossArgs, LossName} from './types';

/** How a value is shown in an error message. */
export function show(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return v.length <= 8 ? `[${v.map(show).join(', ')}]` : `an Array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) {
    const name = v.constructor.name;
    return `${/^I/.test(name) ? 'an' : 'a'} ${name} of length ${(v as unknown as ArrayLike<unknown>).length}`;
  }
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object' && v.constructor?.name === 'DeviceBuffer') {
    const b = v as {length: number; dtype: string};
    return `a DeviceBuffer of ${b.length} ${b.dtype}`;
  }
  return `an object (${Object.prototype.toString.call(v)})`;
}

function typeError(what: string, arg: string, v: unknown): TypeError {
  return new TypeError(`Expected ${what} for ${arg} but received ${show(v)}`);
}
function rangeError(what: string, arg: string, received: string): RangeError {
  return new RangeError(`Expected ${what} for ${arg} but received ${received}`);
}

/** Node 20 has no ArrayBuffer.prototype.detached: a detached buffer cannot be cloned. */
function isDetached(a: ArrayBufferView): boolean {
  const buf = a.buffer as ArrayBuffer;
  if (buf.byteLength !== 0) return false;
  const flag = (buf as unknown as {detached?: boolean}).detached;
  if (flag !== undefined) return flag;
  try {
    structuredClone(buf);
    return false;
  } catch {
    return true;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function checkView<T extends ArrayBufferView>(v: unknown, ctors: Array<new (...a: any[]) => ArrayBufferView>, what: string,
                                             arg: string): T {
  if (!ctors.some((c) => v instanceof c)) throw typeError(what, arg, v);
  if (isDetached(v as T)) throw new TypeError(`Expected ${what} for ${arg} but received a detached buffer`);
  return v as T;
}

function checkEnum<T extends string>(v: unknown, values: readonly T[], arg: string): T {
  if (typeof v !== 'string') throw typeError(`one of ${values.map(show).join(', ')}`, arg, v);
  if (!values.includes(v as T)) throw rangeError(`one of ${values.map(show).join(', ')}`, arg, show(v));
  return v as T;
}

function checkBool(v: unknown, arg: string): boolean {
  if (typeof v !== 'boolean') throw typeError('a boolean', arg, v);
  return v;
}

function checkNumber(v: unknown, arg: string, ok: (x: number) => boolean, what: string): number {
  if (typeof v !== 'number') throw typeError(`a number (${what})`, arg, v);
  if (!ok(v)) throw rangeError(what, arg, show(v));
  return v;
}

/** An enum's names in value order (the addon's `enums`), less those `drop` names. */
function namesOf<K extends keyof NativeEnums>(kind: K, drop: string[] = []): Array<keyof NativeEnums[K] & string> {
  const e = enums()[kind] as Record<string, number>;
  return Object.keys(e).sort((x, y) => e[x] - e[y]).filter((n) => !drop.includes(n)) as Array<keyof NativeEnums[K] & string>;
}
/** An enum option's native value; absent, the default: the enum's first name (value 0). */
function enumOption<K extends keyof NativeEnums>(kind: K, v: unknown, arg: string, drop: string[] = []): number {
  const names = namesOf(kind, drop);
  return (enums()[kind] as Record<string, number>)[v === undefined ? names[0] : checkEnum(v, names, arg)];
}
const CLASS_REDUCTIONS = ['mean', 'sum'] as const;

const COMMON_OPTIONS = ['prediction', 'shape', 'target', 'activation', 'reduction', 'includeBackground',
  'ignoreIndex', 'mask', 'gradient', 'gradScale', 'device'];

/** A numeric option: its default when absent, else checked against the addon's range for it. */
function numberOption(v: unknown, name: NumberOptionName): number {
  const o = native().numberOptions[name];
  if (v === undefined) return o.default;
  const ok = (x: number) => Number.isFinite(x) && (o.minOpen ? x > o.min : x >= o.min) && x <= o.max;
  return checkNumber(v, name, ok, o.expected);
}

export interface Normalized {
  spec: NativeSpec;
  /** Number of elements of the prediction (and gradient). */
  size: number;
  B: number;
  /** Caller's gradient buffer, a fresh one, or null with `gradient: false`. */
  gradient: Float32Array | null;
  gradScale: Float64Array;
  perSample: boolean;
}

/** The options part of a spec, shared by calls and by statistics (no tensors). */
function normalizeOptions(name: LossName, a: AnyLossArgs, C: number, extra: string[]): NativeSpec {
  const traits = native().losses[name];
  const allowed = new Set([...COMMON_OPTIONS, ...traits.options, ...extra]);
  for (const key of Object.keys(a)) {
    if (!allowed.has(key)) {
      throw rangeError(`an option of ${name} (${[...allowed].join(', ')})`, 'an option name', show(key));
    }
  }
  // (an enum option's default is its value 0: the first name)
  const activations = namesOf('activation');
  const activation = a.activation === undefined ? activations[0] : checkEnum(a.activation, activations, 'activation');
  if (activation === 'softmax' && C === 1) {
    throw rangeError("at least 2 channels (the last entry of shape) with activation 'softmax'", 'shape',
                     'C = 1; use activation \'sigmoid\' for a binary map');
  }
  const reductions = namesOf('reduction');
  const reduction = a.reduction === undefined ? reductions[0] : checkEnum(a.reduction, reductions, 'reduction');
  const includeBackground = a.includeBackground === undefined
    ? traits.includeBackground : checkBool(a.includeBackground, 'includeBackground');
  let ignoreIndex: number | null = null;
  if (a.ignoreIndex !== undefined) {
    ignoreIndex = checkNumber(a.ignoreIndex, 'ignoreIndex', Number.isSafeInteger, 'an integer');
  }
  const K = C === 1 ? 2 : C;
  const counted = (l: number) => includeBackground || l !== 0;
  const E = enums();
  const spec: NativeSpec = {
    loss: E.loss[name],
    activation: E.activation[activation],
    reduction: E.reduction[reduction],
    includeBackground,
    device: deviceOf(a.device),
    C,
    ignoreIndex,
    weighting: enumOption('weighting', a.weighting, 'weighting'),
    smoothNumerator: numberOption(a.smoothNumerator, 'smoothNumerator'),
    smoothDenominator: numberOption(a.smoothDenominator, 'smoothDenominator'),
    denominatorFloor: numberOption(a.denominatorFloor, 'denominatorFloor'),
    squared: a.squared === undefined ? false : checkBool(a.squared, 'squared'),
    jaccard: a.jaccard === undefined ? false : checkBool(a.jaccard, 'jaccard'),
    classWeights: null,
    lambda: numberOption(a.lambda, 'lambda'),
    epsilon: numberOption(a.epsilon, 'epsilon'),
    classSum: (a.classReduction === undefined ? 'mean'
      : checkEnum(a.classReduction, CLASS_REDUCTIONS, 'classReduction')) === 'sum',
    wceWeights: enumOption('wceWeights', undefined, 'classWeights'),
  };
  const cw = a.classWeights;
  if (cw !== undefined) {
    if (name === 'weightedCrossEntropy' && typeof cw === 'string') {
      spec.wceWeights = E.wceWeights[checkEnum(cw, namesOf('wceWeights', ['array']), 'classWeights')];
    } else {
      const what = `${K} numbers >= 0 (one per class${C === 1 ? ': background, foreground' : ''})`;
      if (!(Array.isArray(cw) || (ArrayBuffer.isView(cw) && !(cw instanceof DataView)))) {
        throw typeError(name === 'weightedCrossEntropy'
          ? `'inverse-frequency', 'paper' or ${what}` : what, 'classWeights', cw);
      }
      const w = Float64Array.from(cw as ArrayLike<number>);
      if (w.length !== K) throw rangeError(what, 'classWeights', `${w.length} numbers`);
      w.forEach((x, i) => {
        if (!(Number.isFinite(x) && x >= 0)) throw rangeError(what, `classWeights[${i}]`, show(x));
      });
      let sum = 0;
      w.forEach((x, l) => { if (counted(l)) sum += x; });
      if (!(sum > 0)) {
        throw rangeError('class weights whose sum over the counted classes is > 0', 'classWeights',
                         `${show(Array.from(w))} (sum over counted classes ${sum})`);
      }
      spec.classWeights = w;
      if (name === 'weightedCrossEntropy') spec.wceWeights = E.wceWeights.array;
    }
  }
  return spec;
}

/** The native value of the `device` option ('auto' when absent). */
export function deviceOf(v: unknown): number {
  return enumOption('device', v, 'device', ['cuda-emulated']);
}

/** The dimensions of `shape`, checked against the prediction's element count. */
function checkShape(shapeArg: unknown, predictionLength: number): {dims: number[]; size: number; B: number; C: number; V: number} {
  if (!Array.isArray(shapeArg)) throw typeError('an Array of dimensions [B, ...spatial, C]', 'shape', shapeArg);
  const shape = shapeArg as unknown[];
  if (shape.length < 2) throw rangeError('at least 2 dimensions [B, ...spatial, C]', 'shape', show(shape));
  shape.forEach((d, i) => {
    if (typeof d !== 'number') throw typeError('integer dimensions', `shape[${i}]`, d);
    if (!(Number.isSafeInteger(d) && d >= 0)) throw rangeError('integer dimensions >= 0', `shape[${i}]`, show(d));
  });
  const dims = shape as number[];
  const size = dims.reduce((p, d) => p * d, 1);
  if (size === 0) throw rangeError('a non-empty tensor', 'shape', `${show(dims)} (0 elements)`);
  if (size !== predictionLength) {
    throw rangeError(`a prediction of ${size} elements (the product of shape ${show(dims)})`, 'prediction',
                     `length ${predictionLength}`);
  }
  const B = dims[0];
  const C = dims[dims.length - 1];
  return {dims, size, B, C, V: size / (B * C)};
}

/**
 * The native target kind of a target of `length` elements of element type
 * `dtype` (u8 / u16 / i32 sparse, f32 sparse, binary or dense), or a
 * RangeError / TypeError naming what was expected.
 */
function targetKindOf(dtype: 'uint8' | 'uint16' | 'int32' | 'float32', length: number, voxels: number, size: number,
                      C: number, dims: number[], target: unknown): number {
  if (length === voxels) {
    // one value per voxel: class indices, or r1 of a binary map held as floats
    return enums().targetKind[dtype === 'float32' && C === 1 ? 'dense' : dtype];
  }
  if (length === size) {
    if (dtype !== 'float32') throw typeError(`a Float32Array for a dense target of ${size} values`, 'target', target);
    return enums().targetKind.dense;
  }
  throw rangeError(`a target of ${voxels} class indices (shape [B, ...spatial]) or ${size} dense values ` +
                   `(the prediction's shape ${show(dims)})`, 'target', `length ${length}`);
}

/** The upstream gradient: one value, or one per sample with reduction 'none'. */
export function checkGradScale(gs: unknown, reduction: number, B: number): {gradScale: Float64Array; perSample: boolean} {
  if (typeof gs === 'number') {
    if (!Number.isFinite(gs)) throw rangeError('a finite number', 'gradScale', show(gs));
    return {gradScale: new Float64Array([gs]), perSample: false};
  }
  if (gs === undefined) return {gradScale: new Float64Array([1]), perSample: false};
  const arr = checkView<Float32Array | Float64Array>(gs, [Float32Array, Float64Array], 'a number, or a Float32Array / Float64Array of B values', 'gradScale');
  if (reduction !== enums().reduction.none) {
    throw rangeError("a number (per-sample gradScale needs reduction 'none')", 'gradScale', show(arr));
  }
  if (arr.length !== B) throw rangeError(`${B} values (one per sample)`, 'gradScale', `length ${arr.length}`);
  const gradScale = Float64Array.from(arr as ArrayLike<number>);
  gradScale.forEach((x, i) => { if (!Number.isFinite(x)) throw rangeError('finite values', `gradScale[${i}]`, show(x)); });
  return {gradScale, perSample: true};
}

const TYPED_DTYPES: Array<[new (n: number) => ArrayBufferView, 'uint8' | 'uint16' | 'int32' | 'float32']> = [
  [Uint8Array, 'uint8'], [Uint16Array, 'uint16'], [Int32Array, 'int32'], [Float32Array, 'float32']];

/** Validates a call's arguments and builds the native spec. */
export function normalize(name: LossName, args: AnyLossArgs, extra: string[] = []): Normalized {
  if (typeof args !== 'object' || args === null) throw typeError('an arguments object', 'args', args);
  const a = args;
  const prediction = checkView<Float32Array>(a.prediction, [Float32Array], 'a Float32Array', 'prediction');
  const {dims, size, B, C, V} = checkShape(a.shape, prediction.length);
  const spec = normalizeOptions(name, a, C, extra);
  spec.B = B;
  spec.V = V;
  spec.prediction = prediction;

  const target = checkView<Uint8Array | Uint16Array | Int32Array | Float32Array>(a.target, [Uint8Array, Uint16Array, Int32Array, Float32Array],
                           'a Uint8Array, Uint16Array, Int32Array or Float32Array', 'target');
  const voxels = B * V;
  const dtype = TYPED_DTYPES.find(([ctor]) => target instanceof ctor)![1];
  spec.targetKind = targetKindOf(dtype, target.length, voxels, size, C, dims, target);
  spec.target = target;

  spec.mask = null;
  if (a.mask !== undefined && a.mask !== null) {
    const mask = checkView<Uint8Array>(a.mask, [Uint8Array], 'a Uint8Array (one byte per voxel)', 'mask');
    if (mask.length !== voxels) throw rangeError(`a mask of ${voxels} bytes (one per voxel)`, 'mask', `length ${mask.length}`);
    spec.mask = mask;
  }

  let gradient: Float32Array | null;
  if (a.gradient === undefined || a.gradient === true) {
    gradient = new Float32Array(size);
  } else if (a.gradient === false) {
    gradient = null;
  } else {
    gradient = checkView<Float32Array>(a.gradient, [Float32Array], 'true, false or a Float32Array', 'gradient');
    if (gradient.length !== size) throw rangeError(`a Float32Array of ${size} elements`, 'gradient', `length ${gradient.length}`);
  }
  const {gradScale, perSample} = checkGradScale(a.gradScale, spec.reduction as number, B);
  return {spec, size, B, gradient, gradScale, perSample};
}

/** What normalizeOnDevice needs to know of a device buffer. */
export interface DeviceTensor {
  readonly length: number;
  readonly dtype: 'float32' | 'uint8' | 'uint16' | 'int32';
  readonly pointer: bigint;
  readonly deviceId: number;
}

export interface NormalizedOnDevice {
  spec: NativeSpec;
  size: number;
  B: number;
  deviceId: number;
  /** The gradient buffer given, `true` to allocate one, or null with `gradient: false`. */
  gradient: DeviceTensor | true | null;
  gradScale: Float64Array;
  perSample: boolean;
}

/**
 * Validates a lossOnDevice call: the tensors are DeviceBuffers of one device
 * (`isDevice` tells a DeviceBuffer), the options as for typed arrays.
 */
export function normalizeOnDevice(name: LossName, args: Record<string, unknown>,
                                  isDevice: (v: unknown) => v is DeviceTensor): NormalizedOnDevice {
  if (typeof args !== 'object' || args === null) throw typeError('an arguments object', 'args', args);
  const a = args;
  const buffer = (v: unknown, arg: string, dtypes: string[]): DeviceTensor => {
    if (!isDevice(v)) throw typeError(`a DeviceBuffer (${dtypes.join(' / ')})`, arg, v);
    if (!dtypes.includes(v.dtype)) throw typeError(`a DeviceBuffer of ${dtypes.join(' / ')}`, arg, v);
    return v;
  };
  const prediction = buffer(a.prediction, 'prediction', ['float32']);
  const {dims, size, B, C, V} = checkShape(a.shape, prediction.length);
  if (a.device !== undefined && a.device !== 'cuda' && a.device !== 'auto') {
    throw rangeError("'cuda' or 'auto' (the tensors are DeviceBuffers)", 'device', show(a.device));
  }
  const {device: _device, ...rest} = a;
  const spec = normalizeOptions(name, rest as unknown as AnyLossArgs, C, []);
  spec.device = prediction.deviceId;
  spec.B = B;
  spec.V = V;
  const target = buffer(a.target, 'target', ['uint8', 'uint16', 'int32', 'float32']);
  const voxels = B * V;
  spec.targetKind = targetKindOf(target.dtype, target.length, voxels, size, C, dims, target);
  const same = (t: DeviceTensor, arg: string) => {
    if (t.deviceId !== prediction.deviceId) {
      throw rangeError('a DeviceBuffer on the prediction\'s device', arg, 'a DeviceBuffer of another device');
    }
  };
  same(target, 'target');
  spec.prediction = prediction.pointer;
  spec.target = target.pointer;
  spec.mask = null;
  if (a.mask !== undefined && a.mask !== null) {
    const mask = buffer(a.mask, 'mask', ['uint8']);
    if (mask.length !== voxels) throw rangeError(`a mask of ${voxels} bytes (one per voxel)`, 'mask', `length ${mask.length}`);
    same(mask, 'mask');
    spec.mask = mask.pointer;
  }
  let gradient: DeviceTensor | true | null;
  if (a.gradient === undefined || a.gradient === true) {
    gradient = true;
  } else if (a.gradient === false) {
    gradient = null;
  } else {
    const g = buffer(a.gradient, 'gradient', ['float32']);
    if (g.length !== size) throw rangeError(`a DeviceBuffer of ${size} float32`, 'gradient', `length ${g.length}`);
    same(g, 'gradient');
    gradient = g;
  }
  const {gradScale, perSample} = checkGradScale(a.gradScale, spec.reduction as number, B);
  return {spec, size, B, deviceId: prediction.deviceId, gradient, gradScale, perSample};
}
