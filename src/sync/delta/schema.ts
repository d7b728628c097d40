import { SyncError } from '../errors';
import type { ColumnMappingMode, DeltaField, DeltaType, PrimitiveTypeName } from './types';

/**
 * Parsing of `metaData.schemaString` (the protocol's "Schema Serialization Format") into
 * the reader's DeltaField tree, with the column-mapping physical name and field id of
 * every field resolved once, so the parquet reader never looks at metadata again.
 */

const PHYSICAL_NAME_KEY = 'delta.columnMapping.physicalName';
const FIELD_ID_KEY = 'delta.columnMapping.id';

const PRIMITIVES: ReadonlySet<string> = new Set<PrimitiveTypeName>([
  'string',
  'long',
  'integer',
  'short',
  'byte',
  'float',
  'double',
  'boolean',
  'binary',
  'date',
  'timestamp',
  'timestamp_ntz',
  'variant',
]);

/** The table's column mapping mode from `metaData.configuration` (absent means 'none'). */
export function columnMappingModeOf(configuration: Record<string, string>): ColumnMappingMode {
  const raw = configuration['delta.columnMapping.mode'];
  if (raw === undefined || raw === null) return 'none';
  const mode = String(raw).trim().toLowerCase();
  if (mode === 'none' || mode === 'name' || mode === 'id') return mode;
  throw new SyncError('delta-protocol', `Unsupported column mapping mode '${raw}'`, {
    setting: 'delta.columnMapping.mode',
    hint: "Only the column mapping modes 'none', 'name' and 'id' are defined by the Delta protocol.",
  });
}

/**
 * Parses metaData.schemaString into logical fields with physicalName/fieldId filled
 * (recursively for nested structs, including structs inside arrays and maps).
 * Throws SyncError('delta-log') for malformed JSON or an unknown type.
 */
export function parseSchemaString(schemaString: string, mode: ColumnMappingMode, table?: string): DeltaField[] {
  let json: unknown;
  try {
    json = JSON.parse(schemaString);
  } catch (e) {
    throw new SyncError('delta-log', `The table schema (metaData.schemaString) is not valid JSON: ${(e as Error).message}`, {
      table,
      cause: e,
      hint: 'The Delta log is corrupt or was not written by a Delta writer.',
    });
  }
  if (!isObject(json) || json.type !== 'struct' || !Array.isArray(json.fields)) {
    throw logError(table, 'The table schema (metaData.schemaString) is not a struct with fields');
  }
  return parseFields(json.fields, mode, table, '');
}

function parseFields(fields: unknown[], mode: ColumnMappingMode, table: string | undefined, prefix: string): DeltaField[] {
  return fields.map((f) => parseField(f, mode, table, prefix));
}

function parseField(raw: unknown, mode: ColumnMappingMode, table: string | undefined, prefix: string): DeltaField {
  if (!isObject(raw) || typeof raw.name !== 'string') {
    throw logError(table, `A field of the table schema${prefix ? ` inside '${prefix}'` : ''} has no name`);
  }
  const name = raw.name;
  const path = prefix ? `${prefix}.${name}` : name;
  const metadata = isObject(raw.metadata) ? raw.metadata : {};
  const type = parseType(raw.type, mode, table, path);
  const field: DeltaField = {
    name,
    type,
    nullable: raw.nullable !== false,
    metadata,
    physicalName: name,
  };
  if (mode !== 'none') {
    const physical = metadata[PHYSICAL_NAME_KEY];
    if (typeof physical === 'string' && physical.length > 0) field.physicalName = physical;
    const id = metadata[FIELD_ID_KEY];
    if (typeof id === 'number' && Number.isInteger(id)) field.fieldId = id;
    else if (typeof id === 'string' && /^\d+$/.test(id)) field.fieldId = Number(id);
  }
  return field;
}

function parseType(raw: unknown, mode: ColumnMappingMode, table: string | undefined, path: string): DeltaType {
  if (typeof raw === 'string') {
    const name = raw.trim();
    if (PRIMITIVES.has(name)) return { kind: 'primitive', name: name as PrimitiveTypeName };
    // Spark writes a bare "decimal" for the default decimal(10,0).
    if (name === 'decimal') return { kind: 'decimal', precision: 10, scale: 0 };
    const dec = /^decimal\(\s*(\d+)\s*,\s*(-?\d+)\s*\)$/.exec(name);
    if (dec) {
      const precision = Number(dec[1]);
      const scale = Number(dec[2]);
      if (precision < 1 || precision > 38 || scale < 0 || scale > precision) {
        throw logError(table, `Column '${path}' has an invalid decimal type '${name}'`, path);
      }
      return { kind: 'decimal', precision, scale };
    }
    throw logError(table, `Column '${path}' has an unknown type '${name}'`, path);
  }
  if (!isObject(raw)) throw logError(table, `Column '${path}' has no type`, path);
  switch (raw.type) {
    case 'struct': {
      if (!Array.isArray(raw.fields)) throw logError(table, `Struct column '${path}' has no fields`, path);
      return { kind: 'struct', fields: parseFields(raw.fields, mode, table, path) };
    }
    case 'array':
      return {
        kind: 'array',
        elementType: parseType(raw.elementType, mode, table, `${path}.element`),
        containsNull: raw.containsNull !== false,
      };
    case 'map':
      return {
        kind: 'map',
        keyType: parseType(raw.keyType, mode, table, `${path}.key`),
        valueType: parseType(raw.valueType, mode, table, `${path}.value`),
        valueContainsNull: raw.valueContainsNull !== false,
      };
    default:
      throw logError(table, `Column '${path}' has an unknown type ${JSON.stringify(raw.type)}`, path);
  }
}

/** Options of formatDeltaType. */
export interface FormatDeltaTypeOptions {
  /**
   * 'fields' (default) lists a struct's fields; 'count' writes only how many there are
   * (`struct<3 fields>`), for one-line labels whose fields are shown elsewhere (tree rows).
   */
  structs?: 'fields' | 'count';
}

/**
 * The one spelling of a DeltaType for people: messages, the CLI and the views. Primitives
 * and decimals are written exactly as the protocol's schema serialization writes them
 * (`integer`, `long`, `short`, `byte`, `timestamp_ntz`, `decimal(10,2)`); nested types, which
 * the schema JSON writes as objects, as `array<long>`, `map<string,integer>` and
 * `struct<a: integer, b: string>`.
 */
export function formatDeltaType(t: DeltaType, opts: FormatDeltaTypeOptions = {}): string {
  switch (t.kind) {
    case 'primitive':
      return t.name;
    case 'decimal':
      return `decimal(${t.precision},${t.scale})`;
    case 'array':
      return `array<${formatDeltaType(t.elementType, opts)}>`;
    case 'map':
      return `map<${formatDeltaType(t.keyType, opts)},${formatDeltaType(t.valueType, opts)}>`;
    case 'struct':
      if (opts.structs === 'count') return `struct<${t.fields.length} field${t.fields.length === 1 ? '' : 's'}>`;
      return `struct<${t.fields.map((f) => `${f.name}: ${formatDeltaType(f.type, opts)}`).join(', ')}>`;
  }
}

function logError(table: string | undefined, message: string, column?: string): SyncError {
  return new SyncError('delta-log', message, {
    table,
    column,
    hint: 'The Delta log is corrupt or was written by a newer writer than this reader understands.',
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
