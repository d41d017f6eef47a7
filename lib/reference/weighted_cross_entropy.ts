/**
 * Weighted cross-entropy, float64 reference (docs/losses.md section 2,
 * "Weighted cross-entropy"; Sudre et al. 2017, WCE, after Long et al.):
 *
 * ```
 * loss = -(1/N) sum_n sum_{l in L} w_l r_nl log(q_nl)
 * q = max(p, 1e-7) for activation 'none'; log-softmax / log-sigmoid of the logits otherwise
 * binary map: -(1/N) sum_n [w_1 r log q1 + w_0 (1 - r) log q0]
 * sigmoid, C >= 2 (multi-label): -(1/N) sum_n sum_{l in L} [w_l r log q + (1 - r) log(1 - q)]
 * ```
 * Gradients (weights are constants):
 * - probabilities: `dL/dp_nl = -(1/N) w_l r_nl / p_nl` where `p_nl > 1e-7`, else 0
 *   (binary map: collected on the channel by the common chain rule, `g1 - g0`);
 * - softmax logits: `dL/dz_nc = (1/N)(p_nc sum_{l in L} w_l r_nl - [c in L] w_c r_nc)`;
 * - sigmoid logits, binary map: `dL/dz = -(1/N)(w1 r (1 - p) - w0 (1 - r) p)`
 *   (a class outside L contributes nothing, i.e. its weight acts as 0);
 * - sigmoid logits, multi-label: `dL/dz_nc = -(1/N)(w_c r (1 - p) - (1 - r) p)` for c in L, else 0.
 */
import {GroupLoss, GroupResult, Problem, ReferenceArgs, classSums, logSigmoid, runLoss, ReferenceResult, Group} from './common';

/** The probability clamp of activation 'none' (docs/losses.md: `q = max(p, 1e-7)`), a float64 constant. */
export const WCE_CLAMP = 1e-7;

/**
 * WCE class weights of one group, in class space (K entries):
 * `'inverse-frequency'`: `w_0 = 1`, `w_l = (N - G_l)/G_l` (l >= 1), 0 when `G_l = 0`;
 * `'paper'`: the same with `P_l` (sum of probabilities) instead of `G_l`;
 * multi-label sigmoid: every channel, class 0 included, gets the `(N - X_l)/X_l` form;
 * an array: used as given (C entries, 2 on a binary map: background, foreground).
 */
export function wceWeights(pr: Problem, g: Group, N: number, classWeights: ReferenceArgs['classWeights']): Float64Array {
  const K = pr.K;
  const w = new Float64Array(K);
  const cw = classWeights ?? 'inverse-frequency';
  if (typeof cw !== 'string') {
    for (let l = 0; l < K; l++) w[l] = Number(cw[l]);
    return w;
  }
  const {G, P} = classSums(pr, g);
  const X = cw === 'paper' ? P : G;
  for (let l = 0; l < K; l++) {
    if (l === 0 && !pr.multiLabel) w[l] = 1;
    else w[l] = X[l] === 0 ? 0 : (N - X[l]) / X[l];
  }
  return w;
}

/** One group of WCE (see the file header for the formulas). */
export const weightedCrossEntropyGroup: GroupLoss = (pr, g, N, args): GroupResult => {
  const {K, C} = pr;
  const w = wceWeights(pr, g, N, args.classWeights);
  const nv = g.end - g.start;
  let sum = 0;

  if (pr.activation === 'none') {
    // Probabilities (binary map included: classes 0 and 1 with p0 = 1 - p1, r0 = 1 - r1).
    const grad = new Float64Array(nv * K);
    for (let n = g.start; n < g.end; n++) {
      if (!pr.kept[n]) continue;
      for (let l = 0; l < K; l++) {
        if (!pr.counted[l]) continue;
        const p = pr.p[n * K + l], r = pr.r[n * K + l];
        sum += w[l] * r * Math.log(Math.max(p, WCE_CLAMP));
        grad[(n - g.start) * K + l] = p > WCE_CLAMP ? -(1 / N) * w[l] * r / p : 0;
      }
    }
    return {loss: -sum / N, wrt: 'probability', grad};
  }

  const grad = new Float64Array(nv * C);
  if (pr.activation === 'softmax') {
    for (let n = g.start; n < g.end; n++) {
      if (!pr.kept[n]) continue;
      let m = -Infinity;
      for (let c = 0; c < C; c++) m = Math.max(m, pr.x[n * C + c]);
      let se = 0;
      for (let c = 0; c < C; c++) se += Math.exp(pr.x[n * C + c] - m);
      const lse = m + Math.log(se);
      let wr = 0; // sum_{l in L} w_l r_nl
      for (let l = 0; l < C; l++) {
        if (!pr.counted[l]) continue;
        const r = pr.r[n * K + l];
        sum += w[l] * r * (pr.x[n * C + l] - lse); // log-softmax
        wr += w[l] * r;
      }
      for (let c = 0; c < C; c++) {
        const own = pr.counted[c] ? w[c] * pr.r[n * K + c] : 0;
        grad[(n - g.start) * C + c] = (1 / N) * (pr.p[n * K + c] * wr - own);
      }
    }
    return {loss: -sum / N, wrt: 'logit', grad};
  }

  // Sigmoid.
  if (pr.binary) {
    const w1 = pr.counted[1] ? w[1] : 0;
    const w0 = pr.counted[0] ? w[0] : 0;
    for (let n = g.start; n < g.end; n++) {
      if (!pr.kept[n]) continue;
      const z = pr.x[n], r = pr.r[n * 2 + 1], p = pr.p[n * 2 + 1];
      // log q1 = log sigmoid(z), log q0 = log(1 - sigmoid(z)) = log sigmoid(-z)
      sum += w1 * r * logSigmoid(z) + w0 * (1 - r) * logSigmoid(-z);
      grad[n - g.start] = -(1 / N) * (w1 * r * (1 - p) - w0 * (1 - r) * p);
    }
    return {loss: -sum / N, wrt: 'logit', grad};
  }

  // Multi-label sigmoid: each channel its own binary problem; unweighted negative term.
  for (let n = g.start; n < g.end; n++) {
    if (!pr.kept[n]) continue;
    for (let c = 0; c < C; c++) {
      if (!pr.counted[c]) continue;
      const z = pr.x[n * C + c], r = pr.r[n * K + c], p = pr.p[n * K + c];
      sum += w[c] * r * logSigmoid(z) + (1 - r) * logSigmoid(-z);
      grad[(n - g.start) * C + c] = -(1 / N) * (w[c] * r * (1 - p) - (1 - r) * p);
    }
  }
  return {loss: -sum / N, wrt: 'logit', grad};
};

/** Weighted cross-entropy over all groups. */
export function weightedCrossEntropy(args: ReferenceArgs): ReferenceResult {
  return runLoss('weightedCrossEntropy', args, weightedCrossEntropyGroup);
}
