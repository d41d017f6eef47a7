/**
 * Loss + gradient time of the four losses through the public API, one call =
 * one reduction pass and one gradient pass, with the gradient written in
 * place into a preallocated Float32Array (allocation stays outside the
 * timing). Inputs: bench/inputs.ts.
 *
 * Bytes moved per call (what the two passes must touch at the least; V voxels,
 * C channels):
 *   reduction pass: read the prediction  4 B x C per voxel
 *                   read the target      1 B per voxel (uint8 labels) or 4 B x C (dense float32)
 *   gradient pass:  read the target again (same size)
 *                   read the prediction again (4 B x C per voxel), unless the
 *                     gradient needs only the target and the statistics:
 *                     generalizedDice with activation 'none' is the one case
 *                     (dL/dp_nl depends on r_nl and per-class constants);
 *                     every other loss and every activation re-reads it
 *                   write the gradient   4 B x C per voxel
 * GB/s = bytes moved / median time; "% of bandwidth" compares that with the
 * copy probe of bench/bandwidth.ts (read + write, same threads) timed in the
 * same interleaved rounds as the row.
 */
import * as segloss from '../lib';
import type {Activation, LossName, LossResult} from '../lib/types';
import {CopyProbe} from './bandwidth';
import {measureInterleaved, Plan, Task, Timing} from './harness';
import {Volume} from './inputs';

export type TargetKind = 'uint8' | 'dense';

export interface RowSpec {
  loss: LossName;
  D: number;
  C: number;
  target: TargetKind;
  activation: Activation;
}

export interface Row extends RowSpec {
  shape: number[];
  voxels: number;
  /** The loss value of the last timed call (a sanity anchor between runs). */
  lossValue: number;
  timing: Timing;
  bytesMoved: number;
  /** bytesMoved / median time. */
  GBps: number;
  /** GBps / (copy probe GB/s timed in the same rounds) * 100. */
  pctOfBandwidth: number;
  /** The copy probe's median GB/s in this row's rounds. */
  copyGBps: number;
  /** Whether the gradient pass re-reads the prediction (see the header). */
  gradientReadsPrediction: boolean;
  /** The peer, timed in the same rounds; speedup = peer median / this row's median. */
  peer?: {name: string; timing: Timing; speedup: number};
}

export const BYTES_LEGEND =
  'MB moved = bytes the two passes must touch: reduction pass reads the prediction (4 B x C per voxel) + the target ' +
  '(1 B/voxel uint8, 4 B x C dense); gradient pass reads the target again, re-reads the prediction unless the ' +
  "gradient needs only the target (generalizedDice with activation 'none'; all other rows re-read it), and " +
  'writes the gradient (4 B x C). GB/s = MB moved / median time; % of bandwidth = GB/s / GB/s of the copy probe ' +
  '(read + write) timed in the same rounds.';

export function gradientReadsPrediction(loss: LossName, activation: Activation): boolean {
  return !(loss === 'generalizedDice' && activation === 'none');
}

/** See the file header. */
export function bytesMoved(s: RowSpec, voxels: number): number {
  const prediction = 4 * s.C * voxels;
  const target = s.target === 'uint8' ? voxels : 4 * s.C * voxels;
  const gradient = 4 * s.C * voxels;
  return prediction + target                                                  // reduction pass
    + target + (gradientReadsPrediction(s.loss, s.activation) ? prediction : 0) + gradient;  // gradient pass
}

type LossFn = (args: {prediction: Float32Array; shape: number[]; target: Uint8Array | Float32Array;
                      activation: Activation; gradient: Float32Array}) => LossResult;

/** A peer to time alongside one row (in the same rounds). */
export interface PeerTask extends Task {
  name: string;
  /** The row it stands beside. */
  row: RowSpec;
}

export interface VolumeResult {
  rows: Row[];
  copy: Timing;
  peer?: {name: string; row: RowSpec; timing: Timing};
}

const sameSpec = (a: RowSpec, b: RowSpec) =>
  a.loss === b.loss && a.D === b.D && a.C === b.C && a.target === b.target && a.activation === b.activation;

/**
 * Times the rows of one volume, the copy probe and the optional peer in
 * interleaved rounds (harness.ts, measureInterleaved), each segloss call
 * writing into `gradient`. `vol` must hold the logits / dense target the rows need.
 */
export function timeVolume(specs: RowSpec[], vol: Volume, gradient: Float32Array, probe: CopyProbe, plan: Plan,
                           peer?: PeerTask): VolumeResult {
  const values = specs.map(() => NaN);
  const tasks: Task[] = specs.map((s, i) => {
    const prediction = s.activation === 'none' ? vol.probs : vol.logits;
    const target = s.target === 'uint8' ? vol.labels : vol.dense;
    if (!prediction || !target || s.D !== vol.D || s.C !== vol.C) {
      throw new Error(`bench: volume ${vol.D}^3 x ${vol.C} lacks the inputs of ${JSON.stringify(s)}`);
    }
    const fn = segloss[s.loss] as LossFn;
    const args = {prediction, shape: vol.shape, target, activation: s.activation, gradient};
    return {run: () => { values[i] = fn(args).loss; }};
  });
  tasks.push({run: () => probe.run()});
  if (peer) tasks.push(peer);
  const timings = measureInterleaved(tasks, plan);
  probe.verify();
  const copy = timings[specs.length];
  const copyGBps = probe.GBps(copy.medianMs);
  const rows = specs.map((s, i): Row => {
    const timing = timings[i];
    const bytes = bytesMoved(s, vol.voxels);
    const GBps = bytes / (timing.medianMs / 1e3) / 1e9;
    const row: Row = {...s, shape: vol.shape, voxels: vol.voxels, lossValue: values[i], timing, bytesMoved: bytes, GBps,
                      pctOfBandwidth: (100 * GBps) / copyGBps, copyGBps,
                      gradientReadsPrediction: gradientReadsPrediction(s.loss, s.activation)};
    if (peer && sameSpec(peer.row, s)) {
      const pt = timings[specs.length + 1];
      row.peer = {name: peer.name, timing: pt, speedup: pt.medianMs / timing.medianMs};
    }
    return row;
  });
  return {rows, copy, peer: peer && {name: peer.name, row: peer.row, timing: timings[specs.length + 1]}};
}

export const ALL_LOSSES: LossName[] = ['generalizedDice', 'dice', 'sensitivitySpecificity', 'weightedCrossEntropy'];

/** The rows of a mode, grouped by volume so each volume is generated once. */
export function rowSpecs(quick: boolean): RowSpec[] {
  const rows: RowSpec[] = [];
  const volumes: Array<[number, number]> = quick ? [[64, 2], [128, 2]] : [[64, 2], [128, 2], [192, 2], [128, 8]];
  const targets: TargetKind[] = quick ? ['uint8'] : ['uint8', 'dense'];
  for (const [D, C] of volumes) {
    for (const target of targets) {
      for (const loss of ALL_LOSSES) rows.push({loss, D, C, target, activation: 'none'});
    }
    if (!quick && C === 2 && (D === 128 || D === 192)) {
      rows.push({loss: 'generalizedDice', D, C, target: 'uint8', activation: 'softmax'});
    }
  }
  return rows;
}
