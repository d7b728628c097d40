import { qualifiedRef, quoteIdent, quoteLiteral } from './quoteIdent';
import type { TableRef } from '../ports/targetTypes';

/** A column of a previewed row: its target name, Postgres type (SQL text) and whether it is part of the key. */
export interface StatementColumn {
  name: string;
  pgType: string;
  isKey: boolean;
}

/** A previewed row: display cells in `columns` order as Postgres text (formatValue's), null is NULL. */
export interface StatementRow {
  op: 'insert' | 'update' | 'delete' | 'unchanged';
  cells: ReadonlyArray<string | null>;
  /** For updates: the columns that change (the others are not known). */
  changed?: readonly string[];
}

/** A value as a typed literal: the text Postgres printed, cast back to the column's type. */
function literal(text: string | null, pgType: string): string {
  return text === null ? 'NULL' : `${quoteLiteral(text)}::${pgType}`;
}

/**
 * The statement that does to the target what the plan does with one row ("Copy as SQL"):
 * an insert as INSERT ... ON CONFLICT (key) DO UPDATE (the upsert the sync runs), an update
 * as UPDATE of its changed columns by key, a delete as DELETE by key, an unchanged row as
 * the SELECT that shows it. Identifiers go through quoteIdent, values through quoteLiteral
 * with a cast to the column's type, so the text of any value (quotes, backslashes,
 * timestamps, bytea, jsonb) means the same in psql.
 */
export function rowStatementSql(table: TableRef, columns: readonly StatementColumn[], row: StatementRow): string {
  const t = qualifiedRef(table);
  const keyCols = columns.map((c, i) => ({ c, i })).filter(({ c }) => c.isKey);
  const where = keyCols.map(({ c, i }) => {
    const v = row.cells[i] ?? null;
    return v === null ? `${quoteIdent(c.name)} IS NULL` : `${quoteIdent(c.name)} = ${literal(v, c.pgType)}`;
  }).join(' AND ') || 'false';
  switch (row.op) {
    case 'insert': {
      const names = columns.map((c) => quoteIdent(c.name)).join(', ');
      const values = columns.map((c, i) => literal(row.cells[i] ?? null, c.pgType)).join(', ');
      const rest = columns.filter((c) => !c.isKey);
      const conflict = keyCols.length === 0
        ? ''
        : ` ON CONFLICT (${keyCols.map(({ c }) => quoteIdent(c.name)).join(', ')}) ${rest.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${rest.map((c) => `${quoteIdent(c.name)} = EXCLUDED.${quoteIdent(c.name)}`).join(', ')}`}`;
      return `INSERT INTO ${t} (${names}) VALUES (${values})${conflict};`;
    }
    case 'update': {
      const changed = new Set(row.changed ?? columns.filter((c) => !c.isKey).map((c) => c.name));
      const sets = columns.map((c, i) => ({ c, i })).filter(({ c }) => changed.has(c.name));
      if (sets.length === 0) return `-- nothing changes in this row\nSELECT * FROM ${t} WHERE ${where};`;
      return `UPDATE ${t} SET ${sets.map(({ c, i }) => `${quoteIdent(c.name)} = ${literal(row.cells[i] ?? null, c.pgType)}`).join(', ')} WHERE ${where};`;
    }
    case 'delete':
      return `DELETE FROM ${t} WHERE ${where};`;
    case 'unchanged':
      return `-- the target already holds this row as the source has it\nSELECT * FROM ${t} WHERE ${where};`;
  }
}
