/**
 * Shared plumbing of the float64 reference (docs/losses.md sections 1 and 3):
 * layout, targets, ignored voxels, groups, activations and the chain rule.
 *
 * The reference is the project's independent second opinion (STYLE.md rule 2):
 * it is written straight from docs/losses.md as plain float64 loops, with no code
 * shared with the native kernels, and favours obviousness over speed.
 *
 * Everything is expressed in *class space*: `K` classes per voxel with
 * probabilities `p[n*K + l]` and targets `r[n*K + l]`. For C >= 2 the classes
 * are the channels (`K = C`); on a binary map (C = 1) there are `K = 2`
 * classes, class 1 being the channel and class 0 the implicit background with
 * `p0 = 1 - p1`, `r0 = 1 - r1` (docs/losses.md section 1, "Binary maps").
 */
import type {Activation, AnyLossArgs, LossName, Reduction, Target} from '../types';

/** Arguments of {@link reference}: {@link AnyLossArgs} widened to float64 inputs. `gradient` and `device` are ignored. */
export type ReferenceArgs = Omit<AnyLossArgs, 'prediction' | 'target' | 'gradient' | 'device' | 'classWeights'> & {
  /**
   * Dice: one weight per class (2 on a binary map). Weighted cross-entropy:
   * `'inverse-frequency'`, `'paper'` or one weight per class. (Restated here
   * because `AnyLossArgs` intersects it with Dice's `ArrayLike<number>`.)
   */
  classWeights?: 'inverse-frequency' | 'paper' | ArrayLike<number>;
  /** Channels-last `[B, S..., C]`, float32 or float64. */
  prediction: Float32Array | Float64Array;
  /** Sparse class indices (length B*V) or dense values (length B*V*C). */
  target: Target | Float64Array;
  /** Ignored by the reference. */
  gradient?: unknown;
  /** Ignored by the reference. */
  device?: unknown;
};

/** What {@link reference} returns. */
export interface ReferenceResult {
  /** Pooled group loss ('pooled'), mean of `losses` ('mean', 'none') or their sum ('sum'). */
  loss: number;
  /** One loss per group: length 1 with 'pooled', B otherwise. */
  losses: Float64Array;
  /**
   * d(loss)/d(prediction) in float64, same layout as the prediction, times
   * gradScale. With 'none', sample b's block is `gradScale[b] * d losses[b] / dx`
   * (a scalar gradScale s gives `s * d(sum_b losses[b])/dx`).
   */
  gradient: Float64Array;
}

/** A contiguous run of voxels `[start, end)` (voxel = one `[b, s...]` position) forming one group. */
export interface Group {
  start: number;
  end: number;
}

/** The problem in class space, shared by all four losses. */
export interface Problem {
  /** Batch size. */
  B: number;
  /** Voxels per sample (product of the spatial dims). */
  V: number;
  /** Channels of the prediction. */
  C: number;
  /** Classes per voxel: 2 on a binary map, C otherwise. */
  K: number;
  /** C = 1: the paper's two-class form. */
  binary: boolean;
  /** Sigmoid with C >= 2: every channel is its own binary problem. */
  multiLabel: boolean;
  activation: Activation;
  /** The prediction widened to float64, `[B*V*C]`. */
  x: Float64Array;
  /** Class probabilities `[B*V*K]` after the activation. */
  p: Float64Array;
  /** Class targets `[B*V*K]` (0 on ignored voxels). */
  r: Float64Array;
  /** 1 where the voxel is kept (mask != 0 and not ignoreIndex). */
  kept: Uint8Array;
  /** `counted[l]`: l is in L (docs/losses.md section 1). */
  counted: boolean[];
  groups: Group[];
}

/**
 * Gradient of one group's loss. `wrt: 'probability'` holds `dL/dp_nl`
 * (`[nVoxels*K]`, class space) and goes through {@link chainRule};
 * `wrt: 'logit'` holds `dL/dz_nc` (`[nVoxels*C]`) already (WCE with a fused
 * activation uses its direct logit formulas).
 */
export interface GroupResult {
  loss: number;
  wrt: 'probability' | 'logit';
  grad: Float64Array;
}

/** Product of the spatial dims of `[B, S..., C]`. */
export function spatialSize(shape: readonly number[]): number {
  let v = 1;
  for (let i = 1; i < shape.length - 1; i++) v *= shape[i];
  return v;
}

/** Logistic function, written so that neither branch overflows. */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** `log(sigmoid(z))`, stable for large |z|: `-log1p(exp(-z))` or `z - log1p(exp(z))`. */
export function logSigmoid(z: number): number {
  return z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z));
}

/** Default of `includeBackground` per loss (docs/losses.md section 2: true except sensitivitySpecificity). */
export function defaultIncludeBackground(name: LossName): boolean {
  return name !== 'sensitivitySpecificity';
}

/**
 * Builds the class-space problem (docs/losses.md section 1).
 *
 * Targets: on a binary map (C = 1) every target value is r1 (or ignoreIndex);
 * for C >= 2 a target of length B*V*C is dense (r_nl read as is, ignoreIndex
 * does not apply), one of length B*V holds class indices (one-hot, or
 * ignoreIndex). A voxel is kept when its mask byte is non-zero and its target
 * is not ignoreIndex; ignored voxels get r = 0 and are skipped by every sum.
 */
export function buildProblem(name: LossName, args: ReferenceArgs): Problem {
  const shape = args.shape;
  const B = shape[0];
  const C = shape[shape.length - 1];
  const V = spatialSize(shape);
  const binary = C === 1;
  const K = binary ? 2 : C;
  const activation: Activation = args.activation ?? 'none';
  const multiLabel = activation === 'sigmoid' && C >= 2;
  const nVox = B * V;

  const x = Float64Array.from(args.prediction);
  const p = new Float64Array(nVox * K);
  const r = new Float64Array(nVox * K);
  const kept = new Uint8Array(nVox);

  // Activation (section 1): none, softmax over the channel axis, sigmoid per element.
  for (let n = 0; n < nVox; n++) {
    if (binary) {
      const p1 = activation === 'sigmoid' ? sigmoid(x[n]) : x[n];
      p[n * 2 + 1] = p1;
      p[n * 2] = 1 - p1;
    } else if (activation === 'softmax') {
      let m = -Infinity;
      for (let c = 0; c < C; c++) m = Math.max(m, x[n * C + c]);
      let s = 0;
      for (let c = 0; c < C; c++) s += Math.exp(x[n * C + c] - m);
      for (let c = 0; c < C; c++) p[n * C + c] = Math.exp(x[n * C + c] - m) / s;
    } else if (activation === 'sigmoid') {
      for (let c = 0; c < C; c++) p[n * C + c] = sigmoid(x[n * C + c]);
    } else {
      for (let c = 0; c < C; c++) p[n * C + c] = x[n * C + c];
    }
  }

  // Targets and kept voxels.
  const t = args.target;
  const dense = !binary && t.length === nVox * C;
  const ig = args.ignoreIndex;
  for (let n = 0; n < nVox; n++) {
    let keep = args.mask === undefined || args.mask[n] !== 0;
    if (binary) {
      const v = Number(t[n]);
      if (ig !== undefined && v === ig) keep = false;
      if (keep) {
        r[n * 2 + 1] = v;
        r[n * 2] = 1 - v;
      }
    } else if (dense) {
      if (keep) for (let c = 0; c < C; c++) r[n * C + c] = Number(t[n * C + c]);
    } else {
      const v = Number(t[n]);
      if (ig !== undefined && v === ig) keep = false;
      if (keep) r[n * C + v] = 1;
    }
    kept[n] = keep ? 1 : 0;
  }

  const includeBackground = args.includeBackground ?? defaultIncludeBackground(name);
  const counted: boolean[] = [];
  for (let l = 0; l < K; l++) counted.push(l !== 0 || includeBackground);

  const reduction: Reduction = args.reduction ?? 'pooled';
  const groups: Group[] = [];
  if (reduction === 'pooled') groups.push({start: 0, end: nVox});
  else for (let b = 0; b < B; b++) groups.push({start: b * V, end: (b + 1) * V});

  return {B, V, C, K, binary, multiLabel, activation, x, p, r, kept, counted, groups};
}

/** Number of kept voxels N of a group (section 1). */
export function keptCount(pr: Problem, g: Group): number {
  let N = 0;
  for (let n = g.start; n < g.end; n++) N += pr.kept[n];
  return N;
}

/**
 * Per-class sums of a group over its kept voxels (section 1):
 * `G_l = sum r`, `P_l = sum p`, `I_l = sum p r`, and `P2_l = sum p^2`,
 * `R2_l = sum r^2` for Dice's squared form.
 */
export function classSums(pr: Problem, g: Group): {G: Float64Array; P: Float64Array; I: Float64Array; P2: Float64Array; R2: Float64Array} {
  const K = pr.K;
  const G = new Float64Array(K), P = new Float64Array(K), I = new Float64Array(K);
  const P2 = new Float64Array(K), R2 = new Float64Array(K);
  for (let n = g.start; n < g.end; n++) {
    if (!pr.kept[n]) continue;
    for (let l = 0; l < K; l++) {
      const p = pr.p[n * K + l], r = pr.r[n * K + l];
      G[l] += r;
      P[l] += p;
      I[l] += p * r;
      P2[l] += p * p;
      R2[l] += r * r;
    }
  }
  return {G, P, I, P2, R2};
}

/**
 * Turns one voxel's class-space gradient `g_l = dL/dp_nl` into the gradient
 * with respect to the prediction's channels (section 1 and section 3):
 * binary map `g = g1 - g0` (p0 = 1 - p1), then
 * none: `g`; sigmoid: `g_c p_c (1 - p_c)`; softmax: `p_c (g_c - sum_k p_k g_k)`.
 * Writes `C` values into `out` at `outOffset`.
 */
export function chainRule(pr: Problem, n: number, gClass: Float64Array, gOffset: number, out: Float64Array, outOffset: number): void {
  const {C, K} = pr;
  if (pr.binary) {
    const g = gClass[gOffset + 1] - gClass[gOffset];
    const p1 = pr.p[n * 2 + 1];
    out[outOffset] = pr.activation === 'sigmoid' ? g * p1 * (1 - p1) : g;
    return;
  }
  if (pr.activation === 'softmax') {
    let dot = 0;
    for (let k = 0; k < K; k++) dot += pr.p[n * K + k] * gClass[gOffset + k];
    for (let c = 0; c < C; c++) out[outOffset + c] = pr.p[n * K + c] * (gClass[gOffset + c] - dot);
  } else if (pr.activation === 'sigmoid') {
    for (let c = 0; c < C; c++) {
      const pc = pr.p[n * K + c];
      out[outOffset + c] = gClass[gOffset + c] * pc * (1 - pc);
    }
  } else {
    for (let c = 0; c < C; c++) out[outOffset + c] = gClass[gOffset + c];
  }
}

/** A loss's group kernel: the loss of one group with N >= 1 kept voxels and its gradient. */
export type GroupLoss = (pr: Problem, g: Group, N: number, args: ReferenceArgs) => GroupResult;

/**
 * Runs a group kernel over every group and applies the reduction and
 * gradScale (section 1 "Groups", section 3 last paragraph).
 *
 * A group with no kept voxel has loss 0 and gradient 0 and still counts in B
 * for 'mean'. The gradient factor of group b is: 'pooled' and 'sum': s;
 * 'mean': s / B; 'none': s_b (gradScale[b], or the scalar s).
 */
export function runLoss(name: LossName, args: ReferenceArgs, kernel: GroupLoss): ReferenceResult {
  const pr = buildProblem(name, args);
  const reduction: Reduction = args.reduction ?? 'pooled';
  const gs = args.gradScale ?? 1;
  const losses = new Float64Array(pr.groups.length);
  const gradient = new Float64Array(pr.B * pr.V * pr.C);

  pr.groups.forEach((g, gi) => {
    const N = keptCount(pr, g);
    if (N === 0) return; // loss 0, gradient 0
    const res = kernel(pr, g, N, args);
    losses[gi] = res.loss;

    let factor: number;
    if (typeof gs === 'number') factor = reduction === 'mean' ? gs / pr.B : gs;
    else factor = reduction === 'none' ? gs[gi] : gs[0]; // arrays are only valid with 'none'

    const chan = new Float64Array(pr.C);
    for (let n = g.start; n < g.end; n++) {
      if (!pr.kept[n]) continue; // ignored voxels: zero gradient in all channels
      const local = n - g.start;
      if (res.wrt === 'logit') {
        for (let c = 0; c < pr.C; c++) chan[c] = res.grad[local * pr.C + c];
      } else {
        chainRule(pr, n, res.grad, local * pr.K, chan, 0);
      }
      for (let c = 0; c < pr.C; c++) gradient[n * pr.C + c] = factor * chan[c];
    }
  });

  let loss: number;
  if (reduction === 'pooled') loss = losses[0];
  else {
    let s = 0;
    for (let i = 0; i < losses.length; i++) s += losses[i];
    loss = reduction === 'sum' ? s : s / losses.length;
  }
  return {loss, losses, gradient};
}
