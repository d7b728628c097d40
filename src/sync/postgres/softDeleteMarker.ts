import type { ClientBase } from 'pg';
import { liveMarkerValue, markerPgType, markerTargetColumn } from '../plan/applyDeletePolicy';
import { SyncError } from '../errors';
import { displayName, qualifiedRef, quoteIdent } from './quoteIdent';
import { renderCreateTable } from './renderCreateTable';
import type { RenderCreateTableOptions } from './renderCreateTable';
import type { SoftDeleteMarker, TableRef, TargetColumn } from '../ports/targetTypes';

/** Postgres' format_type() spelling of the marker's type (to compare with the catalog). */
export function markerCatalogType(m: SoftDeleteMarker): string {
  return m.kind === 'boolean' ? 'boolean' : 'timestamp with time zone';
}

/** Column definition text: `"deleted" boolean NOT NULL DEFAULT false` / `"deleted_at" timestamptz`. */
export function markerColumnDefinition(m: SoftDeleteMarker): string {
  return m.kind === 'boolean' ? `${quoteIdent(m.column)} boolean NOT NULL DEFAULT false` : `${quoteIdent(m.column)} timestamptz`;
}

/** SQL condition: the row `alias` is live (its marker is cleared). */
export function isLiveSql(alias: string, m: SoftDeleteMarker): string {
  const col = alias ? `${alias}.${quoteIdent(m.column)}` : quoteIdent(m.column);
  // NOT TRUE rather than = false: a NULL (a column added by hand without the default) is live too.
  return m.kind === 'boolean' ? `${col} IS NOT TRUE` : `${col} IS NULL`;
}

/**
 * CREATE TABLE for data columns plus the marker column (with its DEFAULT, so other writers
 * and a COPY that leaves the column out get a live row).
 */
export function renderCreateTableWithMarker(table: TableRef, columns: readonly TargetColumn[], key: readonly string[], marker: SoftDeleteMarker | undefined, opts: RenderCreateTableOptions = {}): string {
  if (!marker) return renderCreateTable(table, columns, key, opts);
  const col = markerTargetColumn(marker);
  const sql = renderCreateTable(table, [...columns, col], key, opts);
  // renderCreateTable writes one column per line as `  "name" type[ NOT NULL]`: swap in the full definition.
  const plain = `  ${quoteIdent(col.name)} ${col.pgType}${col.notNull ? ' NOT NULL' : ''}`;
  const lines = sql.split('\n');
  const i = lines.findIndex((l) => l === plain || l === `${plain},`);
  if (i < 0) throw new Error(`internal: marker column line not found in ${sql}`);
  lines[i] = `  ${markerColumnDefinition(marker)}${(lines[i] as string).endsWith(',') ? ',' : ''}`;
  return lines.join('\n');
}

/**
 * Makes sure the target has the marker column: adds it when missing (returning a warning
 * for the user), refuses one of another type. `columns` is the target's column -> type map
 * (format_type spelling). Runs in the caller's transaction, if any.
 */
export async function ensureMarkerColumn(client: ClientBase, table: TableRef, m: SoftDeleteMarker, columns: ReadonlyMap<string, string>): Promise<string | undefined> {
  const have = columns.get(m.column);
  if (have !== undefined) {
    if (have !== markerCatalogType(m)) {
      throw new SyncError('mapping', `Soft-delete column "${m.column}" of ${displayName(table)} is ${have}, but deletes.kind "${m.kind}" needs ${markerPgType(m)}.`, {
        table: displayName(table),
        column: m.column,
        setting: 'deletes.kind',
        hint: `Use deletes.kind "${have === 'boolean' ? 'boolean' : 'timestamp'}" if that matches, pick another deletes.column, or change the column's type.`,
      });
    }
    return undefined;
  }
  // A constant default (or none) makes ADD COLUMN a catalog change, no table rewrite.
  await client.query(`ALTER TABLE ${qualifiedRef(table)} ADD COLUMN IF NOT EXISTS ${markerColumnDefinition(m)}`);
  return `Added soft-delete column ${quoteIdent(m.column)} (${markerPgType(m)}) to ${displayName(table)}; existing rows are live.`;
}
