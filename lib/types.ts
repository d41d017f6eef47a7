/**
 * Public types of segloss. Option names and defaults follow the numerical
 * contract (docs/losses.md, section 2).
 */

/** The four losses of Sudre et al. 2017. */
export type LossName = 'generalizedDice' | 'dice' | 'sensitivitySpecificity' | 'weightedCrossEntropy';

export type Activation = 'none' | 'softmax' | 'sigmoid';
export type Reduction = 'pooled' | 'mean' | 'sum' | 'none';
export type Device = 'auto' | 'cpu' | 'cuda';

/** Sparse class indices (one per voxel) or a dense Float32Array of the prediction's length. */
export type Target = Uint8Array | Uint16Array | Int32Array | Float32Array;

/** Options every loss takes. */
export interface CommonArgs {
  /** Float32, channels-last `[B, S1, ..., Sk, C]`. */
  prediction: Float32Array;
  /** Shape of `prediction`: `[B, S1, ..., Sk, C]`, at least 2 entries. */
  shape: readonly number[];
  /** Sparse class indices `[B, S...]` (or `[B, S..., 1]`), or dense values of the prediction's shape. */
  target: Target;
  /** How `prediction` turns into probabilities. Default `'none'`. */
  activation?: Activation;
  /** `'pooled'` (default: the batch is one group), `'mean'`, `'sum'`, or `'none'` (one loss per sample). */
  reduction?: Reduction;
  /** Whether class 0 is counted. Default: true, except `sensitivitySpecificity` (false). */
  includeBackground?: boolean;
  /** Sparse label value (or binary-map Float32 value) that removes a voxel from every sum. */
  ignoreIndex?: number;
  /** One byte per voxel, 0 = ignore. */
  mask?: Uint8Array;
  /** `true` (default) allocates the gradient, `false` runs the reduction pass only, a Float32Array is filled in place. */
  gradient?: boolean | Float32Array;
  /** Upstream gradient: a number, or one value per sample with `reduction: 'none'`. Default 1. */
  gradScale?: number | Float32Array | Float64Array;
  /**
   * Default `'auto'`: the CPU, unless SEGLOSS_AUTO_CUDA_MIN_ELEMENTS names a
   * size from which host arrays are staged to CUDA (README, CUDA).
   */
  device?: Device;
}

export interface GeneralizedDiceOptions {
  /** `'square'` (default, GDLv: 1/G^2), `'simple'` (1/G) or `'uniform'` (1). */
  weighting?: 'square' | 'simple' | 'uniform';
  /** Added to the numerator. Default 1e-5. */
  smoothNumerator?: number;
  /** Added to the denominator. Default 1e-5. */
  smoothDenominator?: number;
  /** Each class's `P + G` is clamped to at least this. Default 0. */
  denominatorFloor?: number;
}

export interface DiceOptions {
  /** Default 1e-5. */
  smoothNumerator?: number;
  /** Default 1e-5. */
  smoothDenominator?: number;
  /** Denominator `sum p^2 + sum r^2`. Default false. */
  squared?: boolean;
  /** Jaccard (IoU) form. Default false. */
  jaccard?: boolean;
  /** One weight >= 0 per class (2 on a binary map): weighted mean over the counted classes. */
  classWeights?: ArrayLike<number>;
}

export interface SensitivitySpecificityOptions {
  /** Weight of the sensitivity term, in [0, 1]. Default 0.05. */
  lambda?: number;
  /** > 0. Default 1e-5. */
  epsilon?: number;
  /** `'mean'` (default) or `'sum'` over counted classes. */
  classReduction?: 'mean' | 'sum';
}

export interface WeightedCrossEntropyOptions {
  /** `'inverse-frequency'` (default), `'paper'`, or one weight per class (2 on a binary map). */
  classWeights?: 'inverse-frequency' | 'paper' | ArrayLike<number>;
}

export type GeneralizedDiceArgs = CommonArgs & GeneralizedDiceOptions;
export type DiceArgs = CommonArgs & DiceOptions;
export type SensitivitySpecificityArgs = CommonArgs & SensitivitySpecificityOptions;
export type WeightedCrossEntropyArgs = CommonArgs & WeightedCrossEntropyOptions;
/** Any loss's arguments (each loss rejects the options of the others). */
export type AnyLossArgs = CommonArgs & GeneralizedDiceOptions & Omit<DiceOptions, 'classWeights'> &
  SensitivitySpecificityOptions & WeightedCrossEntropyOptions;

export interface LossResult {
  /** The loss (with `reduction: 'none'`, the mean of `losses`). */
  loss: number;
  /** One loss per sample, with `reduction: 'none'` only. */
  losses?: Float64Array;
  /**
   * d(gradScale * loss)/d(prediction), unless `gradient: false`. With
   * `reduction: 'none'` it is `sum_b gradScale_b * d losses_b / d prediction`
   * (a scalar gradScale applies to every sample, with no division by B).
   */
  gradient?: Float32Array;
}

/**
 * Arguments of lossOnDevice: those of the loss, with DeviceBuffers for the
 * tensors (and the gradient to fill, or `true` to allocate one).
 */
export type DeviceLossArgs<B> = Omit<AnyLossArgs, 'prediction' | 'target' | 'mask' | 'gradient' | 'device'> & {
  prediction: B;
  target: B;
  mask?: B;
  gradient?: boolean | B;
  device?: 'auto' | 'cuda';
};

export interface DeviceLossResult<B> {
  loss: number;
  losses?: Float64Array;
  gradient?: B;
}
