import * as fs from 'node:fs';
import * as path from 'node:path';
import { SyncError } from '../errors';
import type { ChangeSource, PollReadiness } from '../ports/ChangeSource';
import type { RunOptions, RunResult } from '../ports/reports';
import type { SyncRunner } from './SyncRunner';

/**
 * Continuous and scheduled sync of one mapping (issue 14): a loop around SyncRunner.run,
 * so every new version is applied exactly as a one-off incremental sync applies it (same
 * transactions, same checkpoint). No vscode here: the CLI's `sync --watch` / `--every` use
 * it and the extension can later.
 *
 * - `follow` (watch): loads when there is no checkpoint, then waits for a new version:
 *   a local Delta source wakes on a change in its `_delta_log` folder (fs.watch, debounced),
 *   with polling every `intervalMs` as the floor and the fallback where watching fails;
 *   other sources (Databricks) poll `latestVersion()` (one history read) every
 *   `intervalMs` and run only when it moved. A source with `polling` (Databricks) is asked
 *   before each poll whether one can run without starting stopped compute; while it cannot,
 *   the poll is skipped (unless `wakeSource`) and `onPollState` says the watch is waiting.
 * - `schedule` (every): runs a sync every `intervalMs`, whatever the source says.
 *
 * Errors: a `retry: 'auto'` error (after the runner's own retries) is retried with backoff
 * doubling from `backoffMs` up to `maxBackoffMs`, forever; a `manual`/`never` error stops
 * the loop and is thrown. Aborting `signal` cuts off the batch in flight (the runner rolls
 * it back) or the wait, and the loop returns normally: a stop is not a failure.
 */
export interface WatchOptions {
  runner: SyncRunner;
  source: ChangeSource;
  /** The local Delta table folder, when the source is one: its `_delta_log` is watched. */
  localTablePath?: string;
  mode: 'follow' | 'schedule';
  /** The poll floor (`follow`) or the period (`schedule`); `follow` without it: watchIntervalMs's default. */
  intervalMs?: number;
  signal: AbortSignal;
  /** Passed to each run (progress events, retry budget). */
  run?: Pick<RunOptions, 'onEvent' | 'retryForMs' | 'backoffMs'>;
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Quiet period after a `_delta_log` change before reading it (a commit writes several files). */
  debounceMs?: number;
  /**
   * The watch's first run may delete more than safety.maxDeleteShare (the user confirmed a
   * refused mass delete and resumes the watch); the allowance ends with the first run that
   * succeeds, so every later version is checked again.
   */
  allowMassDeleteOnce?: boolean;
  /** One call per run that applied something (or, with `schedule`, per run). */
  onApplied?(r: RunResult, info: { lagMs: number | null }): void;
  /** A run failed with an error that is retried: what and when. */
  onRetry?(err: SyncError, delayMs: number, attempt: number): void;
  /**
   * Poll even when the source's `polling.readiness()` says a poll would start stopped
   * compute (a Databricks SQL warehouse): `--wake-warehouse`, the extension's setting.
   */
  wakeSource?: boolean;
  /** The source's poll state, each time it changes (waiting for stopped compute, or its check failing, and back). */
  onPollState?(state: PollState): void;
}

/** Where a follow watch's polls stand: `waiting` means new versions are not being looked for. */
export type PollState = { phase: 'polling' } | { phase: 'waiting'; reason: string } | { phase: 'unchecked'; warning: string };

/** The poll interval of a watch on `source`: the user's, else the source's default (30 s for Databricks), else 1 s. */
export function watchIntervalMs(source: ChangeSource, givenMs: number | undefined): number {
  return givenMs ?? source.polling?.defaultIntervalMs ?? 1_000;
}

function pollState(r: PollReadiness): PollState {
  if (!r.ready) return { phase: 'waiting', reason: r.reason };
  return r.warning ? { phase: 'unchecked', warning: r.warning } : { phase: 'polling' };
}

function samePollState(a: PollState, b: PollState): boolean {
  return a.phase === b.phase && (a.phase !== 'waiting' || a.reason === (b as { reason: string }).reason) && (a.phase !== 'unchecked' || a.warning === (b as { warning: string }).warning);
}

export interface WatchSummary {
  runs: number;
  lastVersion: number | null;
}

export async function watchPipeline(opts: WatchOptions): Promise<WatchSummary> {
  const { signal } = opts;
  const intervalMs = watchIntervalMs(opts.source, opts.intervalMs);
  const waker = opts.mode === 'follow' && opts.localTablePath ? new LogWaker(path.join(opts.localTablePath, '_delta_log'), opts.debounceMs ?? 100) : undefined;
  let lastVersion: number | null = null;
  let runs = 0;
  let failures = 0;
  let pending = true; // run at once on start
  let allowMassDelete = opts.allowMassDeleteOnce === true;
  let polled: PollState = { phase: 'polling' };
  /** Asks the source's readiness (unless told to wake it); false: skip this poll. */
  const mayPoll = async (): Promise<boolean> => {
    const polling = opts.source.polling;
    if (!polling || opts.wakeSource) return true;
    const now = pollState(await polling.readiness());
    if (!samePollState(now, polled)) opts.onPollState?.(now);
    polled = now;
    return now.phase !== 'waiting';
  };
  try {
    while (!signal.aborted) {
      if (!pending) {
        await waitFor(intervalMs, signal, waker);
        if (signal.aborted) break;
      }
      pending = false;
      try {
        if (opts.mode === 'follow' && lastVersion !== null) {
          if (!(await mayPoll()) || signal.aborted) continue;
          const latest = await opts.source.latestVersion();
          if (latest <= lastVersion) {
            failures = 0;
            continue;
          }
        }
        const r = await opts.runner.run({ ...opts.run, signal, ...(allowMassDelete ? { allowMassDelete: true } : {}) });
        allowMassDelete = false;
        runs++;
        failures = 0;
        lastVersion = r.toVersion;
        if (opts.mode === 'schedule' || runs === 1 || r.status === 'succeeded') {
          opts.onApplied?.(r, { lagMs: r.status === 'succeeded' ? await lagOf(opts.source, r.toVersion) : null });
        }
        // A version committed while the batch ran: pick it up without waiting.
        if (opts.mode === 'follow') pending = (await opts.source.latestVersion()) > r.toVersion;
      } catch (e) {
        if (signal.aborted) break;
        const err = e instanceof SyncError ? e : new SyncError('target', e instanceof Error ? e.message : String(e), { cause: e, retry: 'manual' });
        if (err.retry !== 'auto') throw err;
        failures++;
        const delay = Math.min((opts.backoffMs ?? 1_000) * 2 ** (failures - 1), opts.maxBackoffMs ?? 60_000);
        opts.onRetry?.(err, delay, failures + 1);
        await waitFor(delay, signal, undefined);
        pending = true;
      }
    }
  } finally {
    waker?.close();
  }
  return { runs, lastVersion };
}

/** now - the commit time of `version`; null when the source cannot say. */
async function lagOf(source: ChangeSource, version: number): Promise<number | null> {
  try {
    return Date.now() - (await source.commitTimestamp(version));
  } catch {
    return null;
  }
}

/** Waits `ms`, or less when the log changes or the signal aborts. */
function waitFor(ms: number, signal: AbortSignal, waker: LogWaker | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      waker?.off(done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    waker?.on(done);
  });
}

/**
 * Watches a `_delta_log` folder and calls its listeners once the folder has been quiet for
 * `debounceMs` after a change. A change that came while nobody listened is kept and
 * delivered to the next listener at once. When fs.watch is unavailable or fails (network
 * file systems, too many watchers) it stays silent and the caller's polling does the work.
 */
class LogWaker {
  private watcher: fs.FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private listener: (() => void) | undefined;
  private changed = false;

  constructor(dir: string, private readonly debounceMs: number) {
    try {
      this.watcher = fs.watch(dir, () => this.onChange());
      this.watcher.on('error', () => this.close());
    } catch {
      this.watcher = undefined;
    }
  }

  private onChange(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.changed = true;
      this.fire();
    }, this.debounceMs);
  }

  private fire(): void {
    if (!this.changed || !this.listener) return;
    this.changed = false;
    const l = this.listener;
    this.listener = undefined;
    l();
  }

  on(listener: () => void): void {
    this.listener = listener;
    this.fire();
  }

  off(listener: () => void): void {
    if (this.listener === listener) this.listener = undefined;
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
