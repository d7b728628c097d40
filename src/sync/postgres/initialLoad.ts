import { beginSql, beginTransaction, inTransaction } from './transaction';
import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { SyncError, isSyncError } from '../errors';
import { classifyPgError, pgErrorFields } from './classifyPgError';
import { copyEncodedStream, copyRows, isWireClient } from './copyRows';
import type { EncodedRows, RowBatches } from '../ports/targetTypes';
import { keyJoin, upsertFromStagingSql } from './mergeSql';
import { lineageTableColumns, lineageTargetColumns } from '../plan/lineage';
import { ensureLineageColumns } from './lineageColumns';
import type { LineageColumns } from '../ports/targetTypes';
import { derivedName, displayName, qualifiedRef, quoteIdent, quoteLiteral } from './quoteIdent';
import type { TableRef } from '../ports/targetTypes';
import { DEFAULT_FILLFACTOR, validateColumns } from './renderCreateTable';
import type { TargetColumn } from '../ports/targetTypes';
import { ensureMarkerColumn, isLiveSql, renderCreateTableWithMarker } from './softDeleteMarker';
import { markerTargetColumn } from '../plan/applyDeletePolicy';
import type { SoftDeleteMarker } from '../ports/targetTypes';
import { commitWithCheckpoint, ensureStateTables, writeDeadLetters } from './stateTables';
import { stageIsolating, withIsolation } from './isolateRows';
import { notRejectedKeySql, setAsideViolations, stagingRejectedKeys } from './loadDeadLetters';
import { findSwapBlockers } from './swapBlockers';
import { swapBlockedError } from '../ports/swapBlocked';
import type { RejectedRow } from '../ports/targetTypes';
import type { CheckpointInput } from '../ports/targetTypes';
import type { InitialLoadResult } from '../ports/targetTypes';

export interface InitialLoadOptions {
  /** The state schema and tables were just seen complete (the run's rights check): their check is skipped, one round trip. */
  stateReady?: boolean;
  /**
   * Statements (no parameters) run in the swap's or merge's transaction after the
   * checkpoint's, given the load's counts, so they commit with it or not at all (the run's
   * end: PostgresTarget, InitialLoadRequest.endRun).
   */
  after?: (result: InitialLoadResult) => string[];
  table: TableRef;
  /** Data columns (without the soft-delete marker, which `softDelete` adds). */
  columns: readonly TargetColumn[];
  key: readonly string[];
  /** The snapshot's rows, or their COPY text for `columns` already encoded (copyRows' encodeRows, e.g. on a worker thread). */
  rows: RowBatches | { encoded: AsyncIterable<EncodedRows>; parallel?: Array<AsyncIterable<EncodedRows>> };
  /**
   * swap: the loaded table replaces the target (indexes, constraints, grants, comments and
   * publication membership of the old table are recreated on it). Refused (swapBlocked)
   * when the target has row triggers or rules (the load would bypass them), views or
   * materialized views on it, or foreign keys of other tables pointing at it.
   * merge: the target is kept and brought to the snapshot (upsert changed rows, delete
   * rows whose key is not in the snapshot); use it when other tables reference the target.
   */
  mode: 'swap' | 'merge';
  checkpoint: CheckpointInput;
  onRows?: (count: number) => void;
  /**
   * Soft-delete policy: the table gets the marker column and every loaded row is live
   * (false / NULL, the column default, so rows need not carry it). In merge mode, target
   * rows whose key is not in the snapshot are marked deleted (true / the snapshot's commit
   * time, kept when already marked) instead of deleted, and rows of the snapshot that
   * were marked become live again. An existing target lacking the column gets it (warning).
   */
  softDelete?: SoftDeleteMarker;
  /**
   * Heap fillfactor of the table the load creates (a swap, or a merge into a missing
   * table). Default: the replaced table's own fillfactor, else DEFAULT_FILLFACTOR. A swap
   * always carries the replaced table's other storage parameters (autovacuum settings,
   * toast.*) over; a merge into an existing table changes nothing of its storage.
   */
  fillfactor?: number;
  /**
   * Lineage columns: the staging table gets them with the snapshot's version and commit
   * timestamp and now() as defaults (the COPY leaves them out: no per-row work), dropped
   * before a swap. A merge adds missing ones to the target in its transaction, and with
   * `version` neither updates nor deletes target rows newer than the snapshot (the
   * out-of-order guard; a swap replaces the table, no guard).
   */
  lineage?: LineageColumns;
  /**
   * Set rows the target refuses aside in delta_neon_sync.dead_letters (committed with the
   * load) and load the rest: rows the encoder or the staging table refuses (a value the
   * column cannot hold, a null key); in a swap, rows the old table's CHECK, UNIQUE and
   * foreign-key constraints would refuse (loadDeadLetters); in a merge, rows the upsert
   * refuses (constraints, triggers raising), isolated under savepoints (isolateRows).
   * Needs `rows`: COPY text already encoded is loaded as it is (a refused line fails the load).
   */
  deadLetter?: boolean;
  /**
   * A merge only: schema changes of the existing table (ALTER TABLE statements, rendered by
   * alterTableSql), run first in the merge's transaction, under its lock, so they commit or
   * roll back with the rows and the checkpoint.
   */
  ddl?: readonly string[];
  /** Called as the load passes its steps: stage (COPY), index (primary key), swap (the transaction that swaps or merges). */
  onPhase?: (phase: 'stage' | 'index' | 'swap', detail: string) => void;
  /** Safe deletes (InitialLoadRequest.deleteLimit): checked in the load's transaction, before the swap or the commit. */
  deleteLimit?: { max: number; refuse(deletes: number): Promise<Error> };
  /** InitialLoadRequest.rehearse: the swap or merge transaction is rolled back (no checkpoint), the staging table dropped. */
  rehearse?: boolean;
}

/** Staged rows from which a swap's indexes are built on a connection of their own, beside the primary key. */
const BESIDE_MIN_ROWS = 100_000;

/** Staged rows per COPY chunk when rows are set aside (a savepoint each). */
const STAGE_CHUNK_ROWS = 10_000;

/**
 * A staging failure as the user should see it: a null key names the target table, the key
 * column and the version (not the internal staging table); any other error of the staging
 * table is reported on the target.
 */
function stagingError(e: unknown, staging: TableRef, label: string, key: readonly string[], version: number): unknown {
  // A value the encoder refuses (NUL, out of range; here or on the reader's thread) names
  // its column only: add where.
  if (isSyncError(e) && e.kind === 'target' && e.table === undefined) return e.withContext(`loading the snapshot of version ${version} into ${label}`, { table: label, version });
  const f = pgErrorFields(e);
  if (!f || f.table !== staging.name) return e;
  if (f.code === '23502' && f.column !== undefined && key.includes(f.column)) {
    return new SyncError('target', `The snapshot at version ${version} has a row whose key column "${f.column}" is null; ${label} cannot hold it (key columns are NOT NULL).`, {
      table: label,
      column: f.column,
      version,
      setting: 'deadLetter',
      retry: 'manual',
      cause: e,
      hint: `Fix the rows with a null "${f.column}" in the Delta table or filter them out ("filter": [{ "column": ..., "op": "is not null" }]), or set "deadLetter": true in the mapping to set them aside in delta_neon_sync.dead_letters and load the rest.`,
    });
  }
  const message = f.message.split(staging.name).join(label);
  return classifyPgError(Object.assign(new Error(message), { ...f, message, table: undefined, schema: undefined }), { table: label, version, action: 'loading the snapshot' });
}

interface TargetInfo {
  oid: number;
  relkind: string;
  owner: string;
  /** The table's indexes a swap recreates (plain ones, and those of its UNIQUE constraints), as read before the load. */
  indexes: OldIndex[];
}

/** An index of the table a swap replaces: a plain one (constraint null) or a UNIQUE constraint's. */
interface OldIndex {
  index: string;
  def: string;
  constraint: string | null;
  condef: string | null;
}

async function targetInfo(client: PoolClient, schema: string, name: string): Promise<TargetInfo | undefined> {
  // The indexes come with it (no round trip of their own): the ones swapIn recreates, minus
  // the UNIQUE constraints it could not attach from a prebuilt index (deferrable, or with a
  // tablespace or INCLUDE columns: built in the swap as before).
  const r = await client.query<TargetInfo>(
    `SELECT c.oid::int8::float8 AS oid, c.relkind::text AS relkind, pg_get_userbyid(c.relowner) AS owner,
            (SELECT coalesce(json_agg(json_build_object('index', ic.relname, 'def', pg_get_indexdef(i.indexrelid), 'constraint', k.conname, 'condef', pg_get_constraintdef(k.oid)) ORDER BY ic.relname), '[]'::json)
               FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
               LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = c.oid
              WHERE i.indrelid = c.oid AND NOT i.indisprimary
                AND (k.oid IS NULL OR (k.contype = 'u' AND NOT k.condeferrable))
                AND NOT EXISTS (SELECT 1 FROM pg_constraint o WHERE o.conindid = i.indexrelid AND o.conrelid = c.oid AND o.oid IS DISTINCT FROM k.oid)) AS indexes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, name],
  );
  return r.rows[0];
}

/** An index of the old table built on the staging table before the swap's transaction, attached in it. */
interface Prebuilt extends OldIndex {
  /** Its name on the staging table (dropped with it). */
  temp: string;
  /** The CREATE INDEX on the staging table. */
  sql: string;
}

const IDENT = String.raw`(?:"(?:[^"]|"")*"|[^\s."]+)`;
const INDEX_DEF = new RegExp(`^CREATE (UNIQUE )?INDEX ${IDENT} ON (ONLY )?${IDENT}(?:\\.${IDENT})? (USING [\\s\\S]*)$`);
/** A UNIQUE constraint ADD CONSTRAINT ... USING INDEX recreates as it was (its index prints every other option). */
const PLAIN_UNIQUE = /^UNIQUE (NULLS NOT DISTINCT )?\([^()]*\)( WITH \([^()]*\))?$/;

/**
 * The old table's indexes to build on the staging table before the swap (outside its lock,
 * beside the primary key): pg_get_indexdef's text with the staging table and a name of the
 * load. One whose definition does not parse, or a UNIQUE constraint USING INDEX would not
 * give back as it was, is left to the swap, which builds it as before.
 */
function prebuildPlan(indexes: readonly OldIndex[], staging: TableRef, target: TableRef, suffix: string): Prebuilt[] {
  const out: Prebuilt[] = [];
  for (const x of indexes) {
    const m = INDEX_DEF.exec(x.def);
    if (!m || (x.constraint !== null && (m[1] === undefined || !PLAIN_UNIQUE.test(x.condef ?? '')))) continue;
    const temp = derivedName(target.name, `${suffix}_ix${out.length + 1}`);
    out.push({ ...x, temp, sql: `CREATE ${m[1] ?? ''}INDEX ${quoteIdent(temp)} ON ${m[2] ?? ''}${qualifiedRef(staging)} ${m[3] as string}` });
  }
  return out;
}

/**
 * A prebuilt index's failure as the swap's own build of it would have reported it: on the
 * target, under the index's (or constraint's) name, not the staging table's and the load's.
 */
function prebuildError(e: unknown, p: Prebuilt, staging: TableRef, target: TableRef): unknown {
  const f = pgErrorFields(e);
  if (!f) return e;
  const name = p.constraint ?? p.index;
  const fix = (s: string | undefined): string | undefined => s?.split(p.temp).join(name).split(staging.name).join(target.name);
  const message = fix(f.message) as string;
  return Object.assign(new Error(message), { ...f, message, detail: fix(f.detail), table: f.table === staging.name ? target.name : f.table, constraint: fix(f.constraint) });
}

/**
 * Loads a full snapshot: COPY into a fresh staging table without indexes (in the target's
 * schema), build the primary key (which also rejects duplicate source keys), then in ONE
 * transaction swap or merge it in and write the checkpoint. A failure at any point leaves
 * the target and the checkpoint as they were and drops the staging table.
 */
export async function initialLoad(pool: Pool, opts: InitialLoadOptions): Promise<InitialLoadResult> {
  validateColumns(opts.softDelete ? [...opts.columns, markerTargetColumn(opts.softDelete)] : opts.columns, opts.key, opts.table);
  const client = await pool.connect();
  let broken: SyncError | undefined;
  let staging: TableRef | undefined;
  const label = displayName(opts.table);
  try {
    if (!opts.stateReady) await ensureStateTables(client);
    const schema = opts.table.schema ?? ((await client.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]?.s as string);
    const target: TableRef = { schema, name: opts.table.name };
    const existing = await targetInfo(client, schema, target.name);
    if (existing && existing.relkind !== 'r') {
      throw new SyncError('target', `${label} exists but is not a plain table (relkind ${existing.relkind}).`, { table: label });
    }
    const suffix = `__dns_${randomBytes(4).toString('hex')}`;
    staging = { schema, name: derivedName(target.name, suffix) };
    const stagingPk = derivedName(target.name, `${suffix}_pk`);
    const swap = opts.mode === 'swap' || !existing;
    // Only a staging table that is thrown away may be UNLOGGED; a swapped-in table must be
    // logged (SET LOGGED later would rewrite it).
    const marker = opts.softDelete;
    // The marker column comes with its default (live), so COPY leaves it out.
    // A swapped-in table keeps the old one's storage parameters; set before COPY so the
    // fillfactor shapes the pages as they are written.
    const storage = swap ? await storageParameters(client, existing?.oid) : [];
    const oldFillfactor = storage.find((p) => p.name === 'fillfactor');
    const fillfactor = swap ? (opts.fillfactor ?? (oldFillfactor ? undefined : DEFAULT_FILLFACTOR)) : undefined;
    // The staging table's DDL: sent with the COPY (one round trip), or on its own first.
    const ddl: string[] = [renderCreateTableWithMarker(staging, opts.columns, opts.key, marker, { withoutPrimaryKey: true, unlogged: !swap, fillfactor }).replace(/;\s*$/, '')];
    const lineage = opts.lineage;
    const lineageCols = lineageTableColumns(lineage);
    if (lineageCols.length > 0) {
      ddl.push(`ALTER TABLE ${qualifiedRef(staging)} ${lineageCols.map((c) => `ADD COLUMN ${quoteIdent(c.name)} ${c.pgType} DEFAULT ${lineageDefault(c.name, lineage as LineageColumns, opts.checkpoint)}`).join(', ')}`);
    }
    const carried = storage.filter((p) => !(p.name === 'fillfactor' && fillfactor !== undefined));
    if (carried.length > 0) {
      // Names and values come from the catalog; both are quoted anyway.
      const list = carried.map((p) => `${p.name.split('.').map(quoteIdent).join('.')} = ${quoteLiteral(p.value)}`).join(', ');
      ddl.push(`ALTER TABLE ${qualifiedRef(staging)} SET (${list})`);
    }
    const t0 = Date.now();
    opts.onPhase?.('stage', `COPY of the snapshot into a staging table beside ${label}`);
    const source = opts.rows;
    const rejected: RejectedRow[] = [];
    const isolate = opts.deadLetter === true && !('encoded' in source);
    let rows: number;
    // A plain COPY goes out in ONE query with the staging table's DDL (committed first in a
    // transaction of its own, as before: dropStagingLeftovers finds what a killed load left)
    // and its own transaction's BEGIN (both with the pool's limits), its data right behind
    // (copyRows: pipelined); its COMMIT goes with the primary key's statements below.
    // Not on the sandbox, whose client emulates COPY with a statement of its own.
    // A parallel load COPYs on several connections: the staging table is committed first, on its own.
    const parallel = 'encoded' in source && (source.parallel?.length ?? 0) > 0;
    const oneTrip = !isolate && !parallel && isWireClient(client);
    const before = [beginSql(client), ...ddl, 'COMMIT', beginSql(client)].join(';\n');
    try {
      const into = staging;
      if (!oneTrip && !isolate) for (const statement of ddl) await client.query(statement);
      if ('encoded' in source && parallel) rows = await copyParallel(pool, client, into, opts.columns, [source.encoded, ...(source.parallel ?? [])], opts.onRows);
      else if (oneTrip && 'encoded' in source) rows = await copyEncodedStream(client, into, opts.columns, source.encoded, opts.onRows, before);
      else if (oneTrip && !('encoded' in source)) rows = await copyRows(client, into, opts.columns, source, { onRows: opts.onRows, before });
      // In a transaction of their own, so they run under the pool's limits (SET LOCAL).
      else if ('encoded' in source) rows = await inTransaction(client, () => copyEncodedStream(client, into, opts.columns, source.encoded, opts.onRows));
      else if (!isolate) rows = await inTransaction(client, () => copyRows(client, into, opts.columns, source, { onRows: opts.onRows }));
      else {
        for (const statement of ddl) await client.query(statement);
        // Savepoints (one per COPY chunk) need a transaction; the staging table outlives it.
        await beginTransaction(client);
        rows = await stageIsolating(client, staging, opts.columns, opts.key, source, 'upsert', rejected, STAGE_CHUNK_ROWS);
        await client.query('COMMIT');
        opts.onRows?.(rows);
      }
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw stagingError(e, staging, label, opts.key, Number(opts.checkpoint.version));
    }
    const t1 = Date.now();
    // The old table's indexes and UNIQUE constraints a swap recreates are built here, outside
    // the swap's lock: beside the primary key on a connection of their own when the pool has
    // one to spare (one is left for the run lease's heartbeat; two builds on one table take
    // SHARE locks, which do not conflict) and the table is large, else after it in its
    // transaction. The swap attaches them by name.
    // Not with dead letters: the swap sets the rows they would refuse aside first.
    const prebuilt = swap && existing && !isolate ? prebuildPlan(existing.indexes, staging, target, suffix) : [];
    const poolSize = (pool as Partial<Pick<Pool, 'options'>>).options?.max ?? 1;
    // A small table's indexes take less than the connection would cost (its TCP, TLS and login round trips).
    const beside = prebuilt.length > 0 && isWireClient(client) && poolSize >= 3 && rows >= BESIDE_MIN_ROWS;
    const after = beside ? [] : prebuilt.map((p) => p.sql);
    opts.onPhase?.('index', `primary key (${opts.key.join(', ')})${prebuilt.length > 0 ? ` and ${prebuilt.length} index(es) of ${label}` : ''} on ${rows} row(s)`);
    const indexed = staging;
    const buildKey = async (): Promise<void> => {
      const addPk = `ALTER TABLE ${qualifiedRef(indexed)} ADD CONSTRAINT ${quoteIdent(stagingPk)} PRIMARY KEY (${opts.key.map(quoteIdent).join(', ')})`;
      try {
        // The COPY's COMMIT, then the key (and the indexes not built beside it) and ANALYZE in a transaction with the limits: one round trip.
        if (oneTrip) await client.query([`COMMIT`, beginSql(client), addPk, ...after, `ANALYZE ${qualifiedRef(indexed)}`, 'COMMIT'].join(';\n'));
        else {
          // Outside a transaction: the pool's connections run it in one of its own with the
          // limits, in one round trip (limitStatementsOutsideTransactions).
          for (const statement of [addPk, ...after, `ANALYZE ${qualifiedRef(indexed)}`]) await client.query(statement);
        }
      } catch (e) {
        if (oneTrip) await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    };
    // A beside build's CREATE INDEX waits for the COPY's COMMIT (its lock), sent with the key's statements.
    const buildBeside = async (): Promise<void> => {
      const c = await pool.connect();
      let ok = false;
      try {
        await c.query([beginSql(c), ...prebuilt.map((p) => p.sql), 'COMMIT'].join(';\n'));
        ok = true;
      } catch (e) {
        ok = await c.query('ROLLBACK').then(() => true, () => false);
        throw e;
      } finally {
        c.release(!ok);
      }
    };
    const [keyBuilt, besideBuilt] = await Promise.allSettled([buildKey(), beside ? buildBeside() : Promise.resolve()]);
    // The key's failure first (a duplicate source key says more than an index's), as when the swap built them.
    const failure = keyBuilt.status === 'rejected' ? keyBuilt.reason as unknown : besideBuilt.status === 'rejected' ? besideBuilt.reason as unknown : undefined;
    if (failure !== undefined) {
      const f = pgErrorFields(failure);
      const failed = f ? prebuilt.find((p) => f.constraint === p.temp || f.message.includes(p.temp)) : undefined;
      if (failed) throw prebuildError(failure, failed, staging, target);
      if (f?.code === '23505') {
        throw new SyncError('target', `The source snapshot has the same key twice; the key (${opts.key.join(', ')}) is not unique. ${f.detail ?? ''}`.trim(), {
          table: label,
          version: Number(opts.checkpoint.version),
          setting: 'key',
          hint: 'Choose key columns that are unique in the Delta table (key of the mapping), or remove the duplicate rows from it.',
          cause: failure,
        });
      }
      throw failure;
    }
    const t2 = Date.now();
    const result: InitialLoadResult = {
      mode: opts.mode,
      rows,
      createdTable: !existing,
      inserted: 0,
      updated: 0,
      deleted: 0,
      unchanged: 0,
      warnings: [],
      timings: { copyMs: t1 - t0, indexMs: t2 - t1, commitMs: 0 },
      deadLettered: 0,
      ...(marker ? { softDeleted: 0 } : {}),
    };
    opts.onPhase?.('swap', swap ? `swap into ${label}` : `merge into ${label}`);
    // A new table by a plain load: the renames, the checkpoint and the COMMIT in one round trip.
    const newTable = swap && !existing && !isolate && lineageCols.length === 0 && !opts.rehearse;
    if (!newTable) await beginTransaction(client);
    let rehearsedStaging: TableRef | undefined;
    try {
      if (newTable) {
        result.inserted = rows;
        await commitWithCheckpoint(client, { ...opts.checkpoint, reload: true }, rows, undefined, [beginSql(client), ...newTableSwapSql(target, staging, stagingPk)], opts.after?.(result));
        staging = undefined; // it is the target now
        result.timings.commitMs = Date.now() - t2;
        return result;
      }
      if (swap) {
        let setAside = 0;
        if (existing && isolate) {
          await client.query(`LOCK TABLE ${qualifiedRef(target)} IN ACCESS EXCLUSIVE MODE`);
          setAside = await setAsideViolations(client, existing.oid, staging, opts.columns, opts.key, rejected);
        }
        if (existing && opts.deleteLimit) {
          // The rows the swap would delete: the old table's live keys the snapshot lacks
          // (counted under a lock that keeps them from changing until the swap).
          await client.query(`LOCK TABLE ${qualifiedRef(target)} IN SHARE ROW EXCLUSIVE MODE`);
          const gone = await client.query<{ n: string }>(
            `SELECT count(*)::text AS n FROM ${qualifiedRef(target)} AS t WHERE ${marker ? `${isLiveSql('t', marker)} AND ` : ''}NOT EXISTS (SELECT 1 FROM ${qualifiedRef(staging)} AS s WHERE ${keyJoin('s', 't', opts.key)})`,
          );
          const deletes = Number(gone.rows[0]?.n ?? 0);
          if (deletes > opts.deleteLimit.max) throw await opts.deleteLimit.refuse(deletes);
        }
        // A rehearsal counts what the swap changes (a swap itself only reports the rows it swaps in).
        const diff = opts.rehearse && existing ? await swapDiff(client, target, staging, opts.columns, opts.key, marker, await columnTypes(client, existing.oid)) : undefined;
        if (lineageCols.length > 0) await client.query(`ALTER TABLE ${qualifiedRef(staging)} ${lineageCols.map((c) => `ALTER COLUMN ${quoteIdent(c.name)} DROP DEFAULT`).join(', ')}`);
        await swapIn(client, target, staging, stagingPk, existing, result.warnings, prebuilt);
        // It is the target now (until a rehearsal's rollback gives it its name back).
        rehearsedStaging = staging;
        staging = undefined;
        result.inserted = rows - setAside;
        if (diff) Object.assign(result, { inserted: diff.inserted - setAside, updated: diff.updated, deleted: diff.deleted, unchanged: rows - diff.inserted - diff.updated });
      } else {
        await client.query(`LOCK TABLE ${qualifiedRef(target)} IN SHARE ROW EXCLUSIVE MODE`);
        // The schema changes first (each takes its own stronger lock), so the merge below writes the new columns.
        for (const statement of opts.ddl ?? []) await client.query(statement);
        // A key whose row was refused before staging is not in the staging table, yet is in
        // the snapshot: its target row is kept as it is (the refused row is a dead letter).
        const refusedKeys = stagingRejectedKeys(rejected);
        const keepRefused = refusedKeys === '[]' ? '' : ` AND ${notRejectedKeySql(opts.key, marker && marker.kind !== 'boolean' ? 2 : 1)}`;
        const notInSnapshot = `NOT EXISTS (SELECT 1 FROM ${qualifiedRef(staging)} AS s WHERE ${keyJoin('s', 't', opts.key)})${keepRefused}`;
        let upsertColumns = opts.columns;
        const types = marker || lineage ? await columnTypes(client, (existing as TargetInfo).oid) : new Map<string, string>();
        if (lineage) {
          const added = await ensureLineageColumns(client, target, lineage, types);
          if (added) result.warnings.push(added);
        }
        // The out-of-order guard for rows the snapshot lacks: a row a later version wrote stays.
        const snapshotVersion = BigInt(opts.checkpoint.version).toString();
        const ver = lineage?.version ? quoteIdent(lineage.version) : undefined;
        const notNewer = ver ? ` AND (t.${ver} IS NULL OR t.${ver} <= ${snapshotVersion})` : '';
        const lineageSets = lineageCols.map((c) => `, ${quoteIdent(c.name)} = ${lineageDefault(c.name, lineage as LineageColumns, opts.checkpoint)}`).join('');
        if (ver) {
          const refused = refusedKeys === '[]' ? '' : ` AND ${notRejectedKeySql(opts.key, 1)}`;
          const kept = await client.query<{ n: string }>(
            `SELECT count(*)::text AS n FROM ${qualifiedRef(target)} AS t
              WHERE NOT EXISTS (SELECT 1 FROM ${qualifiedRef(staging)} AS s WHERE ${keyJoin('s', 't', opts.key)})${refused} AND t.${ver} > ${snapshotVersion}${marker ? ` AND ${isLiveSql('t', marker)}` : ''}`,
            refused ? [refusedKeys] : [],
          );
          result.keptByGuard = Number(kept.rows[0]?.n ?? 0);
        }
        if (marker) {
          const added = await ensureMarkerColumn(client, target, marker, types);
          if (added) result.warnings.push(added);
          // A row already marked keeps its mark (and its original delete time).
          const deletedValue = marker.kind === 'boolean' ? 'true' : 'COALESCE($1::timestamptz, clock_timestamp())';
          const soft = await client.query(
            `UPDATE ${qualifiedRef(target)} AS t SET ${quoteIdent(marker.column)} = ${deletedValue}${lineageSets} WHERE ${isLiveSql('t', marker)} AND ${notInSnapshot}${notNewer}`,
            [...(marker.kind === 'boolean' ? [] : [commitTimeParam(opts.checkpoint.commitTimestamp)]), ...(keepRefused ? [refusedKeys] : [])],
          );
          result.softDeleted = soft.rowCount ?? 0;
          upsertColumns = [...opts.columns, markerTargetColumn(marker)];
        }
        const del = marker ? undefined : await client.query(`DELETE FROM ${qualifiedRef(target)} AS t WHERE ${notInSnapshot}${notNewer}`, keepRefused ? [refusedKeys] : []);
        const staged = [...upsertColumns, ...lineageTargetColumns(lineage)];
        const upsert = async (where: string): Promise<{ inserted: number; updated: number; kept: number }> => {
          const up = await client.query<{ inserted: bigint; updated: bigint; kept?: bigint }>(upsertFromStagingSql(target, staging as TableRef, staged, opts.key, where ? `WHERE ${where}` : '', lineage));
          return { inserted: Number(up.rows[0]?.inserted ?? 0n), updated: Number(up.rows[0]?.updated ?? 0n), kept: Number(up.rows[0]?.kept ?? 0n) };
        };
        // With dead letters, rows the upsert refuses (constraints, triggers raising) are
        // isolated under savepoints and set aside; the others are applied.
        const up = isolate
          ? await withIsolation(client, staging, opts.columns, opts.key, 'upsert', upsert, { inserted: 0, updated: 0, kept: 0 }, rejected)
          : { counts: await upsert(''), refused: 0 };
        result.deleted = del?.rowCount ?? 0;
        const deletes = result.deleted + (result.softDeleted ?? 0);
        if (opts.deleteLimit && deletes > opts.deleteLimit.max) throw await opts.deleteLimit.refuse(deletes);
        result.inserted = up.counts.inserted;
        result.updated = up.counts.updated;
        if (result.keptByGuard !== undefined) result.keptByGuard += up.counts.kept;
        result.unchanged = rows - up.refused - result.inserted - result.updated - up.counts.kept;
      }
      await writeDeadLetters(client, rejected.map((r) => ({
        pipeline: opts.checkpoint.pipeline, keyJson: r.keyJson, rowJson: r.rowJson, sqlstate: r.sqlstate, message: r.message, version: opts.checkpoint.version,
      })));
      result.deadLettered = rejected.length;
      if (opts.rehearse) {
        // Everything the load would do has run; none of it is kept, nor the checkpoint.
        await client.query('ROLLBACK');
        if (rehearsedStaging) staging = rehearsedStaging;
      } else {
        await commitWithCheckpoint(client, { ...opts.checkpoint, reload: true }, rows - rejected.filter((r) => r.phase === 'apply').length, undefined, [], opts.after?.(result));
      }
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (swap && staging === undefined) staging = { schema, name: derivedName(target.name, suffix) };
      throw e;
    }
    result.timings.commitMs = Date.now() - t2;
    return result;
  } catch (e) {
    const err = classifyPgError(e, { table: label, version: Number(opts.checkpoint.version), action: 'loading the snapshot' });
    // A connection that failed, or that a Stop cut off, is not handed back to the pool.
    if (err.kind === 'connection' || err.kind === 'cancelled') broken = err;
    throw err;
  } finally {
    const drop = staging ? `DROP TABLE IF EXISTS ${qualifiedRef(staging)}` : undefined;
    const dropped = drop !== undefined && !broken && (await client.query(drop).then(() => true, () => false));
    client.release(broken);
    if (drop !== undefined && !dropped && broken?.kind === 'cancelled') {
      // A Stop cut the load's own connection off: drop the staging table from another one,
      // once the server has ended that session's lock on it (bounded by lock_timeout). A
      // connection that broke (network, server) is not retried here, where the server may
      // not answer: the next load drops the leftover (Target.dropStagingLeftovers).
      const other = await pool.connect().catch(() => undefined);
      if (other) {
        const ok = await other.query(drop).then(() => true, () => false);
        other.release(!ok);
      }
    }
  }
}

/**
 * What swapping `staging` in for `target` changes, by key: inserted (staged keys the table
 * lacks), updated (keys in both whose data columns print differently, or a column the
 * table lacks), deleted (live keys the snapshot lacks). Values are compared as text, so a
 * column whose type differs between the tables still compares.
 */
async function swapDiff(
  client: PoolClient, target: TableRef, staging: TableRef, columns: readonly TargetColumn[], key: readonly string[], marker: SoftDeleteMarker | undefined,
  targetColumns: ReadonlyMap<string, string>,
): Promise<{ inserted: number; updated: number; deleted: number }> {
  const t = qualifiedRef(target);
  const s = qualifiedRef(staging);
  const nonKey = columns.filter((c) => !key.includes(c.name));
  // A column the table lacks: every matched row changes (the swapped-in table has it).
  if (nonKey.some((c) => !targetColumns.has(c.name))) return swapDiffCounts(client, t, s, 'true', key, marker);
  return swapDiffCounts(client, t, s, differsSql(nonKey.map((c) => quoteIdent(c.name))), key, marker);
}

function differsSql(data: readonly string[]): string {
  return data.length === 0 ? 'false' : `(${data.map((c) => `s.${c}::text`).join(', ')}) IS DISTINCT FROM (${data.map((c) => `t.${c}::text`).join(', ')})`;
}

async function swapDiffCounts(client: PoolClient, t: string, s: string, differs: string, key: readonly string[], marker: SoftDeleteMarker | undefined): Promise<{ inserted: number; updated: number; deleted: number }> {
  const live = marker ? `${isLiveSql('t', marker)} AND ` : '';
  const r = await client.query<{ inserted: string; updated: string; deleted: string }>(
    `SELECT (SELECT count(*) FROM ${s} AS s WHERE NOT EXISTS (SELECT 1 FROM ${t} AS t WHERE ${live}${keyJoin('s', 't', key)}))::text AS inserted,
            (SELECT count(*) FROM ${s} AS s JOIN ${t} AS t ON ${live}${keyJoin('s', 't', key)} WHERE ${differs})::text AS updated,
            (SELECT count(*) FROM ${t} AS t WHERE ${live}NOT EXISTS (SELECT 1 FROM ${s} AS s WHERE ${keyJoin('s', 't', key)}))::text AS deleted`,
  );
  const row = r.rows[0];
  return { inserted: Number(row?.inserted ?? 0), updated: Number(row?.updated ?? 0), deleted: Number(row?.deleted ?? 0) };
}

/** The swap of a staging table into a table that does not exist: its rename and its primary key's. */
function newTableSwapSql(target: TableRef, staging: TableRef, stagingPk: string): string[] {
  return [
    `ALTER TABLE ${qualifiedRef(staging)} RENAME TO ${quoteIdent(target.name)}`,
    `ALTER TABLE ${qualifiedRef(target)} RENAME CONSTRAINT ${quoteIdent(stagingPk)} TO ${quoteIdent(derivedName(target.name, '_pkey'))}`,
  ];
}

/**
 * COPYs the streams into the (committed, unindexed) staging table at the same time: on
 * `client` and on up to (the pool's size - 2) connections of its own (one is left for the
 * run lease's heartbeat), each COPY in a transaction of its own; with fewer connections
 * than streams, a connection takes the next stream when its COPY is done (a stream's
 * reader starts when it is taken). The target is untouched until the swap transaction, so
 * a stream that fails or a killed process leaves it as it was (the staging table is
 * dropped by the caller, or by the next load as a leftover). When one stream fails, the
 * others stop at their next chunk and roll back; all have ended before this returns or throws.
 */
async function copyParallel(pool: Pool, client: PoolClient, table: TableRef, columns: readonly TargetColumn[], streams: Array<AsyncIterable<EncodedRows>>, onRows?: (count: number) => void): Promise<number> {
  const poolSize = (pool as Partial<Pick<Pool, 'options'>>).options?.max ?? 1;
  const extra = Math.max(0, Math.min(streams.length - 1, poolSize - 2));
  let failed = false;
  let next = 0;
  let total = 0;
  async function* stopping(stream: AsyncIterable<EncodedRows>): AsyncGenerator<EncodedRows> {
    for await (const part of stream) {
      if (failed) throw new Error(STOPPED);
      yield part;
    }
  }
  /** One connection: COPYs streams until none is left. */
  const slot = async (c: PoolClient): Promise<void> => {
    try {
      while (!failed && next < streams.length) {
        const stream = streams[next++] as AsyncIterable<EncodedRows>;
        // Not `total += await ...`: that reads `total` before the await, losing the other streams' rows.
        const n = await inTransaction(c, () => copyEncodedStream(c, table, columns, stopping(stream), onRows));
        total += n;
      }
    } catch (e) {
      failed = true;
      throw e;
    }
  };
  const others = Array.from({ length: extra }, async () => {
    let c: PoolClient;
    try {
      c = await pool.connect();
    } catch (e) {
      failed = true;
      throw e;
    }
    let ok = false;
    try {
      await slot(c);
      ok = true;
    } finally {
      // A connection whose COPY failed may be mid-protocol: not handed back to the pool.
      c.release(!ok);
    }
  });
  const settled = await Promise.allSettled([slot(client), ...others]);
  // The error that stopped the others, not their own 'stopped'.
  const errors = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (errors.length > 0) throw errors.find((e) => !(e instanceof Error && e.message === STOPPED)) ?? errors[0];
  return total;
}

const STOPPED = 'stopped: another COPY stream of the load failed';

interface AclEntry {
  grantee: string | null;
  privilege_type: string;
  is_grantable: boolean;
  column: string | null;
}

/**
 * Inside the caller's transaction: replace `target` by `staging`. Everything attached to
 * the old table is read from the catalogs first and recreated on the new one under the
 * same names. Tables with triggers, rules, dependent views or incoming foreign keys are
 * refused (findSwapBlockers), as is any other dependent DROP TABLE finds (never CASCADE).
 */
async function swapIn(client: PoolClient, target: TableRef, staging: TableRef, stagingPk: string, existing: TargetInfo | undefined, warnings: string[], prebuilt: readonly Prebuilt[]): Promise<void> {
  const t = qualifiedRef(target);
  if (!existing) {
    for (const statement of newTableSwapSql(target, staging, stagingPk)) await client.query(statement);
    return;
  }
  await client.query(`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`);
  const oid = existing.oid;
  // Checked before the snapshot was read (Target.swapBlockers); again under the lock, for
  // what was added since and for callers that did not check.
  const blockers = await findSwapBlockers(client, oid);
  if (blockers.length > 0) throw swapBlockedError(displayName(target), blockers);
  const pk = await client.query<{ conname: string }>(`SELECT conname FROM pg_constraint WHERE conrelid = $1::oid AND contype = 'p'`, [oid]);
  const indexes = await client.query<{ name: string; def: string }>(
    `SELECT (SELECT relname FROM pg_class WHERE oid = i.indexrelid) AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
      WHERE i.indrelid = $1::oid AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = $1::oid)`,
    [oid],
  );
  const constraints = await client.query<{ conname: string; def: string }>(
    `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = $1::oid AND contype NOT IN ('p', 'n') ORDER BY CASE contype WHEN 'f' THEN 1 ELSE 0 END, conname`,
    [oid],
  );
  const acl = await client.query<AclEntry>(
    `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type, a.is_grantable, NULL::text AS column
       FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::oid AND a.grantee <> c.relowner
     UNION ALL
     SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, a.is_grantable, att.attname::text
       FROM pg_attribute att, aclexplode(att.attacl) a WHERE att.attrelid = $1::oid AND att.attacl IS NOT NULL AND NOT att.attisdropped`,
    [oid],
  );
  const comments = await client.query<{ column: string | null; comment: string }>(
    `SELECT NULL::text AS column, obj_description($1::oid, 'pg_class') AS comment WHERE obj_description($1::oid, 'pg_class') IS NOT NULL
     UNION ALL
     SELECT attname::text, col_description($1::oid, attnum) FROM pg_attribute
      WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped AND col_description($1::oid, attnum) IS NOT NULL`,
    [oid],
  );
  const pubs = await client.query<{ pubname: string }>(`SELECT p.pubname FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE r.prrelid = $1::oid`, [oid]);
  const rls = await client.query<{ rls: boolean; force: boolean; policies: number }>(
    `SELECT relrowsecurity AS rls, relforcerowsecurity AS force, (SELECT count(*)::int FROM pg_policy WHERE polrelid = $1::oid) AS policies FROM pg_class WHERE oid = $1::oid`,
    [oid],
  );
  const me = (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u;

  try {
    await client.query(`DROP TABLE ${t}`);
  } catch (e) {
    const f = pgErrorFields(e);
    if (f?.code !== '2BP01') throw e;
    // Something else depends on the table (found by neither check above). Postgres' own
    // hint says to use DROP ... CASCADE, which would drop the dependents: never that.
    throw new SyncError('target', `Cannot swap ${displayName(target)}: other objects depend on it. ${f.detail ?? ''}`.trim(), {
      table: displayName(target),
      setting: 'initialLoad.onSwapBlocked',
      retry: 'manual',
      cause: e,
      hint: 'Set "initialLoad": { "onSwapBlocked": "merge" } (or "mode": "merge") in the mapping to load into the existing table, which keeps its dependents.',
    });
  }
  await client.query(`ALTER TABLE ${qualifiedRef(staging)} RENAME TO ${quoteIdent(target.name)}`);
  await client.query(`ALTER TABLE ${t} RENAME CONSTRAINT ${quoteIdent(stagingPk)} TO ${quoteIdent(pk.rows[0]?.conname ?? derivedName(target.name, '_pkey'))}`);
  // An index built on the staging table from the same definition as the old table's (read
  // again here, under the lock) takes its name; one that changed since, or was not built,
  // is built now. A UNIQUE constraint attaches its prebuilt index (renamed to the constraint's name).
  const schema = staging.schema as string;
  const used = new Set<Prebuilt>();
  for (const r of indexes.rows) {
    const p = prebuilt.find((x) => x.constraint === null && x.index === r.name && x.def === r.def);
    if (p) used.add(p);
    await client.query(p ? `ALTER INDEX ${qualifiedRef({ schema, name: p.temp })} RENAME TO ${quoteIdent(r.name)}` : r.def);
  }
  for (const r of constraints.rows) {
    const p = prebuilt.find((x) => x.constraint === r.conname && x.condef === r.def);
    if (p) used.add(p);
    await client.query(`ALTER TABLE ${t} ADD CONSTRAINT ${quoteIdent(r.conname)} ${p ? `UNIQUE USING INDEX ${quoteIdent(p.temp)}` : r.def}`);
  }
  // One the old table no longer has (dropped or changed while the snapshot loaded) goes.
  for (const p of prebuilt) if (!used.has(p)) await client.query(`DROP INDEX ${qualifiedRef({ schema, name: p.temp })}`);
  for (const a of acl.rows) {
    const who = a.grantee === null ? 'PUBLIC' : quoteIdent(a.grantee);
    const col = a.column === null ? '' : ` (${quoteIdent(a.column)})`;
    // privilege_type comes from the catalog (SELECT, INSERT, ...), never from user input.
    await client.query(`GRANT ${a.privilege_type}${col} ON ${t} TO ${who}${a.is_grantable ? ' WITH GRANT OPTION' : ''}`);
  }
  for (const c of comments.rows) {
    const onWhat = c.column === null ? `TABLE ${t}` : `COLUMN ${t}.${quoteIdent(c.column)}`;
    // COMMENT takes a literal only, not a parameter: quote it as a string literal.
    await client.query(`COMMENT ON ${onWhat} IS ${quoteLiteral(c.comment)}`);
  }
  for (const p of pubs.rows) await client.query(`ALTER PUBLICATION ${quoteIdent(p.pubname)} ADD TABLE ${t}`);
  if (existing.owner !== me) {
    await client.query('SAVEPOINT dns_owner');
    try {
      await client.query(`ALTER TABLE ${t} OWNER TO ${quoteIdent(existing.owner)}`);
      await client.query('RELEASE SAVEPOINT dns_owner');
    } catch {
      await client.query('ROLLBACK TO SAVEPOINT dns_owner');
      warnings.push(`The old table was owned by ${existing.owner}; the new one is owned by ${me ?? 'the current user'} (no right to change the owner).`);
    }
  }
  const r = rls.rows[0];
  if (r && (r.rls || r.policies > 0)) {
    if (r.rls) await client.query(`ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY`);
    if (r.force) await client.query(`ALTER TABLE ${t} FORCE ROW LEVEL SECURITY`);
    if (r.policies > 0) warnings.push(`${r.policies} row-level security policies of the old table were not recreated.`);
  }
}

/** Storage parameters (reloptions) of a table and of its TOAST table (as `toast.name`). */
async function storageParameters(client: PoolClient, oid: number | undefined): Promise<Array<{ name: string; value: string }>> {
  if (oid === undefined) return [];
  const r = await client.query<{ opt: string; toast: boolean }>(
    `SELECT unnest(c.reloptions) AS opt, false AS toast FROM pg_class c WHERE c.oid = $1::oid
     UNION ALL
     SELECT unnest(t.reloptions), true FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid WHERE c.oid = $1::oid`,
    [oid],
  );
  return r.rows.map((x) => {
    const i = x.opt.indexOf('=');
    const name = i < 0 ? x.opt : x.opt.slice(0, i);
    return { name: x.toast ? `toast.${name}` : name, value: i < 0 ? 'true' : x.opt.slice(i + 1) };
  });
}

/** The table's columns -> format_type() text. */
async function columnTypes(client: PoolClient, oid: number): Promise<Map<string, string>> {
  const r = await client.query<{ attname: string; type: string }>(
    `SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped`,
    [oid],
  );
  return new Map(r.rows.map((x) => [x.attname, x.type]));
}

/** SQL for a lineage column's value in a snapshot load: the snapshot's version or commit timestamp, or now(). */
function lineageDefault(column: string, lineage: LineageColumns, checkpoint: CheckpointInput): string {
  if (column === lineage.version) return `${BigInt(checkpoint.version).toString()}::bigint`;
  if (column === lineage.commitTimestamp) {
    const ts = commitTimeParam(checkpoint.commitTimestamp);
    return ts === null ? 'NULL::timestamptz' : `${quoteLiteral(ts)}::timestamptz`;
  }
  return 'now()';
}

/** A checkpoint commit timestamp (ms, or timestamptz text) as a timestamptz parameter. */
function commitTimeParam(ts: number | string | null): string | null {
  if (ts === null) return null;
  return typeof ts === 'number' ? new Date(ts).toISOString() : ts;
}


