import { beginTransaction } from './transaction';
import type { ClientBase } from 'pg';
import { classifyPgError, pgErrorFields } from './classifyPgError';
import { copyRows } from './copyRows';
import { NEW_AT_COLUMN } from './applyChanges';
import type { RowBatches } from '../ports/targetTypes';
import type { StagedChanges } from '../ports/targetTypes';
import { comparable, deleteUsingStagingSql, guardedDeleteSql, keyJoin, softDeleteFromStagingSql, upsertFromStagingSql } from './mergeSql';
import { displayName, qualifiedRef, quoteIdent } from './quoteIdent';
import type { TableRef } from '../ports/targetTypes';
import { renderCreateTable, validateColumns } from './renderCreateTable';
import type { TargetColumn } from '../ports/targetTypes';
import { isLiveSql } from './softDeleteMarker';
import { liveMarkerValue, markerTargetColumn } from '../plan/applyDeletePolicy';
import type { SoftDeleteMarker } from '../ports/targetTypes';
import type { PreviewAction, ColumnChange, PreviewRow, PreviewResult } from '../ports/targetTypes';

export interface PreviewOptions {
  table: TableRef;
  columns: readonly TargetColumn[];
  key: readonly string[];
  upserts: RowBatches;
  deletes: RowBatches;
  /** DDL run first in the rolled-back transaction (the sync's schema changes). */
  ddl?: readonly string[];
  /** Page size; default 100. */
  limit?: number;
  offset?: number;
  /** Which actions to list (totals always count all); default all but 'unchanged'. */
  include?: readonly PreviewAction[];
  /** List only rows whose key or values (old or new) contain this text, case-insensitive. */
  search?: string;
  /**
   * Soft-delete policy (as applyChanges): upserts carry the live marker, `columns` may omit
   * the marker column. Soft deletes are listed as 'delete' (with the marker change in
   * `changes` and the current row in `oldRow`) when they change the marker, 'unchanged'
   * when the row already has it, 'delete-missing' when the target lacks the key.
   */
  softDelete?: SoftDeleteMarker;
  softDeletes?: RowBatches;
  /**
   * Columns of `columns` the target does not have yet (the sync adds them first): read as
   * NULL, the soft-delete marker as live (its default).
   */
  targetLacks?: readonly string[];
  /** With softDelete: compare against live target rows only (rows marked deleted are treated as absent). */
  liveOnly?: boolean;
  /**
   * The transactions a sync commits after the one given by upserts/deletes/softDeletes, in
   * order. Each is classified against the target as the transactions before it leave it (a
   * key changed in two of them is listed, and counted, once for each), so the totals equal
   * the sum of the counts the sync reports. Not with liveOnly.
   */
  later?: AsyncIterable<StagedChanges>;
  /**
   * The lineage version column (one of `columns`; deletes and soft deletes carry it too):
   * a staged change older than the target row's version is classified 'kept' (the
   * out-of-order guard keeps the row), listed with the row as it is (`oldRow`) and the
   * refused change (`newRow`, upserts). Totals then have a `kept` count.
   */
  guardVersion?: string;
  /**
   * Also find upserts marked as inserts of new keys (MUST_BE_NEW, the sync's duplicateKeys
   * "fail") whose key the target (as earlier transactions leave it) already holds: the sync
   * refuses those (applyChanges' refuseExistingKeys). Reported in `existingKeys`.
   */
  refuseExistingKeys?: boolean;
}

const UP: TableRef = { name: 'dns_preview_upserts' };
const DEL: TableRef = { name: 'dns_preview_deletes' };
const SOFT: TableRef = { name: 'dns_preview_soft_deletes' };
/** With later transactions: the rows of keys earlier transactions touched, as they leave them, and those keys. */
const STATE: TableRef = { name: 'dns_preview_state' };
const TOUCHED: TableRef = { name: 'dns_preview_touched' };
const ACTION_ORDER: PreviewAction[] = ['insert', 'update', 'delete', 'delete-missing', 'kept', 'unchanged'];

/**
 * Read-only preview of a batch: stages the net upserts and deletes in temp tables inside a
 * transaction that is always rolled back, and classifies each key against the target with
 * SQL joins (per-column IS DISTINCT FROM). Totals equal the counts applyChanges reports for
 * the same batch on the same target state.
 */
export async function previewChanges(client: ClientBase, opts0: PreviewOptions): Promise<PreviewResult> {
  const marker = opts0.softDelete;
  if (!marker && opts0.softDeletes !== undefined) throw new Error('previewChanges: softDeletes need the softDelete marker option');
  const markerCol = marker ? (opts0.columns.find((c) => c.name === marker.column) ?? markerTargetColumn(marker)) : undefined;
  const opts: PreviewOptions = markerCol && !opts0.columns.includes(markerCol) ? { ...opts0, columns: [...opts0.columns, markerCol] } : opts0;
  validateColumns(opts.columns, opts.key, opts.table);
  const keySet = new Set(opts.key);
  const keyColumns = opts.key.map((k) => opts.columns.find((c) => c.name === k) as TargetColumn);
  const versionCol = opts.guardVersion === undefined ? undefined : opts.columns.find((c) => c.name === opts.guardVersion);
  if (opts.guardVersion !== undefined && !versionCol) throw new Error('previewChanges: guardVersion must be one of the columns');
  // Deletes stage the key and, with the guard, the version.
  const delColumns = versionCol ? [...keyColumns, versionCol] : keyColumns;
  /** `WHEN <target row newer than the staged row x> THEN 'kept'`, or nothing without the guard. */
  const keptWhen = (x: string): string => (versionCol ? ` WHEN t.${quoteIdent(versionCol.name)} > ${x}.${quoteIdent(versionCol.name)} THEN 'kept'` : '');
  const isKept = (x: string): string => (versionCol ? `t.${quoteIdent(versionCol.name)} > ${x}.${quoteIdent(versionCol.name)}` : 'false');
  const nonKey = opts.columns.filter((c) => !keySet.has(c.name));
  const lacks = new Set(opts.targetLacks ?? []);
  // The target as the sync will see it: columns it lacks read as they will be added; with
  // liveOnly, rows marked deleted left out. A plain subquery, which the planner flattens.
  const targetCols = opts.columns.filter((c) => lacks.has(c.name)).map((c) => {
    const live = marker && c.name === marker.column ? liveMarkerValue(marker) : null;
    return `${live === false ? 'false' : `NULL::${c.pgType}`} AS ${quoteIdent(c.name)}`;
  });
  const liveFilter = marker && opts.liveOnly && !lacks.has(marker.column) ? ` WHERE ${isLiveSql('t0', marker)}` : '';
  const t = targetCols.length > 0 || liveFilter
    ? `(SELECT t0.*${targetCols.map((x) => `, ${x}`).join('')} FROM ${qualifiedRef(opts.table)} AS t0${liveFilter})`
    : qualifiedRef(opts.table);
  const firstKey = quoteIdent(opts.key[0] as string);
  const tempDdl = (ref: TableRef, cols: readonly TargetColumn[]): string =>
    `${renderCreateTable(ref, cols, opts.key, { withoutPrimaryKey: true }).replace(/^CREATE TABLE/, 'CREATE TEMP TABLE').replace(/;$/, '')} ON COMMIT DROP`;
  // Parameters: $1 key names, $2 all column names, $3 non-key names (values never inlined).
  const keyObj = (alias: string): string => `jsonb_object($1::text[], ARRAY[${opts.key.map((k) => `${alias}.${quoteIdent(k)}::text`).join(', ')}]::text[])`;
  const rowObj = (alias: string): string => `jsonb_object($2::text[], ARRAY[${opts.columns.map((c) => `${alias}.${quoteIdent(c.name)}::text`).join(', ')}]::text[])`;
  const distinct = nonKey.length === 0 ? 'false' : `(${nonKey.map((c) => comparable('t', c)).join(', ')}) IS DISTINCT FROM (${nonKey.map((c) => comparable('s', c)).join(', ')})`;
  const changes = nonKey.length === 0
    ? `'[]'::jsonb`
    : `to_jsonb(array_remove(ARRAY[${nonKey
        .map((c, i) => `CASE WHEN ${comparable('t', c)} IS DISTINCT FROM ${comparable('s', c)} THEN jsonb_build_object('column', ($3::text[])[${i + 1}], 'old', t.${quoteIdent(c.name)}::text, 'new', s.${quoteIdent(c.name)}::text) END`)
        .join(', ')}]::jsonb[], NULL))`;
  const keyCols = opts.key.map((k, i) => `s.${quoteIdent(k)} AS __k${i}`).join(', ');
  // The upsert staging table carries the MUST_BE_NEW version when asked (NULL elsewhere).
  const upColumns = opts.refuseExistingKeys ? [...opts.columns, NEW_AT_COLUMN] : opts.columns;
  const newAt = opts.refuseExistingKeys ? `s.${quoteIdent(NEW_AT_COLUMN.name)}` : 'NULL::bigint';
  const keyColsD = opts.key.map((k, i) => `d.${quoteIdent(k)} AS __k${i}`).join(', ');
  let softSql = (_t: string, _seg: number): string => '';
  if (markerCol) {
    const m = `${quoteIdent(markerCol.name)}`;
    const markerIndex = opts.columns.indexOf(markerCol) + 1;
    const differs = `t.${m} IS DISTINCT FROM x.${m}`;
    softSql = (t: string, seg: number): string => `
    UNION ALL
    SELECT CASE WHEN t.${firstKey} IS NULL THEN 'delete-missing'${keptWhen('x')} WHEN ${differs} THEN 'delete' ELSE 'unchanged' END,
           ${keyObj('x')},
           CASE WHEN t.${firstKey} IS NOT NULL AND ${differs} AND NOT (${isKept('x')})
                THEN jsonb_build_array(jsonb_build_object('column', ($2::text[])[${markerIndex}], 'old', t.${m}::text, 'new', x.${m}::text)) END,
           NULL,
           CASE WHEN t.${firstKey} IS NOT NULL AND (${differs} OR ${isKept('x')}) THEN ${rowObj('t')} END,
           ${opts.key.map((k, i) => `x.${quoteIdent(k)} AS __k${i}`).join(', ')}, ${seg}::int AS __seg, NULL::bigint AS __new_at
      FROM ${qualifiedRef(SOFT)} x LEFT JOIN ${t} t ON ${keyJoin('t', 'x', opts.key)}`;
  }
  /** The classification of the staged transaction number `seg` (0: the first) against the target expression `t`. */
  const classifiedFrom = (t: string, seg: number): string => `
    SELECT CASE WHEN t.${firstKey} IS NULL THEN 'insert'${keptWhen('s')} WHEN ${distinct} THEN 'update' ELSE 'unchanged' END AS action,
           ${keyObj('s')} AS key,
           CASE WHEN t.${firstKey} IS NOT NULL AND ${distinct} AND NOT (${isKept('s')}) THEN ${changes} END AS changes,
           CASE WHEN t.${firstKey} IS NULL OR ${isKept('s')} THEN ${rowObj('s')} END AS new_row,
           CASE WHEN ${isKept('s')} THEN ${rowObj('t')} END AS old_row, ${keyCols}, ${seg}::int AS __seg, ${newAt} AS __new_at
      FROM ${qualifiedRef(UP)} s LEFT JOIN ${t} t ON ${keyJoin('t', 's', opts.key)}
    UNION ALL
    SELECT CASE WHEN t.${firstKey} IS NULL THEN 'delete-missing'${keptWhen('d')} ELSE 'delete' END,
           ${keyObj('d')}, NULL, NULL,
           CASE WHEN t.${firstKey} IS NOT NULL THEN ${rowObj('t')} END, ${keyColsD}, ${seg}::int, NULL::bigint
      FROM ${qualifiedRef(DEL)} d LEFT JOIN ${t} t ON ${keyJoin('t', 'd', opts.key)}${softSql(t, seg)}`;
  const params = [opts.key, opts.columns.map((c) => c.name), nonKey.map((c) => c.name)];
  const include = opts.include ?? ACTION_ORDER.filter((a) => a !== 'unchanged');
  try {
    await beginTransaction(client);
    try {
      // Rows read back as text print as formatValue prints rows not in Postgres yet.
      await client.query(`SET LOCAL TimeZone TO 'UTC'`);
      await client.query(`SET LOCAL DateStyle TO 'ISO, MDY'`);
      // The sync's schema changes, so the rows are classified against the table as the
      // sync will have changed it (and the DDL is tried); rolled back with the rest.
      for (const statement of opts.ddl ?? []) await client.query(statement);
      const softColumns = markerCol ? [...keyColumns, markerCol, ...(versionCol ? [versionCol] : [])] : [];
      await client.query(tempDdl(UP, upColumns));
      await client.query(tempDdl(DEL, delColumns));
      if (markerCol) await client.query(tempDdl(SOFT, softColumns));
      const stage = async (seg: StagedChanges): Promise<void> => {
        const nUp = await copyRows(client, UP, upColumns, seg.upserts);
        const nDel = await copyRows(client, DEL, delColumns, seg.deletes);
        if (markerCol) {
          const nSoft = await copyRows(client, SOFT, softColumns, seg.softDeletes ?? []);
          if (nSoft > 1000) await client.query(`ANALYZE ${qualifiedRef(SOFT)}`);
        }
        if (nUp > 1000) await client.query(`ANALYZE ${qualifiedRef(UP)}`);
        if (nDel > 1000) await client.query(`ANALYZE ${qualifiedRef(DEL)}`);
      };
      await stage(opts);
      await client.query(`CREATE TEMP TABLE dns_preview_result ON COMMIT DROP AS ${classifiedFrom(t, 0)}`, params);
      if (opts.later) {
        if (opts.liveOnly) throw new Error('previewChanges: later transactions cannot be compared with live rows only');
        // The target as the transactions so far leave it: STATE for the keys they touched, the
        // target for the others. Each transaction is applied to STATE with the sync's own
        // statements, so the next is classified exactly as the sync will meet it.
        const keyList = opts.key.map(quoteIdent).join(', ');
        const state = `(SELECT * FROM ${qualifiedRef(STATE)} UNION ALL SELECT t1.* FROM ${t} AS t1 WHERE NOT EXISTS (SELECT 1 FROM ${qualifiedRef(TOUCHED)} AS k WHERE ${keyJoin('k', 't1', opts.key)}))`;
        let n = 0;
        for await (const seg of opts.later) {
          n++;
          if (n === 1) {
            await client.query(`CREATE TEMP TABLE ${qualifiedRef(STATE)} ON COMMIT DROP AS SELECT * FROM ${t} AS t0 WITH NO DATA`);
            await client.query(`CREATE UNIQUE INDEX ON ${qualifiedRef(STATE)} (${keyList})`);
            await client.query(`CREATE TEMP TABLE ${qualifiedRef(TOUCHED)} ON COMMIT DROP AS SELECT ${keyList} FROM ${qualifiedRef(STATE)} WITH NO DATA`);
            await client.query(`CREATE UNIQUE INDEX ON ${qualifiedRef(TOUCHED)} (${keyList})`);
          }
          // Apply the staged transaction to STATE, as applyChanges does: deletes, soft deletes, upserts.
          const staged = [UP, DEL, ...(markerCol ? [SOFT] : [])].map((r) => `SELECT ${keyList} FROM ${qualifiedRef(r)}`).join(' UNION ');
          await client.query(`INSERT INTO ${qualifiedRef(STATE)} SELECT t2.* FROM ${t} AS t2 WHERE (${opts.key.map((k) => `t2.${quoteIdent(k)}`).join(', ')}) IN (${staged})
            AND NOT EXISTS (SELECT 1 FROM ${qualifiedRef(TOUCHED)} AS k WHERE ${keyJoin('k', 't2', opts.key)})`);
          await client.query(`INSERT INTO ${qualifiedRef(TOUCHED)} ${staged} ON CONFLICT DO NOTHING`);
          const guard = versionCol ? { version: versionCol.name } : undefined;
          await client.query(versionCol ? guardedDeleteSql(STATE, DEL, opts.key, versionCol.name) : deleteUsingStagingSql(STATE, DEL, opts.key));
          if (markerCol) await client.query(softDeleteFromStagingSql(STATE, SOFT, opts.key, markerCol.name, '', guard, versionCol ? [versionCol.name] : []));
          await client.query(upsertFromStagingSql(STATE, UP, opts.columns, opts.key, '', guard));
          for (const r of [UP, DEL, ...(markerCol ? [SOFT] : [])]) await client.query(`TRUNCATE ${qualifiedRef(r)}`);
          await stage(seg);
          await client.query(`INSERT INTO dns_preview_result ${classifiedFrom(state, n)}`, params);
        }
      }
      const totalsQ = await client.query<{ action: PreviewAction; n: number }>(`SELECT action, count(*)::int AS n FROM dns_preview_result GROUP BY action`);
      const totals: PreviewResult['totals'] = { insert: 0, update: 0, delete: 0, unchanged: 0, 'delete-missing': 0, ...(versionCol ? { kept: 0 } : {}) };
      for (const r of totalsQ.rows) totals[r.action] = r.n;
      // A key is listed once per transaction that changes it, in transaction order.
      const order = `array_position($2::text[], action), ${opts.key.map((_, i) => `__k${i}`).join(', ')}, __seg`;
      // Search: the text of the key and of every value shown, old or new (a parameter, never inlined).
      // Values only (not the column names the JSON objects carry).
      const vals = (o: string): string => `(SELECT string_agg(v, ' ') FROM jsonb_each_text(${o}) AS e(k, v))`;
      const shown = `concat_ws(' ', ${vals('key')}, ${vals('new_row')}, ${vals('old_row')}, (SELECT string_agg(concat_ws(' ', c->>'old', c->>'new'), ' ') FROM jsonb_array_elements(changes) AS c))`;
      const search = opts.search ? ` AND ${shown} ILIKE '%' || $5 || '%'` : '';
      const searchParam = opts.search ? [opts.search.replace(/[\\%_]/g, (c) => `\\${c}`)] : [];
      const page = await client.query<{ action: PreviewAction; key: Record<string, string | null>; changes: ColumnChange[] | null; new_row: Record<string, string | null> | null; old_row: Record<string, string | null> | null }>(
        `SELECT action, key, changes, new_row, old_row FROM dns_preview_result WHERE action = ANY($1::text[])${search} ORDER BY ${order} LIMIT $3 OFFSET $4`,
        [include, ACTION_ORDER, opts.limit ?? 100, opts.offset ?? 0, ...searchParam],
      );
      const matching = opts.search
        ? (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM dns_preview_result WHERE action = ANY($1::text[]) AND ${shown} ILIKE '%' || $2 || '%'`, [include, ...searchParam])).rows[0]?.n ?? 0
        : include.reduce((n, a) => n + (totals[a] ?? 0), 0);
      const rows: PreviewRow[] = page.rows.map((r) => ({
        action: r.action,
        key: r.key,
        ...(r.changes ? { changes: r.changes } : {}),
        ...(r.new_row ? { newRow: r.new_row } : {}),
        ...(r.old_row ? { oldRow: r.old_row } : {}),
      }));
      let existingKeys: PreviewResult['existingKeys'];
      if (opts.refuseExistingKeys) {
        const found = await client.query<{ v: string; key: Record<string, string | null>; n: number }>(
          `SELECT __new_at::text AS v, key, count(*) OVER ()::int AS n FROM dns_preview_result WHERE __new_at IS NOT NULL AND action IN ('update', 'unchanged') ORDER BY __new_at, ${opts.key.map((_, i) => `__k${i}`).join(', ')} LIMIT 10`,
        );
        const n = found.rows[0]?.n ?? 0;
        if (n > 0) existingKeys = { count: n, samples: found.rows.map((r) => ({ version: Number(r.v), key: r.key })) };
      }
      return { rows, totals, matching, ...(existingKeys ? { existingKeys } : {}) };
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
    }
  } catch (e) {
    // The preview's own temp tables are no concern of the user's: an error on one is told of the target.
    const f = pgErrorFields(e);
    const label = displayName(opts.table);
    if (f?.table?.startsWith('dns_preview_')) {
      const message = f.message.replace(/(?:pg_temp_\d+\.)?"?dns_preview_[a-z_]+"?/g, label);
      throw classifyPgError(Object.assign(new Error(message), { ...f, message, table: undefined, schema: undefined }), { table: label, action: 'previewing changes' });
    }
    throw classifyPgError(e, { table: label, action: 'previewing changes' });
  }
}
