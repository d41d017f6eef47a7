/**
 * Argument validation, all in one message shape:
 * `Expected <what> for <argument> but received <value>`.
 * TypeError for a wrong type or a detached buffer, RangeError for a bad value,
 * length or range (LOSSES.md section 5). Checks of the data itself (label
 * range, NaN, probabilities outside [0, 1]) run inside the native reduction
 * pass, which reads the data anyway, before anything is written.
 */
import type {NativeSpec} from './native';
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

const ACTIVATIONS = ['none', 'softmax', 'sigmoid'] as const;
const REDUCTIONS = ['pooled', 'mean', 'sum', 'none'] as const;
const DEVICES = ['auto', 'cpu', 'cuda'] as const;
const WEIGHTINGS = ['square', 'simple', 'uniform'] as const;
const WCE_WEIGHTS = ['inverse-frequency', 'paper'] as const;
const CLASS_REDUCTIONS = ['mean', 'sum'] as const;
const LOSS_IDS: Record<LossName, number> = {
  generalizedDice: 0, dice: 1, sensitivitySpecificity: 2, weightedCrossEntropy: 3,
};

const COMMON_OPTIONS = ['prediction', 'shape', 'target', 'activation', 'reduction', 'includeBackground',
  'ignoreIndex', 'mask', 'gradient', 'gradScale', 'device'];
/** Option names each loss accepts beyond the common ones (LOSSES.md table). */
export const LOSS_OPTIONS: Record<LossName, string[]> = {
  generalizedDice: ['weighting', 'smoothNumerator', 'smoothDenominator', 'denominatorFloor'],
  dice: ['smoothNumerator', 'smoothDenominator', 'squared', 'jaccard', 'classWeights'],
  sensitivitySpecificity: ['lambda', 'epsilon', 'classReduction'],
  weightedCrossEntropy: ['classWeights'],
};

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
  const allowed = new Set([...COMMON_OPTIONS, ...LOSS_OPTIONS[name], ...extra]);
  for (const key of Object.keys(a)) {
    if (!allowed.has(key)) {
      throw rangeError(`an option of ${name} (${[...allowed].join(', ')})`, 'an option name', show(key));
    }
  }
  const activation = a.activation === undefined ? 'none' : checkEnum(a.activation, ACTIVATIONS, 'activation');
  if (activation === 'softmax' && C === 1) {
    throw rangeError("at least 2 channels (the last entry of shape) with activation 'softmax'", 'shape',
                     'C = 1; use activation \'sigmoid\' for a binary map');
  }
  const reduction = a.reduction === undefined ? 'pooled' : checkEnum(a.reduction, REDUCTIONS, 'reduction');
  const includeBackground = a.includeBackground === undefined
    ? name !== 'sensitivitySpecificity' : checkBool(a.includeBackground, 'includeBackground');
  const device = a.device === undefined ? 'auto' : checkEnum(a.device, DEVICES, 'device');
  let ignoreIndex: number | null = null;
  if (a.ignoreIndex !== undefined) {
    ignoreIndex = checkNumber(a.ignoreIndex, 'ignoreIndex', Number.isSafeInteger, 'an integer');
  }
  const K = C === 1 ? 2 : C;
  const counted = (l: number) => includeBackground || l !== 0;
  const finiteNonNeg = (x: number) => Number.isFinite(x) && x >= 0;
  const spec: NativeSpec = {
    loss: LOSS_IDS[name],
    activation: ACTIVATIONS.indexOf(activation),
    reduction: REDUCTIONS.indexOf(reduction),
    includeBackground,
    device: DEVICES.indexOf(device),
    C,
    ignoreIndex,
    weighting: WEIGHTINGS.indexOf(a.weighting === undefined ? 'square' : checkEnum(a.weighting, WEIGHTINGS, 'weighting')),
    smoothNumerator: a.smoothNumerator === undefined ? 1e-5
      : checkNumber(a.smoothNumerator, 'smoothNumerator', finiteNonNeg, 'a finite number >= 0'),
    smoothDenominator: a.smoothDenominator === undefined ? 1e-5
      : checkNumber(a.smoothDenominator, 'smoothDenominator', finiteNonNeg, 'a finite number >= 0'),
    denominatorFloor: a.denominatorFloor === undefined ? 0
      : checkNumber(a.denominatorFloor, 'denominatorFloor', finiteNonNeg, 'a finite number >= 0'),
    squared: a.squared === undefined ? false : checkBool(a.squared, 'squared'),
    jaccard: a.jaccard === undefined ? false : checkBool(a.jaccard, 'jaccard'),
    classWeights: null,
    lambda: a.lambda === undefined ? 0.05
      : checkNumber(a.lambda, 'lambda', (x) => x >= 0 && x <= 1, 'a number in [0, 1]'),
    epsilon: a.epsilon === undefined ? 1e-5
      : checkNumber(a.epsilon, 'epsilon', (x) => Number.isFinite(x) && x > 0, 'a finite number > 0'),
    classSum: (a.classReduction === undefined ? 'mean'
      : checkEnum(a.classReduction, CLASS_REDUCTIONS, 'classReduction')) === 'sum',
    wceWeights: 0,
  };
  const cw = a.classWeights;
  if (cw !== undefined) {
    if (name === 'weightedCrossEntropy' && typeof cw === 'string') {
      spec.wceWeights = WCE_WEIGHTS.indexOf(checkEnum(cw, WCE_WEIGHTS, 'classWeights'));
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
      if (name === 'weightedCrossEntropy') spec.wceWeights = 2;
    }
  }
  return spec;
}

/** Validates a call's arguments and builds the native spec. */
export function normalize(name: LossName, args: AnyLossArgs, extra: string[] = []): Normalized {
  if (typeof args !== 'object' || args === null) throw typeError('an arguments object', 'args', args);
  const a = args;
  const prediction = checkView<Float32Array>(a.prediction, [Float32Array], 'a Float32Array', 'prediction');
  if (!Array.isArray(a.shape)) throw typeError('an Array of dimensions [B, ...spatial, C]', 'shape', a.shape);
  const shape = a.shape as unknown[];
  if (shape.length < 2) throw rangeError('at least 2 dimensions [B, ...spatial, C]', 'shape', show(shape));
  shape.forEach((d, i) => {
    if (typeof d !== 'number') throw typeError('integer dimensions', `shape[${i}]`, d);
    if (!(Number.isSafeInteger(d) && d >= 0)) throw rangeError('integer dimensions >= 0', `shape[${i}]`, show(d));
  });
  const dims = shape as number[];
  const size = dims.reduce((p, d) => p * d, 1);
  if (size === 0) throw rangeError('a non-empty tensor', 'shape', `${show(dims)} (0 elements)`);
  if (size !== prediction.length) {
    throw rangeError(`a prediction of ${size} elements (the product of shape ${show(dims)})`, 'prediction',
                     `length ${prediction.length}`);
  }
  const B = dims[0];
  const C = dims[dims.length - 1];
  const V = size / (B * C);
  const spec = normalizeOptions(name, a, C, extra);
  spec.B = B;
  spec.V = V;
  spec.prediction = prediction;

  const target = checkView<Uint8Array | Uint16Array | Int32Array | Float32Array>(a.target, [Uint8Array, Uint16Array, Int32Array, Float32Array],
                           'a Uint8Array, Uint16Array, Int32Array or Float32Array', 'target');
  const voxels = B * V;
  if (target.length === voxels) {
    // one value per voxel: class indices, or r1 of a binary map held as floats
    spec.targetKind = target instanceof Uint8Array ? 0 : target instanceof Uint16Array ? 1
      : target instanceof Int32Array ? 2 : C === 1 ? 4 : 3;
  } else if (target.length === size) {
    if (!(target instanceof Float32Array)) {
      throw typeError(`a Float32Array for a dense target of ${size} values`, 'target', target);
    }
    spec.targetKind = 4;
  } else {
    throw rangeError(`a target of ${voxels} class indices (shape [B, ...spatial]) or ${size} dense values ` +
                     `(the prediction's shape ${show(dims)})`, 'target', `length ${target.length}`);
  }
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

  let gradScale = new Float64Array([1]);
  let perSample = false;
  const gs = a.gradScale;
  if (typeof gs === 'number') {
    if (!Number.isFinite(gs)) throw rangeError('a finite number', 'gradScale', show(gs));
    gradScale = new Float64Array([gs]);
  } else if (gs !== undefined) {
    const arr = checkView<Float32Array | Float64Array>(gs, [Float32Array, Float64Array], 'a number, or a Float32Array / Float64Array of B values', 'gradScale');
    if (spec.reduction !== REDUCTIONS.indexOf('none')) {
      throw rangeError("a number (per-sample gradScale needs reduction 'none')", 'gradScale', show(arr));
    }
    if (arr.length !== B) throw rangeError(`${B} values (one per sample)`, 'gradScale', `length ${arr.length}`);
    gradScale = Float64Array.from(arr as ArrayLike<number>);
    gradScale.forEach((x, i) => { if (!Number.isFinite(x)) throw rangeError('finite values', `gradScale[${i}]`, show(x)); });
    perSample = true;
  }
  return {spec, size, B, gradient, gradScale, perSample};
}
