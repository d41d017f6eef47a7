/**
 * The shared benchmark harness (STYLE.md rule 12): timing of the work alone,
 * warm-up outside the timing, N repetitions, median and spread, and the
 * description of the machine the numbers come from.
 *
 * Units, everywhere in bench/: ms = 1e-3 s, MB = 1e6 bytes, GB/s = 1e9 bytes/s
 * (decimal, as memory bandwidths are quoted).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as v8 from 'v8';
import * as vm from 'vm';
import {backends, getThreads} from '../lib';
import {native} from '../lib/native';
import {mulberry32} from '../lib/reference/random';

/** How many times to run one measured function. */
export interface Plan {
  /** Untimed runs first (page faults, caches, lazy initialisation, JIT). */
  warmup: number;
  /** At least this many timed runs... */
  minRuns: number;
  /** ...and more while the timed runs total less than targetMs... */
  targetMs: number;
  /** ...but never more than this. */
  maxRuns: number;
}

/** Timed runs of one function, in ms. */
export interface Timing {
  runs: number;
  warmup: number;
  /** Every timed run, in the order they ran. */
  samplesMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** First and third quartiles (linear interpolation between order statistics) and q3 - q1. */
  q1Ms: number;
  q3Ms: number;
  iqrMs: number;
}

/** Quantile q in [0, 1] of sorted values, linear interpolation between order statistics (R type 7). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h), hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

export function summarize(samplesMs: number[], warmup: number): Timing {
  const s = [...samplesMs].sort((a, b) => a - b);
  const q1 = quantile(s, 0.25), q3 = quantile(s, 0.75);
  return {runs: s.length, warmup, samplesMs, medianMs: quantile(s, 0.5), minMs: s[0], maxMs: s[s.length - 1],
          q1Ms: q1, q3Ms: q3, iqrMs: q3 - q1};
}

/**
 * A full garbage collection between runs (outside the timing), so a collection
 * triggered by an earlier run's garbage does not land inside a later timed run.
 * Node hides gc() unless started with --expose-gc; the flag can be set at run
 * time and the function fetched from a fresh context.
 *
 * The forced collection does not hand its sweeping to a background thread
 * (concurrent sweeping is off for that one call, on again for the collections
 * V8 starts by itself inside the timed runs). A background sweeper would take
 * one of a 2-core machine's cores from the timed call that follows: a cost
 * of the harness's collection, not of the call, and one that weighs on a
 * 3 ms call far more than on a 60 ms one. Measured on the development VM,
 * 40 alternating steps after a forced collection per process, 3 processes
 * each: the segloss/tfjs step at 128^3 x 2 took 5.4-6.8 ms with the
 * background sweeper and 3.7-4.4 ms without, while the tfjs composite's step
 * stayed within its noise (70-78 ms against 70-75 ms; 180-195 ms against
 * 176-210 ms at 192^3).
 */
const gc: (() => void) | undefined = (() => {
  const g = (globalThis as {gc?: () => void}).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    if (typeof fn === 'function') return fn as () => void;
  } catch {
    // fall through: no collection between runs
  }
  return undefined;
})();

function collect(): void {
  if (!gc) return;
  v8.setFlagsFromString('--no-concurrent-sweeping');
  try {
    gc();
  } finally {
    v8.setFlagsFromString('--concurrent-sweeping');
  }
}

const nowNs = () => process.hrtime.bigint();
const msSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/** Times `fn` (synchronous: it returns when the work is done) following `plan`. */
export function measure(fn: () => void, plan: Plan): Timing {
  for (let i = 0; i < plan.warmup; i++) fn();
  const samples: number[] = [];
  let total = 0;
  while (samples.length < plan.maxRuns && (samples.length < plan.minRuns || total < plan.targetMs)) {
    collect();
    const t0 = nowNs();
    fn();
    const ms = msSince(t0);
    samples.push(ms);
    total += ms;
  }
  return summarize(samples, plan.warmup);
}

/** As measure, for work that finishes when the returned Promise resolves. */
export async function measureAsync(fn: () => Promise<void>, plan: Plan): Promise<Timing> {
  for (let i = 0; i < plan.warmup; i++) await fn();
  const samples: number[] = [];
  let total = 0;
  while (samples.length < plan.maxRuns && (samples.length < plan.minRuns || total < plan.targetMs)) {
    collect();
    const t0 = nowNs();
    await fn();
    const ms = msSince(t0);
    samples.push(ms);
    total += ms;
  }
  return summarize(samples, plan.warmup);
}

/** One function of an interleaved measurement. */
export interface Task {
  run: () => void;
}

/**
 * Times several functions in rounds: every round runs each task once, timed,
 * in a different order each round. Why: on a shared or virtual
 * machine the speed drifts over seconds (this bench's 2-core VM was seen
 * running the same call at 25 ms, then 17 ms, with nothing else in the VM
 * running), and rows timed one after the other would take the drift as a
 * difference between them. Interleaved, every task sees the same mix of fast
 * and slow moments, so their ratios hold even when the absolute times move.
 * Rounds continue until there are at least minRuns and the rounds took
 * targetMs per task, or maxRuns rounds. Side effect, on purpose: a row rarely
 * finds its inputs in cache (the copy probe runs in every round), as in
 * training, where other work runs between two loss calls.
 */
export function measureInterleaved(tasks: Task[], plan: Plan): Timing[] {
  for (const t of tasks) {
    for (let i = 0; i < plan.warmup; i++) t.run();
  }
  const samples: number[][] = tasks.map(() => []);
  const shuffle = mulberry32(0x5e9105);
  let total = 0;
  for (let round = 0; round < plan.maxRuns && (round < plan.minRuns || total < plan.targetMs * tasks.length); round++) {
    // One collection per round, not one per task; with the shuffled order
    // below, each task follows the collection about equally often.
    collect();
    // A fresh (seeded) order each round: a task that leaves work behind (the
    // tfjs peer's TensorFlow threads spin for a while after it returns)
    // would otherwise always slow down the same successor.
    const order = tasks.map((_, i) => i);
    for (let k = order.length - 1; k > 0; k--) {
      const j = Math.floor(shuffle() * (k + 1));
      [order[k], order[j]] = [order[j], order[k]];
    }
    for (const i of order) {
      const t0 = nowNs();
      tasks[i].run();
      const ms = msSince(t0);
      samples[i].push(ms);
      total += ms;
    }
  }
  return samples.map((s) => summarize(s, plan.warmup));
}

/** What the numbers were measured on. */
export interface Machine {
  cpu: string;
  /** Logical cores os.cpus() reports. */
  cores: number;
  memoryGB: number;
  platform: string;
  arch: string;
  kernel: string;
  node: string;
  v8: string;
  /** segloss addon version, its backends and the CPU thread count used. */
  seglossAddon: string;
  backends: ReturnType<typeof backends>;
  threads: number;
  /** 1-minute load average when the bench started: > 0.5 or so means something else was running. */
  loadAverage: number[];
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus.length ? cpus[0].model.trim() : 'unknown',
    cores: cpus.length,
    memoryGB: +(os.totalmem() / 1e9).toFixed(1),
    platform: process.platform,
    arch: process.arch,
    kernel: os.release(),
    node: process.version,
    v8: process.versions.v8,
    seglossAddon: native().version,
    backends: backends(),
    threads: getThreads(),
    loadAverage: os.loadavg().map((x) => +x.toFixed(2)),
  };
}

/** One line: CPU, cores, memory, OS, Node, segloss backends and threads. */
export function machineLine(m: Machine): string {
  const be = m.backends.map((b) => `${b.name}${b.available ? '' : ' (unavailable)'}`).join(', ');
  return `${m.cpu}, ${m.cores} logical cores, ${m.memoryGB} GB RAM, ${m.platform}-${m.arch} ${m.kernel}, ` +
         `Node ${m.node}; segloss addon ${m.seglossAddon}, backends: ${be}; CPU threads: ${m.threads}; ` +
         `load average at start: ${m.loadAverage.join(' ')}`;
}

/**
 * CPU time other processes took while the bench ran: all cores' busy time
 * (os.cpus()) minus this process's own (process.cpuUsage()), as a share of
 * cores x wall time. On a 2-core machine a compiler in the background halves
 * what the bench can use, so the run reports it next to its numbers.
 */
export class CpuWatch {
  private readonly busy0 = CpuWatch.busyMs();
  private readonly steal0 = CpuWatch.stealMs();
  private readonly own0 = process.cpuUsage();
  private readonly t0 = process.hrtime.bigint();

  private static busyMs(): number {
    return os.cpus().reduce((s, c) => s + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
  }

  /** Time the hypervisor gave this VM's CPUs to others (Linux /proc/stat "steal"), ms; NaN elsewhere. */
  private static stealMs(): number {
    try {
      const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
      return f[0] === 'cpu' && f.length > 8 ? (Number(f[8]) * 1000) / 100 : NaN;  // USER_HZ = 100
    } catch {
      return NaN;
    }
  }

  /** Share (0..1) of the cores' time stolen by the hypervisor since construction (NaN if unknown). */
  stealShare(): number {
    const wallMs = Number(process.hrtime.bigint() - this.t0) / 1e6;
    return (CpuWatch.stealMs() - this.steal0) / (wallMs * Math.max(1, os.cpus().length));
  }

  /** Share (0..1) of the machine's cores used by other processes since construction. */
  othersShare(): number {
    const wallMs = Number(process.hrtime.bigint() - this.t0) / 1e6;
    const own = process.cpuUsage(this.own0);
    const ownMs = (own.user + own.system) / 1e3;
    const others = CpuWatch.busyMs() - this.busy0 - ownMs;
    const cores = Math.max(1, os.cpus().length);
    return Math.min(1, Math.max(0, others / (wallMs * cores)));
  }
}

/** Samples the other processes' CPU share over `ms` before anything is timed. */
export async function othersBefore(ms = 1000): Promise<number> {
  const w = new CpuWatch();
  await new Promise((r) => setTimeout(r, ms));
  return w.othersShare();
}

// ------------------------------------------------------------------ formatting

/** A number with 3 significant digits (at least 1 decimal below 100), for tables. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** "min–max (IQR x)" in ms. */
export function fmtSpread(t: Timing): string {
  return `${fmt(t.minMs)}–${fmt(t.maxMs)} (IQR ${fmt(t.iqrMs)})`;
}

/** A markdown table with right-aligned numeric columns (`align` 'r') and left-aligned text. */
export function markdownTable(header: string[], rows: string[][], align: Array<'l' | 'r'>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const cell = (s: string, i: number) => (align[i] === 'r' ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (align[i] === 'r' ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/**
 * JSON for result files: an object or array whose JSON is at most 4000
 * characters (a table row with its timed runs, one timing) is written on one
 * line, larger ones one member a line. Every number is kept; a result file
 * then has about one line per row, short enough to read and diff.
 */
export function compactJson(value: unknown, indent = ''): string {
  const flat = JSON.stringify(value);
  if (flat === undefined || flat.length <= 4000 || value === null || typeof value !== 'object') return flat ?? 'null';
  const inner = indent + ' ';
  if (Array.isArray(value)) {
    return `[\n${value.map((v) => inner + compactJson(v, inner)).join(',\n')}\n${indent}]`;
  }
  const members = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return `{\n${members.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${compactJson(v, inner)}`).join(',\n')}\n${indent}}`;
}
