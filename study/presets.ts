/**
 * Study presets. Patch sizes S / M / L and batch sizes 5 / 3 / 1 follow the
 * paper's Table 1 design (larger patches, smaller batches, more imbalance);
 * the sides are scaled down so the quick preset fits 10 minutes on 2 CPU
 * cores. Sides are multiples of 4 (two UNet pools, dilation 4).
 */
import type {NetName} from './nets';

export type LossKey = 'WCE' | 'DL2' | 'SS' | 'GDLv';
export const LOSS_KEYS: LossKey[] = ['WCE', 'DL2', 'SS', 'GDLv'];
export type PatchKey = 'S' | 'M' | 'L';
export const PATCH_KEYS: PatchKey[] = ['S', 'M', 'L'];
export type PresetName = 'tiny' | 'quick' | 'full';

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
export const PRESET_NAMES: PresetName[] = ['tiny', 'quick', 'full'];

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
}

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

const QUICK_SETUPS: Record<NetName, NetSetup> = {
  unet2d: {volumeDims: [64, 64], patch: {S: 16, M: 32, L: 64}, batch: {S: 5, M: 3, L: 1}, width: 8,
           iterations: 250, lastK: 50, trainVolumes: 24, testVolumes: 20, volumeFraction: [0.002, 0.03]},
  highresnet3d: {volumeDims: [24, 24, 24], patch: {S: 8, M: 12, L: 24}, batch: {S: 5, M: 3, L: 1}, width: 8,
                 iterations: 150, lastK: 50, trainVolumes: 16, testVolumes: 20, volumeFraction: [0.0005, 0.01]},
};

export const PRESETS: Record<PresetName, Preset> = {
  tiny: {
    name: 'tiny', changes: [], ss: 'niftynet', wceWeights: 'reference', seeds: 1,
    nets: ['unet2d', 'highresnet3d'], losses: [...LOSS_KEYS], lrs: [1e-3], patches: ['S', 'L'],
    setups: {
      unet2d: {volumeDims: [32, 32], patch: {S: 8, M: 16, L: 32}, batch: {S: 2, M: 2, L: 1}, width: 4,
               iterations: 6, lastK: 3, trainVolumes: 4, testVolumes: 2, volumeFraction: [0.005, 0.03]},
      highresnet3d: {volumeDims: [16, 16, 16], patch: {S: 8, M: 12, L: 16}, batch: {S: 2, M: 1, L: 1}, width: 4,
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
    nets: ['unet2d', 'highresnet3d'], losses: [...LOSS_KEYS], lrs: [1e-3, 1e-4, 1e-5],
    patches: [...PATCH_KEYS],
    setups: {
      unet2d: {volumeDims: [96, 96], patch: {S: 24, M: 48, L: 96}, batch: {S: 5, M: 3, L: 1}, width: 16,
               iterations: 1000, lastK: 200, trainVolumes: 64, testVolumes: 20, volumeFraction: [0.001, 0.03]},
      highresnet3d: {volumeDims: [48, 48, 48], patch: {S: 12, M: 24, L: 48}, batch: {S: 5, M: 3, L: 1}, width: 16,
                     iterations: 3000, lastK: 200, trainVolumes: 32, testVolumes: 20, volumeFraction: [0.0002, 0.01]},
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
