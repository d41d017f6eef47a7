/**
 * Sensitivity-specificity loss, float64 reference (docs/losses.md section 2,
 * "Sensitivity-specificity loss"; Brosch et al., as printed in Sudre et al. 2017):
 *
 * ```
 * SS_l = lambda sum_n (r - p)^2 r / (G_l + eps) + (1 - lambda) sum_n (r - p)^2 (1 - r) / (N - G_l + eps)
 * loss = mean_{l in L} SS_l                (classReduction 'sum': the sum)
 * dSS_l/dp_nl = -2 lambda (r - p) r / (G_l + eps) - 2 (1 - lambda)(r - p)(1 - r) / (N - G_l + eps)
 * ```
 * Default `includeBackground` is false: the paper scores the foreground only.
 */
import {GroupLoss, GroupResult, ReferenceArgs, classSums, runLoss, ReferenceResult} from './common';

/** One group of the SS loss (see the file header for the formulas). */
export const sensitivitySpecificityGroup: GroupLoss = (pr, g, N, args): GroupResult => {
  const lambda = args.lambda ?? 0.05;
  const eps = args.epsilon ?? 1e-5;
  const classReduction = args.classReduction ?? 'mean';
  const K = pr.K;
  const {G} = classSums(pr, g);
  let nCounted = 0;
  for (let l = 0; l < K; l++) if (pr.counted[l]) nCounted++;
  const scale = classReduction === 'sum' ? 1 : 1 / nCounted;

  const sens = new Float64Array(K), spec = new Float64Array(K);
  for (let n = g.start; n < g.end; n++) {
    if (!pr.kept[n]) continue;
    for (let l = 0; l < K; l++) {
      const d = pr.r[n * K + l] - pr.p[n * K + l];
      sens[l] += d * d * pr.r[n * K + l];
      spec[l] += d * d * (1 - pr.r[n * K + l]);
    }
  }
  let loss = 0;
  for (let l = 0; l < K; l++) {
    if (!pr.counted[l]) continue;
    loss += scale * (lambda * sens[l] / (G[l] + eps) + (1 - lambda) * spec[l] / (N - G[l] + eps));
  }

  const grad = new Float64Array((g.end - g.start) * K);
  for (let n = g.start; n < g.end; n++) {
    if (!pr.kept[n]) continue;
    for (let l = 0; l < K; l++) {
      if (!pr.counted[l]) continue;
      const r = pr.r[n * K + l], p = pr.p[n * K + l];
      const dSS = -2 * lambda * (r - p) * r / (G[l] + eps) - 2 * (1 - lambda) * (r - p) * (1 - r) / (N - G[l] + eps);
      grad[(n - g.start) * K + l] = scale * dSS;
    }
  }
  return {loss, wrt: 'probability', grad};
};

/** Sensitivity-specificity loss over all groups. */
export function sensitivitySpecificity(args: ReferenceArgs): ReferenceResult {
  return runLoss('sensitivitySpecificity', args, sensitivitySpecificityGroup);
}
