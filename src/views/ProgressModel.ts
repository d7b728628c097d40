/**
 * Folds the runner's events into the snapshot the Progress webview renders. Plain TS:
 * the host owns this state; the webview only ever receives whole snapshots.
 */
import { idleProgress } from '../protocol/messages';
import type { ProgressSnapshot } from '../protocol/messages';
import type { SyncEvent } from '../sync/ports/events';

const MAX_WARNINGS = 20;
/** Throughput samples kept for the chart (the runner reports a few per second at most). */
export const MAX_THROUGHPUT_SAMPLES = 120;

export function foldEvent(s: ProgressSnapshot, e: SyncEvent): ProgressSnapshot {
  switch (e.type) {
    case 'run-started':
      // A new run starts from the idle snapshot: nothing of the previous run carries over.
      return {
        ...idleProgress(e.at), runId: e.runId, mapping: e.pipeline, mode: e.mode, status: 'running', fromVersion: e.fromVersion, toVersion: e.toVersion, startedAt: e.at, throughput: [],
        // Known before any row is read: the panel shows "0 / N" and 0% from the start.
        ...(typeof e.totalRows === 'number' ? { totalRows: e.totalRows, percent: percentDone(0, 0, e.totalRows) } : {}),
        ...(e.auto ? { auto: e.auto.reason } : {}),
      };
    case 'phase':
      return { ...s, phase: e.detail ? `${e.phase}: ${e.detail}` : e.phase, updatedAt: e.at };
    case 'progress':
      return {
        ...s,
        rowsRead: e.rowsRead,
        rowsApplied: e.rowsApplied,
        totalRows: e.totalRows,
        percent: percentDone(e.rowsRead, e.rowsApplied, e.totalRows),
        rowsPerSecond: e.rowsPerSecond,
        etaSeconds: e.etaSeconds,
        version: e.version,
        updatedAt: e.at,
        throughput: [...(s.throughput ?? []), [e.at, e.rowsPerSecond] as [number, number]].slice(-MAX_THROUGHPUT_SAMPLES),
      };
    case 'batch-committed':
      return { ...s, version: e.toVersion, updatedAt: e.at };
    case 'warning':
      return { ...s, warnings: [...s.warnings, e.message].slice(-MAX_WARNINGS), updatedAt: e.at };
    case 'run-finished':
      return {
        ...s,
        status: e.status,
        // A run that did not succeed keeps the phase it ended in: where it stopped or failed.
        phase: e.status === 'succeeded' ? 'done' : s.phase,
        rowsApplied: e.rowsApplied,
        version: e.checkpointVersion ?? s.version,
        etaSeconds: null,
        // Done is 100%. A stopped or failed run has no percentage: what it had staged was
        // rolled back (its rows applied are those committed), so "42%" would overstate it.
        percent: e.status === 'succeeded' ? 100 : null,
        updatedAt: e.at,
        error: e.error !== undefined ? { message: e.error } : null,
      };
  }
}

/**
 * How far a run is, in percent of `total` (null when the total is unknown): rows applied
 * once the target takes them (an initial load's COPY), rows read before that (the read
 * phase of a load, which runs ahead of COPY). Never above 100 (a snapshot's stats can
 * undercount rows a filter or a late commit adds).
 */
export function percentDone(rowsRead: number, rowsApplied: number, total: number | null): number | null {
  if (total === null) return null;
  if (total === 0) return 100;
  const done = rowsApplied > 0 ? rowsApplied : rowsRead;
  return Math.min(100, Math.max(0, (done / total) * 100));
}

/**
 * Calls `flush` at most once per `intervalMs`, always with the latest value, and never
 * drops the last one (trailing edge). Terminal snapshots should use `flushNow`.
 */
export class Throttle<T> {
  private pending: { value: T } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private last = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly flush: (value: T) => void,
    private readonly now: () => number = Date.now,
  ) {}

  push(value: T): void {
    this.pending = { value };
    if (this.timer) return;
    const wait = Math.max(0, this.last + this.intervalMs - this.now());
    if (wait === 0) {
      this.fire();
      return;
    }
    this.timer = setTimeout(() => this.fire(), wait);
  }

  flushNow(value: T): void {
    this.pending = { value };
    this.fire();
  }

  private fire(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    this.last = this.now();
    this.flush(p.value);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }
}

/** What the status bar item shows for a snapshot: hidden before the first run. */
export interface StatusBarLook {
  visible: boolean;
  text: string;
  tooltip: string;
  /** An error background for a failed run. */
  error: boolean;
}

const nf = new Intl.NumberFormat('en-US');

/** The status bar item of the running or last run: mapping, state, rows (and percent while running). */
export function statusBarLook(s: ProgressSnapshot): StatusBarLook {
  if (s.status === 'idle' || s.mapping === null) return { visible: false, text: '', tooltip: '', error: false };
  const rows = `${nf.format(s.rowsApplied)} rows`;
  const phase = s.phase ? s.phase.split(':')[0] : null;
  const pct = s.percent === null || s.percent === undefined ? null : `${Math.floor(s.percent)}%`;
  const icon = { running: '$(sync~spin)', stopping: '$(sync~spin)', succeeded: '$(check)', failed: '$(error)', cancelled: '$(circle-slash)' }[s.status];
  const state = s.status === 'running' ? [phase ?? 'running', pct].filter((x) => x).join(' ') : s.status === 'stopping' ? 'stopping…' : s.status;
  const text = `${icon} ${s.mapping}: ${state} · ${rows}`;
  const lines = [`Delta Sync: ${s.mode ?? 'sync'} of ${s.mapping} ${s.status === 'running' || s.status === 'stopping' ? 'is' : 'was'} ${s.status}`, `${rows} applied${s.totalRows === null ? '' : ` of ${nf.format(s.totalRows)}`}`];
  if (s.error) lines.push(s.error.message);
  lines.push('Click to show the Progress panel.');
  return { visible: true, text, tooltip: lines.join('\n'), error: s.status === 'failed' };
}
