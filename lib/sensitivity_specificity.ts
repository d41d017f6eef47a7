import {runLoss, runLossAsync} from './api';
import type {LossResult, SensitivitySpecificityArgs} from './types';

/**
 * Sensitivity-specificity loss (Brosch et al., as compared in Sudre et al. 2017):
 * per class `lambda * sum (r - p)^2 r / (G + eps) + (1 - lambda) * sum (r - p)^2 (1 - r) / (N - G + eps)`,
 * averaged (`classReduction: 'mean'`, default) or summed over the counted classes.
 * Defaults: `lambda = 0.05`, `epsilon = 1e-5`, `includeBackground: false`.
 * NiftyNet's form is `{includeBackground: true, classReduction: 'sum'}`.
 *
 * @example
 * ```ts
 * import {sensitivitySpecificity} from 'segloss';
 * const {loss, gradient} = sensitivitySpecificity({prediction, shape: [1, 96, 96, 96, 1], target,
 *                                                  activation: 'sigmoid'});
 * ```
 */
export function sensitivitySpecificity(args: SensitivitySpecificityArgs): LossResult {
  return runLoss('sensitivitySpecificity', args);
}

/** {@link sensitivitySpecificity} on a worker thread. */
export function sensitivitySpecificityAsync(args: SensitivitySpecificityArgs): Promise<LossResult> {
  return runLossAsync('sensitivitySpecificity', args);
}
