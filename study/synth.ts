/**
 * Seeded synthetic lesion data, 2D or 3D, for the study.
 *
 * A volume is a textured two-tissue background (a smooth random field split
 * into "white" and "grey" matter) seen through several channels that mimic
 * T1 / T2 / FLAIR contrasts, lesions drawn as ellipsoids (random radii and
 * orientation, in 2D ellipses) and lobulated blobs (unions of 2-4 smaller
 * ellipsoids), a per-lesion contrast, and Gaussian noise; every channel is
 * then z-scored over the volume.
 *
 * The foreground fraction is exact: lesions are added until the count of
 * lesion voxels reaches round(fraction * voxels) (at least 1), and the last
 * lesion is trimmed by removing its voxels farthest from its centre, so the
 * label holds exactly that many foreground voxels. That makes imbalance a
 * controlled variable from about 30% down to 0.02% (0.02% needs at least
 * 2,500 voxels to mean one voxel).
 */
import {mulberry32} from '../lib/reference/random';

export interface Volume {
  /** Spatial sides, 2 or 3 entries (row-major, last fastest). */
  dims: number[];
  channels: number;
  /** Channels-last intensities, prod(dims) * channels. */
  image: Float32Array;
  /** 0 / 1 per voxel. */
  label: Uint8Array;
  /** Count of label voxels equal to 1. */
  foreground: number;
  /** Where it came from: 'synthetic seed N' or a file name. */
  source: string;
}

export interface SynthOptions {
  /** Spatial sides, 2 or 3 entries. */
  dims: number[];
  /** Foreground share of the voxels, in (0, 0.5]. */
  foregroundFraction: number;
  seed: number;
  /** 1 .. 3 channels, in the order T1, T2, FLAIR. Default 3. */
  channels?: number;
  /** Noise standard deviation relative to the white-matter intensity (1). Default 0.12. */
  noise?: number;
  /**
   * Lesion sizes in voxels, [min, max], drawn log-uniformly per lesion (the
   * last one trimmed to the exact count). Unset: each lesion takes a random
   * share of what is left to draw, so a volume holds a few lesions of mixed
   * size. Lesion size against patch side is what sets a patch's foreground
   * share, so the study's presets set it (presets.ts).
   */
  lesionVoxels?: [number, number];
}

/** Tissue intensities per channel: [white matter, grey matter, lesion at full contrast]. */
const CONTRAST: [number, number, number][] = [
  [1.0, 0.72, 0.55],   // T1: lesions hypointense
  [0.55, 0.75, 1.05],  // T2: hyperintense
  [0.6, 0.72, 1.15],   // FLAIR: hyperintense, the clearest
];

export function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function gaussian(rand: () => number): () => number {
  return () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

/** A random rotation as a row-major 3x3 (2D: rotation in the plane, padded). */
function randomRotation(rand: () => number, nd: number): number[][] {
  if (nd === 2) {
    const a = rand() * Math.PI;
    return [[Math.cos(a), -Math.sin(a)], [Math.sin(a), Math.cos(a)]];
  }
  // a random unit quaternion
  const [u1, u2, u3] = [rand(), rand(), rand()];
  const q = [Math.sqrt(1 - u1) * Math.sin(2 * Math.PI * u2), Math.sqrt(1 - u1) * Math.cos(2 * Math.PI * u2),
             Math.sqrt(u1) * Math.sin(2 * Math.PI * u3), Math.sqrt(u1) * Math.cos(2 * Math.PI * u3)];
  const [x, y, z, w] = q;
  return [
    [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
  ];
}

interface Ellipsoid {
  centre: number[];
  radii: number[];
  rot: number[][];
}

/** Voxel indices inside an ellipsoid, clipped to the volume. */
function ellipsoidVoxels(e: Ellipsoid, dims: number[]): number[] {
  const nd = dims.length;
  const reach = Math.max(...e.radii);
  const lo = e.centre.map((c, i) => Math.max(0, Math.floor(c - reach)));
  const hi = e.centre.map((c, i) => Math.min(dims[i] - 1, Math.ceil(c + reach)));
  const out: number[] = [];
  const p = new Array<number>(nd).fill(0);
  const visit = (axis: number) => {
    if (axis === nd) {
      let d = 0;
      for (let k = 0; k < nd; k++) {
        let t = 0;
        for (let j = 0; j < nd; j++) t += e.rot[j][k] * (p[j] - e.centre[j]);
        d += (t / e.radii[k]) ** 2;
      }
      if (d <= 1) {
        let idx = 0;
        for (let j = 0; j < nd; j++) idx = idx * dims[j] + p[j];
        out.push(idx);
      }
      return;
    }
    for (p[axis] = lo[axis]; p[axis] <= hi[axis]; p[axis]++) visit(axis + 1);
  };
  visit(0);
  return out;
}

/** Coordinates of a flat index. */
function coords(idx: number, dims: number[]): number[] {
  const c = new Array<number>(dims.length);
  for (let j = dims.length - 1; j >= 0; j--) {
    c[j] = idx % dims[j];
    idx = Math.floor(idx / dims[j]);
  }
  return c;
}

/**
 * Lesion shapes until exactly `target` voxels are foreground. Returns the
 * label and, per voxel, the index of the lesion that owns it (for contrast).
 */
function drawLesions(dims: number[], target: number, rand: () => number,
                     sizes?: [number, number]): {label: Uint8Array; owner: Int32Array; lesions: number} {
  const nd = dims.length;
  const V = product(dims);
  const label = new Uint8Array(V);
  const owner = new Int32Array(V).fill(-1);
  let count = 0;
  let lesion = 0;
  for (let attempt = 0; count < target; attempt++) {
    if (attempt > 100000) throw new Error(`synthetic lesions: could not reach ${target} foreground voxels`);
    const remaining = target - count;
    // lesion volume: a share of what is left, so there are several lesions of varied size
    let vol: number;
    if (sizes) {
      const v = Math.exp(Math.log(sizes[0]) + rand() * (Math.log(sizes[1]) - Math.log(sizes[0])));
      vol = Math.max(1, Math.min(v, remaining * 1.3));
    } else {
      const share = remaining <= 8 ? 1 : 0.15 + 0.85 * rand();
      vol = Math.max(1, remaining * share * 1.3);
    }
    const rMean = nd === 3 ? Math.cbrt(vol / (4 / 3 * Math.PI)) : Math.sqrt(vol / Math.PI);
    const blob = rand() < 0.4 && rMean > 2;
    const parts: Ellipsoid[] = [];
    const centre = dims.map((s) => rand() * (s - 1));
    const mk = (c: number[], r: number): Ellipsoid => ({
      centre: c,
      radii: dims.map(() => Math.max(0.5, r * (0.6 + 0.8 * rand()))),
      rot: randomRotation(rand, nd),
    });
    if (blob) {
      const n = 2 + Math.floor(rand() * 3);
      const r = rMean / Math.pow(n, 1 / nd);
      for (let i = 0; i < n; i++) parts.push(mk(centre.map((c) => c + (rand() - 0.5) * 1.5 * r), r));
    } else {
      parts.push(mk(centre, Math.max(0.6, rMean)));
    }
    const added: number[] = [];
    for (const part of parts) {
      for (const v of ellipsoidVoxels(part, dims)) {
        if (label[v] === 0) {
          label[v] = 1;
          owner[v] = lesion;
          added.push(v);
        }
      }
    }
    if (added.length === 0) {
      // tiny radii can miss every voxel centre: seed the lesion at its nearest voxel
      const v = coords(0, dims).map((_, j) => Math.round(centre[j])).reduce((a, c, j) => a * dims[j] + c, 0);
      if (label[v] === 0) {
        label[v] = 1;
        owner[v] = lesion;
        added.push(v);
      }
    }
    count += added.length;
    if (count > target) {
      // trim the last lesion from the outside in: farthest from its centre first
      const dist = (v: number) => coords(v, dims).reduce((s, c, j) => s + (c - centre[j]) ** 2, 0);
      added.sort((a, b) => dist(b) - dist(a) || a - b);
      for (let i = 0; count > target; i++, count--) {
        label[added[i]] = 0;
        owner[added[i]] = -1;
      }
    }
    if (added.length > 0) lesion++;
  }
  return {label, owner, lesions: lesion};
}

/** A smooth random field in [-1, 1]-ish: a sum of a few random plane waves. */
function smoothField(dims: number[], rand: () => number, waves: number, maxFreq: number): Float32Array {
  const nd = dims.length;
  const V = product(dims);
  const out = new Float32Array(V);
  const ks: {k: number[]; phase: number; amp: number}[] = [];
  for (let i = 0; i < waves; i++) {
    ks.push({k: dims.map((s) => (rand() * 2 - 1) * maxFreq * 2 * Math.PI / s), phase: rand() * 2 * Math.PI,
             amp: 0.5 + rand()});
  }
  const norm = ks.reduce((s, w) => s + w.amp, 0);
  for (let v = 0; v < V; v++) {
    const c = coords(v, dims);
    let f = 0;
    for (const w of ks) {
      let arg = w.phase;
      for (let j = 0; j < nd; j++) arg += w.k[j] * c[j];
      f += w.amp * Math.sin(arg);
    }
    out[v] = f / norm;
  }
  return out;
}

/** z-scores every channel of a channels-last image over its voxels, in place (constant channels become 0). */
export function zscore(image: Float32Array, channels: number): void {
  const V = image.length / channels;
  for (let ch = 0; ch < channels; ch++) {
    let s = 0, s2 = 0;
    for (let v = 0; v < V; v++) {
      const x = image[v * channels + ch];
      s += x;
      s2 += x * x;
    }
    const mean = s / V;
    const sd = Math.sqrt(Math.max(s2 / V - mean * mean, 0));
    for (let v = 0; v < V; v++) image[v * channels + ch] = sd > 1e-12 ? (image[v * channels + ch] - mean) / sd : 0;
  }
}

/** One synthetic volume with exactly max(1, round(foregroundFraction * voxels)) foreground voxels. */
export function synthVolume(o: SynthOptions): Volume {
  const dims = o.dims.slice();
  if (dims.length !== 2 && dims.length !== 3) throw new RangeError(`Expected 2 or 3 dims for dims but received [${dims}]`);
  if (!(o.foregroundFraction > 0 && o.foregroundFraction <= 0.5)) {
    throw new RangeError(`Expected a number in (0, 0.5] for foregroundFraction but received ${o.foregroundFraction}`);
  }
  const channels = o.channels ?? 3;
  if (!(channels >= 1 && channels <= 3)) throw new RangeError(`Expected 1, 2 or 3 for channels but received ${channels}`);
  const noise = o.noise ?? 0.12;
  const rand = mulberry32(o.seed);
  const normal = gaussian(rand);
  const V = product(dims);
  const target = Math.max(1, Math.round(o.foregroundFraction * V));
  const ls = o.lesionVoxels;
  if (ls && !(ls.length === 2 && ls[0] >= 1 && ls[1] >= ls[0])) {
    throw new RangeError(`Expected [min, max] with 1 <= min <= max for lesionVoxels but received ${JSON.stringify(ls)}`);
  }
  const {label, owner, lesions} = drawLesions(dims, target, rand, ls);
  const lesionContrast = Array.from({length: lesions}, () => 0.55 + 0.45 * rand());
  const tissue = smoothField(dims, rand, 6, 3);        // > threshold: grey matter
  const texture = smoothField(dims, rand, 10, 8);      // fine texture inside tissues
  const bias = smoothField(dims, rand, 2, 0.7);        // slow intensity bias field
  const threshold = (rand() - 0.5) * 0.3;
  const image = new Float32Array(V * channels);
  for (let v = 0; v < V; v++) {
    const grey = tissue[v] > threshold ? 1 : 0;
    const gain = 1 + 0.1 * bias[v];
    for (let ch = 0; ch < channels; ch++) {
      const [wm, gm, les] = CONTRAST[ch];
      let x = grey ? gm : wm;
      x += 0.04 * texture[v];
      if (label[v]) {
        const c = lesionContrast[owner[v]];
        x = x + c * (les - x);
      }
      image[v * channels + ch] = gain * x + noise * normal();
    }
  }
  zscore(image, channels);
  let foreground = 0;
  for (let v = 0; v < V; v++) foreground += label[v];
  return {dims, channels, image, label, foreground, source: `synthetic seed ${o.seed}`};
}

/** Share of foreground voxels. */
export function foregroundFraction(label: Uint8Array): number {
  let n = 0;
  for (let v = 0; v < label.length; v++) n += label[v];
  return n / label.length;
}

/** Foreground voxel indices, for sampling patches that hold at least one. */
export function foregroundIndex(label: Uint8Array): Int32Array {
  const out: number[] = [];
  for (let v = 0; v < label.length; v++) if (label[v]) out.push(v);
  return Int32Array.from(out);
}

export interface Patch {
  image: Float32Array;
  label: Uint8Array;
  foreground: number;
}

/**
 * A random patch of `size` (per axis, <= dims) that holds at least one
 * foreground voxel, as in the paper: up to 20 uniform draws of the corner,
 * then a corner chosen so a random foreground voxel falls inside.
 * `fgIndex` must be non-empty.
 */
export function samplePatch(vol: Volume, fgIndex: Int32Array, size: number[], rand: () => number): Patch {
  const nd = vol.dims.length;
  const corner = new Array<number>(nd);
  let ok = false;
  for (let attempt = 0; attempt < 20 && !ok; attempt++) {
    for (let j = 0; j < nd; j++) corner[j] = Math.floor(rand() * (vol.dims[j] - size[j] + 1));
    ok = countInBox(vol, corner, size) > 0;
  }
  if (!ok) {
    const c = coords(fgIndex[Math.floor(rand() * fgIndex.length)], vol.dims);
    for (let j = 0; j < nd; j++) {
      const lo = Math.max(0, c[j] - size[j] + 1);
      const hi = Math.min(c[j], vol.dims[j] - size[j]);
      corner[j] = lo + Math.floor(rand() * (hi - lo + 1));
    }
  }
  return cropPatch(vol, corner, size);
}

function countInBox(vol: Volume, corner: number[], size: number[]): number {
  const d = vol.dims;
  let n = 0;
  if (d.length === 2) {
    for (let y = 0; y < size[0]; y++) {
      const row = (corner[0] + y) * d[1] + corner[1];
      for (let x = 0; x < size[1]; x++) n += vol.label[row + x];
    }
  } else {
    for (let z = 0; z < size[0]; z++) {
      for (let y = 0; y < size[1]; y++) {
        const row = ((corner[0] + z) * d[1] + corner[1] + y) * d[2] + corner[2];
        for (let x = 0; x < size[2]; x++) n += vol.label[row + x];
      }
    }
  }
  return n;
}

/** Copies the box at `corner` of `size` out of a volume. */
export function cropPatch(vol: Volume, corner: number[], size: number[]): Patch {
  const d = vol.dims;
  const C = vol.channels;
  const P = product(size);
  const image = new Float32Array(P * C);
  const label = new Uint8Array(P);
  let o = 0;
  const copyRow = (src: number, len: number) => {
    image.set(vol.image.subarray(src * C, (src + len) * C), o * C);
    label.set(vol.label.subarray(src, src + len), o);
    o += len;
  };
  if (d.length === 2) {
    for (let y = 0; y < size[0]; y++) copyRow((corner[0] + y) * d[1] + corner[1], size[1]);
  } else {
    for (let z = 0; z < size[0]; z++) {
      for (let y = 0; y < size[1]; y++) copyRow(((corner[0] + z) * d[1] + corner[1] + y) * d[2] + corner[2], size[2]);
    }
  }
  let fg = 0;
  for (let i = 0; i < P; i++) fg += label[i];
  return {image, label, foreground: fg};
}
