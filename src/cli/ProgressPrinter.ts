import type { SyncEvent } from '../sync/ports/events';

/**
 * Renders runner events: a single redrawn line on a terminal, plain lines otherwise (logs,
 * CI, pipes). Writes to stderr so stdout stays clean for data.
 */
export class ProgressPrinter {
  private lastDraw = 0;
  private drawn = false;
  /** The phase the run is in (shown on the redrawn line of a terminal). */
  private phase: string | undefined;
  /** Mapping mode "auto": the reason the run-started line printed (its plan phase says it again). */
  private autoLine: string | undefined;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    private readonly plainIntervalMs = 5000,
  ) {}

  readonly onEvent = (e: SyncEvent): void => {
    const tty = !!this.out.isTTY;
    switch (e.type) {
      case 'run-started': {
        const what = e.auto?.path === 'snapshot' ? 'Snapshot load in place of an incremental sync' : e.mode === 'initial' ? 'Initial load' : 'Incremental sync';
        this.line(`${what} of ${e.pipeline}: ${e.fromVersion === null ? `snapshot at version ${e.toVersion}` : `versions ${e.fromVersion}..${e.toVersion}`}`);
        this.autoLine = e.auto ? `mode auto: ${e.auto.reason}` : undefined;
        if (this.autoLine) this.line(`  ${this.autoLine}`);
        break;
      }
      case 'phase':
        this.phase = e.phase;
        if (!tty && !(e.phase === 'plan' && e.detail !== undefined && e.detail === this.autoLine)) this.line(`  ${e.phase}${e.detail ? `: ${e.detail}` : ''}`);
        break;
      case 'progress': {
        const now = Date.now();
        const text = `  ${e.rowsRead.toLocaleString('en-US')} rows read, ${e.rowsApplied.toLocaleString('en-US')} applied, ${e.rowsPerSecond.toLocaleString('en-US')} rows/s${e.etaSeconds !== null ? `, ETA ${Math.ceil(e.etaSeconds)} s` : ''}${e.version !== null ? `, at version ${e.version}` : ''}`;
        if (tty) {
          if (now - this.lastDraw < 100) return;
          this.lastDraw = now;
          const width = (this.out.columns ?? 100) - 1;
          this.out.write(`\r${this.bar(e.totalRows ? e.rowsRead / e.totalRows : null)}${this.phase ? ` ${this.phase}` : ''}${text}`.slice(0, width).padEnd(width));
          this.drawn = true;
        } else if (now - this.lastDraw >= this.plainIntervalMs) {
          this.lastDraw = now;
          this.line(text);
        }
        break;
      }
      case 'batch-committed':
        this.line(`  committed versions ${e.fromVersion}..${e.toVersion}: ${e.inserted} inserted, ${e.updated} updated, ${e.deleted} deleted, ${e.unchanged} unchanged${e.deadLettered ? `, ${e.deadLettered} dead-lettered` : ''}`);
        break;
      case 'warning':
        this.line(`  warning: ${e.message}`);
        break;
      case 'run-finished':
        this.line(`  ${e.status}${e.checkpointVersion !== null ? `, checkpoint at version ${e.checkpointVersion}` : ''}${e.error ? `: ${e.error}` : ''}`);
        break;
    }
  };

  private bar(fraction: number | null): string {
    if (fraction === null) return '';
    const n = Math.max(0, Math.min(20, Math.round(fraction * 20)));
    return `[${'#'.repeat(n)}${'.'.repeat(20 - n)}]`;
  }

  private line(text: string): void {
    if (this.drawn) {
      this.out.write('\n');
      this.drawn = false;
    }
    this.out.write(`${text}\n`);
  }
}
