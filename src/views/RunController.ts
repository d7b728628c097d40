/**
 * Owns the one sync run at a time: its AbortController and its progress snapshot.
 * Plain TS; the extension listens to `onSnapshot` to post to the Progress panel and to
 * set the `deltaSync.running` context key.
 */
import { idleProgress, type ProgressSnapshot } from '../protocol/messages';
import { SyncError } from '../sync/errors';
import type { SyncEvent, SyncMode } from '../sync/ports/events';
import { foldEvent } from './ProgressModel';
import { toProtocolError } from './toProtocolError';

/** What the engine's runner must look like to be driven from the UI. */
export type RunFn = (signal: AbortSignal, onEvent: (e: SyncEvent) => void) => Promise<void>;

export class RunController {
  private snapshot: ProgressSnapshot;
  private abort: AbortController | undefined;
  /** The mapping file of the mapping that runs, so an error naming one of its keys carries it (Open Setting). */
  private file: string | undefined;
  private readonly listeners = new Set<(s: ProgressSnapshot, terminal: boolean) => void>();

  constructor(private readonly now: () => number = Date.now) {
    this.snapshot = idleProgress(now());
  }

  current(): ProgressSnapshot {
    return this.snapshot;
  }

  get running(): boolean {
    return this.abort !== undefined;
  }

  /** `terminal` is true for the last snapshot of a run (post it without throttling). */
  onSnapshot(listener: (s: ProgressSnapshot, terminal: boolean) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /**
   * Runs `run` unless another run is active (SyncError 'usage'). Resolves when the run
   * ends; a failure rejects after the snapshot shows it. `file`: the mapping's file, where
   * a setting the error names is opened from the Progress panel.
   */
  async start(mapping: string, mode: SyncMode | 'dry-run' | 'repair', run: RunFn, file?: string): Promise<void> {
    if (this.abort) {
      throw new SyncError('usage', `A sync is already running (${this.snapshot.mapping ?? 'unknown'}).`, {
        hint: 'Stop it first (Delta Sync: Stop Sync).',
      });
    }
    const abort = new AbortController();
    this.abort = abort;
    this.file = file;
    this.set({ ...idleProgress(this.now()), mapping, mode, status: 'running', startedAt: this.now() }, false);
    try {
      await run(abort.signal, (e) => this.set(foldEvent(this.snapshot, e), false));
      // The run's own run-finished decides (a Stop that came after the load committed did
      // not cancel it); without one, a Stop means cancelled.
      const folded = this.snapshot.status;
      const status = folded === 'succeeded' || folded === 'failed' || folded === 'cancelled' ? folded : abort.signal.aborted ? 'cancelled' : 'succeeded';
      this.set({ ...this.snapshot, status, etaSeconds: null, ...(status === 'succeeded' ? {} : { percent: null }), updatedAt: this.now() }, true);
    } catch (e) {
      const cancelled = abort.signal.aborted || (e instanceof SyncError && e.kind === 'cancelled');
      this.set({ ...this.snapshot, status: cancelled ? 'cancelled' : 'failed', error: cancelled ? null : toProtocolError(e, this.file), etaSeconds: null, percent: null, updatedAt: this.now() }, true);
      if (!cancelled) throw e;
    } finally {
      this.abort = undefined;
    }
  }

  /**
   * Within an active run of several mappings (Sync All): the next mapping starts, so the
   * snapshot starts afresh under its name; nothing of the previous mapping's run (its phase,
   * rows, status) is shown under the new name. No-op when nothing runs.
   */
  next(mapping: string, mode: SyncMode, file?: string): void {
    if (!this.abort) return;
    this.file = file;
    this.set({ ...idleProgress(this.now()), mapping, mode, status: 'running', startedAt: this.now() }, false);
  }

  /**
   * Within an active run of several mappings: the current mapping failed before its runner
   * reported an end (refused before it started: no key, a bad source). The snapshot shows it
   * failed with its error, as a run's own failure would. Also after its runner reported the
   * failure: the error is then the classified one (hint, the setting it names), not only
   * the message the runner's event carried.
   */
  failed(error: unknown): void {
    if (!this.abort) return;
    this.set({ ...this.snapshot, status: 'failed', error: toProtocolError(error, this.file), etaSeconds: null, percent: null, updatedAt: this.now() }, true);
  }

  /** Asks the active run to stop; returns false when nothing runs. */
  stop(): boolean {
    if (!this.abort) return false;
    // A run that already reported its end (committed, failed) keeps that status.
    if (this.snapshot.status === 'running') this.set({ ...this.snapshot, status: 'stopping', updatedAt: this.now() }, false);
    this.abort.abort(new SyncError('cancelled', 'Stopped by the user.'));
    return true;
  }

  private set(s: ProgressSnapshot, terminal: boolean): void {
    this.snapshot = s;
    for (const l of this.listeners) l(s, terminal);
  }
}
