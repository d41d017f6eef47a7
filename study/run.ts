/**
 * The study: for every network x loss x learning rate x patch size, train
 * from the same initial weights on the same sequence of patches (each holds
 * at least one foreground voxel), record the loss and the hard Dice (DSC) of
 * every training batch, then segment the held-out volumes whole.
 *
 * Each finished configuration is written to `<out>/configs/<id>.json` at
 * once, with a fingerprint of everything that determines it (preset values,
 * data, seed, code version, backend); a rerun skips a configuration whose
 * file has the same fingerprint, so an interrupted study resumes where it
 * stopped.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import type * as TfNamespace from '@tensorflow/tfjs';

import {mulberry32} from '../lib/reference/random';
import type * as SeglossTfjs from '../lib/tfjs';
import {buildNet, NET_DIMS, NetName, SIDE_MULTIPLE} from './nets';
import {LossKey, PatchKey, Preset} from './presets';
import {Progress} from './progress';
import {convergence, quantile} from './stats';
import {foregroundIndex, Patch, product, samplePatch, synthVolume, Volume} from './synth';
import type {LoadedTf, Tf} from './tf';

export interface DataSet {
  /** 'synthetic' or the --data directory. */
  kind: string;
  train: Volume[];
  test: Volume[];
  /** Stable description for the fingerprint. */
  describe: string;
}

export interface ConfigResult {
  id: string;
  fingerprint: string;
  net: NetName;
  loss: LossKey;
  /** Training seed: initial weights and patch sequence (the data comes from the study's --seed). */
  seed: number;
  /** The options the loss trained with (lossOptions). */
  lossOptions: Record<string, unknown>;
  lr: number;
  patch: PatchKey;
  /** Patch side(s) actually used and the batch size. */
  patchSize: number[];
  batch: number;
  iterations: number;
  lastK: number;
  backend: string;
  /** Per iteration: loss (null when not finite) and hard DSC of the training batch. */
  lossCurve: (number | null)[];
  dscCurve: number[];
  /** DSC over the last K iterations. */
  dscMedian: number;
  dscQ1: number;
  dscQ3: number;
  dscIQR: number;
  /** Done training (stats.ts convergence: slopes of DSC and loss over the last 2K iterations)? */
  converged: boolean;
  /** Fitted DSC change, and loss change relative to its start, over the last 2K iterations. */
  dscChange: number;
  lossChange: number;
  /** Foreground share of the training patches: median, min, max. */
  imbalanceMedian: number;
  imbalanceMin: number;
  imbalanceMax: number;
  /** Held-out volumes: DSC per volume, their median, and the pooled DSC. */
  testDsc: number[];
  testDscMedian: number;
  testDscPooled: number;
  seconds: number;
}

export interface StudyOptions {
  preset: Preset;
  data: Record<NetName, DataSet>;
  out: string;
  seed: number;
  loaded: LoadedTf;
  /** Where progress goes (stderr by default). */
  stream?: NodeJS.WriteStream;
  /** The code version for the fingerprint (default codeVersion(); tests change it). */
  version?: CodeVersion;
}

export function lrLabel(lr: number): string {
  const e = Math.log10(lr);
  return Number.isInteger(Math.round(e * 1e9) / 1e9) ? `1e${Math.round(e)}` : String(lr);
}

export {quantile} from './stats';

export function configId(net: NetName, loss: LossKey, lr: number, patch: PatchKey, seed: number): string {
  return `${net}__${loss}__lr${lrLabel(lr)}__${patch}__seed${seed}`;
}

/**
 * The training seeds of a study: `--seed`, `--seed + 1`, ... one per
 * replicate. Each draws its own initial weights and patch sequence; the
 * data (from `--seed`) is the same for all, so the held-out volumes are too.
 */
export function trainingSeeds(seed: number, seeds: number): number[] {
  return Array.from({length: seeds}, (_, r) => seed + r);
}

/** The patch side per axis for a data set: the preset's side, clamped to the smallest volume, a multiple of 4. */
export function patchSize(side: number, data: DataSet, nd: number): number[] {
  const all = [...data.train, ...data.test];
  return Array.from({length: nd}, (_, j) => {
    const minSide = Math.min(...all.map((v) => v.dims[v.dims.length - nd + j]));
    const s = Math.min(side, Math.floor(minSide / SIDE_MULTIPLE) * SIDE_MULTIPLE);
    if (s < SIDE_MULTIPLE) throw new RangeError(`Expected volumes of at least ${SIDE_MULTIPLE} voxels per side but received ${minSide}`);
    return s;
  });
}

/**
 * segloss/tfjs, loaded when training starts (after loadTf found a
 * tensorflow.js): it needs @tensorflow/tfjs-core, which `segloss study
 * --help` and the argument checks do not.
 */
function seglossTfjs(): typeof SeglossTfjs {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require('../lib/tfjs') as typeof SeglossTfjs;
}

/**
 * The options each loss trains with: one logit channel per voxel, so every
 * loss fuses the sigmoid (the paper's two-class setting); SS and WCE as the
 * preset chooses (presets.ts: SsForm, WceWeights); the package defaults
 * otherwise (docs/losses.md). Part of the fingerprint.
 */
export function lossOptions(key: LossKey, p: Pick<Preset, 'ss' | 'wceWeights'>): Record<string, unknown> {
  switch (key) {
    case 'WCE': return {activation: 'sigmoid', classWeights: p.wceWeights === 'paper' ? 'paper' : 'inverse-frequency'};
    case 'DL2': return {activation: 'sigmoid'};
    case 'SS': return p.ss === 'niftynet' ? {activation: 'sigmoid', includeBackground: true, classReduction: 'sum'}
                                          : {activation: 'sigmoid', lambda: 0.05};
    case 'GDLv': return {activation: 'sigmoid'};
  }
}

function lossFn(key: LossKey, p: Preset) {
  const seglossLosses = seglossTfjs().losses;
  const options = lossOptions(key, p);
  switch (key) {
    case 'WCE': return seglossLosses.weightedCrossEntropy(options);
    case 'DL2': return seglossLosses.dice(options);
    case 'SS': return seglossLosses.sensitivitySpecificity(options);
    case 'GDLv': return seglossLosses.generalizedDice(options);
  }
}

/** 2D slices (along the first axis) of 3D volumes for the 2D network; 2D volumes pass through. */
export function as2d(vols: Volume[]): Volume[] {
  const out: Volume[] = [];
  for (const v of vols) {
    if (v.dims.length === 2) {
      out.push(v);
      continue;
    }
    const [d, h, w] = v.dims;
    const n = h * w;
    for (let z = 0; z < d; z++) {
      const label = v.label.slice(z * n, (z + 1) * n);
      let fg = 0;
      for (let i = 0; i < n; i++) fg += label[i];
      out.push({dims: [h, w], channels: v.channels, image: v.image.slice(z * n * v.channels, (z + 1) * n * v.channels),
                label, foreground: fg, source: `${v.source} slice ${z}`});
    }
  }
  return out;
}

/** Largest `--seed` for which volumeSeed stays one-to-one within 32 bits. */
export const MAX_SEED = 8191;
/** Volumes per split a synthetic data set may hold (the low 16 bits of a volume's seed). */
const MAX_VOLUMES = 65536;

/**
 * The generator seed of synthetic volume `index` of a split. One-to-one in
 * (seed, dims, split, index), so a held-out volume never shares a seed, and
 * hence its image, with a training volume, whatever the counts: the split is
 * a bit of its own, not an offset the training count can run into (the old
 * `+ 50` did in the full preset, 64 training images).
 */
export function volumeSeed(seed: number, nd: 2 | 3, split: 'train' | 'test', index: number): number {
  if (!(Number.isInteger(seed) && seed >= 0 && seed <= MAX_SEED)) fail(`an integer in [0, ${MAX_SEED}]`, 'seed', seed);
  if (!(Number.isInteger(index) && index >= 0 && index < MAX_VOLUMES)) fail(`an integer in [0, ${MAX_VOLUMES})`, 'index', index);
  return ((seed * 4 + nd) * 2 + (split === 'test' ? 1 : 0)) * MAX_VOLUMES + index;
}

function fail(what: string, arg: string, value: unknown): never {
  throw new RangeError(`Expected ${what} for ${arg} but received ${JSON.stringify(value)}`);
}

/** Synthetic training and held-out volumes for one network, seeded. */
export function syntheticData(preset: Preset, net: NetName, seed: number): DataSet {
  const s = preset.setups[net];
  const nd = NET_DIMS[net];
  const rand = mulberry32(seed ^ 0x5eed);
  const make = (n: number, split: 'train' | 'test') => Array.from({length: n}, (_, i) => {
    const [lo, hi] = s.volumeFraction;
    const f = Math.exp(Math.log(lo) + rand() * (Math.log(hi) - Math.log(lo)));
    return synthVolume({dims: s.volumeDims, foregroundFraction: f, seed: volumeSeed(seed, nd, split, i),
                        lesionVoxels: s.lesionVoxels});
  });
  const train = make(s.trainVolumes, 'train');
  const test = make(s.testVolumes, 'test');
  return {kind: 'synthetic', train, test,
          describe: `synthetic ${s.volumeDims.join('x')} train ${s.trainVolumes} test ${s.testVolumes} ` +
                    `fraction ${s.volumeFraction.join('-')} lesions ${s.lesionVoxels?.join('-') ?? 'mixed'} ` +
                    `seed ${seed} volume seeds v2`};
}

/** Zero-pads (the z-scored mean) a channels-last image to sides that are multiples of m. */
function padImage(v: Volume, m: number): {image: Float32Array; dims: number[]} {
  const dims = v.dims.map((s) => Math.ceil(s / m) * m);
  if (dims.every((s, j) => s === v.dims[j])) return {image: v.image, dims};
  const C = v.channels;
  const image = new Float32Array(product(dims) * C);
  const inner = v.dims[v.dims.length - 1] * C;
  const rows = product(v.dims.slice(0, -1));
  for (let r = 0; r < rows; r++) {
    // row r of the source in padded coordinates
    let rem = r;
    let dst = 0;
    const idx: number[] = [];
    for (let j = v.dims.length - 2; j >= 0; j--) {
      idx[j] = rem % v.dims[j];
      rem = Math.floor(rem / v.dims[j]);
    }
    for (let j = 0; j < v.dims.length - 1; j++) dst = dst * dims[j] + idx[j];
    image.set(v.image.subarray(r * inner, (r + 1) * inner), dst * dims[dims.length - 1] * C);
  }
  return {image, dims};
}

/** Hard segmentation (logit > 0) of a whole volume, cropped back to its sides. */
async function segment(tf: Tf, model: TfNamespace.LayersModel, v: Volume): Promise<Uint8Array> {
  const {image, dims} = padImage(v, SIDE_MULTIPLE);
  const logits = tf.tidy(() => model.predict(tf.tensor(image, [1, ...dims, v.channels])) as TfNamespace.Tensor);
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  const out = new Uint8Array(product(v.dims));
  const nd = v.dims.length;
  const idx = new Array<number>(nd).fill(0);
  for (let i = 0; i < out.length; i++) {
    let rem = i;
    for (let j = nd - 1; j >= 0; j--) {
      idx[j] = rem % v.dims[j];
      rem = Math.floor(rem / v.dims[j]);
    }
    let p = 0;
    for (let j = 0; j < nd; j++) p = p * dims[j] + idx[j];
    out[i] = data[p] > 0 ? 1 : 0;
  }
  return out;
}

/** DSC = 2|P and G| / (|P| + |G|), 1 when both are empty; also the raw counts for pooling. */
export function dsc(pred: Uint8Array, label: Uint8Array): {dsc: number; inter: number; total: number} {
  let inter = 0, total = 0;
  for (let i = 0; i < pred.length; i++) {
    inter += pred[i] & label[i];
    total += pred[i] + label[i];
  }
  return {dsc: total === 0 ? 1 : (2 * inter) / total, inter, total};
}

/** What code produced a result: the package version and a hash of the study and lib sources that ran. */
export interface CodeVersion {
  package: string;
  code: string;
}

let cachedVersion: CodeVersion | undefined;

/** Every file under `dir` (recursively) whose name ends in `ext`, as sorted paths. */
function sourceFiles(dir: string, ext: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, {withFileTypes: true})) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p, ext));
    else if (e.name.endsWith(ext) && !e.name.endsWith(`.d${ext}`)) out.push(p);
  }
  return out.sort();
}

/**
 * The running code's version, for the resume fingerprint: segloss's
 * package.json version, and a sha256 over the study and lib sources next to
 * this file (.ts under ts-node / jest, .js in dist), so an edit to a loss, a
 * net or the sampler does not resume results computed by the old code. The
 * native addon is covered by the package version only.
 */
export function codeVersion(): CodeVersion {
  if (cachedVersion) return cachedVersion;
  let dir = __dirname;
  let pkg = 'unknown';
  for (let up = 0; up < 4; up++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as {name?: string; version?: string};
    if (json.name === 'segloss') {
      pkg = json.version ?? 'unknown';
      break;
    }
  }
  const ext = path.extname(__filename);
  const hash = crypto.createHash('sha256');
  for (const f of [...sourceFiles(__dirname, ext), ...sourceFiles(path.join(__dirname, '..', 'lib'), ext)]) {
    hash.update(path.relative(path.join(__dirname, '..'), f)).update('\0').update(fs.readFileSync(f)).update('\0');
  }
  cachedVersion = {package: pkg, code: hash.digest('hex').slice(0, 16)};
  return cachedVersion;
}

/**
 * The resume key of one configuration: everything that determines its
 * numbers (setup, data, seed, the loss and its options, learning rate,
 * patch), the code version and the tensorflow.js backend (TensorFlow and
 * the pure-JS kernels do not round alike).
 */
function fingerprint(o: StudyOptions, net: NetName, extra: object): string {
  const s = o.preset.setups[net];
  const v = o.version ?? codeVersion();
  const text = JSON.stringify({version: 2, package: v.package, code: v.code, backend: o.loaded.backend, setup: s,
                               data: o.data[net].describe, seed: o.seed, ...extra});
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
}

interface Planned {
  id: string;
  net: NetName;
  seed: number;
  loss: LossKey;
  lr: number;
  patch: PatchKey;
  fingerprint: string;
}

export function plan(o: StudyOptions): Planned[] {
  const out: Planned[] = [];
  for (const net of o.preset.nets) {
    for (const patch of o.preset.patches) {
      for (const lr of o.preset.lrs) {
        for (const loss of o.preset.losses) {
          for (const seed of trainingSeeds(o.seed, o.preset.seeds)) {
            out.push({id: configId(net, loss, lr, patch, seed), net, seed, loss, lr, patch,
                      fingerprint: fingerprint(o, net, {loss, options: lossOptions(loss, o.preset), lr, patch,
                                                        trainSeed: seed})});
          }
        }
      }
    }
  }
  return out;
}

function readDone(file: string, fp: string): ConfigResult | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as ConfigResult;
    return r.fingerprint === fp ? r : undefined;
  } catch {
    return undefined;  // a torn or foreign file: run the configuration again
  }
}

/**
 * The training patches of one network and patch size, in order: a volume
 * (2D: a slice) with foreground drawn uniformly, then a patch of it that
 * holds at least one foreground voxel (samplePatch). Seeded; the same
 * sequence for every loss and learning rate.
 */
export function patchSampler(data: DataSet, nd: 2 | 3, size: number[], seed: number): {next: () => Patch; channels: number} {
  const train = nd === 2 ? as2d(data.train) : data.train;
  const usable = train.filter((v) => v.foreground > 0);
  if (usable.length === 0) throw new RangeError(`Expected training volumes with foreground for ${nd}D training but received none`);
  const fgIdx = usable.map((v) => foregroundIndex(v.label));
  const rand = mulberry32(seed);
  return {channels: usable[0].channels, next: () => {
    const k = Math.floor(rand() * usable.length);
    return samplePatch(usable[k], fgIdx[k], size, rand);
  }};
}

/** The median foreground share of `draws` training patches of a patch size: what the tables call its imbalance. */
export function medianShare(data: DataSet, net: NetName, side: number, draws: number, seed: number): number {
  const nd = NET_DIMS[net];
  const size = patchSize(side, data, nd);
  const draw = patchSampler(data, nd, size, seed);
  const P = product(size);
  const shares = Array.from({length: draws}, () => draw.next().foreground / P).sort((a, b) => a - b);
  return quantile(shares, 0.5);
}

/** Runs one configuration. `onStep` is called after every iteration. */
export async function runConfig(o: StudyOptions, p: Planned, onStep: (it: number, dsc: number) => void): Promise<ConfigResult> {
  const {tf} = o.loaded;
  const t0 = Date.now();
  const setup = o.preset.setups[p.net];
  const nd = NET_DIMS[p.net];
  const data = o.data[p.net];
  const size = patchSize(setup.patch[p.patch], data, nd);
  const batch = setup.batch[p.patch];
  // the same initial weights and the same patch sequence for every loss and learning rate
  const draw = patchSampler(data, nd, size, p.seed * 131 + nd * 17 + p.patch.charCodeAt(0));
  const channels = draw.channels;
  const model = buildNet(tf, p.net, {channels, width: setup.width, blocks: setup.blocks, constantWidth: setup.constantWidth,
                                     seed: p.seed * 7 + nd});
  const optimizer = tf.train.adam(p.lr);
  model.compile({optimizer, loss: lossFn(p.loss, o.preset), metrics: [seglossTfjs().metrics.dice({activation: 'sigmoid'})]});
  const P = product(size);
  const lossCurve: (number | null)[] = [];
  const dscCurve: number[] = [];
  const fractions: number[] = [];
  for (let it = 0; it < setup.iterations; it++) {
    const x = new Float32Array(batch * P * channels);
    const y = new Float32Array(batch * P);
    for (let b = 0; b < batch; b++) {
      const patch = draw.next();
      x.set(patch.image, b * P * channels);
      for (let i = 0; i < P; i++) y[b * P + i] = patch.label[i];
      fractions.push(patch.foreground / P);
    }
    const xs = tf.tensor(x, [batch, ...size, channels]);
    const ys = tf.tensor(y, [batch, ...size, 1]);
    const [lossValue, dscValue] = (await model.trainOnBatch(xs, ys)) as number[];
    tf.dispose([xs, ys]);
    lossCurve.push(Number.isFinite(lossValue) ? lossValue : null);
    dscCurve.push(Number.isFinite(dscValue) ? dscValue : 0);
    onStep(it + 1, dscValue);
  }
  const testDsc: number[] = [];
  let inter = 0, total = 0;
  for (const v of data.test) {
    // a 3D held-out volume seen by the 2D network: segmented slice by slice, scored as one volume
    let pred: Uint8Array;
    if (nd === 2 && v.dims.length === 3) {
      pred = new Uint8Array(v.label.length);
      let o = 0;
      for (const slice of as2d([v])) {
        pred.set(await segment(tf, model, slice), o);
        o += slice.label.length;
      }
    } else {
      pred = await segment(tf, model, v);
    }
    const d = dsc(pred, v.label);
    testDsc.push(d.dsc);
    inter += d.inter;
    total += d.total;
  }
  model.dispose();
  optimizer.dispose();
  const last = dscCurve.slice(-setup.lastK).sort((a, b) => a - b);
  const sortedF = fractions.slice().sort((a, b) => a - b);
  const q1 = quantile(last, 0.25);
  const q3 = quantile(last, 0.75);
  const conv = convergence(dscCurve, lossCurve, setup.lastK);
  return {
    id: p.id, fingerprint: p.fingerprint, net: p.net, loss: p.loss, seed: p.seed, lossOptions: lossOptions(p.loss, o.preset),
    lr: p.lr, patch: p.patch, patchSize: size, batch,
    iterations: setup.iterations, lastK: setup.lastK, backend: o.loaded.backend,
    lossCurve, dscCurve,
    dscMedian: quantile(last, 0.5), dscQ1: q1, dscQ3: q3, dscIQR: q3 - q1,
    converged: conv.converged, dscChange: conv.dscChange, lossChange: conv.lossChange,
    imbalanceMedian: quantile(sortedF, 0.5), imbalanceMin: sortedF[0], imbalanceMax: sortedF[sortedF.length - 1],
    testDsc, testDscMedian: quantile(testDsc.slice().sort((a, b) => a - b), 0.5),
    testDscPooled: total === 0 ? 1 : (2 * inter) / total,
    seconds: (Date.now() - t0) / 1000,
  };
}

export interface StudyRun {
  results: ConfigResult[];
  ran: string[];
  skipped: string[];
}

/** Runs every planned configuration not already in `<out>/configs`, saving each as it finishes. */
export async function runStudy(o: StudyOptions): Promise<StudyRun> {
  const dir = path.join(o.out, 'configs');
  fs.mkdirSync(dir, {recursive: true});
  const planned = plan(o);
  const results: ConfigResult[] = [];
  const ran: string[] = [];
  const skipped: string[] = [];
  const todo: Planned[] = [];
  const done = new Map<string, ConfigResult>();
  for (const p of planned) {
    const r = readDone(path.join(dir, `${p.id}.json`), p.fingerprint);
    if (r) done.set(p.id, r);
    else todo.push(p);
  }
  // ETA in units of work: an iteration costs about its batch's voxels plus a fixed overhead
  // (measured with tfjs-node: ~20 ms per step whatever the size, up to ~50 ms at 24^3)
  const cost = (p: Planned) => {
    const setup = o.preset.setups[p.net];
    const nd = NET_DIMS[p.net];
    return setup.batch[p.patch] * product(patchSize(setup.patch[p.patch], o.data[p.net], nd)) + 8000;
  };
  const progress = new Progress(o.stream ?? process.stderr, todo.reduce((s, p) => s + cost(p) * o.preset.setups[p.net].iterations, 0),
                                planned.length, done.size);
  if (done.size > 0) progress.note(`resuming: ${done.size} of ${planned.length} configurations already in ${dir}`);
  for (const p of planned) {
    const prior = done.get(p.id);
    if (prior) {
      results.push(prior);
      skipped.push(p.id);
      continue;
    }
    progress.start(p.id);
    const c = cost(p);
    const r = await runConfig(o, p, (it, d) => progress.step(it, d, c));
    const file = path.join(dir, `${p.id}.json`);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(r));
    fs.renameSync(`${file}.tmp`, file);  // never a half-written result for the resume to trust
    progress.finish(`${p.id}: train DSC ${r.dscMedian.toFixed(3)} (${r.dscIQR.toFixed(3)})` +
                    `${r.converged ? '' : ' not converged'}, ` +
                    `held-out ${r.testDscMedian.toFixed(3)}, ${r.seconds.toFixed(1)} s`);
    results.push(r);
    ran.push(p.id);
  }
  progress.end();
  return {results, ran, skipped};
}
