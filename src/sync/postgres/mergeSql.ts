import { qualifiedRef, quoteIdent } from './quoteIdent';
import type { TableRef } from '../ports/targetTypes';
import type { TargetColumn } from '../ports/targetTypes';

// Types without an equality operator: compared as text so IS DISTINCT FROM works.
const NO_EQUALITY = /^(json|xml|point|line|lseg|box|path|polygon|circle)$/i;

/** `alias.col` made comparable with IS DISTINCT FROM. */
export function comparable(alias: string, c: TargetColumn): string {
  const e = `${alias}.${quoteIdent(c.name)}`;
  return NO_EQUALITY.test(c.pgType.trim()) ? `${e}::text` : e;
}

/** `a.k1 = b.k1 AND a.k2 = b.k2` */
export function keyJoin(a: string, b: string, key: readonly string[]): string {
  return key.map((k) => `${a}.${quoteIdent(k)} = ${b}.${quoteIdent(k)}`).join(' AND ');
}

/**
 * The lineage columns a statement writes besides the staged values: `version` turns the
 * out-of-order guard on (a row changes only when the staged version is >= the row's, or
 * the row has none), `syncedAt` is set to now() on every row written.
 */
export interface LineageSql {
  version?: string;
  syncedAt?: string;
}

/** `AND (t.v IS NULL OR s.v >= t.v)` for the guard's version column, else ''. */
export function guardSql(target: string, incoming: string, lineage: LineageSql | undefined): string {
  if (!lineage?.version) return '';
  const v = quoteIdent(lineage.version);
  return ` AND (${target}.${v} IS NULL OR ${incoming}.${v} >= ${target}.${v})`;
}

/** `t.v > s.v`: the target row is newer than the incoming change (the guard keeps it). */
function newerSql(target: string, incoming: string, version: string): string {
  const v = quoteIdent(version);
  return `${target}.${v} > ${incoming}.${v}`;
}

/**
 * INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE ... WHERE (t.cols) IS DISTINCT FROM
 * (excluded.cols), returning one row with `inserted` and `updated` counts (unchanged rows
 * are skipped by the WHERE and not returned). `where` filters the staging rows.
 * With `lineage`: the sync-time column is set to now() (and left out of the comparison),
 * and with a version column the update also needs the guard; `kept` then counts the
 * staged rows whose target row holds a newer version (read before the insert: one
 * statement, one snapshot).
 */
export function upsertFromStagingSql(target: TableRef, staging: TableRef, columns: readonly TargetColumn[], key: readonly string[], where = '', lineage?: LineageSql): string {
  const keySet = new Set(key);
  const synced = lineage?.syncedAt ? quoteIdent(lineage.syncedAt) : undefined;
  const names = columns.map((c) => quoteIdent(c.name));
  const cols = [...names, ...(synced ? [synced] : [])].join(', ');
  const values = [...names, ...(synced ? ['now()'] : [])].join(', ');
  const nonKey = columns.filter((c) => !keySet.has(c.name));
  const conflict = nonKey.length === 0
    ? (synced ? `DO UPDATE SET ${synced} = now() WHERE false` : 'DO NOTHING')
    : `DO UPDATE SET ${[...nonKey.map((c) => `${quoteIdent(c.name)} = EXCLUDED.${quoteIdent(c.name)}`), ...(synced ? [`${synced} = now()`] : [])].join(', ')}
       WHERE (${nonKey.map((c) => comparable('t', c)).join(', ')}) IS DISTINCT FROM (${nonKey.map((c) => comparable('EXCLUDED', c)).join(', ')})${guardSql('t', 'EXCLUDED', lineage)}`;
  const kept = lineage?.version
    ? `k AS (SELECT count(*)::int8 AS n FROM (SELECT * FROM ${qualifiedRef(staging)} ${where}) AS s JOIN ${qualifiedRef(target)} AS t ON ${keyJoin('t', 's', key)} WHERE ${newerSql('t', 's', lineage.version)}),
  `
    : '';
  // xmax = 0 on the returned row means it was freshly inserted, not updated.
  return `WITH ${kept}r AS (
    INSERT INTO ${qualifiedRef(target)} AS t (${cols})
    SELECT ${values} FROM ${qualifiedRef(staging)} ${where}
    ON CONFLICT (${key.map(quoteIdent).join(', ')}) ${conflict}
    RETURNING (t.xmax = 0) AS ins)
  SELECT count(*) FILTER (WHERE ins)::int8 AS inserted, count(*) FILTER (WHERE NOT ins)::int8 AS updated${kept ? ', (SELECT n FROM k) AS kept' : ''} FROM r`;
}

/** DELETE FROM target USING staged keys. */
export function deleteUsingStagingSql(target: TableRef, staging: TableRef, key: readonly string[], where = ''): string {
  return `DELETE FROM ${qualifiedRef(target)} AS t USING ${qualifiedRef(staging)} AS d WHERE ${keyJoin('t', 'd', key)}${where ? ` AND ${where}` : ''}`;
}

/**
 * The guarded delete (lineage version column): DELETE FROM target USING staged keys where
 * the staged version is >= the row's; one row with `deleted` and `kept` (staged keys whose
 * target row holds a newer version). `where` filters the staging rows (alias d).
 */
export function guardedDeleteSql(target: TableRef, staging: TableRef, key: readonly string[], version: string, where = ''): string {
  const t = qualifiedRef(target);
  const and = where ? ` AND ${where}` : '';
  return `WITH k AS (SELECT count(*)::int8 AS n FROM ${t} AS t JOIN ${qualifiedRef(staging)} AS d ON ${keyJoin('t', 'd', key)} WHERE ${newerSql('t', 'd', version)}${and}),
  x AS (DELETE FROM ${t} AS t USING ${qualifiedRef(staging)} AS d WHERE ${keyJoin('t', 'd', key)}${guardSql('t', 'd', { version })}${and} RETURNING 1)
  SELECT (SELECT count(*) FROM x)::int8 AS deleted, (SELECT n FROM k) AS kept`;
}

/**
 * Soft delete: sets the marker of target rows whose key is staged, to the staged marker,
 * where it differs; never inserts (a key the target lacks stays absent). Returns one row:
 * `marked` (rows changed), `present` (staged keys the target holds, changed or not) and
 * `kept` (of those, rows the lineage guard kept: newer than the staged version; 0 without
 * it). `where` filters the staging rows (alias s). `lineageColumns`: staged lineage
 * columns copied along with the marker.
 */
export function softDeleteFromStagingSql(target: TableRef, staging: TableRef, key: readonly string[], markerColumn: string, where = '', lineage?: LineageSql, lineageColumns: readonly string[] = []): string {
  const m = quoteIdent(markerColumn);
  const t = qualifiedRef(target);
  const and = where ? ` AND ${where}` : '';
  const sets = [`${m} = s.${m}`, ...lineageColumns.map((c) => `${quoteIdent(c)} = s.${quoteIdent(c)}`), ...(lineage?.syncedAt ? [`${quoteIdent(lineage.syncedAt)} = now()`] : [])];
  const kept = lineage?.version
    ? `(SELECT count(*) FROM ${qualifiedRef(staging)} AS s JOIN ${t} AS t ON ${keyJoin('t', 's', key)} WHERE ${newerSql('t', 's', lineage.version)}${and})::int8`
    : '0::int8';
  // All parts read the snapshot from before the UPDATE; keys do not change, so `present` is exact.
  return `WITH u AS (
    UPDATE ${t} AS t SET ${sets.join(', ')} FROM ${qualifiedRef(staging)} AS s
     WHERE ${keyJoin('t', 's', key)} AND t.${m} IS DISTINCT FROM s.${m}${guardSql('t', 's', lineage)}${and}
    RETURNING 1)
  SELECT (SELECT count(*) FROM u)::int8 AS marked,
         (SELECT count(*) FROM ${qualifiedRef(staging)} AS s WHERE EXISTS (SELECT 1 FROM ${t} AS t WHERE ${keyJoin('t', 's', key)})${and})::int8 AS present,
         ${kept} AS kept`;
}
