/**
 * The training-inputs table of `npm run bench`: loss + gradient on the inputs
 * a training step hands a loss, over the class counts segmentation uses.
 *
 * Inputs (bench/inputs.ts volumes, 1 x D^3, channels last):
 *   probs-u8      probabilities ('none') with uint8 labels
 *   probs-dense   probabilities ('none') with dense one-hot float32 targets
 *                 (what tfjs model.fit passes as yTrue)
 *   softmax-u8    softmax logits with uint8 labels (a network's last layer)
 *   sigmoid       sigmoid logits: a binary map (C = 1, uint8 labels 0 / 1) and
 *                 multi-label C = 4 (dense targets)
 * C = 1 (binary map: the probability or logit of class 1), 2, 3, 4, 8, 16, 32
 * at 1 x 128^3, and 2 x 96^3 x 4; --quick: 1 x 64^3, C = 1, 2, 4, 8.
 *
 * Bytes moved per call, as bench/losses.ts states them: the reduction pass
 * reads the prediction (4 B x C per voxel) and the target (1 B per voxel for
 * labels, 4 B x C dense); the gradient pass reads the target again, the
 * prediction again unless the gradient needs only the target (Generalized
 * Dice with 'none'), and writes the gradient (4 B x C). Each volume's rows
 * and the copy probe run in interleaved rounds; % of copy compares each row's
 * GB/s with the probe's in those rounds.
 */
import * as segloss from '../lib';
import type {Activation, LossName, LossResult} from '../lib/types';
import {CopyProbe} from './bandwidth';
import {Plan, measureInterleaved, Timing} from './harness';
import {makeVolume} from './inputs';
import {ALL_LOSSES, gradientReadsPrediction} from './losses';

export type TrainingInput = 'probs-u8' | 'probs-dense' | 'softmax-u8' | 'sigmoid';

export interface TrainingRow {
  loss: LossName;
  input: TrainingInput;
  B: number;
  D: number;
  C: number;
  activation: Activation;
  target: 'uint8' | 'dense';
  lossValue: number;
  timing: Timing;
  bytesMoved: number;
  GBps: number;
  copyGBps: number;
  pctOfCopy: number;
}

export const TRAINING_BYTES_LEGEND =
  'bytes moved: reduction pass reads the prediction (4 B x C per voxel) + the target (1 B/voxel uint8 labels, ' +
  '4 B x C dense); gradient pass reads the target again, re-reads the prediction unless the gradient needs only ' +
  "the target (generalizedDice with 'none'), writes the gradient (4 B x C); C = 1 is a binary map (one channel). " +
  '% of copy = GB/s / GB/s of the copy probe timed in the same rounds.';

interface Group {
  B: number;
  D: number;
  C: number;
  inputs: TrainingInput[];
}

function groups(quick: boolean): Group[] {
  const all: TrainingInput[] = ['probs-u8', 'probs-dense', 'softmax-u8'];
  if (quick) {
    return [{B: 1, D: 64, C: 1, inputs: ['probs-u8', 'sigmoid']},
            ...[2, 4, 8].map((C) => ({B: 1, D: 64, C, inputs: all}))];
  }
  return [
    {B: 1, D: 128, C: 1, inputs: ['probs-u8', 'probs-dense', 'sigmoid']},
    ...[2, 3, 4, 8, 16, 32].map((C) => ({B: 1, D: 128, C, inputs: C === 4 ? [...all, 'sigmoid' as const] : all})),
    {B: 2, D: 96, C: 4, inputs: all},
  ];
}

/** The arrays of one (B, D, C) group: B seeded volumes side by side. */
function inputsOf(g: Group) {
  const K = Math.max(g.C, 2);
  const vols = Array.from({length: g.B}, (_, b) => makeVolume(g.D, K, {logits: true, dense: true, seed: g.D * 1000 + K + 77 * b}));
  const V = g.D ** 3;
  const n = g.B * V * g.C;
  const probs = new Float32Array(n), logits = new Float32Array(n), dense = new Float32Array(n);
  const labels = new Uint8Array(g.B * V);
  vols.forEach((v, b) => {
    labels.set(v.labels, b * V);
    if (g.C === 1) {
      // a binary map: class 1's probability, its logit against class 0, r1
      for (let i = 0; i < V; i++) {
        probs[b * V + i] = v.probs[2 * i + 1];
        logits[b * V + i] = v.logits![2 * i + 1] - v.logits![2 * i];
        dense[b * V + i] = v.labels[i];
      }
    } else {
      probs.set(v.probs, b * V * g.C);
      logits.set(v.logits!, b * V * g.C);
      dense.set(v.dense!, b * V * g.C);
    }
  });
  return {shape: [g.B, g.D, g.D, g.D, g.C], voxels: g.B * V, probs, logits, dense, labels};
}

type LossFn = (args: object) => LossResult;

/** Times every row of the table (see the file header). */
export function timeTraining(quick: boolean, probe: CopyProbe, plan: Plan,
                             log: (s: string) => void): TrainingRow[] {
  const rows: TrainingRow[] = [];
  for (const g of groups(quick)) {
    const inp = inputsOf(g);
    const gradient = new Float32Array(inp.voxels * g.C).fill(0);
    const specs: Array<Omit<TrainingRow, 'lossValue' | 'timing' | 'bytesMoved' | 'GBps' | 'copyGBps' | 'pctOfCopy'>> = [];
    for (const input of g.inputs) {
      for (const loss of ALL_LOSSES) {
        const activation: Activation = input === 'softmax-u8' ? 'softmax' : input === 'sigmoid' ? 'sigmoid' : 'none';
        const target = input === 'probs-dense' || (input === 'sigmoid' && g.C > 1) ? 'dense' : 'uint8';
        specs.push({loss, input, B: g.B, D: g.D, C: g.C, activation, target});
      }
    }
    const values = specs.map(() => NaN);
    const tasks = specs.map((s, i) => {
      const args = {prediction: s.activation === 'none' ? inp.probs : inp.logits, shape: inp.shape,
                    target: s.target === 'dense' ? inp.dense : inp.labels, activation: s.activation, gradient};
      const fn = segloss[s.loss] as unknown as LossFn;
      return {run: () => { values[i] = fn(args).loss; }};
    });
    tasks.push({run: () => probe.run()});
    log(`  training inputs ${g.B}×${g.D}³×${g.C}: ${specs.length} rows...`);
    const timings = measureInterleaved(tasks, plan);
    probe.verify();
    const copyGBps = probe.GBps(timings[specs.length].medianMs);
    specs.forEach((s, i) => {
      const pred = 4 * s.C * inp.voxels;
      const tgt = s.target === 'uint8' ? inp.voxels : 4 * s.C * inp.voxels;
      const bytes = pred + tgt + tgt + (gradientReadsPrediction(s.loss, s.activation) ? pred : 0) + pred;
      const GBps = bytes / (timings[i].medianMs / 1e3) / 1e9;
      rows.push({...s, lossValue: values[i], timing: timings[i], bytesMoved: bytes, GBps, copyGBps,
                 pctOfCopy: (100 * GBps) / copyGBps});
    });
  }
  return rows;
}
