import type { DeltaField } from '../delta/types';
import type { LineageColumns, TableAlteration, TargetColumn } from '../ports/targetTypes';

/**
 * Lineage columns (mapping `lineage`, off by default): the Delta commit version of a row's
 * last change, that commit's timestamp, and the time of the sync that wrote it. The first
 * two travel with the rows like the soft-delete marker (a synthetic Delta field under a row
 * key no Delta column can have, so COPY encodes them as any other value); the sync time is
 * `now()` of the target's transaction and is never staged.
 *
 * With the version column, every upsert and delete carries the out-of-order guard: a
 * target row changes only when the incoming version is >= its own (postgres/mergeSql.ts).
 */

/** Row key of the version value (a NUL first: never a Delta column name). */
export const LINEAGE_VERSION_KEY = '\u0000lineage:version';
/** Row key of the commit timestamp value (microseconds since the epoch, as Delta timestamps). */
export const LINEAGE_TIMESTAMP_KEY = '\u0000lineage:commitTimestamp';

function field(name: string, type: 'long' | 'timestamp'): DeltaField {
  return { name, physicalName: name, type: { kind: 'primitive', name: type }, nullable: true, metadata: {} };
}

/** The staged lineage columns (version, then commit timestamp), as far as the mapping asks for them. */
export function lineageTargetColumns(l: LineageColumns | undefined): TargetColumn[] {
  if (!l) return [];
  return [
    ...(l.version ? [{ name: l.version, source: field(LINEAGE_VERSION_KEY, 'long'), pgType: 'bigint', notNull: false }] : []),
    ...(l.commitTimestamp ? [{ name: l.commitTimestamp, source: field(LINEAGE_TIMESTAMP_KEY, 'timestamp'), pgType: 'timestamptz', notNull: false }] : []),
  ];
}

/** Every lineage column the target holds: the staged ones, then the sync time. */
export function lineageTableColumns(l: LineageColumns | undefined): TargetColumn[] {
  if (!l) return [];
  return [
    ...lineageTargetColumns(l),
    ...(l.syncedAt ? [{ name: l.syncedAt, source: field('\u0000lineage:syncedAt', 'timestamp'), pgType: 'timestamptz', notNull: false }] : []),
  ];
}

/** Whether any lineage value travels with the rows (version or commit timestamp). */
export function lineageStaged(l: LineageColumns | undefined): boolean {
  return l !== undefined && (l.version !== undefined || l.commitTimestamp !== undefined);
}

/** The lineage setting with at least one column, or undefined (lineage off). */
export function lineageOf(l: LineageColumns | undefined): LineageColumns | undefined {
  return l && (l.version || l.commitTimestamp || l.syncedAt) ? l : undefined;
}

/**
 * The warning for the lineage columns a run added to `table` (`added`: their alterations;
 * `sql`: the statements, when said), or undefined when none.
 */
export function lineageAddedNotice(table: string, added: readonly TableAlteration[], sql?: readonly string[]): string | undefined {
  const cols = added.flatMap((a) => (a.alter === 'add-column' ? [`"${a.column.replace(/"/g, '""')}" (${a.pgType})`] : []));
  if (cols.length === 0) return undefined;
  return `Added lineage column${cols.length === 1 ? '' : 's'} ${cols.join(', ')} to ${table}${sql && sql.length > 0 ? ` (${sql.join('; ')})` : ''}; rows written before have none until a change reaches them.`;
}
