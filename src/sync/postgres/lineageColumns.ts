import type { ClientBase } from 'pg';
import { SyncError } from '../errors';
import { lineageAddedNotice } from '../plan/lineage';
import { alterTableSql } from './alterTableSql';
import { displayName, qualifiedRef, quoteIdent } from './quoteIdent';
import type { LineageColumns, TableAlteration, TableRef } from '../ports/targetTypes';

/** format_type() spelling of each lineage column's type, by mapping field. */
const CATALOG_TYPES: Record<keyof LineageColumns, string> = {
  version: 'bigint',
  commitTimestamp: 'timestamp with time zone',
  syncedAt: 'timestamp with time zone',
};

/**
 * The lineage columns `table` lacks (by the catalog's column -> type map), as
 * `add-column` alterations (IF NOT EXISTS) for the run's one list of DDL; empty when it has
 * them all. Refuses a column of that name and another type. Nullable, no default: a
 * catalog change only (no table rewrite); rows written before have NULL lineage, which the
 * guard lets any change pass.
 */
export function lineageAlterations(table: TableRef, lineage: LineageColumns | undefined, existing: ReadonlyMap<string, string>): TableAlteration[] {
  if (!lineage) return [];
  const missing: TableAlteration[] = [];
  for (const field of ['version', 'commitTimestamp', 'syncedAt'] as const) {
    const name = lineage[field];
    if (name === undefined) continue;
    const have = existing.get(name);
    if (have === undefined) {
      missing.push({ alter: 'add-column', column: name, pgType: field === 'version' ? 'bigint' : 'timestamptz', ifNotExists: true });
    } else if (have !== CATALOG_TYPES[field]) {
      throw new SyncError('mapping', `Lineage column "${name}" of ${displayName(table)} is ${have}, but lineage.${field} needs ${CATALOG_TYPES[field]}.`, {
        table: displayName(table),
        column: name,
        setting: `lineage.${field}`,
        hint: `Name another column in lineage.${field} of the mapping, or change the type of "${name}" (ALTER TABLE ${qualifiedRef(table)} ALTER COLUMN ${quoteIdent(name)} TYPE ${CATALOG_TYPES[field]}).`,
      });
    }
  }
  return missing;
}

/**
 * Adds the lineage columns the table lacks (in the caller's transaction if any) and records
 * them in `existing`; returns the warning for the user, or undefined when nothing was added.
 */
export async function ensureLineageColumns(client: ClientBase, table: TableRef, lineage: LineageColumns | undefined, existing: Map<string, string>): Promise<string | undefined> {
  const added = lineageAlterations(table, lineage, existing);
  for (const a of added) {
    await client.query(alterTableSql(table, a));
    if (a.alter === 'add-column') existing.set(a.column, a.pgType === 'bigint' ? CATALOG_TYPES.version : CATALOG_TYPES.syncedAt);
  }
  return lineageAddedNotice(displayName(table), added);
}
