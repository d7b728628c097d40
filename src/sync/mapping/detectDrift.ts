import { SyncError } from '../errors';
import type { DeltaField, DeltaType } from '../delta/types';
import type { Mapping, SchemaDriftPolicy } from './mappingSchema';
import { formatDeltaType } from '../delta/schema';
import { defaultPgType, isSelected, sameDeltaType, targetColumnFor } from './resolveColumns';
import type { TargetColumn } from '../ports/targetTypes';

/** A synced column whose Delta type or nullability changed. */
export interface RetypedColumn {
  /** The column as synced so far. */
  column: TargetColumn;
  to: DeltaType;
  toNullable: boolean;
  /**
   * True when the existing Postgres column still holds every new value: same Postgres type
   * (e.g. byte -> short, both smallint; a struct gaining a field, jsonb either way; or a
   * `columns.types` override that already fits) and no NOT NULL being relaxed.
   */
  compatible: boolean;
}

/** One `ALTER TABLE ... ADD COLUMN` for the Postgres writer (always nullable: old rows have no value). */
export interface AddColumnSpec {
  source: string;
  column: string;
  pgType: string;
}

export type DriftDecision =
  | 'none' // nothing changed that matters
  | 'continue' // only compatible retypes: keep going with the new types
  | 'add-columns' // run `addColumns`, then sync `columns`
  | 'ignore-new' // new columns are not synced; sync `columns`
  | 'fail'; // stop with `error`

export interface DriftReport {
  /** New Delta columns the mapping's include/exclude would sync. */
  added: TargetColumn[];
  /** Synced columns no longer in the Delta schema. */
  removed: TargetColumn[];
  retyped: RetypedColumn[];
  decision: DriftDecision;
  addColumns: AddColumnSpec[];
  /** The columns to sync from here on (the old list when the decision is 'fail'). */
  columns: TargetColumn[];
  error?: SyncError;
}

export interface DriftContext {
  /** For selection, rename and types of new columns; without it, every new column counts, unrenamed. */
  mapping?: Mapping;
  /** Table name or path for messages. */
  table?: string;
  /** The version the synced columns were resolved at, and the version being read. */
  fromVersion?: number;
  toVersion?: number;
}

function describeCol(c: TargetColumn): string {
  return c.source.name === c.name ? `"${c.name}"` : `"${c.source.name}" (-> "${c.name}")`;
}

/** Whether the column is NOT NULL in Postgres (its own override, else the Delta field's nullability). */
function isNotNull(c: TargetColumn): boolean {
  return c.notNull ?? !c.source.nullable;
}

/**
 * Compares the columns synced so far with the table's current Delta schema and decides
 * what to do under the mapping's `schemaDrift` policy:
 *   - fail: any added column, removed column or incompatible retype -> 'fail';
 *   - add-columns: added columns -> ALTER TABLE ADD COLUMN specs; removed/incompatible -> 'fail';
 *   - ignore-new: added columns are left out; removed/incompatible -> 'fail'.
 * Removed and incompatible retyped columns always fail: Postgres would silently get nulls
 * or reject values, and only the user can choose between a migration and a reload.
 * Compatible retypes never fail; they are reported and `columns` carries the new types.
 * Never throws: the error is returned so a preview can show it.
 */
export function detectDrift(
  mappingColumns: readonly TargetColumn[],
  deltaSchema: readonly DeltaField[],
  policy: SchemaDriftPolicy,
  ctx: DriftContext = {},
): DriftReport {
  const current = new Map(deltaSchema.map((f) => [f.name, f]));
  const syncedSources = new Set(mappingColumns.map((c) => c.source.name));

  const removed = mappingColumns.filter((c) => !current.has(c.source.name));
  const retyped: RetypedColumn[] = [];
  const kept: TargetColumn[] = [];
  for (const c of mappingColumns) {
    const f = current.get(c.source.name);
    if (!f) continue;
    if (sameDeltaType(c.source.type, f.type) && c.source.nullable === f.nullable) {
      kept.push(c);
      continue;
    }
    const override = ctx.mapping?.columns.types?.[c.name];
    const newPg = override ?? defaultPgType(f.type);
    const compatible = newPg === c.pgType && !(f.nullable && isNotNull(c));
    retyped.push({ column: c, to: f.type, toNullable: f.nullable, compatible });
    kept.push(compatible ? { ...c, source: f } : c);
  }

  const added: TargetColumn[] = [];
  for (const f of deltaSchema) {
    if (syncedSources.has(f.name)) continue;
    if (ctx.mapping && !isSelected(ctx.mapping, f.name)) continue;
    added.push(
      ctx.mapping
        ? targetColumnFor(ctx.mapping, f)
        : { name: f.name, source: f, pgType: defaultPgType(f.type) },
    );
  }

  const incompatible = retyped.filter((r) => !r.compatible);
  const base = { added, removed, retyped };
  const failWith = (reason: string, hint: string): DriftReport => {
    const where = ctx.table ? ` of ${ctx.table}` : '';
    const when =
      ctx.fromVersion !== undefined && ctx.toVersion !== undefined
        ? ` between version ${ctx.fromVersion} and version ${ctx.toVersion}`
        : ctx.toVersion !== undefined
          ? ` at version ${ctx.toVersion}`
          : '';
    const parts: string[] = [];
    if (added.length) parts.push(`added ${added.map((c) => `${describeCol(c)} ${formatDeltaType(c.source.type)}`).join(', ')}`);
    if (removed.length) parts.push(`removed ${removed.map(describeCol).join(', ')}`);
    if (incompatible.length) {
      parts.push(
        `changed ${incompatible
          .map(
            (r) =>
              `${describeCol(r.column)} ${formatDeltaType(r.column.source.type)}${isNotNull(r.column) ? ' not null' : ''} -> ${formatDeltaType(r.to)}${r.toNullable ? '' : ' not null'}`,
          )
          .join(', ')}`,
      );
    }
    const first = removed[0]?.source.name ?? incompatible[0]?.column.source.name ?? added[0]?.source.name;
    const error = new SyncError('schema-drift', `The schema${where} changed${when}: ${parts.join('; ')}. ${reason}`, {
      table: ctx.table,
      version: ctx.toVersion,
      column: first,
      setting: 'schemaDrift',
      hint,
      retry: 'manual',
    });
    return { ...base, decision: 'fail', addColumns: [], columns: [...mappingColumns], error };
  };

  const reloadHint =
    'Removed or retyped columns need a decision: migrate the Postgres table (or add a columns.types override that fits), or run the initial load again.';
  if (removed.length || incompatible.length) {
    return failWith(
      `schemaDrift '${policy}' does not handle removed or incompatibly retyped columns.`,
      reloadHint,
    );
  }
  if (added.length === 0) {
    return { ...base, decision: retyped.length ? 'continue' : 'none', addColumns: [], columns: kept };
  }
  switch (policy) {
    case 'fail':
      return failWith(
        "schemaDrift is 'fail'.",
        "Set schemaDrift to 'add-columns' to add them to the Postgres table, or 'ignore-new' (or columns.exclude) to leave them out.",
      );
    case 'ignore-new':
      return { ...base, decision: 'ignore-new', addColumns: [], columns: kept };
    case 'add-columns': {
      const taken = new Map(kept.map((c) => [c.name, c.source.name]));
      const softCol = ctx.mapping?.deletes.mode === 'soft-delete' ? ctx.mapping.deletes.column : undefined;
      for (const c of added) {
        const clash = taken.get(c.name) ?? (c.name === softCol ? 'deletes.column' : undefined);
        if (clash !== undefined || c.name.includes('\u0000') || Buffer.byteLength(c.name, 'utf8') > 63) {
          return failWith(
            `The new column ${describeCol(c)} cannot be added as Postgres column "${c.name}"${clash ? ` (already used by ${clash === 'deletes.column' ? 'deletes.column' : `"${clash}"`})` : ' (not a valid name)'}.`,
            `Add "${c.source.name}" to columns.rename or columns.exclude.`,
          );
        }
        taken.set(c.name, c.source.name);
      }
      return {
        ...base,
        decision: 'add-columns',
        addColumns: added.map((c) => ({ source: c.source.name, column: c.name, pgType: c.pgType })),
        columns: [...kept, ...added.map((c) => ({ ...c, notNull: false }))],
      };
    }
  }
}

/** A column a run writes, as the target check needs it. */
export type PlannedColumn = Pick<TargetColumn, 'name' | 'pgType'>;

export interface SyncDriftInput {
  mapping: Mapping;
  /** The mapped columns at the checkpoint's version; undefined when that schema is unknown. */
  synced?: readonly TargetColumn[];
  /** The Delta schema at the version the run reads to. */
  schema: readonly DeltaField[];
  /** The columns the run would write (data columns; the soft-delete marker is not drift). */
  planned: readonly PlannedColumn[];
  /** The target table's columns (name -> type). */
  targetColumns: ReadonlyMap<string, string>;
  /** Source name, target name and versions, for messages. */
  source: string;
  targetLabel: string;
  fromVersion: number;
  toVersion: number;
}

/** What a sync does about drift (it throws instead when the policy refuses). */
export type SyncDriftAction =
  | { decision: 'none' }
  | { decision: 'add-columns'; add: PlannedColumn[]; warning: string }
  | { decision: 'ignore-new'; ignore: PlannedColumn[]; warning: string };

/**
 * The drift check of a sync, in one place: first the Delta schema since the checkpoint
 * (detectDrift: a removed column or an incompatible retype fails whatever the policy,
 * since Postgres would silently get nulls or stale values), then the columns the run
 * writes against the target's (a mapped column the target lacks follows `schemaDrift`:
 * fail, add it, or leave it out; it is never silently dropped).
 */
export function checkSyncDrift(input: SyncDriftInput): SyncDriftAction {
  const policy = input.mapping.schemaDrift;
  if (input.synced) {
    const report = detectDrift(input.synced, input.schema, policy, { mapping: input.mapping, table: input.source, fromVersion: input.fromVersion, toVersion: input.toVersion });
    const refused = report.removed.length > 0 || report.retyped.some((r) => !r.compatible);
    if (refused && report.error) throw report.error;
  }
  const missing = input.planned.filter((col) => !input.targetColumns.has(col.name));
  if (missing.length === 0) return { decision: 'none' };
  const names = missing.map((m) => `"${m.name}" (${m.pgType})`).join(', ');
  switch (policy) {
    case 'fail':
      throw new SyncError('schema-drift', `Schema drift in ${input.source} between versions ${input.fromVersion} and ${input.toVersion}: column(s) ${names} are not in ${input.targetLabel}.`, {
        table: input.source,
        version: input.toVersion,
        column: missing[0]?.name,
        setting: 'schemaDrift',
        hint: 'Set "schemaDrift": "add-columns" to add them, "ignore-new" to skip them, or exclude them in columns.exclude.',
      });
    case 'ignore-new':
      return { decision: 'ignore-new', ignore: missing, warning: `Ignoring new source column(s) ${names} (schemaDrift: ignore-new).` };
    case 'add-columns':
      return { decision: 'add-columns', add: missing, warning: `Added column(s) ${names} to ${input.targetLabel} (schemaDrift: add-columns).` };
  }
}
