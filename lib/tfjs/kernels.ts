/**
 * The segloss kernels for tensorflow.js, registered the tfjs way: one kernel
 * name for the forward pass (`SeglossLoss`, the loss from one reduction pass)
 * and one for the backward pass (`SeglossLossGrad`, one gradient pass driven
 * by the forward pass's statistics), a kernel config per backend, and the
 * gradient registered separately with registerGradient.
 *
 * Data movement:
 * - 'tensorflow' (tfjs-node): both passes run inside TensorFlow, as the ops
 *   `SeglossStats…` and `SeglossGradient…` the addon registers there
 *   (native/tensorflow/ops.cc), on yTrue's and yPred's memory where
 *   TensorFlow holds it, and the gradient is a tensor TensorFlow allocates:
 *   nothing is copied between TensorFlow and JS but the loss and dy. Where
 *   the ops cannot be registered or run, the kernels take the copying path
 *   below (tensorflowOpStatus() says why).
 * - 'cpu': the kernels read the tensors' typed arrays in place.
 * - any other backend ('wasm', 'webgl'): readSync (a copy out of the
 *   backend) of yTrue and yPred once per step, and write of the gradient.
 */
import './peer';  // first: names the missing peer dependency

import * as tf from '@tensorflow/tfjs-core';

import {gradientFromCheckedStats, lossStats, lossFromStats, LossStats, statsFromSpec} from '../api';
import {native, NativeSpec} from '../native';
import type {AnyLossArgs, LossName, Target} from '../types';
import {checkGradScale, deviceOf, DeviceTensor, normalizeOnDevice} from '../validate';

export const LOSS_KERNEL = 'SeglossLoss';
export const LOSS_GRAD_KERNEL = 'SeglossLossGrad';

/** Attributes of both kernels: the loss and its options (as the typed-array API takes them). */
export interface SeglossAttrs {
  loss: LossName;
  options: string;  // JSON of the loss options (kernel attributes are plain values)
}

/**
 * What the backward pass of each forward output needs: the statistics, the
 * native spec when they were made in TensorFlow, and on the typed-array
 * paths the arguments as read (so a backend that copies
 * its data out does so once per step, not once per pass). Keyed by the
 * output's data id, which the tape's saved copy of the output shares;
 * dropped with it.
 */
interface Saved {
  stats: LossStats;
  args?: AnyLossArgs;
  spec?: NativeSpec;
}
const saved = new WeakMap<object, Saved>();

type Backend = tf.KernelBackend & {data?: {get(id: object): {values?: unknown}}};

/** tfjs-node's backend, as far as the in-TensorFlow path uses it. */
interface TensorflowBackend extends Backend {
  binding: {executeOp: unknown; TF_ATTR_TYPE: number; TF_INT32: number; TF_FLOAT: number};
  executeMultipleOutputs(name: string, attrs: Array<{name: string; type: number; value: number}>,
                         inputs: tf.TensorInfo[], numOutputs: number): tf.TensorInfo[];
}

interface TensorflowOps {
  available: boolean;
  statsOp: string;
  gradientOp: string;
  reason?: string;
}
let tensorflowOps: TensorflowOps | undefined;
let tensorflowOpEnabled = true;

/** The registered ops' state (mutable). Internal, for the tests. */
export function tensorflowOpsState(): TensorflowOps | undefined {
  return tensorflowOps;
}

/**
 * TensorFlow did not run one of the ops (a tfjs-node-gpu build that cannot
 * place it, say): the kernels take the copying path from then on.
 */
class TensorflowOpFailed extends Error {}

/** Records why the ops are not used any more (rethrows anything but a TensorflowOpFailed). */
function stopTensorflowOps(e: unknown): void {
  if (!(e instanceof TensorflowOpFailed)) throw e;
  tensorflowOps = {...tensorflowOps!, available: false, reason: e.message};
}

/**
 * Turns the in-TensorFlow path off (false) or back on, so that the copying
 * path can be tested and timed on tfjs-node. Internal.
 */
export function setTensorflowOpEnabled(on: boolean): void {
  tensorflowOpEnabled = on;
}

/** Whether `backend` is tfjs-node's and segloss's op is registered in its TensorFlow (registering it once). */
function runsInTensorflow(backend: object): backend is TensorflowBackend {
  const b = backend as Partial<TensorflowBackend>;
  if (!tensorflowOpEnabled || typeof b.binding?.executeOp !== 'function' || typeof b.executeMultipleOutputs !== 'function') {
    return false;
  }
  tensorflowOps ??= native().registerTensorflowOps();
  return tensorflowOps.available;
}

/**
 * Whether the kernels run their passes inside tfjs-node's TensorFlow (no
 * copies), and if not why; null until a segloss op has run on the
 * 'tensorflow' backend.
 *
 * @example
 * ```ts
 * ops.generalizedDice(yTrue, yPred);
 * const s = tensorflowOpStatus();
 * if (s && !s.available) console.warn(`segloss copies tensors out of TensorFlow: ${s.reason}`);
 * ```
 */
export function tensorflowOpStatus(): {available: boolean; reason?: string} | null {
  return tensorflowOps ? {available: tensorflowOps.available, reason: tensorflowOps.reason} : null;
}

/** The tensors as validate.ts describes device-resident ones: element type and count, no data. */
function described(t: tf.TensorInfo): DeviceTensor {
  return {length: tf.util.sizeFromShape(t.shape), dtype: t.dtype as 'float32' | 'int32', pointer: 0n, deviceId: 0};
}

/**
 * The validated native spec of a call on tensors held in TensorFlow: the
 * tensors checked as described ones (element type and count), the `device`
 * option as for host arrays (TensorFlow's CPU tensors are host memory).
 */
function tensorflowSpec(inputs: tf.NamedTensorInfoMap, at: SeglossAttrs): NativeSpec {
  const yTrue = inputs.yTrue as tf.TensorInfo;
  const yPred = inputs.yPred as tf.TensorInfo;
  const {device, ...options} = JSON.parse(at.options) as {device?: unknown};
  const n = normalizeOnDevice(at.loss, {...options, prediction: described(yPred), target: described(yTrue),
    shape: yPred.shape, gradient: false},
  (v): v is DeviceTensor => typeof v === 'object' && v !== null && 'pointer' in v);
  n.spec.device = deviceOf(device);
  return n.spec;
}

/**
 * Runs one pass inside TensorFlow: the statistics pass (returns the
 * statistics), or with `grad` the gradient pass (returns the gradient, a
 * tensor held in TensorFlow). Throws the pass's own error.
 */
function tensorflowPass(b: TensorflowBackend, spec: NativeSpec, inputs: tf.NamedTensorInfoMap): Float64Array;
function tensorflowPass(b: TensorflowBackend, spec: NativeSpec, inputs: tf.NamedTensorInfoMap,
                        grad: {stats: Float64Array; gradScale: Float64Array; perSample: boolean}): tf.TensorInfo;
function tensorflowPass(b: TensorflowBackend, spec: NativeSpec, inputs: tf.NamedTensorInfoMap,
                        grad?: {stats: Float64Array; gradScale: Float64Array; perSample: boolean}) {
  const yTrue = inputs.yTrue as tf.TensorInfo;
  const yPred = inputs.yPred as tf.TensorInfo;
  const addon = native();
  const ops = tensorflowOps!;
  const id = addon.tensorflowJob(spec, grad?.stats ?? null, grad?.gradScale ?? new Float64Array([1]), grad?.perSample ?? false);
  const op = grad ? ops.gradientOp : ops.statsOp;
  let job: tf.TensorInfo | undefined;
  let outputs: tf.TensorInfo[] | undefined;
  let ended: Float64Array | undefined | null;
  let failure: unknown;
  try {
    job = {dataId: b.write(Int32Array.of(id), [], 'int32'), shape: [], dtype: 'int32'};
    const type = yTrue.dtype === 'int32' ? b.binding.TF_INT32 : b.binding.TF_FLOAT;
    outputs = b.executeMultipleOutputs(op, [{name: 'T', type: b.binding.TF_ATTR_TYPE, value: type}],
                                       [job, yTrue, yPred], grad ? 1 : 0);
  } catch (e) {
    failure = e;
  }
  try {
    // ends the job whatever happened; throws the pass's own error if segloss's kernel ran
    ended = addon.endTensorflowJob(id);
  } catch (e) {
    outputs?.forEach((t) => b.disposeData(t.dataId));
    throw e;
  } finally {
    if (job) b.disposeData(job.dataId);
  }
  if (!outputs) {
    // TensorFlow failed after segloss's kernel ran: not a reason to stop using the ops
    if (ended !== null) throw failure;
    // (errors of tfjs-node's binding may come from another realm: no instanceof)
    const message = (failure as {message?: unknown} | undefined)?.message;
    const why = (typeof message === 'string' ? message : String(failure)).replace(/\s*\n\s*/g, ' ');
    throw new TensorflowOpFailed(`TensorFlow could not run ${op}: ${why}`);
  }
  return grad ? outputs[0] : ended as Float64Array;
}

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
  let state: Saved | undefined;
  if (runsInTensorflow(b)) {
    const spec = tensorflowSpec(inputs, at);
    try {
      state = {stats: statsFromSpec(at.loss, spec, tensorflowPass(b, spec, inputs)), spec};
    } catch (e) {
      stopTensorflowOps(e);
    }
  }
  if (!state) {
    const args = argsOf(b, inputs, at);
    state = {stats: lossStats(at.loss, args), args};
  }
  const r = lossFromStats(state.stats);
  const out = r.losses
    ? output(b, Float32Array.from(r.losses), [r.losses.length])
    : output(b, new Float32Array([r.loss]), []);
  saved.set(out.dataId, state);
  return out;
}

/** Backward: one gradient pass from the saved statistics, scaled by dy (a scalar, or per sample with 'none'). */
function lossGradKernel({inputs, backend, attrs}: {inputs: tf.NamedTensorInfoMap; backend: object; attrs?: tf.NamedAttrMap}) {
  const b = backend as Backend;
  const at = attrsOf(attrs ?? {});
  const loss = inputs.loss as tf.TensorInfo;
  const state = saved.get(loss.dataId);
  if (!state) throw new Error(`segloss: no statistics saved for this ${at.loss} output (was it computed by ${LOSS_KERNEL}?)`);
  const dy = Float64Array.from(values(b, inputs.dy as tf.TensorInfo) as ArrayLike<number>);
  const gradScale = loss.shape.length === 0 ? dy[0] : dy;
  if (state.spec && runsInTensorflow(b)) {
    // the forward kernel validated everything but dy
    const scale = checkGradScale(gradScale, state.spec.reduction, state.spec.B as number);
    try {
      return tensorflowPass(b, state.spec, inputs, {stats: state.stats.values, ...scale});
    } catch (e) {
      stopTensorflowOps(e);
    }
  }
  // the forward kernel checked these very tensors
  const args = state.args ?? argsOf(b, inputs, at);
  const {gradient} = gradientFromCheckedStats({...args, gradScale, gradient: true}, state.stats);
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
