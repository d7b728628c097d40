import { beginSql, beginTransaction } from './transaction';
import pg from 'pg';
import type { ClientBase, QueryResult } from 'pg';
import type { Row } from '../delta/types';
import { copyFromStdinSql, encodeRows, isWireClient, pipelinedQuery } from './copyRows';
import type { PipelinedStatement } from './copyRows';
import { SyncError } from '../errors';
import { isolatingStrategy, plainStrategy } from './applyStrategy';
import type { ApplyStrategy } from './applyStrategy';
import { classifyPgError } from './classifyPgError';
import { ESTIMATE_EXACT_UP_TO, estimateFromRow, estimateRowsSql } from './estimateRows';
import type { EncodedRows, RowBatches } from '../ports/targetTypes';
import type { RejectedRow } from '../ports/targetTypes';
import { deleteUsingStagingSql, guardedDeleteSql, keyJoin, softDeleteFromStagingSql, upsertFromStagingSql } from './mergeSql';
import { lineageTargetColumns } from '../plan/lineage';
import type { LineageColumns } from '../ports/targetTypes';
import { displayName, qualifiedRef, quoteIdent } from './quoteIdent';
import type { TableRef } from '../ports/targetTypes';
import { renderCreateTable, validateColumns } from './renderCreateTable';
import type { TargetColumn } from '../ports/targetTypes';
import { markerTargetColumn } from '../plan/applyDeletePolicy';
import { MUST_BE_NEW } from '../plan/netChanges';
import { DUPLICATE_INSERT_HINT } from '../plan/planSteps';
import type { SoftDeleteMarker } from '../ports/targetTypes';
import { CHECKPOINT_MOVED_HINT, STATE_SCHEMA, commitWithCheckpoint, writeDeadLetters } from './stateTables';
import type { CheckpointInput } from '../ports/targetTypes';
import type { ApplyResult, ApplyTimings, ApplyPart, StagedChanges } from '../ports/targetTypes';

export type { RejectedRow } from '../ports/targetTypes';

/**
 * The apply path: ONE engine, ApplyStream, that applies net changes to a target table and
 * advances the checkpoint in ONE transaction. begin: BEGIN, the pipeline's advisory lock,
 * the checkpoint check, temp staging tables (ON COMMIT DROP). apply(part), any number of
 * times: COPY the part into the staging tables, `DELETE ... USING` the staged keys, then
 * (soft-delete policy) `UPDATE ... SET marker` where it differs, then `INSERT ... ON
 * CONFLICT (key) DO UPDATE ... WHERE ... IS DISTINCT FROM` (so re-applying a batch changes
 * nothing), counting what each step did. commit: the ending. Either all of it commits or
 * none (a dropped connection or a killed process leaves target and checkpoint as they were).
 *
 * Two choices make the modes, never a second copy of the path:
 *  - the strategy (applyStrategy.ts): plain, the fast path, where the first refused row
 *    fails the transaction; or isolating (dead letters, dry runs), where the rows Postgres
 *    or the encoder refuses are set aside as RejectedRow and the others applied;
 *  - the ending: commit (dead letters if any, then the checkpoint, then COMMIT through
 *    commitWithCheckpoint) or dry run (ROLLBACK: nothing is written, not even dead letters).
 * applyChanges and dryRunChanges are one-batch front doors onto it.
 */

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
  /**
   * Lineage columns (the target has them): upserts and deletes carry the staged version and
   * commit timestamp (rows hold them under the lineage row keys, see plan/lineage.ts), the
   * sync time is now(), and with `version` the out-of-order guard keeps newer rows.
   */
  lineage?: LineageColumns;
  checkpoint: CheckpointInput;
  /** Set rows that violate constraints aside in delta_neon_sync.dead_letters and apply the rest. */
  deadLetter?: boolean;
  /**
   * When given, the stored checkpoint version must equal this (null: no checkpoint yet);
   * otherwise nothing is applied (another run got there first).
   */
  expectVersion?: number | bigint | null;
  /**
   * DDL run in the transaction before anything is staged (Target.alterationSql text: a
   * schema change the rows need, e.g. a renamed or widened column), after the lock and
   * the checkpoint check, so it commits or rolls back with the rows.
   */
  ddl?: readonly string[];
  /** Staged rows per COPY chunk in dead-letter / dry-run mode (a savepoint each); default 10000. */
  batchRows?: number;
  /**
   * Dry runs only: the transactions a sync commits after this one, in order. Each is
   * applied (and rolled back with the rest) on the state the earlier ones leave, so the
   * counts and refused rows are the sum of what each transaction of the sync would meet.
   */
  later?: AsyncIterable<StagedChanges>;
}

const UP: TableRef = { name: 'dns_stage_upserts' };
const DEL: TableRef = { name: 'dns_stage_deletes' };
const SOFT: TableRef = { name: 'dns_stage_soft_deletes' };
/** Excused keys (ApplyPart.excused), and the inserts marked MUST_BE_NEW found in the target by provisional parts. */
const EXCUSED: TableRef = { name: 'dns_stage_excused' };
const CONFLICTS: TableRef = { name: 'dns_new_conflicts' };

/**
 * Applies one batch of net changes and advances the checkpoint in ONE transaction (an
 * ApplyStream of one part). With `deadLetter`, rows violating constraints are set aside in
 * delta_neon_sync.dead_letters, committed with the rest.
 * `client` must not be inside a transaction; call ensureStateTables once before.
 * On a 'connection' SyncError the client is unusable: release it with the error.
 */
export async function applyChanges(client: ClientBase, opts: ApplyChangesOptions): Promise<ApplyResult> {
  return applyBatch(client, opts, false);
}

/**
 * Dry run: everything applyChanges does, inside a transaction that is rolled back. Rows
 * that would fail are reported one by one (savepoints are used only once a whole
 * statement fails, to isolate the failing rows). Nothing is written, not even dead letters.
 * `later` transactions are applied after the first, each on the state the ones before leave.
 */
export async function dryRunChanges(client: ClientBase, opts: ApplyChangesOptions): Promise<ApplyResult> {
  return applyBatch(client, opts, true);
}

async function applyBatch(client: ClientBase, opts: ApplyChangesOptions, dryRun: boolean): Promise<ApplyResult> {
  if (!opts.softDelete && opts.softDeletes !== undefined) throw new Error('applyChanges: softDeletes need the softDelete marker option');
  const stream = await ApplyStream.begin(client, { ...opts, dryRun });
  const part = (c: StagedChanges): ApplyPart => ({ upserts: c.upserts, deletes: c.deletes, ...(c.softDeletes ? { softDeletes: c.softDeletes } : {}) });
  await stream.apply(part(opts));
  if (dryRun && opts.later) {
    // The transactions a sync commits after this one, each a part on the state the ones before leave.
    try {
      for await (const changes of opts.later) await stream.apply(part(changes));
    } catch (e) {
      await stream.rollback();
      throw classifyApply(e, opts.table, opts.checkpoint.version, dryRun);
    }
  }
  return stream.commit(opts.checkpoint);
}

/** The columns of the three staging tables: COPY text for them must follow this order. */
export interface StagingColumns {
  /** Upserts: the data columns, plus the soft-delete marker when not among them. */
  upserts: readonly TargetColumn[];
  /** The key columns, then the must-be-new mark. */
  deletes: readonly TargetColumn[];
  /** Soft deletes: key columns, the mark, the marker, then the staged lineage columns; undefined without a soft-delete policy. */
  softDeletes: readonly TargetColumn[] | undefined;
}

/**
 * With lineage: upserts stage the version and commit timestamp columns after the data
 * (before the mark), deletes the version column after the mark (for the guard), soft
 * deletes both after the marker.
 */
export function stagingColumns(columns: readonly TargetColumn[], key: readonly string[], softDelete: SoftDeleteMarker | undefined, lineage?: LineageColumns): StagingColumns {
  const markerCol = softDelete ? (columns.find((c) => c.name === softDelete.column) ?? markerTargetColumn(softDelete)) : undefined;
  const data = markerCol && !columns.includes(markerCol) ? [...columns, markerCol] : columns;
  const keys = key.map((k) => data.find((c) => c.name === k) as TargetColumn);
  const lin = lineageTargetColumns(lineage);
  const ver = lin.filter((c) => c.name === lineage?.version);
  return {
    upserts: [...data, ...lin, NEW_AT_COLUMN],
    deletes: [...keys, NEW_AT_COLUMN, ...ver],
    softDeletes: markerCol ? [...keys, NEW_AT_COLUMN, markerCol, ...lin] : undefined,
  };
}

/**
 * A column of the staging tables (the last of the upserts', after the key of the deletes'
 * and soft deletes'), never written to the target: the version of an insert whose key must
 * not be in the target yet (the row's MUST_BE_NEW value; on a delete, a key inserted and
 * removed again within the transaction), NULL for other rows. One bigint per staged row;
 * ApplyStream checks it with one query a part.
 */
export const NEW_AT_COLUMN: TargetColumn = {
  name: 'dns_new_at',
  source: { name: MUST_BE_NEW, physicalName: MUST_BE_NEW, type: { kind: 'primitive', name: 'long' }, nullable: true, metadata: {} },
  pgType: 'bigint',
  notNull: false,
};

/** Keys reported by the check of inserts whose key the target already holds (one more tells "and more"). */
const EXISTING_KEY_EXAMPLES = 10;

/** ApplyStream.begin's options: ApplyChangesOptions without the rows, which come as parts. */
export interface ApplyStreamOptions extends Omit<ApplyChangesOptions, 'upserts' | 'deletes' | 'softDeletes' | 'later'> {
  /**
   * Isolate refused rows (as with `deadLetter`) and end with a ROLLBACK instead of the
   * commit: nothing is written, not even dead letters. Parts may then be the later
   * transactions of a sync, each applied on the state the ones before leave.
   */
  dryRun?: boolean;
  /** Told (about every 10 s) while another session holds the pipeline's transaction lock, naming it. */
  onLockWait?: (message: string) => void;
  /**
   * Refuse the transaction when an upsert staged as an insert whose key must be new
   * (MUST_BE_NEW) finds its key in the target (with a soft-delete marker: a live row),
   * naming `source` (the Delta table) in the error. Unset: such rows are upserted.
   */
  refuseExistingKeys?: { source: string };
  /**
   * Read the target's size for the delete guard (estimateRowsSql) in the opening (in its
   * round trip when it is one), before anything is written or altered:
   * ApplyStream.estimatedRows.
   */
  estimateRows?: { marker?: SoftDeleteMarker };
}

/**
 * A batch applied in parts: ONE transaction (begin), any number of apply(part) calls, then
 * commit(checkpoint) or rollback(). Nothing is visible until commit, and a failure or a
 * killed process leaves target and checkpoint as they were. The caller keeps parts
 * consistent with the net effect (SyncRunner: upserts as they come, removals held back to
 * the end of the commit). Parts run one at a time: apply() may be left running while the
 * caller reads the next part (that overlap is the point), but the next apply/commit must
 * wait for it. A commit without any part advances the checkpoint alone (0 applied rows).
 * Strategy: isolating with `deadLetter` or `dryRun`, else plain; ending: dry run with
 * `dryRun`, else commit (see the top of this file).
 */
export class ApplyStream {
  private readonly result: ApplyResult;
  private readonly timings: ApplyTimings = { prepareMs: 0, stageMs: 0, deleteMs: 0, upsertMs: 0, commitMs: 0 };
  /** Columns of the upsert staging table: the data columns, then NEW_AT_COLUMN. */
  private readonly columns: readonly TargetColumn[];
  /** The columns the upsert writes to the target (`columns` without NEW_AT_COLUMN). */
  private readonly dataColumns: readonly TargetColumn[];
  private readonly keyColumns: readonly TargetColumn[];
  private readonly softColumns: readonly TargetColumn[] | undefined;
  private readonly strategy: ApplyStrategy;
  private readonly dryRun: boolean;
  private staged = false;
  /** Temp tables made on first need (most transactions never need them). */
  private excusedTable = false;
  private conflictsTable = false;
  /** CONFLICTS holds rows that a part that is not provisional has not checked yet. */
  private conflictsPending = false;
  /**
   * The checkpoint's applied_through: inserts of versions up to it were committed before
   * (the checkpoint was set back by hand and the range is re-applied), so their keys may
   * well be in the target. Only inserts of later versions are checked.
   */
  private appliedThrough: bigint | undefined;
  /**
   * Parts go to the server as ONE query each (applyInOneTrip): the plain strategy on a
   * node-postgres connection. Dead letters and dry runs isolate rows statement by
   * statement, and the sandbox's client has no wire protocol to pipeline on.
   */
  private readonly oneTrip: boolean;
  /** The target's reltuples as the transaction's first statement read it (undefined: not read, or never analyzed). */
  private targetRows: number | undefined;
  /** The delete guard's estimate of the target's rows, when the opening read it (ApplyStreamOptions.estimateRows). */
  estimatedRows: number | undefined;

  private constructor(private readonly client: ClientBase, private readonly opts: ApplyStreamOptions) {
    const marker = opts.softDelete;
    const staging = stagingColumns(opts.columns, opts.key, marker, opts.lineage);
    this.columns = staging.upserts;
    this.dataColumns = staging.upserts.slice(0, -1);
    validateColumns(this.dataColumns, opts.key, opts.table);
    this.keyColumns = staging.deletes;
    this.softColumns = staging.softDeletes;
    this.dryRun = opts.dryRun === true;
    this.result = {
      inserted: 0, updated: 0, unchanged: 0, deleted: 0, deleteMissing: 0, rejected: [],
      staged: marker ? { upserts: 0, deletes: 0, softDeletes: 0 } : { upserts: 0, deletes: 0 },
      timings: this.timings,
      ...(marker ? { softDeleted: 0 } : {}),
      ...(opts.lineage?.version ? { keptByGuard: 0 } : {}),
    };
    this.strategy = opts.deadLetter || this.dryRun ? isolatingStrategy(client, opts.key, this.result.rejected, opts.batchRows ?? 10_000) : plainStrategy(client, opts.key);
    this.oneTrip = !opts.deadLetter && !this.dryRun && isWireClient(client);
  }

  /** BEGIN, lock, checkpoint check (`expectVersion`), staging tables. `checkpoint.version` is not used until commit. */
  static async begin(client: ClientBase, opts: ApplyStreamOptions): Promise<ApplyStream> {
    const s = new ApplyStream(client, opts);
    const t = performance.now();
    try {
      if (s.oneTrip && !opts.ddl?.length) await s.openInOneTrip();
      else {
        await beginTransaction(client);
        await s.prologue();
      }
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      // A lock wait that timed out (the estimate's count): says who holds the table.
      throw await withLockHolders(client, opts.table, s.classify(e));
    }
    s.timings.prepareMs = Math.round(performance.now() - t);
    return s;
  }

  /** Stages one part by COPY and applies it: deletes, soft deletes, then upserts. */
  async apply(part: ApplyPart): Promise<void> {
    const { client, result, strategy, timings } = this;
    const { table, key } = this.opts;
    const oneTrip = this.oneTrip ? this.inMemory(part) : undefined;
    if (oneTrip) return this.applyInOneTrip(oneTrip, part.provisional === true);
    try {
      let t = performance.now();
      if (this.staged) await client.query(`TRUNCATE ${qualifiedRef(UP)}, ${qualifiedRef(DEL)}${this.softColumns ? `, ${qualifiedRef(SOFT)}` : ''}`);
      this.staged = true;
      const enc = 'encoded' in part ? part.encoded : undefined;
      const rows = 'encoded' in part ? undefined : part;
      const up = await strategy.stage(UP, this.columns, 'upsert', rows?.upserts, enc?.upserts);
      const del = await strategy.stage(DEL, this.keyColumns, 'delete', rows?.deletes, enc?.deletes);
      const soft = this.softColumns ? await strategy.stage(SOFT, this.softColumns, 'delete', rows?.softDeletes, enc?.softDeletes) : 0;
      const excused = rows?.excused || enc?.excused ? await this.stageExcused(rows?.excused, enc?.excused) : 0;
      result.staged.upserts += up;
      result.staged.deletes += del;
      if (result.staged.softDeletes !== undefined) result.staged.softDeletes += soft;
      timings.stageMs += performance.now() - t;
      t = performance.now();
      // No ANALYZE of the staging tables: it cost 10-20% of a 100k-change apply, and the
      // only statements with a join whose plan matters are the deletes, chosen here instead.
      // Marked rows whose key the target holds (before the deletes: a marked delete must not find its key either).
      const refuse = this.opts.refuseExistingKeys;
      if (refuse && (up + del + soft > 0 || this.conflictsPending)) {
        await this.refuseExistingKeys(refuse.source, [...(up > 0 ? [UP] : []), ...(del > 0 ? [DEL] : []), ...(soft > 0 ? [SOFT] : [])], part.provisional === true, excused);
      }
      // Deletes first: a key deleted and re-inserted in the batch ends up present.
      const lineage = this.opts.lineage;
      const version = lineage?.version;
      if (del > 0) {
        const { counts, refused } = await this.withIndexLookups(del, () =>
          strategy.run(DEL, this.keyColumns, 'delete', async (w) => {
            if (!version) return { deleted: (await client.query(deleteUsingStagingSql(table, DEL, key, w && `d.${w}`))).rowCount ?? 0, kept: 0 };
            const r = await client.query<{ deleted: bigint; kept: bigint }>(guardedDeleteSql(table, DEL, key, version, w && `d.${w}`));
            return { deleted: Number(r.rows[0]?.deleted ?? 0n), kept: Number(r.rows[0]?.kept ?? 0n) };
          }, { deleted: 0, kept: 0 }),
        );
        result.deleted += counts.deleted;
        result.deleteMissing += del - refused - counts.deleted - counts.kept;
        if (version) result.keptByGuard = (result.keptByGuard ?? 0) + counts.kept;
      }
      // Soft deletes next (a net batch never holds a key both here and in the upserts).
      const markerName = this.opts.softDelete?.column;
      if (soft > 0 && this.softColumns && markerName !== undefined) {
        const lineageStaged = lineageTargetColumns(lineage).map((c) => c.name);
        const { counts, refused } = await this.withIndexLookups(soft, () =>
          strategy.run(SOFT, this.softColumns as readonly TargetColumn[], 'delete', async (w) => {
            const r = await client.query<{ marked: bigint; present: bigint; kept: bigint }>(softDeleteFromStagingSql(table, SOFT, key, markerName, w && `s.${w}`, lineage, lineageStaged));
            return { marked: Number(r.rows[0]?.marked ?? 0n), present: Number(r.rows[0]?.present ?? 0n), kept: Number(r.rows[0]?.kept ?? 0n) };
          }, { marked: 0, present: 0, kept: 0 }),
        );
        result.softDeleted = (result.softDeleted ?? 0) + counts.marked;
        result.unchanged += counts.present - counts.marked - counts.kept;
        result.deleteMissing += soft - refused - counts.present;
        if (version) result.keptByGuard = (result.keptByGuard ?? 0) + counts.kept;
      }
      timings.deleteMs += performance.now() - t;
      t = performance.now();
      if (up > 0) {
        const { counts, refused } = await strategy.run(UP, this.dataColumns, 'upsert', async (w) => {
          const r = await client.query<{ inserted: bigint; updated: bigint; kept?: bigint }>(upsertFromStagingSql(table, UP, this.dataColumns, key, w && `WHERE ${w}`, lineage));
          return { inserted: Number(r.rows[0]?.inserted ?? 0n), updated: Number(r.rows[0]?.updated ?? 0n), kept: Number(r.rows[0]?.kept ?? 0n) };
        }, { inserted: 0, updated: 0, kept: 0 });
        result.inserted += counts.inserted;
        result.updated += counts.updated;
        result.unchanged += up - refused - counts.inserted - counts.updated - counts.kept;
        if (version) result.keptByGuard = (result.keptByGuard ?? 0) + counts.kept;
      }
      timings.upsertMs += performance.now() - t;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      // A lock wait that timed out: says who holds the table (looked up after the rollback).
      throw await withLockHolders(client, table, this.classify(e));
    }
  }

  /**
   * The part as COPY text, when it is in memory: encoded already (the worker thread), or
   * rows in arrays (encoded here, failing on a value as COPY would). Rows that stream in
   * (an async source) are left to the COPY path, which pulls them with backpressure.
   */
  private inMemory(part: ApplyPart): EncodedPart | undefined {
    if ('encoded' in part) return part.encoded;
    const sync = (b: RowBatches | undefined): b is Iterable<Row[]> => b === undefined || Symbol.iterator in b;
    if (!sync(part.upserts) || !sync(part.deletes) || !sync(part.softDeletes) || !sync(part.excused)) return undefined;
    const enc = (cols: readonly TargetColumn[], b: Iterable<Row[]> | undefined): EncodedRows => (b ? encodeRows(cols, flatten(b), undefined, this.opts.key) : { chunks: [], count: 0 });
    return {
      upserts: enc(this.columns, part.upserts),
      deletes: enc(this.keyColumns, part.deletes),
      ...(this.softColumns && part.softDeletes ? { softDeletes: enc(this.softColumns, part.softDeletes) } : {}),
      ...(part.excused ? { excused: enc(this.keyColumns, part.excused) } : {}),
    };
  }

  /**
   * apply() of the plain strategy as ONE round trip (pipelinedQuery): the staging tables
   * emptied (after the first part), each COPY with its data right behind it, the check of
   * inserts whose key must be new, the deletes, soft deletes and the upsert, as one simple
   * query; their counts read from its results afterwards. The same statements in the same
   * order as the path of several round trips, so the same rows change, and the first that
   * fails fails the query (the rest is skipped) and the transaction is rolled back.
   */
  private async applyInOneTrip(enc: EncodedPart, provisional: boolean): Promise<void> {
    const { client, result, timings, opts } = this;
    const { table, key } = opts;
    const t = performance.now();
    const steps: Array<PipelinedStatement & { take?: (r: QueryResult) => void }> = [];
    try {
      const up = enc.upserts.count;
      const del = enc.deletes.count;
      const soft = this.softColumns ? (enc.softDeletes?.count ?? 0) : 0;
      // A part with nothing to stage (a version's last part, which holds its removals, when
      // it has none) leaves the staging tables as they are: no statement reads them then,
      // and the next part that stages rows empties them first. No round trip for it.
      if (up + del + soft > 0) {
        if (this.staged) steps.push({ sql: `TRUNCATE ${qualifiedRef(UP)}, ${qualifiedRef(DEL)}${this.softColumns ? `, ${qualifiedRef(SOFT)}` : ''}` });
        this.staged = true;
      }
      if (up > 0) steps.push({ sql: copyFromStdinSql(UP, this.columns), copy: enc.upserts.chunks });
      if (del > 0) steps.push({ sql: copyFromStdinSql(DEL, this.keyColumns), copy: enc.deletes.chunks });
      if (soft > 0 && this.softColumns && enc.softDeletes) steps.push({ sql: copyFromStdinSql(SOFT, this.softColumns), copy: enc.softDeletes.chunks });
      let excused = 0;
      if (enc.excused) {
        steps.push({ sql: this.excusedTable ? `TRUNCATE ${qualifiedRef(EXCUSED)}` : this.tempTable(EXCUSED, this.keyColumns) });
        this.excusedTable = true;
        excused = enc.excused.count;
        if (excused > 0) steps.push({ sql: copyFromStdinSql(EXCUSED, this.keyColumns), copy: enc.excused.chunks });
      }
      result.staged.upserts += up;
      result.staged.deletes += del;
      if (result.staged.softDeletes !== undefined) result.staged.softDeletes += soft;
      const refuse = opts.refuseExistingKeys;
      if (refuse && (up + del + soft > 0 || this.conflictsPending)) {
        steps.push(...this.existingKeysSteps([...(up > 0 ? [UP] : []), ...(del > 0 ? [DEL] : []), ...(soft > 0 ? [SOFT] : [])], provisional, excused));
      }
      const lineage = opts.lineage;
      const version = lineage?.version;
      if (del > 0) {
        steps.push(...(await this.indexLookupSteps(del, {
          sql: version ? guardedDeleteSql(table, DEL, key, version) : deleteUsingStagingSql(table, DEL, key),
          take: (r) => {
            const row = r.rows[0] as { deleted?: unknown; kept?: unknown } | undefined;
            const deleted = version ? Number(row?.deleted ?? 0) : (r.rowCount ?? 0);
            const kept = version ? Number(row?.kept ?? 0) : 0;
            result.deleted += deleted;
            result.deleteMissing += del - deleted - kept;
            if (version) result.keptByGuard = (result.keptByGuard ?? 0) + kept;
          },
        })));
      }
      const markerName = opts.softDelete?.column;
      if (soft > 0 && markerName !== undefined) {
        const lineageStaged = lineageTargetColumns(lineage).map((c) => c.name);
        steps.push(...(await this.indexLookupSteps(soft, {
          sql: softDeleteFromStagingSql(table, SOFT, key, markerName, '', lineage, lineageStaged),
          take: (r) => {
            const row = r.rows[0] as { marked?: unknown; present?: unknown; kept?: unknown } | undefined;
            const marked = Number(row?.marked ?? 0);
            const present = Number(row?.present ?? 0);
            const kept = Number(row?.kept ?? 0);
            result.softDeleted = (result.softDeleted ?? 0) + marked;
            result.unchanged += present - marked - kept;
            result.deleteMissing += soft - present;
            if (version) result.keptByGuard = (result.keptByGuard ?? 0) + kept;
          },
        })));
      }
      if (up > 0) {
        steps.push({
          sql: upsertFromStagingSql(table, UP, this.dataColumns, key, '', lineage),
          take: (r) => {
            const row = r.rows[0] as { inserted?: unknown; updated?: unknown; kept?: unknown } | undefined;
            const inserted = Number(row?.inserted ?? 0);
            const updated = Number(row?.updated ?? 0);
            const kept = Number(row?.kept ?? 0);
            result.inserted += inserted;
            result.updated += updated;
            result.unchanged += up - inserted - updated - kept;
            if (version) result.keptByGuard = (result.keptByGuard ?? 0) + kept;
          },
        });
      }
      if (steps.length === 0) return;
      const results = await pipelinedQuery(client, steps);
      steps.forEach((st, i) => st.take?.(results[i] as QueryResult));
      // One round trip: what it cost is staging and applying together.
      timings.stageMs += performance.now() - t;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      const err = existingKeysRaised(e) ?? e;
      throw await withLockHolders(client, table, this.classify(err instanceof ExistingKeysFound ? this.existingKeysError(err.source, err.rows) : err));
    }
  }

  /**
   * The check of inserts whose key must be new (refuseExistingKeys) as statements of a
   * one-trip part: a provisional part notes the keys it finds in CONFLICTS (its rowCount
   * says whether it found any); a final part raises them from a DO block (so the
   * statements after it are skipped as when the check ran on its own), which
   * applyInOneTrip turns into the same error.
   */
  private existingKeysSteps(staged: readonly TableRef[], provisional: boolean, excused: number): Array<PipelinedStatement & { take?: (r: QueryResult) => void }> {
    const source = (this.opts.refuseExistingKeys as { source: string }).source;
    const { marked, keyCols, newAt, keyText } = this.existingKeysSql();
    if (provisional) {
      if (staged.length === 0) return [];
      const out: Array<PipelinedStatement & { take?: (r: QueryResult) => void }> = [];
      if (!this.conflictsTable) {
        out.push({ sql: `CREATE TEMP TABLE ${qualifiedRef(CONFLICTS)} ON COMMIT DROP AS SELECT ${keyCols}, ${newAt} FROM ${qualifiedRef(UP)} WITH NO DATA` });
        this.conflictsTable = true;
      }
      out.push({
        sql: `INSERT INTO ${qualifiedRef(CONFLICTS)} ${marked(staged, `${this.opts.key.map((k) => `s.${quoteIdent(k)}`).join(', ')}, s.${newAt}`).join(' UNION ALL ')}`,
        take: (r) => void ((r.rowCount ?? 0) > 0 && (this.conflictsPending = true)),
      });
      return out;
    }
    const out: PipelinedStatement[] = [];
    if (this.conflictsPending && excused > 0) {
      out.push({ sql: `DELETE FROM ${qualifiedRef(CONFLICTS)} AS c USING ${qualifiedRef(EXCUSED)} AS e WHERE ${keyJoin('c', 'e', this.opts.key)}` });
    }
    const from = [
      ...marked(staged, `s.${newAt} AS v, ${keyText('s')} AS k`),
      ...(this.conflictsPending ? [`SELECT c.${newAt} AS v, ${keyText('c')} AS k FROM ${qualifiedRef(CONFLICTS)} AS c`] : []),
    ];
    this.conflictsPending = false;
    if (from.length === 0) return out;
    // No ORDER BY (see refuseExistingKeys); the keys found go back in the error's DETAIL.
    const body = `DECLARE found text; BEGIN
  SELECT json_agg(y)::text INTO found FROM (SELECT json_build_object('v', x.v::text, 'k', x.k) AS y FROM (${from.join(' UNION ALL ')}) AS x LIMIT ${EXISTING_KEY_EXAMPLES + 1}) AS z;
  IF found IS NOT NULL THEN RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = ${pg.escapeLiteral(EXISTING_KEYS_MESSAGE)}, DETAIL = found, HINT = ${pg.escapeLiteral(source)}; END IF;
END`;
    // A dollar-quote tag the body does not contain (it holds quoted names of the user's tables).
    let tag = 'dns';
    while (body.includes(`$${tag}$`)) tag += 'x';
    out.push({ sql: `DO $${tag}$ ${body} $${tag}$` });
    return out;
  }

  /** `step` between statements that turn hash and merge joins off and back (preferIndexLookups), when `staged` keys are few for the target. */
  private async indexLookupSteps(staged: number, step: PipelinedStatement & { take: (r: QueryResult) => void }): Promise<Array<PipelinedStatement & { take?: (r: QueryResult) => void }>> {
    if (this.targetRows === undefined) this.targetRows = (await targetReltuples(this.client, this.opts.table)) ?? -1;
    if (!indexLookupsPay(this.targetRows, staged)) return [step];
    return [
      { sql: `SELECT set_config('delta_neon_sync.hashjoin', current_setting('enable_hashjoin'), true), set_config('delta_neon_sync.mergejoin', current_setting('enable_mergejoin'), true)` },
      { sql: `SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)` },
      step,
      { sql: `SELECT set_config('enable_hashjoin', current_setting('delta_neon_sync.hashjoin'), true), set_config('enable_mergejoin', current_setting('delta_neon_sync.mergejoin'), true)` },
    ];
  }

  /**
   * Ends the transaction; returns the totals of all parts. Commit: writes the rows set
   * aside as dead letters, then the checkpoint (with the rows applied), then `after`'s
   * statements (given the totals; no parameters), and commits. Dry run: rolls back,
   * `checkpoint` and `after` unused.
   */
  async commit(checkpoint: CheckpointInput, after?: (applied: ApplyResult) => string[]): Promise<ApplyResult> {
    const { client, result, timings } = this;
    const t = performance.now();
    try {
      // Inserts noted by a provisional part and not checked since (a version's parts always end with one that is not).
      if (this.conflictsPending && this.opts.refuseExistingKeys) await this.refuseExistingKeys(this.opts.refuseExistingKeys.source, [], false, 0);
      if (this.dryRun) {
        await client.query('ROLLBACK');
      } else {
        await writeDeadLetters(client, result.rejected.map((r) => ({
          pipeline: checkpoint.pipeline, keyJson: r.keyJson, rowJson: r.rowJson, sqlstate: r.sqlstate, message: r.message, version: checkpoint.version,
        })));
        const expect = this.opts.expectVersion === undefined ? undefined : this.opts.expectVersion === null ? null : BigInt(this.opts.expectVersion);
        await commitWithCheckpoint(client, checkpoint, result.inserted + result.updated + result.deleted + (result.softDeleted ?? 0), expect, [], after?.(result) ?? []);
      }
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw this.classify(e, checkpoint.version);
    }
    timings.commitMs = Math.round(performance.now() - t);
    timings.stageMs = Math.round(timings.stageMs);
    timings.deleteMs = Math.round(timings.deleteMs);
    timings.upsertMs = Math.round(timings.upsertMs);
    return result;
  }

  /** The totals of the parts applied so far (not committed yet). */
  totals(): Readonly<ApplyResult> {
    return this.result;
  }

  /** Abandons the transaction (nothing of it stays). */
  async rollback(): Promise<void> {
    await this.client.query('ROLLBACK').catch(() => undefined);
  }

  /**
   * BEGIN (with the pool's limits) and the prologue in ONE round trip (pipelinedQuery): the
   * try of the pipeline's lock, the checkpoint (a statement of its own after the lock's, so
   * its snapshot is taken once the lock is held) with the target's reltuples, and the
   * staging tables. When the lock was not free, takePipelineLock waits for it and the
   * checkpoint is read again. Not with DDL (ddl): that runs only under the lock.
   */
  private async openInOneTrip(): Promise<void> {
    const { client, opts } = this;
    const { pipeline } = opts.checkpoint;
    const lockKey = `delta_neon_sync:${pipeline}`;
    const begin = beginSql(client).split(';').map((x) => x.trim()).filter((x) => x !== '');
    const wantCheckpoint = opts.expectVersion !== undefined || opts.refuseExistingKeys !== undefined;
    const checkpointSql = (table: string): string => wantCheckpoint
      ? `SELECT c.version::text AS version, COALESCE(c.applied_through, c.version)::text AS through, (SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass(${table})) AS n
           FROM (SELECT 1) AS one LEFT JOIN "${STATE_SCHEMA}"."checkpoints" AS c ON c.pipeline = ${pg.escapeLiteral(pipeline)}`
      : `SELECT NULL::text AS version, NULL::text AS through, (SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass(${table})) AS n`;
    const tableLit = pg.escapeLiteral(qualifiedRef(opts.table));
    const results = await pipelinedQuery(client, [
      ...begin.map((sql) => ({ sql })),
      { sql: `SELECT pg_try_advisory_xact_lock(hashtext(${pg.escapeLiteral(lockKey)})) AS ok` },
      { sql: checkpointSql(tableLit) },
      ...(opts.estimateRows ? [{ sql: estimateRowsSql(opts.table, opts.estimateRows.marker, ESTIMATE_EXACT_UP_TO).replace('$1', tableLit) }] : []),
      { sql: this.tempTable(UP, this.columns) },
      { sql: this.tempTable(DEL, this.keyColumns) },
      ...(this.softColumns ? [{ sql: this.tempTable(SOFT, this.softColumns) }] : []),
    ]);
    const locked = (results[begin.length]?.rows[0] as { ok?: boolean } | undefined)?.ok === true;
    type CheckpointRow = { version: string | null; through: string | null; n: number | null };
    let row = results[begin.length + 1]?.rows[0] as CheckpointRow | undefined;
    if (opts.estimateRows) this.estimatedRows = estimateFromRow(results[begin.length + 2]?.rows[0] as { estimate?: unknown; counted?: unknown } | undefined, ESTIMATE_EXACT_UP_TO);
    if (!locked) {
      // Held by another session: wait for it as prologue() does, then read what it committed.
      await takePipelineLock(client, pipeline, displayName(opts.table), opts.onLockWait);
      row = (await client.query<CheckpointRow>(checkpointSql('$1'), [qualifiedRef(opts.table)])).rows[0];
    }
    if (row?.n !== null && row?.n !== undefined) this.targetRows = row.n;
    this.checkCheckpoint(row?.version ?? null, row?.through ?? undefined);
  }

  /** The checkpoint check of the prologue: the stored version must be `expectVersion`; notes applied_through. */
  private checkCheckpoint(have: string | bigint | null, through: string | undefined): void {
    const { opts } = this;
    const { pipeline } = opts.checkpoint;
    if (through !== undefined) this.appliedThrough = BigInt(through);
    if (opts.expectVersion === undefined) return;
    const got = have === null ? null : BigInt(have);
    const want = opts.expectVersion === null ? null : BigInt(opts.expectVersion);
    if (got !== want) {
      throw new SyncError('target', `The checkpoint of pipeline "${pipeline}" is at version ${got ?? 'none'}, expected ${want ?? 'none'}; nothing was applied.`, {
        table: displayName(opts.table),
        retry: 'manual',
        hint: CHECKPOINT_MOVED_HINT,
      });
    }
  }

  /**
   * Inside the fresh transaction: the pipeline's transaction-level advisory lock
   * (serializes runs of one pipeline, so the checkpoint check is reliable), the
   * checkpoint check, and the temp staging tables (ON COMMIT DROP).
   */
  private async prologue(): Promise<void> {
    const { client, opts } = this;
    const { pipeline } = opts.checkpoint;
    await takePipelineLock(client, pipeline, displayName(opts.table), opts.onLockWait);
    const cur = opts.expectVersion !== undefined || opts.refuseExistingKeys
      ? await client.query<{ version: bigint; through: string }>(
        `SELECT version, COALESCE(applied_through, version)::text AS through FROM "${STATE_SCHEMA}"."checkpoints" WHERE pipeline = $1`,
        [pipeline],
      )
      : undefined;
    this.checkCheckpoint(cur?.rows[0]?.version ?? null, cur?.rows[0]?.through);
    // Before the DDL, whose lock would keep any other session from counting the table.
    if (opts.estimateRows) {
      const r = await client.query<{ estimate: unknown; counted: unknown }>(estimateRowsSql(opts.table, opts.estimateRows.marker, ESTIMATE_EXACT_UP_TO), [qualifiedRef(opts.table)]);
      this.estimatedRows = estimateFromRow(r.rows[0], ESTIMATE_EXACT_UP_TO);
    }
    for (const statement of opts.ddl ?? []) await client.query(statement);
    // One round trip for the staging tables: no parameters (simple query protocol), no result needed between them.
    await client.query([
      this.tempTable(UP, this.columns),
      this.tempTable(DEL, this.keyColumns),
      ...(this.softColumns ? [this.tempTable(SOFT, this.softColumns)] : []),
    ].join(';\n'));
  }

  /**
   * One set-based query over the staged rows, before they are applied: inserts whose key
   * must be new (NEW_AT_COLUMN set) that the target already holds (with a soft-delete
   * marker, as a live row). It probes the target's primary key once per marked row and
   * none for the others. Any such key means the Delta table holds it twice: refused,
   * naming versions and up to EXISTING_KEY_EXAMPLES keys. A provisional part only notes
   * them in CONFLICTS (a later part of its version may excuse them: `excused` rows staged
   * in EXCUSED); the next part that is not provisional drops the excused ones and refuses
   * the rest along with its own.
   */
  private async refuseExistingKeys(source: string, staged: readonly TableRef[], provisional: boolean, excused: number): Promise<void> {
    const { client, opts } = this;
    const { marked: markedIn, keyCols, newAt, keyText } = this.existingKeysSql();
    const marked = (cols: string): string[] => markedIn(staged, cols);
    if (provisional) {
      // Only upserts: a version's removals are held to its last part. Noted only when there
      // is something to note (rare): the probe with a LIMIT is what every part pays.
      if (staged.length === 0) return;
      if ((await client.query(`${marked('1').join(' UNION ALL ')} LIMIT 1`)).rows.length === 0) return;
      if (!this.conflictsTable) {
        await client.query(`CREATE TEMP TABLE ${qualifiedRef(CONFLICTS)} ON COMMIT DROP AS SELECT ${keyCols}, ${newAt} FROM ${qualifiedRef(UP)} WITH NO DATA`);
        this.conflictsTable = true;
      }
      const r = await client.query(`INSERT INTO ${qualifiedRef(CONFLICTS)} ${marked(`${opts.key.map((k) => `s.${quoteIdent(k)}`).join(', ')}, s.${newAt}`).join(' UNION ALL ')}`);
      if ((r.rowCount ?? 0) > 0) this.conflictsPending = true;
      return;
    }
    if (this.conflictsPending && excused > 0) {
      await client.query(`DELETE FROM ${qualifiedRef(CONFLICTS)} AS c USING ${qualifiedRef(EXCUSED)} AS e WHERE ${keyJoin('c', 'e', opts.key)}`);
    }
    const from = [
      ...marked(`s.${newAt} AS v, ${keyText('s')} AS k`),
      ...(this.conflictsPending ? [`SELECT c.${newAt} AS v, ${keyText('c')} AS k FROM ${qualifiedRef(CONFLICTS)} AS c`] : []),
    ];
    this.conflictsPending = false;
    if (from.length === 0) return;
    // No ORDER BY: the LIMIT then lets the planner cost the probes at the few rows it needs
    // (sorting all matches made the estimate large enough to switch JIT compilation on,
    // ~0.2 s a part); which keys are shown does not matter, their order is fixed below.
    const r = await client.query<{ v: string; k: Array<string | null> }>(
      `SELECT x.v::text AS v, x.k FROM (${from.join(' UNION ALL ')}) AS x LIMIT ${EXISTING_KEY_EXAMPLES + 1}`,
    );
    if (r.rows.length === 0) return;
    throw this.existingKeysError(source, r.rows);
  }

  /** The pieces of the check of inserts whose key must be new: the staged rows whose key the target holds, and the names used. */
  private existingKeysSql(): { marked: (staged: readonly TableRef[], cols: string) => string[]; keyCols: string; newAt: string; keyText: (alias: string) => string } {
    const { opts } = this;
    const t = qualifiedRef(opts.table);
    const newAt = quoteIdent(NEW_AT_COLUMN.name);
    const marker = opts.softDelete;
    const live = marker ? ` AND t.${quoteIdent(marker.column)} ${marker.kind === 'boolean' ? 'IS NOT TRUE' : 'IS NULL'}` : '';
    // OFFSET 0 keeps the EXISTS a probe of the target's primary key per marked row: as a
    // semi-join the planner may hash the whole target (see preferIndexLookups), and most
    // staged rows are not marked at all.
    const found = `s.${newAt} ${this.appliedThrough === undefined ? 'IS NOT NULL' : `> ${this.appliedThrough}`} AND EXISTS (SELECT 1 FROM ${t} AS t WHERE ${keyJoin('t', 's', opts.key)}${live} OFFSET 0)`;
    return {
      marked: (staged, cols) => staged.map((st) => `SELECT ${cols} FROM ${qualifiedRef(st)} AS s WHERE ${found}`),
      keyCols: opts.key.map((k) => quoteIdent(k)).join(', '),
      newAt,
      keyText: (alias) => `ARRAY[${opts.key.map((k) => `${alias}.${quoteIdent(k)}::text`).join(', ')}]`,
    };
  }

  /** The refusal of inserts whose key the target holds: `rows` (version, key texts) are the first EXISTING_KEY_EXAMPLES + 1 found. */
  private existingKeysError(source: string, rows: ReadonlyArray<{ v: string; k: Array<string | null> }>): SyncError {
    const { opts } = this;
    const shown = rows.slice(0, EXISTING_KEY_EXAMPLES).sort((a, b) => Number(a.v) - Number(b.v) || String(a.k).localeCompare(String(b.k)));
    const versions = [...new Set(shown.map((x) => Number(x.v)))].sort((a, b) => a - b);
    const keys = shown.map((x) => opts.key.map((k, i) => `${k}=${describeText(x.k[i] ?? null)}`).join(', ')).join('; ');
    const more = rows.length > EXISTING_KEY_EXAMPLES ? ' and more' : '';
    return new SyncError(
      'mapping',
      `The Delta table ${source} holds duplicate keys: version${versions.length === 1 ? '' : 's'} ${versions.join(', ')} insert${versions.length === 1 ? 's' : ''} keys that ${displayName(opts.table)} already holds, from an earlier version that nothing deleted since (key column${opts.key.length === 1 ? '' : 's'} ${opts.key.join(', ')}: ${keys}${more}); the target holds one row per key and cannot hold both, so nothing of those versions was applied`,
      { table: source, ...(versions[0] === undefined ? {} : { version: versions[0] }), setting: 'duplicateKeys', hint: DUPLICATE_INSERT_HINT },
    );
  }

  /** Stages excused key rows in EXCUSED (made on first need); returns how many. */
  private async stageExcused(rows: RowBatches | undefined, encoded: EncodedRows | undefined): Promise<number> {
    if (this.excusedTable) await this.client.query(`TRUNCATE ${qualifiedRef(EXCUSED)}`);
    else {
      await this.client.query(this.tempTable(EXCUSED, this.keyColumns));
      this.excusedTable = true;
    }
    return plainStrategy(this.client, this.opts.key).stage(EXCUSED, this.keyColumns, 'delete', rows, encoded);
  }

  private tempTable(t: TableRef, cols: readonly TargetColumn[]): string {
    return `${renderCreateTable(t, cols, this.opts.key, { withoutPrimaryKey: true }).replace(/^CREATE TABLE/, 'CREATE TEMP TABLE').replace(/;$/, '')} ON COMMIT DROP`;
  }

  /** Runs `step` with hash and merge joins off when `staged` keys are few for the target (preferIndexLookups). */
  private async withIndexLookups<T>(staged: number, step: () => Promise<T>): Promise<T> {
    const restore = (await preferIndexLookups(this.client, this.opts.table, staged)) ? await indexJoinsOnly(this.client) : undefined;
    const r = await step();
    await restore?.();
    return r;
  }

  private classify(e: unknown, version = this.opts.checkpoint.version): SyncError {
    return classifyApply(e, this.opts.table, version, this.dryRun);
  }
}

/** A key value as Postgres printed it, quoted unless it reads as a number (describeKey's style). */
function describeText(v: string | null): string {
  if (v === null) return 'null';
  return /^-?\d+(\.\d+)?$/.test(v) ? v : JSON.stringify(v);
}

/** A part as COPY text for the staging tables (ApplyPart's `encoded`). */
type EncodedPart = { upserts: EncodedRows; deletes: EncodedRows; softDeletes?: EncodedRows; excused?: EncodedRows };

function* flatten(batches: Iterable<Row[]>): Generator<Row> {
  for (const b of batches) yield* b;
}

/** The message of the error the one-trip check of existing keys raises (its DETAIL: the keys as JSON, its HINT: the source). */
const EXISTING_KEYS_MESSAGE = 'delta_neon_sync: inserts of keys the target holds';

/** The keys found by the one-trip check of existing keys, as raised from its DO block. */
class ExistingKeysFound {
  constructor(readonly source: string, readonly rows: Array<{ v: string; k: Array<string | null> }>) {}
}

function existingKeysRaised(e: unknown): ExistingKeysFound | undefined {
  const x = e as { code?: unknown; message?: unknown; detail?: unknown; hint?: unknown };
  if (x?.code !== 'P0001' || x.message !== EXISTING_KEYS_MESSAGE || typeof x.detail !== 'string') return undefined;
  try {
    return new ExistingKeysFound(typeof x.hint === 'string' ? x.hint : '', JSON.parse(x.detail) as Array<{ v: string; k: Array<string | null> }>);
  } catch {
    return undefined;
  }
}

function classifyApply(e: unknown, table: TableRef, version: number | bigint, dryRun: boolean): SyncError {
  return classifyPgError(e, { table: displayName(table), version: Number(version), action: dryRun ? 'checking changes (dry run)' : 'applying changes' });
}

/**
 * The pipeline's transaction-level advisory lock (serializes the batches of one pipeline),
 * taken with pg_try_advisory_xact_lock: one round trip when it is free. When another
 * session holds it (a concurrent run, or the orphaned session of an attempt whose
 * connection was cut), it polls, says every 10 s who holds it, and gives up after the
 * session's lock_timeout (60 s when that is 0) with an error naming the holder.
 */
async function takePipelineLock(client: ClientBase, pipeline: string, table: string, onWait: ((m: string) => void) | undefined): Promise<void> {
  const key = `delta_neon_sync:${pipeline}`;
  const tryLock = async (): Promise<boolean> => (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [key])).rows[0]?.ok === true;
  if (await tryLock()) return;
  const limit = await client.query<{ ms: number }>(`SELECT setting::int AS ms FROM pg_settings WHERE name = 'lock_timeout'`);
  const maxMs = limit.rows[0]?.ms || 60_000;
  const started = Date.now();
  let told = -Infinity;
  let holder = await lockHolder(client, key);
  for (let pause = 100; ; pause = Math.min(pause * 2, 1000)) {
    const waited = Date.now() - started;
    if (waited >= maxMs) break;
    if (waited - told >= 10_000) {
      told = waited;
      onWait?.(`pipeline ${pipeline}: waiting for its transaction lock on ${table}, held by ${holder ?? 'another session'} (waited ${Math.round(waited / 1000)} s of at most ${Math.round(maxMs / 1000)} s)`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, maxMs - waited)));
    if (await tryLock()) return;
    holder = (await lockHolder(client, key)) ?? holder;
  }
  throw new SyncError('target', `Gave up after ${Math.round(maxMs / 1000)} s waiting for the transaction lock of pipeline "${pipeline}" on ${table}: it is held by ${holder ?? 'another session'}. Nothing was applied.`, {
    table,
    setting: 'lock_timeout',
    retry: 'manual',
    hint: 'Another run of this pipeline, or the leftover session of a run whose connection was cut, holds it. Wait for it to end, or end it with SELECT pg_terminate_backend(<pid>); to wait longer, raise lock_timeout=<ms> in the connection string.',
  });
}

/** `err`, and when it is a lock wait that timed out (lock_timeout), who holds `table` now. */
export async function withLockHolders(client: ClientBase, table: TableRef, err: SyncError): Promise<SyncError> {
  const holders = err.setting === 'lock_timeout' ? await tableLockHolders(client, table).catch(() => undefined) : undefined;
  return holders ? err.withContext(`held by ${holders}`) : err;
}

/**
 * `err`, and when it is a lock wait that timed out (lock_timeout) in a statement outside
 * the apply (a lease, checkpoint or run-log statement, a catalog read), who holds a lock
 * now that such a statement waits for: on the engine's state tables or on `table`, in a
 * mode stronger than a plain read's (those block none of them).
 */
export async function withStateLockHolders(client: ClientBase, table: TableRef, err: SyncError): Promise<SyncError> {
  if (err.setting !== 'lock_timeout') return err;
  const r = await client.query<{ pid: number; rel: string; app: string | null; addr: string | null; state: string | null; mode: string; since: string | null }>(
    `SELECT DISTINCT ON (a.pid) a.pid, l.relation::regclass::text AS rel, a.application_name AS app, a.client_addr::text AS addr, a.state, l.mode,
            to_char(COALESCE(a.xact_start, a.query_start), 'YYYY-MM-DD HH24:MI:SS TZ') AS since
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid JOIN pg_class c ON c.oid = l.relation
      WHERE l.locktype = 'relation' AND l.granted AND l.mode <> 'AccessShareLock' AND a.pid <> pg_backend_pid()
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND (c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) OR l.relation = to_regclass($2))
      ORDER BY a.pid LIMIT 3`,
    [STATE_SCHEMA, qualifiedRef(table)],
  ).catch(() => undefined);
  if (!r || r.rows.length === 0) return err;
  return err.withContext(`held by ${r.rows.map((h) => `pid ${h.pid} (${[`${h.mode} on ${h.rel}`, h.app ? `application ${h.app}` : undefined, h.addr ? `client ${h.addr}` : 'local client', h.state ? `state ${h.state}` : undefined, h.since ? `since ${h.since}` : undefined].filter(Boolean).join(', ')})`).join('; ')}`);
}

/** Who holds locks on `table` now, other than this session: "pid N (...)", joined by "; ". */
async function tableLockHolders(client: ClientBase, table: TableRef): Promise<string | undefined> {
  const r = await client.query<{ pid: number; app: string | null; addr: string | null; state: string | null; mode: string; since: string | null }>(
    `SELECT DISTINCT ON (a.pid) a.pid, a.application_name AS app, a.client_addr::text AS addr, a.state, l.mode,
            to_char(COALESCE(a.xact_start, a.query_start), 'YYYY-MM-DD HH24:MI:SS TZ') AS since
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'relation' AND l.granted AND l.relation = to_regclass($1) AND a.pid <> pg_backend_pid()
      ORDER BY a.pid LIMIT 3`,
    [qualifiedRef(table)],
  );
  if (r.rows.length === 0) return undefined;
  return r.rows.map((h) => `pid ${h.pid} (${[h.mode, h.app ? `application ${h.app}` : undefined, h.addr ? `client ${h.addr}` : 'local client', h.state ? `state ${h.state}` : undefined, h.since ? `since ${h.since}` : undefined].filter(Boolean).join(', ')})`).join('; ');
}

/** Who holds an advisory lock taken with hashtext(key): "pid N (application, client, state, since)". */
async function lockHolder(client: ClientBase, key: string): Promise<string | undefined> {
  const r = await client.query<{ pid: number; app: string | null; addr: string | null; state: string | null; since: string | null }>(
    `WITH k AS (SELECT hashtext($1)::bigint AS k)
     SELECT a.pid, a.application_name AS app, a.client_addr::text AS addr, a.state, to_char(COALESCE(a.query_start, a.xact_start), 'YYYY-MM-DD HH24:MI:SS TZ') AS since
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, k
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.classid::bigint = ((k.k >> 32) & 4294967295) AND l.objid::bigint = (k.k & 4294967295) AND a.pid <> pg_backend_pid()
      LIMIT 1`,
    [key],
  );
  const h = r.rows[0];
  if (!h) return undefined;
  const parts = [h.app ? `application ${h.app}` : undefined, h.addr ? `client ${h.addr}` : 'local client', h.state ? `state ${h.state}` : undefined, h.since ? `since ${h.since}` : undefined];
  return `pid ${h.pid} (${parts.filter(Boolean).join(', ')})`;
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
  return indexLookupsPay(await targetReltuples(client, table), staged);
}

/** The table's reltuples (-1: never vacuumed or analyzed), or undefined when it does not exist. */
async function targetReltuples(client: ClientBase, table: TableRef): Promise<number | undefined> {
  const r = await client.query<{ n: number | null }>(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass($1)`, [qualifiedRef(table)]);
  return r.rows[0]?.n ?? undefined;
}

/** preferIndexLookups' rule, for a table of `reltuples` rows. */
function indexLookupsPay(reltuples: number | undefined, staged: number): boolean {
  // reltuples is -1 for a table never vacuumed or analyzed: no basis, leave it to the planner.
  return staged > 0 && reltuples !== undefined && reltuples > 0 && staged * 20 <= reltuples;
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
