/**
 * A real training run with the tensorflow.js integration (lib/tfjs): a small
 * 3D conv net (tfjs-layers) learns to segment a bright blob on a noisy
 * background, foreground <= 1% of the voxels, trained with
 * `losses.generalizedDice()` through model.compile / fit / evaluate, and
 * must reach a held-out foreground Dice >= 0.7 (`metrics.dice()`, checked
 * against a hard Dice computed here from model.predict).
 *
 * Backend: 'tensorflow' (tfjs-node, with the TF 2.21 shim); when tfjs-node
 * cannot be loaded, @tensorflow/tfjs on 'cpu' (said so in the output).
 * Everything is seeded (data: a mulberry32 PRNG here; weights: initializer
 * seeds; fit: shuffle off), so the run is deterministic.
 */
import type * as TfNamespace from '@tensorflow/tfjs';

import {mulberry32} from '../lib/reference/random';
import {losses, metrics} from '../lib/tfjs';

type Tf = typeof TfNamespace;

function loadTf(): {tf: Tf; note: string} {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const tf = require('@tensorflow/tfjs-node') as Tf;
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    require('../../shared/tools/tf221-shim')(tf);
    return {tf, note: `tfjs-node, backend '${tf.getBackend()}'`};
  } catch (e) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const tf = require('@tensorflow/tfjs') as Tf;
    return {tf, note: `FALLBACK: @tensorflow/tfjs-node could not be loaded (${(e as Error).message.split('\n')[0]}); ` +
                      `@tensorflow/tfjs on 'cpu'`};
  }
}

const {tf, note: BACKEND_NOTE} = loadTf();


/** Standard normal from a uniform source (Box-Muller). */
function gaussian(rand: () => number): () => number {
  return () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

const S = 16;                    // volumes S x S x S, one input channel
const V = S * S * S;             // 4096 voxels
const MAX_FG = Math.floor(0.01 * V);  // 40 voxels: foreground <= 1%
const NOISE = 0.3;               // background noise sigma; the blob is brighter by 1

interface Volumes {
  x: Float32Array;               // [N, S, S, S, 1]
  y: Float32Array;               // [N, S, S, S, 1], 0 / 1
  n: number;
  fgCounts: number[];
}

/** N volumes, each with one ellipsoid (1 .. MAX_FG voxels) at a random place. */
function makeVolumes(n: number, seed: number): Volumes {
  const rand = mulberry32(seed);
  const normal = gaussian(rand);
  const x = new Float32Array(n * V);
  const y = new Float32Array(n * V);
  const fgCounts: number[] = [];
  for (let i = 0; i < n; i++) {
    let count = 0;
    const mask = new Uint8Array(V);
    while (count < 1 || count > MAX_FG) {
      mask.fill(0);
      count = 0;
      const c = [0, 1, 2].map(() => 3 + rand() * (S - 7));          // centre in [3, S - 4]
      const r = [0, 1, 2].map(() => 1.0 + rand() * 1.2);           // radii in [1, 2.2]
      for (let z = 0; z < S; z++) {
        for (let yy = 0; yy < S; yy++) {
          for (let xx = 0; xx < S; xx++) {
            const d = ((z - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2;
            if (d <= 1) {
              mask[(z * S + yy) * S + xx] = 1;
              count++;
            }
          }
        }
      }
    }
    fgCounts.push(count);
    const base = i * V;
    for (let v = 0; v < V; v++) {
      y[base + v] = mask[v];
      x[base + v] = mask[v] + NOISE * normal();
    }
  }
  return {x, y, n, fgCounts};
}

/** Hard foreground Dice over the whole set (pooled), and the mean over volumes: p > 0.5 vs the label. */
function hardDice(pred: Float32Array, label: Float32Array, n: number): {pooled: number; meanPerVolume: number} {
  let inter = 0, total = 0, sumPer = 0;
  for (let i = 0; i < n; i++) {
    let iI = 0, tI = 0;
    for (let v = i * V; v < (i + 1) * V; v++) {
      const p = pred[v] > 0.5 ? 1 : 0;
      const g = label[v] > 0.5 ? 1 : 0;
      iI += p * g;
      tI += p + g;
    }
    inter += iI;
    total += tI;
    sumPer += tI === 0 ? 1 : (2 * iI) / tI;
  }
  return {pooled: total === 0 ? 1 : (2 * inter) / total, meanPerVolume: sumPer / n};
}

/**
 * conv3d 3^3 x4 relu -> conv3d 3^3 x4 relu -> conv3d 1^3 x1 sigmoid (a binary
 * map; the loss takes it with its default activation 'none'). Kept this small
 * so the pure-JS 'cpu' fallback also fits the timeout (conv3d there is naive);
 * 8 filters train no better here (held-out Dice 0.91 - 0.94 either way).
 */
function buildModel(): TfNamespace.LayersModel {
  const conv = (filters: number, kernelSize: number, activation: 'relu' | 'sigmoid', seed: number, input?: boolean) =>
    tf.layers.conv3d({
      ...(input ? {inputShape: [S, S, S, 1]} : {}),
      filters, kernelSize, padding: 'same', activation,
      kernelInitializer: tf.initializers.glorotUniform({seed}),
      biasInitializer: 'zeros',
    });
  const model = tf.sequential();
  model.add(conv(4, 3, 'relu', 11, true));
  model.add(conv(4, 3, 'relu', 12));
  model.add(conv(1, 1, 'sigmoid', 13));
  return model;
}

const N_TRAIN = 32;
const N_TEST = 16;
const BATCH = 8;
const EPOCHS = 30;               // 1 warm-up epoch + 29; N_TRAIN / BATCH = 4 steps each
const LR = 0.01;
const TARGET = 0.7;

describe('tfjs training with losses.generalizedDice (3D, foreground <= 1%)', () => {
  it(`reaches a held-out foreground Dice >= ${TARGET} within ${EPOCHS * (N_TRAIN / BATCH)} steps`, async () => {
    const t0 = Date.now();
    const train = makeVolumes(N_TRAIN, 20170701);
    const test = makeVolumes(N_TEST, 20170702);
    for (const set of [train, test]) {
      for (const c of set.fgCounts) {
        expect(c).toBeGreaterThanOrEqual(1);
        expect(c).toBeLessThanOrEqual(MAX_FG);
      }
    }

    const shape: [number, number, number, number, number] = [N_TRAIN, S, S, S, 1];
    const xTrain = tf.tensor5d(train.x, shape);
    const yTrain = tf.tensor5d(train.y, shape);
    const xTest = tf.tensor5d(test.x, [N_TEST, S, S, S, 1]);
    const yTest = tf.tensor5d(test.y, [N_TEST, S, S, S, 1]);

    const model = buildModel();
    model.compile({optimizer: tf.train.adam(LR), loss: losses.generalizedDice(), metrics: [metrics.dice()]});

    // Warm-up epoch: creates the optimizer's slots (and anything else made once).
    const first = await model.fit(xTrain, yTrain, {epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0});
    const tensorsAfterWarmup = tf.memory().numTensors;
    const tFit = Date.now();
    const hist = await model.fit(xTrain, yTrain, {epochs: EPOCHS - 1, batchSize: BATCH, shuffle: false, verbose: 0});
    const fitSeconds = (Date.now() - tFit) / 1000;
    const tensorsAfterFit = tf.memory().numTensors;
    expect(tensorsAfterFit).toBe(tensorsAfterWarmup);

    const lossCurve = [first.history.loss[0], ...hist.history.loss].map((l) => Number(l));
    const trainDiceCurve = [first.history.dice[0], ...hist.history.dice].map((d) => Number(d));

    // Held-out: model.evaluate with the loss and metrics.dice() ...
    const evaluated = model.evaluate(xTest, yTest, {batchSize: N_TEST}) as TfNamespace.Scalar[];
    const [testLoss, testDiceMetric] = await Promise.all(evaluated.map(async (s) => (await s.data())[0]));
    evaluated.forEach((s) => s.dispose());
    // ... cross-checked with a hard Dice computed here from model.predict.
    const predT = model.predict(xTest, {batchSize: N_TEST}) as TfNamespace.Tensor;
    const pred = (await predT.data()) as Float32Array;
    predT.dispose();
    const own = hardDice(pred, test.y, N_TEST);
    const tensorsAfterEval = tf.memory().numTensors;
    expect(tensorsAfterEval).toBe(tensorsAfterWarmup);

    const totalSeconds = (Date.now() - t0) / 1000;
    const fgShare = (set: Volumes) => set.fgCounts.reduce((a, b) => a + b, 0) / (set.n * V);
    console.log([
      `tfjs training (${BACKEND_NOTE})`,
      `data: ${N_TRAIN} train / ${N_TEST} held-out volumes ${S}^3, foreground ${train.fgCounts.join(',')} voxels ` +
        `(train ${(100 * fgShare(train)).toFixed(2)}%, held-out ${(100 * fgShare(test)).toFixed(2)}%; max ${MAX_FG})`,
      `training: ${EPOCHS} epochs x ${N_TRAIN / BATCH} steps = ${EPOCHS * (N_TRAIN / BATCH)} steps, batch ${BATCH}, ` +
        `adam lr ${LR}; ${fitSeconds.toFixed(1)} s for epochs 2..${EPOCHS}, ${totalSeconds.toFixed(1)} s in all`,
      `loss by epoch: ${lossCurve.map((l) => l.toFixed(3)).join(' ')}`,
      `train dice by epoch: ${trainDiceCurve.map((d) => d.toFixed(3)).join(' ')}`,
      `held-out: GDL ${testLoss.toFixed(4)}, metrics.dice() ${testDiceMetric.toFixed(4)}, ` +
        `own hard Dice pooled ${own.pooled.toFixed(4)} / mean per volume ${own.meanPerVolume.toFixed(4)}`,
      `tensors: ${tensorsAfterWarmup} after warm-up, ${tensorsAfterFit} after fit, ${tensorsAfterEval} after evaluate`,
    ].join('\n'));

    // metrics.dice() on one batch of all held-out volumes is the pooled hard Dice.
    expect(testDiceMetric).toBeCloseTo(own.pooled, 4);
    expect(testDiceMetric).toBeGreaterThanOrEqual(TARGET);
    expect(own.pooled).toBeGreaterThanOrEqual(TARGET);
    expect(own.meanPerVolume).toBeGreaterThanOrEqual(TARGET);
    expect(lossCurve[lossCurve.length - 1]).toBeLessThan(lossCurve[0]);

    model.dispose();
    tf.dispose([xTrain, yTrain, xTest, yTest]);
  }, 240000);
});
