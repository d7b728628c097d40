import type { Pool, PoolClient } from 'pg';
import { SyncError } from '../errors';
import type { Logger } from '../ports/Logger';
import type { RunGuard } from '../ports/Target';
import { ensureStateTables, latestRunningRun, markAbandonedRuns, releaseRunLock, tryRunLock } from './stateTables';

/**
 * One run per pipeline at a time. On a server, a run holds the pipeline's session-level
 * advisory lock on a connection of its own until it ends (a killed process's session ends
 * and frees it), so a free lock means no live run. On the sandbox (one process owns the
 * database, and its pool hands out one connection at a time, so a lock connection held for
 * the whole run would starve the run itself) a per-process registry stands in for the lock.
 */

/**
 * Pipelines with a run in progress in this process, for targets where a run lock
 * connection is not possible (the sandbox): pipeline name -> when it started.
 */
const localRuns = new Map<string, { startedAt: Date; runId?: bigint }>();

export interface RunGuardDeps {
  pool: Pool;
  /** Whether runs hold their lock on a connection of their own (a server pool with room for it). */
  lockConnection: boolean;
  connect(): Promise<PoolClient>;
  withClient<T>(fn: (c: PoolClient) => Promise<T>): Promise<T>;
  tableLabel: string;
  logger: Logger;
}

/**
 * Makes sure no other run of the pipeline is live, and marks runs left 'running' by a
 * dead process as 'abandoned'. If a live run holds the pipeline, fails at once.
 */
export async function acquireRunGuard(d: RunGuardDeps, pipeline: string): Promise<RunGuard> {
  if (!d.lockConnection) {
    const live = localRuns.get(pipeline);
    if (live) throw runInProgress(pipeline, d.tableLabel, live.startedAt.toISOString(), live.runId);
    const entry: { startedAt: Date; runId?: bigint } = { startedAt: new Date() };
    localRuns.set(pipeline, entry);
    try {
      const abandoned = await d.withClient(async (c) => {
        await ensureStateTables(c);
        return markAbandonedRuns(c, pipeline);
      });
      return {
        abandoned,
        release: async () => void (localRuns.get(pipeline) === entry && localRuns.delete(pipeline)),
      };
    } catch (e) {
      localRuns.delete(pipeline);
      throw e;
    }
  }
  const c = await d.connect();
  // A checked-out client has no error listener: without one, the session dying while the
  // run works on other connections would crash the process. The run's own connections
  // report such a failure.
  let lost: Error | undefined;
  const onError = (e: Error): void => {
    lost = e;
    d.logger.warn(`pipeline ${pipeline}: the run lock connection failed: ${e.message}`);
  };
  c.on('error', onError);
  let given = false;
  const giveBack = (err?: Error): void => {
    if (given) return;
    given = true;
    c.removeListener('error', onError);
    c.release(err);
  };
  try {
    await ensureStateTables(c);
    // A killed run's session ends a moment after its process: give it that moment.
    let locked = false;
    for (let attempt = 0; attempt < 6 && !locked; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
      locked = await tryRunLock(c, pipeline);
    }
    if (!locked) {
      const running = await latestRunningRun(c, pipeline);
      giveBack();
      throw runInProgress(pipeline, d.tableLabel, running?.startedAt, running?.runId);
    }
    const abandoned = await markAbandonedRuns(c, pipeline);
    return {
      abandoned,
      release: async () => {
        if (lost) return giveBack(lost);
        try {
          await releaseRunLock(c, pipeline);
          giveBack();
        } catch (e) {
          // Destroying the connection ends the session, which frees the lock too.
          giveBack(e instanceof Error ? e : new Error(String(e)));
        }
      },
    };
  } catch (e) {
    giveBack(lost ?? (e instanceof Error ? e : new Error(String(e))));
    throw e;
  }
}

/** Sandbox: remembers a run's id, for the message a concurrent run of its pipeline gets. */
export function noteLocalRunId(pipeline: string, id: bigint): void {
  const entry = localRuns.get(pipeline);
  if (entry) entry.runId = id;
}

/**
 * Marks runs left 'running' by a dead process as 'abandoned' when it can tell (the run
 * lock is free; on the sandbox, no run of the pipeline in this process).
 */
export async function reapAbandonedRuns(c: PoolClient, lockConnection: boolean, pipeline: string): Promise<void> {
  if (!lockConnection) {
    if (!localRuns.has(pipeline)) await markAbandonedRuns(c, pipeline);
    return;
  }
  if (!(await tryRunLock(c, pipeline))) return;
  try {
    await markAbandonedRuns(c, pipeline);
  } finally {
    await releaseRunLock(c, pipeline);
  }
}

/** Whether a live run holds the pipeline now (without taking it for long). */
export async function runIsLive(c: PoolClient, lockConnection: boolean, pipeline: string): Promise<boolean> {
  if (!lockConnection) return localRuns.has(pipeline);
  if (!(await tryRunLock(c, pipeline))) return true;
  await releaseRunLock(c, pipeline);
  return false;
}

function runInProgress(pipeline: string, table: string, startedAt: string | undefined, runId: bigint | undefined): SyncError {
  const detail = [startedAt ? `started at ${startedAt}` : undefined, runId !== undefined ? `run #${runId}` : undefined].filter(Boolean).join(', ');
  return new SyncError('target', `Another run of pipeline "${pipeline}" is in progress${detail ? ` (${detail})` : ''}.`, {
    table,
    retry: 'manual',
    hint: 'Wait for it to finish (or stop it), then sync again.',
  });
}
