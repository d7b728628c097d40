import { SyncError, isSyncError } from '../errors';
import type { Mapping } from '../mapping/mappingSchema';
import type { ChangeSource } from '../ports/ChangeSource';
import type { SyncEvent, SyncPhase } from '../ports/events';
import type { Logger } from '../ports/Logger';
import type { RunGuard, Target } from '../ports/Target';

/** An event as a phase emits it; the context stamps its time. */
export type PhaseEvent = SyncEvent extends infer E ? (E extends SyncEvent ? Omit<E, 'at'> : never) : never;

/**
 * What a phase of a run (initial load, incremental sync, preview, verify, dry run) gets
 * from the runner: the mapping, the source and target ports, and the run's reporting
 * (events, throttled progress, error classification, the failure record). Phases never
 * call back into the runner, so the runner and its phases import no circle.
 */
export interface RunContext {
  readonly mapping: Mapping;
  readonly pipeline: string;
  readonly source: ChangeSource;
  readonly target: Target;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  emit(event: PhaseEvent): void;
  /** A warning event (and, when given, into the result's warnings). */
  warn(message: string, into?: string[]): void;
  /** The run reached `phase` (read, plan, stage, index, apply, swap, checkpoint). */
  phase(phase: SyncPhase, detail?: string): void;
  readonly progress: ProgressMeter;
  /**
   * Any failure as a SyncError: kept if it is one, an abort as 'cancelled', the rest as
   * Postgres errors; a lost connection of a run whose lease was taken over (see holdLease)
   * as that take-over, which a retry does not fix.
   */
  classify(e: unknown): SyncError;
  /** The run holds `guard`'s lease from now on: classify reads whether it was taken over. */
  holdLease(guard: Pick<RunGuard, 'lost'>): void;
  /**
   * Records a run that failed (or was cancelled) in the run log and emits run-finished;
   * returns the classified error for the phase to throw.
   */
  fail(runId: string, dbRunId: bigint, e: unknown, committed: number | null): Promise<SyncError>;
}

/** The one progress meter of a run: counts, rate, and a throttle of 200 ms between events. */
export class ProgressMeter {
  rowsRead = 0;
  rowsApplied = 0;
  batches = 0;
  /** Version committed so far by this run (null before its first commit). */
  version: number | null = null;
  totalRows: number | null = null;
  private started = Date.now();
  private lastEmit = 0;

  constructor(private readonly emit: (e: PhaseEvent) => void) {}

  /** Starts the clock (rates count from here). */
  start(): void {
    this.started = Date.now();
    this.lastEmit = 0;
  }

  /** Adds rows read; reports at most every 200 ms. */
  read(rows: number): void {
    this.rowsRead += rows;
    this.maybeReport();
  }

  /**
   * Adds rows handed to the target (an initial load's COPY): they count as applied while
   * the load runs, so a long load shows them moving; the load's end sets the final count.
   * Reports at most every 200 ms.
   */
  applied(rows: number): void {
    this.rowsApplied += rows;
    this.maybeReport();
  }

  private maybeReport(): void {
    const now = Date.now();
    if (now - this.lastEmit > 200) {
      this.lastEmit = now;
      this.report();
    }
  }

  /** Reports now. */
  report(): void {
    const secs = Math.max((Date.now() - this.started) / 1000, 0.001);
    this.emit({
      type: 'progress', rowsRead: this.rowsRead, rowsApplied: this.rowsApplied, bytesRead: 0, batches: this.batches, version: this.version,
      ...progressRate(this.rowsRead, this.rowsApplied, this.totalRows, secs),
    });
  }
}

/**
 * Rate and ETA of a run: the rate of rows read over `seconds`; with a known total the ETA
 * follows the slower of reading and applying (a paced load reads ahead of what COPY takes),
 * so it does not reach 0 while rows still wait for the target.
 */
export function progressRate(rowsRead: number, rowsApplied: number, totalRows: number | null, seconds: number): { rowsPerSecond: number; etaSeconds: number | null; totalRows: number | null } {
  const secs = Math.max(seconds, 0.001);
  const rate = rowsRead / secs;
  if (totalRows === null) return { rowsPerSecond: Math.round(rate), etaSeconds: null, totalRows };
  // The slower side: rows applied when they are being counted (an initial load), else rows read.
  const done = rowsApplied > 0 ? Math.min(rowsRead, rowsApplied) : rowsRead;
  const doneRate = done / secs;
  const eta = doneRate > 0 ? Math.max(0, (totalRows - done) / doneRate) : null;
  return { rowsPerSecond: Math.round(rate), etaSeconds: eta, totalRows };
}

export interface RunContextDeps {
  mapping: Mapping;
  source: ChangeSource;
  target: Target;
  logger: Logger;
}

/** A context for one operation (a run attempt, a preview...). */
export function createRunContext(deps: RunContextDeps, opts: { signal?: AbortSignal; onEvent?: (e: SyncEvent) => void } = {}): RunContext {
  const { mapping, target, logger } = deps;
  const pipeline = mapping.name;
  // No progress or phase of a run is reported after its run-finished: a reader still winding
  // down after a Stop (its last row group, on the calling thread) would otherwise report
  // progress under a run already shown as cancelled. Warnings still go out (the runner's
  // "retrying in ..." follows the failed attempt's run-finished); a new run-started (a
  // retry) opens the stream again.
  let ended = false;
  const emit = (event: PhaseEvent): void => {
    if (event.type === 'run-started') ended = false;
    else if (ended && (event.type === 'progress' || event.type === 'phase')) return;
    if (event.type === 'run-finished') ended = true;
    opts.onEvent?.({ ...event, at: Date.now() } as SyncEvent);
  };
  let lease: Pick<RunGuard, 'lost'> | undefined;
  const classify = (e: unknown): SyncError => {
    // After a Stop, the in-flight statement is cut off with its connection: a lost
    // connection then is the cancel, not a fault.
    if (isAbort(e) || (opts.signal?.aborted && (!isSyncError(e) || e.kind === 'connection'))) return new SyncError('cancelled', `Sync of pipeline "${pipeline}" was cancelled.`, { retry: 'manual', hint: 'Run it again to resume from the last checkpoint.' });
    const err = target.classifyError(e);
    // A run whose lease was taken over has its connections cut off; the statement that then
    // fails (one in flight, or the next one on a connection cut while idle in its
    // transaction: "not queryable") fails because of the take-over. Classified as a lost
    // connection it would be retried, and the retry would find the other run's work done.
    const lost = err.kind === 'connection' ? lease?.lost?.() : undefined;
    return lost ?? err;
  };
  return {
    ...deps,
    pipeline,
    signal: opts.signal,
    emit,
    warn: (message, into) => {
      into?.push(message);
      emit({ type: 'warning', message });
    },
    phase: (phase, detail) => emit({ type: 'phase', phase, ...(detail === undefined ? {} : { detail }) }),
    progress: new ProgressMeter(emit),
    classify,
    holdLease: (guard) => {
      lease = guard;
    },
    fail: async (runId, dbRunId, e, committed) => {
      const err = classify(e);
      const status = err.kind === 'cancelled' ? 'cancelled' : 'failed';
      logger.error(`pipeline ${pipeline}: ${err.message}`);
      await target.runLog.finish(dbRunId, { status, error: { message: err.message, kind: err.kind, retry: err.retry, ...(err.hint ? { hint: err.hint } : {}) } }).catch(() => undefined);
      emit({ type: 'run-finished', runId, status, checkpointVersion: committed, rowsApplied: 0, error: err.message });
      return err;
    },
  };
}

export function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const e = new Error('The operation was aborted');
    e.name = 'AbortError';
    throw e;
  }
}
