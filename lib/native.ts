/**
 * The one typed `require()` of segloss.node. Everything else talks to the
 * addon through the interface below.
 */
import * as path from 'path';

/** The part of node-gyp-build (which has no types) used here. */
interface NodeGypBuild {
  /** The .node file that `require('node-gyp-build')(dir)` would load; throws when there is none. */
  resolve(dir: string): string;
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
const nodeGypBuild = require('node-gyp-build') as NodeGypBuild;

/**
 * The numbers of the native enums by the names JavaScript uses (the addon's
 * `enums`, from native/core/types.h): the one source of every enum number
 * lib/ sends.
 */
export interface NativeEnums {
  loss: Readonly<Record<'generalizedDice' | 'dice' | 'sensitivitySpecificity' | 'weightedCrossEntropy', number>>;
  activation: Readonly<Record<'none' | 'softmax' | 'sigmoid', number>>;
  reduction: Readonly<Record<'pooled' | 'mean' | 'sum' | 'none', number>>;
  /** uint8 / uint16 / int32 / float32 class indices, or dense floats. */
  targetKind: Readonly<Record<'uint8' | 'uint16' | 'int32' | 'float32' | 'dense', number>>;
  weighting: Readonly<Record<'square' | 'simple' | 'uniform', number>>;
  wceWeights: Readonly<Record<'inverse-frequency' | 'paper' | 'array', number>>;
  /** 'cuda-emulated': the CUDA kernels through the SIMT emulation (tests only). */
  device: Readonly<Record<'auto' | 'cpu' | 'cuda' | 'cuda-emulated', number>>;
}

/** What the addon says of one loss (native/core/loss_traits.h). */
export interface NativeLossTraits {
  /** Statistics per class, after the sample's kept-voxel count. */
  fields: number;
  /** Gradient coefficients per class. */
  coefficients: number;
  /** includeBackground's default. */
  includeBackground: boolean;
  /** The loss's own option names, beyond the common ones. */
  options: readonly string[];
}

export type NumberOptionName = 'smoothNumerator' | 'smoothDenominator' | 'denominatorFloor' | 'lambda' | 'epsilon';

/** A numeric option's default and range: finite, >= min (> min when minOpen), <= max. */
export interface NativeNumberOption {
  default: number;
  min: number;
  minOpen: boolean;
  max: number;
  /** What the error message says is expected. */
  expected: string;
}

/** The call spec lib/validate.ts builds: validated, defaulted, enums as integers (NativeEnums). */
export interface NativeSpec {
  loss: number;
  activation: number;
  reduction: number;
  includeBackground: boolean;
  device: number;
  C: number;
  ignoreIndex: number | null;
  weighting: number;
  smoothNumerator: number;
  smoothDenominator: number;
  denominatorFloor: number;
  squared: boolean;
  jaccard: boolean;
  classWeights: Float64Array | null;
  lambda: number;
  epsilon: number;
  classSum: boolean;
  wceWeights: number;
  // tensors (absent in a statistics-only spec)
  B?: number;
  V?: number;
  /** Typed arrays, or device addresses (BigInt) for computeOnDevice. */
  prediction?: Float32Array | bigint;
  target?: Uint8Array | Uint16Array | Int32Array | Float32Array | bigint;
  targetKind?: number;
  mask?: Uint8Array | bigint | null;
  // split phase
  samples?: number;
  first?: number;
  /** gradientFromStats: the tensors already passed a reduction pass's checks. */
  checked?: boolean;
}

export interface NativeLossResult {
  loss: number;
  losses: Float64Array;
}

export interface NativeBackend {
  name: string;
  compiled: boolean;
  available: boolean;
  reason?: string;
  /** The device it runs on (the GPU's name), when available. */
  device?: string;
  threads?: number;
  /**
   * CPU only: the instruction set the passes run on ('avx512', 'avx2' or
   * 'baseline'), chosen at load from what the CPU reports; SEGLOSS_ISA forces
   * a lower one. `isas` lists what this CPU and build can run, best first.
   */
  isa?: string;
  isas?: string[];
}

export interface NativeAddon {
  version: string;
  enums: NativeEnums;
  compute(spec: NativeSpec, gradient: Float32Array | null, gradScale: Float64Array, perSample: boolean,
    async: false): NativeLossResult;
  compute(spec: NativeSpec, gradient: Float32Array | null, gradScale: Float64Array, perSample: boolean,
    async: true): Promise<NativeLossResult>;
  stats(spec: NativeSpec, async: false): Float64Array;
  stats(spec: NativeSpec, async: true): Promise<Float64Array>;
  lossFromStats(spec: NativeSpec, stats: Float64Array): NativeLossResult;
  gradientFromStats(spec: NativeSpec, stats: Float64Array, gradient: Float32Array, gradScale: Float64Array,
    perSample: boolean, async: false): void;
  gradientFromStats(spec: NativeSpec, stats: Float64Array, gradient: Float32Array, gradScale: Float64Array,
    perSample: boolean, async: true): Promise<void>;
  backends(): NativeBackend[];
  setThreads(n: number): void;
  getThreads(): number;
  /** Test hooks (SEGLOSS_TEST_HOOKS): the emulated CUDA device, the copy probe. */
  testHooks: boolean;
  /** The benchmark's copy probe (a test hook): dst = src over the thread pool. */
  copy?(src: Float32Array, dst: Float32Array): void;
  /** Each loss's traits (native/core/loss_traits.h). */
  losses: Readonly<Record<'generalizedDice' | 'dice' | 'sensitivitySpecificity' | 'weightedCrossEntropy', NativeLossTraits>>;
  /** The numeric options' defaults and ranges (native/core/types.h). */
  numberOptions: Readonly<Record<NumberOptionName, NativeNumberOption>>;
  releaseDeviceMemory(): void;
  computeOnDevice(spec: NativeSpec, gradient: bigint | null, gradScale: Float64Array, perSample: boolean,
    async: false): NativeLossResult;
  computeOnDevice(spec: NativeSpec, gradient: bigint | null, gradScale: Float64Array, perSample: boolean,
    async: true): Promise<NativeLossResult>;
  deviceAlloc(device: number, bytes: number): bigint;
  deviceFree(device: number, pointer: bigint): void;
  deviceCopy(device: number, pointer: bigint, data: ArrayBufferView, toDevice: boolean): void;
  /** Registers segloss's TensorFlow ops in the TensorFlow tfjs-node loaded (once per process). */
  registerTensorflowOps(): {available: boolean; statsOp: string; gradientOp: string; reason?: string};
  /** A statistics job (stats null) or a gradient job for the ops; returns its id. */
  tensorflowJob(spec: NativeSpec, stats: Float64Array | null, gradScale: Float64Array, perSample: boolean): number;
  /**
   * Ends a job: null when no segloss kernel ran it; else its statistics (a
   * statistics job) or undefined, or the pass's error thrown.
   */
  endTensorflowJob(id: number): Float64Array | undefined | null;
}

/** The native enums' numbers by name (loading the addon first). */
export function enums(): NativeEnums {
  return native().enums;
}

/** The package root: lib/*.ts (tests) sit one level below it, dist/lib/*.js two. */
function packageRoot(): string {
  const up = path.join(__dirname, '..');
  return path.basename(up) === 'dist' ? path.join(up, '..') : up;
}

function load(): NativeAddon {
  // node-gyp-build picks the file: a local build (build/Release, then
  // build/Debug) wins over the shipped prebuild, prebuilds/<platform>-<arch>/
  // segloss.napi.glibc.node, whose tags (Node-API, glibc vs musl) it matches
  // against this process. SEGLOSS_PREBUILD=<dir> points it at another root.
  const root = packageRoot();
  let file: string | undefined;
  let why: string;
  try {
    file = nodeGypBuild.resolve(root);
    const addon = require(file) as NativeAddon;
    loadedFile = file;
    return addon;
  } catch (e) {
    why = (e as Error).message.trim().split('\n')[0];
  }
  const tried = [
    path.join(root, 'build', 'Release', '*.node'), path.join(root, 'build', 'Debug', '*.node'),
    path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, '*.node (tags napi, glibc or musl)')];
  throw new Error(
    `segloss: could not load the native addon for ${process.platform}-${process.arch} ` +
    `(Node ${process.versions.node}, Node-API ${process.versions.napi}).\n` +
    `Tried:\n  ${tried.join('\n  ')}\n` +
    `${file ? `Error loading ${file}:` : 'Error:'}\n  ${why}\n` +
    'The prebuilt addon is for linux-x64 with glibc; elsewhere, or where it does not load, build from source: ' +
    '`npm rebuild segloss --build-from-source` (Linux with cmake >= 3.18 and g++).');
}

let cached: NativeAddon | undefined;
let loadedFile: string | undefined;

/** The addon, loaded on first use. */
export function native(): NativeAddon {
  if (!cached) cached = load();
  return cached;
}

/** The path of the segloss.node file native() loaded (loading it first). */
export function addonFile(): string {
  native();
  return loadedFile!;
}
