/**
 * The standalone benchmark of segloss's CPU backend.
 *
 *   npm run bench                 full run (a few minutes on 2 cores)
 *   npm start                     --quick (about a minute)
 *   node dist/bench/run.js [--quick] [--threads N] [--out FILE] [--save]
 *
 * Order: machine line, correctness checks against the float64 reference
 * (a failure exits 1 before any timing), memory bandwidth probe on its own,
 * then volume by volume the segloss rows, the copy probe and (at its sizes)
 * the tfjs peer in interleaved rounds. Prints the bandwidth, the peer's checks
 * and times, one markdown table, and how busy the machine was; writes every
 * number as JSON: bench/results/tmp/cpu-<ISO time>.json (not tracked), or
 * FILE; --save (a full run) also overwrites this machine kind's curated
 * result, bench/results/cpu-<cores>core-<arch>.json.
 * Exit status: 0, 1 when a correctness or peer check failed, 2 on a usage or
 * load error.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as segloss from '../lib';
import type {LossResult} from '../lib/types';
import {CopyProbe, measureBandwidth, poolBandwidth} from './bandwidth';
import {checkAll, checkLines, relErr, relL2} from './check';
import {compactJson, CpuWatch, describeMachine, fmt, fmtSpread, machineLine, markdownTable, othersBefore, Plan, Timing} from './harness';
import {makeVolume} from './inputs';
import {BYTES_LEGEND, PeerTask, Row, rowSpecs, timeVolume} from './losses';
import {loadTf, TfjsGdl} from './peers/tfjs_gdl';
import {timeTraining, TRAINING_BYTES_LEGEND, TrainingRow} from './training';

interface Cli { quick: boolean; threads?: number; out?: string; save?: boolean }

const USAGE = 'usage: node dist/bench/run.js [--quick] [--threads N] [--out FILE] [--save]';

function parseArgs(argv: string[]): Cli {
  const cli: Cli = {quick: false};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined || v === '') throw new Error(`Expected a value for ${a.split('=')[0]} but received nothing\n${USAGE}`);
      return v;
    };
    if (a === '--quick') cli.quick = true;
    else if (a === '--save') cli.save = true;
    else if (a === '--threads' || a.startsWith('--threads=')) {
      const v = value();
      const n = Number(v);
      if (!(Number.isSafeInteger(n) && n >= 0)) throw new Error(`Expected an integer >= 0 for --threads but received '${v}'\n${USAGE}`);
      cli.threads = n;
    } else if (a === '--out' || a.startsWith('--out=')) cli.out = value();
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`Expected one of --quick, --threads N, --out FILE, --save for an argument but received '${a}'\n${USAGE}`);
  }
  return cli;
}

/**
 * Repetitions per mode. bandwidth: the probe on its own; rows: each volume's
 * interleaved rounds (every row, the copy probe and the peer once per round):
 * warm-up runs of each, then at least minRuns rounds and until the rounds
 * took targetMs per task, at most maxRuns rounds.
 */
const PLANS: Record<'quick' | 'full', {bandwidth: Plan; rows: Plan}> = {
  quick: {
    bandwidth: {warmup: 2, minRuns: 9, targetMs: 0, maxRuns: 9},
    rows: {warmup: 2, minRuns: 11, targetMs: 800, maxRuns: 60},
  },
  full: {
    bandwidth: {warmup: 2, minRuns: 15, targetMs: 0, maxRuns: 15},
    rows: {warmup: 2, minRuns: 11, targetMs: 1500, maxRuns: 100},
  },
};

/** The peer's rows: GDL, uint8 labels, activation 'none', C = 2. */
const PEER_SIZES = {quick: [128], full: [64, 128, 192]};
/** Rounds of the training-inputs table: a few runs a row (its slowest rows take a second a call). */
const TRAINING_PLANS: Record<'quick' | 'full', Plan> = {
  quick: {warmup: 1, minRuns: 3, targetMs: 0, maxRuns: 3},
  full: {warmup: 1, minRuns: 5, targetMs: 400, maxRuns: 11},
};

/** The training-inputs table, and where it stands against the CPU targets. */
function printTraining(rows: TrainingRow[], mode: string): void {
  const label: Record<string, string> = {'probs-u8': 'probabilities, uint8 labels', 'probs-dense': 'probabilities, dense one-hot',
                                         'softmax-u8': 'softmax logits, uint8 labels', 'sigmoid': 'sigmoid logits'};
  console.log(`\n## Training inputs (${mode}): loss + gradient, % of the copy probe timed in the same rounds\n`);
  const body = rows.map((r) => [label[r.input] + (r.input === 'sigmoid' ? (r.C === 1 ? ' (binary map)' : ' (multi-label)') : ''),
    `${r.B}×${r.D}³×${r.C}`, r.loss, fmt(r.timing.medianMs), (r.bytesMoved / 1e6).toFixed(1), r.GBps.toFixed(2),
    `${r.pctOfCopy.toFixed(0)} %`]);
  console.log(markdownTable(['input', 'shape', 'loss', 'median ms', 'MB moved', 'GB/s', '% of copy'], body,
                            ['l', 'l', 'l', 'r', 'r', 'r', 'r']));
  console.log(TRAINING_BYTES_LEGEND);
  const lowest = rows.reduce((a, b) => (b.pctOfCopy < a.pctOfCopy ? b : a));
  const probs = rows.filter((r) => r.input.startsWith('probs'));
  const lowestProbs = probs.reduce((a, b) => (b.pctOfCopy < a.pctOfCopy ? b : a));
  const at = (input: string, C: number, loss: string) => rows.find((r) => r.input === input && r.C === C && r.loss === loss && r.B === 1);
  console.log(`targets: every row >= 50 % of copy: lowest ${lowest.pctOfCopy.toFixed(0)} % (${lowest.loss} ${lowest.input} C=${lowest.C}); ` +
              `probabilities rows >= 75 %: lowest ${lowestProbs.pctOfCopy.toFixed(0)} % (${lowestProbs.loss} ${lowestProbs.input} C=${lowestProbs.C})`);
  for (const loss of ['generalizedDice', 'weightedCrossEntropy']) {
    const sm = at('softmax-u8', 8, loss), pr = at('probs-u8', 8, loss);
    if (sm && pr) console.log(`  ${loss}: softmax C=8 costs ${(sm.timing.medianMs / pr.timing.medianMs).toFixed(2)}x the probabilities row (target <= 1.5x)`);
    const c32 = at('probs-u8', 32, loss), c16 = at('probs-u8', 16, loss);
    if (c32 && c16) console.log(`  ${loss}: per-class cost at C=32 is ${((c32.timing.medianMs / 32) / (c16.timing.medianMs / 16)).toFixed(2)}x C=16's (target <= 1.3x)`);
  }
}
/** Peer vs segloss tolerances: tfjs sums in float32, segloss in float64. */
const PEER_TOL = {lossRel: 1e-4, gradRelL2: 1e-3};

interface PeerCheck { D: number; loss: number; seglossLoss: number; lossRelErr: number; gradRelL2: number; ok: boolean }

const shapeText = (r: {D: number; C: number}) => `1×${r.D}³×${r.C}`;
const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
const log = (s: string) => process.stderr.write(`${s}\n`);

function stamp(d: Date): string {
  // ISO 8601 basic time (no colons, which some file systems refuse).
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '');
}

async function main(): Promise<number> {
  const cli = parseArgs(process.argv.slice(2));
  const mode = cli.quick ? 'quick' : 'full';
  const plan = PLANS[mode];
  const started = new Date();
  const t0 = Date.now();
  if (cli.threads !== undefined) segloss.setThreads(cli.threads);
  const threads = segloss.getThreads();

  const machine = describeMachine();
  console.log(`# segloss CPU benchmark (${mode}), ${started.toISOString()}`);
  console.log(`machine: ${machineLine(machine)}`);
  const busyBefore = await othersBefore();
  console.log(`other processes' CPU use just before the run: ${(100 * busyBefore).toFixed(0)} % of the cores` +
              (busyBefore > 0.1 ? ' (the machine is not quiet: expect noisy numbers)' : ''));
  const watch = new CpuWatch();

  // ---- correctness first
  console.log('\ncorrectness vs the float64 reference (lib/reference): loss rel err <= 1e-6, gradient rel L2 <= 1e-6');
  const checks = checkAll();
  for (const line of checkLines(checks)) console.log(`  ${line}`);
  if (!checks.every((c) => c.ok)) {
    console.log('\nbench: a correctness check failed; nothing was timed.');
    return 1;
  }

  // ---- bandwidth, same threads, same process
  const probe = new CopyProbe(256);
  const bwAlone = measureBandwidth(probe, plan.bandwidth, threads);

  // ---- the peer is loaded first so it can be timed in the same rounds as segloss
  const tf = loadTf();
  const peerChecks: PeerCheck[] = [];
  const peerSizes = PEER_SIZES[mode];

  // ---- segloss rows (+ copy probe, + peer), volume by volume, interleaved
  const specs = rowSpecs(cli.quick);
  const rows: Row[] = [];
  const copies: Array<{D: number; C: number; timing: Timing; GBps: number; rounds: number}> = [];
  const volumes = [...new Set(specs.map((s) => `${s.D}x${s.C}`))].map((k) => k.split('x').map(Number));
  for (const [D, C] of volumes) {
    const mine = specs.filter((s) => s.D === D && s.C === C);
    const vol = makeVolume(D, C, {dense: mine.some((s) => s.target === 'dense'),
                                  logits: mine.some((s) => s.activation !== 'none')});
    const gradient = new Float32Array(vol.voxels * C);
    gradient.fill(0);  // map the pages before any timing
    log(`  ${shapeText({D, C})}: foreground ${(100 * (1 - vol.classFractions[0])).toFixed(1)} % of voxels; timing ${mine.length} rows...`);

    let peer: PeerTask | undefined;
    let tfPeer: TfjsGdl | undefined;
    const peerRow = mine.find((s) => s.loss === 'generalizedDice' && s.target === 'uint8' && s.activation === 'none');
    if (tf.tf && C === 2 && peerSizes.includes(D) && peerRow) {
      tfPeer = new TfjsGdl(tf.tf, tf.version, vol.probs, vol.shape, vol.labels);
      // check: one untimed run against a fresh segloss result
      const ref = segloss.generalizedDice({prediction: vol.probs, shape: vol.shape, target: vol.labels}) as Required<LossResult>;
      tfPeer.run();
      const lossRelErr = relErr(tfPeer.loss, ref.loss);
      const gradRelL2 = relL2(tfPeer.gradient, ref.gradient);
      const ok = lossRelErr <= PEER_TOL.lossRel && gradRelL2 <= PEER_TOL.gradRelL2;
      peerChecks.push({D, loss: tfPeer.loss, seglossLoss: ref.loss, lossRelErr, gradRelL2, ok});
      const p = tfPeer;
      peer = {name: p.name, row: peerRow, run: () => p.run()};
    }
    const res = timeVolume(mine, vol, gradient, probe, plan.rows, peer);
    tfPeer?.dispose();
    rows.push(...res.rows);
    copies.push({D, C, timing: res.copy, GBps: probe.GBps(res.copy.medianMs), rounds: res.copy.runs});
    for (const r of res.rows) {
      log(`    ${r.loss} ${r.target} ${r.activation}: ${fmt(r.timing.medianMs)} ms, loss ${r.lossValue.toFixed(6)}` +
          (r.peer ? `; peer ${fmt(r.peer.timing.medianMs)} ms` : ''));
    }
  }
  // ---- the training-inputs table (bench/training.ts)
  const training = timeTraining(cli.quick, probe, TRAINING_PLANS[mode], log);

  const bw = poolBandwidth(probe, [bwAlone.timing, ...copies.map((c) => c.timing)], threads);
  const peerOk = peerChecks.every((c) => c.ok);

  console.log(`\nmemory bandwidth (native copy() of two ${probe.mib} MiB Float32Arrays on ${plural(threads, 'thread')}, ` +
              `(read + write) / time):`);
  console.log(`  on its own, before the rows: median ${bwAlone.medianGBps.toFixed(2)} GB/s of ${bwAlone.timing.runs} copies ` +
              `after ${bwAlone.timing.warmup} warm-up (range ${bwAlone.minGBps.toFixed(2)}–${bwAlone.maxGBps.toFixed(2)})`);
  console.log(`  in the rows' rounds: ${copies.map((c) => `${shapeText(c)} ${c.GBps.toFixed(2)} GB/s (${c.rounds} rounds)`).join(', ')}`);
  console.log(`  all ${bw.timing.runs} copies: median ${bw.medianGBps.toFixed(2)} GB/s (range ${bw.minGBps.toFixed(2)}–${bw.maxGBps.toFixed(2)})`);

  console.log('');
  if (!tf.tf) {
    console.log(`peer: skipped: ${tf.reason}`);
  } else {
    for (const c of peerChecks) {
      console.log(`peer check ${shapeText({D: c.D, C: 2})} ${c.ok ? 'ok  ' : 'FAIL'}: tfjs loss ${c.loss.toFixed(7)} vs segloss ` +
                  `${c.seglossLoss.toFixed(7)} (rel err ${c.lossRelErr.toExponential(1)}, limit 1e-4), gradient rel L2 ` +
                  `${c.gradRelL2.toExponential(1)} (limit 1e-3)`);
    }
    for (const r of rows.filter((x) => x.peer)) {
      const p = r.peer!;
      console.log(`peer time  ${shapeText(r)}: median ${fmt(p.timing.medianMs)} ms of ${p.timing.runs} runs after ` +
                  `${p.timing.warmup} warm-up, spread ${fmtSpread(p.timing)} ms; segloss ${fmt(r.timing.medianMs)} ms ` +
                  `in the same rounds; speedup ${p.speedup.toFixed(1)}×`);
    }
  }

  // ---- the table
  const header = ['loss', 'shape', 'target', 'activation', 'median ms', 'spread ms', 'MB moved', 'GB/s',
    '% of bandwidth', 'peer ms', 'speedup'];
  const body = rows.map((r) => [
    r.loss, shapeText(r), r.target, r.activation, fmt(r.timing.medianMs), fmtSpread(r.timing),
    (r.bytesMoved / 1e6).toFixed(1), r.GBps.toFixed(2), `${r.pctOfBandwidth.toFixed(0)} %`,
    r.peer ? fmt(r.peer.timing.medianMs) : '–',
    r.peer ? `${r.peer.speedup.toFixed(1)}×${peerOk ? '' : ' (peer check failed)'}` : '–',
  ]);
  const loadEnd = os.loadavg().map((x) => +x.toFixed(2));
  const busyDuring = watch.othersShare();
  const steal = watch.stealShare();
  console.log(`\n## segloss ${mode} benchmark: ${machine.cpu}, ${plural(threads, 'thread')}, Node ${machine.node}, ` +
              `copy bandwidth ${bw.medianGBps.toFixed(2)} GB/s (median of all copies)\n`);
  console.log(markdownTable(header, body, ['l', 'l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
  console.log('\nmedian ms: median of the timed runs of one call (loss + gradient, gradient written into a ' +
              'preallocated Float32Array), after warm-up runs; spread ms: fastest–slowest run (interquartile range).');
  console.log(BYTES_LEGEND);
  console.log('Each volume\'s rows, the copy probe and the peer were timed in interleaved rounds (every task once per ' +
              'round, shuffled order), so drift of the machine\'s speed hits them alike; a call seldom finds its inputs in ' +
              'cache (the 512 MiB copy runs every round).');
  console.log('MB = 1e6 bytes, GB/s = 1e9 bytes/s. Inputs: seeded random softmax probabilities with labels from ' +
              'foreground balls (4 % of the volume with C = 2, 10 % with C = 8), bench/inputs.ts.');
  if (tf.tf) {
    console.log(`peer: ${rows.find((r) => r.peer)?.peer?.name} on backend '${tf.backend}' (TensorFlow's own thread pool, sized by TensorFlow to the ` +
                `${machine.cores} cores whatever --threads says), the same GDL ` +
                '(square weights, smoothing 1e-5, background included, pooled) from tf ops; timed: tf.oneHot of the ' +
                'int32 labels, forward, backward, dataSync() of loss and gradient; speedup = peer ms / segloss ms.');
  } else {
    console.log(`peer: skipped (${tf.reason}).`);
  }
  printTraining(training, mode);
  const seconds = (Date.now() - t0) / 1e3;
  console.log(`\nother processes used ${(100 * busyDuring).toFixed(0)} % of the cores during the run` +
              `${Number.isFinite(steal) ? `, the hypervisor took ${(100 * steal).toFixed(0)} % (steal)` : ''}` +
              `${busyDuring > 0.1 ? ' (NOT a quiet machine: treat the times as upper bounds and re-run)' : ''}; ` +
              `load average at start ${machine.loadAverage.join(' ')}, at end ${loadEnd.join(' ')}; total ${seconds.toFixed(0)} s.`);

  // ---- JSON
  const result = {
    schema: 'segloss-bench/1',
    mode,
    started: started.toISOString(),
    seconds,
    command: `node ${path.relative(process.cwd(), process.argv[1]) || process.argv[1]} ${process.argv.slice(2).join(' ')}`.trim(),
    units: {time: 'ms', bytes: 'B', bandwidth: 'GB/s (1e9 B/s)'},
    machine: {...machine, loadAverageEnd: loadEnd, othersCpuShareBefore: busyBefore, othersCpuShareDuring: busyDuring,
              stealShareDuring: Number.isFinite(steal) ? steal : null},
    plans: plan,
    checks,
    bandwidth: {all: bw, alone: bwAlone, inRounds: copies},
    legend: BYTES_LEGEND,
    rows,
    training: {legend: TRAINING_BYTES_LEGEND, rows: training},
    peer: tf.tf ? {name: rows.find((r) => r.peer)?.peer?.name, backend: tf.backend, tolerances: PEER_TOL, checks: peerChecks}
      : {skipped: tf.reason},
  };
  const resultsDir = path.join(__dirname, '..', '..', 'bench', 'results');
  const outs = [cli.out ? path.resolve(cli.out)
    : path.join(resultsDir, 'tmp', `cpu${cli.quick ? '-quick' : ''}-${stamp(started)}.json`)];
  // one curated result per machine kind, overwritten in place
  if (cli.save && !cli.quick) outs.push(path.join(resultsDir, `cpu-${os.cpus().length}core-${os.arch()}.json`));
  const text = `${compactJson(result)}\n`;
  for (const f of outs) {
    fs.mkdirSync(path.dirname(f), {recursive: true});
    fs.writeFileSync(f, text);
  }
  console.log(`results: ${outs.map((f) => path.relative(process.cwd(), f) || f).join(', ')}`);
  if (!peerOk) {
    console.log('bench: the peer disagrees with segloss beyond its tolerances (see the peer check lines).');
    return 1;
  }
  return 0;
}

main().then((code) => { process.exitCode = code; }, (e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
