/**
 * The machine's memory bandwidth, measured in the same run as the losses and
 * with the same threads: native().copy(src, dst) is a memcpy of two
 * Float32Arrays cut into chunks over segloss's own thread pool (the loss
 * passes' chunking), so it reads and writes memory the way the passes do.
 *
 * GB/s = (bytes read + bytes written) / time = 2 * bytes(src) / time, with
 * 256 MiB arrays by default, far beyond any cache. This counts what the
 * program asks for, like the loss rows do; a write that misses the cache may
 * also cost a read of the line by the hardware (write-allocate), which neither
 * count includes, so the loss rows' "% of bandwidth" compares like with like.
 *
 * The probe runs once on its own (the headline figure) and again inside
 * every volume's timing rounds (bench/losses.ts), so each row's "% of
 * bandwidth" compares with copies timed at the same moments.
 */
import {native} from '../lib/native';
import {measure, Plan, summarize, Timing} from './harness';

/** Two arrays and the copy between them. */
export class CopyProbe {
  readonly src: Float32Array;
  readonly dst: Float32Array;
  /** Bytes counted per copy: read src + write dst. */
  readonly bytes: number;

  constructor(readonly mib = 256) {
    if (!native().copy) {
      throw new Error('the benchmark\'s copy probe is a test hook, and this segloss.node was built without them: ' +
                      'rebuild with `npx cmake-js compile --CDSEGLOSS_TEST_HOOKS=ON` (a checkout\'s npm install does)');
    }
    const n = (mib * 1024 * 1024) / 4;
    this.src = new Float32Array(n);
    this.dst = new Float32Array(n);
    // Touch every page of both arrays (a fresh array may be zero pages not
    // yet mapped), with values that are not all zero.
    for (let i = 0; i < n; i += 1024) this.src[i] = i;
    this.dst.fill(1);
    this.bytes = 2 * this.src.byteLength;
  }

  run(): void {
    native().copy!(this.src, this.dst);
  }

  /** Throws unless the last copy copied. */
  verify(): void {
    const n = this.src.length;
    if (this.dst[1024] !== 1024 || this.dst[n - 1] !== this.src[n - 1]) throw new Error('bandwidth probe: copy() did not copy');
  }

  GBps(ms: number): number {
    return this.bytes / (ms / 1e3) / 1e9;
  }
}

export interface Bandwidth {
  /** Bytes of each array. */
  arrayBytes: number;
  /** Bytes counted per copy: read src + write dst. */
  bytesPerCopy: number;
  threads: number;
  timing: Timing;
  /** From the median time. */
  medianGBps: number;
  /** From the fastest and the slowest copy. */
  maxGBps: number;
  minGBps: number;
}

export function bandwidthOf(probe: CopyProbe, timing: Timing, threads: number): Bandwidth {
  return {arrayBytes: probe.src.byteLength, bytesPerCopy: probe.bytes, threads, timing,
          medianGBps: probe.GBps(timing.medianMs), maxGBps: probe.GBps(timing.minMs), minGBps: probe.GBps(timing.maxMs)};
}

/** The probe on its own. */
export function measureBandwidth(probe: CopyProbe, plan: Plan, threads: number): Bandwidth {
  const timing = measure(() => probe.run(), plan);
  probe.verify();
  return bandwidthOf(probe, timing, threads);
}

/** Every copy of several measurements together. */
export function poolBandwidth(probe: CopyProbe, timings: Timing[], threads: number): Bandwidth {
  return bandwidthOf(probe, summarize(timings.flatMap((t) => t.samplesMs), timings[0]?.warmup ?? 0), threads);
}
