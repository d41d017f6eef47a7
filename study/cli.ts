#!/usr/bin/env node
/**
 * `segloss study`: the paper's loss x learning rate x imbalance experiment
 * (Sudre et al. 2017, Tables 2 / 3 and Fig. 1 / 2) with segloss's tfjs
 * losses, on seeded synthetic lesions or on the user's NIfTI scans.
 *
 *   npx segloss study [--preset quick|full|tiny] [--data DIR] [--out DIR] ...
 *
 * `segloss study --help` lists the options.
 */
import * as fs from 'fs';
import * as path from 'path';

import {NET_DIMS, NET_NAMES, NetName} from './nets';
import {findCases, loadCase} from './nifti';
import {LOSS_KEYS, LossKey, PATCH_KEYS, PatchKey, Preset, presetLabel, PRESET_NAMES, PresetName, PRESETS, SS_FORMS, SsForm,
  WCE_WEIGHTS, WceWeights} from './presets';
import {formatDuration} from './progress';
import {writeReport} from './report';
import {codeVersion, DataSet, lrLabel, MAX_SEED, runStudy, syntheticData} from './run';
import {loadTf} from './tf';
import type {Volume} from './synth';

export const HELP = `segloss study: GDL vs WCE, Dice (DL2) and Sensitivity-Specificity over learning rate x patch size
(Sudre et al. 2017), trained with tensorflow.js and segloss/tfjs.

usage: segloss study [options]

  --preset NAME             grid and sizes: tiny (the tests' smoke run); quick (the default: UNet and HighResNet
                            x 4 losses x 3 LRs x 3 patch sizes, 250 / 150 iterations for the 2D / 3D net, about
                            8 minutes on 2 CPU cores with tfjs-node); full (4 nets, widths 16, 1000 / 3000
                            iterations); paper (4 nets at quick's widths, 1000 / 3000 iterations, 3 seeds,
                            about 10 hours)
  --data DIR                your NIfTI scans instead of synthetic data: DIR/<case>_image.nii[.gz] with
                            DIR/<case>_label.nii[.gz], or DIR/imagesTr/<case>.nii[.gz] with DIR/labelsTr/<case>.nii[.gz];
                            4D images hold channels on the 4th axis; label > 0 is foreground; the last quarter
                            of the cases (by name, at least 1) is held out
  --out DIR                 results folder (default segloss-results/<preset>[-data])
  --nets LIST               unet2d,twopath2d,highresnet3d,deepmedic3d (tiny and quick: unet2d,highresnet3d;
                            full: all four)
  --losses LIST             WCE,DL2,SS,GDLv
  --lrs LIST                learning rates, e.g. 1e-3,1e-4,1e-5
  --patches LIST            S,M,L
  --iterations N            training iterations per configuration (every network)
  --last K                  DSC statistics over the last K iterations (every network)
  --ss niftynet|printed     the SS column's loss: niftynet = as NiftyNet (the paper's code) computes it, summed over
                            both classes (lambda drops out with two classes); printed = the paper's formula,
                            foreground only, lambda 0.05 (default niftynet)
  --wce-weights reference|paper
                            WCE's foreground weight (N - G) / G from the reference labels of the batch, or from the
                            predictions as the paper prints it (default reference)
  --seeds N                 training runs per configuration, with seeds --seed, --seed + 1, ... (own initial
                            weights and patch sequence, same data); tables show the median over them with the
                            range (default 3 for the paper preset, else 1)
  --seed N                  data seed, and the first training seed, 0 .. 8191 (default 1)
  --backend auto|cpu        auto: tfjs-node when installed, else @tensorflow/tfjs 'cpu' (default auto)
  --fresh                   ignore finished configurations in the results folder (default: resume)
`;

export interface CliOptions {
  preset: Preset;
  data?: string;
  out: string;
  seed: number;
  backend: 'auto' | 'cpu';
  fresh: boolean;
}

function fail(what: string, arg: string, value: unknown): never {
  throw new RangeError(`Expected ${what} for ${arg} but received ${JSON.stringify(value)}`);
}

function list<T extends string>(arg: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) fail(`a comma-separated list of ${allowed.join(', ')}`, arg, value);
  for (const it of items) if (!allowed.includes(it as T)) fail(`a comma-separated list of ${allowed.join(', ')}`, arg, value);
  return [...new Set(items)] as T[];
}

function integer(arg: string, value: string | undefined, min: number, max = Infinity): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < min || n > max) {
    fail(max === Infinity ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`, arg, value);
  }
  return n;
}

/** Parses `study` arguments (after the command word). Throws RangeError on a bad one. */
export function parseArgs(argv: string[]): CliOptions {
  const values = new Map<string, string>();
  let fresh = false;
  const valued = ['--preset', '--data', '--out', '--nets', '--losses', '--lrs', '--patches', '--iterations', '--last',
                  '--ss', '--wce-weights', '--seeds', '--seed', '--backend'];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--fresh') {
      fresh = true;
      continue;
    }
    const [key, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (!valued.includes(key)) fail(`one of ${[...valued, '--fresh', '--help'].join(', ')}`, 'an option', a);
    const v = inline ?? argv[++i];
    if (v === undefined || (inline === undefined && v.startsWith('--'))) fail('a value', key, v ?? null);
    values.set(key, v);
  }
  const presetName = (values.get('--preset') ?? 'quick') as PresetName;
  if (!PRESET_NAMES.includes(presetName)) fail(`one of ${PRESET_NAMES.join(', ')}`, '--preset', presetName);
  const base = PRESETS[presetName];
  const preset: Preset = {...base, nets: [...base.nets], losses: [...base.losses], lrs: [...base.lrs],
                          patches: [...base.patches], changes: []};
  // every option that changes the preset's grid or sizes, in a fixed order, for the summary's title
  for (const key of ['--nets', '--losses', '--lrs', '--patches', '--iterations', '--last', '--ss', '--wce-weights',
                     '--seeds']) {
    if (values.has(key)) preset.changes.push(`${key} ${values.get(key)}`);
  }
  if (values.has('--nets')) preset.nets = list<NetName>('--nets', values.get('--nets')!, NET_NAMES);
  if (values.has('--losses')) preset.losses = list<LossKey>('--losses', values.get('--losses')!, LOSS_KEYS);
  if (values.has('--patches')) preset.patches = list<PatchKey>('--patches', values.get('--patches')!, PATCH_KEYS);
  if (values.has('--lrs')) {
    const raw = values.get('--lrs')!;
    const lrs = raw.split(',').map((s) => Number(s.trim()));
    if (lrs.length === 0 || lrs.some((x) => !(x > 0 && x < 1))) fail('a comma-separated list of learning rates in (0, 1)', '--lrs', raw);
    preset.lrs = [...new Set(lrs)];
  }
  if (values.has('--ss')) {
    const ss = values.get('--ss') as SsForm;
    if (!SS_FORMS.includes(ss)) fail(`one of ${SS_FORMS.join(', ')}`, '--ss', ss);
    preset.ss = ss;
  }
  if (values.has('--wce-weights')) {
    const w = values.get('--wce-weights') as WceWeights;
    if (!WCE_WEIGHTS.includes(w)) fail(`one of ${WCE_WEIGHTS.join(', ')}`, '--wce-weights', w);
    preset.wceWeights = w;
  }
  if (values.has('--seeds')) preset.seeds = integer('--seeds', values.get('--seeds'), 1, 50);
  const iterations = values.has('--iterations') ? integer('--iterations', values.get('--iterations'), 1) : undefined;
  const lastK = values.has('--last') ? integer('--last', values.get('--last'), 1) : undefined;
  preset.setups = {...base.setups};
  for (const net of NET_NAMES) {
    const s = {...base.setups[net]};
    s.iterations = iterations ?? s.iterations;
    s.lastK = Math.min(lastK ?? s.lastK, s.iterations);
    preset.setups[net] = s;
  }
  const seed = values.has('--seed') ? integer('--seed', values.get('--seed'), 0, MAX_SEED) : 1;
  const backend = (values.get('--backend') ?? 'auto') as 'auto' | 'cpu';
  if (backend !== 'auto' && backend !== 'cpu') fail('auto or cpu', '--backend', backend);
  const data = values.get('--data');
  const out = values.get('--out') ?? path.join('segloss-results', `${presetName}${data ? '-data' : ''}`);
  return {preset, data, out, seed, backend, fresh};
}

function describeFiles(dir: string, names: string[]): string {
  return names.map((f) => `${f}:${fs.statSync(f).size}`).join(',') + ` in ${dir}`;
}

/** The data each network trains on: synthetic per network, or the user's volumes (slices for the 2D net). */
export function loadData(o: CliOptions, log: (s: string) => void): Record<NetName, DataSet> {
  const out = {} as Record<NetName, DataSet>;
  if (!o.data) {
    for (const net of o.preset.nets) out[net] = syntheticData(o.preset, net, o.seed);
    return out;
  }
  const cases = findCases(o.data);
  const vols: Volume[] = cases.map(loadCase);
  const nTest = Math.max(1, Math.round(cases.length / 4));
  const train = vols.slice(0, cases.length - nTest);
  const test = vols.slice(cases.length - nTest);
  const channels = new Set(vols.map((v) => v.channels));
  if (channels.size !== 1) fail('the same channel count in every image', '--data', [...channels]);
  const describe = describeFiles(o.data, cases.flatMap((c) => [c.image, c.label]));
  log(`data: ${cases.length} cases from ${o.data} (${train.length} train, ${test.length} held out: ` +
      `${test.map((v) => v.source).join(', ')}), ${vols[0].channels} channel(s), sides ` +
      `${[...new Set(vols.map((v) => v.dims.slice().reverse().join('x')))].join(' / ')} (x y z)`);
  for (const net of o.preset.nets) {
    if (NET_DIMS[net] === 3 && vols.some((v) => v.dims.length !== 3)) fail('3D volumes', '--data', o.data);
    out[net] = {kind: o.data, train, test, describe};
  }
  return out;
}

function dataNote(d: DataSet): string {
  const fr = (vs: Volume[]) => vs.map((v) => v.foreground / v.label.length);
  const all = [...fr(d.train), ...fr(d.test)].sort((a, b) => a - b);
  const p = (x: number) => `${(100 * x).toFixed(3)}%`;
  const side = [...new Set([...d.train, ...d.test].map((v) => v.dims.join('x')))].join(' / ');
  return `${d.kind === 'synthetic' ? 'synthetic lesions' : d.kind}, ${d.train.length} training + ${d.test.length} held-out ` +
         `volumes of ${side}, ${d.train[0].channels} channels, whole-volume foreground ${p(all[0])} .. ${p(all[all.length - 1])}`;
}

export async function studyMain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  const o = parseArgs(argv);
  const t0 = Date.now();
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const loaded = loadTf(o.backend);
  log(`segloss study, preset ${presetLabel(o.preset)}: tensorflow.js ${loaded.note}`);
  const data = loadData(o, log);
  if (o.fresh && fs.existsSync(path.join(o.out, 'configs'))) fs.rmSync(path.join(o.out, 'configs'), {recursive: true});
  const total = o.preset.nets.length * o.preset.losses.length * o.preset.lrs.length * o.preset.patches.length;
  log(`${total} configurations x ${o.preset.seeds} seed(s) (${o.preset.nets.join(', ')} x ${o.preset.losses.join(', ')} x LR ` +
      `${o.preset.lrs.map(lrLabel).join(', ')} x patch ${o.preset.patches.join(', ')}), ` +
      `${o.preset.nets.map((n) => `${o.preset.setups[n].iterations} iterations for ${n}`).join(', ')}; ` +
      `results in ${o.out}`);
  const run = await runStudy({preset: o.preset, data, out: o.out, seed: o.seed, loaded});
  const seconds = (Date.now() - t0) / 1000;
  const dataNotes: Record<string, string> = {};
  for (const net of o.preset.nets) dataNotes[net] = dataNote(data[net]);
  const report = writeReport(o.out, run.results, {
    preset: o.preset, version: codeVersion(), backendNote: loaded.note, backend: loaded.backend, seed: o.seed, data: dataNotes, seconds,
    ran: run.ran.length, skipped: run.skipped.length,
  });
  log(report.summary.replace(/^!\[.*$/gm, '').replace(/\n{3,}/g, '\n\n'));
  log(`wrote ${report.files.map((f) => path.join(o.out, f)).join(', ')} and ${run.results.length} files in ` +
      `${path.join(o.out, 'configs')}; ${run.ran.length} trained, ${run.skipped.length} resumed, ${formatDuration(seconds)}`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(HELP);
    return cmd === undefined ? 1 : 0;
  }
  if (cmd !== 'study') fail('the command study', 'segloss', cmd);
  return studyMain(rest);
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }, (e: Error) => {
    process.stderr.write(`segloss: ${e instanceof RangeError || e instanceof TypeError ? e.message : e.stack}\n`);
    process.exitCode = 2;
  });
}
