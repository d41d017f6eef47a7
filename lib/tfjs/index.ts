/**
 * segloss for tensorflow.js: differentiable ops, losses for
 * `model.compile`, and Dice metrics.
 *
 * ```ts
 * import * as tf from '@tensorflow/tfjs-node';
 * import {losses, metrics} from 'segloss/tfjs';
 * model.compile({optimizer: tf.train.adam(1e-3), loss: losses.generalizedDice(),
 *                metrics: [metrics.dice()]});
 * ```
 *
 * Works with any tfjs backend: 'cpu' and 'tensorflow' (tfjs-node, tfjs-node-gpu)
 * are the ones this package is tested on. The ops are differentiable with
 * respect to yPred; the gradient is one fused pass driven by the statistics
 * of the forward pass, and no gradient pass runs when no gradient is taken.
 */
import './peer';  // first: names the missing peer dependency

import * as tf from '@tensorflow/tfjs-core';

import type {DiceOptions, GeneralizedDiceOptions, LossName, SensitivitySpecificityOptions,
  WeightedCrossEntropyOptions, Activation, Reduction} from '../types';
import {LOSS_KERNEL, registerSeglossKernels} from './kernels';

export {registerSeglossKernels, tensorflowOpStatus, LOSS_KERNEL, LOSS_GRAD_KERNEL} from './kernels';

/** Options every op takes (docs/losses.md names); masks are not supported on tensors. */
export interface TfCommonOptions {
  activation?: Activation;
  reduction?: Reduction;
  includeBackground?: boolean;
  ignoreIndex?: number;
}
export type TfGeneralizedDiceOptions = TfCommonOptions & GeneralizedDiceOptions;
export type TfDiceOptions = TfCommonOptions & Omit<DiceOptions, 'classWeights'> & {classWeights?: number[]};
export type TfSensitivitySpecificityOptions = TfCommonOptions & SensitivitySpecificityOptions;
export type TfWeightedCrossEntropyOptions = TfCommonOptions & {classWeights?: 'inverse-frequency' | 'paper' | number[]};

function toTensor(x: tf.Tensor | tf.TensorLike): tf.Tensor {
  return x instanceof tf.Tensor ? x : tf.tensor(x as tf.TensorLike);
}

/** Checks in tfjs's own style (tf.util.assert): plain Errors naming the op, the argument and the shapes. */
function checkInputs(op: string, yTrue: tf.Tensor, yPred: tf.Tensor): void {
  tf.util.assert(yPred.dtype === 'float32', () => `${op}: yPred must be float32, but got dtype ${yPred.dtype}`);
  tf.util.assert(yTrue.dtype === 'float32' || yTrue.dtype === 'int32',
                 () => `${op}: yTrue must be float32 or int32, but got dtype ${yTrue.dtype}`);
  tf.util.assert(yPred.rank >= 2, () => `${op}: yPred must have rank >= 2 ([batch, ...spatial, channels]), but got shape [${yPred.shape}]`);
  const spatial = yPred.shape.slice(0, -1);
  const sameAsPred = tf.util.arraysEqual(yTrue.shape, yPred.shape);
  const sparse = tf.util.arraysEqual(yTrue.shape, spatial) || tf.util.arraysEqual(yTrue.shape, [...spatial, 1]);
  tf.util.assert(sameAsPred || sparse,
                 () => `${op}: yTrue must have the shape of yPred [${yPred.shape}] (dense) or [${spatial}] / ` +
                       `[${[...spatial, 1]}] (class indices), but got shape [${yTrue.shape}]`);
  tf.util.assert(!(sameAsPred && yTrue.dtype === 'int32' && yPred.shape[yPred.rank - 1] > 1),
                 () => `${op}: a dense (one-hot) yTrue must be float32, but got dtype int32 with shape [${yTrue.shape}]`);
}

/** Options of the typed-array API that an op takes from its arguments or from tfjs instead, and why. */
const NOT_OP_OPTIONS: Record<string, string> = {
  prediction: 'yPred is the op\'s second argument',
  target: 'yTrue is the op\'s first argument',
  shape: 'the shape is yPred\'s',
  mask: 'masks are not supported on tensors; voxels labelled ignoreIndex in yTrue are skipped',
  gradient: 'the gradient comes from tf.grad / tf.valueAndGrad',
  gradScale: 'the gradient is scaled by the upstream dy',
};

function lossOp(name: LossName) {
  return (yTrue: tf.Tensor | tf.TensorLike, yPred: tf.Tensor | tf.TensorLike, options: object = {}): tf.Tensor => {
    for (const key of Object.keys(options ?? {})) {
      tf.util.assert(!(key in NOT_OP_OPTIONS), () => `${name}: option '${key}' is not taken by segloss/tfjs ops (${NOT_OP_OPTIONS[key]})`);
    }
    const t = toTensor(yTrue);
    const p = toTensor(yPred);
    checkInputs(name, t, p);
    registerSeglossKernels(tf.getBackend());
    return tf.engine().runKernel(LOSS_KERNEL, {yTrue: t, yPred: p},
                                 {loss: name, options: JSON.stringify(options)} as unknown as tf.NamedAttrMap) as tf.Tensor;
  };
}

/**
 * Differentiable ops (with respect to yPred). Each returns a scalar, or a
 * `[B]` tensor with `reduction: 'none'`. yTrue: class indices (int32, or
 * float32, with or without a last axis of 1) or a dense float32 tensor of
 * yPred's shape. Options and defaults as in docs/losses.md.
 */
export const ops = {
  generalizedDice: lossOp('generalizedDice') as (yTrue: tf.Tensor | tf.TensorLike, yPred: tf.Tensor,
                                                  options?: TfGeneralizedDiceOptions) => tf.Tensor,
  dice: lossOp('dice') as (yTrue: tf.Tensor | tf.TensorLike, yPred: tf.Tensor, options?: TfDiceOptions) => tf.Tensor,
  sensitivitySpecificity: lossOp('sensitivitySpecificity') as (yTrue: tf.Tensor | tf.TensorLike, yPred: tf.Tensor,
                                                                options?: TfSensitivitySpecificityOptions) => tf.Tensor,
  weightedCrossEntropy: lossOp('weightedCrossEntropy') as (yTrue: tf.Tensor | tf.TensorLike, yPred: tf.Tensor,
                                                            options?: TfWeightedCrossEntropyOptions) => tf.Tensor,
};

type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/** Loss functions for tfjs-layers `model.compile({loss})`, `fit` and `evaluate`. */
export const losses = {
  generalizedDice: (options: TfGeneralizedDiceOptions = {}): LossFn => (t, p) => ops.generalizedDice(t, p, options),
  dice: (options: TfDiceOptions = {}): LossFn => (t, p) => ops.dice(t, p, options),
  sensitivitySpecificity: (options: TfSensitivitySpecificityOptions = {}): LossFn =>
    (t, p) => ops.sensitivitySpecificity(t, p, options),
  weightedCrossEntropy: (options: TfWeightedCrossEntropyOptions = {}): LossFn =>
    (t, p) => ops.weightedCrossEntropy(t, p, options),
};

export interface DiceMetricOptions {
  /** How yPred maps to classes: argmax over channels, or p > 0.5 ('none') / logit > 0 ('sigmoid') for C = 1. Default 'none'. */
  activation?: Activation;
  /** Score one class; default: the mean over the foreground classes (1 .. C-1, or the channel with C = 1). */
  classIndex?: number;
}

/** Hard labels of yPred: argmax over channels, or a threshold on a binary map. */
function predictedLabels(yPred: tf.Tensor, activation: Activation): tf.Tensor {
  const C = yPred.shape[yPred.rank - 1];
  if (C === 1) return tf.cast(tf.greater(tf.squeeze(yPred, [yPred.rank - 1]), activation === 'sigmoid' ? 0 : 0.5), 'int32');
  return tf.argMax(yPred, -1);
}

function trueLabels(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  const C = yPred.shape[yPred.rank - 1];
  if (tf.util.arraysEqual(yTrue.shape, yPred.shape) && C > 1) return tf.argMax(yTrue, -1);
  const spatial = yPred.shape.slice(0, -1);
  const labels = tf.reshape(yTrue, spatial);
  return yTrue.dtype === 'int32' ? labels : tf.cast(tf.round(labels), 'int32');
}

/** Metrics for `model.compile({metrics})`. */
export const metrics = {
  /**
   * The paper's DSC on hard labels: 2 |P ∩ G| / (|P| + |G|) per class (1 when
   * both are empty), averaged over the foreground classes (or `classIndex`).
   */
  dice(options: DiceMetricOptions = {}): LossFn {
    const fn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.tidy(() => {
      const C = yPred.shape[yPred.rank - 1];
      const pred = predictedLabels(yPred, options.activation ?? 'none');
      const truth = trueLabels(yTrue, yPred);
      const classes = options.classIndex !== undefined ? [options.classIndex]
        : C === 1 ? [1] : Array.from({length: C - 1}, (_, i) => i + 1);
      const scores = classes.map((l) => {
        const p = tf.cast(tf.equal(pred, l), 'float32');
        const g = tf.cast(tf.equal(truth, l), 'float32');
        const inter = tf.sum(tf.mul(p, g));
        const total = tf.add(tf.sum(p), tf.sum(g));
        return tf.where(tf.equal(total, 0), tf.scalar(1), tf.div(tf.mul(2, inter), total));
      });
      return tf.div(tf.addN(scores), classes.length) as tf.Scalar;
    });
    Object.defineProperty(fn, 'name', {value: 'dice'});
    return fn;
  },
  /** 1 - Generalized Dice loss: the soft generalized Dice score (no gradient taken). */
  generalizedDiceScore(options: TfGeneralizedDiceOptions = {}): LossFn {
    const fn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.tidy(() => tf.sub(1, ops.generalizedDice(yTrue, yPred, options)));
    Object.defineProperty(fn, 'name', {value: 'generalizedDiceScore'});
    return fn;
  },
};

