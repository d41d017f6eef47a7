import {runLoss, runLossAsync} from './api';
import type {DiceArgs, LossResult} from './types';

/**
 * Soft Dice loss (the paper's DL2 and its multi-class form):
 * `1 - mean_l (2 I_l + sNr) / (S_l + sDr)` with `S_l = P_l + G_l`, or
 * `sum p^2 + sum r^2` with `squared: true`; `jaccard: true` gives
 * `(I + sNr) / (S - I + sDr)`; `classWeights` make the mean a weighted one.
 * Defaults: `smoothNumerator = smoothDenominator = 1e-5`, `includeBackground: true`.
 * The paper's DL2 with its epsilon e is `{smoothNumerator: 2 * e, smoothDenominator: e}` on a binary map.
 *
 * @example
 * ```ts
 * import {dice} from 'segloss';
 * const {loss} = dice({prediction: logits, shape: [2, 64, 64, 64, 4], target: labels,
 *                      activation: 'softmax', gradient: false});
 * ```
 */
export function dice(args: DiceArgs): LossResult {
  return runLoss('dice', args);
}

/** {@link dice} on a worker thread. */
export function diceAsync(args: DiceArgs): Promise<LossResult> {
  return runLossAsync('dice', args);
}
