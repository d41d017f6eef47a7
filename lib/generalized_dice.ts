import {runLoss, runLossAsync} from './api';
import type {GeneralizedDiceArgs, LossResult} from './types';

/**
 * Generalized Dice loss (Sudre et al. 2017):
 * `1 - (2 sum_l w_l I_l + sNr) / (sum_l w_l max(P_l + G_l, floor) + sDr)` with
 * `w_l = 1 / G_l^2` (`weighting: 'square'`, the paper's GDLv, default), `1 / G_l`
 * (`'simple'`) or `1` (`'uniform'`); a class absent from the target takes the
 * largest finite weight. Defaults: `smoothNumerator = smoothDenominator = 1e-5`,
 * `denominatorFloor = 0`, `includeBackground: true`, `reduction: 'pooled'`.
 * NiftyNet's form is `{smoothNumerator: 0, smoothDenominator: 0, denominatorFloor: 1, reduction: 'mean'}`.
 *
 * @example
 * ```ts
 * import {generalizedDice} from 'segloss';
 * const {loss, gradient} = generalizedDice({
 *   prediction: new Float32Array([0.9, 0.6, 0.3, 0.1]),   // p(foreground), binary map
 *   shape: [1, 4, 1],
 *   target: new Uint8Array([1, 1, 0, 0]),
 * });
 * ```
 */
export function generalizedDice(args: GeneralizedDiceArgs): LossResult {
  return runLoss('generalizedDice', args);
}

/** {@link generalizedDice} on a worker thread. */
export function generalizedDiceAsync(args: GeneralizedDiceArgs): Promise<LossResult> {
  return runLossAsync('generalizedDice', args);
}
