/**
 * The one tolerance table of the native tests (STYLE.md rule 11), each entry
 * with the reason for its size, and the comparison helpers that use it.
 * Mismatch reports print the count and the first few indices and values.
 *
 * Also home to the small helpers every native test file shares (a seeded
 * PRNG), so that each test file stays a list of cases.
 */

/**
 * How two results are compared:
 * - `relative`: each entry `|a - b| / max(|b|, floor) <= value`;
 * - `relativeL2`: the whole vector `||a - b|| / max(||b||, floor) <= value`;
 * - `exact`: bit-identical (every element's bits, via Uint32Array views for
 *   typed arrays; `Object.is` for numbers, so +0 and -0 differ).
 */
export interface Tolerance {
  kind: 'relative' | 'relativeL2' | 'exact';
  value: number;
  floor: number;
  reason: string;
}

export const TOL = {
  /** Native loss vs the float64 reference. */
  nativeLoss: {
    kind: 'relative', value: 1e-6, floor: 1e-3,
    reason: 'docs/losses.md section 4: both sum in float64, so the loss differs by rounding only (~1e-15); the ' +
      'contract allows |a - b| / max(|b|, 1e-3) <= 1e-6 (the floor keeps near-zero losses from failing on ' +
      'cancellation in 1 - Num/Den)',
  },
  /** Native gradient (float32) vs the float64 reference gradient. */
  nativeGradient: {
    kind: 'relativeL2', value: 1e-6, floor: 1e-12,
    reason: 'docs/losses.md section 4: ||a - b|| / ||b|| <= 1e-6; the native gradient is rounded to float32 ' +
      '(6e-8 relative per entry), the float64 sums add ~1e-15. The 1e-12 floor on ||b|| only matters for an ' +
      'exactly zero reference gradient (e.g. a WCE with all weights 0), where the native one must be ~0 too',
  },
  /** Per-sample losses ('none') vs the reference. */
  nativeLosses: {
    kind: 'relative', value: 1e-6, floor: 1e-3,
    reason: 'same as nativeLoss, entry by entry',
  },
  /** setThreads(1 | 2 | 4): loss, losses and gradient. */
  threads: {
    kind: 'exact', value: 0, floor: 0,
    reason: 'docs/losses.md section 4 / STYLE.md rule 4: fixed chunks, per-chunk float64 partials combined in chunk ' +
      'order, so the thread count cannot change a single bit',
  },
  /** xxxAsync vs xxx, gradient: false vs true, a caller buffer vs an allocated one. */
  samePath: {
    kind: 'exact', value: 0, floor: 0,
    reason: 'the same passes on the same data (only the thread that runs them, or whether the gradient pass ' +
      'runs afterwards, differs): the results must be bit-identical',
  },
  /** Split phase, spatial chunks: lossFromStats(merged slab stats) vs the one-call loss. */
  splitLoss: {
    kind: 'relative', value: 1e-12, floor: 1e-3,
    reason: 'slab statistics are float64 sums of the same voxels added in another order: the loss moves by ' +
      'float64 rounding only (a few 1e-16 relative, amplified by at most the conditioning of 1 - Num/Den)',
  },
  /** Split phase, spatial chunks: reassembled gradientFromStats vs the one-call gradient. */
  splitGradient: {
    kind: 'relativeL2', value: 1e-6, floor: 1e-12,
    reason: 'coefficients from reordered float64 sums differ by ~1e-16, which may flip the float32 rounding of ' +
      'an entry by one ulp (6e-8 relative): the contract accuracy of a float32 output, 1e-6 relative L2',
  },
  /** Split phase, batch chunks (whole samples): merged stats vs one call. */
  batchSplit: {
    kind: 'exact', value: 0, floor: 0,
    reason: 'chunks never span two samples, so each sample\'s sums are the same float64 numbers computed in ' +
      'the same order in both cases, and merging places them next to zeros: bit-identical',
  },
  /** segloss/tfjs value (a float32 tensor) vs the float64 reference. */
  tfjsLoss: {
    kind: 'relative', value: 1e-6, floor: 1e-3,
    reason: 'the op computes in float64 like the addon and returns a float32 scalar: rounding adds 6e-8',
  },
  /** segloss/tfjs gradient (float32 tensor, through tf.grad) vs the float64 reference. */
  tfjsGradient: {
    kind: 'relativeL2', value: 1e-6, floor: 1e-12,
    reason: 'the same fused gradient pass as the addon (docs/losses.md section 4), with dy folded into its scale',
  },
  /** segloss/tfjs vs the same loss composed from float32 tfjs ops. */
  tfjsComposite: {
    kind: 'relativeL2', value: 1e-4, floor: 1e-12,
    reason: 'the composite sums ~10^2 float32 terms per class in float32 and divides by G^2 in float32: its ' +
      'own error is ~1e-6..1e-5 relative; 1e-4 leaves margin while still catching a wrong formula',
  },
} satisfies Record<string, Tolerance>;

type Numeric = number | ArrayLike<number>;

function fmt(v: number): string {
  return Object.is(v, -0) ? '-0' : String(v);
}

/** The element type of a float typed array, by tag (arrays built by the addon belong to another realm). */
function floatTag(a: unknown): string | null {
  const tag = Object.prototype.toString.call(a);
  return tag === '[object Float32Array]' || tag === '[object Float64Array]' ? tag : null;
}

function bitsOf(a: ArrayLike<number>): Uint32Array | null {
  if (floatTag(a) === null) return null;
  const v = a as unknown as ArrayBufferView;
  return new Uint32Array(v.buffer, v.byteOffset, v.byteLength / 4);
}

/**
 * Bit-identity of two float arrays of the same type (compared through
 * Uint32Array views of their bytes), or of two numbers.
 */
export function expectBitIdentical(actual: Numeric | undefined, expected: Numeric | undefined, label: string): void {
  expectClose(actual, expected, TOL.samePath, label);
}

/**
 * Compares `actual` with `expected` under `tol`; throws an Error naming
 * `label`, the error measure, the number of mismatching entries and the
 * first few of them (index, actual, expected).
 */
export function expectClose(actual: Numeric | undefined, expected: Numeric | undefined, tol: Tolerance, label: string): void {
  if (actual === undefined || expected === undefined) {
    throw new Error(`${label}: ${actual === undefined ? 'actual' : 'expected'} value is missing`);
  }
  if (typeof expected === 'number' || typeof actual === 'number') {
    if (typeof expected !== 'number' || typeof actual !== 'number') {
      throw new Error(`${label}: comparing a number with an array`);
    }
    if (tol.kind === 'exact') {
      if (!Object.is(actual, expected)) throw new Error(`${label}: got ${fmt(actual)}, expected exactly ${fmt(expected)}`);
      return;
    }
    const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), tol.floor);
    if (!(err <= tol.value)) {
      throw new Error(`${label}: got ${actual}, expected ${expected}: relative error ${err} > ${tol.value}`);
    }
    return;
  }
  const a = actual, b = expected;
  if (a.length !== b.length) throw new Error(`${label}: length ${a.length}, expected ${b.length}`);
  const n = b.length;
  const bad: number[] = [];
  let count = 0;
  let headline = '';
  const note = (i: number) => {
    count++;
    if (bad.length < 6) bad.push(i);
  };

  if (tol.kind === 'exact') {
    const ab = bitsOf(a), bb = bitsOf(b);
    if (ab && bb && floatTag(a) === floatTag(b)) {
      const per = ab.length / n;
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < per; k++) {
          if (ab[i * per + k] !== bb[i * per + k]) { note(i); break; }
        }
      }
    } else {
      for (let i = 0; i < n; i++) if (!Object.is(a[i], b[i])) note(i);
    }
    headline = 'not bit-identical';
  } else if (tol.kind === 'relative') {
    for (let i = 0; i < n; i++) {
      const err = Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), tol.floor);
      if (!(err <= tol.value)) note(i);
    }
    headline = `relative error > ${tol.value}`;
  } else {
    let d2 = 0, b2 = 0;
    for (let i = 0; i < n; i++) {
      const d = a[i] - b[i];
      d2 += d * d;
      b2 += b[i] * b[i];
    }
    const denom = Math.max(Math.sqrt(b2), tol.floor);
    const err = Math.sqrt(d2) / denom;
    if (err <= tol.value) return;
    // An L2 error above tol * ||b|| needs at least one entry above tol * ||b|| / sqrt(n): list those.
    const entryTol = (tol.value * denom) / Math.sqrt(n);
    for (let i = 0; i < n; i++) if (!(Math.abs(a[i] - b[i]) <= entryTol)) note(i);
    if (count === 0) note(0);
    headline = `relative L2 error ${err} > ${tol.value} (||expected|| = ${Math.sqrt(b2)}); entries off by more than ${entryTol}`;
  }
  if (count === 0) return;
  const shown = bad.map((i) => `[${i}] got ${fmt(a[i])}, expected ${fmt(b[i])}`).join('; ');
  throw new Error(`${label}: ${headline}: ${count} of ${n} entries: ${shown}${count > bad.length ? '; ...' : ''}`);
}

export {mulberry32} from '../lib/reference/random';

/** A 32-bit seed from a string (FNV-1a), so each test's inputs follow from its name. */
export function seedOf(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * The class of a thrown value by name ('TypeError', 'RangeError', 'Error', ...).
 * Errors built by the addon belong to Node's main context, not to jest's
 * sandbox, so `instanceof TypeError` is false for them inside a test: compare
 * the constructor's name (and the prototype chain's names) instead.
 */
export function errorClass(e: unknown): string {
  if (typeof e !== 'object' || e === null) return `not an error (${typeof e})`;
  const names: string[] = [];
  for (let p = Object.getPrototypeOf(e); p !== null; p = Object.getPrototypeOf(p)) names.push(p.constructor?.name);
  if (!names.includes('Error')) return `not an error (${names.join(' < ')})`;
  return (e as Error).constructor.name;
}

/** What `f` throws (fails when it returns normally). */
export function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw, but the call returned normally');
}
