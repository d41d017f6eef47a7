/**
 * Progress with an ETA on stderr: one redrawn bar on a terminal, plain
 * lines (one per finished configuration) when stderr is not a TTY (CI, logs).
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class Progress {
  private readonly t0 = Date.now();
  private doneSteps = 0;
  private configsDone: number;
  private current = '';
  private stepInConfig = 0;
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WriteStream, private readonly totalSteps: number,
              private readonly totalConfigs: number, alreadyDone: number) {
    this.configsDone = alreadyDone;
    this.tty = Boolean(stream.isTTY);
  }

  private eta(): string {
    const elapsed = (Date.now() - this.t0) / 1000;
    if (this.doneSteps === 0) return '?';
    return formatDuration((elapsed / this.doneSteps) * (this.totalSteps - this.doneSteps));
  }

  private prefix(): string {
    return `[${String(this.configsDone).padStart(String(this.totalConfigs).length)}/${this.totalConfigs}]`;
  }

  note(line: string): void {
    this.clear();
    this.stream.write(`${line}\n`);
  }

  start(id: string): void {
    this.current = id;
    this.stepInConfig = 0;
    this.draw(true);
  }

  /** One iteration done, worth `units` of the total. */
  step(it: number, dsc: number, units = 1): void {
    this.doneSteps += units;
    this.stepInConfig = it;
    this.draw(false, dsc);
  }

  finish(line: string): void {
    this.configsDone++;
    this.clear();
    const elapsed = formatDuration((Date.now() - this.t0) / 1000);
    this.stream.write(`${this.prefix()} ${line}; elapsed ${elapsed}, ETA ${this.eta()}\n`);
  }

  end(): void {
    this.clear();
  }

  private clear(): void {
    if (this.tty) this.stream.write('\r\x1b[K');
  }

  private draw(force: boolean, dsc?: number): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 150) return;
    this.lastDraw = now;
    const width = 24;
    const frac = this.totalSteps === 0 ? 1 : this.doneSteps / this.totalSteps;
    const fill = Math.round(frac * width);
    const bar = '#'.repeat(fill) + '.'.repeat(width - fill);
    const d = dsc === undefined || !Number.isFinite(dsc) ? '' : ` DSC ${dsc.toFixed(2)}`;
    this.stream.write(`\r\x1b[K${this.prefix()} [${bar}] ${(100 * frac).toFixed(0)}% ${this.current} it ${this.stepInConfig}${d} ETA ${this.eta()}`);
  }
}
