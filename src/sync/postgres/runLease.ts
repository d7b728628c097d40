import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { ClientBase } from 'pg';
import { ABANDONED_RUN_ERROR, CHECKPOINT_JSON, STATE_SCHEMA, checkpointFromJson, finishRunSql } from './stateTables';
import type { CheckpointJson } from './stateTables';
import type { Checkpoint } from '../ports/targetTypes';
import { beginTransaction } from './transaction';

/**
 * The run lease: a row in `delta_neon_sync.run_leases` that a run holds while it works,
 * renewed by a heartbeat, deleted at the end. A row rather than a session advisory lock,
 * because behind a transaction pooler (PgBouncer in transaction mode, Neon's `-pooler`
 * endpoints) a session lock is taken on whichever server connection runs that statement and
 * stays there, held for a client that never comes back to it. Each statement here is one
 * autocommit statement, so it means the same through any pooler.
 *
 * A lease whose holder stopped renewing (stalled, killed, cut off) expires and can be taken
 * over; one whose holder is a process of this machine that no longer exists is taken over
 * at once (a killed CLI run does not block the next one for the lease's length).
 */

/** Who holds a lease, as stored with it. */
export interface LeaseHolder {
  /** For messages: `pid 1234 on host h (user u)`. */
  description: string;
  host: string;
  pid: number;
  /** Host, boot and process namespace: pids are comparable only within one scope. */
  scope: string;
}

export interface LeaseRow {
  token: string;
  runId: bigint | null;
  holder: string;
  host: string;
  pid: number;
  scope: string;
  acquiredAt: string;
  renewedAt: string;
  expiresAt: string;
  expired: boolean;
  /** The started_at of the run the lease names, when it names one. */
  runStartedAt: string | null;
}

const LEASES = `"${STATE_SCHEMA}"."run_leases"`;

function readTrimmed(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

function readLink(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '';
  }
}

let self: LeaseHolder | undefined;

/** This process, as a lease holder. */
export function thisProcess(): LeaseHolder {
  if (self) return self;
  const host = os.hostname();
  let user = '';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (some containers): the description goes without it.
  }
  const scope = [host, readTrimmed('/proc/sys/kernel/random/boot_id'), readLink('/proc/self/ns/pid')].join('|');
  self = { description: `pid ${process.pid} on host ${host}${user ? ` (user ${user})` : ''}`, host, pid: process.pid, scope };
  return self;
}

/**
 * Whether the lease's holder is known to be gone: a process of this machine (same host,
 * boot and pid namespace) that no longer exists or is a zombie. Unknown (another machine,
 * another container) is not gone: such a lease is left to expire.
 */
export function holderIsGone(lease: Pick<LeaseRow, 'scope' | 'pid'>): boolean {
  const me = thisProcess();
  if (lease.scope !== me.scope || !me.scope.includes('|pid:[')) return false;
  if (lease.pid === me.pid) return false;
  try {
    process.kill(lease.pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
  // Killed but not reaped yet by its parent: gone all the same.
  const stat = readTrimmed(`/proc/${lease.pid}/stat`);
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === 'Z' || state === 'X';
}

export function newLeaseToken(): string {
  return randomUUID();
}

/** Takes the pipeline's lease if nobody holds it; true when taken. */
export async function insertLease(c: ClientBase, pipeline: string, token: string, holder: LeaseHolder, leaseMs: number): Promise<boolean> {
  const r = await c.query(
    `INSERT INTO ${LEASES} (pipeline, token, holder, holder_host, holder_pid, holder_scope, acquired_at, renewed_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp(), clock_timestamp(), clock_timestamp() + $7::int8 * interval '1 millisecond')
     ON CONFLICT (pipeline) DO NOTHING RETURNING token`,
    [pipeline, token, holder.description, holder.host, holder.pid, holder.scope, String(Math.round(leaseMs))],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * insertLease, and when it takes the lease, in the same statement (one round trip), marks
 * the pipeline's runs still 'running' as abandoned (markAbandonedRuns: no live run can
 * exist once the lease is ours). Returns whether it was taken and the runs marked.
 */
export async function insertLeaseReaping(c: ClientBase, pipeline: string, token: string, holder: LeaseHolder, leaseMs: number): Promise<LeaseTaken> {
  const q = insertLeaseReapingQuery(pipeline, token, holder, leaseMs);
  const r = await c.query<LeaseTakenRow>(q.text, q.values);
  return leaseTakenFromRow(r.rows[0]);
}

/** What insertLeaseReaping tells: whether the lease was taken, the runs marked abandoned, the checkpoint (null: none). */
export interface LeaseTaken {
  taken: boolean;
  abandoned: bigint[];
  checkpoint: Checkpoint | null;
}

interface LeaseTakenRow {
  taken: boolean;
  abandoned: Array<bigint | string>;
  checkpoint: CheckpointJson | null;
}

/** insertLeaseReaping's statement ($1..$8), for a caller that sends it in another statement's round trip. */
export function insertLeaseReapingQuery(pipeline: string, token: string, holder: LeaseHolder, leaseMs: number): { text: string; values: unknown[] } {
  return {
    text: `WITH l AS (INSERT INTO ${LEASES} (pipeline, token, holder, holder_host, holder_pid, holder_scope, acquired_at, renewed_at, expires_at)
                VALUES ($1, $2, $3, $4, $5::int4, $6, clock_timestamp(), clock_timestamp(), clock_timestamp() + $7::int8 * interval '1 millisecond')
                ON CONFLICT (pipeline) DO NOTHING RETURNING token),
          a AS (UPDATE "${STATE_SCHEMA}"."runs" SET status = 'abandoned', error = $8, finished_at = clock_timestamp()
                 WHERE pipeline = $1 AND status = 'running' AND EXISTS (SELECT 1 FROM l) RETURNING run_id::int8 AS run_id)
     SELECT EXISTS (SELECT 1 FROM l) AS taken, ARRAY(SELECT run_id FROM a ORDER BY run_id) AS abandoned,
            (SELECT ${CHECKPOINT_JSON} FROM "${STATE_SCHEMA}"."checkpoints" AS k WHERE k.pipeline = $1) AS checkpoint`,
    values: [pipeline, token, holder.description, holder.host, holder.pid, holder.scope, String(Math.round(leaseMs)), ABANDONED_RUN_ERROR],
  };
}

/** insertLeaseReapingQuery's row, read. */
export function leaseTakenFromRow(row: unknown): LeaseTaken {
  const r = row as LeaseTakenRow | undefined;
  return { taken: r?.taken === true, abandoned: (r?.abandoned ?? []).map((x) => BigInt(x)), checkpoint: r?.checkpoint ? checkpointFromJson(r.checkpoint) : null };
}

/**
 * Gives the lease back and records how its run ended, in one statement (one round trip):
 * finishRun's update of the run, and deleteLease. For a run that ends once the statement
 * is done (a run that succeeded).
 */
export async function finishRunReleasing(c: ClientBase, runId: bigint, result: Parameters<typeof finishRunSql>[1], pipeline: string, token: string): Promise<void> {
  const q = finishRunReleasingQuery(runId, result, pipeline, token);
  await c.query(q.text, q.values);
}

/** finishRunReleasing's statement (for a caller that sends it in the last data transaction, see commitWithCheckpoint's `after`). */
export function finishRunReleasingQuery(runId: bigint, result: Parameters<typeof finishRunSql>[1], pipeline: string, token: string): { text: string; values: unknown[] } {
  const q = finishRunSql(runId, result);
  return { text: `WITH f AS (${q.text}), g AS (DELETE FROM ${LEASES} WHERE pipeline = $9 AND token = $10) SELECT 1`, values: [...q.values, pipeline, token] };
}

/** The pipeline's lease as stored, with whether it expired by the server's clock. */
export async function readLease(c: ClientBase, pipeline: string): Promise<LeaseRow | undefined> {
  const exists = await c.query<{ t: string | null }>(`SELECT to_regclass($1)::text AS t`, [LEASES]);
  if (!exists.rows[0]?.t) return undefined;
  const r = await c.query<{
    token: string; run_id: bigint | null; holder: string; holder_host: string; holder_pid: number; holder_scope: string;
    acquired_at: string; renewed_at: string; expires_at: string; expired: boolean; run_started_at: string | null;
  }>(
    `SELECT l.token, l.run_id::int8 AS run_id, l.holder, l.holder_host, l.holder_pid, l.holder_scope,
            l.acquired_at::text AS acquired_at, l.renewed_at::text AS renewed_at, l.expires_at::text AS expires_at,
            l.expires_at < clock_timestamp() AS expired, r.started_at::text AS run_started_at
       FROM ${LEASES} l LEFT JOIN "${STATE_SCHEMA}"."runs" r ON r.run_id = l.run_id
      WHERE l.pipeline = $1`,
    [pipeline],
  );
  const x = r.rows[0];
  if (!x) return undefined;
  return {
    token: x.token,
    runId: x.run_id === null ? null : BigInt(x.run_id),
    holder: x.holder,
    host: x.holder_host,
    pid: x.holder_pid,
    scope: x.holder_scope,
    acquiredAt: x.acquired_at,
    renewedAt: x.renewed_at,
    expiresAt: x.expires_at,
    expired: x.expired,
    runStartedAt: x.run_started_at,
  };
}

/**
 * Takes over the lease `old` (expired, or its holder gone) if it is still that lease: a
 * compare-and-swap on its token, so of two runs taking over the same lease one wins.
 */
export async function takeOverLease(c: ClientBase, pipeline: string, old: LeaseRow, token: string, holder: LeaseHolder, leaseMs: number, holderGone: boolean): Promise<boolean> {
  // In a transaction of its own for the limits (lock_timeout): a holder committing a batch
  // share-locks the row until its commit (writeCheckpoint), and this waits for that.
  await beginTransaction(c);
  try {
    const taken = await takeOver(c, pipeline, old, token, holder, leaseMs, holderGone);
    await c.query('COMMIT');
    return taken;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

async function takeOver(c: ClientBase, pipeline: string, old: LeaseRow, token: string, holder: LeaseHolder, leaseMs: number, holderGone: boolean): Promise<boolean> {
  const r = await c.query(
    `UPDATE ${LEASES} SET token = $3, run_id = NULL, holder = $4, holder_host = $5, holder_pid = $6, holder_scope = $7,
            acquired_at = clock_timestamp(), renewed_at = clock_timestamp(), expires_at = clock_timestamp() + $8::int8 * interval '1 millisecond'
      WHERE pipeline = $1 AND token = $2 AND (expires_at < clock_timestamp() OR $9::boolean)`,
    [pipeline, old.token, token, holder.description, holder.host, holder.pid, holder.scope, String(Math.round(leaseMs)), holderGone],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Extends the lease held with `token`; false when it is no longer ours (taken over). */
export async function renewLease(c: ClientBase, pipeline: string, token: string, leaseMs: number): Promise<boolean> {
  const r = await c.query(
    `UPDATE ${LEASES} SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + $3::int8 * interval '1 millisecond'
      WHERE pipeline = $1 AND token = $2`,
    [pipeline, token, String(Math.round(leaseMs))],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Gives the lease back; false when it was no longer ours (taken over, or deleted), so nothing was given back. */
export async function deleteLease(c: ClientBase, pipeline: string, token: string): Promise<boolean> {
  const r = await c.query(`DELETE FROM ${LEASES} WHERE pipeline = $1 AND token = $2`, [pipeline, token]);
  return (r.rowCount ?? 0) > 0;
}
