/**
 * The extension's continuous and scheduled syncs (issue 14, points 1-2): several mappings
 * watched at once, each through the engine's `watchPipeline` (the loop `sync --watch` and
 * `sync --every` run, not a second one), one connection pool per target connection shared by
 * every watch writing there. Plain TS (no vscode) so it runs in unit and integration tests;
 * the views render `WatchStatus` through `watchPhrase` / `watchBarLook`.
 */
import { SyncError } from '../sync/errors';
import type { Mapping } from '../sync/mapping/mappingSchema';
import type { ChangeSource } from '../sync/ports/ChangeSource';
import type { SyncEvent } from '../sync/ports/events';
import type { RunResult } from '../sync/ports/reports';
import { formatDuration } from '../sync/run/duration';
import type { SyncRunner } from '../sync/run/SyncRunner';
import { watchPipeline } from '../sync/run/watch';

/** Where a watch stands. `failed` is a stop by an error that is not retried (`manual`/`never`). */
export type WatchState =
  | { phase: 'starting' }
  | { phase: 'watching' }
  | { phase: 'applying'; fromVersion: number | null; toVersion: number }
  | { phase: 'backing-off'; error: SyncError; retryInMs: number; attempt: number }
  /** A follow watch whose polls would start stopped compute (a Databricks SQL warehouse): new versions are not looked for. */
  | { phase: 'waiting'; reason: string }
  | { phase: 'stopped' }
  | { phase: 'failed'; error: SyncError };

export interface WatchStatus {
  /** The mapping file (one watch per file). */
  key: string;
  mapping: string;
  /** `follow`: every new version (Start Continuous Sync); `schedule`: a sync every interval (Run Every…). */
  mode: 'follow' | 'schedule';
  intervalMs: number;
  state: WatchState;
  /** The version the target holds after the watch's last run; null before its first. */
  lastVersion: number | null;
  /** Commit of `lastVersion` -> visible in the target, in ms; null when not measured. */
  lagMs: number | null;
  /** Runs that applied something (or, when scheduled, every run). */
  runs: number;
  /** The source's state check failed, so polls run without it (they may start a stopped warehouse). */
  warning?: string;
}

export interface WatchTarget {
  readonly pool: unknown;
  release(): Promise<void>;
}

export interface WatchRunner {
  runner: SyncRunner;
  source: ChangeSource;
  /** Closes the source; the shared target stays open. */
  release(): Promise<void>;
}

export interface ContinuousSyncsDeps<T extends WatchTarget> {
  /** Opens a pool on a mapping's `target.connection` (one per connection while watches use it). */
  openTarget(connection: string): Promise<T>;
  /** A runner for `mapping` writing through `target`. */
  openRunner(mapping: Mapping, target: T): Promise<WatchRunner>;
  /** Let a follow watch's polls start a stopped Databricks SQL warehouse (`deltaSync.continuous.wakeWarehouse`); read at each start. */
  wakeWarehouse?(): boolean;
  /** Backoff of retried errors (default: watchPipeline's, 1 s doubling up to 60 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/** What the views follow: every state change, each applied run, the end of a watch. */
export interface WatchListener {
  /** Every state change of a watch (the status bar, the tree). */
  onChange?(status: WatchStatus): void;
  /** A run of a watch applied something. */
  onApplied?(status: WatchStatus, result: RunResult): void;
  /** The watch ended; `error` when an error stopped it (show it with its hint). */
  onStopped?(status: WatchStatus, error: SyncError | undefined): void;
  /** Events of the watch's runs. */
  onEvent?(key: string, event: SyncEvent): void;
}

export interface WatchStartOptions {
  mode: 'follow' | 'schedule';
  intervalMs: number;
  /** The first run may delete past safety.maxDeleteShare (Delete Anyway after the guard stopped the watch); later runs are checked. */
  allowMassDeleteOnce?: boolean;
}

interface Entry {
  status: WatchStatus;
  abort: AbortController;
  done: Promise<void>;
}

export class ContinuousSyncs<T extends WatchTarget> {
  private readonly entries = new Map<string, Entry>();
  private readonly pools = new Map<string, { target: Promise<T>; refs: number }>();
  private readonly listeners = new Set<WatchListener>();
  private disposed = false;

  constructor(private readonly deps: ContinuousSyncsDeps<T>) {}

  subscribe(listener: WatchListener): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private emit(fn: (l: WatchListener) => void): void {
    for (const l of this.listeners) fn(l);
  }

  /** Every watch that has not ended. */
  list(): WatchStatus[] {
    return [...this.entries.values()].map((e) => e.status);
  }

  get(key: string): WatchStatus | undefined {
    return this.entries.get(key)?.status;
  }

  /**
   * Starts a watch of `mapping` (keyed by its file); refused while one runs for that file.
   * Returns at once: the watch's first run is an ordinary sync (an initial load when there is
   * no checkpoint), and `done` settles when the watch ends (never rejects).
   */
  start(key: string, mapping: Mapping, opts: WatchStartOptions): { done: Promise<void> } {
    if (this.disposed) throw new SyncError('usage', 'Delta Sync is shutting down.');
    const running = this.entries.get(key);
    if (running) {
      throw new SyncError('usage', `${mapping.name} is already ${running.status.mode === 'follow' ? 'watched' : `scheduled every ${formatDuration(running.status.intervalMs)}`}.`, {
        hint: 'Stop it first (Delta Sync: Stop Continuous Sync).',
      });
    }
    const status: WatchStatus = { key, mapping: mapping.name, mode: opts.mode, intervalMs: opts.intervalMs, state: { phase: 'starting' }, lastVersion: null, lagMs: null, runs: 0 };
    const abort = new AbortController();
    const entry: Entry = { status, abort, done: Promise.resolve() };
    this.entries.set(key, entry);
    entry.done = this.run(entry, mapping, opts);
    return { done: entry.done };
  }

  /** Stops the watch of `key` (the batch in flight rolls back) and waits for it to end; false when none runs. */
  async stop(key: string): Promise<boolean> {
    const e = this.entries.get(key);
    if (!e) return false;
    e.abort.abort(new SyncError('cancelled', 'Continuous sync stopped by the user.'));
    await e.done;
    return true;
  }

  /** Stops every watch and closes the pools (deactivate). */
  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.all([...this.entries.keys()].map((k) => this.stop(k)));
  }

  private set(entry: Entry, patch: Partial<WatchStatus>): void {
    entry.status = { ...entry.status, ...patch };
    this.emit((l) => l.onChange?.(entry.status));
  }

  private async run(entry: Entry, mapping: Mapping, opts: WatchStartOptions): Promise<void> {
    let error: SyncError | undefined;
    const connection = mapping.target.connection;
    try {
      const target = await this.acquire(connection);
      try {
        const h = await this.deps.openRunner(mapping, target);
        try {
          this.set(entry, { state: { phase: 'watching' } });
          const summary = await watchPipeline({
            runner: h.runner,
            source: h.source,
            localTablePath: mapping.source.type === 'delta' ? mapping.source.path : undefined,
            mode: opts.mode,
            intervalMs: opts.intervalMs,
            signal: entry.abort.signal,
            backoffMs: this.deps.backoffMs,
            wakeSource: this.deps.wakeWarehouse?.() === true,
            onPollState: (ps) => {
              if (ps.phase === 'waiting') this.set(entry, { state: { phase: 'waiting', reason: ps.reason } });
              else this.set(entry, { state: { phase: 'watching' }, warning: ps.phase === 'unchecked' ? ps.warning : undefined });
            },
            maxBackoffMs: this.deps.maxBackoffMs,
            ...(opts.allowMassDeleteOnce ? { allowMassDeleteOnce: true } : {}),
            run: {
              onEvent: (ev) => {
                if (ev.type === 'run-started') this.set(entry, { state: { phase: 'applying', fromVersion: ev.fromVersion, toVersion: ev.toVersion } });
                else if (ev.type === 'run-finished' && !entry.abort.signal.aborted) this.set(entry, { state: { phase: 'watching' } });
                this.emit((l) => l.onEvent?.(entry.status.key, ev));
              },
            },
            onApplied: (r, { lagMs }) => {
              this.set(entry, { lastVersion: r.toVersion, lagMs, runs: entry.status.runs + 1, state: { phase: 'watching' } });
              this.emit((l) => l.onApplied?.(entry.status, r));
            },
            onRetry: (err, delayMs, attempt) => this.set(entry, { state: { phase: 'backing-off', error: err, retryInMs: delayMs, attempt } }),
          });
          if (summary.lastVersion !== null) this.set(entry, { lastVersion: summary.lastVersion });
        } finally {
          await h.release();
        }
      } finally {
        await this.releasePool(connection);
      }
    } catch (e) {
      if (!entry.abort.signal.aborted) error = e instanceof SyncError ? e : new SyncError('target', e instanceof Error ? e.message : String(e), { cause: e, retry: 'manual' });
    }
    this.entries.delete(entry.status.key);
    this.set(entry, { state: error ? { phase: 'failed', error } : { phase: 'stopped' } });
    this.emit((l) => l.onStopped?.(entry.status, error));
  }

  private acquire(connection: string): Promise<T> {
    let p = this.pools.get(connection);
    if (!p) {
      const target = this.deps.openTarget(connection);
      p = { target, refs: 0 };
      this.pools.set(connection, p);
      // A failed open is not kept: the next watch tries again.
      target.catch(() => {
        if (this.pools.get(connection)?.target === target) this.pools.delete(connection);
      });
    }
    p.refs++;
    return p.target;
  }

  private async releasePool(connection: string): Promise<void> {
    const p = this.pools.get(connection);
    if (!p || --p.refs > 0) return;
    this.pools.delete(connection);
    await (await p.target).release();
  }

  /** Open pools (tests: one per target connection). */
  get openPools(): number {
    return this.pools.size;
  }
}

/** "watching · v12 · lag 0.8 s" (the Mappings tree row and the status bar). */
export function watchPhrase(s: WatchStatus): string {
  const version = s.lastVersion === null ? [] : [`v${s.lastVersion}`];
  const lag = s.lagMs === null ? [] : [`lag ${formatDuration(s.lagMs)}`];
  const what = s.mode === 'follow' ? 'watching' : `every ${formatDuration(s.intervalMs)}`;
  switch (s.state.phase) {
    case 'starting':
      return `${what} · starting`;
    case 'watching':
      return [what, ...version, ...lag].join(' · ');
    case 'applying':
      return [`applying v${s.state.fromVersion === null || s.state.fromVersion === s.state.toVersion ? s.state.toVersion : `${s.state.fromVersion}..${s.state.toVersion}`}`, ...version].join(' · ');
    case 'backing-off':
      return [`backing off · retry in ${formatDuration(s.state.retryInMs)}`, ...version].join(' · ');
    case 'waiting':
      return [`waiting for the warehouse`, ...version].join(' · ');
    case 'stopped':
      return ['stopped', ...version].join(' · ');
    case 'failed':
      return [`stopped · ${s.state.error.kind} error`, ...version].join(' · ');
  }
}

export interface WatchBarLook {
  visible: boolean;
  text: string;
  tooltip: string;
  error: boolean;
}

/**
 * The status bar item over every watch: one watch shows its mapping and phrase, several a
 * count and the worst of them (an error first, then backing off, then applying). `last` is the
 * watch that ended last, shown while none runs when an error stopped it.
 */
export function watchBarLook(watches: readonly WatchStatus[], last?: WatchStatus): WatchBarLook {
  const tooltipOf = (s: WatchStatus): string => {
    const lines = [`${s.mapping}: ${watchPhrase(s)}`];
    if (s.state.phase === 'backing-off' || s.state.phase === 'failed') lines.push(`${s.state.error.message}${s.state.error.hint ? ` (${s.state.error.hint})` : ''}`);
    if (s.state.phase === 'waiting') lines.push(`${s.state.reason}; a poll would start it, so new versions are not looked for until it runs again. Start it, or set deltaSync.continuous.wakeWarehouse to let each poll start it.`);
    if (s.warning) lines.push(`Warning: ${s.warning}.`);
    return lines.join('\n');
  };
  const click = 'Click to show the Progress panel.';
  if (watches.length === 0) {
    if (last?.state.phase !== 'failed') return { visible: false, text: '', tooltip: '', error: false };
    return { visible: true, text: `$(error) ${last.mapping}: ${watchPhrase(last)}`, tooltip: `Delta Sync: continuous sync stopped with an error\n${tooltipOf(last)}\n${click}`, error: true };
  }
  const rank = (s: WatchStatus): number => ({ failed: 5, 'backing-off': 4, waiting: 3, applying: 2, starting: 1, watching: 0, stopped: 0 })[s.state.phase];
  const worst = [...watches].sort((a, b) => rank(b) - rank(a))[0] as WatchStatus;
  const icon = worst.state.phase === 'backing-off' || worst.state.phase === 'waiting' ? '$(warning)' : worst.state.phase === 'applying' ? '$(sync~spin)' : '$(eye)';
  const text = watches.length === 1 ? `${icon} ${worst.mapping}: ${watchPhrase(worst)}` : `${icon} ${watches.length} continuous syncs · ${worst.mapping}: ${watchPhrase(worst)}`;
  return { visible: true, text, tooltip: ['Delta Sync: continuous sync', ...watches.map(tooltipOf), click].join('\n'), error: false };
}
