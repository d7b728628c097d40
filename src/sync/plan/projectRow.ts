import { SyncError } from '../errors';
import type { DeltaValue, Row } from '../delta/types';
import type { TargetColumn } from '../ports/targetTypes';
import type { NetChanges } from './netChanges';

function missing(col: TargetColumn): SyncError {
  return new SyncError('schema-drift', `Delta column "${col.source.name}" is missing from a change row`, {
    column: col.source.name,
    hint: 'The Delta schema changed under the sync: run it again so the schema is checked first.',
  });
}

/**
 * A Delta row (source names) as a target row (Postgres names, `columns` order), leaving out
 * every column the mapping does not sync. Values are passed through untouched: conversion
 * to Postgres text/binary is the writer's job, since it depends on pgType. Throws
 * SyncError('schema-drift') when the row lacks a column (undefined, not null).
 */
export function projectRow(row: Row, columns: readonly TargetColumn[]): Row {
  const out: Row = {};
  for (const c of columns) {
    const v = row[c.source.name];
    if (v === undefined) throw missing(c);
    out[c.name] = v;
  }
  return out;
}

/** Like projectRow, as an array in `columns` order (what COPY and VALUES lists want). */
export function projectValues(row: Row, columns: readonly TargetColumn[]): DeltaValue[] {
  const out = new Array<DeltaValue>(columns.length);
  for (let i = 0; i < columns.length; i++) {
    const c = columns[i]!;
    const v = row[c.source.name];
    if (v === undefined) throw missing(c);
    out[i] = v;
  }
  return out;
}

/**
 * Net changes with Postgres names: upserts projected on `columns`, deletes (key-only rows)
 * on `keyColumns` (the TargetColumns of the key).
 */
export function projectNetChanges(
  changes: NetChanges,
  columns: readonly TargetColumn[],
  keyColumns: readonly TargetColumn[],
): NetChanges {
  return {
    ...changes,
    upserts: changes.upserts.map((r) => projectRow(r, columns)),
    deletes: changes.deletes.map((r) => projectRow(r, keyColumns)),
  };
}
