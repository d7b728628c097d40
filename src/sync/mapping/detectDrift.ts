import { SyncError } from '../errors';
import type { DeltaField, DeltaType } from '../delta/types';
import { describeSchemaDrift, schemaDriftRules } from './mappingSchema';
import type { Mapping } from './mappingSchema';
import { formatDeltaType } from '../delta/schema';
import { defaultPgType, sameDeltaType } from './resolveColumns';
import type { TableAlteration, TargetColumn } from '../ports/targetTypes';

/** A synced column whose Delta type or nullability changed. */
export interface RetypedColumn {
  /** The column as synced so far. */
  column: TargetColumn;
  to: DeltaType;
  toNullable: boolean;
  /**
   * True when the existing Postgres column still holds every new value: its type holds the
   * new one (e.g. byte -> short, both smallint; integer -> long over a bigint override; a
   * struct gaining a field, jsonb either way) and no NOT NULL is being relaxed.
   */
  compatible: boolean;
  /**
   * True when the change is a widening (Delta's type widening: byte->short->int->long,
   * float->double, integers to double or decimal, decimal precision/scale increase,
   * date->timestamp_ntz; or a column made nullable), which an ALTER COLUMN can follow;
   * false for a narrowing or any other retype.
   */
  widening: boolean;
  /** The Postgres type the new values need (the mapping's columns.types override, else the default map). */
  pgType: string;
}

/** A synced column renamed under Delta column mapping (same physical name, new logical name). */
export interface RenamedColumn {
  column: TargetColumn;
  to: DeltaField;
  /** The Postgres name the new Delta name maps to (the mapping's columns.rename, else the name itself). */
  targetName: string;
}

/** How a key column changed between the checkpoint and the end version. */
export type KeyChange =
  | { column: TargetColumn; change: 'removed' }
  | { column: TargetColumn; change: 'renamed'; to: DeltaField }
  | { column: TargetColumn; change: 'retyped'; to: DeltaField };

/** Every change of the synced columns between the checkpoint's schema and the end version's. */
export interface SchemaChanges {
  /** Synced columns no longer in the Delta schema (renamed columns are in `renamed`, or `key`). */
  removed: TargetColumn[];
  /** Non-key columns renamed under column mapping (found by physical name). */
  renamed: RenamedColumn[];
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

const INT_RANK: Record<string, number> = { byte: 1, short: 2, integer: 3, long: 4 };
/** Decimal digits an integer type needs to the left of the point. */
const INT_DIGITS: Record<string, number> = { byte: 3, short: 5, integer: 10, long: 20 };

/** Whether `from` -> `to` is one of Delta's type widenings (typeWidening feature). */
export function isDeltaWidening(from: DeltaType, to: DeltaType): boolean {
  if (from.kind === 'primitive' && to.kind === 'primitive') {
    const a = from.name;
    const b = to.name;
    if (a in INT_RANK && b in INT_RANK) return (INT_RANK[a] ?? 0) < (INT_RANK[b] ?? 0);
    if (b === 'double') return a === 'float' || a === 'byte' || a === 'short' || a === 'integer';
    return a === 'date' && b === 'timestamp_ntz';
  }
  if (from.kind === 'primitive' && to.kind === 'decimal') {
    const digits = INT_DIGITS[from.name];
    return digits !== undefined && to.precision - to.scale >= digits;
  }
  if (from.kind === 'decimal' && to.kind === 'decimal') {
    return to.scale >= from.scale && to.precision - to.scale >= from.precision - from.scale && (to.precision > from.precision || to.scale > from.scale);
  }
  return false;
}

/** A Postgres type name as format_type spells it, so two spellings compare equal. */
function normalPgType(t: string): string {
  const s = t.trim().toLowerCase().replace(/\s+/g, ' ').replace(/\s*\(\s*/g, '(').replace(/\s*,\s*/g, ',').replace(/\s*\)/g, ')');
  const alias: Record<string, string> = {
    int2: 'smallint', int: 'integer', int4: 'integer', int8: 'bigint', float4: 'real', float8: 'double precision',
    timestamp: 'timestamp without time zone', timestamptz: 'timestamp with time zone', decimal: 'numeric', bool: 'boolean',
  };
  const m = /^(decimal|numeric)(\(.*\))$/.exec(s);
  if (m) return `numeric${m[2]}`;
  return alias[s] ?? s;
}

const PG_INT_RANK: Record<string, number> = { smallint: 1, integer: 2, bigint: 3 };
const PG_INT_DIGITS: Record<string, number> = { smallint: 5, integer: 10, bigint: 19 };

/**
 * Whether a Postgres column of type `have` holds every value of type `need` without an
 * ALTER: the same type, a wider integer, a numeric with enough digits on both sides of the
 * point (or unconstrained), double for real. Conservative: anything else is "no".
 */
export function pgTypeHolds(have: string, need: string): boolean {
  const h = normalPgType(have);
  const n = normalPgType(need);
  if (h === n) return true;
  const numeric = (t: string): { p: number; s: number } | 'any' | undefined => {
    if (t === 'numeric') return 'any';
    const m = /^numeric\((\d+)(?:,(\d+))?\)$/.exec(t);
    return m ? { p: Number(m[1]), s: Number(m[2] ?? 0) } : undefined;
  };
  const hn = numeric(h);
  if (n in PG_INT_RANK) {
    if (h in PG_INT_RANK) return (PG_INT_RANK[n] ?? 9) <= (PG_INT_RANK[h] ?? 0);
    if (hn === 'any') return true;
    return hn !== undefined && hn.p - hn.s >= (PG_INT_DIGITS[n] ?? 99);
  }
  const nn = numeric(n);
  if (nn !== undefined && nn !== 'any') {
    if (hn === 'any') return true;
    return hn !== undefined && hn.s >= nn.s && hn.p - hn.s >= nn.p - nn.s;
  }
  return n === 'real' && h === 'double precision';
}

/**
 * Classifies how the columns synced so far (resolved at the checkpoint's version) changed
 * in the Delta schema of the end version. Columns are matched by physical name (the Delta
 * name without column mapping; under column mapping the physical name a rename keeps, so a
 * renamed column is found under its new name and a new column that took an old name is
 * not mistaken for it): removed, renamed, retyped (compatible or not with the Postgres
 * column, a widening or not), and, for the key's columns (Postgres names in `key`),
 * removed, renamed or retyped in any way. `targetTypes` (the target's columns) is what
 * Postgres holds now; without it the types planned at the checkpoint stand in. Added
 * columns are not classified here: checkSyncDrift finds them as the columns the run
 * writes that the target lacks.
 */
export function classifySchemaChanges(
  synced: readonly TargetColumn[],
  schema: readonly DeltaField[],
  mapping: Mapping,
  key: readonly string[],
  targetTypes?: ReadonlyMap<string, string>,
): SchemaChanges {
  const byPhysical = new Map(schema.map((f) => [f.physicalName, f]));
  const removed: TargetColumn[] = [];
  const renamed: RenamedColumn[] = [];
  const retyped: RetypedColumn[] = [];
  const keyChanges: KeyChange[] = [];
  for (const c of synced) {
    const isKey = key.includes(c.name);
    const f = byPhysical.get(c.source.physicalName);
    if (!f) {
      if (isKey) keyChanges.push({ column: c, change: 'removed' });
      removed.push(c);
      continue;
    }
    if (f.name !== c.source.name) {
      if (isKey) {
        keyChanges.push({ column: c, change: 'renamed', to: f });
        continue;
      }
      renamed.push({ column: c, to: f, targetName: mapping.columns.rename?.[f.name] ?? f.name });
    }
    if (sameDeltaType(c.source.type, f.type) && c.source.nullable === f.nullable) continue;
    const targetName = mapping.columns.rename?.[f.name] ?? f.name;
    const newPg = mapping.columns.types?.[targetName] ?? defaultPgType(f.type);
    const have = targetTypes?.get(c.name) ?? c.pgType;
    const relaxes = f.nullable && isNotNull(c);
    const compatible = pgTypeHolds(have, newPg) && !relaxes && (normalPgType(have) === normalPgType(newPg) || isDeltaWidening(c.source.type, f.type));
    const widening = sameDeltaType(c.source.type, f.type) || isDeltaWidening(c.source.type, f.type);
    retyped.push({ column: c, to: f.type, toNullable: f.nullable, compatible, widening, pgType: newPg });
    if (isKey) keyChanges.push({ column: c, change: 'retyped', to: f });
  }
  return { removed, renamed, retyped, key: keyChanges };
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

/**
 * What a sync does about drift (it throws instead when the policy refuses): the changes of
 * the target table to run first in its transaction, in order (drops, renames, retypes,
 * then added columns), the planned columns it leaves out, and what to tell the user.
 */
export interface SyncDriftPlan {
  alterations: TableAlteration[];
  /** Planned columns not written: new columns under added "ignore". */
  ignore: PlannedColumn[];
  warnings: string[];
}

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
      `schemaDrift '${describeSchemaDrift(input.mapping.schemaDrift)}' does not apply to key columns: the target's rows are matched by the key, and changes read under another key would update or delete the wrong rows.`,
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
 * Refuses what would keep the end version's columns from being planned, before they are:
 * a changed key (refuseKeyDrift), and a mapping that still names a column renamed under
 * column mapping by its old name (columns.include / exclude / rename name Delta columns by
 * their current name; following the old name silently could write the column to another
 * Postgres column than the user reads the mapping to say).
 */
export function refuseBeforePlanning(input: KeyDriftInput): void {
  refuseKeyDrift(input);
  if (!input.synced) return;
  const names = new Set(input.schema.map((f) => f.name));
  const byPhysical = new Map(input.schema.map((f) => [f.physicalName, f]));
  const c = input.mapping.columns;
  const entries: Array<[string, string]> = [
    ...(c.include ?? []).map((n, i): [string, string] => [`columns.include[${i}]`, n]),
    ...(c.exclude ?? []).map((n, i): [string, string] => [`columns.exclude[${i}]`, n]),
    ...Object.keys(c.rename ?? {}).map((n): [string, string] => [`columns.rename.${n}`, n]),
  ];
  for (const [setting, name] of entries) {
    if (names.has(name)) continue;
    const old = input.synced.find((s) => s.source.name === name);
    const now = old ? byPhysical.get(old.source.physicalName) : undefined;
    if (!now) continue;
    throw new SyncError('schema-drift', `Column "${name}" of ${input.source} was renamed to "${now.name}" ${between(input)} (column mapping), but the mapping's ${setting} still names it "${name}".`, {
      table: input.source,
      version: input.toVersion,
      column: name,
      setting,
      hint: `Write "${now.name}" instead of "${name}" in ${setting.replace(/\[\d+\]$/, '')} (the mapping names Delta columns by their current name), then sync again.`,
      retry: 'manual',
    });
  }
}

/** The Postgres columns after the alterations (name -> type), to check added columns against. */
function afterAlterations(columns: ReadonlyMap<string, string>, alterations: readonly TableAlteration[]): Map<string, string> {
  const out = new Map(columns);
  for (const a of alterations) {
    if (a.alter === 'drop-column') out.delete(a.column);
    else if (a.alter === 'rename-column') {
      const t = out.get(a.column);
      out.delete(a.column);
      if (t !== undefined) out.set(a.to, t);
    } else if (a.alter === 'retype-column' || a.alter === 'add-column') out.set(a.column, a.pgType);
  }
  return out;
}

/**
 * The drift check of a sync, the one rule set: first the key (refuseKeyDrift, under every
 * policy), then the Delta schema since the checkpoint, each kind of change under its rule
 * of `schemaDrift` (schemaDriftRules: the strings refuse everything but added columns):
 * a column renamed under column mapping is renamed in Postgres (rename), a widened column
 * is altered where the Postgres type is too narrow (alter; nothing where it is wide
 * enough, under any rule), a removed column is kept unwritten (keep: NOT NULL dropped) or
 * dropped (drop); a narrowed or otherwise retyped column the Postgres column cannot hold
 * fails under every rule, since Postgres would silently get wrong values. Then the columns
 * the run writes against the target's: a mapped column the target lacks follows `added`
 * (fail, add it, or leave it out; it is never silently dropped). Every change it allows
 * is returned as an alteration for the run's first transaction; refused ones are all named
 * in one error (table, version, first column, setting).
 */
export function checkSyncDrift(input: SyncDriftInput): SyncDriftPlan {
  const policy = input.mapping.schemaDrift;
  const rules = schemaDriftRules(policy);
  const desc = describeSchemaDrift(policy);
  refuseKeyDrift(input);
  const alterations: TableAlteration[] = [];
  const warnings: string[] = [];
  if (input.synced) {
    const { removed, renamed, retyped } = classifySchemaChanges(input.synced, input.schema, input.mapping, input.key, input.targetColumns);
    const refused: Array<{ part: string; column: string; fix: string }> = [];
    const impossible = retyped.filter((r) => !r.compatible && !r.widening);
    for (const c of removed) {
      if (rules.dropped === 'fail') refused.push({ part: `removed ${describeCol(c)}`, column: c.source.name, fix: 'schemaDrift.dropped "keep" or "drop"' });
      else if (rules.dropped === 'drop') alterations.push({ alter: 'drop-column', column: c.name });
      else if (isNotNull(c)) alterations.push({ alter: 'drop-not-null', column: c.name });
    }
    // Postgres names after the renames (a widened column that was renamed too is altered under its new name).
    const renamedTo = new Map<TargetColumn, string>();
    for (const r of renamed) {
      if (r.targetName === r.column.name) continue;
      if (rules.renamed === 'fail') refused.push({ part: `renamed ${describeCol(r.column)} -> "${r.to.name}"`, column: r.column.source.name, fix: 'schemaDrift.renamed "rename"' });
      else {
        alterations.push({ alter: 'rename-column', column: r.column.name, to: r.targetName });
        renamedTo.set(r.column, r.targetName);
      }
    }
    const typeOf = (r: RetypedColumn): string => `${formatDeltaType(r.column.source.type)}${isNotNull(r.column) ? ' not null' : ''} -> ${formatDeltaType(r.to)}${r.toNullable ? '' : ' not null'}`;
    for (const r of retyped) {
      if (r.compatible || !r.widening) continue;
      // The column's Postgres name once the renames above ran.
      const name = renamedTo.get(r.column) ?? r.column.name;
      const have = input.targetColumns.get(r.column.name) ?? r.column.pgType;
      if (rules.widened === 'fail') {
        const what = sameDeltaType(r.column.source.type, r.to) ? 'made nullable' : 'widened';
        refused.push({ part: `${what} ${describeCol(r.column)} ${typeOf(r)} (Postgres ${have})`, column: r.column.source.name, fix: 'schemaDrift.widened "alter"' });
        continue;
      }
      if (!pgTypeHolds(have, r.pgType)) alterations.push({ alter: 'retype-column', column: name, pgType: r.pgType, from: have });
      if (r.toNullable && isNotNull(r.column)) alterations.push({ alter: 'drop-not-null', column: name });
    }
    if (impossible.length || refused.length) {
      const parts = [...refused.map((x) => x.part), ...(impossible.length ? [`changed ${impossible.map((r) => `${describeCol(r.column)} ${typeOf(r)}`).join(', ')}`] : [])];
      const first = impossible[0]?.column.source.name ?? refused[0]?.column;
      const fixes = [...new Set(refused.map((x) => x.fix))];
      throw new SyncError(
        'schema-drift',
        `The schema of ${input.source} changed ${between(input)}: ${parts.join('; ')}. ` +
          (impossible.length
            ? `A narrowed or changed type that the Postgres column cannot hold is refused under every schemaDrift policy${refused.length ? `, and schemaDrift '${desc}' does not handle the rest` : ''}.`
            : `schemaDrift '${desc}' does not handle removed, renamed or widened columns like these.`),
        {
          table: input.source,
          version: input.toVersion,
          column: first,
          setting: 'schemaDrift',
          hint: impossible.length
            ? 'A narrowed or changed type needs a decision: migrate the Postgres table (or add a columns.types override that fits), or run the initial load again (delta-neon-sync sync --mapping <file> --mode initial).'
            : `Set ${fixes.join(' and ')} in the mapping to follow the change in the same transaction as the rows, or run the initial load again (delta-neon-sync sync --mapping <file> --mode initial).`,
          retry: 'manual',
        },
      );
    }
    if (alterations.length) warnings.push(`Schema of ${input.source} changed ${between(input)}: ${alterations.map(describeAlteration).join('; ')} in ${input.targetLabel} (schemaDrift: ${desc}).`);
  }
  const columns = afterAlterations(input.targetColumns, alterations);
  const missing = input.planned.filter((col) => !columns.has(col.name));
  if (missing.length === 0) return { alterations, ignore: [], warnings };
  const names = missing.map((m) => `"${m.name}" (${m.pgType})`).join(', ');
  switch (rules.added) {
    case 'fail':
      throw new SyncError('schema-drift', `Schema drift in ${input.source} between versions ${input.fromVersion} and ${input.toVersion}: column(s) ${names} are not in ${input.targetLabel}.`, {
        table: input.source,
        version: input.toVersion,
        column: missing[0]?.name,
        setting: 'schemaDrift',
        hint: typeof policy === 'string'
          ? 'Set "schemaDrift": "add-columns" to add them, "ignore-new" to skip them, or exclude them in columns.exclude.'
          : 'Set schemaDrift.added to "add" to add them or "ignore" to skip them, or exclude them in columns.exclude.',
      });
    case 'ignore':
      return { alterations, ignore: missing, warnings: [...warnings, `Ignoring new source column(s) ${names} (schemaDrift: ${desc}).`] };
    case 'add':
      return {
        alterations: [...alterations, ...missing.map((m): TableAlteration => ({ alter: 'add-column', column: m.name, pgType: m.pgType }))],
        ignore: [],
        warnings: [...warnings, `Added column(s) ${names} to ${input.targetLabel} (schemaDrift: ${desc}).`],
      };
  }
}

function describeAlteration(a: TableAlteration): string {
  switch (a.alter) {
    case 'add-column':
      return `column "${a.column}" added (${a.pgType})`;
    case 'rename-column':
      return `column "${a.column}" renamed to "${a.to}"`;
    case 'retype-column':
      return `column "${a.column}" widened from ${a.from} to ${a.pgType}`;
    case 'drop-not-null':
      return `column "${a.column}" made nullable`;
    case 'drop-column':
      return `column "${a.column}" dropped`;
  }
}

/**
 * The mapping as it reads at the checkpoint's schema: its columns.include / exclude /
 * rename entries name Delta columns by their current (end version) name, so an entry
 * naming a column renamed since (column mapping: same physical name) is written back to the
 * name it had then. The synced columns are then resolved as the earlier runs resolved them.
 */
export function mappingAtSchema(mapping: Mapping, then: readonly DeltaField[], now: readonly DeltaField[]): Mapping {
  const thenNames = new Set(then.map((f) => f.name));
  const thenByPhysical = new Map(then.map((f) => [f.physicalName, f.name]));
  const nowByName = new Map(now.map((f) => [f.name, f]));
  const back = (name: string): string => {
    if (thenNames.has(name)) return name;
    const f = nowByName.get(name);
    return (f && thenByPhysical.get(f.physicalName)) ?? name;
  };
  const c = mapping.columns;
  if (!c.include && !c.exclude && !c.rename) return mapping;
  return {
    ...mapping,
    columns: {
      ...c,
      ...(c.include ? { include: c.include.map(back) } : {}),
      ...(c.exclude ? { exclude: c.exclude.map(back) } : {}),
      ...(c.rename ? { rename: Object.fromEntries(Object.entries(c.rename).map(([k, v]) => [back(k), v])) } : {}),
    },
  };
}
