import type { ClientBase } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Row } from '../delta/types';
import { SyncError } from '../errors';
import { classifyPgError, pgErrorFields } from './classifyPgError';
import { CopyRowEncoder, ValueEncodeError, rowToJson } from './copyEncoder';
import { copyEncoded, copyRows } from './copyRows';
import type { EncodedRows, RowBatches } from './copyRows';
import { deleteUsingStagingSql, softDeleteFromStagingSql, upsertFromStagingSql } from './mergeSql';
import { displayName, qualifiedRef, quoteIdent } from './quoteIdent';
import type { TableRef } from './quoteIdent';
import { renderCreateTable, validateColumns } from './renderCreateTable';
import type { TargetColumn } from './renderCreateTable';
import { markerTargetColumn } from './softDeleteMarker';
import type { SoftDeleteMarker } from './softDeleteMarker';
import { STATE_SCHEMA, writeCheckpoint, writeDeadLetters } from './stateTables';
import type { CheckpointInput, DeadLetterInput } from './stateTables';

export interface ApplyChangesOptions {
  table: TableRef;
  columns: readonly TargetColumn[];
  key: readonly string[];
  /** Net upserts: at most one row per key (several rows for one key fail with 21000). */
  upserts: RowBatches;
  /** Keys to delete: rows holding at least the key columns' source fields. */
  deletes: RowBatches;
  /**
   * With a soft-delete policy: the marker column. Upserts must then carry the live marker
   * (false / null) under the marker's row key; `columns` may list the marker column or
   * not (it is added).
   */
  softDelete?: SoftDeleteMarker;
  /**
   * Keys to soft-delete (key fields plus the marker value under its row key): an UPDATE of
   * the marker where it differs, never an insert. Requires `softDelete`.
   */
  softDeletes?: RowBatches;
  checkpoint: CheckpointInput;
  /** Set rows that violate constraints aside in delta_neon_sync.dead_letters and apply the rest. */
  deadLetter?: boolean;
  /**
   * When given, the stored checkpoint version must equal this (null: no checkpoint yet);
   * otherwise nothing is applied (another run got there first).
   */
  expectVersion?: number | bigint | null;
  /** Staged rows per COPY chunk in dead-letter / dry-run mode (a savepoint each); default 10000. */
  batchRows?: number;
  /**
   * Dry runs only: the transactions a sync commits after this one, in order. Each is
   * applied (and rolled back with the rest) on the state the earlier ones leave, so the
   * counts and refused rows are the sum of what each transaction of the sync would meet.
   */
  later?: AsyncIterable<StagedChanges>;
}

/** The net changes of one transaction: what ApplyChangesOptions carries, and each of `later`. */
export interface StagedChanges {
  upserts: RowBatches;
  deletes: RowBatches;
  /** With a soft-delete marker (see ApplyChangesOptions.softDeletes). */
  softDeletes?: RowBatches;
}

/** A row that Postgres (or the encoder) refused. */
export interface RejectedRow {
  op: 'upsert' | 'delete';
  /** Exact JSON of the key columns (target names). */
  keyJson: string | null;
  /** Exact JSON of the row (target names). */
  rowJson: string | null;
  sqlstate: string | null;
  message: string;
  /** staging: refused while encoding/COPYing (never staged); apply: refused by the target's constraints. */
  phase: 'staging' | 'apply';
}

export interface ApplyResult {
  inserted: number;
  updated: number;
  /** Upserts whose row was already identical. */
  unchanged: number;
  deleted: number;
  /** Deletes (and soft deletes) whose key was not in the target. */
  deleteMissing: number;
  /**
   * Soft deletes that changed the marker. A soft delete whose row already had that marker
   * counts as `unchanged`; one whose key the target lacks, as `deleteMissing`.
   */
  softDeleted?: number;
  /** Rows set aside (dead letters, or the errors a dry run found). */
  rejected: RejectedRow[];
  staged: { upserts: number; deletes: number; softDeletes?: number };
  /** Wall-clock milliseconds per step (for benchmarks and logs). */
  timings?: ApplyTimings;
}

/** Milliseconds spent in each step of one applyChanges call. */
export interface ApplyTimings {
  /** BEGIN, advisory lock, checkpoint check, creating the temp staging tables. */
  prepareMs: number;
  /** Encoding the rows and COPYing them into the staging tables. */
  stageMs: number;
  /** Deletes and soft deletes. */
  deleteMs: number;
  upsertMs: number;
  /** Dead letters, checkpoint and COMMIT (ROLLBACK for a dry run). */
  commitMs: number;
}

const UP: TableRef = { name: 'dns_stage_upserts' };
const DEL: TableRef = { name: 'dns_stage_deletes' };
const SOFT: TableRef = { name: 'dns_stage_soft_deletes' };
const ORD = '__dns_ord';

/** SQLSTATE classes a row can be set aside for: data exceptions (22) and integrity constraints (23). */
function isRowLevel(e: unknown): boolean {
  if (e instanceof ValueEncodeError) return true;
  const code = pgErrorFields(e)?.code ?? '';
  return code.startsWith('22') || code.startsWith('23');
}

/**
 * Applies one batch of net changes and advances the checkpoint in ONE transaction:
 * temp staging tables (ON COMMIT DROP) filled by COPY, `DELETE ... USING` the staged keys,
 * then `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE ... IS DISTINCT FROM` (so
 * re-applying a batch changes nothing), then (soft-delete policy) `UPDATE ... SET marker`
 * for the staged soft deletes where the marker differs, then the checkpoint upsert. Either all of it
 * commits or none (a dropped connection leaves target and checkpoint as they were).
 * `client` must not be inside a transaction; call ensureStateTables once before.
 * On a 'connection' SyncError the client is unusable: release it with the error.
 */
export async function applyChanges(client: ClientBase, opts: ApplyChangesOptions): Promise<ApplyResult> {
  if (!opts.softDelete && opts.softDeletes !== undefined) throw new Error('applyChanges: softDeletes need the softDelete marker option');
  // Dead letters isolate rows under savepoints (run); otherwise one part of an ApplyStream.
  if (opts.deadLetter) return run(client, opts, false);
  const stream = await ApplyStream.begin(client, opts);
  await stream.apply({ upserts: opts.upserts, deletes: opts.deletes, ...(opts.softDeletes ? { softDeletes: opts.softDeletes } : {}) });
  return stream.commit(opts.checkpoint);
}

/**
 * Dry run: everything applyChanges does, inside a transaction that is rolled back. Rows
 * that would fail are reported one by one (savepoints are used only once a whole
 * statement fails, to isolate the failing rows). Nothing is written, not even dead letters.
 */
export async function dryRunChanges(client: ClientBase, opts: ApplyChangesOptions): Promise<ApplyResult> {
  return run(client, { ...opts, deadLetter: true }, true);
}

/** A batch with dead letters or a dry run: rows that fail are isolated under savepoints and set aside. */
async function run(client: ClientBase, opts0: ApplyChangesOptions, dryRun: boolean): Promise<ApplyResult> {
  const marker = opts0.softDelete;
  if (!marker && opts0.softDeletes !== undefined) throw new Error('applyChanges: softDeletes need the softDelete marker option');
  const staging = stagingColumns(opts0.columns, opts0.key, marker);
  const markerCol = staging.softDeletes?.at(-1);
  const opts: ApplyChangesOptions = { ...opts0, columns: staging.upserts };
  validateColumns(opts.columns, opts.key, opts.table);
  const label = displayName(opts.table);
  const keyColumns = staging.deletes;
  const softColumns = staging.softDeletes ?? [];
  const timings: ApplyTimings = { prepareMs: 0, stageMs: 0, deleteMs: 0, upsertMs: 0, commitMs: 0 };
  const result: ApplyResult = {
    inserted: 0, updated: 0, unchanged: 0, deleted: 0, deleteMissing: 0, rejected: [],
    staged: marker ? { upserts: 0, deletes: 0, softDeletes: 0 } : { upserts: 0, deletes: 0 }, timings,
    ...(marker ? { softDeleted: 0 } : {}),
  };
  let mark = performance.now();
  const lap = (): number => {
    const now = performance.now();
    const ms = now - mark;
    mark = now;
    return Math.round(ms);
  };
  try {
    await client.query('BEGIN');
    try {
      await prologue(client, opts, label, keyColumns, markerCol ? softColumns : undefined);
      timings.prepareMs = lap();
      /** Stages one transaction's changes and applies them, adding to `result`. */
      const applyStaged = async (changes: StagedChanges): Promise<void> => {
        let stagedSoft = 0;
        const stagedUp = await stageIsolating(client, UP, opts.columns, opts.key, changes.upserts, 'upsert', result.rejected, opts.batchRows ?? 10_000);
        const stagedDel = await stageIsolating(client, DEL, keyColumns, opts.key, changes.deletes, 'delete', result.rejected, opts.batchRows ?? 10_000);
        if (markerCol) stagedSoft = await stageIsolating(client, SOFT, softColumns, opts.key, changes.softDeletes ?? [], 'delete', result.rejected, opts.batchRows ?? 10_000);
        result.staged.upserts += stagedUp;
        result.staged.deletes += stagedDel;
        if (markerCol) result.staged.softDeletes = (result.staged.softDeletes ?? 0) + stagedSoft;
        timings.stageMs += lap();
        // No ANALYZE of the staging tables: it cost 10-20% of a 100k-change apply, and the
        // only statement with a join whose plan matters is the DELETE, chosen here instead.
        const indexDelete = await preferIndexLookups(client, opts.table, stagedDel);
        const runDelete = async (where: string): Promise<{ deleted: number }> => {
          const r = await client.query(deleteUsingStagingSql(opts.table, DEL, opts.key, where));
          return { deleted: r.rowCount ?? 0 };
        };
        const runUpsert = async (where: string): Promise<{ inserted: number; updated: number }> => {
          const r = await client.query<{ inserted: bigint; updated: bigint }>(upsertFromStagingSql(opts.table, UP, opts.columns, opts.key, where ? `WHERE ${where}` : ''));
          return { inserted: Number(r.rows[0]?.inserted ?? 0n), updated: Number(r.rows[0]?.updated ?? 0n) };
        };
        const runSoftDelete = async (where: string): Promise<{ marked: number; present: number }> => {
          const r = await client.query<{ marked: bigint; present: bigint }>(softDeleteFromStagingSql(opts.table, SOFT, opts.key, (markerCol as TargetColumn).name, where));
          return { marked: Number(r.rows[0]?.marked ?? 0n), present: Number(r.rows[0]?.present ?? 0n) };
        };
        // Rows refused while applying one step (staging refusals are never staged, so not counted there).
        const applyRejected = (): number => result.rejected.filter((r) => r.phase === 'apply').length;
        // Deletes first: a key deleted and re-inserted in the batch ends up present.
        const restoreJoins = indexDelete ? await indexJoinsOnly(client) : undefined;
        let before = applyRejected();
        const d = await withIsolation(client, DEL, keyColumns, opts.key, 'delete', stagedDel, (w) => runDelete(w ? `d.${w}` : ''), result.rejected, { deleted: 0 }, (a, b) => ({ deleted: a.deleted + b.deleted }));
        const deleteRejects = applyRejected() - before;
        await restoreJoins?.();
        // Soft deletes next (a net batch never holds a key both here and in the upserts).
        let s = { marked: 0, present: 0 };
        let softRejects = 0;
        if (markerCol && stagedSoft > 0) {
          const restore = (await preferIndexLookups(client, opts.table, stagedSoft)) ? await indexJoinsOnly(client) : undefined;
          before = applyRejected();
          s = await withIsolation(client, SOFT, softColumns, opts.key, 'delete', stagedSoft, (w) => runSoftDelete(w ? `s.${w}` : ''), result.rejected, { marked: 0, present: 0 }, (a, b) => ({ marked: a.marked + b.marked, present: a.present + b.present }));
          softRejects = applyRejected() - before;
          await restore?.();
        }
        timings.deleteMs += lap();
        before = applyRejected();
        const u = await withIsolation(client, UP, opts.columns, opts.key, 'upsert', stagedUp, (w) => runUpsert(w), result.rejected, { inserted: 0, updated: 0 }, (a, b) => ({ inserted: a.inserted + b.inserted, updated: a.updated + b.updated }));
        const upsertRejects = applyRejected() - before;
        timings.upsertMs += lap();
        result.deleted += d.deleted;
        result.inserted += u.inserted;
        result.updated += u.updated;
        result.unchanged += stagedUp - upsertRejects - u.inserted - u.updated;
        result.deleteMissing += stagedDel - deleteRejects - d.deleted;
        if (markerCol) {
          result.softDeleted = (result.softDeleted ?? 0) + s.marked;
          result.unchanged += s.present - s.marked;
          result.deleteMissing += stagedSoft - softRejects - s.present;
        }
      };
      await applyStaged(opts);
      if (dryRun && opts.later) {
        // The transactions a sync commits after this one, each on the state the ones before leave.
        for await (const changes of opts.later) {
          for (const t of [UP, DEL, ...(markerCol ? [SOFT] : [])]) await client.query(`TRUNCATE ${qualifiedRef(t)}`);
          await applyStaged(changes);
        }
      }
      if (dryRun) {
        await client.query('ROLLBACK');
        timings.commitMs = lap();
        return result;
      }
      if (result.rejected.length > 0) {
        const letters: DeadLetterInput[] = result.rejected.map((r) => ({
          pipeline: opts.checkpoint.pipeline,
          keyJson: r.keyJson,
          rowJson: r.rowJson,
          sqlstate: r.sqlstate,
          message: r.message,
          version: opts.checkpoint.version,
        }));
        await writeDeadLetters(client, letters);
      }
      await writeCheckpoint(client, opts.checkpoint, result.inserted + result.updated + result.deleted + (result.softDeleted ?? 0));
      await client.query('COMMIT');
      timings.commitMs = lap();
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  } catch (e) {
    throw classifyPgError(e, { table: label, version: Number(opts.checkpoint.version), action: dryRun ? 'checking changes (dry run)' : 'applying changes' });
  }
}

/**
 * Inside a fresh transaction: the pipeline's transaction-level advisory lock (serializes
 * runs of one pipeline, so the checkpoint check is reliable), the checkpoint check, and
 * the temp staging tables (ON COMMIT DROP).
 */
async function prologue(client: ClientBase, opts: Pick<ApplyChangesOptions, 'columns' | 'key' | 'checkpoint' | 'expectVersion'>, label: string, keyColumns: readonly TargetColumn[], softColumns: readonly TargetColumn[] | undefined): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`delta_neon_sync:${opts.checkpoint.pipeline}`]);
  if (opts.expectVersion !== undefined) {
    const cur = await client.query<{ version: bigint }>(`SELECT version FROM "${STATE_SCHEMA}"."checkpoints" WHERE pipeline = $1`, [opts.checkpoint.pipeline]);
    const have = cur.rows[0]?.version ?? null;
    const want = opts.expectVersion === null ? null : BigInt(opts.expectVersion);
    if (have !== want) {
      throw new SyncError('target', `The checkpoint of pipeline "${opts.checkpoint.pipeline}" is at version ${have ?? 'none'}, expected ${want ?? 'none'}; nothing was applied.`, {
        table: label,
        retry: 'manual',
        hint: 'Another run advanced this pipeline; read the checkpoint again and continue from there.',
      });
    }
  }
  const temp = (t: TableRef, cols: readonly TargetColumn[]): string =>
    `${renderCreateTable(t, cols, opts.key, { withoutPrimaryKey: true }).replace(/^CREATE TABLE/, 'CREATE TEMP TABLE').replace(/;$/, '')} ON COMMIT DROP`;
  await client.query(temp(UP, opts.columns));
  await client.query(temp(DEL, keyColumns));
  if (softColumns) await client.query(temp(SOFT, softColumns));
}

/** One part of a streamed batch: net changes of its own, whose keys may recur in later parts. */
export type ApplyPart =
  | {
      upserts: RowBatches;
      deletes: RowBatches;
      /** With a soft-delete marker: key rows plus the marker value (see ApplyChangesOptions.softDeletes). */
      softDeletes?: RowBatches;
    }
  | {
      /** The same, already encoded by encodeRows for the columns of stagingColumns(). */
      encoded: { upserts: EncodedRows; deletes: EncodedRows; softDeletes?: EncodedRows };
    };

/** The columns of the three staging tables: COPY text for them must follow this order. */
export interface StagingColumns {
  /** Upserts: the data columns, plus the soft-delete marker when not among them. */
  upserts: readonly TargetColumn[];
  deletes: readonly TargetColumn[];
  /** Soft deletes: key columns and the marker; undefined without a soft-delete policy. */
  softDeletes: readonly TargetColumn[] | undefined;
}

export function stagingColumns(columns: readonly TargetColumn[], key: readonly string[], softDelete: SoftDeleteMarker | undefined): StagingColumns {
  const markerCol = softDelete ? (columns.find((c) => c.name === softDelete.column) ?? markerTargetColumn(softDelete)) : undefined;
  const upserts = markerCol && !columns.includes(markerCol) ? [...columns, markerCol] : columns;
  const deletes = key.map((k) => upserts.find((c) => c.name === k) as TargetColumn);
  return { upserts, deletes, softDeletes: markerCol ? [...deletes, markerCol] : undefined };
}

/**
 * A batch applied in parts, for a commit too big to hold as one net batch: ONE
 * transaction (begin), any number of apply(part) calls, then commit(checkpoint) or
 * rollback(). Same SQL, locking and checkpoint rules as applyChanges; nothing is visible
 * until commit, and a failure or a killed process leaves target and checkpoint as they
 * were. The caller keeps parts consistent with the net effect (SyncRunner: upserts as they
 * come, removals held back to the end of the commit). Parts run one at a time: apply()
 * may be left running while the caller reads the next part (that overlap is the point),
 * but the next apply/commit must wait for it. No dead-letter or dry-run mode.
 */
export class ApplyStream {
  private readonly result: ApplyResult;
  private readonly keyColumns: readonly TargetColumn[];
  private readonly softColumns: readonly TargetColumn[] | undefined;
  private readonly markerCol: TargetColumn | undefined;
  private readonly opts: ApplyChangesOptions;
  private readonly label: string;
  private staged = false;

  private constructor(private readonly client: ClientBase, opts: Omit<ApplyChangesOptions, 'upserts' | 'deletes' | 'softDeletes' | 'deadLetter'>) {
    const marker = opts.softDelete;
    const staging = stagingColumns(opts.columns, opts.key, marker);
    const columns = staging.upserts;
    this.opts = { ...opts, columns, upserts: [], deletes: [] };
    validateColumns(columns, opts.key, opts.table);
    this.label = displayName(opts.table);
    this.keyColumns = staging.deletes;
    this.softColumns = staging.softDeletes;
    this.markerCol = staging.softDeletes?.at(-1);
    this.result = {
      inserted: 0, updated: 0, unchanged: 0, deleted: 0, deleteMissing: 0, rejected: [],
      staged: marker ? { upserts: 0, deletes: 0, softDeletes: 0 } : { upserts: 0, deletes: 0 },
      timings: { prepareMs: 0, stageMs: 0, deleteMs: 0, upsertMs: 0, commitMs: 0 },
      ...(marker ? { softDeleted: 0 } : {}),
    };
  }

  /** BEGIN, lock, checkpoint check (`expectVersion`), staging tables. `checkpoint.version` is not used until commit. */
  static async begin(client: ClientBase, opts: Omit<ApplyChangesOptions, 'upserts' | 'deletes' | 'softDeletes' | 'deadLetter'>): Promise<ApplyStream> {
    const s = new ApplyStream(client, opts);
    const t = performance.now();
    try {
      await client.query('BEGIN');
      await prologue(client, s.opts, s.label, s.keyColumns, s.softColumns);
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw s.classify(e);
    }
    (s.result.timings as ApplyTimings).prepareMs = Math.round(performance.now() - t);
    return s;
  }

  /** Stages one part by COPY and applies it: deletes, soft deletes, then upserts. */
  async apply(part: ApplyPart): Promise<void> {
    const { client, opts, result } = this;
    const timings = result.timings as ApplyTimings;
    try {
      let t = performance.now();
      if (this.staged) await client.query(`TRUNCATE ${qualifiedRef(UP)}, ${qualifiedRef(DEL)}${this.softColumns ? `, ${qualifiedRef(SOFT)}` : ''}`);
      this.staged = true;
      // Each statement is a round trip that waits for this thread: skip the empty ones.
      const stage = async (table: TableRef, columns: readonly TargetColumn[] | undefined, rows: RowBatches | undefined, encoded: EncodedRows | undefined): Promise<number> => {
        if (!columns) return 0;
        if (encoded) return encoded.count > 0 ? copyEncoded(client, table, columns, encoded) : 0;
        if (!rows || (Array.isArray(rows) && rows.every((b: Row[]) => b.length === 0))) return 0;
        return copyRows(client, table, columns, rows);
      };
      const enc = 'encoded' in part ? part.encoded : undefined;
      const rows = 'encoded' in part ? undefined : part;
      const up = await stage(UP, opts.columns, rows?.upserts, enc?.upserts);
      const del = await stage(DEL, this.keyColumns, rows?.deletes, enc?.deletes);
      const soft = await stage(SOFT, this.softColumns, rows?.softDeletes, enc?.softDeletes);
      result.staged.upserts += up;
      result.staged.deletes += del;
      if (result.staged.softDeletes !== undefined) result.staged.softDeletes += soft;
      timings.stageMs += performance.now() - t;
      t = performance.now();
      if (del > 0) {
        const restore = (await preferIndexLookups(client, opts.table, del)) ? await indexJoinsOnly(client) : undefined;
        const r = await client.query(deleteUsingStagingSql(opts.table, DEL, opts.key));
        await restore?.();
        result.deleted += r.rowCount ?? 0;
        result.deleteMissing += del - (r.rowCount ?? 0);
      }
      if (soft > 0 && this.markerCol) {
        const restore = (await preferIndexLookups(client, opts.table, soft)) ? await indexJoinsOnly(client) : undefined;
        const r = await client.query<{ marked: bigint; present: bigint }>(softDeleteFromStagingSql(opts.table, SOFT, opts.key, this.markerCol.name));
        await restore?.();
        const marked = Number(r.rows[0]?.marked ?? 0n);
        const present = Number(r.rows[0]?.present ?? 0n);
        result.softDeleted = (result.softDeleted ?? 0) + marked;
        result.unchanged += present - marked;
        result.deleteMissing += soft - present;
      }
      timings.deleteMs += performance.now() - t;
      t = performance.now();
      if (up > 0) {
        const r = await client.query<{ inserted: bigint; updated: bigint }>(upsertFromStagingSql(opts.table, UP, opts.columns, opts.key));
        const ins = Number(r.rows[0]?.inserted ?? 0n);
        const upd = Number(r.rows[0]?.updated ?? 0n);
        result.inserted += ins;
        result.updated += upd;
        result.unchanged += up - ins - upd;
      }
      timings.upsertMs += performance.now() - t;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw this.classify(e);
    }
  }

  /** Writes the checkpoint and commits; returns the totals of all parts. */
  async commit(checkpoint: CheckpointInput): Promise<ApplyResult> {
    const { client, result } = this;
    const t = performance.now();
    try {
      await writeCheckpoint(client, checkpoint, result.inserted + result.updated + result.deleted + (result.softDeleted ?? 0));
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw this.classify(e, Number(checkpoint.version));
    }
    const timings = result.timings as ApplyTimings;
    timings.commitMs = Math.round(performance.now() - t);
    timings.stageMs = Math.round(timings.stageMs);
    timings.deleteMs = Math.round(timings.deleteMs);
    timings.upsertMs = Math.round(timings.upsertMs);
    return result;
  }

  /** Abandons the transaction (nothing of it stays). */
  async rollback(): Promise<void> {
    await this.client.query('ROLLBACK').catch(() => undefined);
  }

  private classify(e: unknown, version = Number(this.opts.checkpoint.version)): SyncError {
    return classifyPgError(e, { table: this.label, version, action: 'applying changes' });
  }
}

/**
 * Whether the staged deletes are few enough that probing the target's primary key once
 * per key beats a hash join, which reads the whole target. The planner, costing random
 * page reads at 4x sequential ones, picks the hash join even for 10k keys against 1M rows,
 * where it took 330-1100 ms against 230-300 ms for the index probes
 * (bench/applyExperiments.ts). Below 1 key in 20 rows the probes win by a wide margin.
 */
async function preferIndexLookups(client: ClientBase, table: TableRef, staged: number): Promise<boolean> {
  if (staged === 0) return false;
  const r = await client.query<{ n: number | null }>(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass($1)`, [qualifiedRef(table)]);
  const n = r.rows[0]?.n ?? null;
  // reltuples is -1 for a table never vacuumed or analyzed: no basis, leave it to the planner.
  return n !== null && n > 0 && staged * 20 <= n;
}

/**
 * Turns hash and merge joins off for the rest of the transaction; returns a function that
 * puts back the settings the session had.
 */
async function indexJoinsOnly(client: ClientBase): Promise<() => Promise<void>> {
  const r = await client.query<{ h: string; m: string }>(
    `SELECT current_setting('enable_hashjoin') AS h, current_setting('enable_mergejoin') AS m,
            set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`,
  );
  const { h, m } = r.rows[0] ?? { h: 'on', m: 'on' };
  return async () => {
    await client.query(`SELECT set_config('enable_hashjoin', $1, true), set_config('enable_mergejoin', $2, true)`, [h, m]);
  };
}

function keyJsonOf(row: Row, keyColumns: readonly TargetColumn[]): string {
  return rowToJson(row, keyColumns);
}

/**
 * Stages rows batch by batch, each COPY under a savepoint. Rows the encoder refuses are
 * set aside before COPY; when the server refuses a line (type error for an overridden
 * pgType), that line is set aside and the batch retried.
 */
async function stageIsolating(client: ClientBase, table: TableRef, columns: readonly TargetColumn[], key: readonly string[], batches: RowBatches, op: 'upsert' | 'delete', rejected: RejectedRow[], batchRows: number): Promise<number> {
  const encoder = new CopyRowEncoder(columns);
  const keyColumns = key.map((k) => columns.find((c) => c.name === k) as TargetColumn);
  const sql = `COPY ${qualifiedRef(table)} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) FROM STDIN`;
  let staged = 0;
  let pending: { row: Row; line: string }[] = [];
  const flush = async (): Promise<void> => {
    while (pending.length > 0) {
      await client.query('SAVEPOINT dns_stage');
      try {
        const text = pending.map((p) => p.line).join('');
        await pipeline(Readable.from([Buffer.from(text, 'utf8')]), client.query(copyFrom(sql)));
        await client.query('RELEASE SAVEPOINT dns_stage');
        staged += pending.length;
        pending = [];
      } catch (e) {
        await client.query('ROLLBACK TO SAVEPOINT dns_stage');
        const f = pgErrorFields(e);
        const line = /line (\d+)/.exec(f?.where ?? '')?.[1];
        if (!isRowLevel(e) || line === undefined) throw e;
        const idx = Number(line) - 1;
        const bad = pending[idx];
        if (!bad) throw e;
        rejected.push({ op, keyJson: keyJsonOf(bad.row, keyColumns), rowJson: rowToJson(bad.row, columns), sqlstate: f?.code ?? null, message: f?.message ?? String(e), phase: 'staging' });
        pending.splice(idx, 1);
      }
    }
  };
  for await (const batch of batches) {
    for (const row of batch) {
      try {
        pending.push({ row, line: encoder.encode(row) });
      } catch (e) {
        if (!(e instanceof ValueEncodeError)) throw e;
        rejected.push({ op, keyJson: keyJsonOf(row, keyColumns), rowJson: rowToJson(row, columns), sqlstate: e.sqlstate, message: e.message, phase: 'staging' });
      }
      if (pending.length >= batchRows) await flush();
    }
  }
  await flush();
  return staged;
}

/**
 * Runs `stmt` over all staged rows; if it fails on a row-level error, numbers the staged
 * rows and bisects under savepoints until each failing row is isolated, recording it in
 * `rejected` and applying all the others.
 */
async function withIsolation<T>(
  client: ClientBase,
  staging: TableRef,
  columns: readonly TargetColumn[],
  key: readonly string[],
  op: 'upsert' | 'delete',
  count: number,
  stmt: (where: string) => Promise<T>,
  rejected: RejectedRow[],
  zero: T,
  add: (a: T, b: T) => T,
): Promise<T> {
  if (count === 0) return zero;
  await client.query('SAVEPOINT dns_all');
  try {
    const r = await stmt('');
    await client.query('RELEASE SAVEPOINT dns_all');
    return r;
  } catch (e) {
    await client.query('ROLLBACK TO SAVEPOINT dns_all');
    if (!isRowLevel(e)) throw e;
  }
  // Numbering the rows rewrites the temp table once; only on this failure path.
  await client.query(`ALTER TABLE ${qualifiedRef(staging)} ADD COLUMN ${quoteIdent(ORD)} bigserial`);
  const n = Number((await client.query<{ n: bigint }>(`SELECT max(${quoteIdent(ORD)})::int8 AS n FROM ${qualifiedRef(staging)}`)).rows[0]?.n ?? 0n);
  const keyNames = key.map((k) => k);
  const colNames = columns.map((c) => c.name);
  let total = zero;
  const range = async (lo: number, hi: number): Promise<void> => {
    await client.query('SAVEPOINT dns_range');
    try {
      const r = await stmt(`${quoteIdent(ORD)} BETWEEN ${lo} AND ${hi}`);
      await client.query('RELEASE SAVEPOINT dns_range');
      total = add(total, r);
      return;
    } catch (e) {
      await client.query('ROLLBACK TO SAVEPOINT dns_range');
      if (!isRowLevel(e)) throw e;
      if (lo === hi) {
        const f = pgErrorFields(e);
        const row = await client.query<{ k: string | null; r: string | null }>(
          `SELECT jsonb_object($1::text[], ARRAY[${keyNames.map((k) => `s.${quoteIdent(k)}::text`).join(', ')}])::text AS k,
                  jsonb_object($2::text[], ARRAY[${colNames.map((c) => `s.${quoteIdent(c)}::text`).join(', ')}])::text AS r
             FROM ${qualifiedRef(staging)} s WHERE s.${quoteIdent(ORD)} = $3::int8`,
          [keyNames, colNames, String(lo)],
        );
        rejected.push({ op, keyJson: row.rows[0]?.k ?? null, rowJson: row.rows[0]?.r ?? null, sqlstate: f?.code ?? null, message: f?.message ?? String(e), phase: 'apply' });
        return;
      }
    }
    const mid = Math.floor((lo + hi) / 2);
    await range(lo, mid);
    await range(mid + 1, hi);
  };
  await range(1, n);
  return total;
}
