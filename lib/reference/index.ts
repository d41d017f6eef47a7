/**
 * The float64 reference of segloss: an independent, plain-loop implementation
 * of every loss in docs/losses.md, used by the tests (golden tables, random
 * comparisons, finite differences) and by the benchmarks as their baseline.
 *
 * @example
 * ```ts
 * import {reference} from './lib/reference';
 * const r = reference('generalizedDice', {
 *   prediction: new Float32Array([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15]),
 *   target: new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]),
 *   shape: [1, 8, 1],
 *   smoothNumerator: 0, smoothDenominator: 0,
 * });
 * // r.loss, r.losses (one per group), r.gradient (float64, prediction layout)
 * ```
 */
import type {LossName} from '../types';
import {ReferenceArgs, ReferenceResult} from './common';
import {generalizedDice} from './generalized_dice';
import {dice} from './dice';
import {sensitivitySpecificity} from './sensitivity_specificity';
import {weightedCrossEntropy} from './weighted_cross_entropy';

export type {ReferenceArgs, ReferenceResult} from './common';
export {generalizedDice, dice, sensitivitySpecificity, weightedCrossEntropy};

/**
 * Computes a loss, its per-group losses and its float64 gradient (times
 * gradScale) exactly as docs/losses.md specifies. Input is assumed valid.
 * @throws Error for an unknown loss name.
 */
export function reference(name: LossName, args: ReferenceArgs): ReferenceResult {
  switch (name) {
    case 'generalizedDice': return generalizedDice(args);
    case 'dice': return dice(args);
    case 'sensitivitySpecificity': return sensitivitySpecificity(args);
    case 'weightedCrossEntropy': return weightedCrossEntropy(args);
    default: throw new Error(`Expected a loss name ('generalizedDice', 'dice', 'sensitivitySpecificity', 'weightedCrossEntropy') for name but received ${JSON.stringify(name)}`);
  }
}
