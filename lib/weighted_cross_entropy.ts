import {runLoss, runLossAsync} from './api';
import type {LossResult, WeightedCrossEntropyArgs} from './types';

/**
 * Weighted cross-entropy: `-(1/N) sum_n sum_l w_l r_nl log q_nl`, with
 * log-softmax / log-sigmoid of logits, or `q = max(p, 1e-7)` for probabilities.
 * `classWeights`: `'inverse-frequency'` (default: `w_0 = 1`, `w_l = (N - G_l) / G_l`),
 * `'paper'` (the same from the predictions, as printed in the paper), or one
 * number per class. Weights are constants: no gradient flows through them.
 *
 * @example
 * ```ts
 * import {weightedCrossEntropy} from 'segloss';
 * const {loss, gradient} = weightedCrossEntropy({prediction: logits, shape: [1, 128, 128, 128, 2],
 *                                                target: labels, activation: 'softmax'});
 * ```
 */
export function weightedCrossEntropy(args: WeightedCrossEntropyArgs): LossResult {
  return runLoss('weightedCrossEntropy', args);
}

/** {@link weightedCrossEntropy} on a worker thread. */
export function weightedCrossEntropyAsync(args: WeightedCrossEntropyArgs): Promise<LossResult> {
  return runLossAsync('weightedCrossEntropy', args);
}
