import type { ClientBase } from 'pg';
import type { RejectedRow, TableRef, TargetColumn } from '../ports/targetTypes';
import { qualifiedRef, quoteIdent, quoteLiteral } from './quoteIdent';

/**
 * Dead letters of an initial load (initialLoad with `deadLetter`). A swap loads into a
 * new table without the old one's constraints and adds them at the swap, all rows at
 * once: a row violating one would fail the whole load. So before the swap, the staged
 * rows that the old table's validated CHECK, UNIQUE and foreign-key constraints would
 * refuse are moved out of the staging table into `rejected`, constraint by constraint
 * (CHECK first; of rows equal on a UNIQUE constraint's columns the one with the smallest
 * key is kept, as an incremental sync keeps the first one applied). Expression and partial
 * unique indexes are not checked here: a row violating one still fails the load.
 * Runs inside the load's transaction.
 */
export async function setAsideViolations(
  client: ClientBase,
  oldOid: number,
  staging: TableRef,
  columns: readonly TargetColumn[],
  key: readonly string[],
  rejected: RejectedRow[],
): Promise<number> {
  const s = qualifiedRef(staging);
  const colNames = columns.map((c) => c.name);
  const returning = `RETURNING jsonb_object($1::text[], ARRAY[${key.map((k) => `s.${quoteIdent(k)}::text`).join(', ')}])::text AS k,
    jsonb_object($2::text[], ARRAY[${colNames.map((c) => `s.${quoteIdent(c)}::text`).join(', ')}])::text AS r`;
  let moved = 0;
  const setAside = async (where: string, sqlstate: string, message: string): Promise<void> => {
    const r = await client.query<{ k: string | null; r: string | null }>(`DELETE FROM ${s} AS s WHERE ${where} ${returning}`, [key, colNames]);
    for (const row of r.rows) rejected.push({ op: 'upsert', keyJson: row.k, rowJson: row.r, sqlstate, message, phase: 'apply' });
    moved += r.rows.length;
  };

  const checks = await client.query<{ conname: string; expr: string }>(
    `SELECT conname::text, pg_get_expr(conbin, conrelid) AS expr FROM pg_constraint
      WHERE conrelid = $1::oid AND contype = 'c' AND convalidated ORDER BY conname`,
    [oldOid],
  );
  for (const c of checks.rows) {
    // A CHECK passes when its expression is true or null. The expression is the server's own
    // deparse of the constraint; its column names are the staging table's (same columns).
    await setAside(`NOT COALESCE((${c.expr}), true)`, '23514', `new row violates check constraint "${c.conname}"`);
  }

  const uniques = await client.query<{ name: string; cols: string[] }>(
    `SELECT COALESCE(con.conname, ic.relname)::text AS name,
            ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord) AS cols
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
      WHERE i.indrelid = $1::oid AND i.indisunique AND NOT i.indisprimary AND i.indexprs IS NULL AND i.indpred IS NULL
      ORDER BY 1`,
    [oldOid],
  );
  const keyRow = (alias: string): string => `(${key.map((k) => `${alias}.${quoteIdent(k)}`).join(', ')})`;
  for (const u of uniques.rows) {
    const same = u.cols.map((c) => `o.${quoteIdent(c)} = s.${quoteIdent(c)}`).join(' AND ');
    await setAside(`EXISTS (SELECT 1 FROM ${s} AS o WHERE ${same} AND ${keyRow('o')} < ${keyRow('s')})`, '23505', `duplicate key value violates unique constraint "${u.name}"`);
  }

  const fks = await client.query<{ conname: string; ref: string | null; cols: string[]; refcols: string[] }>(
    `SELECT con.conname::text,
            CASE WHEN con.confrelid = $1::oid THEN NULL ELSE con.confrelid::regclass::text END AS ref,
            ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS cols,
            ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS refcols
       FROM pg_constraint con WHERE con.conrelid = $1::oid AND con.contype = 'f' AND con.convalidated ORDER BY 1`,
    [oldOid],
  );
  for (const f of fks.rows) {
    // A self-reference points at the new table, i.e. the staged rows. MATCH SIMPLE: a row with a null in the columns passes.
    const ref = f.ref ?? s;
    const notNull = f.cols.map((c) => `s.${quoteIdent(c)} IS NOT NULL`).join(' AND ');
    const match = f.cols.map((c, i) => `p.${quoteIdent(f.refcols[i] as string)} = s.${quoteIdent(c)}`).join(' AND ');
    await setAside(`${notNull} AND NOT EXISTS (SELECT 1 FROM ${ref} AS p WHERE ${match})`, '23503', `insert or update violates foreign key constraint "${f.conname}"`);
  }
  return moved;
}

/**
 * A condition (on alias `t`) true for target rows whose key is none of the keys of rows
 * set aside before staging: a merge must not delete (or mark deleted) a target row only
 * because its new version was refused. `param` is the $n the keys' JSON array is bound to.
 * Keys compare as text (the JSON's scalar text against the column's text form).
 */
export function notRejectedKeySql(key: readonly string[], param: number): string {
  const match = key.map((k) => `t.${quoteIdent(k)}::text = j.value->>${quoteLiteral(k)}`).join(' AND ');
  return `NOT EXISTS (SELECT 1 FROM jsonb_array_elements($${param}::jsonb) AS j WHERE ${match})`;
}

/** The keys (JSON objects) of rows refused before they were staged, as one JSON array. */
export function stagingRejectedKeys(rejected: readonly RejectedRow[]): string {
  return `[${rejected.filter((r) => r.phase === 'staging' && r.keyJson !== null).map((r) => r.keyJson).join(',')}]`;
}

