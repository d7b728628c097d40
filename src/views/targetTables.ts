import { SyncError } from '../sync/errors';
import type { Pool } from 'pg';
import { qualifiedRef, quoteIdent } from '../sync/postgres/quoteIdent';

export interface TargetTable {
  schema: string;
  table: string;
  /** Exact count (as text, from count(*)), or the planner's estimate when `estimated`. */
  rows: string;
  estimated: boolean;
}

/** Schemas that are Postgres's own or the engine's state: never listed as user tables. */
const HIDDEN_SCHEMAS = ['pg_catalog', 'information_schema', 'delta_neon_sync'];

/**
 * The user tables of a target with their row counts. `exact` counts rows (the sandbox is
 * small and local); otherwise the planner's estimate is used, so a large remote table
 * costs nothing to list.
 */
export async function listTargetTables(pool: Pool, exact: boolean): Promise<TargetTable[]> {
  const r = await pool.query<{ schema: string; table: string; estimate: unknown }>(
    `SELECT n.nspname AS schema, c.relname AS table, c.reltuples::bigint::text AS estimate
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname <> ALL($1::text[]) AND n.nspname NOT LIKE 'pg_%'
      ORDER BY 1, 2 LIMIT 500`,
    [HIDDEN_SCHEMAS],
  );
  const out: TargetTable[] = [];
  for (const row of r.rows) {
    if (exact) {
      const n = await pool.query<{ n: unknown }>(`SELECT count(*)::text AS n FROM ${qualifiedRef({ schema: row.schema, name: row.table })}`);
      out.push({ schema: row.schema, table: row.table, rows: String(n.rows[0]?.n ?? '0'), estimated: false });
    } else {
      const est = String(row.estimate);
      out.push({ schema: row.schema, table: row.table, rows: est.startsWith('-') ? '?' : est, estimated: true });
    }
  }
  return out;
}

/** `tables` grouped by schema: schemas in name order, each with its tables in name order (a tree's schema level). */
export function groupBySchema(tables: readonly TargetTable[]): Array<{ schema: string; tables: TargetTable[] }> {
  const bySchema = new Map<string, TargetTable[]>();
  for (const t of tables) bySchema.set(t.schema, [...(bySchema.get(t.schema) ?? []), t]);
  return [...bySchema.keys()].sort().map((schema) => ({ schema, tables: [...(bySchema.get(schema) ?? [])].sort((a, b) => a.table.localeCompare(b.table)) }));
}

/** The first `limit` rows of a table, every value as Postgres text. */
export async function sampleRows(pool: Pool, schema: string, table: string, limit: number): Promise<{ columns: string[]; rows: Array<Array<string | null>> }> {
  const ref = qualifiedRef({ schema, name: table });
  const cols = await pool.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [ref],
  );
  const columns = cols.rows.map((c) => c.name);
  if (columns.length === 0) return { columns, rows: [] };
  const select = columns.map((c, i) => `${quoteIdent(c)}::text AS c${i}`).join(', ');
  const r = await pool.query<Record<string, string | null>>(`SELECT ${select} FROM ${ref} ORDER BY 1 LIMIT ${Math.max(1, Math.floor(limit))}`);
  return { columns, rows: r.rows.map((row) => columns.map((_c, i) => row[`c${i}`] ?? null)) };
}

export interface RowsPageOptions {
  offset: number;
  limit: number;
  /** A column of the table (checked against the catalog, never inlined unchecked). */
  sort?: { column: string; dir: 'asc' | 'desc' };
}

/**
 * A page of a table for Show Rows: its columns with their types, the rows of
 * [offset, offset + limit) in the order asked (the primary key, else the first column, as
 * the tie-break), every value as Postgres text in UTC (as the Preview shows values), and
 * the row count. Read-only, in one transaction so the page and the count agree.
 */
export async function pageRows(pool: Pool, schema: string, table: string, opts: RowsPageOptions): Promise<{ columns: Array<{ name: string; type: string; key?: boolean }>; rows: Array<Array<string | null>>; total: number }> {
  const ref = qualifiedRef({ schema, name: table });
  const client = await pool.connect();
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`SET LOCAL TimeZone TO 'UTC'`);
    const cols = await client.query<{ name: string; type: string; pk: number | null }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, array_position(i.indkey::int2[], a.attnum) AS pk
         FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [ref],
    );
    const columns = cols.rows.map((c) => ({ name: c.name, type: c.type, ...(c.pk !== null ? { key: true } : {}) }));
    if (columns.length === 0) return { columns, rows: [], total: 0 };
    const sortCol = opts.sort ? columns.findIndex((c) => c.name === opts.sort?.column) : -1;
    if (opts.sort && sortCol < 0) throw new SyncError('usage', `${schema}.${table} has no column "${opts.sort.column}" to sort by.`, { table: `${schema}.${table}` });
    const pk = cols.rows.filter((c) => c.pk !== null).sort((a, b) => (a.pk as number) - (b.pk as number)).map((c) => quoteIdent(c.name));
    const tieBreak = pk.length > 0 ? pk : [quoteIdent((columns[0] as { name: string }).name)];
    const order = [...(sortCol >= 0 ? [`${quoteIdent((columns[sortCol] as { name: string }).name)} ${opts.sort?.dir === 'desc' ? 'DESC NULLS LAST' : 'ASC NULLS LAST'}`] : []), ...tieBreak].join(', ');
    const select = columns.map((c, i) => `${quoteIdent(c.name)}::text AS c${i}`).join(', ');
    const r = await client.query<Record<string, string | null>>(`SELECT ${select} FROM ${ref} ORDER BY ${order} LIMIT $1 OFFSET $2`, [Math.max(1, Math.floor(opts.limit)), Math.max(0, Math.floor(opts.offset))]);
    const n = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${ref}`);
    return { columns, rows: r.rows.map((row) => columns.map((_c, i) => row[`c${i}`] ?? null)), total: Number(n.rows[0]?.n ?? 0) };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}
