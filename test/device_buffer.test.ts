/**
 * Device-resident tensors (DeviceBuffer, lossOnDevice), run through the CPU
 * emulation of the CUDA backend, whose "device memory" is host memory: the
 * same glue, validation and backend code as on a GPU, with no GPU.
 *
 * Oracles: the typed-array API on the CPU (same inputs) within the native
 * tolerances; the float64 reference through it. Errors: one per argument
 * rule, each message matched.
 */
import * as api from '../lib';
import {lossOnDevice, lossOnDeviceAsync} from '../lib/api';
import {DeviceBuffer} from '../lib/device_buffer';
import {emulated} from './emulation';
import type {AnyLossArgs} from '../lib/types';
import {Config, LOSSES, makeInputs} from './kernel_suites';
import {TOL, errorClass, expectBitIdentical, expectClose, thrown} from './tolerances';

const CONFIGS: Array<[string, Config, number[]]> = [
  ['binary map, sigmoid, Uint8', {C: 1, activation: 'sigmoid', target: 'Uint8'}, [2, 33, 31, 17, 1]],
  ['C = 2 softmax Uint16 (vector path)', {C: 2, activation: 'softmax', target: 'Uint16'}, [2, 64, 32, 8, 2]],
  ['C = 4 none, dense soft targets', {C: 4, activation: 'none', target: 'dense-soft'}, [1, 9, 11, 13, 4]],
  ['C = 3 sigmoid Int32 (multi-label)', {C: 3, activation: 'sigmoid', target: 'Int32'}, [3, 5, 7, 11, 3]],
];

describe.each(LOSSES)('%s: lossOnDevice (emulated device) = the typed-array API on the CPU', (name) => {
  it.each(CONFIGS)('%s', (_, cfg, shape) => {
    const {prediction, target} = makeInputs(cfg, shape, `${name} device ${cfg.C}`);
    const voxels = target.length / (cfg.target.startsWith('dense') ? cfg.C : 1);
    const mask = new Uint8Array(voxels).map((_, i) => (i % 5 === 2 ? 0 : 1));
    const gradScale = Float64Array.from({length: shape[0]}, (_, b) => [0.5, -1.5, 2][b % 3]);
    const args = {shape, activation: cfg.activation, reduction: 'none' as const, gradScale};
    const cpu = (api[name] as (a: AnyLossArgs) => api.LossResult)({prediction, target, mask, ...args});
    const x = emulated.upload(prediction), t = emulated.upload(target), m = emulated.upload(mask);
    const r = lossOnDevice(name, {prediction: x, target: t, mask: m, ...args});
    expectClose(r.loss, cpu.loss, TOL.nativeLoss, 'loss');
    expectClose(r.losses, cpu.losses, TOL.nativeLosses, 'losses');
    expect(r.gradient).toBeInstanceOf(DeviceBuffer);
    expect(r.gradient!.dtype).toBe('float32');
    expectClose(r.gradient!.download(), cpu.gradient, TOL.nativeGradient, 'gradient');
    // a caller gradient buffer is filled; the inputs are left as they were
    const g = emulated.alloc(prediction.length, 'float32');
    const again = lossOnDevice(name, {prediction: x, target: t, mask: m, ...args, gradient: g});
    expect(again.gradient).toBe(g);
    expectBitIdentical(g.download(), r.gradient!.download(), 'gradient into a caller buffer');
    expectBitIdentical(x.download(), prediction, 'prediction untouched');
    for (const b of [x, t, m, g, r.gradient!]) b.release();
  });
});

test('fromDevicePointer wraps memory in place; release() of a wrapper frees nothing', () => {
  const cfg: Config = {C: 2, activation: 'softmax', target: 'Uint8'};
  const shape = [1, 40, 40, 2];
  const {prediction, target} = makeInputs(cfg, shape, 'wrap');
  const x = emulated.upload(prediction), t = emulated.upload(target);
  const wx = emulated.wrap(x.pointer, prediction.length, 'float32');
  expect(wx.owned).toBe(false);
  const a = lossOnDevice('dice', {prediction: wx, target: t, shape, activation: 'softmax', gradient: false});
  const b = api.dice({prediction, target, shape, activation: 'softmax', gradient: false});
  expectClose(a.loss, b.loss, TOL.nativeLoss, 'loss');
  expect(a.gradient).toBeUndefined();
  wx.release();
  expectBitIdentical(x.download(), prediction, 'the owner\'s memory is intact after the wrapper is released');
  x.release();
  t.release();
});

test('lossOnDeviceAsync equals lossOnDevice bit for bit', async () => {
  const cfg: Config = {C: 3, activation: 'softmax', target: 'Uint8'};
  const shape = [2, 20, 30, 3];
  const {prediction, target} = makeInputs(cfg, shape, 'async');
  const x = emulated.upload(prediction), t = emulated.upload(target);
  const s = lossOnDevice('weightedCrossEntropy', {prediction: x, target: t, shape, activation: 'softmax'});
  const p = await lossOnDeviceAsync('weightedCrossEntropy', {prediction: x, target: t, shape, activation: 'softmax'});
  expectBitIdentical(p.loss, s.loss, 'loss');
  expectBitIdentical(p.gradient!.download(), s.gradient!.download(), 'gradient');
  for (const b of [x, t, s.gradient!, p.gradient!]) b.release();
});

describe('DeviceBuffer and lossOnDevice errors', () => {
  const shape = [1, 8, 2];
  const x = () => emulated.upload(new Float32Array(16).fill(0.5));
  const t = () => emulated.upload(new Uint8Array(8));
  const cases: Array<[string, string, () => unknown]> = [
    ['TypeError', 'Expected a DeviceBuffer (float32) for prediction but received a Float32Array of length 16',
     () => lossOnDevice('dice', {prediction: new Float32Array(16) as unknown as DeviceBuffer, target: t(), shape})],
    ['TypeError', 'Expected a DeviceBuffer of float32 for prediction but received a DeviceBuffer of 8 uint8',
     () => lossOnDevice('dice', {prediction: t(), target: t(), shape})],
    ['RangeError', 'Expected a prediction of 20 elements (the product of shape [1, 10, 2]) for prediction but received length 16',
     () => lossOnDevice('dice', {prediction: x(), target: t(), shape: [1, 10, 2]})],
    ['RangeError', "Expected 'cuda' or 'auto' (the tensors are DeviceBuffers) for device but received 'cpu'",
     () => lossOnDevice('dice', {prediction: x(), target: t(), shape, device: 'cpu' as 'cuda'})],
    ['RangeError', 'Expected a target of 8 class indices (shape [B, ...spatial]) or 16 dense values (the prediction\'s shape [1, 8, 2]) for target but received length 7',
     () => lossOnDevice('dice', {prediction: x(), target: emulated.upload(new Uint8Array(7)), shape})],
    ['RangeError', 'Expected a DeviceBuffer of 16 float32 for gradient but received length 8',
     () => lossOnDevice('dice', {prediction: x(), target: t(), shape, gradient: emulated.alloc(8, 'float32')})],
    ['RangeError', 'Expected integer class indices in [0, 1] for target but received 5 at index 3',
     () => lossOnDevice('dice', {prediction: x(), target: emulated.upload(new Uint8Array([0, 1, 0, 5, 0, 0, 0, 0])), shape,
                                 activation: 'softmax'})],
    ['TypeError', 'Expected a live DeviceBuffer for buffer but received a released DeviceBuffer',
     () => { const b = x(); b.release(); return b.pointer; }],
    ['RangeError', "Expected one of 'float32', 'uint8', 'uint16', 'int32' for dtype but received 'float64'",
     () => emulated.alloc(4, 'float64' as 'float32')],
    ['TypeError', 'Expected a Float32Array of length 16 for out but received a Float32Array of length 4',
     () => x().download(new Float32Array(4))],
    ['RangeError', 'Expected a non-null 64-bit device address for pointer but received 0',
     () => emulated.wrap(0n, 4, 'float32')],
  ];
  it.each(cases)('%s: %s', (cls, message, f) => {
    const e = thrown(f);
    expect(errorClass(e)).toBe(cls);
    expect(e.message).toBe(message);
  });

  test('a failed call with gradient: true leaves no buffer behind and writes nothing', () => {
    const g = emulated.upload(new Float32Array(16).fill(7));
    const bad = emulated.upload(new Float32Array(16).fill(Number.NaN));
    expect(() => lossOnDevice('dice', {prediction: bad, target: t(), shape, activation: 'softmax', gradient: g})).toThrow(/finite values/);
    expect(Array.from(g.download())).toEqual(new Array(16).fill(7));
  });
});

(api.backends().find((b) => b.name === 'cuda')!.available ? test.skip : test)(
  'DeviceBuffer.upload without a usable GPU throws the reason', () => {
    const reason = api.backends().find((b) => b.name === 'cuda')!.reason!;
    const e = thrown(() => DeviceBuffer.upload(new Float32Array(4)));
    expect(errorClass(e)).toBe('Error');
    expect(e.message).toBe(`Expected a usable CUDA device for device but received 'cuda': ${reason}`);
  });
