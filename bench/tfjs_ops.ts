/**
 * Per-step cost of segloss/tfjs's Generalized Dice op on tfjs-node's
 * 'tensorflow' backend against the same loss composed from tfjs ops
 * (bench/peers/tfjs_gdl.ts), both as tf.valueAndGrad from the same
 * prediction values and int32 labels, held in TensorFlow.
 *
 * Timed, per shape, in three groups of interleaved rounds (bench/harness.ts):
 * - step: loss and gradient, the loss read back (dataSync) and the gradient
 *   left in TensorFlow for the next op, as in a training step. segloss's
 *   passes run inside TensorFlow (lib/tfjs/kernels.ts): no copies.
 * - step + gradient read: the gradient also read back with dataSync(), which
 *   copies it out of TensorFlow into fresh memory, for both.
 * - segloss's copying path (the ops not registered in TensorFlow): yTrue and
 *   yPred read out of TensorFlow once per step, the gradient written back.
 *
 *   node dist/bench/tfjs_ops.js [--quick]      (npm run bench:tfjs)
 *
 * Inputs: probabilities of two classes at 128^3 and 192^3, and softmax
 * logits of four classes at 128^3 (segloss's fused softmax against
 * tf.softmax + the composite); quick: the 128^3 ones. Results: bench/results/tmp/; --save also overwrites
 * bench/results/tfjs-<cores>core-<arch>.json.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {compactJson, describeMachine, fmt, fmtSpread, machineLine, markdownTable, measureInterleaved} from './harness';
import {makeVolume} from './inputs';
import {loadTf, TfjsGdl, Tensor} from './peers/tfjs_gdl';

interface TfOps {
  ops: {generalizedDice(yTrue: Tensor, yPred: Tensor, options?: {activation?: 'none' | 'softmax'}): Tensor};
}
interface TfKernels {
  setTensorflowOpEnabled(on: boolean): void;
  tensorflowOpStatus(): {available: boolean; reason?: string} | null;
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const loaded = loadTf();
  if (!loaded.tf) {
    console.log(`tfjs bench skipped: ${loaded.reason}`);
    return;
  }
  const tf = loaded.tf as typeof loaded.tf & {valueAndGrad: (f: (x: Tensor) => Tensor) => (x: Tensor) => {value: Tensor; grad: Tensor}};
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const {ops} = require('../lib/tfjs') as TfOps;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const kernels = require('../lib/tfjs/kernels') as TfKernels;
  const machine = describeMachine();
  console.log(machineLine(machine));
  const rows: string[][] = [];
  const readRows: string[][] = [];
  const results: object[] = [];
  const cases: Array<{D: number; C: number; activation: 'none' | 'softmax'}> = [
    {D: 128, C: 2, activation: 'none'}, ...(quick ? [] : [{D: 192, C: 2, activation: 'none' as const}]),
    {D: 128, C: 4, activation: 'softmax'},
  ];
  for (const {D, C, activation} of cases) {
    const vol = makeVolume(D, C, {logits: activation === 'softmax'});
    const x = activation === 'softmax' ? vol.logits! : vol.probs;
    const peer = new TfjsGdl(tf, loaded.version, x, vol.shape, vol.labels, activation);
    // Inputs that live in TensorFlow, as a network's output and a batch's
    // labels do (a tensor made from JS values stays in JS until an op uses it,
    // and segloss would read it without a copy).
    const pred = tf.mul(tf.tensor(x, vol.shape, 'float32'), 1);
    const labels = tf.add(tf.tensor(Int32Array.from(vol.labels), vol.shape.slice(0, -1), 'int32'), 0);
    const vg = tf.valueAndGrad((p: Tensor) => ops.generalizedDice(labels, p, {activation}));
    let loss = NaN;
    let grad: Float32Array = new Float32Array(0);
    const step = () => tf.tidy(() => {
      loss = vg(pred).value.dataSync()[0];
    });
    const stepRead = () => tf.tidy(() => {
      const r = vg(pred);
      loss = r.value.dataSync()[0];
      grad = r.grad.dataSync() as Float32Array;
    });
    const copying = () => {
      kernels.setTensorflowOpEnabled(false);
      try {
        step();
      } finally {
        kernels.setTensorflowOpEnabled(true);
      }
    };
    stepRead();
    const op = kernels.tensorflowOpStatus();
    if (!op?.available) throw new Error(`segloss's ops are not registered in TensorFlow: ${op?.reason}`);
    peer.run();
    let num = 0, den = 0;
    for (let i = 0; i < grad.length; i++) {
      num += (grad[i] - peer.gradient[i]) ** 2;
      den += peer.gradient[i] ** 2;
    }
    const check = {lossRelErr: Math.abs(loss - peer.loss) / Math.abs(peer.loss), gradRelL2: Math.sqrt(num / den)};
    const plan = {warmup: 2, minRuns: quick ? 8 : 12, targetMs: quick ? 1500 : 4000, maxRuns: 60};
    // Three groups, so that the gradient reads' and the copying path's fresh
    // memory (and its collection) does not land in the other steps' timings.
    const [tSeg, tPeer] = measureInterleaved([{run: step}, {run: () => peer.step()}], plan);
    const [tSegRead, tPeerRead] = measureInterleaved([{run: stepRead}, {run: () => peer.run()}], plan);
    const [tCopy] = measureInterleaved([{run: copying}], plan);
    const speedup = tPeer.medianMs / tSeg.medianMs;
    const speedupRead = tPeerRead.medianMs / tSegRead.medianMs;
    const shape = `1×${D}³×${C}${activation === 'softmax' ? ' softmax logits' : ''}`;
    rows.push([shape, fmt(tSeg.medianMs), fmtSpread(tSeg), fmt(tPeer.medianMs), fmtSpread(tPeer), `${speedup.toFixed(1)}×`,
               fmt(tCopy.medianMs), `${check.lossRelErr.toExponential(1)} / ${check.gradRelL2.toExponential(1)}`]);
    readRows.push([shape, fmt(tSegRead.medianMs), fmtSpread(tSegRead), fmt(tPeerRead.medianMs), fmtSpread(tPeerRead),
                   `${speedupRead.toFixed(1)}×`]);
    results.push({D, C, activation, step: {segloss: tSeg, composite: tPeer, speedup}, copyingPath: tCopy,
                  stepWithGradientRead: {segloss: tSegRead, composite: tPeerRead, speedup: speedupRead}, check});
    pred.dispose();
    labels.dispose();
    peer.dispose();
  }
  console.log(`\n## segloss/tfjs op vs tfjs composite: Generalized Dice loss + gradient per training step, backend '${loaded.backend}'\n`);
  console.log(markdownTable(['shape', 'segloss op ms', 'spread', 'composite ms', 'spread', 'speedup', 'copying path ms',
                             'agreement (loss / grad)'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
  console.log('\nBoth: tf.valueAndGrad on the same prediction tensor and int32 labels tensor held in TensorFlow; the loss ' +
              'read back with dataSync(), the gradient left in TensorFlow for the next op. segloss runs its passes ' +
              'inside TensorFlow; "copying path" is segloss with its ops not registered there (yTrue and yPred read out, ' +
              'the gradient written back). Timed in interleaved rounds.');
  console.log('\n### The same steps with the gradient also read back to JS (dataSync copies it out of TensorFlow)\n');
  console.log(markdownTable(['shape', 'segloss op ms', 'spread', 'composite ms', 'spread', 'speedup'], readRows,
                            ['l', 'r', 'r', 'r', 'r', 'r']));
  // bench/results/tmp/ (not tracked); --save (a full run) also overwrites
  // this machine kind's curated result
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  const outs = [path.join(dir, 'tmp', `tfjs${quick ? '-quick' : ''}-${new Date().toISOString().replace(/[:.]/g, '')}.json`)];
  if (process.argv.includes('--save') && !quick) outs.push(path.join(dir, `tfjs-${os.cpus().length}core-${os.arch()}.json`));
  const text = compactJson({machine, backend: loaded.backend, tfjsNode: loaded.version, results});
  for (const out of outs) {
    fs.mkdirSync(path.dirname(out), {recursive: true});
    fs.writeFileSync(out, text);
  }
  console.log(`results: ${outs.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
}

main();
