import type { DeltaField, DeltaType, Row } from '../delta/types';
import { SyncError, isSyncError } from '../errors';
import type { Mapping } from '../mapping/mappingSchema';
import { keySourceColumns, resolveColumns } from '../mapping/resolveColumns';
import type { TransactionPlanOptions } from '../plan/planTransactions';
import { liveMarkerValue, markerTargetColumn } from '../plan/applyDeletePolicy';
import type { LineageColumns, SoftDeleteMarker, TargetColumn } from '../ports/targetTypes';
import { lineageOf, lineageStaged, lineageTableColumns } from '../plan/lineage';

/** The columns a run writes, for one Delta schema with the mapping applied. */
export interface ColumnPlan {
  schema: DeltaField[];
  /** Data columns, then (soft-delete policy) the marker column last. */
  columns: TargetColumn[];
  key: string[];
  /** Delta names of the key columns (change rows are keyed by them). */
  keySource: string[];
  /** Soft-delete policy: the marker column, with a row key no Delta column uses. */
  marker?: SoftDeleteMarker;
  /** Lineage columns (mapping `lineage`), kept apart from `columns`: the target writes them (plan/lineage.ts). */
  lineage?: LineageColumns;
}

/**
 * Keys per part when one commit is applied in parts (planTransactions): small enough that
 * the first part is read quickly and the server works on one part while the next is read;
 * large enough that the per-statement cost stays small (bench: 100k changes in one commit).
 */
const PART_ROWS = 10_000;

/** Change rows per read batch. */
export const READ_BATCH_ROWS = 10_000;

/**
 * Columns, key and key source names for a Delta schema, with the mapping applied. `source`
 * and `version` name the schema in errors; the key is the mapping's, else the target's
 * primary key.
 */
export function planColumns(mapping: Mapping, source: string, schema: DeltaField[], targetPk: string[] | undefined, version: number, tableLabel: string): ColumnPlan {
  let columns: TargetColumn[];
  try {
    columns = resolveColumns(mapping, schema);
  } catch (e) {
    if (isSyncError(e)) throw e.withContext(`source ${source} at version ${version}`, { version });
    throw e;
  }
  const key = mapping.key ?? targetPk;
  if (!key || key.length === 0) {
    throw new SyncError('mapping', `Pipeline "${mapping.name}": no key columns. The mapping has no "key" and ${tableLabel} has no primary key${targetPk ? '' : ' (the table does not exist yet)'}.`, {
      setting: 'key',
      hint: `Add "key": ["<column>"] to the mapping (Postgres column names).`,
    });
  }
  const policy = mapping.deletes;
  const lineage = lineageOf(mapping.lineage);
  const withLineage = lineage ? { lineage } : {};
  if (policy.mode !== 'soft-delete') return { schema, columns, key, keySource: keySourceColumns(columns, key), ...withLineage };
  // Rows are keyed by Delta names: a Delta column named like the marker (excluded or
  // renamed away, since resolveColumns refuses a data column of that name) would share
  // its row key, so the marker then travels under a key no Delta column can have.
  const rowKey = schema.some((f) => f.name === policy.column) ? `\u0000soft-delete:${policy.column}` : policy.column;
  const marker: SoftDeleteMarker = { column: policy.column, kind: policy.kind, rowKey };
  return { schema, columns: [...columns, markerTargetColumn(marker)], key, keySource: keySourceColumns(columns, key), marker, ...withLineage };
}

/**
 * Whether a sync (and its dry run) refuses an insert of a key the target holds: that means
 * the Delta table holds it twice (duplicateKeys: fail). Not with deletes: ignore, whose
 * target keeps deleted rows: there a re-insert legitimately meets its old row.
 */
export function refuseExistingKeysOption(mapping: Mapping): { source: string } | undefined {
  return mapping.duplicateKeys === 'fail' && mapping.deletes.mode !== 'ignore'
    ? { source: mapping.source.type === 'delta' ? mapping.source.path : mapping.source.table }
    : undefined;
}

/** The columns of the table an initial load creates (before the marker): the data columns, then the lineage columns. */
export function createdColumns(plan: ColumnPlan): TargetColumn[] {
  return [...dataColumns(plan), ...lineageTableColumns(plan.lineage)];
}

/** The plan's data columns (without the soft-delete marker). */
export function dataColumns(plan: ColumnPlan): TargetColumn[] {
  return plan.marker ? plan.columns.filter((c) => c.name !== plan.marker?.column) : plan.columns;
}

/**
 * How a sync cuts a range into transactions: the mapping's batch limits, parts of big
 * commits (except with dead letters, which isolate failing rows by bisecting one staged
 * batch) and its delete policy. The sync (on either thread), preview and dry run all use
 * this, so they count what the sync does.
 */
export function transactionOptions(mapping: Mapping, plan: ColumnPlan): TransactionPlanOptions {
  return {
    keySource: plan.keySource,
    keyTypes: keyTypesOf(plan),
    maxRows: mapping.batch.maxRows,
    maxBytes: mapping.batch.maxBytes,
    partRows: mapping.deadLetter ? undefined : Math.min(mapping.batch.maxRows, PART_ROWS),
    deletes: mapping.deletes,
    duplicateKeys: mapping.duplicateKeys,
    table: mapping.source.type === 'delta' ? mapping.source.path : mapping.source.table,
    ...(plan.marker?.rowKey ? { markerKey: plan.marker.rowKey } : {}),
    ...(lineageStaged(plan.lineage) ? { lineage: true } : {}),
  };
}

/** Delta types of the key columns by source name (NetChangeBuffer folds decimal -0 keys with them). */
function keyTypesOf(plan: ColumnPlan): Record<string, DeltaType> {
  return Object.fromEntries(plan.columns.filter((c) => plan.keySource.includes(c.source.name)).map((c) => [c.source.name, c.source.type]));
}

/** Snapshot rows as a load writes them: with a soft-delete marker, each carries the live value. */
export function withLiveMarker(rows: Row[], marker: SoftDeleteMarker | undefined): Row[] {
  return marker ? rows.map((r) => ({ ...r, [marker.rowKey ?? marker.column]: liveMarkerValue(marker) })) : rows;
}
