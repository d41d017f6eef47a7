/**
 * Benchmark inputs: a D^3 volume with C classes that looks like a segmentation
 * problem, so the timed losses see realistic values (not all-equal ones).
 *
 * - Labels: background 0 and, for each foreground class c = 1..C-1, one ball
 *   ("blob") holding a few % of the volume (4 % with C = 2; 10 % in all,
 *   split between the classes, with more classes). Balls drawn later overwrite earlier ones.
 * - Prediction: the same balls shifted by 4 % of D and 10 % smaller (a
 *   plausible segmentation that misses a rim and adds another), as logits
 *   z_c = 3 [c = predicted class] + 1.5 u with u uniform in [-1, 1) per
 *   channel, so voxels near the truth are confident and some are wrong.
 *   Probabilities are softmax(z) computed in float64 and stored as float32
 *   (each voxel's channels sum to 1 up to float32 rounding).
 * - Dense targets: the labels one-hot, float32, channels last.
 *
 * Everything is seeded (mulberry32), so every run times the same inputs.
 */

import {mulberry32} from '../lib/reference/random';

/** The seeded generator shared with the tests. */
export const rng = mulberry32;

export interface Volume {
  D: number;
  C: number;
  /** [1, D, D, D, C] */
  shape: number[];
  voxels: number;
  /** Class index per voxel, [1, D, D, D]. */
  labels: Uint8Array;
  /** softmax(logits), [1, D, D, D, C]. */
  probs: Float32Array;
  /** Logits, [1, D, D, D, C] (only when asked for). */
  logits?: Float32Array;
  /** One-hot labels, [1, D, D, D, C] (only when asked for). */
  dense?: Float32Array;
  /** Fraction of voxels per class. */
  classFractions: number[];
}

interface Ball { cx: number; cy: number; cz: number; r: number }

function paint(D: number, balls: Ball[], out: Uint8Array): void {
  out.fill(0);
  balls.forEach((b, i) => {
    const c = i + 1;
    const r2 = b.r * b.r;
    const z0 = Math.max(0, Math.floor(b.cz - b.r)), z1 = Math.min(D - 1, Math.ceil(b.cz + b.r));
    const y0 = Math.max(0, Math.floor(b.cy - b.r)), y1 = Math.min(D - 1, Math.ceil(b.cy + b.r));
    const x0 = Math.max(0, Math.floor(b.cx - b.r)), x1 = Math.min(D - 1, Math.ceil(b.cx + b.r));
    for (let z = z0; z <= z1; z++) {
      for (let y = y0; y <= y1; y++) {
        const dzy = (z - b.cz) ** 2 + (y - b.cy) ** 2;
        if (dzy > r2) continue;
        const row = (z * D + y) * D;
        for (let x = x0; x <= x1; x++) if (dzy + (x - b.cx) ** 2 <= r2) out[row + x] = c;
      }
    }
  });
}

/** A seeded D^3 x C volume (see the file header). */
export function makeVolume(D: number, C: number, opts: {logits?: boolean; dense?: boolean; seed?: number} = {}): Volume {
  if (C < 2 || C > 255) throw new RangeError(`Expected 2..255 classes for C but received ${C}`);
  const next = rng(opts.seed ?? (D * 1000 + C));
  const voxels = D * D * D;
  const fraction = C === 2 ? 0.04 : 0.10 / (C - 1);
  const r = D * Math.cbrt((3 * fraction) / (4 * Math.PI));
  const truth: Ball[] = [];
  for (let c = 1; c < C; c++) {
    const at = () => r + next() * (D - 2 * r);
    truth.push({cx: at(), cy: at(), cz: at(), r});
  }
  const shift = 0.04 * D;
  const predicted = truth.map((b) => ({cx: b.cx + shift, cy: b.cy - shift, cz: b.cz + shift / 2, r: 0.9 * b.r}));

  const labels = new Uint8Array(voxels);
  paint(D, truth, labels);
  const guess = new Uint8Array(voxels);
  paint(D, predicted, guess);

  const n = voxels * C;
  const probs = new Float32Array(n);
  const logits = opts.logits ? new Float32Array(n) : undefined;
  const z = new Float64Array(C);
  for (let v = 0; v < voxels; v++) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) {
      z[c] = (c === guess[v] ? 3 : 0) + 1.5 * (2 * next() - 1);
      if (logits) logits[v * C + c] = z[c];
      if (z[c] > max) max = z[c];
    }
    let sum = 0;
    for (let c = 0; c < C; c++) {
      z[c] = Math.exp(z[c] - max);
      sum += z[c];
    }
    for (let c = 0; c < C; c++) probs[v * C + c] = z[c] / sum;
  }

  let dense: Float32Array | undefined;
  if (opts.dense) {
    dense = new Float32Array(n);
    for (let v = 0; v < voxels; v++) dense[v * C + labels[v]] = 1;
  }
  const counts = new Array<number>(C).fill(0);
  for (let v = 0; v < voxels; v++) counts[labels[v]]++;
  return {D, C, shape: [1, D, D, D, C], voxels, labels, probs, logits, dense,
          classFractions: counts.map((k) => k / voxels)};
}
