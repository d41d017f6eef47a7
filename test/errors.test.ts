/**
 * Every bad input of docs/losses.md section 5, one test each: the error class
 * (TypeError for a wrong type or a detached buffer, RangeError for a bad
 * value, length or range, Error for an unavailable device), the message
 * shape of STYLE.md rule 5 (`Expected <what> for <argument> but received
 * <value>`) with the argument's name and the received value, and that a
 * caller's gradient buffer (filled with the sentinel 42) is untouched. Each
 * test also runs the Async twin, which must reject (not throw synchronously)
 * with the same class and leave the buffer alone too.
 *
 * Then the raw addon (lib/native.ts) on garbage: errors, no crash.
 *
 * Error classes are compared by name (errorClass in test/tolerances.ts):
 * errors built by the addon come from Node's main realm, not jest's sandbox.
 */
import * as api from '../lib';
import {native, NativeSpec} from '../lib/native';
import {normalize} from '../lib/validate';
import type {AnyLossArgs, LossName, LossResult} from '../lib/types';
import {errorClass, thrown} from './tolerances';

type Sync = (a: AnyLossArgs) => LossResult;
type Async = (a: AnyLossArgs) => Promise<LossResult>;
const SYNC = (name: LossName) => api[name] as unknown as Sync;
const ASYNC = (name: LossName) => api[`${name}Async`] as unknown as Async;

// ---------------------------------------------------------------- valid inputs to spoil

/** [2, 8, 3]: 16 voxels, 48 values; probability rows (valid for activation 'none' and as logits). */
function multi(): {prediction: Float32Array; target: Uint8Array; shape: number[]} {
  const prediction = new Float32Array(48);
  for (let v = 0; v < 16; v++) {
    const a = 0.1 + 0.05 * (v % 5), b = 0.2 + 0.03 * (v % 7);
    prediction.set([a, b, 1 - a - b], v * 3);
  }
  const target = Uint8Array.from({length: 16}, (_, v) => (v * 7) % 3);
  return {prediction, target, shape: [2, 8, 3]};
}

/** [2, 8, 1]: a binary map, 16 probabilities. */
function binary(): {prediction: Float32Array; target: Uint8Array; shape: number[]} {
  return {
    prediction: Float32Array.from({length: 16}, (_, i) => 0.05 + 0.055 * i),
    target: Uint8Array.from({length: 16}, (_, i) => (i % 3 === 0 ? 1 : 0)),
    shape: [2, 8, 1],
  };
}

function detach<T extends ArrayBufferView>(a: T): T {
  structuredClone(a.buffer, {transfer: [a.buffer as ArrayBuffer]});
  return a;
}

function oneHot(labels: ArrayLike<number>, C: number): Float32Array {
  const t = new Float32Array(labels.length * C);
  for (let v = 0; v < labels.length; v++) t[v * C + labels[v]] = 1;
  return t;
}

const REASON = () => api.backends().find((b) => b.name === 'cuda')?.reason ?? '(no reason given)';
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------- the cases

interface BadCase {
  /** What is wrong (the test name). */
  name: string;
  loss?: LossName;
  /** Fresh arguments for one call (the sentinel gradient is added unless they carry `gradient`). */
  args: () => Record<string, unknown>;
  cls: 'TypeError' | 'RangeError' | 'Error';
  /** The argument the message must name, and the received value it must show (a regexp source). */
  arg: string;
  received: string;
  /** Size of the sentinel gradient buffer; 0: none (e.g. an empty tensor). Default: the prediction's length, else 48. */
  sentinel?: number;
}

const CASES: BadCase[] = [
  // wrong types, detached buffers
  {name: 'a plain Array as prediction', cls: 'TypeError', arg: 'prediction', received: 'an Array of length 48',
   args: () => ({...multi(), prediction: Array.from(multi().prediction)})},
  {name: 'a Float64Array prediction', cls: 'TypeError', arg: 'prediction', received: 'a Float64Array of length 48',
   args: () => ({...multi(), prediction: Float64Array.from(multi().prediction)})},
  {name: 'a detached prediction buffer', cls: 'TypeError', arg: 'prediction', received: 'a detached buffer',
   args: () => ({...multi(), prediction: detach(multi().prediction)})},
  {name: 'a detached target buffer', cls: 'TypeError', arg: 'target', received: 'a detached buffer',
   args: () => ({...multi(), target: detach(multi().target)})},
  {name: 'a detached mask buffer', cls: 'TypeError', arg: 'mask', received: 'a detached buffer',
   args: () => ({...multi(), mask: detach(new Uint8Array(16).fill(1))})},
  {name: 'a detached gradient buffer', cls: 'TypeError', arg: 'gradient', received: 'a detached buffer', sentinel: 0,
   args: () => ({...multi(), gradient: detach(new Float32Array(48))})},
  {name: 'a plain Array as target', cls: 'TypeError', arg: 'target', received: 'an Array of length 16',
   args: () => ({...multi(), target: Array.from(multi().target)})},
  {name: 'a shape that is not an Array', cls: 'TypeError', arg: 'shape', received: 'an? Int32Array of length 3',
   args: () => ({...multi(), shape: Int32Array.from([2, 8, 3])})},
  {name: 'arguments that are not an object', cls: 'TypeError', arg: 'args', received: 'null', sentinel: 0,
   args: () => null as unknown as Record<string, unknown>},
  // shapes
  {name: 'a shape whose product is not the prediction length', cls: 'RangeError', arg: 'prediction', received: 'length 48',
   args: () => ({...multi(), shape: [2, 8, 4]})},
  {name: 'an empty tensor (a 0 in shape)', cls: 'RangeError', arg: 'shape', received: '\\[2, 0, 3\\] \\(0 elements\\)', sentinel: 0,
   args: () => ({prediction: new Float32Array(0), target: new Uint8Array(0), shape: [2, 0, 3]})},
  {name: 'a shape with fewer than 2 dimensions', cls: 'RangeError', arg: 'shape', received: '\\[48\\]',
   args: () => ({...multi(), shape: [48]})},
  {name: 'a non-integral shape entry', cls: 'RangeError', arg: 'shape\\[1\\]', received: '2.5',
   args: () => ({...multi(), shape: [2, 2.5, 3]})},
  {name: 'a target length matching neither sparse nor dense', cls: 'RangeError', arg: 'target', received: 'length 7',
   args: () => ({...multi(), target: new Uint8Array(7)})},
  {name: 'a dense target that is an Int32Array', cls: 'TypeError', arg: 'target', received: 'an? Int32Array of length 48',
   args: () => ({...multi(), target: Int32Array.from(oneHot(multi().target, 3))})},
  // sparse labels
  {name: 'a Uint8 label out of range (first bad index and value)', cls: 'RangeError', arg: 'target', received: '7 at index 13',
   args: () => { const a = multi(); a.target[13] = 7; a.target[15] = 9; return a; }},
  {name: 'a negative Int32 label', cls: 'RangeError', arg: 'target', received: '-1 at index 3',
   args: () => { const a = multi(); const t = Int32Array.from(a.target); t[3] = -1; return {...a, target: t}; }},
  {name: 'a Uint16 label out of range', cls: 'RangeError', arg: 'target', received: '3 at index 0',
   args: () => { const a = multi(); const t = Uint16Array.from(a.target); t[0] = 3; return {...a, target: t}; }},
  {name: 'a label > 1 on a binary map', cls: 'RangeError', arg: 'target', received: '2 at index 5',
   args: () => { const a = binary(); a.target[5] = 2; return a; }},
  {name: 'a Float32 binary-map value > 1', cls: 'RangeError', arg: 'target', received: '1.5 at index 9',
   args: () => { const a = binary(); const t = Float32Array.from(a.target); t[9] = 1.5; return {...a, target: t}; }},
  {name: 'a non-integral label in a Float32Array sparse target', cls: 'RangeError', arg: 'target', received: '1.5 at index 6',
   args: () => { const a = multi(); const t = Float32Array.from(a.target); t[6] = 1.5; return {...a, target: t}; }},
  {name: 'a NaN label in a Float32Array sparse target', cls: 'RangeError', arg: 'target', received: 'NaN at index 2',
   args: () => { const a = multi(); const t = Float32Array.from(a.target); t[2] = Number.NaN; return {...a, target: t}; }},
  {name: 'a label that is neither a class nor ignoreIndex (the message names ignoreIndex)', cls: 'RangeError', arg: 'target',
   received: '254 at index 4',
   args: () => { const a = multi(); a.target[1] = 255; a.target[4] = 254; return {...a, ignoreIndex: 255}; }},
  // prediction values
  {name: 'NaN in the prediction with softmax (first bad index)', cls: 'RangeError', arg: 'prediction', received: 'NaN at index 13',
   args: () => { const a = multi(); a.prediction[13] = Number.NaN; a.prediction[20] = Number.NaN; return {...a, activation: 'softmax'}; }},
  {name: 'Infinity in the prediction with sigmoid', cls: 'RangeError', arg: 'prediction', received: 'Infinity at index 7',
   args: () => { const a = multi(); a.prediction[7] = Infinity; return {...a, activation: 'sigmoid'}; }},
  {name: '-Infinity in a binary map with sigmoid', cls: 'RangeError', arg: 'prediction', received: '-Infinity at index 11',
   args: () => { const a = binary(); a.prediction[11] = -Infinity; return {...a, activation: 'sigmoid'}; }},
  {name: "a probability > 1 with activation 'none' (index, value, and the hint)", cls: 'RangeError', arg: 'prediction',
   received: "1.25 at index 9.*'softmax'.*'sigmoid'",
   args: () => { const a = multi(); a.prediction[9] = 1.25; return a; }},
  {name: "a negative probability on a binary map with activation 'none'", cls: 'RangeError', arg: 'prediction',
   received: "-0.5 at index 3.*'softmax'.*'sigmoid'",
   args: () => { const a = binary(); a.prediction[3] = -0.5; return a; }},
  {name: "NaN with activation 'none'", cls: 'RangeError', arg: 'prediction', received: 'NaN at index 4',
   args: () => { const a = multi(); a.prediction[4] = Number.NaN; return a; }},
  // dense targets, mask, gradScale
  {name: 'a dense target value 1.5', cls: 'RangeError', arg: 'target', received: '1.5 at index 20',
   args: () => { const a = multi(); const t = oneHot(a.target, 3); t[20] = 1.5; return {...a, target: t}; }},
  {name: 'a dense target value -0.1', cls: 'RangeError', arg: 'target', received: '-0.1 at index 31',
   args: () => { const a = multi(); const t = oneHot(a.target, 3); t[31] = -0.1; return {...a, target: t}; }},
  {name: 'a mask that is a Uint16Array', cls: 'TypeError', arg: 'mask', received: 'a Uint16Array of length 16',
   args: () => ({...multi(), mask: new Uint16Array(16).fill(1)})},
  {name: 'a mask of the wrong length', cls: 'RangeError', arg: 'mask', received: 'length 15',
   args: () => ({...multi(), mask: new Uint8Array(15).fill(1)})},
  {name: "a gradScale array with reduction 'pooled'", cls: 'RangeError', arg: 'gradScale', received: 'a Float64Array of length 2',
   args: () => ({...multi(), gradScale: new Float64Array([1, 2])})},
  {name: "a gradScale array with reduction 'mean'", cls: 'RangeError', arg: 'gradScale', received: 'a Float32Array of length 2',
   args: () => ({...multi(), reduction: 'mean', gradScale: new Float32Array([1, 2])})},
  {name: "a gradScale array of the wrong length with reduction 'none'", cls: 'RangeError', arg: 'gradScale', received: 'length 3',
   args: () => ({...multi(), reduction: 'none', gradScale: new Float64Array([1, 2, 3])})},
  {name: 'a non-finite gradScale', cls: 'RangeError', arg: 'gradScale', received: 'NaN',
   args: () => ({...multi(), gradScale: Number.NaN})},
  {name: "activation 'softmax' with C = 1", cls: 'RangeError', arg: 'shape', received: 'C = 1',
   args: () => ({...binary(), activation: 'softmax'})},
  // options out of range
  {name: 'lambda 1.5', loss: 'sensitivitySpecificity', cls: 'RangeError', arg: 'lambda', received: '1.5',
   args: () => ({...multi(), lambda: 1.5})},
  {name: 'lambda -0.1', loss: 'sensitivitySpecificity', cls: 'RangeError', arg: 'lambda', received: '-0.1',
   args: () => ({...multi(), lambda: -0.1})},
  {name: 'epsilon 0', loss: 'sensitivitySpecificity', cls: 'RangeError', arg: 'epsilon', received: '0',
   args: () => ({...multi(), epsilon: 0})},
  {name: 'a negative smoothNumerator', cls: 'RangeError', arg: 'smoothNumerator', received: '-1',
   args: () => ({...multi(), smoothNumerator: -1})},
  {name: 'a negative smoothDenominator', loss: 'generalizedDice', cls: 'RangeError', arg: 'smoothDenominator', received: '-0.00001',
   args: () => ({...multi(), smoothDenominator: -1e-5})},
  {name: 'a negative denominatorFloor', loss: 'generalizedDice', cls: 'RangeError', arg: 'denominatorFloor', received: '-1',
   args: () => ({...multi(), denominatorFloor: -1})},
  {name: 'an ignoreIndex that is not an integer', cls: 'RangeError', arg: 'ignoreIndex', received: '0.5',
   args: () => ({...multi(), ignoreIndex: 0.5})},
  {name: 'a lambda that is not a number', loss: 'sensitivitySpecificity', cls: 'TypeError', arg: 'lambda', received: "'0.5'",
   args: () => ({...multi(), lambda: '0.5'})},
  {name: 'an includeBackground that is not a boolean', cls: 'TypeError', arg: 'includeBackground', received: '1',
   args: () => ({...multi(), includeBackground: 1})},
  // unknown names and values
  {name: 'an option of another loss (weighting passed to dice)', cls: 'RangeError', arg: 'an option name', received: "'weighting'",
   args: () => ({...multi(), weighting: 'square'})},
  {name: 'an unknown option name (foo)', loss: 'generalizedDice', cls: 'RangeError', arg: 'an option name', received: "'foo'",
   args: () => ({...multi(), foo: 1})},
  {name: 'batchOffset passed to a one-call loss', cls: 'RangeError', arg: 'an option name', received: "'batchOffset'",
   args: () => ({...multi(), batchOffset: 0})},
  {name: "activation 'relu'", cls: 'RangeError', arg: 'activation', received: "'relu'",
   args: () => ({...multi(), activation: 'relu'})},
  {name: "reduction 'avg'", cls: 'RangeError', arg: 'reduction', received: "'avg'",
   args: () => ({...multi(), reduction: 'avg'})},
  {name: "weighting 'cubic'", loss: 'generalizedDice', cls: 'RangeError', arg: 'weighting', received: "'cubic'",
   args: () => ({...multi(), weighting: 'cubic'})},
  {name: "classReduction 'max'", loss: 'sensitivitySpecificity', cls: 'RangeError', arg: 'classReduction', received: "'max'",
   args: () => ({...multi(), classReduction: 'max'})},
  {name: "WCE classWeights 'balanced'", loss: 'weightedCrossEntropy', cls: 'RangeError', arg: 'classWeights', received: "'balanced'",
   args: () => ({...multi(), classWeights: 'balanced'})},
  {name: "device 'gpu'", cls: 'RangeError', arg: 'device', received: "'gpu'",
   args: () => ({...multi(), device: 'gpu'})},
  {name: 'an activation that is not a string', cls: 'TypeError', arg: 'activation', received: '1',
   args: () => ({...multi(), activation: 1})},
  // class weights
  {name: 'dice classWeights of the wrong length', cls: 'RangeError', arg: 'classWeights', received: '2 numbers',
   args: () => ({...multi(), classWeights: [1, 2]})},
  {name: 'WCE classWeights of the wrong length on a binary map (needs 2)', loss: 'weightedCrossEntropy', cls: 'RangeError',
   arg: 'classWeights', received: '1 numbers', args: () => ({...binary(), classWeights: [1]})},
  {name: 'dice classWeights all zero over the counted classes', cls: 'RangeError', arg: 'classWeights',
   received: '\\[5, 0, 0\\] \\(sum over counted classes 0\\)',
   args: () => ({...multi(), includeBackground: false, classWeights: [5, 0, 0]})},
  {name: 'WCE classWeights all zero', loss: 'weightedCrossEntropy', cls: 'RangeError', arg: 'classWeights',
   received: '\\[0, 0, 0\\]', args: () => ({...multi(), classWeights: [0, 0, 0]})},
  {name: 'a negative class weight', cls: 'RangeError', arg: 'classWeights\\[1\\]', received: '-1',
   args: () => ({...multi(), classWeights: [1, -1, 1]})},
  {name: 'classWeights that are not numbers', cls: 'TypeError', arg: 'classWeights', received: "'1,1,1'",
   args: () => ({...multi(), classWeights: '1,1,1'})},
  // the gradient buffer
  {name: 'a gradient buffer of the wrong length', cls: 'RangeError', arg: 'gradient', received: 'length 47', sentinel: 0,
   args: () => ({...multi(), gradient: new Float32Array(47).fill(42)})},
  {name: 'a gradient that is a Float64Array', cls: 'TypeError', arg: 'gradient', received: 'a Float64Array of length 48', sentinel: 0,
   args: () => ({...multi(), gradient: new Float64Array(48).fill(42)})},
  // devices
  {name: "device 'cuda' without a usable GPU", cls: 'Error', arg: 'device', received: `'cuda'`,
   args: () => ({...multi(), device: 'cuda'})},
];

/** Adds the sentinel gradient; returns the buffers whose contents must stay 42. */
function prepare(c: BadCase): {args: Record<string, unknown>; watched: ArrayLike<number>[]} {
  const args = c.args();
  const watched: ArrayLike<number>[] = [];
  if (args !== null && typeof args === 'object') {
    if ('gradient' in args) {
      const g = args.gradient as ArrayLike<number>;
      if (g.length > 0 && g[0] === 42) watched.push(g);
    } else {
      const p = args.prediction as ArrayLike<number> | undefined;
      const n = c.sentinel ?? (p && typeof p.length === 'number' && p.length > 0 ? p.length : 48);
      if (n > 0) {
        const g = new Float32Array(n).fill(42);
        args.gradient = g;
        watched.push(g);
      }
    }
  }
  return {args, watched};
}

function untouched(watched: ArrayLike<number>[]): void {
  for (const g of watched) {
    let changed = 0, first = -1;
    for (let i = 0; i < g.length; i++) if (g[i] !== 42) { changed++; if (first < 0) first = i; }
    if (changed > 0) throw new Error(`the caller's gradient buffer was written: ${changed} of ${g.length} entries, first [${first}] = ${g[first]}`);
  }
}

function checkError(e: unknown, c: BadCase): void {
  expect(errorClass(e)).toBe(c.cls);
  const message = (e as Error).message;
  if (c.cls === 'Error') expect(message).toContain(REASON());
  expect(message).toMatch(new RegExp(`Expected .* for ${c.arg} but received ${c.received}`));
}

describe('docs/losses.md section 5: bad input', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const loss = c.loss ?? 'dice';
    // sync
    const s = prepare(c);
    const e = thrown(() => SYNC(loss)(s.args as unknown as AnyLossArgs));
    untouched(s.watched);
    checkError(e, c);
    // async: a rejected Promise, not a synchronous throw
    const a = prepare(c);
    let promise: Promise<LossResult> | undefined;
    let syncThrow: unknown;
    try {
      promise = ASYNC(loss)(a.args as unknown as AnyLossArgs);
    } catch (err) {
      syncThrow = err;
    }
    if (syncThrow !== undefined) throw new Error(`the Async twin threw synchronously: ${(syncThrow as Error).message}`);
    const rejected = await promise!.then(() => undefined, (err: unknown) => err);
    if (rejected === undefined) throw new Error('the Async twin resolved');
    untouched(a.watched);
    checkError(rejected, c);
  });
});

describe('accepted values that look like bad ones', () => {
  test.each([
    ['Uint8 255 with ignoreIndex 255', () => { const a = multi(); a.target[3] = 255; return {...a, ignoreIndex: 255}; }],
    ['Uint16 65535 with ignoreIndex 65535', () => { const a = multi(); const t = Uint16Array.from(a.target); t[3] = 65535; return {...a, target: t, ignoreIndex: 65535}; }],
    ['Int32 -1 with ignoreIndex -1', () => { const a = multi(); const t = Int32Array.from(a.target); t[0] = -1; return {...a, target: t, ignoreIndex: -1}; }],
    ['Float32 sparse -1 with ignoreIndex -1', () => { const a = multi(); const t = Float32Array.from(a.target); t[5] = -1; return {...a, target: t, ignoreIndex: -1}; }],
    ['a binary map Float32 value 2 with ignoreIndex 2', () => { const a = binary(); const t = Float32Array.from(a.target); t[4] = 2; return {...a, target: t, ignoreIndex: 2}; }],
    ['a binary map Uint8 value 255 with ignoreIndex 255', () => { const a = binary(); a.target[4] = 255; return {...a, ignoreIndex: 255}; }],
    ['probabilities exactly 0 and 1 with activation none', () => { const a = multi(); a.prediction.set([0, 1, 0], 0); return a; }],
    ['large finite logits with softmax', () => { const a = multi(); a.prediction[0] = 3e38; a.prediction[4] = -3e38; return {...a, activation: 'softmax'}; }],
    ["a gradScale Float32Array with reduction 'none'", () => ({...multi(), reduction: 'none', gradScale: new Float32Array([1, -1])})],
    ['classWeights zero on the uncounted background', () => ({...multi(), includeBackground: false, classWeights: [0, 1, 1]})],
    ['lambda 0 and 1, epsilon tiny', () => ({...multi(), lambda: 1, epsilon: 1e-300})],
  ])('%s', (_name, make) => {
    const args = make() as Record<string, unknown>;
    const loss: LossName = 'lambda' in args ? 'sensitivitySpecificity' : 'dice';
    const r = SYNC(loss)(args as unknown as AnyLossArgs);
    expect(Number.isFinite(r.loss)).toBe(true);
    for (const g of r.gradient!) if (!Number.isFinite(g)) throw new Error('non-finite gradient');
  });

  test('the ignored value reported in the message is ignoreIndex, and a valid ignoreIndex changes nothing else', () => {
    const a = multi();
    const withIgnore = SYNC('dice')({...a, ignoreIndex: 200} as AnyLossArgs);
    const without = SYNC('dice')(a as AnyLossArgs);
    expect(withIgnore.loss).toBe(without.loss);
  });
});

test('the first bad label is reported across chunks and threads (chunk = 16384 voxels)', () => {
  const V = 20000;
  const prediction = new Float32Array(2 * V * 2).fill(0.5);
  const target = new Uint8Array(2 * V);
  target[30000] = 5; // sample 1, first chunk
  target[17000] = 3; // sample 0, second chunk: the first bad one
  target[39999] = 4;
  for (const threads of [1, 4]) {
    api.setThreads(threads);
    try {
      const g = new Float32Array(prediction.length).fill(42);
      const e = thrown(() => api.dice({prediction, target, shape: [2, V, 2], gradient: g}));
      expect(errorClass(e)).toBe('RangeError');
      expect(e.message).toMatch(/for target but received 3 at index 17000$/);
      untouched([g]);
    } finally {
      api.setThreads(0);
    }
  }
});

test('a NaN in a later chunk than a bad label: the lower index wins', () => {
  const V = 40000;
  const prediction = new Float32Array(V * 2).fill(0.5);
  const target = new Uint8Array(V);
  prediction[2 * 35000 + 1] = Number.NaN;
  target[20000] = 9;
  const e = thrown(() => api.dice({prediction, target, shape: [1, V, 2], activation: 'softmax'}));
  expect(e.message).toMatch(/for target but received 9 at index 20000/);
});

// Integer labels, activation 'none', no mask or ignoreIndex, and C = 1, 2
// (eight voxels at a time) or 4, 8, 16 (a voxel's row four classes at a
// time): the CPU checks these on the values' bits (native/cpu/passes.h,
// label loops). Each bad value here sits inside the eight-voxel runs (index
// 500 of 1000 voxels) or in the tail after them (index 1001 of 1003), for
// the losses that take that path (sensitivity-specificity only with 4 or
// more classes) and every integer label type.
describe('label maps: every bad value is found, on the vector and the tail voxels', () => {
  const LABEL_TYPES = [Uint8Array, Uint16Array, Int32Array] as const;
  const volume = (C: number, V: number, Labels: (typeof LABEL_TYPES)[number]) => {
    const prediction = new Float32Array(V * C);
    for (let v = 0; v < V; v++) {
      const p1 = ((v * 37) % 101) / 100;
      if (C === 1) prediction[v] = p1;
      else if (C === 2) prediction.set([1 - p1, p1], 2 * v);
      else for (let c = 0; c < C; c++) prediction[v * C + c] = ((v * 37 + c * 11) % 101) / 100;
    }
    const target = new Labels(V);
    for (let v = 0; v < V; v++) target[v] = v % 7 === 0 ? 1 : 0;
    return {prediction, target, shape: [1, V, C]};
  };
  test.each(LABEL_TYPES.flatMap((Labels) => (['generalizedDice', 'dice', 'sensitivitySpecificity'] as const).flatMap((loss) =>
    [1, 2, 4, 8, 16].filter((C) => loss !== 'sensitivitySpecificity' || C >= 4).flatMap((C) => [[1000, 500], [1003, 1001]].flatMap(([V, at]) => [
      ...[Math.max(C, 2), 255, -1, 65535, 2147483647].map((bad) => ({Labels, loss, C, V, at, label: bad})),
      ...[Number.NaN, -0.25, 1.5, Infinity, -Infinity, 1.0000001192092896 /* the float32 after 1 */].map((bad) => ({Labels, loss, C, V, at, x: bad})),
    ])))).map((c) => [`${c.loss} C=${c.C} ${c.Labels.name} ${'label' in c ? `label ${c.label}` : `prediction ${c.x}`} at ${c.at} of ${c.V}`, c] as const))(
    '%s', (_name, c) => {
      const a = volume(c.C, c.V, c.Labels);
      let received: string;
      let arg: string;
      if ('label' in c) {
        a.target[c.at] = c.label as number;
        if (a.target[c.at] < Math.max(c.C, 2)) return;  // a valid label once stored in this type
        received = `${a.target[c.at]} at index ${c.at}`;
        arg = 'target';
      } else {
        const i = c.at * c.C + c.C - 1;
        a.prediction[i] = c.x as number;
        // (the message shows the shortest decimal that reads back as the float32: 1.0000001)
        const shown = c.x === 1.0000001192092896 ? '1.0000001' : String(a.prediction[i]);
        received = `${esc(shown)} at index ${i}`;
        arg = 'prediction';
      }
      const g = new Float32Array(a.prediction.length).fill(42);
      const e = thrown(() => SYNC(c.loss)({...a, gradient: g} as unknown as AnyLossArgs));
      expect(errorClass(e)).toBe('RangeError');
      expect((e as Error).message).toMatch(new RegExp(`Expected .* for ${arg} but received ${received}`));
      untouched([g]);
    });

  test('-0 and the extremes 0 and 1 are accepted, and -0 gives the bits of +0', () => {
    for (const C of [1, 2, 8]) {
      for (const loss of ['generalizedDice', 'dice'] as const) {
        const a = volume(C, 1000, Int32Array);
        const b = volume(C, 1000, Int32Array);
        a.prediction[8 * C] = -0;
        b.prediction[8 * C] = 0;
        a.prediction[16 * C] = 1;
        b.prediction[16 * C] = 1;
        const ra = SYNC(loss)(a as unknown as AnyLossArgs);
        const rb = SYNC(loss)(b as unknown as AnyLossArgs);
        expect(Number.isFinite(ra.loss)).toBe(true);
        expect(ra.loss).toBe(rb.loss);
        expect(ra.gradient).toEqual(rb.gradient);
      }
    }
  });
});

// ---------------------------------------------------------------- the raw addon

describe('the raw addon rejects garbage without crashing', () => {
  const addon = native();
  const one = new Float64Array([1]);
  const valid = (): NativeSpec => normalize('dice', {...multi(), activation: 'softmax'} as AnyLossArgs).spec;
  const expectErr = (f: () => unknown, cls: string, re?: RegExp) => {
    const e = thrown(f);
    expect(errorClass(e)).toBe(cls);
    if (re) expect(e.message).toMatch(re);
  };

  test('a valid spec works (the baseline of the cases below)', () => {
    const r = addon.compute(valid(), new Float32Array(48), one, false, false);
    expect(r.loss).toBeCloseTo(SYNC('dice')({...multi(), activation: 'softmax'} as AnyLossArgs).loss, 12);
  });

  test('compute({}) -> TypeError', () => {
    expectErr(() => addon.compute({} as NativeSpec, null, one, false, false), 'TypeError', /Expected .* for loss but received undefined/);
  });

  test('compute(undefined), compute(42), compute("spec") -> TypeError', () => {
    for (const s of [undefined, 42, 'spec', null]) {
      expectErr(() => addon.compute(s as unknown as NativeSpec, null, one, false, false), 'TypeError', /Expected .* for spec but received/);
    }
    expectErr(() => (addon.compute as unknown as () => void)(), 'TypeError');
  });

  test('tensorflowJob checks the spec as compute does (2^53 elements), endTensorflowJob an unknown id', () => {
    const huge = {...valid(), B: 2 ** 20, V: 2 ** 30, C: 2 ** 4};
    expectErr(() => addon.tensorflowJob(huge, null, one, false), 'RangeError', /at most 2\^53 - 1 elements for shape/);
    const id = addon.tensorflowJob(valid(), null, one, false);
    expect(addon.endTensorflowJob(id)).toBeNull();  // no kernel ran it
    expectErr(() => addon.endTensorflowJob(id), 'RangeError', /the id of a running job for job but received/);
  });

  test('a spec whose prediction length is wrong -> RangeError', () => {
    const s = valid();
    s.prediction = new Float32Array(47);
    expectErr(() => addon.compute(s, null, one, false, false), 'RangeError', /for prediction but received length 47/);
  });

  test('a target of the wrong type for its targetKind -> TypeError; of the wrong length -> RangeError', () => {
    const s = valid();
    s.target = new Int32Array(16);
    expectErr(() => addon.compute(s, null, one, false, false), 'TypeError', /for target but received Int32Array/);
    s.target = new Uint8Array(15);
    expectErr(() => addon.compute(s, null, one, false, false), 'RangeError', /for target but received length 15/);
  });

  test('out-of-range enums, counts and option values -> RangeError', () => {
    const edits: Array<[string, (s: NativeSpec) => void]> = [
      ['loss', (s) => { s.loss = 7; }],
      ['activation', (s) => { s.activation = -1; }],
      ['reduction', (s) => { s.reduction = 1.5; }],
      ['targetKind', (s) => { s.targetKind = 9; }],
      ['B', (s) => { s.B = 0; }],
      ['C', (s) => { s.C = -3; }],
      ['V', (s) => { s.V = Number.NaN; }],
      ['lambda', (s) => { s.lambda = 2; }],
      ['epsilon', (s) => { s.epsilon = 0; }],
      ['smoothNumerator', (s) => { s.smoothNumerator = -1; }],
      ['shape', (s) => { s.B = 2 ** 40; s.V = 2 ** 20; }],
    ];
    for (const [arg, edit] of edits) {
      const s = valid();
      edit(s);
      expectErr(() => addon.compute(s, null, one, false, false), 'RangeError', new RegExp(`for ${arg} but received`));
    }
  });

  test('a wrong gradient buffer or gradScale -> TypeError / RangeError, buffer untouched', () => {
    const g = new Float32Array(47).fill(42);
    expectErr(() => addon.compute(valid(), g, one, false, false), 'RangeError', /for gradient but received length 47/);
    untouched([g]);
    const g2 = new Float32Array(48).fill(42);
    expectErr(() => addon.compute(valid(), g2, [1] as unknown as Float64Array, false, false), 'TypeError', /for gradScale/);
    expectErr(() => addon.compute(valid(), g2, new Float64Array(2), false, false), 'RangeError', /for gradScale but received length 2/);
    expectErr(() => addon.compute(valid(), new Float64Array(48) as unknown as Float32Array, one, false, false), 'TypeError', /for gradient/);
    untouched([g2]);
  });

  test('bad data found by the native pass -> RangeError, buffer untouched, also async', async () => {
    const s = valid();
    (s.target as Uint8Array)[3] = 77;
    const g = new Float32Array(48).fill(42);
    expectErr(() => addon.compute(s, g, one, false, false), 'RangeError', /received 77 at index 3/);
    const e = await addon.compute(s, g, one, false, true).then(() => null, (x) => x);
    expect(errorClass(e)).toBe('RangeError');
    untouched([g]);
  });

  test('a detached buffer in a spec is refused (no crash)', () => {
    const s = valid();
    s.prediction = detach(s.prediction as Float32Array) as Float32Array;
    const e = thrown(() => addon.compute(s, null, one, false, false));
    expect(['TypeError', 'RangeError']).toContain(errorClass(e));
  });

  test('numeric options: the addon refuses what lib/ refuses, with the same message (one range table)', () => {
    const ranges = addon.numberOptions;
    expect(Object.keys(ranges).sort()).toEqual(['denominatorFloor', 'epsilon', 'lambda', 'smoothDenominator', 'smoothNumerator']);
    for (const [name, bad] of [['smoothNumerator', Infinity], ['smoothDenominator', -1e-9], ['denominatorFloor', NaN],
                               ['lambda', 1.5], ['epsilon', 0], ['epsilon', Infinity]] as Array<[string, number]>) {
      const raw = thrown(() => addon.compute({...valid(), [name]: bad}, null, one, false, false));
      const loss = name === 'lambda' || name === 'epsilon' ? 'sensitivitySpecificity' : name === 'denominatorFloor' ? 'generalizedDice' : 'dice';
      const ts = thrown(() => SYNC(loss as LossName)({...multi(), [name]: bad} as AnyLossArgs));
      expect(errorClass(raw)).toBe('RangeError');
      expect(errorClass(ts)).toBe('RangeError');
      expect(raw.message).toBe(`Expected ${ranges[name as keyof typeof ranges].expected} for ${name} but received ${bad}`);
      expect(ts.message).toBe(raw.message);
    }
    // the defaults lib/ fills in are the addon's
    const spec = normalize('dice', multi()).spec;
    expect(spec.smoothNumerator).toBe(ranges.smoothNumerator.default);
    expect(normalize('sensitivitySpecificity', multi()).spec.lambda).toBe(ranges.lambda.default);
    expect(normalize('sensitivitySpecificity', multi()).spec.includeBackground).toBe(addon.losses.sensitivitySpecificity.includeBackground);
  });

  test('this checkout\'s addon carries the test hooks (the package\'s does not: scripts/prebuild.js checks)', () => {
    expect(addon.testHooks).toBe(true);
    expect(typeof addon.copy).toBe('function');
  });

  test('stats / lossFromStats / gradientFromStats on garbage', () => {
    expectErr(() => addon.stats({} as NativeSpec, false), 'TypeError');
    const s = valid();
    const st = addon.stats(s, false);
    expectErr(() => addon.lossFromStats({...s, samples: 2}, new Float64Array(3)), 'RangeError', /for stats.values but received length 3/);
    expectErr(() => addon.lossFromStats({...s, samples: 0}, st), 'RangeError', /for samples/);
    expectErr(() => addon.lossFromStats(null as unknown as NativeSpec, st), 'TypeError');
    const g = new Float32Array(48).fill(42);
    expectErr(() => addon.gradientFromStats({...s, samples: 2, first: 1}, st, g, one, false, false), 'RangeError', /for batchOffset/);
    expectErr(() => addon.gradientFromStats({...s, samples: 2, first: -1}, st, g, one, false, false), 'RangeError', /for batchOffset/);
    expectErr(() => addon.gradientFromStats({...s, samples: 2, first: 0}, st, new Float32Array(3), one, false, false), 'RangeError');
    untouched([g]);
  });

  test('setThreads / backends / getThreads survive odd arguments', () => {
    expectErr(() => addon.setThreads(undefined as unknown as number), 'TypeError');
    expectErr(() => addon.setThreads(1e9), 'RangeError');
    expect(Array.isArray(addon.backends())).toBe(true);
    expect(addon.getThreads()).toBeGreaterThanOrEqual(1);
  });
});

/**
 * docs/losses.md section 5 names no exception for ignored voxels: "a sparse
 * label outside `[0, C-1]` ... that is not `ignoreIndex`" and "NaN or an
 * infinity in the prediction" are errors wherever they are. The native pass skips masked and
 * ignoreIndex voxels before checking them. Either the check or the contract
 * has to change; these tests hold the contract's literal reading.
 */
describe('section 5 on ignored voxels (the contract read literally)', () => {
  const p = () => new Float32Array([0.2, 0.8, 0.5, 0.5, 0.6, 0.4]);
  test('an out-of-range label on a masked voxel -> RangeError', () => {
    const e = thrown(() => api.dice({prediction: p(), target: new Uint8Array([1, 7, 1]), shape: [1, 3, 2], mask: new Uint8Array([1, 0, 1])}));
    expect(errorClass(e)).toBe('RangeError');
    expect(e.message).toMatch(/for target but received 7 at index 1/);
  });
  test('NaN in the prediction on a masked voxel (softmax) -> RangeError', () => {
    const x = p();
    x[2] = Number.NaN;
    const e = thrown(() => api.dice({prediction: x, target: new Uint8Array([1, 0, 1]), shape: [1, 3, 2], activation: 'softmax',
                                     mask: new Uint8Array([1, 0, 1])}));
    expect(errorClass(e)).toBe('RangeError');
    expect(e.message).toMatch(/for prediction but received NaN at index 2/);
  });
  test('NaN in the prediction on an ignoreIndex voxel (softmax) -> RangeError', () => {
    const x = p();
    x[3] = Number.NaN;
    const e = thrown(() => api.dice({prediction: x, target: new Uint8Array([1, 255, 1]), shape: [1, 3, 2], activation: 'softmax',
                                     ignoreIndex: 255}));
    expect(errorClass(e)).toBe('RangeError');
    expect(e.message).toMatch(/for prediction but received NaN at index 3/);
  });
});
