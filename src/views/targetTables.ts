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
