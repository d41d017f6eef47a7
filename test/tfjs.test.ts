/**
 * segloss/tfjs on the 'cpu' backend (@tensorflow/tfjs) and the 'tensorflow'
 * backend (@tensorflow/tfjs-node): value and tf.grad against the float64
 * reference and against the same loss composed from tfjs ops, upstream
 * gradients, per-sample reduction, tensor leaks, the no-gradient path,
 * registration, and tfjs-style errors.
 */
import {execFileSync} from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tfn from '@tensorflow/tfjs-node';

import {reference} from '../lib/reference';
import {mulberry32} from '../lib/reference/random';
import {LOSS_GRAD_KERNEL, LOSS_KERNEL, losses, metrics, ops, registerSeglossKernels} from '../lib/tfjs';
import {addonFile} from '../lib/native';
import {setTensorflowOpEnabled, tensorflowOpsState, tensorflowOpStatus} from '../lib/tfjs/kernels';
import type {LossName} from '../lib/types';
import {TOL, expectClose} from './tolerances';

// eslint-disable-next-line @typescript-eslint/no-var-requires
require('../../shared/tools/tf221-shim')(tfn);
const tf = tfn as unknown as typeof import('@tensorflow/tfjs-core');

const BACKENDS = ['cpu', 'tensorflow'];
const LOSSES: LossName[] = ['generalizedDice', 'dice', 'sensitivitySpecificity', 'weightedCrossEntropy'];

interface Case {
  name: string;
  shape: number[];
  activation: 'none' | 'softmax' | 'sigmoid';
}
const CASES: Case[] = [
  {name: 'binary map, sigmoid logits', shape: [2, 4, 5, 3, 1], activation: 'sigmoid'},
  {name: 'three classes, softmax logits', shape: [2, 3, 4, 5, 3], activation: 'softmax'},
  {name: 'two classes, probabilities', shape: [1, 6, 5, 4, 2], activation: 'none'},
];

function inputs(c: Case, seed: number) {
  const rand = mulberry32(seed);
  const n = c.shape.reduce((a, b) => a * b, 1);
  const C = c.shape[c.shape.length - 1];
  const V = n / C;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rand() - 0.5) * 4;
  if (c.activation === 'none') {
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let l = 0; l < C; l++) s += (x[v * C + l] = Math.exp(x[v * C + l]));
      for (let l = 0; l < C; l++) x[v * C + l] /= s;
    }
  }
  const labels = new Int32Array(V);
  for (let v = 0; v < V; v++) labels[v] = Math.floor(rand() * Math.max(C, 2));
  return {x, labels};
}

describe.each(BACKENDS)('backend %s', (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
    expect(tf.getBackend()).toBe(backend);
  });

  describe.each(CASES)('$name', (c) => {
    it.each(LOSSES)('%s: value and tf.grad with dy = 2.5 match the float64 reference', (loss) => {
      const {x, labels} = inputs(c, 17);
      const spatial = c.shape.slice(0, -1);
      const yPred = tf.tensor(x, c.shape);
      const yTrue = tf.tensor(labels, spatial, 'int32');
      const f = (p: import('@tensorflow/tfjs-core').Tensor) => tf.mul(ops[loss](yTrue, p, {activation: c.activation}), 2.5);
      const value = f(yPred);
      const grad = tf.grad(f)(yPred);
      const ref = reference(loss, {prediction: x, shape: c.shape, target: labels, activation: c.activation, gradScale: 2.5});
      expectClose(value.dataSync(), [ref.loss * 2.5], TOL.tfjsLoss, `${backend} ${loss} loss`);
      expectClose(grad.dataSync(), ref.gradient, TOL.tfjsGradient, `${backend} ${loss} gradient`);
      tf.dispose([yPred, yTrue, value, grad]);
    });
  });

  it('reduction none: per-sample losses and a per-sample upstream gradient', () => {
    const c = CASES[1];
    const {x, labels} = inputs(c, 5);
    const yPred = tf.tensor(x, c.shape);
    const yTrue = tf.tensor(labels, c.shape.slice(0, -1), 'int32');
    const w = tf.tensor([0.7, -1.3]);
    const f = (p: import('@tensorflow/tfjs-core').Tensor) =>
      tf.sum(tf.mul(ops.generalizedDice(yTrue, p, {activation: 'softmax', reduction: 'none'}), w));
    const per = ops.generalizedDice(yTrue, yPred, {activation: 'softmax', reduction: 'none'});
    expect(per.shape).toEqual([2]);
    const grad = tf.grad(f)(yPred);
    const ref = reference('generalizedDice', {prediction: x, shape: c.shape, target: labels, activation: 'softmax',
                                              reduction: 'none', gradScale: new Float64Array([0.7, -1.3])});
    expectClose(per.dataSync(), ref.losses, TOL.tfjsLoss, 'per-sample losses');
    expectClose(grad.dataSync(), ref.gradient, TOL.tfjsGradient, 'per-sample gradient');
    tf.dispose([yPred, yTrue, w, per, grad]);
  });

  it('Generalized Dice matches the same loss composed from tfjs ops (value and gradient), dense one-hot yTrue', () => {
    const c = CASES[2];
    const {x, labels} = inputs(c, 9);
    const yPred = tf.tensor(x, c.shape);
    const yTrue = tf.oneHot(tf.tensor(labels, c.shape.slice(0, -1), 'int32'), 2).toFloat();
    const composite = (p: import('@tensorflow/tfjs-core').Tensor) => {
      const axes = [0, 1, 2, 3];
      const G = tf.sum(yTrue, axes);
      const w = tf.div(1, tf.square(G));
      const I = tf.sum(tf.mul(p, yTrue), axes);
      const S = tf.add(tf.sum(p, axes), G);
      return tf.sub(1, tf.div(tf.add(tf.mul(2, tf.sum(tf.mul(w, I))), 1e-5), tf.add(tf.sum(tf.mul(w, S)), 1e-5)));
    };
    const ours = (p: import('@tensorflow/tfjs-core').Tensor) => ops.generalizedDice(yTrue, p);
    expectClose(ours(yPred).dataSync(), composite(yPred).dataSync(), TOL.tfjsComposite, 'GDL value vs composite');
    expectClose(tf.grad(ours)(yPred).dataSync(), tf.grad(composite)(yPred).dataSync(), TOL.tfjsComposite,
                'GDL gradient vs composite');
  });

  it('leaks no tensors over 50 training steps', () => {
    const c = CASES[1];
    const {x, labels} = inputs(c, 3);
    const v = tf.variable(tf.tensor(x, c.shape));
    const yTrue = tf.tensor(labels, c.shape.slice(0, -1), 'int32');
    const opt = tf.train.sgd(0.1);
    opt.minimize(() => ops.dice(yTrue, v, {activation: 'softmax'}) as import('@tensorflow/tfjs-core').Scalar);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) {
      opt.minimize(() => ops.dice(yTrue, v, {activation: 'softmax'}) as import('@tensorflow/tfjs-core').Scalar);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([v, yTrue]);
    opt.dispose();
  });

  it('runs the gradient kernel only when a gradient is taken', () => {
    const c = CASES[0];
    const {x, labels} = inputs(c, 4);
    const yPred = tf.tensor(x, c.shape);
    const yTrue = tf.tensor(labels, c.shape.slice(0, -1), 'int32');
    const engine = tf.engine();
    const spy = jest.spyOn(engine, 'runKernel');
    const kernelsRun = () => spy.mock.calls.map((call) => call[0]);
    tf.dispose(ops.generalizedDice(yTrue, yPred, {activation: 'sigmoid'}));
    expect(kernelsRun()).toContain(LOSS_KERNEL);
    expect(kernelsRun()).not.toContain(LOSS_GRAD_KERNEL);
    tf.dispose(tf.grad((p: import('@tensorflow/tfjs-core').Tensor) => ops.generalizedDice(yTrue, p, {activation: 'sigmoid'}))(yPred));
    expect(kernelsRun().filter((k) => k === LOSS_GRAD_KERNEL)).toHaveLength(1);
    spy.mockRestore();
    tf.dispose([yPred, yTrue]);
  });

  it('registration is idempotent and per backend', () => {
    registerSeglossKernels(backend);
    registerSeglossKernels(backend);
    expect(tf.getKernel(LOSS_KERNEL, backend)).toBeDefined();
    expect(tf.getKernel(LOSS_GRAD_KERNEL, backend)).toBeDefined();
    expect(tf.getGradient(LOSS_KERNEL)).toBeDefined();
  });

  it('losses and metrics have the tfjs-layers signature', () => {
    const c = CASES[1];
    const {x, labels} = inputs(c, 8);
    const yPred = tf.tensor(x, c.shape);
    const yTrue = tf.tensor(labels, [...c.shape.slice(0, -1), 1]);  // float class indices, last axis 1
    for (const make of [losses.generalizedDice, losses.dice, losses.sensitivitySpecificity, losses.weightedCrossEntropy]) {
      const l = make({activation: 'softmax'})(yTrue, yPred);
      expect(l.shape).toEqual([]);
      expect(Number.isFinite(l.dataSync()[0])).toBe(true);
    }
    const perfect = tf.oneHot(tf.tensor(labels, c.shape.slice(0, -1), 'int32'), 3).toFloat();
    expect(metrics.dice()(yTrue, perfect).dataSync()[0]).toBeCloseTo(1, 6);
    expect(metrics.generalizedDiceScore()(yTrue, perfect).dataSync()[0]).toBeCloseTo(1, 4);
  });

  it('shape and dtype mismatches throw tfjs-style errors', () => {
    const yPred = tf.zeros([1, 4, 4, 2]);
    expect(() => ops.dice(tf.zeros([1, 4, 3], 'int32'), yPred)).toThrow(/yTrue must have the shape of yPred/);
    expect(() => ops.dice(tf.zeros([1, 4, 4], 'bool'), yPred)).toThrow(/yTrue must be float32 or int32, but got dtype bool/);
    expect(() => ops.dice(tf.zeros([1, 4, 4], 'int32'), tf.zeros([1, 4, 4, 2], 'int32'))).toThrow(/yPred must be float32/);
    expect(() => ops.dice(tf.zeros([1, 4, 4, 2], 'int32'), yPred)).toThrow(/dense \(one-hot\) yTrue must be float32/);
    expect(() => ops.dice(tf.fill([1, 4, 4], 7, 'int32'), yPred)).toThrow(/for target but received 7 at index 0/);
  });

  it('options of the typed-array API that tensors replace are refused by name', () => {
    const yPred = tf.fill([1, 4, 4, 2], 0.5);
    const yTrue = tf.zeros([1, 4, 4], 'int32');
    const bad: Array<[string, object, RegExp]> = [
      ['mask', {mask: new Uint8Array(16)}, /option 'mask' is not taken by segloss\/tfjs ops \(masks are not supported on tensors/],
      ['gradient', {gradient: false}, /option 'gradient' is not taken .*tf\.grad/],
      ['gradScale', {gradScale: 2}, /option 'gradScale' is not taken .*upstream dy/],
      ['shape', {shape: [1, 4, 4, 2]}, /option 'shape' is not taken/],
    ];
    const before = tf.memory().numTensors;
    for (const [, options, re] of bad) expect(() => ops.generalizedDice(yTrue, yPred, options as never)).toThrow(re);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([yPred, yTrue]);
  });
});

describe('backend tensorflow: the passes run inside TensorFlow', () => {
  type T = import('@tensorflow/tfjs-core').Tensor;
  beforeAll(async () => {
    await tf.setBackend('tensorflow');
  });
  afterEach(() => setTensorflowOpEnabled(true));

  /** Tensors held in TensorFlow, as a network's output and a batch's labels are. */
  const held = (t: T) => tf.tidy(() => tf.add(t, tf.zerosLike(t)));

  it('registers its ops in tfjs-node\'s TensorFlow and reads nothing out of TensorFlow but dy', () => {
    const c = CASES[1];
    const {x, labels} = inputs(c, 21);
    const yPred = held(tf.tensor(x, c.shape));
    const yTrue = held(tf.tensor(labels, c.shape.slice(0, -1), 'int32'));
    const backend = tf.backend() as unknown as {readSync(id: object): unknown};
    const spy = jest.spyOn(backend, 'readSync');
    const {value, grad} = tf.valueAndGrad((p: T) => ops.generalizedDice(yTrue, p, {activation: 'softmax'}))(yPred);
    expect(tensorflowOpStatus()).toEqual({available: true, reason: undefined});
    // one read: dy, the scalar upstream gradient of the backward kernel
    expect(spy.mock.calls).toHaveLength(1);
    spy.mockRestore();
    const ref = reference('generalizedDice', {prediction: x, shape: c.shape, target: labels, activation: 'softmax'});
    expectClose(value.dataSync(), [ref.loss], TOL.tfjsLoss, 'loss');
    expectClose(grad.dataSync(), ref.gradient, TOL.tfjsGradient, 'gradient');
    tf.dispose([yPred, yTrue, value, grad]);
  });

  const TARGETS = ['int32 indices', 'float indices [..., 1]', 'dense one-hot'] as const;
  const OPTIONS: Array<Record<string, unknown>> = [
    {},
    {reduction: 'none'},
    {includeBackground: false, ignoreIndex: 1},
    {reduction: 'mean', weighting: 'simple'},
  ];
  it.each(LOSSES)('%s: in TensorFlow and through copies, value and gradient agree bit for bit', (loss) => {
    const c: Case = {name: 'big', shape: [2, 40, 33, 17, 3], activation: 'softmax'};  // several chunks per sample
    const {x, labels} = inputs(c, 33);
    const spatial = c.shape.slice(0, -1);
    const yPred = held(tf.tensor(x, c.shape));
    for (const target of TARGETS) {
      const yTrue = held(target === 'int32 indices' ? tf.tensor(labels, spatial, 'int32')
        : target === 'dense one-hot' ? tf.oneHot(tf.tensor(labels, spatial, 'int32'), 3).toFloat()
          : tf.tensor(Float32Array.from(labels), [...spatial, 1]));
      for (const opts of OPTIONS) {
        if (loss !== 'generalizedDice' && opts.weighting) continue;  // a Generalized Dice option
        const o = {activation: 'softmax', ...opts};
        const dy = opts.reduction === 'none' ? tf.tensor([0.5, -2]) : tf.scalar(3);
        const run = () => tf.tidy(() => {
          const f = (p: T) => tf.sum(tf.mul((ops[loss] as (t: T, p: T, o: object) => T)(yTrue, p, o), dy));
          const {value, grad} = tf.valueAndGrad(f)(yPred);
          return [value.dataSync(), grad.dataSync()];
        });
        const inside = run();
        setTensorflowOpEnabled(false);
        const copied = run();
        setTensorflowOpEnabled(true);
        const what = `${loss} ${target} ${JSON.stringify(opts)}`;
        expect({what, value: Array.from(inside[0])}).toEqual({what, value: Array.from(copied[0])});
        expect({what, same: Buffer.compare(Buffer.from(inside[1].buffer), Buffer.from(copied[1].buffer))})
          .toEqual({what, same: 0});
        dy.dispose();
      }
      yTrue.dispose();
    }
    yPred.dispose();
  });

  it('leaves no tensor behind in TensorFlow or in the backend over 50 training steps', () => {
    const c = CASES[1];
    const {x, labels} = inputs(c, 3);
    const v = tf.variable(held(tf.tensor(x, c.shape)));
    const yTrue = held(tf.tensor(labels, c.shape.slice(0, -1), 'int32'));
    const opt = tf.train.sgd(0.1);
    const b = tf.backend() as unknown as {numDataIds(): number; binding: {getNumOfTensors(): number}};
    const minimize = () => opt.minimize(() => ops.generalizedDice(yTrue, v, {activation: 'softmax'}) as import('@tensorflow/tfjs-core').Scalar);
    minimize();
    const before = {tensors: tf.memory().numTensors, dataIds: b.numDataIds(), handles: b.binding.getNumOfTensors()};
    for (let i = 0; i < 50; i++) minimize();
    expect({tensors: tf.memory().numTensors, dataIds: b.numDataIds(), handles: b.binding.getNumOfTensors()}).toEqual(before);
    expect(tensorflowOpStatus()).toEqual({available: true, reason: undefined});
    tf.dispose([v, yTrue]);
    opt.dispose();
  });

  it('throws a pass\'s error with segloss\'s message and leaks no tensors', () => {
    const yPred = held(tf.fill([1, 4, 4, 2], 0.5));
    const bad = held(tf.fill([1, 4, 4], 7, 'int32'));
    ops.dice(held(tf.zeros([1, 4, 4], 'int32')), yPred).dispose();  // registered, tensors settled
    const before = tf.memory().numTensors;
    expect(() => ops.dice(bad, yPred)).toThrow(/for target but received 7 at index 0/);
    expect(() => tf.grad((p: T) => ops.dice(bad, p))(yPred)).toThrow(/for target but received 7 at index 0/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('says why where its ops cannot be registered (no TensorFlow in the process)', () => {
    const addon = addonFile();
    const out = execFileSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(addon)}).registerTensorflowOps()))`]);
    expect(JSON.parse(out.toString())).toEqual({available: false, statsOp: expect.stringMatching(/^SeglossStats[0-9a-f]+$/),
      gradientOp: expect.stringMatching(/^SeglossGradient[0-9a-f]+$/),
      reason: 'TensorFlow is not loaded in this process (load @tensorflow/tfjs-node before registering)'});
  });

  it.each(['statsOp', 'gradientOp'] as const)('falls back to copying, and says why, when TensorFlow cannot run its %s', (which) => {
    const c = CASES[1];
    const {x, labels} = inputs(c, 13);
    const yPred = held(tf.tensor(x, c.shape));
    const yTrue = held(tf.tensor(labels, c.shape.slice(0, -1), 'int32'));
    const f = (p: T) => ops.dice(yTrue, p, {activation: 'softmax'});
    const expected = tf.tidy(() => {
      const {value, grad} = tf.valueAndGrad(f)(yPred);
      return [value.dataSync(), grad.dataSync()];
    });
    const state = tensorflowOpsState()!;
    const saved = {...state};
    state[which] = 'NoSuchSeglossOp';
    try {
      const got = tf.tidy(() => {
        const {value, grad} = tf.valueAndGrad(f)(yPred);
        return [value.dataSync(), grad.dataSync()];
      });
      expect(tensorflowOpStatus()).toEqual({available: false, reason: expect.stringMatching(/^TensorFlow could not run NoSuchSeglossOp: .*'NoSuchSeglossOp' is neither/)});
      expect(Array.from(got[0])).toEqual(Array.from(expected[0]));
      expect(Array.from(got[1])).toEqual(Array.from(expected[1]));
    } finally {
      Object.assign(tensorflowOpsState()!, saved, {reason: undefined});
    }
    expect(tensorflowOpStatus()).toEqual({available: true, reason: undefined});
    tf.dispose([yPred, yTrue]);
  });

  it('two copies of the addon in one process register their own ops', () => {
    const addon = addonFile();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segloss-'));
    const copy = path.join(dir, 'segloss.node');
    fs.copyFileSync(addon, copy);
    const script = `const tf = require('@tensorflow/tfjs-node');
      const r = [${JSON.stringify(addon)}, ${JSON.stringify(copy)}].map((f) => require(f).registerTensorflowOps());
      console.log(JSON.stringify({r, sum: tf.sum(tf.ones([3])).dataSync()[0]}));`;
    let out: Buffer;
    try {
      out = execFileSync(process.execPath, ['-e', script], {cwd: path.join(__dirname, '..'), env: {...process.env, TF_CPP_MIN_LOG_LEVEL: '2'}});
    } finally {
      fs.rmSync(dir, {recursive: true, force: true});
    }
    const {r, sum} = JSON.parse(out.toString().trim().split('\n').pop()!);
    expect(r.map((x: {available: boolean}) => x.available)).toEqual([true, true]);
    expect(r[0].statsOp).not.toBe(r[1].statsOp);
    expect(sum).toBe(3);  // TensorFlow's op registry is still usable (a duplicate name aborts the process)
  });

  it('refuses to run its op without a job', () => {
    const b = tf.backend() as unknown as {executeMultipleOutputs(n: string, a: object[], i: T[], k: number): unknown;
      binding: {TF_ATTR_TYPE: number; TF_INT32: number}};
    const yPred = held(tf.fill([1, 2, 2], 0.5));
    const yTrue = held(tf.zeros([1, 2], 'int32'));
    ops.dice(yTrue, yPred).dispose();
    const job = tf.scalar(987654, 'int32');
    expect(() => b.executeMultipleOutputs(tensorflowOpsState()!.statsOp, [{name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_INT32}],
                                          [job, yTrue, yPred], 0)).toThrow(/segloss op ran with no such job/);
    tf.dispose([job, yTrue, yPred]);
  });
});
