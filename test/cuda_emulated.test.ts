/**
 * The CUDA kernels (cuda/*.cu), compiled as C++ over the SIMT emulation
 * (cuda/simt.h) and run on the CPU: blocks in sequence, every CUDA thread a
 * fiber, __syncthreads and warp shuffles real barriers. The same host code
 * as on a GPU stages the tensors through pinned buffers, here in pieces of
 * one chunk so that the pipeline runs over many pieces.
 *
 * Oracles: the float64 reference on the whole matrix of kernel tests
 * (kernel_suites.ts) plus shapes that span several chunks (8192 voxels each)
 * on the vector-load path (V a multiple of 4) and the scalar path; run-to-run
 * bit identity; the CPU backend's bad-input messages.
 *
 * Tolerances: test/tolerances.ts (nativeLoss, nativeLosses, nativeGradient).
 */
import * as api from '../lib';
import {lossOnDevice} from '../lib/api';
import {emulated, runLossEmulated} from './emulation';
import type {AnyLossArgs, LossName} from '../lib/types';
import {Config, LOSSES, REDUCTIONS, Runner, cfgName, compare, defineReferenceSuites, makeInputs} from './kernel_suites';
import {errorClass, expectBitIdentical, mulberry32, seedOf, thrown} from './tolerances';

const runEmulated: Runner = (name, a) => runLossEmulated(name, a);

// 2 x 16384 voxels: two full chunks per sample, vector loads; 2 x 9 x 37 x 29
// (9657 voxels, odd): a full chunk and a partial one per sample, scalar loads.
defineReferenceSuites('cuda-emulated', runEmulated, [
  ['2 chunks per sample, vector path [2,64,32,8,C]', (C) => [2, 64, 32, 8, C]],
  ['a partial chunk, scalar path [2,9,37,29,C]', (C) => [2, 9, 37, 29, C]],
]);

const CFG: Config[] = [
  {C: 1, activation: 'sigmoid', target: 'Uint8'},
  {C: 2, activation: 'softmax', target: 'Uint16'},
  {C: 5, activation: 'softmax', target: 'Int32'},
  {C: 2, activation: 'none', target: 'dense-soft'},
];

describe('cuda-emulated: the same input gives bit-identical results', () => {
  it.each(LOSSES)('%s', (name) => {
    for (const cfg of CFG) {
      const shape = [2, 40, 50, 10, cfg.C];
      const {prediction, target} = makeInputs(cfg, shape, `${name} determinism`);
      const args: AnyLossArgs = {prediction, target, shape, activation: cfg.activation, reduction: 'none'};
      const a = runEmulated(name, args), b = runEmulated(name, args);
      expectBitIdentical(a.losses, b.losses, 'losses');
      expectBitIdentical(a.gradient, b.gradient, 'gradient');
    }
  });
});

describe('cuda-emulated: a 16 x 17 x 13 volume in 16 classes with a mask and ignoreIndex', () => {
  it.each(LOSSES)('%s', (name) => {
    const cfg: Config = {C: 16, activation: 'softmax', target: 'Uint8'};
    const shape = [2, 16, 17, 13, 16];
    const {prediction, target} = makeInputs(cfg, shape, `${name} 16 classes`);
    const mask = new Uint8Array(target.length).map((_, i) => (i % 7 === 3 ? 0 : 1));
    for (let i = 0; i < target.length; i += 11) target[i] = 255;
    compare(runEmulated, name, {prediction, target, shape, activation: 'softmax', mask, ignoreIndex: 255,
                                reduction: REDUCTIONS[4].reduction, gradScale: REDUCTIONS[4].gradScale(2)});
  });
});

// The kernels take exp / log / log1p in float32 (voxel_math.h, device
// flavour). Confident predictions are where that could hurt (1 - p, log q
// and g - sum p g of a saturated class near 0), so: 98% of the voxels with
// logits 10 to 20 away from the wrong classes, the rest unsure (with
// activation 'none': every voxel's probabilities 1e-6 from its label).
describe('cuda-emulated: confident predictions keep the contract accuracy', () => {
  const cfgs: Config[] = [
    {C: 1, activation: 'sigmoid', target: 'Uint8'},
    {C: 2, activation: 'softmax', target: 'Uint8'},
    {C: 3, activation: 'softmax', target: 'Uint8'},
    {C: 3, activation: 'sigmoid', target: 'Uint8'},
    {C: 1, activation: 'none', target: 'Uint8'},
    {C: 2, activation: 'none', target: 'Uint8'},
  ];
  it.each(LOSSES)('%s', (name) => {
    for (const cfg of cfgs) {
      const shape = [2, 30, 20, 21, cfg.C];
      const {prediction, target} = makeInputs(cfg, shape, `${name} confident`);
      const labels = target as Uint8Array;
      const rand = mulberry32(seedOf(`${name} ${cfg.C} ${cfg.activation} confident`));
      for (let v = 0; v < labels.length; v++) {
        if (cfg.activation === 'none') {
          // every voxel 1e-6 from its label: a float32 log of q = 1 - p would
          // be off by the same ~1e-8 at each (log q near 0)
          const d = 1e-6;
          if (cfg.C === 1) prediction[v] = labels[v] === 1 ? 1 - d : d;
          else for (let c = 0; c < cfg.C; c++) prediction[v * cfg.C + c] = c === labels[v] ? 1 - d : d / (cfg.C - 1);
          continue;
        }
        if (rand() < 0.02) continue;  // unsure: keep makeInputs' logits in [-3, 3]
        const margin = 10 + 10 * rand();
        if (cfg.C === 1) prediction[v] = labels[v] === 1 ? margin : -margin;
        else for (let c = 0; c < cfg.C; c++) prediction[v * cfg.C + c] = c === labels[v] ? margin : -margin;
      }
      compare(runEmulated, name, {prediction, target, shape, activation: cfg.activation});
    }
  });
  // x - max beyond float32's range (both logits finite) must not turn into
  // -inf, and then NaN, on its way into the float32 exp.
  it.each(LOSSES)('%s: logits +-3e38', (name) => {
    const shape = [1, 6, 2];
    const prediction = Float32Array.from([3e38, -3e38, -3e38, 3e38, 1, -2, 0, 0, -3e38, 3e38, 2, 1]);
    const target = Uint8Array.from([1, 1, 0, 0, 0, 1]);
    const got = compare(runEmulated, name, {prediction, target, shape, activation: 'softmax'});
    expect(Number.isFinite(got.loss)).toBe(true);
    expect(Array.from(got.gradient!).every(Number.isFinite)).toBe(true);
  });
});

describe('cuda-emulated: bad input is reported as the CPU backend reports it', () => {
  const cases: Array<[string, () => AnyLossArgs]> = [
    ['a label out of range in the second chunk', () => {
      const shape = [1, 20000, 2];
      const {prediction, target} = makeInputs({C: 2, activation: 'softmax', target: 'Uint8'}, shape, 'bad label');
      target[12345] = 7;
      return {prediction, target, shape, activation: 'softmax'};
    }],
    ['a NaN logit in sample 2', () => {
      const shape = [2, 9000, 3];
      const {prediction, target} = makeInputs({C: 3, activation: 'softmax', target: 'Int32'}, shape, 'bad logit');
      prediction[3 * 9000 + 3 * 17 + 2] = Number.NaN;
      return {prediction, target, shape, activation: 'softmax'};
    }],
    ['a probability above 1 with activation none', () => {
      const shape = [1, 100, 1];
      const {prediction, target} = makeInputs({C: 1, activation: 'none', target: 'Uint8'}, shape, 'bad p');
      prediction[99] = 1.5;
      return {prediction, target, shape};
    }],
  ];
  it.each(cases)('%s', (_, make) => {
    for (const name of LOSSES) {
      const args = make();
      const cpu = thrown(() => (api[name] as (a: AnyLossArgs) => unknown)(args));
      const emu = thrown(() => runEmulated(name as LossName, args));
      expect(errorClass(emu)).toBe('RangeError');
      expect(emu.message).toBe(cpu.message);
      // the record travels with the error: the argument, the element's index, the value
      const rec = (e: Error) => {
        const r = e as Error & {argument?: string; index?: number; value?: number};
        return {argument: r.argument, index: r.index, value: r.value};
      };
      expect(rec(emu)).toEqual(rec(cpu));
      expect(typeof rec(cpu).index).toBe('number');
      expect(cpu.message).toContain(`for ${rec(cpu).argument} but received`);
      expect(cpu.message).toContain(`at index ${rec(cpu).index}`);
      // device-resident tensors: the bad chunk is downloaded and its index moved back
      const x = emulated.upload(args.prediction as Float32Array), t = emulated.upload(args.target as Uint8Array);
      const {prediction: _p, target: _t, ...rest} = args;
      const dev = thrown(() => lossOnDevice(name as LossName, {...rest, prediction: x, target: t} as never));
      x.release();
      t.release();
      expect(dev.message).toBe(cpu.message);
      expect(rec(dev)).toEqual(rec(cpu));
    }
  });
});

// The class-lane kernels (cuda/class_lanes.cuh): 4, 8, 16 or 32 lanes per
// voxel, two classes a lane past 32; every lane shape against the float64
// reference, with the options that change which lanes keep a voxel.
describe('cuda-emulated: every class-lane shape, up to 64 classes', () => {
  const cases: Array<[number, Config]> = [
    [4, {C: 4, activation: 'softmax', target: 'Uint8'}],
    [7, {C: 7, activation: 'sigmoid', target: 'dense-soft'}],
    [16, {C: 16, activation: 'none', target: 'dense-onehot'}],
    [17, {C: 17, activation: 'softmax', target: 'Int32'}],
    [32, {C: 32, activation: 'none', target: 'Float32-sparse'}],
    [33, {C: 33, activation: 'softmax', target: 'dense-soft'}],
    [64, {C: 64, activation: 'softmax', target: 'Uint16'}],
    [64, {C: 64, activation: 'sigmoid', target: 'Uint8'}],
  ];
  it.each(LOSSES)('%s', (name) => {
    for (const [C, cfg] of cases) {
      const shape = [2, 7, 5, 3, C];
      const {prediction, target} = makeInputs(cfg, shape, `${name} lanes ${cfgName(cfg)}`);
      const sparse = !cfg.target.startsWith('dense');
      const args: AnyLossArgs = {prediction, target, shape, activation: cfg.activation, reduction: 'none'};
      if (sparse) {
        for (let i = 0; i < target.length; i += 9) target[i] = 255;
        args.ignoreIndex = 255;
        args.mask = new Uint8Array(target.length).map((_, i) => (i % 5 === 2 ? 0 : 1));
      }
      compare(runEmulated, name, args);
    }
  });
});

// Logits of +-80 (float32 exp of -160 underflows; the pipeline must not
// turn that into 0 / 0), and a class that holds one voxel of the volume: on
// the one- and two-channel kernels (C = 1, 2; float32 voxels) and the class
// lanes.
describe('cuda-emulated: logits +-80 and a one-voxel class', () => {
  it.each(LOSSES)('%s', (name) => {
    for (const C of [1, 2, 3, 8, 33]) {
      const activation = C === 1 ? 'sigmoid' : 'softmax';
      const K = C === 1 ? 2 : C;
      const cfg: Config = {C, activation, target: 'Uint8'};
      const shape = [1, 11, 13, 7, C];
      const {prediction, target} = makeInputs(cfg, shape, `${name} +-80 ${C}`);
      const labels = target as Uint8Array;
      for (let v = 0; v < labels.length; v++) {
        if (labels[v] === K - 1) labels[v] = 0;  // the last class on voxel 500 alone
        if (v === 500) labels[v] = K - 1;
        if (v % 50 === 7) continue;  // a few unsure voxels
        if (C === 1) prediction[v] = labels[v] === 1 ? 80 : -80;
        else for (let c = 0; c < C; c++) prediction[v * C + c] = c === labels[v] ? 80 : -80;
      }
      const got = compare(runEmulated, name, {prediction, target, shape, activation});
      expect(Array.from(got.gradient!).every(Number.isFinite)).toBe(true);
    }
  });
});

// The one- and two-channel kernels run Generalized Dice, Dice and
// sensitivity-specificity with sparse labels on float32 voxels
// (vm::SplitF32). Every voxel the same (two mirrored kinds): the float32
// roundings then repeat in every voxel and thread instead of averaging out.
// Margins from unsure to saturated (0.3 .. 40), logits whose difference
// float32 rounds, each label type, and dense targets (float64 voxels) next
// to them; each through the vector and the scalar path.
describe('cuda-emulated: volumes of equal voxels, C = 1 and 2', () => {
  const cfgs: Config[] = [
    {C: 2, activation: 'softmax', target: 'Uint8'},
    {C: 2, activation: 'softmax', target: 'dense-onehot'},
    {C: 2, activation: 'sigmoid', target: 'Float32-sparse'},
    {C: 2, activation: 'none', target: 'Int32'},
    {C: 2, activation: 'none', target: 'dense-soft'},
    {C: 1, activation: 'sigmoid', target: 'Uint16'},
    {C: 1, activation: 'none', target: 'Float32-binary'},
  ];
  it.each(LOSSES)('%s', (name) => {
    for (const cfg of cfgs) {
      for (const margin of [0.3, 2.9, 7.7, 17.3, 40]) {
        for (const V of [4 * 3000, 3001]) {
          const C = cfg.C;
          const shape = [1, V, C];
          const {prediction, target} = makeInputs(cfg, shape, `${name} equal voxels ${cfgName(cfg)}`);
          // logits x0 and x0 - margin (the larger one on the label), or
          // probabilities that far from 0 and 1
          const hi = 1.3 + margin / 3, lo = hi - margin;
          const q = 1 / (1 + Math.exp(margin));  // the 'none' voxel's distance from its target
          for (let v = 0; v < V; v++) {
            const label = v % 3 === 0 ? 1 : 0;
            if (C === 1) {
              prediction[v] = cfg.activation === 'none' ? (label ? 1 - q : q) : label ? margin : -margin;
              (target as Float32Array | Uint16Array)[v] = label;
              continue;
            }
            for (let c = 0; c < 2; c++) {
              const on = c === label;
              prediction[v * 2 + c] = cfg.activation === 'none' ? (on ? 1 - q : q) : on ? hi : lo;
              if (cfg.target.startsWith('dense')) {
                (target as Float32Array)[v * 2 + c] = cfg.target === 'dense-soft' ? (on ? 1 - q / 3 : q / 3) : on ? 1 : 0;
              }
            }
            if (!cfg.target.startsWith('dense')) (target as Float32Array | Int32Array | Uint8Array)[v] = label;
          }
          compare(runEmulated, name, {prediction, target, shape, activation: cfg.activation});
        }
      }
    }
  });
});

// ignoreIndex against int32 and float32 labels, compared as numbers (the
// float32 voxels compare it as an int32 or a float32 only where it is one).
describe('cuda-emulated: ignoreIndex at the edges of int32 and float32 labels, C = 2', () => {
  it.each(LOSSES)('%s', (name) => {
    const shape = [1, 5000, 2];
    const i32 = makeInputs({C: 2, activation: 'softmax', target: 'Int32'}, shape, `${name} ignore i32`);
    const labels = i32.target as Int32Array;
    for (let v = 0; v < labels.length; v += 7) labels[v] = 2147483647;
    compare(runEmulated, name, {prediction: i32.prediction, target: labels, shape, activation: 'softmax',
                                ignoreIndex: 2147483647});
    // 2^24 is a float32 number, 2^24 + 1 is not: the same label is ignored by
    // the first and bad for the second, as on the CPU
    const f32 = makeInputs({C: 2, activation: 'softmax', target: 'Float32-sparse'}, shape, `${name} ignore f32`);
    const fl = f32.target as Float32Array;
    for (let v = 0; v < fl.length; v += 7) fl[v] = 16777216;
    compare(runEmulated, name, {prediction: f32.prediction, target: fl, shape, activation: 'softmax',
                                ignoreIndex: 16777216});
    const args: AnyLossArgs = {prediction: f32.prediction, target: fl, shape, activation: 'softmax',
                               ignoreIndex: 16777217};
    const cpu = thrown(() => (api[name] as (a: AnyLossArgs) => unknown)(args));
    const emu = thrown(() => runEmulated(name, args));
    expect(emu.message).toBe(cpu.message);
  });
});

test('cuda-emulated: more than 64 classes is refused with the reason', () => {
  const shape = [1, 3, 65];
  const {prediction, target} = makeInputs({C: 65, activation: 'softmax', target: 'Uint8'}, shape, '65 classes');
  const e = thrown(() => runEmulated('generalizedDice', {prediction, target, shape, activation: 'softmax'}));
  expect(e.message).toBe("Expected a usable CUDA device for device but received 'cuda': the CUDA kernels take at " +
                         'most 64 classes per voxel and the input has C = 65');
});
