import type { AutoSaid } from '../ports/events';
import type { RunError, RunRecord } from '../ports/runLog';
import type { ClientBase } from 'pg';
import { SyncError } from '../errors';
import { beginTransaction, inlineParameters } from './transaction';
import type { CheckpointInput, Checkpoint, RunMode, RunStatus } from '../ports/targetTypes';

/** Schema holding the engine's own state in the target database. */

/** The hint of a run refused because its pipeline's checkpoint moved under it (at the apply's opening or its COMMIT). */
export const CHECKPOINT_MOVED_HINT =
  'Another run (or a change by hand) advanced this pipeline since this run read its checkpoint; nothing of this run was applied. Sync again: the next run starts from the checkpoint where it is now (`status` shows it).';

export const STATE_SCHEMA = 'delta_neon_sync';

/** The engine's state tables, in the order they are created. */
export const STATE_TABLES = ['checkpoints', 'runs', 'dead_letters', 'run_leases'] as const;
export type StateTable = (typeof STATE_TABLES)[number];

const S = `"${STATE_SCHEMA}"`;

/**
 * The DDL of each state table (with its index). Run only for what is missing: CREATE ...
 * IF NOT EXISTS still checks the right to create first, so a role an admin gave only the
 * rights to use existing state tables (docs: Least privilege) would be refused.
 */
const STATE_TABLE_DDL: Record<StateTable, string> = {
  checkpoints: `CREATE TABLE IF NOT EXISTS ${S}."checkpoints" (
  pipeline text PRIMARY KEY,
  source text NOT NULL,
  version bigint NOT NULL,
  commit_timestamp timestamptz,
  applied_rows bigint NOT NULL DEFAULT 0,
  finished_at timestamptz NOT NULL DEFAULT now()
)`,
  runs: `CREATE TABLE IF NOT EXISTS ${S}."runs" (
  run_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pipeline text NOT NULL,
  mode text NOT NULL,
  from_version bigint,
  to_version bigint,
  rows bigint,
  status text NOT NULL DEFAULT 'running',
  error text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS runs_pipeline_started_idx ON ${S}."runs" (pipeline, started_at DESC)`,
  dead_letters: `CREATE TABLE IF NOT EXISTS ${S}."dead_letters" (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pipeline text NOT NULL,
  key jsonb,
  "row" jsonb,
  sqlstate text,
  message text NOT NULL,
  version bigint,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dead_letters_pipeline_idx ON ${S}."dead_letters" (pipeline, at DESC)`,
  // The run lease: one row per pipeline while a run holds it (see runLease.ts). A row, not a
  // session advisory lock, so it means the same through a transaction pooler (PgBouncer).
  run_leases: `CREATE TABLE IF NOT EXISTS ${S}."run_leases" (
  pipeline text PRIMARY KEY,
  token text NOT NULL,
  run_id bigint,
  holder text NOT NULL,
  holder_host text NOT NULL,
  holder_pid integer NOT NULL,
  holder_scope text NOT NULL,
  acquired_at timestamptz NOT NULL,
  renewed_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
)`,
};

/** How a failed run failed, beyond its message (added after the first release: ADD IF NOT EXISTS). */
const RUNS_ERROR_COLUMNS = `ALTER TABLE ${S}."runs" ADD COLUMN IF NOT EXISTS error_kind text,
  ADD COLUMN IF NOT EXISTS error_retry text, ADD COLUMN IF NOT EXISTS error_hint text`;

/**
 * The highest version whose changes were ever committed since the last initial load: a
 * checkpoint set back by hand re-applies versions up to it, whose inserts find their keys
 * already there (added later: ADD IF NOT EXISTS; NULL on old rows means "version").
 */
const CHECKPOINTS_APPLIED_THROUGH = `ALTER TABLE ${S}."checkpoints" ADD COLUMN IF NOT EXISTS applied_through bigint`;

/**
 * Mapping `mode: "auto"`: the path each run took and why (NULL for a run outside mode auto;
 * added later: ADD IF NOT EXISTS). Written by startRun for both paths, so a failed run keeps it.
 */
const RUNS_AUTO_COLUMNS = `ALTER TABLE ${S}."runs" ADD COLUMN IF NOT EXISTS auto_path text, ADD COLUMN IF NOT EXISTS auto_reason text`;

/** What of the engine's state exists in the database (read from the catalogs). */
export interface StateShape {
  schema: boolean;
  tables: Set<StateTable>;
  /** The runs and checkpoints tables have the columns this version writes. */
  current: boolean;
}

/**
 * Which of the state schema and tables exist, and whether the runs table is current. From
 * pg_namespace and pg_class, not to_regclass: that refuses a schema the role has no USAGE
 * on, and this must tell such a role what it lacks (requiredGrants).
 */
export async function stateShape(client: ClientBase): Promise<StateShape> {
  const r = await client.query<{ state_schema: boolean; state_tables: string[]; state_current: boolean }>(
    `SELECT ${stateShapeColumns('$1', '$2')}`,
    [STATE_SCHEMA, [...STATE_TABLES]],
  );
  const row = r.rows[0] ?? { state_schema: false, state_tables: [], state_current: false };
  return { schema: row.state_schema, tables: new Set(row.state_tables.filter((t): t is StateTable => (STATE_TABLES as readonly string[]).includes(t))), current: row.state_current };
}

/**
 * The select-list columns state_schema, state_tables and state_current of stateShape, with
 * `schema` and `tables` the placeholders of the state schema's name and the table names
 * (so the rights check reads them in its own statement).
 */
export function stateShapeColumns(schema: string, tables: string): string {
  return `EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ${schema}) AS state_schema,
            ARRAY(SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'p') AND c.relname = ANY(${tables}::text[])) AS state_tables,
            EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = ${schema} AND c.relname = 'runs' AND a.attname = 'error_hint' AND NOT a.attisdropped)
            AND EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = ${schema} AND c.relname = 'checkpoints' AND a.attname = 'applied_through' AND NOT a.attisdropped)
            AND EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = ${schema} AND c.relname = 'runs' AND a.attname = 'auto_reason' AND NOT a.attisdropped) AS state_current`;
}

function complete(shape: StateShape): boolean {
  return shape.schema && shape.tables.size === STATE_TABLES.length && shape.current;
}

/**
 * Creates what is missing of the state schema and tables, and nothing else: a schema an
 * admin created is used as it is (CREATE SCHEMA would need CREATE on the database), tables
 * that exist are not touched. Call on a client that is NOT inside a transaction: it runs
 * its own, serialized by an advisory lock so two first runs do not race on CREATE ... IF
 * NOT EXISTS (which is not concurrency-safe in Postgres).
 */
export async function ensureStateTables(client: ClientBase): Promise<void> {
  if (complete(await stateShape(client))) return;
  await beginTransaction(client);
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('delta_neon_sync.state_tables'))`);
    // Again under the lock: another first run may have created them meanwhile.
    const shape = await stateShape(client);
    if (!shape.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${S}`);
    for (const t of STATE_TABLES) if (!shape.tables.has(t)) await client.query(STATE_TABLE_DDL[t]);
    if (!shape.current) {
      await client.query(RUNS_ERROR_COLUMNS);
      await client.query(CHECKPOINTS_APPLIED_THROUGH);
      await client.query(RUNS_AUTO_COLUMNS);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

interface CheckpointRow {
  pipeline: string;
  source: string;
  version: bigint;
  commit_timestamp: string | null;
  applied_rows: bigint;
  finished_at: string;
}

/** The pipeline's checkpoint, or undefined when it never completed a load. */
export async function readCheckpoint(client: ClientBase, pipeline: string): Promise<Checkpoint | undefined> {
  // One round trip: read, and take a missing schema or table (no state yet) as no checkpoint.
  // Call outside a transaction (the failed statement would abort it).
  let r;
  try {
    r = await client.query<CheckpointRow>(
      `SELECT pipeline, source, version::int8 AS version, commit_timestamp::text AS commit_timestamp, applied_rows::int8 AS applied_rows, finished_at::text AS finished_at
         FROM "${STATE_SCHEMA}"."checkpoints" WHERE pipeline = $1`,
      [pipeline],
    );
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === '42P01' || code === '3F000') return undefined;
    throw e;
  }
  const row = r.rows[0];
  if (!row) return undefined;
  return {
    pipeline: row.pipeline,
    source: row.source,
    version: BigInt(row.version),
    commitTimestamp: row.commit_timestamp,
    appliedRows: BigInt(row.applied_rows),
    finishedAt: row.finished_at,
  };
}

function commitTimestampParam(ts: number | string | null): string | null {
  if (ts === null) return null;
  return typeof ts === 'number' ? new Date(ts).toISOString() : ts;
}

/**
 * The checkpoint upsert (call inside the transaction that wrote the data) as a statement
 * that fails unless it wrote the row: with a lease token, only while that lease is still
 * held (the row is share-locked until the commit, so a take-over waits for it). A lease
 * taken over makes it divide by zero (22012), which checkpointError turns into what
 * happened; so it can share a round trip with the COMMIT, which the server then skips.
 */
function checkpointStatement(cp: CheckpointInput, appliedRows: number | bigint, expect?: bigint | null): { text: string; values: unknown[] } {
  return {
    text: `WITH w AS (
       INSERT INTO "${STATE_SCHEMA}"."checkpoints" AS c (pipeline, source, version, commit_timestamp, applied_rows, finished_at, applied_through)
       SELECT $1::text, $2::text, $3::int8, $4::timestamptz, $5::int8, clock_timestamp(), $3::int8
        WHERE $6::text IS NULL OR EXISTS (SELECT 1 FROM "${STATE_SCHEMA}"."run_leases" WHERE pipeline = $1::text AND token = $6::text FOR SHARE)
       ON CONFLICT (pipeline) DO UPDATE SET source = excluded.source, version = excluded.version,
         commit_timestamp = excluded.commit_timestamp, applied_rows = excluded.applied_rows, finished_at = excluded.finished_at,
         applied_through = CASE WHEN $7::bool THEN excluded.version ELSE GREATEST(c.applied_through, c.version, excluded.version) END
        WHERE NOT $8::bool OR c.version IS NOT DISTINCT FROM $9::int8
       RETURNING 1)
     SELECT CASE WHEN (SELECT count(*) FROM w) = 1 THEN 1 -- (the lease fence divides by the empty count: a constant 1 / 0 the planner would fold)
                 WHEN $6::text IS NULL OR EXISTS (SELECT 1 FROM "${STATE_SCHEMA}"."run_leases" WHERE pipeline = $1::text AND token = $6::text)
                   THEN ('${MOVED_PREFIX}' || COALESCE((SELECT version::text FROM "${STATE_SCHEMA}"."checkpoints" WHERE pipeline = $1::text), 'none'))::int
                 ELSE 1 / (SELECT count(*)::int FROM w) END AS written`,
    values: [cp.pipeline, cp.source, String(cp.version), commitTimestampParam(cp.commitTimestamp), String(appliedRows), cp.leaseToken ?? null, cp.reload === true, expect !== undefined, expect == null ? null : String(expect)],
  };
}

/** How the checkpoint statement says the stored version is not the one the transaction started from (a cast error, 22P02). */
const MOVED_PREFIX = 'delta_neon_sync: checkpoint at version ';

/**
 * What a failed checkpointStatement means: the lease taken over (22012), the checkpoint
 * moved by someone else since the transaction's check (22P02 naming the version), else `e`.
 */
function checkpointError(e: unknown, cp: CheckpointInput, expect?: bigint | null): unknown {
  const code = (e as { code?: unknown }).code;
  const moved = code === '22P02' && typeof (e as { message?: unknown }).message === 'string' ? new RegExp(`${MOVED_PREFIX}(\\d+|none)`).exec((e as { message: string }).message) : null;
  if (moved) {
    return new SyncError('target', `The checkpoint of pipeline "${cp.pipeline}" is at version ${moved[1]}, expected ${expect ?? 'none'}; nothing was applied.`, {
      version: Number(cp.version),
      retry: 'manual',
      hint: CHECKPOINT_MOVED_HINT,
    });
  }
  if (code !== '22012') return e;
  return new SyncError('target', `The run lease of pipeline "${cp.pipeline}" was taken over by another run before this run committed version ${cp.version}; nothing of this batch was applied.`, {
    version: Number(cp.version),
    retry: 'manual',
    setting: 'run_lease_timeout',
    hint: 'This run stalled (or lost its connection) for longer than its lease; the run that took over continues from the last checkpoint (see status). If runs stall that long on purpose, raise run_lease_timeout=<seconds> in the connection string.',
  });
}

/**
 * Upserts the checkpoint; call inside the transaction that wrote the data. With a lease
 * token, only while that lease is still held: else throws, and the caller rolls the batch back.
 */
export async function writeCheckpoint(client: ClientBase, cp: CheckpointInput, appliedRows: number | bigint): Promise<void> {
  const q = checkpointStatement(cp, appliedRows);
  try {
    await client.query(q.text, q.values);
  } catch (e) {
    throw checkpointError(e, cp);
  }
}

/**
 * Ends the caller's transaction: upserts the checkpoint, with the rows that transaction
 * wrote, and COMMITs, so the data and the checkpoint it describes become visible together;
 * one round trip (the checkpoint's values inlined, a simple query of two statements: a
 * refused checkpoint fails the first, and the server skips the COMMIT). The one place a
 * checkpoint is committed (ApplyStream, initialLoad). On a failure the caller rolls back.
 * `expect` (ApplyStream: the version its transaction checked under the pipeline's lock):
 * the stored version must still be that (null: no checkpoint), or nothing commits, so a
 * checkpoint moved meanwhile by anyone who did not take the lock (by hand) fails the commit.
 * `before`: statements (no parameters) sent first in the same query, e.g. the transaction's
 * BEGIN and its last statements, when nothing needs their results; `after`: statements sent
 * after the checkpoint's, in its transaction (the run's end, finishRunReleasingSql), which
 * then commit with it or not at all.
 */
export async function commitWithCheckpoint(client: ClientBase, cp: CheckpointInput, appliedRows: number | bigint, expect?: bigint | null, before: readonly string[] = [], after: readonly string[] = []): Promise<void> {
  const q = checkpointStatement(cp, appliedRows, expect);
  const inlined = inlineParameters(q.text, q.values);
  try {
    if (inlined === undefined) {
      for (const statement of before) await client.query(statement);
      await client.query(q.text, q.values);
      for (const statement of after) await client.query(statement);
      await client.query('COMMIT');
      return;
    }
    await client.query([...before, inlined, ...after, 'COMMIT'].join(';\n'));
  } catch (e) {
    throw checkpointError(e, cp, expect);
  }
}

/** Records a run's start (outside the data transaction, so failures are kept). Returns the run id. */
export async function startRun(
  client: ClientBase,
  run: { pipeline: string; mode: RunMode; fromVersion?: number | bigint | null; toVersion?: number | bigint | null; auto?: AutoSaid },
  leaseToken?: string,
): Promise<bigint> {
  // With the run's lease token, the lease row names the run in the same statement, so
  // whoever is refused by the lease is told which run holds it.
  const r = await client.query<{ run_id: bigint }>(
    `WITH r AS (INSERT INTO "${STATE_SCHEMA}"."runs" (pipeline, mode, from_version, to_version, auto_path, auto_reason) VALUES ($1, $2, $3::int8, $4::int8, $6, $7) RETURNING run_id),
          l AS (UPDATE "${STATE_SCHEMA}"."run_leases" SET run_id = (SELECT run_id FROM r) WHERE pipeline = $1 AND token = $5)
     SELECT run_id FROM r`,
    [run.pipeline, run.mode, run.fromVersion == null ? null : String(run.fromVersion), run.toVersion == null ? null : String(run.toVersion), leaseToken ?? null, run.auto?.path ?? null, run.auto?.reason ?? null],
  );
  return BigInt((r.rows[0] as { run_id: bigint }).run_id);
}

/** Records how a run ended. */
export async function finishRun(client: ClientBase, runId: bigint, result: RunEnd): Promise<void> {
  const q = finishRunSql(runId, result);
  await client.query(q.text, q.values);
}

type RunEnd = { status: RunStatus; rows?: number | bigint; error?: string | RunError; toVersion?: number | bigint | null };

/** finishRun's statement, its parameters $1..$8. */
export function finishRunSql(runId: bigint, result: RunEnd): { text: string; values: unknown[] } {
  const error = typeof result.error === 'string' ? { message: result.error } : result.error;
  return {
    text: `UPDATE "${STATE_SCHEMA}"."runs" SET status = $2, rows = COALESCE($3::int8, rows), error = $4,
       to_version = COALESCE($5::int8, to_version), error_kind = $6, error_retry = $7, error_hint = $8, finished_at = clock_timestamp() WHERE run_id = $1::int8`,
    values: [
      String(runId), result.status, result.rows == null ? null : String(result.rows), error?.message ?? null, result.toVersion == null ? null : String(result.toVersion),
      error?.kind ?? null, error?.retry ?? null, error?.hint ?? null,
    ],
  };
}

/** A checkpoint row as json (alias k), read in another statement's round trip (the run lease's): bigints as text. */
export const CHECKPOINT_JSON = `json_build_object('pipeline', k.pipeline, 'source', k.source, 'version', k.version::text, 'commit_timestamp', k.commit_timestamp::text,
  'applied_rows', k.applied_rows::text, 'finished_at', k.finished_at::text)`;

export interface CheckpointJson {
  pipeline: string;
  source: string;
  version: string;
  commit_timestamp: string | null;
  applied_rows: string;
  finished_at: string;
}

export function checkpointFromJson(j: CheckpointJson): Checkpoint {
  return { pipeline: j.pipeline, source: j.source, version: BigInt(j.version), commitTimestamp: j.commit_timestamp, appliedRows: BigInt(j.applied_rows), finishedAt: j.finished_at };
}

/** The pipeline's latest runs, newest first. */
export async function recentRuns(client: ClientBase, pipeline: string, limit: number): Promise<RunRecord[]> {
  const r = await client.query<{
    run_id: unknown; mode: string; from_version: unknown; to_version: unknown; rows: unknown; status: string; error: string | null;
    error_kind: string | null; error_retry: string | null; error_hint: string | null; started_at: string; finished_at: string | null;
    auto_path: string | null; auto_reason: string | null;
  }>(
    `SELECT run_id, mode, from_version, to_version, rows, status, error, error_kind, error_retry, error_hint, auto_path, auto_reason,
            started_at::text AS started_at, finished_at::text AS finished_at
       FROM "${STATE_SCHEMA}"."runs" WHERE pipeline = $1 ORDER BY run_id DESC LIMIT $2`,
    [pipeline, limit],
  );
  const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
  return r.rows.map((x) => ({
    runId: String(x.run_id),
    mode: x.mode,
    fromVersion: str(x.from_version),
    toVersion: str(x.to_version),
    rows: str(x.rows),
    status: x.status,
    error: x.error,
    errorDetail: x.error === null ? null : {
      message: x.error,
      ...(x.error_kind ? { kind: x.error_kind } : {}),
      ...(x.error_retry === 'auto' || x.error_retry === 'manual' || x.error_retry === 'never' ? { retry: x.error_retry } : {}),
      ...(x.error_hint ? { hint: x.error_hint } : {}),
    },
    startedAt: x.started_at,
    finishedAt: x.finished_at,
    ...((x.auto_path === 'incremental' || x.auto_path === 'snapshot') && x.auto_reason !== null ? { auto: { path: x.auto_path, reason: x.auto_reason } } : {}),
  }));
}

export interface DeadLetterInput {
  pipeline: string;
  keyJson: string | null;
  rowJson: string | null;
  sqlstate: string | null;
  message: string;
  version: number | bigint | null;
}

/** Writes dead letters (inside the caller's transaction, so they commit with the data). */
export async function writeDeadLetters(client: ClientBase, letters: readonly DeadLetterInput[]): Promise<void> {
  if (letters.length === 0) return;
  await client.query(
    `INSERT INTO "${STATE_SCHEMA}"."dead_letters" (pipeline, key, "row", sqlstate, message, version)
     SELECT * FROM unnest($1::text[], $2::jsonb[], $3::jsonb[], $4::text[], $5::text[], $6::int8[])`,
    [
      letters.map((l) => l.pipeline),
      letters.map((l) => l.keyJson),
      letters.map((l) => l.rowJson),
      letters.map((l) => l.sqlstate),
      letters.map((l) => l.message),
      letters.map((l) => (l.version == null ? null : String(l.version))),
    ],
  );
}

/** The `error` text of an abandoned run. */
export const ABANDONED_RUN_ERROR = 'the process running it stopped before it finished (killed or lost its connection)';

/** The pipeline's latest run still marked 'running', if any. */
export async function latestRunningRun(client: ClientBase, pipeline: string): Promise<{ runId: bigint; startedAt: string } | undefined> {
  const r = await client.query<{ run_id: bigint; started_at: string }>(
    `SELECT run_id::int8 AS run_id, started_at::text AS started_at FROM "${STATE_SCHEMA}"."runs"
      WHERE pipeline = $1 AND status = 'running' ORDER BY run_id DESC LIMIT 1`,
    [pipeline],
  );
  const row = r.rows[0];
  return row ? { runId: BigInt(row.run_id), startedAt: row.started_at } : undefined;
}

/**
 * Marks the pipeline's 'running' runs 'abandoned' (finished now, error ABANDONED_RUN_ERROR).
 * Call only when no live run of the pipeline can exist: while holding its run lease, or on
 * a single-process target. Returns the ids marked.
 */
export async function markAbandonedRuns(client: ClientBase, pipeline: string): Promise<bigint[]> {
  const r = await client.query<{ run_id: bigint }>(
    `UPDATE "${STATE_SCHEMA}"."runs" SET status = 'abandoned', error = $2, finished_at = clock_timestamp()
      WHERE pipeline = $1 AND status = 'running' RETURNING run_id::int8 AS run_id`,
    [pipeline, ABANDONED_RUN_ERROR],
  );
  return r.rows.map((x) => BigInt(x.run_id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
