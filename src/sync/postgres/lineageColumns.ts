import type { ClientBase } from 'pg';
import { SyncError } from '../errors';
import { lineageTableColumns } from '../plan/lineage';
import { displayName, qualifiedRef, quoteIdent } from './quoteIdent';
import type { LineageColumns, TableRef } from '../ports/targetTypes';

/** format_type() spelling of each lineage column's type, by mapping field. */
const CATALOG_TYPES: Record<keyof LineageColumns, string> = {
  version: 'bigint',
  commitTimestamp: 'timestamp with time zone',
  syncedAt: 'timestamp with time zone',
};

/**
 * The lineage columns `table` lacks (by the catalog's column -> type map), as one
 * `ALTER TABLE ... ADD COLUMN ...` statement; undefined when it has them all. Refuses a
 * column of that name and another type. Nullable, no default: a catalog change only (no
 * table rewrite); rows written before have NULL lineage, which the guard lets any change pass.
 */
export function lineageColumnsDdl(table: TableRef, lineage: LineageColumns | undefined, existing: ReadonlyMap<string, string>): string | undefined {
  if (!lineage) return undefined;
  const missing: string[] = [];
  for (const field of ['version', 'commitTimestamp', 'syncedAt'] as const) {
    const name = lineage[field];
    if (name === undefined) continue;
    const have = existing.get(name);
    if (have === undefined) {
      missing.push(`ADD COLUMN IF NOT EXISTS ${quoteIdent(name)} ${field === 'version' ? 'bigint' : 'timestamptz'}`);
    } else if (have !== CATALOG_TYPES[field]) {
      throw new SyncError('mapping', `Lineage column "${name}" of ${displayName(table)} is ${have}, but lineage.${field} needs ${CATALOG_TYPES[field]}.`, {
        table: displayName(table),
        column: name,
        setting: `lineage.${field}`,
        hint: `Name another column in lineage.${field} of the mapping, or change the type of "${name}" (ALTER TABLE ${qualifiedRef(table)} ALTER COLUMN ${quoteIdent(name)} TYPE ${CATALOG_TYPES[field]}).`,
      });
    }
  }
  return missing.length === 0 ? undefined : `ALTER TABLE ${qualifiedRef(table)} ${missing.join(', ')};`;
}

/**
 * Adds the lineage columns the table lacks (one statement, in the caller's transaction if
 * any) and records them in `existing`; returns the warning for the user, or undefined when
 * nothing was added.
 */
export async function ensureLineageColumns(client: ClientBase, table: TableRef, lineage: LineageColumns | undefined, existing: Map<string, string>): Promise<string | undefined> {
  const ddl = lineageColumnsDdl(table, lineage, existing);
  if (ddl === undefined) return undefined;
  await client.query(ddl);
  const added = lineageTableColumns(lineage).filter((c) => !existing.has(c.name));
  for (const c of added) existing.set(c.name, c.pgType === 'bigint' ? 'bigint' : 'timestamp with time zone');
  return `Added lineage column${added.length === 1 ? '' : 's'} ${added.map((c) => `${quoteIdent(c.name)} (${c.pgType})`).join(', ')} to ${displayName(table)}; rows written before have none until a change reaches them.`;
}
