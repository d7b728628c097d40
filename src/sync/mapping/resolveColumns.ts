import { SyncError } from '../errors';
import type { DeltaField, DeltaType } from '../delta/types';
import type { Mapping } from './mappingSchema';
import type { TargetColumn } from '../ports/targetTypes';


/**
 * The default Delta -> Postgres type map (the one definition; `columns.types` overrides it).
 * Nested types become jsonb (as Databricks synced tables do); timestamp is UTC so it is
 * timestamptz, timestamp_ntz is wall clock so it is timestamp; byte widens to smallint.
 */
export function defaultPgType(type: DeltaType): string {
  switch (type.kind) {
    case 'decimal':
      return `numeric(${type.precision},${type.scale})`;
    case 'struct':
    case 'array':
    case 'map':
      return 'jsonb';
    case 'primitive':
      switch (type.name) {
        case 'string':
          return 'text';
        case 'long':
          return 'bigint';
        case 'integer':
          return 'integer';
        case 'short':
        case 'byte':
          return 'smallint';
        case 'double':
          return 'double precision';
        case 'float':
          return 'real';
        case 'boolean':
          return 'boolean';
        case 'date':
          return 'date';
        case 'timestamp':
          return 'timestamptz';
        case 'timestamp_ntz':
          return 'timestamp';
        case 'binary':
          return 'bytea';
        case 'variant':
          // Decoded to exact JSON text (delta/variant.ts); jsonb keeps numbers as numeric.
          return 'jsonb';
      }
  }
  const bad: never = type;
  throw new SyncError('schema-drift', `Unsupported Delta type ${JSON.stringify(bad)}.`);
}


/** Structural equality of Delta types (nullability of nested elements included). */
export function sameDeltaType(a: DeltaType, b: DeltaType): boolean {
  switch (a.kind) {
    case 'primitive':
      return b.kind === 'primitive' && a.name === b.name;
    case 'decimal':
      return b.kind === 'decimal' && a.precision === b.precision && a.scale === b.scale;
    case 'array':
      return b.kind === 'array' && a.containsNull === b.containsNull && sameDeltaType(a.elementType, b.elementType);
    case 'map':
      return (
        b.kind === 'map' &&
        a.valueContainsNull === b.valueContainsNull &&
        sameDeltaType(a.keyType, b.keyType) &&
        sameDeltaType(a.valueType, b.valueType)
      );
    case 'struct':
      return (
        b.kind === 'struct' &&
        a.fields.length === b.fields.length &&
        a.fields.every((f, i) => {
          const g = b.fields[i]!;
          return f.name === g.name && f.nullable === g.nullable && sameDeltaType(f.type, g.type);
        })
      );
  }
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function unknownColumn(field: string, name: string, schema: readonly DeltaField[]): SyncError {
  const ci = schema.find((f) => f.name.toLowerCase() === name.toLowerCase());
  const names = schema.map((f) => f.name);
  return new SyncError('mapping', `${field}: column "${name}" is not in the Delta table`, {
    column: name,
    setting: field,
    hint: ci
      ? `Did you mean "${ci.name}"? Column names are case-sensitive here.`
      : `The table's columns are: ${names.slice(0, 30).join(', ')}${names.length > 30 ? ', ...' : ''}.`,
  });
}

/** The Delta column a target column name comes from, given the mapping's renames. */
export function sourceNameOf(mapping: Mapping, target: string): string {
  for (const [src, tgt] of Object.entries(mapping.columns.rename ?? {})) if (tgt === target) return src;
  return target;
}

/** The TargetColumn a Delta field becomes under the mapping's rename and types (no selection). */
export function targetColumnFor(mapping: Mapping, f: DeltaField): TargetColumn {
  const name = mapping.columns.rename?.[f.name] ?? f.name;
  return { name, source: f, pgType: mapping.columns.types?.[name] ?? defaultPgType(f.type) };
}

/** Whether the mapping's include/exclude selects a Delta column. */
export function isSelected(mapping: Mapping, name: string): boolean {
  const { include, exclude } = mapping.columns;
  if (include && !include.includes(name)) return false;
  return !(exclude ?? []).includes(name);
}

/**
 * The target columns of a mapping for a Delta schema, in Delta schema order, with
 * include/exclude/rename/types applied. Throws SyncError('mapping') naming the column when
 * the mapping names a column the table lacks (include, exclude, rename, types, key), when
 * two columns end in the same target name, when a target name is too long or holds NUL
 * (an unrenamed Delta name can), or when the soft-delete column clashes with a data column.
 */
export function resolveColumns(mapping: Mapping, deltaSchema: readonly DeltaField[]): TargetColumn[] {
  const byName = new Set(deltaSchema.map((f) => f.name));
  const c = mapping.columns;
  (c.include ?? []).forEach((n, i) => {
    if (!byName.has(n)) throw unknownColumn(`columns.include[${i}]`, n, deltaSchema);
  });
  (c.exclude ?? []).forEach((n, i) => {
    if (!byName.has(n)) throw unknownColumn(`columns.exclude[${i}]`, n, deltaSchema);
  });
  for (const n of Object.keys(c.rename ?? {})) {
    if (!byName.has(n)) throw unknownColumn(`columns.rename.${n}`, n, deltaSchema);
  }

  const out: TargetColumn[] = [];
  const seen = new Map<string, string>();
  for (const f of deltaSchema) {
    if (!isSelected(mapping, f.name)) continue;
    const col = targetColumnFor(mapping, f);
    if (col.name.includes('\u0000') || utf8Bytes(col.name) > 63) {
      throw new SyncError(
        'mapping',
        `Delta column "${f.name}" cannot be a Postgres column name (${col.name.includes('\u0000') ? 'it contains NUL' : 'longer than 63 bytes'})`,
        { column: f.name, setting: 'columns.rename', hint: `Add "${f.name}": "<new_name>" to columns.rename, or exclude it.` },
      );
    }
    const prev = seen.get(col.name);
    if (prev !== undefined) {
      throw new SyncError('mapping', `Delta columns "${prev}" and "${f.name}" both map to Postgres column "${col.name}"`, {
        column: f.name,
        setting: 'columns.rename',
        hint: 'Rename or exclude one of them.',
      });
    }
    seen.set(col.name, f.name);
    out.push(col);
  }

  for (const t of Object.keys(c.types ?? {})) {
    if (!seen.has(t)) {
      throw new SyncError('mapping', `columns.types.${t}: "${t}" is not a synced Postgres column`, {
        column: t,
        setting: `columns.types.${t}`,
        hint: `columns.types is keyed by Postgres names (after rename). Synced columns: ${[...seen.keys()].join(', ')}.`,
      });
    }
  }
  (mapping.key ?? []).forEach((k, i) => {
    if (!seen.has(k)) {
      throw new SyncError('mapping', `key[${i}]: "${k}" is not a synced Postgres column`, {
        column: k,
        setting: `key[${i}]`,
        hint: `key is given in Postgres names (after rename). Synced columns: ${[...seen.keys()].join(', ')}.`,
      });
    }
  });
  if (mapping.deletes.mode === 'soft-delete' && seen.has(mapping.deletes.column)) {
    throw new SyncError(
      'mapping',
      `deletes.column: "${mapping.deletes.column}" is also a data column (from Delta column "${seen.get(mapping.deletes.column)}")`,
      { column: mapping.deletes.column, setting: 'deletes.column', hint: 'Pick another soft-delete column name, or exclude/rename the data column.' },
    );
  }
  for (const field of ['version', 'commitTimestamp', 'syncedAt'] as const) {
    const col = mapping.lineage?.[field];
    if (col !== undefined && seen.has(col)) {
      throw new SyncError('mapping', `lineage.${field}: "${col}" is also a data column (from Delta column "${seen.get(col)}")`, {
        column: col,
        setting: `lineage.${field}`,
        hint: 'Pick another name for the lineage column, or exclude/rename the Delta column in columns.',
      });
    }
  }
  if (out.length === 0) {
    throw new SyncError('mapping', 'The mapping selects no columns of the Delta table', {
      setting: 'columns',
      hint: 'Check columns.include / columns.exclude.',
    });
  }
  return out;
}

/**
 * The Delta (source) names of the key columns, in key order: what NetChangeBuffer needs.
 * `key` holds Postgres names; pass the primary key read from the target when the mapping
 * has none.
 */
export function keySourceColumns(columns: readonly TargetColumn[], key: readonly string[]): string[] {
  return key.map((k) => {
    const c = columns.find((x) => x.name === k);
    if (!c) {
      throw new SyncError('mapping', `Key column "${k}" is not a synced column`, {
        column: k,
        hint: 'Key columns must be synced: check columns.include / columns.exclude and key.',
      });
    }
    return c.source.name;
  });
}
