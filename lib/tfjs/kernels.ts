/**
 * The segloss kernels for tensorflow.js, registered the tfjs way: one kernel
 * name for the forward pass (`SeglossLoss`, the loss from one reduction pass)
 * and one for the backward pass (`SeglossLossGrad`, one gradient pass driven
 * by the forward pass's statistics), a kernel config per backend, and the
 * gradient registered separately with registerGradient.
 *
 * Data movement: on the 'cpu' backend the kernels read the tensors' typed
 * arrays in place. Every other backend ('tensorflow' from tfjs-node, 'wasm',
 * 'webgl') goes through readSync (a copy out of the backend) and write (a
 * copy of the result in); with tfjs-node that is one copy of yTrue and yPred
 * out of TensorFlow per pass, and one copy of the gradient back in.
 */
import * as tf from '@tensorflow/tfjs-core';

import {gradientFromCheckedStats, lossStats, lossFromStats, LossStats} from '../api';
import type {AnyLossArgs, LossName, Target} from '../types';

export const LOSS_KERNEL = 'SeglossLoss';
export const LOSS_GRAD_KERNEL = 'SeglossLossGrad';

/** Attributes of both kernels: the loss and its options (as the typed-array API takes them). */
export interface SeglossAttrs {
  loss: LossName;
  options: string;  // JSON of the loss options (kernel attributes are plain values)
}

/**
 * What the backward pass of each forward output needs: the statistics and
 * the arguments as read (so a backend that copies its data out does so once
 * per step, not once per pass). Keyed by the output's data id, which the
 * tape's saved copy of the output shares; dropped with it.
 */
const saved = new WeakMap<object, {stats: LossStats; args: AnyLossArgs}>();

type Backend = tf.KernelBackend & {data?: {get(id: object): {values?: unknown}}};

/** The tensor's values: the cpu backend's own typed array, else a copy read out of the backend. */
function values(backend: Backend, t: tf.TensorInfo): tf.backend_util.BackendValues {
  const stored = backend.data?.get?.(t.dataId)?.values;
  if (stored && ArrayBuffer.isView(stored)) return stored as tf.backend_util.BackendValues;
  return backend.readSync(t.dataId);
}

function output(backend: Backend, data: Float32Array, shape: number[]): tf.TensorInfo {
  return {dataId: backend.write(data, shape, 'float32'), shape, dtype: 'float32'};
}

/** yTrue as segloss reads it: sparse class indices (int32 or float) or dense values. */
function targetOf(backend: Backend, yTrue: tf.TensorInfo, yPred: tf.TensorInfo): Target {
  const v = values(backend, yTrue);
  // (arrays from another realm, e.g. a test runner's, are copied into this one)
  if (yTrue.dtype === 'int32') return v instanceof Int32Array ? v : Int32Array.from(v as ArrayLike<number>);
  if (yTrue.dtype === 'float32') return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
  throw new TypeError(`Expected a float32 or int32 yTrue for segloss but received dtype ${yTrue.dtype} ` +
                      `(yPred has shape [${yPred.shape}])`);
}

function argsOf(backend: Backend, inputs: tf.NamedTensorInfoMap, attrs: SeglossAttrs): AnyLossArgs {
  const yTrue = inputs.yTrue as tf.TensorInfo;
  const yPred = inputs.yPred as tf.TensorInfo;
  const prediction = values(backend, yPred);
  return {
    ...(JSON.parse(attrs.options) as Partial<AnyLossArgs>),
    prediction: prediction instanceof Float32Array ? prediction : Float32Array.from(prediction as ArrayLike<number>),
    shape: yPred.shape,
    target: targetOf(backend, yTrue, yPred),
  };
}

function attrsOf(a: tf.NamedAttrMap): SeglossAttrs {
  return a as unknown as SeglossAttrs;
}

/** Forward: the loss from the reduction pass alone; its statistics are kept for the backward pass. */
function lossKernel({inputs, backend, attrs}: {inputs: tf.NamedTensorInfoMap; backend: object; attrs?: tf.NamedAttrMap}) {
  const b = backend as Backend;
  const at = attrsOf(attrs ?? {});
  const args = argsOf(b, inputs, at);
  const stats = lossStats(at.loss, args);
  const r = lossFromStats(stats);
  const out = r.losses
    ? output(b, Float32Array.from(r.losses), [r.losses.length])
    : output(b, new Float32Array([r.loss]), []);
  saved.set(out.dataId, {stats, args});
  return out;
}

/** Backward: one gradient pass from the saved statistics, scaled by dy (a scalar, or per sample with 'none'). */
function lossGradKernel({inputs, backend, attrs}: {inputs: tf.NamedTensorInfoMap; backend: object; attrs?: tf.NamedAttrMap}) {
  const b = backend as Backend;
  const at = attrsOf(attrs ?? {});
  const loss = inputs.loss as tf.TensorInfo;
  const state = saved.get(loss.dataId);
  if (!state) throw new Error(`segloss: no statistics saved for this ${at.loss} output (was it computed by ${LOSS_KERNEL}?)`);
  const {stats, args} = state;
  const dy = Float64Array.from(values(b, inputs.dy as tf.TensorInfo) as ArrayLike<number>);
  const gradScale = loss.shape.length === 0 ? dy[0] : dy;
  // the forward kernel checked these very arrays
  const {gradient} = gradientFromCheckedStats(at.loss, {...args, gradScale, gradient: true}, stats);
  return output(b, gradient, (inputs.yPred as tf.TensorInfo).shape);
}

const registered = new Set<string>();

/**
 * Registers the kernels for `backendName` (and the gradient, once).
 * Idempotent; called by the ops for the backend they run on.
 */
export function registerSeglossKernels(backendName: string): void {
  if (!registered.has('gradient') && !tf.getGradient(LOSS_KERNEL)) {
    tf.registerGradient({
      kernelName: LOSS_KERNEL,
      inputsToSave: ['yTrue', 'yPred'],
      outputsToSave: [true],
      gradFunc: (dy, saved, attrs) => {
        const [yTrue, yPred, loss] = saved;
        return {
          yPred: () => tf.engine().runKernel(LOSS_GRAD_KERNEL, {yTrue, yPred, loss, dy: dy as tf.Tensor},
                                             attrs as tf.NamedAttrMap) as tf.Tensor,
          yTrue: () => tf.zerosLike(yTrue),
        };
      },
    });
  }
  registered.add('gradient');
  if (registered.has(backendName)) return;
  for (const [kernelName, kernelFunc] of [[LOSS_KERNEL, lossKernel], [LOSS_GRAD_KERNEL, lossGradKernel]] as const) {
    if (!tf.getKernel(kernelName, backendName)) {
      tf.registerKernel({kernelName, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc});
    }
  }
  registered.add(backendName);
}
