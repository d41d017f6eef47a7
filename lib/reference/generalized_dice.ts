/**
 * Generalized Dice loss, float64 reference (docs/losses.md section 2,
 * "Generalized Dice loss"; Sudre et al. 2017, eq. for GDL, after Crum et al.):
 *
 * ```
 * w_l  = 1/G_l^2 ('square', GDLv) | 1/G_l ('simple') | 1 ('uniform')
 *        a class with G_l = 0 gets the largest finite w_l among l in L of its
 *        group; if none is finite, all w_l = 0
 * Num  = 2 sum_{l in L} w_l I_l + sNr
 * Den  = sum_{l in L} w_l max(S_l, floor) + sDr
 * loss = 1 - Num / Den            (Den = 0 -> loss 0, zero gradient)
 * dL/dp_nl = -w_l (2 r_nl Den - Num [S_l >= floor]) / Den^2
 * ```
 * The weights depend on the targets only and are constants for the gradient.
 */
import {GroupLoss, GroupResult, ReferenceArgs, classSums, runLoss, ReferenceResult} from './common';

/**
 * GDL class weights of one group (docs/losses.md: `w_l` and the absent-class rule).
 * Only classes in L are weighted; classes outside L get 0 (they are not summed).
 */
export function gdlWeights(G: Float64Array, counted: boolean[], weighting: 'square' | 'simple' | 'uniform'): Float64Array {
  const K = G.length;
  const w = new Float64Array(K);
  const absent: boolean[] = [];
  let maxFinite = -Infinity;
  for (let l = 0; l < K; l++) {
    absent.push(false);
    if (!counted[l]) continue;
    if (weighting === 'uniform') w[l] = 1;
    else if (G[l] === 0) absent[l] = true;
    else w[l] = weighting === 'square' ? 1 / (G[l] * G[l]) : 1 / G[l];
    // 1/G_l can overflow to Infinity for a tiny soft G_l: it is then not finite either.
    if (!absent[l] && !Number.isFinite(w[l])) absent[l] = true;
    if (!absent[l]) maxFinite = Math.max(maxFinite, w[l]);
  }
  for (let l = 0; l < K; l++) {
    if (absent[l]) w[l] = maxFinite === -Infinity ? 0 : maxFinite;
  }
  if (maxFinite === -Infinity) w.fill(0); // no finite weight in L: all w_l = 0
  return w;
}

/** One group of GDL (see the file header for the formulas). */
export const generalizedDiceGroup: GroupLoss = (pr, g, _N, args): GroupResult => {
  const weighting = args.weighting ?? 'square';
  const sNr = args.smoothNumerator ?? 1e-5;
  const sDr = args.smoothDenominator ?? 1e-5;
  const floor = args.denominatorFloor ?? 0;
  const K = pr.K;
  const {G, P, I} = classSums(pr, g);
  const w = gdlWeights(G, pr.counted, weighting);

  let num = sNr, den = sDr;
  for (let l = 0; l < K; l++) {
    if (!pr.counted[l]) continue;
    num += 2 * w[l] * I[l];
    den += w[l] * Math.max(P[l] + G[l], floor);
  }
  const grad = new Float64Array((g.end - g.start) * K);
  if (den === 0) return {loss: 0, wrt: 'probability', grad};

  const loss = 1 - num / den;
  for (let n = g.start; n < g.end; n++) {
    if (!pr.kept[n]) continue;
    for (let l = 0; l < K; l++) {
      if (!pr.counted[l]) continue;
      const S = P[l] + G[l];
      const tie = S >= floor ? 1 : 0; // d max(S, floor)/dS, 1 at a tie (as NiftyNet)
      const r = pr.r[n * K + l];
      grad[(n - g.start) * K + l] = -w[l] * (2 * r * den - num * tie) / (den * den);
    }
  }
  return {loss, wrt: 'probability', grad};
};

/** Generalized Dice loss over all groups. */
export function generalizedDice(args: ReferenceArgs): ReferenceResult {
  return runLoss('generalizedDice', args, generalizedDiceGroup);
}
