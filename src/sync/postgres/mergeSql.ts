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
 * INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE ... WHERE (t.cols) IS DISTINCT FROM
 * (excluded.cols), returning one row with `inserted` and `updated` counts (unchanged rows
 * are skipped by the WHERE and not returned). `where` filters the staging rows.
 */
export function upsertFromStagingSql(target: TableRef, staging: TableRef, columns: readonly TargetColumn[], key: readonly string[], where = ''): string {
  const keySet = new Set(key);
  const cols = columns.map((c) => quoteIdent(c.name)).join(', ');
  const nonKey = columns.filter((c) => !keySet.has(c.name));
  const conflict = nonKey.length === 0
    ? 'DO NOTHING'
    : `DO UPDATE SET ${nonKey.map((c) => `${quoteIdent(c.name)} = EXCLUDED.${quoteIdent(c.name)}`).join(', ')}
       WHERE (${nonKey.map((c) => comparable('t', c)).join(', ')}) IS DISTINCT FROM (${nonKey.map((c) => comparable('EXCLUDED', c)).join(', ')})`;
  // xmax = 0 on the returned row means it was freshly inserted, not updated.
  return `WITH r AS (
    INSERT INTO ${qualifiedRef(target)} AS t (${cols})
    SELECT ${cols} FROM ${qualifiedRef(staging)} ${where}
    ON CONFLICT (${key.map(quoteIdent).join(', ')}) ${conflict}
    RETURNING (t.xmax = 0) AS ins)
  SELECT count(*) FILTER (WHERE ins)::int8 AS inserted, count(*) FILTER (WHERE NOT ins)::int8 AS updated FROM r`;
}

/** DELETE FROM target USING staged keys. */
export function deleteUsingStagingSql(target: TableRef, staging: TableRef, key: readonly string[], where = ''): string {
  return `DELETE FROM ${qualifiedRef(target)} AS t USING ${qualifiedRef(staging)} AS d WHERE ${keyJoin('t', 'd', key)}${where ? ` AND ${where}` : ''}`;
}

/**
 * Soft delete: sets the marker of target rows whose key is staged, to the staged marker,
 * where it differs; never inserts (a key the target lacks stays absent). Returns one row:
 * `marked` (rows changed) and `present` (staged keys the target holds, changed or not).
 * `where` filters the staging rows (alias s).
 */
export function softDeleteFromStagingSql(target: TableRef, staging: TableRef, key: readonly string[], markerColumn: string, where = ''): string {
  const m = quoteIdent(markerColumn);
  const t = qualifiedRef(target);
  const and = where ? ` AND ${where}` : '';
  // Both parts read the snapshot from before the UPDATE; keys do not change, so `present` is exact.
  return `WITH u AS (
    UPDATE ${t} AS t SET ${m} = s.${m} FROM ${qualifiedRef(staging)} AS s
     WHERE ${keyJoin('t', 's', key)} AND t.${m} IS DISTINCT FROM s.${m}${and}
    RETURNING 1)
  SELECT (SELECT count(*) FROM u)::int8 AS marked,
         (SELECT count(*) FROM ${qualifiedRef(staging)} AS s WHERE EXISTS (SELECT 1 FROM ${t} AS t WHERE ${keyJoin('t', 's', key)})${and})::int8 AS present`;
}
