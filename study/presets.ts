/**
 * Study presets. Patch sizes S / M / L with batch sizes 5 / 3 / 1 follow the
 * paper's Table 1 design (larger patches, smaller batches, more imbalance);
 * the image and patch sides and lesion sizes are chosen so each network's
 * patches hold about Table 1's foreground shares (TABLE1_SHARE), at sizes
 * the quick preset trains within 10 minutes on 2 CPU cores. Sides are
 * multiples of 4 (two UNet pools, dilation 4, DeepMedic's pooling by 2).
 * Also here: the loss settings the study can train with (SsForm,
 * WceWeights) and the words that name them in tables and summaries.
 */
import type {NetName} from './nets';

export type LossKey = 'WCE' | 'DL2' | 'SS' | 'GDLv';
export const LOSS_KEYS: LossKey[] = ['WCE', 'DL2', 'SS', 'GDLv'];
export type PatchKey = 'S' | 'M' | 'L';
export const PATCH_KEYS: PatchKey[] = ['S', 'M', 'L'];
export type PresetName = 'tiny' | 'quick' | 'full' | 'paper';

/**
 * Which sensitivity-specificity the SS column trains with (docs/losses.md):
 * - 'niftynet': as NiftyNet computes it, the paper's code: summed over both
 *   classes, background included (includeBackground: true, classReduction:
 *   'sum'). With two classes the lambda terms of the two classes add up to
 *   sensitivity + specificity with equal weight, so lambda drops out.
 * - 'printed': the formula as the paper prints it, foreground only,
 *   lambda = 0.05 on sensitivity and 0.95 on specificity.
 */
export type SsForm = 'niftynet' | 'printed';
export const SS_FORMS: SsForm[] = ['niftynet', 'printed'];
/**
 * WCE's foreground weight (N - G) / G, from:
 * - 'reference': the reference (label) counts of the batch (the loss
 *   library's 'inverse-frequency'),
 * - 'paper': the predictions' soft counts, as the paper prints it ('paper').
 */
export type WceWeights = 'reference' | 'paper';
export const WCE_WEIGHTS: WceWeights[] = ['reference', 'paper'];
export const PRESET_NAMES: PresetName[] = ['tiny', 'quick', 'full', 'paper'];

export interface NetSetup {
  /** Synthetic volume sides (2 entries for the 2D net, 3 for the 3D net). */
  volumeDims: number[];
  /** Patch side per size (applied to every axis, clamped to the volume). */
  patch: Record<PatchKey, number>;
  batch: Record<PatchKey, number>;
  /** Feature width of the first level. */
  width: number;
  /** Training iterations per configuration (the paper: 1000 in 2D, 3000 in 3D). */
  iterations: number;
  /** DSC statistics over the last K iterations (the paper: 200). */
  lastK: number;
  /** Synthetic volumes: training / held-out counts. */
  trainVolumes: number;
  testVolumes: number;
  /** Whole-volume foreground share, drawn log-uniformly per volume. */
  volumeFraction: [number, number];
  /** Lesion sizes in voxels (synth.ts); unset: a few lesions of mixed size. */
  lesionVoxels?: [number, number];
  /** HighResNet: residual blocks per dilation stage (the published net: 3), and whether the width stays the same
   *  at every stage instead of doubling (the published net: 16 / 32 / 64). */
  blocks?: number;
  constantWidth?: boolean;
}

/**
 * The paper's Table 1: the median foreground share of each network's
 * training patches at patch sizes S / M / L. The quick and full presets
 * choose image sides, patch sides and lesion sizes so the study's patches
 * land near these shares; the tables print both.
 */
export const TABLE1_SHARE: Record<NetName, Record<PatchKey, number>> = {
  unet2d: {S: 0.52, M: 0.33, L: 0.15},
  twopath2d: {S: 0.29, M: 0.25, L: 0.16},
  highresnet3d: {S: 0.02, M: 0.01, L: 0.003},
  deepmedic3d: {S: 0.20, M: 0.01, L: 0.002},
};

export interface Preset {
  /** The preset the run started from. */
  name: PresetName;
  /** Command-line options that changed it, as given ('--iterations 1000'); empty for the preset as defined. */
  changes: string[];
  /** SS as NiftyNet computes it, or as the paper prints it. */
  ss: SsForm;
  /** Where WCE's class weights come from. */
  wceWeights: WceWeights;
  /** Training replicates per configuration (seeds --seed, --seed + 1, ...); tables show the median over them. */
  seeds: number;
  nets: NetName[];
  losses: LossKey[];
  lrs: number[];
  patches: PatchKey[];
  setups: Record<NetName, NetSetup>;
}

/**
 * Imbalance by design, measured with the study's own sampler (run.ts
 * medianShare; a test keeps it so). 2D: one large tumour-like lesion of
 * 650 - 900 pixels in an 80^2 image (10 - 14% of it, as in a BRATS slice);
 * UNet patches 8 / 12 / 56 give about 53 - 58 / 33 - 36 / 13 - 15%
 * foreground over data seeds 1 - 3 (Table 1: 52 / 33 / 15%), TwoPathCNN
 * patches 12 / 16 / 56 on the same images 33 - 36 / 25 - 27 / 13 - 15%
 * (29 / 25 / 16%). 3D: one to three small lesions of 30 - 80 voxels in a
 * 32^3 volume (0.2 - 0.4% of it); HighResNet patches 8 / 12 / 24 give about
 * 2.2 - 2.5 / 0.75 - 1.0 / 0.30 - 0.45% (2 / 1 / 0.3%); DeepMedic, with
 * fewer lesions (0.15 - 0.3%) and patches 4 / 12 / 28, 17 - 19 / 0.9 - 1.1 /
 * 0.21 - 0.27% (20 / 1 / 0.2%). Every image is larger than its L patch,
 * so the L patch is a window, not the whole image. Sides are multiples of 4.
 */
const DESIGN_UNET = {volumeDims: [80, 80], patch: {S: 8, M: 12, L: 56}, batch: {S: 5, M: 3, L: 1},
                     volumeFraction: [0.1, 0.14] as [number, number], lesionVoxels: [650, 900] as [number, number]};
const DESIGN_TWOPATH = {...DESIGN_UNET, patch: {S: 12, M: 16, L: 56}};
const DESIGN_HIGHRESNET = {volumeDims: [32, 32, 32], patch: {S: 8, M: 12, L: 24}, batch: {S: 5, M: 3, L: 1},
                           volumeFraction: [0.002, 0.004] as [number, number], lesionVoxels: [30, 80] as [number, number]};
const DESIGN_DEEPMEDIC = {...DESIGN_HIGHRESNET, patch: {S: 4, M: 12, L: 28},
                          volumeFraction: [0.0015, 0.003] as [number, number]};

const QUICK_SETUPS: Record<NetName, NetSetup> = {
  unet2d: {...DESIGN_UNET, width: 8, iterations: 250, lastK: 50, trainVolumes: 24, testVolumes: 20},
  twopath2d: {...DESIGN_TWOPATH, width: 8, iterations: 250, lastK: 50, trainVolumes: 24, testVolumes: 20},
  // 1 block per stage at width 8 throughout: about 50 ms an iteration here, where the published layout (3 blocks,
  // doubling widths) at width 8 took about 4 times that and would take the quick preset past 10 minutes
  highresnet3d: {...DESIGN_HIGHRESNET, width: 8, blocks: 1, constantWidth: true, iterations: 150, lastK: 50,
                 trainVolumes: 16, testVolumes: 20},
  deepmedic3d: {...DESIGN_DEEPMEDIC, width: 8, iterations: 150, lastK: 50, trainVolumes: 16, testVolumes: 20},
};

export const PRESETS: Record<PresetName, Preset> = {
  tiny: {
    name: 'tiny', changes: [], ss: 'niftynet', wceWeights: 'reference', seeds: 1,
    nets: ['unet2d', 'highresnet3d'], losses: [...LOSS_KEYS], lrs: [1e-3], patches: ['S', 'L'],
    setups: {
      unet2d: {volumeDims: [32, 32], patch: {S: 8, M: 16, L: 32}, batch: {S: 2, M: 2, L: 1}, width: 4,
               iterations: 6, lastK: 3, trainVolumes: 4, testVolumes: 2, volumeFraction: [0.005, 0.03]},
      twopath2d: {volumeDims: [32, 32], patch: {S: 8, M: 16, L: 32}, batch: {S: 2, M: 2, L: 1}, width: 4,
                  iterations: 6, lastK: 3, trainVolumes: 4, testVolumes: 2, volumeFraction: [0.005, 0.03]},
      deepmedic3d: {volumeDims: [16, 16, 16], patch: {S: 4, M: 8, L: 16}, batch: {S: 2, M: 1, L: 1}, width: 4,
                    iterations: 6, lastK: 3, trainVolumes: 3, testVolumes: 2, volumeFraction: [0.002, 0.02]},
      highresnet3d: {volumeDims: [16, 16, 16], patch: {S: 8, M: 12, L: 16}, batch: {S: 2, M: 1, L: 1}, width: 4,
                     blocks: 1, constantWidth: true,
                     iterations: 6, lastK: 3, trainVolumes: 3, testVolumes: 2, volumeFraction: [0.002, 0.02]},
    },
  },
  quick: {
    name: 'quick', changes: [], ss: 'niftynet', wceWeights: 'reference', seeds: 1,
    nets: ['unet2d', 'highresnet3d'], losses: [...LOSS_KEYS], lrs: [1e-3, 1e-4, 1e-5],
    patches: [...PATCH_KEYS], setups: QUICK_SETUPS,
  },
  full: {
    name: 'full', changes: [], ss: 'niftynet', wceWeights: 'reference', seeds: 1,
    nets: ['unet2d', 'twopath2d', 'highresnet3d', 'deepmedic3d'], losses: [...LOSS_KEYS], lrs: [1e-3, 1e-4, 1e-5],
    patches: [...PATCH_KEYS],
    setups: {
      unet2d: {...DESIGN_UNET, width: 16, iterations: 1000, lastK: 200, trainVolumes: 64, testVolumes: 20},
      twopath2d: {...DESIGN_TWOPATH, width: 16, iterations: 1000, lastK: 200, trainVolumes: 64, testVolumes: 20},
      // the published layout: 3 blocks per stage, widths 16 / 32 / 64
      highresnet3d: {...DESIGN_HIGHRESNET, width: 16, blocks: 3, iterations: 3000, lastK: 200, trainVolumes: 32,
                     testVolumes: 20},
      deepmedic3d: {...DESIGN_DEEPMEDIC, width: 16, iterations: 3000, lastK: 200, trainVolumes: 32, testVolumes: 20},
    },
  },
  // The paper's protocol at the widths this machine trains: its iteration counts (1000 in 2D, 3000 in 3D) and its
  // last-200 window, all four networks at quick's widths, layouts and data, three seeds. From the per-iteration times
  // of quick's configurations (2 cores, tfjs-node): UNet about 0.5 h, TwoPathCNN 2 h, HighResNet 4 h, DeepMedic 3 h.
  paper: {
    name: 'paper', changes: [], ss: 'niftynet', wceWeights: 'reference', seeds: 3,
    nets: ['unet2d', 'twopath2d', 'highresnet3d', 'deepmedic3d'], losses: [...LOSS_KEYS], lrs: [1e-3, 1e-4, 1e-5],
    patches: [...PATCH_KEYS],
    setups: {
      unet2d: {...QUICK_SETUPS.unet2d, iterations: 1000, lastK: 200},
      twopath2d: {...QUICK_SETUPS.twopath2d, iterations: 1000, lastK: 200},
      highresnet3d: {...QUICK_SETUPS.highresnet3d, iterations: 3000, lastK: 200},
      deepmedic3d: {...QUICK_SETUPS.deepmedic3d, iterations: 3000, lastK: 200},
    },
  },
};

/**
 * What ran, in words: `'quick'`, or `'quick' with --nets unet2d --iterations
 * 1000` when options changed it (a summary that says only 'quick' would
 * claim the preset's iteration counts and grid).
 */
export function presetLabel(p: Preset): string {
  return p.changes.length === 0 ? `'${p.name}'` : `'${p.name}' with ${p.changes.join(' ')}`;
}

/** A loss's column name with its setting where it has one: 'WCE (reference weights)', 'SS (NiftyNet)'. */
export function lossLabel(loss: LossKey, p: Pick<Preset, 'ss' | 'wceWeights'>): string {
  if (loss === 'WCE') return `WCE (${p.wceWeights} weights)`;
  if (loss === 'SS') return p.ss === 'niftynet' ? 'SS (NiftyNet)' : 'SS (printed, λ 0.05)';
  return loss;
}

/** One sentence on the SS and WCE settings, for the summary. */
export function lossSettingsNote(p: Pick<Preset, 'ss' | 'wceWeights'>): string {
  const ss = p.ss === 'niftynet'
    ? 'SS as NiftyNet computes it (summed over foreground and background, so with two classes lambda drops out: ' +
      'sensitivity and specificity weigh the same; --ss niftynet)'
    : 'SS as the paper prints it (foreground only, lambda 0.05 on sensitivity, 0.95 on specificity; --ss printed)';
  const wce = p.wceWeights === 'reference'
    ? "WCE's foreground weight (N - G) / G from the reference labels of each batch (--wce-weights reference)"
    : "WCE's foreground weight (N - P) / P from the predictions, as the paper prints it (--wce-weights paper)";
  return `${ss}; ${wce}; DL2 and GDLv with the package defaults; every loss fuses the sigmoid of one logit channel`;
}
