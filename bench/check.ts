/**
 * Correctness before timing: every loss the bench times, in every target kind
 * and activation it times, at a small shape [2, 9, 10, 11, C] (C = 2 and 8),
 * against the float64 reference of lib/reference (STYLE.md rule 12: the
 * bench's baseline comes from the test reference).
 *
 * Tolerances, with the reason:
 * - loss: relative error <= 1e-6. segloss accumulates in float64 and returns
 *   a float64 loss; the inputs are the same float32 values; only the order of
 *   the float64 sums differs (~1e-15).
 * - gradient: relative L2 error ||g - g_ref|| / ||g_ref|| <= 1e-6. segloss
 *   writes float32, so each entry carries a rounding error <= 2^-24 ~ 6e-8
 *   relative.
 * With C = 8 the labels use classes 0..6 only, so class 7 is absent and the
 * absent-class rules (GDL's largest finite weight, WCE's zero weight) are checked too.
 */
import * as segloss from '../lib';
import {reference} from '../lib/reference';
import type {Activation, LossName, LossResult} from '../lib/types';
import {rng} from './inputs';

export const LOSSES: LossName[] = ['generalizedDice', 'dice', 'sensitivitySpecificity', 'weightedCrossEntropy'];
export const TOL = {lossRel: 1e-6, gradRelL2: 1e-6};

export interface CheckCase {
  C: number;
  target: 'uint8' | 'dense';
  activation: Activation;
  loss: number;
  referenceLoss: number;
  lossRelErr: number;
  gradRelL2: number;
  ok: boolean;
}

export interface LossCheck {
  loss: LossName;
  shape: string;
  cases: CheckCase[];
  worstLossRelErr: number;
  worstGradRelL2: number;
  ok: boolean;
  error?: string;
}

/** ||a - b|| / ||b|| (0 when both are 0). */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] * b[i];
  }
  return n === 0 ? Math.sqrt(d) : Math.sqrt(d / n);
}

export function relErr(a: number, b: number): number {
  return b === 0 ? Math.abs(a) : Math.abs(a - b) / Math.abs(b);
}

interface Inputs { shape: number[]; logits: Float32Array; probs: Float32Array; labels: Uint8Array; dense: Float32Array }

function inputs(C: number): Inputs {
  const shape = [2, 9, 10, 11, C];
  const voxels = 2 * 9 * 10 * 11;
  const next = rng(0xbe7c + C);
  const labels = new Uint8Array(voxels);
  const classes = C === 2 ? 2 : C - 1;
  for (let v = 0; v < voxels; v++) labels[v] = Math.floor(next() * classes);
  const logits = new Float32Array(voxels * C);
  const probs = new Float32Array(voxels * C);
  const dense = new Float32Array(voxels * C);
  for (let v = 0; v < voxels; v++) {
    let sum = 0;
    const e: number[] = [];
    for (let c = 0; c < C; c++) {
      const z = (c === labels[v] ? 1.5 : 0) + 2 * (2 * next() - 1);
      logits[v * C + c] = z;
      e.push(Math.exp(z));
      sum += e[c];
    }
    for (let c = 0; c < C; c++) probs[v * C + c] = e[c] / sum;
    dense[v * C + labels[v]] = 1;
  }
  return {shape, logits, probs, labels, dense};
}

const CASES: Array<{target: 'uint8' | 'dense'; activation: Activation}> = [
  {target: 'uint8', activation: 'none'},
  {target: 'dense', activation: 'none'},
  {target: 'uint8', activation: 'softmax'},
];

/** Runs every case of one loss; never throws (an exception is a failed check). */
export function checkLoss(name: LossName): LossCheck {
  const out: LossCheck = {loss: name, shape: '[2, 9, 10, 11, C], C = 2, 8', cases: [], worstLossRelErr: 0,
                          worstGradRelL2: 0, ok: true};
  try {
    for (const C of [2, 8]) {
      const x = inputs(C);
      for (const k of CASES) {
        const args = {
          prediction: k.activation === 'none' ? x.probs : x.logits,
          shape: x.shape,
          target: k.target === 'uint8' ? x.labels : x.dense,
          activation: k.activation,
        };
        const got = (segloss[name] as (a: typeof args) => LossResult)(args);
        const ref = reference(name, args);
        if (!got.gradient) throw new Error('no gradient returned');
        const lossRelErr = relErr(got.loss, ref.loss);
        const gradRelL2 = relL2(got.gradient, ref.gradient);
        const ok = lossRelErr <= TOL.lossRel && gradRelL2 <= TOL.gradRelL2;
        out.cases.push({C, target: k.target, activation: k.activation, loss: got.loss, referenceLoss: ref.loss,
                        lossRelErr, gradRelL2, ok});
        out.worstLossRelErr = Math.max(out.worstLossRelErr, lossRelErr);
        out.worstGradRelL2 = Math.max(out.worstGradRelL2, gradRelL2);
        out.ok &&= ok;
      }
    }
  } catch (e) {
    out.ok = false;
    out.error = (e as Error).stack ?? String(e);
  }
  return out;
}

export function checkAll(): LossCheck[] {
  return LOSSES.map(checkLoss);
}

/** One line per loss, plus the failing cases. */
export function checkLines(checks: LossCheck[]): string[] {
  const lines: string[] = [];
  for (const c of checks) {
    const what = c.cases.map((k) => `C=${k.C} ${k.target} ${k.activation}`);
    lines.push(`${c.ok ? 'ok  ' : 'FAIL'} ${c.loss.padEnd(22)} ${c.cases.length} cases (${c.shape}; uint8/dense ` +
               `'none', uint8 'softmax'): loss rel err <= ${c.worstLossRelErr.toExponential(1)}, ` +
               `gradient rel L2 <= ${c.worstGradRelL2.toExponential(1)}`);
    c.cases.forEach((k, i) => {
      if (!k.ok) {
        lines.push(`       ${what[i]}: loss ${k.loss} vs reference ${k.referenceLoss} (rel err ` +
                   `${k.lossRelErr.toExponential(2)}), gradient rel L2 ${k.gradRelL2.toExponential(2)}`);
      }
    });
    if (c.error) lines.push(`       error: ${c.error.split('\n').slice(0, 4).join('\n       ')}`);
  }
  return lines;
}
