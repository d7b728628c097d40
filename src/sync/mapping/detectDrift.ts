import { SyncError } from '../errors';
import type { DeltaField, DeltaType } from '../delta/types';
import type { Mapping } from './mappingSchema';
import { formatDeltaType } from '../delta/schema';
import { defaultPgType, sameDeltaType } from './resolveColumns';
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

/** How a key column changed between the checkpoint and the end version. */
export type KeyChange =
  | { column: TargetColumn; change: 'removed' }
  | { column: TargetColumn; change: 'renamed'; to: DeltaField }
  | { column: TargetColumn; change: 'retyped'; to: DeltaField };

/** Every change of the synced columns between the checkpoint's schema and the end version's. */
export interface SchemaChanges {
  /** Synced columns no longer in the Delta schema (renamed key columns are in `key` only). */
  removed: TargetColumn[];
  retyped: RetypedColumn[];
  /** Changes of the key's columns (also listed in removed / retyped where they fit). */
  key: KeyChange[];
}

function describeCol(c: TargetColumn): string {
  return c.source.name === c.name ? `"${c.name}"` : `"${c.source.name}" (-> "${c.name}")`;
}

/** Whether the column is NOT NULL in Postgres (its own override, else the Delta field's nullability). */
function isNotNull(c: TargetColumn): boolean {
  return c.notNull ?? !c.source.nullable;
}

/**
 * Classifies how the columns synced so far (resolved at the checkpoint's version) changed
 * in the Delta schema of the end version: removed, retyped (compatible or not with the
 * Postgres column), and, for the key's columns (Postgres names in `key`), removed, renamed
 * (column mapping: same physical name under a new name) or retyped in any way. Added
 * columns are not classified here: checkSyncDrift finds them as the columns the run
 * writes that the target lacks.
 */
export function classifySchemaChanges(synced: readonly TargetColumn[], schema: readonly DeltaField[], mapping: Mapping, key: readonly string[]): SchemaChanges {
  const current = new Map(schema.map((f) => [f.name, f]));
  const removed: TargetColumn[] = [];
  const retyped: RetypedColumn[] = [];
  const keyChanges: KeyChange[] = [];
  for (const c of synced) {
    const isKey = key.includes(c.name);
    const f = current.get(c.source.name);
    if (!f) {
      // Under column mapping a rename keeps the physical name; without it, a rename is a removal.
      const renamed = schema.find((x) => x.physicalName === c.source.physicalName && x.name !== c.source.name);
      if (isKey) keyChanges.push(renamed ? { column: c, change: 'renamed', to: renamed } : { column: c, change: 'removed' });
      if (!(isKey && renamed)) removed.push(c);
      continue;
    }
    if (sameDeltaType(c.source.type, f.type) && c.source.nullable === f.nullable) continue;
    const newPg = mapping.columns.types?.[c.name] ?? defaultPgType(f.type);
    const compatible = newPg === c.pgType && !(f.nullable && isNotNull(c));
    retyped.push({ column: c, to: f.type, toNullable: f.nullable, compatible });
    if (isKey) keyChanges.push({ column: c, change: 'retyped', to: f });
  }
  return { removed, retyped, key: keyChanges };
}

/** A column a run writes, as the target check needs it. */
export type PlannedColumn = Pick<TargetColumn, 'name' | 'pgType'>;

/** What the key check needs: the mapping, the key and the two schemas. */
export interface KeyDriftInput {
  mapping: Mapping;
  /** The mapped columns at the checkpoint's version; undefined when that schema is unknown. */
  synced?: readonly TargetColumn[];
  /** The Delta schema at the version the run reads to. */
  schema: readonly DeltaField[];
  /** The key's Postgres column names (the mapping's `key`, else the target's primary key). */
  key: readonly string[];
  /** Source name and versions, for messages. */
  source: string;
  fromVersion: number;
  toVersion: number;
}

export interface SyncDriftInput extends KeyDriftInput {
  /** The columns the run would write (data columns; the soft-delete marker is not drift). */
  planned: readonly PlannedColumn[];
  /** The target table's columns (name -> type). */
  targetColumns: ReadonlyMap<string, string>;
  targetLabel: string;
}

/** What a sync does about drift (it throws instead when the policy refuses). */
export type SyncDriftAction =
  | { decision: 'none' }
  | { decision: 'add-columns'; add: PlannedColumn[]; warning: string }
  | { decision: 'ignore-new'; ignore: PlannedColumn[]; warning: string };

function between(input: KeyDriftInput): string {
  return input.fromVersion === input.toVersion ? `at version ${input.toVersion}` : `between version ${input.fromVersion} and version ${input.toVersion}`;
}

function describeKeyChange(k: KeyChange): string {
  const c = k.column;
  switch (k.change) {
    case 'removed':
      return `${describeCol(c)} was removed (a rename without column mapping looks like this too)`;
    case 'renamed':
      return `${describeCol(c)} was renamed to "${k.to.name}"`;
    case 'retyped':
      return `${describeCol(c)} changed from ${formatDeltaType(c.source.type)}${c.source.nullable ? '' : ' not null'} to ${formatDeltaType(k.to.type)}${k.to.nullable ? '' : ' not null'}`;
  }
}

/**
 * Refuses a change of the key's columns between the checkpoint and the end version, under
 * every `schemaDrift` policy: the target's rows are matched by that key, so changes read
 * under a removed, renamed or retyped key would update or delete the wrong rows (or none).
 * Does nothing when the checkpoint's schema is unknown. Runs before the end version's
 * columns are planned, so a vanished key column is reported as drift, not as a mapping error.
 */
export function refuseKeyDrift(input: KeyDriftInput): void {
  if (!input.synced) return;
  const changes = classifySchemaChanges(input.synced, input.schema, input.mapping, input.key).key;
  const first = changes[0];
  if (!first) return;
  throw new SyncError(
    'schema-drift',
    `The key of ${input.source} changed ${between(input)}: key column ${changes.map(describeKeyChange).join('; key column ')}. ` +
      `schemaDrift '${input.mapping.schemaDrift}' does not apply to key columns: the target's rows are matched by the key, and changes read under another key would update or delete the wrong rows.`,
    {
      table: input.source,
      version: input.toVersion,
      column: first.column.source.name,
      setting: 'key',
      hint: 'Run the initial load again ({action}) to rebuild the target under the new key, after pointing "key" at the new column if it was renamed.',
      action: { id: 'initial-load' },
      retry: 'manual',
    },
  );
}

/**
 * The drift check of a sync, the one rule set: first the key (refuseKeyDrift, under every
 * policy), then the Delta schema since the checkpoint (a removed column or an incompatible
 * retype fails whatever the policy, since Postgres would silently get nulls or stale
 * values; a compatible retype goes on), then the columns the run writes against the
 * target's: a mapped column the target lacks follows `schemaDrift` (fail, add it, or leave
 * it out; it is never silently dropped).
 */
export function checkSyncDrift(input: SyncDriftInput): SyncDriftAction {
  const policy = input.mapping.schemaDrift;
  refuseKeyDrift(input);
  if (input.synced) {
    const { removed, retyped } = classifySchemaChanges(input.synced, input.schema, input.mapping, input.key);
    const incompatible = retyped.filter((r) => !r.compatible);
    if (removed.length || incompatible.length) {
      const parts: string[] = [];
      if (removed.length) parts.push(`removed ${removed.map(describeCol).join(', ')}`);
      if (incompatible.length) {
        parts.push(
          `changed ${incompatible
            .map((r) => `${describeCol(r.column)} ${formatDeltaType(r.column.source.type)}${isNotNull(r.column) ? ' not null' : ''} -> ${formatDeltaType(r.to)}${r.toNullable ? '' : ' not null'}`)
            .join(', ')}`,
        );
      }
      throw new SyncError('schema-drift', `The schema of ${input.source} changed ${between(input)}: ${parts.join('; ')}. schemaDrift '${policy}' does not handle removed or incompatibly retyped columns.`, {
        table: input.source,
        version: input.toVersion,
        column: removed[0]?.source.name ?? incompatible[0]?.column.source.name,
        setting: 'schemaDrift',
        hint: 'Removed or retyped columns need a decision: migrate the Postgres table (or add a columns.types override that fits), or run the initial load again.',
        retry: 'manual',
      });
    }
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
