import type { PoolClient, QueryResult } from 'pg';
import { SyncError } from '../errors';
import type { Logger } from '../ports/Logger';
import type { RunGuard } from '../ports/Target';
import { deleteLease, holderIsGone, insertLease, insertLeaseReaping, insertLeaseReapingQuery, leaseTakenFromRow, newLeaseToken, readLease, renewLease, takeOverLease, thisProcess } from './runLease';
import type { LeaseHolder, LeaseRow, LeaseTaken } from './runLease';
import { isWireClient, pipelinedQuery } from './copyRows';
import { beginSql, inlineParameters } from './transaction';
import type { Checkpoint } from '../ports/targetTypes';
import { ensureStateTables, markAbandonedRuns } from './stateTables';

/**
 * One run per pipeline at a time. On a server, a run holds the pipeline's lease (a row in
 * the state tables, see runLease.ts) until it ends, renewing it on a heartbeat; a lease its
 * holder stopped renewing expires and the next run takes it over. Nothing is held by a
 * session, so it works the same through a transaction pooler. On the sandbox (one process
 * owns the database, and its pool hands out one connection at a time, so a heartbeat would
 * wait behind the run itself) a per-process registry stands in for the lease.
 */

/** How long a lease lasts without renewal, and how often its holder renews it. */
export interface LeaseTiming {
  leaseMs: number;
  renewMs: number;
}

export const LEASE_DEFAULTS: LeaseTiming = { leaseMs: 60_000, renewMs: 10_000 };

/**
 * Pipelines with a run in progress in this process, for targets where a lease with a
 * heartbeat is not possible (the sandbox): pipeline name -> when it started.
 */
const localRuns = new Map<string, { startedAt: Date; runId?: bigint }>();

/**
 * Tokens of the leases runs of this process hold now. A lease row naming this process
 * whose token is not here belongs to none of its runs: one whose release could not be
 * deleted (the server was down or the connection lost when the run ended) or whose delete
 * a server crash lost (synchronous_commit=off). This process's next run of the pipeline (a
 * retry after a restart, the next batch of a watch) takes it over at once instead of
 * waiting for it to expire behind its own, still running, pid.
 */
const heldHere = new Set<string>();

export interface RunGuardDeps {
  /** Whether runs hold a lease in the database (a server); else the per-process registry (the sandbox). */
  lease: boolean;
  timing: LeaseTiming;
  withClient<T>(fn: (c: PoolClient) => Promise<T>): Promise<T>;
  /** Called when the heartbeat finds the lease taken over: the run must stop, failing with `err`. */
  onLost(err: SyncError): void;
  tableLabel: string;
  logger: Logger;
  /**
   * True when the state schema and tables were just seen complete (the rights check that
   * precedes a run reads the same catalog facts): their check is then skipped, one round
   * trip. Tables dropped in between make the lease statement fail, and the run's retry checks again.
   */
  stateKnownComplete?: () => boolean;
  /**
   * Read-only statements that go in the lease's round trip (the rights check's catalog
   * facts, the table's description), whose results `take` reads before anything else is
   * decided. `take` may refuse the run (missing rights): the lease, when it was taken, is
   * given back and the refusal thrown, before any other statement; so the rights are named
   * before the run writes anything but its lease, and a held lease is reported only to a
   * role that could run. When the round trip cannot be shared (the state tables missing or
   * out of date, the sandbox's client, a statement that fails), `alone` runs them on their
   * own first and the lease is taken as without them.
   */
  company?: LeaseCompany;
}

/** See RunGuardDeps.company. */
export interface LeaseCompany {
  statements: ReadonlyArray<{ text: string; values: readonly unknown[] }>;
  take(c: PoolClient, results: readonly QueryResult[]): Promise<void>;
  alone(c: PoolClient): Promise<void>;
}

/** A run's guard, with the lease token runLog.start records the run id under. */
export interface HeldRunGuard extends RunGuard {
  token?: string;
  /**
   * For a caller that deletes the lease row itself, in a statement of its own (the run
   * log's finish of a run that succeeded): stops the heartbeat and marks the guard released
   * without a statement. False when the lease was already released or lost (nothing to hand over).
   */
  handOver?: () => boolean;
}

/**
 * Makes sure no other run of the pipeline is live, and marks runs left 'running' by a
 * dead or stalled process as 'abandoned'. If a live run holds the pipeline, fails at once
 * naming it and its holder.
 */
export async function acquireRunGuard(d: RunGuardDeps, pipeline: string): Promise<HeldRunGuard> {
  if (!d.lease) {
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
  const me = thisProcess();
  const token = newLeaseToken();
  // Counted as held before it is taken, so no other run of this process mistakes it for a leftover.
  heldHere.add(token);
  const taken: { notice: string | undefined; abandoned?: bigint[]; checkpoint?: Checkpoint | null } = await d.withClient(async (c) => {
    // The common case, a free pipeline: the lease, the abandoned runs and the checkpoint in
    // one round trip, with the company's statements (the rights check) when they can share it.
    const shared = d.company ? await leaseWithCompany(c, d.company, pipeline, token, me, d.timing.leaseMs) : undefined;
    if (!shared) {
      await d.company?.alone(c);
      if (d.stateKnownComplete?.() !== true) await ensureStateTables(c);
    } else if (d.stateKnownComplete?.() !== true) {
      // Tables out of date (a column this version writes is missing): brought up to date
      // now (the rights check passed, so the role may).
      await ensureStateTables(c);
    }
    // Bounded: each round either takes the lease or sees it held by a live run; a round is
    // repeated only when the lease changed hands between reading and taking it.
    for (let round = 0; round < 5; round++) {
      if (round === 0) {
        const first = shared ?? (await insertLeaseReaping(c, pipeline, token, me, d.timing.leaseMs));
        if (first.taken) return { notice: undefined, abandoned: first.abandoned, checkpoint: first.checkpoint };
      } else if (await insertLease(c, pipeline, token, me, d.timing.leaseMs)) return { notice: undefined };
      const old = await readLease(c, pipeline);
      if (!old) continue; // released in between
      const ours = old.scope === me.scope && old.pid === me.pid && !heldHere.has(old.token);
      const gone = !old.expired && (ours || holderIsGone(old));
      if (!old.expired && !gone) throw heldBy(pipeline, d.tableLabel, old);
      if (await takeOverLease(c, pipeline, old, token, me, d.timing.leaseMs, gone)) {
        return { notice: ours ? undefined : takeOverNotice(pipeline, old, gone) };
      }
    }
    throw new SyncError('target', `Could not take the run lease of pipeline "${pipeline}": it kept changing hands.`, {
      table: d.tableLabel,
      retry: 'auto',
      hint: 'Other runs of this pipeline are starting at the same moment; sync again once they are done.',
    });
  }).catch((e: unknown) => {
    heldHere.delete(token);
    throw e;
  });
  let released = false;
  let lost: SyncError | undefined;
  let renewing = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    heldHere.delete(token);
    clearInterval(timer);
    if (lost) return;
    try {
      // Nothing to give back: another run took the lease over before the heartbeat saw it
      // (this run failed first, e.g. on a connection cut while it was stalled). Its failure
      // is that take-over, not something a retry fixes (see lost()).
      if (!(await d.withClient((c) => deleteLease(c, pipeline, token)))) {
        const now = await d.withClient((c) => readLease(c, pipeline)).catch(() => undefined);
        if (now && now.token !== token) lost = leaseLost(pipeline, d.tableLabel, now, d.timing.leaseMs);
      }
    } catch (e) {
      // Left to expire: the next run takes it over after leaseMs (this process's next run at once).
      d.logger.warn(`pipeline ${pipeline}: could not give the run lease back (${e instanceof Error ? e.message : String(e)}); it expires in ${Math.round(d.timing.leaseMs / 1000)} s.`);
    }
  };
  const timer = setInterval(() => {
    if (renewing || released || lost !== undefined) return;
    renewing = true;
    d.withClient((c) => renewLease(c, pipeline, token, d.timing.leaseMs))
      .then(async (ok) => {
        if (ok || released || lost) return;
        clearInterval(timer);
        // Known as lost before anything awaits: a statement failing meanwhile is classified as the take-over.
        lost = leaseLost(pipeline, d.tableLabel, undefined, d.timing.leaseMs);
        const now = await d.withClient((c) => readLease(c, pipeline)).catch(() => undefined);
        const err = leaseLost(pipeline, d.tableLabel, now, d.timing.leaseMs);
        lost = err;
        d.logger.warn(err.message);
        d.onLost(err);
      })
      .catch((e: unknown) => {
        // A missed heartbeat: the next one tries again; the lease lasts several of them.
        d.logger.warn(`pipeline ${pipeline}: could not renew the run lease (${e instanceof Error ? e.message : String(e)}); retrying in ${Math.round(d.timing.renewMs / 1000)} s.`);
      })
      .finally(() => {
        renewing = false;
      });
  }, d.timing.renewMs);
  timer.unref();
  try {
    const abandoned = taken.abandoned ?? (await d.withClient((c) => markAbandonedRuns(c, pipeline)));
    const handOver = (): boolean => {
      if (released || lost) return false;
      released = true;
      heldHere.delete(token);
      clearInterval(timer);
      return true;
    };
    return { abandoned, token, release, handOver, lost: () => lost, ...(taken.notice ? { notice: taken.notice } : {}), ...(taken.checkpoint !== undefined ? { checkpoint: taken.checkpoint } : {}) };
  } catch (e) {
    await release();
    throw e;
  }
}

/**
 * The lease statement (insertLeaseReaping) and `company`'s statements as ONE query, in one
 * transaction with the pool's limits: BEGIN; SET LOCAL ...; the company's; the lease's;
 * COMMIT. Then `company.take` reads their results; when it refuses the run, a lease taken
 * is deleted before the refusal is thrown. Undefined when they could not go together (the
 * sandbox's client, a value that cannot be inlined) or the query failed (the state tables
 * missing or out of date, a right missing): nothing of it stayed, and the caller goes the
 * separate way, which names what failed.
 */
async function leaseWithCompany(c: PoolClient, company: LeaseCompany, pipeline: string, token: string, me: LeaseHolder, leaseMs: number): Promise<LeaseTaken | undefined> {
  if (!isWireClient(c)) return undefined;
  const lease = insertLeaseReapingQuery(pipeline, token, me, leaseMs);
  const texts = [...company.statements, lease].map((q) => inlineParameters(q.text, q.values));
  if (texts.some((t) => t === undefined)) return undefined;
  const begin = beginSql(c).split(';').map((x) => x.trim()).filter((x) => x !== '');
  let results: QueryResult[];
  try {
    results = await pipelinedQuery(c, [...begin, ...(texts as string[]), 'COMMIT'].map((sql) => ({ sql })));
  } catch (e) {
    // The transaction was rolled back by the failure (or is aborted until this ROLLBACK).
    const code = (e as { code?: unknown }).code;
    await c.query('ROLLBACK').catch(() => undefined);
    // What the separate way tells apart (a state table or column missing, a right missing):
    // it checks the rights first, then creates or updates the state tables. Anything else
    // (a lock wait that ended in lock_timeout, a lost connection) fails as it would there,
    // without waiting a second time.
    if (typeof code === 'string' && SEPARATE_WAY.has(code)) return undefined;
    throw e;
  }
  const mine = results.slice(begin.length, begin.length + company.statements.length);
  const taken = leaseTakenFromRow(results[begin.length + company.statements.length]?.rows[0]);
  try {
    await company.take(c, mine);
  } catch (e) {
    // Given back before the refusal is told (if that fails, it expires; this process's next run takes it at once).
    if (taken.taken) await deleteLease(c, pipeline, token).catch(() => undefined);
    throw e;
  }
  return taken;
}

/** SQLSTATEs after which the lease and its company go their separate ways: undefined table, schema, column; insufficient privilege. */
const SEPARATE_WAY = new Set(['42P01', '3F000', '42703', '42501']);

/** Sandbox: remembers a run's id, for the message a concurrent run of its pipeline gets. */
export function noteLocalRunId(pipeline: string, id: bigint): void {
  const entry = localRuns.get(pipeline);
  if (entry) entry.runId = id;
}

/** Whether `lease` belongs to a live run: not expired, and its holder not known to be gone. */
function leaseIsLive(lease: LeaseRow | undefined): boolean {
  return lease !== undefined && !lease.expired && !holderIsGone(lease);
}

/**
 * Marks runs left 'running' by a dead process as 'abandoned' when it can tell (no live
 * lease; on the sandbox, no run of the pipeline in this process).
 */
export async function reapAbandonedRuns(c: PoolClient, lease: boolean, pipeline: string): Promise<void> {
  if (!lease) {
    if (!localRuns.has(pipeline)) await markAbandonedRuns(c, pipeline);
    return;
  }
  if (!leaseIsLive(await readLease(c, pipeline))) await markAbandonedRuns(c, pipeline);
}

/** Whether a live run holds the pipeline now (reads only). */
export async function runIsLive(c: PoolClient, lease: boolean, pipeline: string): Promise<boolean> {
  if (!lease) return localRuns.has(pipeline);
  return leaseIsLive(await readLease(c, pipeline));
}

function heldBy(pipeline: string, table: string, lease: LeaseRow): SyncError {
  const err = runInProgress(pipeline, table, lease.runStartedAt ?? lease.acquiredAt, lease.runId ?? undefined);
  return new SyncError('target', `${err.message.replace(/\.$/, '')}, held by ${lease.holder} since ${lease.acquiredAt} (lease renewed at ${lease.renewedAt}, expires at ${lease.expiresAt}).`, {
    table,
    retry: 'manual',
    setting: 'run_lease_timeout',
    hint: `Wait for it to finish (or stop that process), then sync again. A holder that stopped without giving the lease back (killed, stalled, cut off) loses it at ${lease.expiresAt}, when the next run takes over; run_lease_timeout=<seconds> in the connection string sets how long a lease lasts (default ${LEASE_DEFAULTS.leaseMs / 1000}).`,
  });
}

function leaseLost(pipeline: string, table: string, now: LeaseRow | undefined, leaseMs: number): SyncError {
  const by = now ? ` by ${now.holder} at ${now.acquiredAt}` : '';
  return new SyncError('target', `The run lease of pipeline "${pipeline}" was taken over${by}: this run had not renewed it for ${Math.round(leaseMs / 1000)} s (it stalled or lost its connection), so it stopped; nothing of the batch in progress was applied.`, {
    table,
    retry: 'manual',
    setting: 'run_lease_timeout',
    hint: 'The run that took over continues from the last checkpoint (see status). If runs stall that long on purpose, raise run_lease_timeout=<seconds> in the connection string.',
  });
}

function takeOverNotice(pipeline: string, old: LeaseRow, gone: boolean): string {
  const run = old.runId !== null ? `run #${old.runId} of ` : '';
  return gone
    ? `Took over the run lease of ${run}pipeline "${pipeline}" from ${old.holder}: that process no longer exists (it stopped without giving the lease back).`
    : `Took over the run lease of ${run}pipeline "${pipeline}" from ${old.holder}: it was last renewed at ${old.renewedAt} and expired at ${old.expiresAt} (the holder stalled, was killed or lost its connection).`;
}

function runInProgress(pipeline: string, table: string, startedAt: string | undefined, runId: bigint | undefined): SyncError {
  const detail = [startedAt ? `started at ${startedAt}` : undefined, runId !== undefined ? `run #${runId}` : undefined].filter(Boolean).join(', ');
  return new SyncError('target', `Another run of pipeline "${pipeline}" is in progress${detail ? ` (${detail})` : ''}.`, {
    table,
    retry: 'manual',
    hint: 'Wait for it to finish (or stop it), then sync again.',
  });
}
