/**
 * The study's statistics, pure functions over numbers: quantiles, the
 * median and range over seeds, the convergence test on a training curve,
 * and the choice of a loss's configuration for the held-out comparison.
 */

/** Linear-interpolated quantile of an ascending array (NaN when empty). */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median and range of a sample (over seeds, over volumes); NaN fields when it is empty. */
export function spread(xs: number[]): Spread {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return {median: quantile(s, 0.5), min: s.length ? s[0] : NaN, max: s.length ? s[s.length - 1] : NaN, n: s.length};
}

export interface Trend {
  /** Least-squares slope per iteration over the window. */
  slope: number;
  /** slope x (window - 1): the fitted change from the window's first iteration to its last. */
  change: number;
  /** slope / its standard error (residual-based); 0 for a constant window, +-Infinity for an exact line. */
  t: number;
}

/** The least-squares line through the last `window` finite values of a curve (at least 3 needed, else zeros). */
export function trend(curve: (number | null)[], window: number): Trend {
  const ys = curve.slice(-window).map((y) => (y === null || !Number.isFinite(y) ? NaN : y));
  const pts = ys.flatMap((y, i) => (Number.isNaN(y) ? [] : [[i, y]]));
  const n = pts.length;
  if (n < 3) return {slope: 0, change: 0, t: 0};
  const mx = pts.reduce((s, p) => s + p[0], 0) / n;
  const my = pts.reduce((s, p) => s + p[1], 0) / n;
  let sxx = 0, sxy = 0;
  for (const [x, y] of pts) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
  }
  const slope = sxy / sxx;
  let ssr = 0;
  for (const [x, y] of pts) ssr += (y - my - slope * (x - mx)) ** 2;
  const se = Math.sqrt(ssr / (n - 2) / sxx);
  const t = slope === 0 ? 0 : se === 0 ? Math.sign(slope) * Infinity : slope / se;
  return {slope, change: slope * (Math.min(window, ys.length) - 1), t};
}

/**
 * When a run counts as still training: over its last 2K iterations (twice
 * the window its DSC is reported over, so that per-batch noise does not
 * hide a trend; at most the whole run) its training DSC still moves, up or
 * down, by at least DSC_MIN, or its loss still falls by at least LOSS_MIN of
 * its starting level (the mean of its first K iterations), the
 * least-squares slope being at least T_MIN standard errors from 0. A run
 * that sits at DSC 0 with a flat loss has converged, to a failure; one that
 * creeps up from 0.02, or whose loss still falls while its DSC waits, has
 * not. A window under MIN_WINDOW iterations cannot tell noise from a trend,
 * so such a run never counts as converged.
 */
export const CONVERGENCE = {T_MIN: 2, DSC_MIN: 0.02, LOSS_MIN: 0.01, MIN_WINDOW: 10} as const;

export interface Convergence {
  converged: boolean;
  /** Fitted DSC change over the last 2K iterations. */
  dscChange: number;
  /** Fitted loss change over the last 2K iterations, relative to the loss's starting level. */
  lossChange: number;
}

export function convergence(dscCurve: number[], lossCurve: (number | null)[], lastK: number): Convergence {
  const window = Math.min(2 * lastK, dscCurve.length);
  const d = trend(dscCurve, window);
  const l = trend(lossCurve, window);
  const first = lossCurve.slice(0, lastK).filter((x): x is number => x !== null && Number.isFinite(x));
  const level = first.length ? Math.abs(first.reduce((a, b) => a + b, 0) / first.length) : 0;
  const lossChange = level > 0 ? l.change / level : 0;
  const moving = Math.abs(d.change) >= CONVERGENCE.DSC_MIN && Math.abs(d.t) >= CONVERGENCE.T_MIN;
  const falling = -lossChange >= CONVERGENCE.LOSS_MIN && -l.t >= CONVERGENCE.T_MIN;
  return {converged: window >= CONVERGENCE.MIN_WINDOW && !moving && !falling, dscChange: d.change, lossChange};
}

/**
 * The configuration a loss is judged by on held-out data: the one with the
 * highest training DSC (median over seeds), never the held-out DSC itself,
 * which would pick on the test set. Ties go to the first. -1 when empty.
 */
export function chooseByTraining(trainingDsc: number[]): number {
  let best = -1;
  for (let i = 0; i < trainingDsc.length; i++) {
    if (!Number.isFinite(trainingDsc[i])) continue;
    if (best < 0 || trainingDsc[i] > trainingDsc[best]) best = i;
  }
  return best;
}
