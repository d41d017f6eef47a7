/**
 * Typed arrays on a SharedArrayBuffer (how worker_threads share a volume)
 * are plain memory to the addon: every array argument may live on one, and
 * the results are bit-identical to those on ordinary ArrayBuffers, sync and
 * async. (N-API's napi_get_arraybuffer_info refuses a SharedArrayBuffer; the
 * addon reads the address from napi_get_typedarray_info instead.)
 */
import * as api from '../lib';
import {makeInputs} from './kernel_suites';
import {expectBitIdentical} from './tolerances';

function shared<T extends Float32Array | Uint8Array>(a: T): T {
  const Ctor = a.constructor as new (b: SharedArrayBuffer) => T;
  const out = new Ctor(new SharedArrayBuffer(a.byteLength));
  out.set(a);
  return out;
}

describe('SharedArrayBuffer-backed arrays', () => {
  const shape = [2, 9, 8, 7, 4];
  const {prediction, target} = makeInputs({C: 4, activation: 'softmax', target: 'Uint8'}, shape, 'shared memory');
  const mask = new Uint8Array(target.length).map((_, i) => (i % 5 === 1 ? 0 : 1));
  const plain = api.generalizedDice({prediction, target: target as Uint8Array, shape, activation: 'softmax', mask});

  it('give the same loss and gradient as ordinary arrays, the gradient written in place', () => {
    const gradient = shared(new Float32Array(prediction.length));
    const got = api.generalizedDice({prediction: shared(prediction), target: shared(target as Uint8Array), shape,
                                     activation: 'softmax', mask: shared(mask), gradient});
    expect(got.loss).toBe(plain.loss);
    expect(got.gradient).toBe(gradient);
    expectBitIdentical(gradient, plain.gradient!, 'gradient');
  });

  it('on a worker thread (the async API)', async () => {
    const got = await api.generalizedDiceAsync({prediction: shared(prediction), target: shared(target as Uint8Array), shape,
                                                activation: 'softmax', mask: shared(mask)});
    expect(got.loss).toBe(plain.loss);
    expectBitIdentical(got.gradient!, plain.gradient!, 'gradient');
  });

  it('a view at an offset into a shared buffer reads from that offset', () => {
    const sab = new SharedArrayBuffer(4 * (prediction.length + 8));
    const view = new Float32Array(sab, 32, prediction.length);
    view.set(prediction);
    new Float32Array(sab, 0, 8).fill(Number.NaN);  // bytes before the view: would fail the check if read
    const got = api.generalizedDice({prediction: view, target: target as Uint8Array, shape, activation: 'softmax', mask});
    expect(got.loss).toBe(plain.loss);
  });
});
