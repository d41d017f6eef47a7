/**
 * Soft Dice loss, float64 reference (docs/losses.md section 2, "Soft Dice loss";
 * the paper's DL2 and its multi-class form, Milletari et al.):
 *
 * ```
 * d_l  = (2 I_l + sNr) / (S_l + sDr)       jaccard: (I_l + sNr) / (S_l - I_l + sDr)
 * loss = 1 - mean_{l in L} d_l             classWeights c: 1 - sum c_l d_l / sum c_l
 * dd_l/dp_nl = (2 r (S_l + sDr) - (2 I_l + sNr) s') / (S_l + sDr)^2
 * jaccard:     (r (S_l - I_l + sDr) - (I_l + sNr)(s' - r)) / (S_l - I_l + sDr)^2
 *              s' = 1, or 2 p when squared (S_l = sum p^2 + sum r^2)
 * a class whose denominator is 0 has d_l = 1 and no gradient
 * ```
 * So `dL/dp_nl = -(c_l / sum_{k in L} c_k) dd_l/dp_nl` (c = 1 without classWeights).
 */
import {GroupLoss, GroupResult, ReferenceArgs, classSums, runLoss, ReferenceResult} from './common';

/** One group of soft Dice (see the file header for the formulas). */
export const diceGroup: GroupLoss = (pr, g, _N, args): GroupResult => {
  const sNr = args.smoothNumerator ?? 1e-5;
  const sDr = args.smoothDenominator ?? 1e-5;
  const squared = args.squared ?? false;
  const jaccard = args.jaccard ?? false;
  const K = pr.K;
  const cw = args.classWeights;
  // Class weights: an array of K entries (2 on a binary map); only entries in L count.
  const c = new Float64Array(K);
  for (let l = 0; l < K; l++) c[l] = cw !== undefined && typeof cw !== 'string' ? Number(cw[l]) : 1;
  let cSum = 0;
  for (let l = 0; l < K; l++) if (pr.counted[l]) cSum += c[l];

  const {G, P, I, P2, R2} = classSums(pr, g);
  const S = new Float64Array(K);
  for (let l = 0; l < K; l++) S[l] = squared ? P2[l] + R2[l] : P[l] + G[l];

  const num = new Float64Array(K), den = new Float64Array(K);
  let weighted = 0;
  for (let l = 0; l < K; l++) {
    if (!pr.counted[l]) continue;
    num[l] = jaccard ? I[l] + sNr : 2 * I[l] + sNr;
    den[l] = jaccard ? S[l] - I[l] + sDr : S[l] + sDr;
    const d = den[l] === 0 ? 1 : num[l] / den[l];
    weighted += c[l] * d;
  }
  const loss = 1 - weighted / cSum;

  const grad = new Float64Array((g.end - g.start) * K);
  for (let n = g.start; n < g.end; n++) {
    if (!pr.kept[n]) continue;
    for (let l = 0; l < K; l++) {
      if (!pr.counted[l] || den[l] === 0) continue;
      const p = pr.p[n * K + l], r = pr.r[n * K + l];
      const sp = squared ? 2 * p : 1; // s'_nl = dS_l/dp_nl
      const dd = jaccard
        ? (r * den[l] - num[l] * (sp - r)) / (den[l] * den[l])
        : (2 * r * den[l] - num[l] * sp) / (den[l] * den[l]);
      grad[(n - g.start) * K + l] = -(c[l] / cSum) * dd;
    }
  }
  return {loss, wrt: 'probability', grad};
};

/** Soft Dice loss over all groups. */
export function dice(args: ReferenceArgs): ReferenceResult {
  return runLoss('dice', args, diceGroup);
}
