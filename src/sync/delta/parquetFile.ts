import { SyncError } from '../errors';
import type { ColumnMappingMode } from './schema';
import { formatDeltaType } from './schema';
import type { DeltaField, DeltaType, DeltaValue, Row } from './types';
import { decimalToString, shortestFloat32 } from './values';
import type {
  AsyncBuffer,
  FileMetaData,
  ParquetParsers,
  SchemaElement,
  SchemaTree,
} from 'hyparquet' with { 'resolution-mode': 'import' };
import type * as HyparquetModule from 'hyparquet' with { 'resolution-mode': 'import' };
import type { Compressors } from 'hyparquet-compressors' with { 'resolution-mode': 'import' };

/**
 * Reads Delta data files (parquet) into rows of DeltaValues keyed by logical column name.
 *
 * hyparquet decodes pages and assembles nesting; this module owns the typing on top of it.
 * hyparquet's own conversions are lossy for Delta (DECIMAL -> JS number, maps -> objects
 * with stringified keys), so the metadata handed to it has DECIMAL and MAP annotations
 * removed: decimals arrive as raw INT32/INT64/bytes and are scaled here with bigint
 * arithmetic, and maps arrive as lists of {key, value} structs. Timestamps arrive as
 * bigint microseconds and dates as day numbers through custom parsers.
 */

export interface ParquetReadOptions {
  /** Logical data fields to produce (NOT partition columns: the caller adds those). Looked up in the file by physicalName (mode 'name'), by field_id falling back to physicalName (mode 'id'), or by name (mode 'none'); nested struct fields recursively. A field absent from the file (added later by schema evolution) reads as null. */
  fields: DeltaField[];
  columnMappingMode: ColumnMappingMode;
  /** Extra columns read by their exact parquet name, e.g. `_change_type` (string) in cdc files. */
  extraColumns?: Array<{ name: string; type: DeltaType }>;
  /** Rows per yielded batch (default 10_000). Memory is bounded by one row group plus one batch. */
  batchSize?: number;
  /** Row filter by 0-based physical row index in the file (for deletion vectors): return false to drop the row. */
  keepRow?: (rowIndex: number) => boolean;
  signal?: AbortSignal;
  /** For error messages: table path and version that referenced the file. */
  table?: string;
  version?: number;
}

type Hyparquet = typeof HyparquetModule;

interface Modules {
  hp: Hyparquet;
  compressors: Compressors;
}

let modulesPromise: Promise<Modules> | undefined;

/** hyparquet is ESM-only; the engine is CommonJS, so it is loaded once through import(). */
function loadModules(): Promise<Modules> {
  modulesPromise ??= (async () => {
    const hp = await import('hyparquet');
    const { compressors } = await import('hyparquet-compressors');
    return { hp, compressors };
  })();
  return modulesPromise;
}

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();
const MICROS_PER_DAY = 86_400_000_000n;

/** Parsers keeping full precision: timestamps as bigint microseconds, dates as day numbers. */
const PARSERS: ParquetParsers = {
  timestampFromMilliseconds: (millis: bigint): bigint => BigInt(millis) * 1000n,
  timestampFromMicroseconds: (micros: bigint): bigint => BigInt(micros),
  timestampFromNanoseconds: (nanos: bigint): bigint => {
    const n = BigInt(nanos);
    // Floor, not truncate: -1ns is in the microsecond before the epoch.
    return n >= 0n ? n / 1000n : -((-n + 999n) / 1000n);
  },
  dateFromDays: (days: number): number => days,
  stringFromBytes: (bytes: Uint8Array): string | undefined => (bytes ? utf8Decoder.decode(bytes) : undefined),
  jsonFromBytes: (bytes: Uint8Array): string | undefined => (bytes ? utf8Decoder.decode(bytes) : undefined),
  geometryFromBytes: (bytes: Uint8Array): Uint8Array => bytes,
  geographyFromBytes: (bytes: Uint8Array): Uint8Array => bytes,
  uuidFromBytes: (bytes: Uint8Array): Uint8Array => bytes,
};

type Converter = (raw: unknown) => DeltaValue;

interface ReadContext {
  filePath: string;
  mode: ColumnMappingMode;
  table?: string;
  version?: number;
}

/** Number of rows from the footer only. */
export async function parquetRowCount(filePath: string): Promise<number> {
  const { hp } = await loadModules();
  const file = await openFile(hp, filePath, {});
  const metadata = await readMetadata(hp, file, filePath, {});
  return Number(metadata.num_rows);
}

/**
 * Yields the rows of one parquet data file in batches, row group by row group, with
 * values typed by the requested Delta fields (see ParquetReadOptions).
 */
export async function* readParquetRows(filePath: string, opts: ParquetReadOptions): AsyncGenerator<Row[]> {
  const { hp, compressors } = await loadModules();
  const ctx: ReadContext = { filePath, mode: opts.columnMappingMode, table: opts.table, version: opts.version };
  const file = await openFile(hp, filePath, opts);
  const metadata = await readMetadata(hp, file, filePath, opts);
  const root = hp.parquetSchema(metadata);

  // Resolve every requested output column to its top-level parquet column (or none).
  const outputs: Array<{ name: string; source?: string; convert: Converter }> = [];
  for (const field of opts.fields) {
    const node = findChild(root, field, ctx.mode);
    outputs.push(
      node
        ? { name: field.name, source: node.element.name, convert: compile(field.type, node, field.name, ctx) }
        : { name: field.name, convert: () => null },
    );
  }
  for (const extra of opts.extraColumns ?? []) {
    const node = root.children.find((c) => c.element.name === extra.name);
    outputs.push(
      node
        ? { name: extra.name, source: node.element.name, convert: compile(extra.type, node, extra.name, ctx) }
        : { name: extra.name, convert: () => null },
    );
  }
  const columns = [...new Set(outputs.flatMap((o) => (o.source === undefined ? [] : [o.source])))];
  const readMeta: FileMetaData = { ...metadata, schema: metadata.schema.map(stripLossyAnnotations) };

  const batchSize = Math.max(1, opts.batchSize ?? 10_000);
  const keepRow = opts.keepRow;
  let batch: Row[] = [];
  let groupStart = 0;
  for (const group of metadata.row_groups) {
    const groupRows = Number(group.num_rows);
    const start = groupStart;
    groupStart += groupRows;
    if (groupRows === 0) continue;
    checkAborted(opts.signal, ctx);
    let raw: Array<Record<string, unknown>> | undefined;
    if (columns.length > 0) {
      try {
        await hp.parquetRead({
          file,
          metadata: readMeta,
          columns,
          rowStart: start,
          rowEnd: start + groupRows,
          rowFormat: 'object',
          utf8: false,
          parsers: PARSERS,
          compressors,
          onComplete: (rows) => {
            raw = rows;
          },
        });
      } catch (e) {
        throw fileError(ctx, `cannot decode row group starting at row ${start}: ${(e as Error).message}`, e);
      }
      if (!raw || raw.length !== groupRows) {
        throw fileError(ctx, `row group starting at row ${start} has ${raw?.length ?? 0} rows, expected ${groupRows}`);
      }
    }
    for (let i = 0; i < groupRows; i++) {
      if (keepRow && !keepRow(start + i)) continue;
      const row: Row = {};
      const source = raw ? raw[i] : undefined;
      for (const o of outputs) row[o.name] = o.source === undefined || !source ? null : o.convert(source[o.source]);
      batch.push(row);
      if (batch.length >= batchSize) {
        checkAborted(opts.signal, ctx);
        yield batch;
        batch = [];
      }
    }
    // Let go of the decoded row group before decoding the next one.
    raw = undefined;
  }
  if (batch.length > 0) {
    checkAborted(opts.signal, ctx);
    yield batch;
  }
}

// ---------------------------------------------------------------- file access

async function openFile(hp: Hyparquet, filePath: string, opts: { table?: string; version?: number }): Promise<AsyncBuffer> {
  try {
    return await hp.asyncBufferFromFile(filePath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const missing = code === 'ENOENT';
    throw new SyncError(
      'delta-file',
      missing
        ? `Data file ${filePath} is missing${describeOrigin(opts)}`
        : `Cannot open data file ${filePath}${describeOrigin(opts)}: ${(e as Error).message}`,
      {
        table: opts.table,
        version: opts.version,
        cause: e,
        retry: missing ? 'never' : 'manual',
        hint: missing
          ? 'The file was probably removed by VACUUM. Read a newer version, or run a full reload.'
          : 'Check that the file is readable by this user.',
      },
    );
  }
}

async function readMetadata(
  hp: Hyparquet,
  file: AsyncBuffer,
  filePath: string,
  opts: { table?: string; version?: number },
): Promise<FileMetaData> {
  try {
    return await hp.parquetMetadataAsync(file, { parsers: PARSERS, geoparquet: false });
  } catch (e) {
    throw new SyncError('delta-file', `Data file ${filePath}${describeOrigin(opts)} is not a valid parquet file: ${(e as Error).message}`, {
      table: opts.table,
      version: opts.version,
      cause: e,
      hint: 'The file is corrupt or truncated; restore it or rewrite the table.',
    });
  }
}

function describeOrigin(opts: { table?: string; version?: number }): string {
  if (opts.table === undefined) return '';
  return ` (table ${opts.table}${opts.version === undefined ? '' : `, version ${opts.version}`})`;
}

function fileError(ctx: ReadContext, reason: string, cause?: unknown, column?: string): SyncError {
  return new SyncError('delta-file', `Data file ${ctx.filePath}${describeOrigin(ctx)}: ${reason}`, {
    table: ctx.table,
    version: ctx.version,
    column,
    cause,
    hint: 'The file is corrupt or does not match the table schema.',
  });
}

function checkAborted(signal: AbortSignal | undefined, ctx: ReadContext): void {
  if (signal?.aborted) {
    throw new SyncError('cancelled', `Reading ${ctx.filePath} was cancelled`, { table: ctx.table, version: ctx.version });
  }
}

// ---------------------------------------------------------------- schema handling

/**
 * The schema element as handed to hyparquet: DECIMAL annotations removed (so values stay
 * exact) and MAP annotations removed (so maps assemble as lists of key/value structs).
 */
function stripLossyAnnotations(e: SchemaElement): SchemaElement {
  const ctype = e.converted_type;
  const ltype = e.logical_type?.type;
  if (ctype === 'DECIMAL' || ltype === 'DECIMAL' || ctype === 'MAP' || ctype === 'MAP_KEY_VALUE' || ltype === 'MAP') {
    return { ...e, converted_type: undefined, logical_type: undefined };
  }
  return e;
}

function findChild(node: SchemaTree, field: DeltaField, mode: ColumnMappingMode): SchemaTree | undefined {
  if (mode === 'id' && field.fieldId !== undefined) {
    const byId = node.children.find((c) => c.element.field_id === field.fieldId);
    if (byId) return byId;
  }
  const name = mode === 'none' ? field.name : field.physicalName;
  return node.children.find((c) => c.element.name === name);
}

function isListAnnotated(e: SchemaElement): boolean {
  return e.converted_type === 'LIST' || e.logical_type?.type === 'LIST';
}

function isMapAnnotated(e: SchemaElement): boolean {
  return e.converted_type === 'MAP' || e.converted_type === 'MAP_KEY_VALUE' || e.logical_type?.type === 'MAP';
}

function decimalScaleOf(e: SchemaElement): number | undefined {
  if (e.logical_type?.type === 'DECIMAL') return e.logical_type.scale;
  if (e.converted_type === 'DECIMAL') return e.scale ?? 0;
  return undefined;
}

// ---------------------------------------------------------------- converters

/** Builds the converter from hyparquet's value for `node` to the Delta value of `type`. */
function compile(type: DeltaType, node: SchemaTree, path: string, ctx: ReadContext): Converter {
  const mismatch = (): SyncError =>
    fileError(
      ctx,
      `column '${path}' is stored as ${describeNode(node)}, which cannot be read as ${formatDeltaType(type)}`,
      undefined,
      path,
    );
  switch (type.kind) {
    case 'struct': {
      if (node.children.length === 0 || isListAnnotated(node.element) || isMapAnnotated(node.element)) throw mismatch();
      const parts = type.fields.map((f) => {
        const child = findChild(node, f, ctx.mode);
        return { name: f.name, source: child?.element.name, convert: child ? compile(f.type, child, `${path}.${f.name}`, ctx) : undefined };
      });
      return (raw) => {
        if (raw === null || raw === undefined || typeof raw !== 'object') return null;
        const obj = raw as Record<string, unknown>;
        const out: Record<string, DeltaValue> = {};
        for (const p of parts) out[p.name] = p.convert && p.source !== undefined ? p.convert(obj[p.source]) : null;
        return out;
      };
    }
    case 'array':
      return compileArray(type.elementType, node, path, ctx, mismatch);
    case 'map':
      return compileMap(type, node, path, ctx, mismatch);
    case 'decimal':
      return compileDecimal(type.precision, type.scale, node, path, ctx, mismatch);
    case 'primitive':
      return compilePrimitive(type.name, node, mismatch);
  }
}

function compileArray(
  elementType: DeltaType,
  node: SchemaTree,
  path: string,
  ctx: ReadContext,
  mismatch: () => SyncError,
): Converter {
  const e = node.element;
  if (e.repetition_type === 'REPEATED') {
    // An unannotated repeated field is a required list of required elements.
    const convert = compile(elementType, { ...node, element: { ...e, repetition_type: 'REQUIRED' } }, `${path}.element`, ctx);
    return (raw) => (Array.isArray(raw) ? raw.map(convert) : null);
  }
  if (!isListAnnotated(e) || node.children.length !== 1) throw mismatch();
  const rep = node.children[0];
  if (rep.element.repetition_type !== 'REPEATED') throw mismatch();
  if (rep.children.length > 1) {
    // Two-level list of structs: hyparquet assembles it as a struct holding the repeated group.
    const convert = compile(elementType, rep, `${path}.element`, ctx);
    const key = rep.element.name;
    return (raw) => {
      if (raw === null || raw === undefined || typeof raw !== 'object') return null;
      const items = (raw as Record<string, unknown>)[key];
      return Array.isArray(items) ? items.map(convert) : [];
    };
  }
  if (rep.children.length === 0) {
    // Two-level list of primitives: the repeated field is the element.
    const convert = compile(elementType, { ...rep, element: { ...rep.element, repetition_type: 'REQUIRED' } }, `${path}.element`, ctx);
    return (raw) => (Array.isArray(raw) ? raw.map(convert) : null);
  }
  const only = rep.children[0];
  const legacyStructElement =
    elementType.kind === 'struct' && (rep.element.name === 'array' || rep.element.name === `${e.name}_tuple`);
  if (legacyStructElement) {
    // Legacy two-level list whose repeated group is a one-field struct element; hyparquet
    // unwraps the group, so wrap the field back into the struct.
    const convert = compile(elementType, rep, `${path}.element`, ctx);
    const key = only.element.name;
    return (raw) => (Array.isArray(raw) ? raw.map((v) => convert({ [key]: v })) : null);
  }
  const convert = compile(elementType, only, `${path}.element`, ctx);
  return (raw) => (Array.isArray(raw) ? raw.map(convert) : null);
}

function compileMap(
  type: Extract<DeltaType, { kind: 'map' }>,
  node: SchemaTree,
  path: string,
  ctx: ReadContext,
  mismatch: () => SyncError,
): Converter {
  if (node.children.length !== 1) throw mismatch();
  const rep = node.children[0];
  if (rep.element.repetition_type !== 'REPEATED' || rep.children.length < 1 || rep.children.length > 2) throw mismatch();
  const keyNode = rep.children.find((c) => c.element.name === 'key') ?? rep.children[0];
  const valueNode = rep.children.find((c) => c.element.name === 'value') ?? rep.children.find((c) => c !== keyNode);
  const convertKey = compile(type.keyType, keyNode, `${path}.key`, ctx);
  const convertValue = valueNode ? compile(type.valueType, valueNode, `${path}.value`, ctx) : () => null;
  const repName = rep.element.name;
  const keyName = keyNode.element.name;
  const valueName = valueNode?.element.name;
  return (raw) => {
    if (raw === null || raw === undefined || typeof raw !== 'object') return null;
    const entries = (raw as Record<string, unknown>)[repName];
    const out = new Map<DeltaValue, DeltaValue>();
    if (!Array.isArray(entries)) return out;
    for (const entry of entries) {
      if (entry === null || entry === undefined || typeof entry !== 'object') continue;
      const kv = entry as Record<string, unknown>;
      out.set(convertKey(kv[keyName]), valueName === undefined ? null : convertValue(kv[valueName]));
    }
    return out;
  };
}

function compileDecimal(
  precision: number,
  scale: number,
  node: SchemaTree,
  path: string,
  ctx: ReadContext,
  mismatch: () => SyncError,
): Converter {
  const e = node.element;
  const physical = e.type;
  if (physical !== 'INT32' && physical !== 'INT64' && physical !== 'FIXED_LEN_BYTE_ARRAY' && physical !== 'BYTE_ARRAY') {
    throw mismatch();
  }
  // Integer columns widened to decimal have scale 0 in the file.
  const fileScale = decimalScaleOf(e) ?? 0;
  if (decimalScaleOf(e) === undefined && (physical === 'FIXED_LEN_BYTE_ARRAY' || physical === 'BYTE_ARRAY')) throw mismatch();
  const up = scale >= fileScale ? 10n ** BigInt(scale - fileScale) : 1n;
  const down = scale < fileScale ? 10n ** BigInt(fileScale - scale) : 1n;
  return (raw) => {
    if (raw === null || raw === undefined) return null;
    let unscaled: bigint;
    if (typeof raw === 'bigint') unscaled = raw;
    else if (typeof raw === 'number') unscaled = BigInt(raw);
    else if (raw instanceof Uint8Array) unscaled = bytesToBigint(raw);
    else throw fileError(ctx, `column '${path}' holds an unexpected ${typeof raw} for decimal(${precision},${scale})`, undefined, path);
    if (down !== 1n) {
      if (unscaled % down !== 0n) {
        throw fileError(ctx, `column '${path}' has scale ${fileScale} in the file, more than the table's decimal(${precision},${scale})`, undefined, path);
      }
      unscaled /= down;
    } else if (up !== 1n) {
      unscaled *= up;
    }
    return decimalToString(unscaled, scale);
  };
}

/** Big-endian two's complement bytes to bigint. */
function bytesToBigint(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let hex = '';
  for (const b of bytes) hex += b < 16 ? `0${b.toString(16)}` : b.toString(16);
  let value = BigInt(`0x${hex}`);
  if (bytes[0] & 0x80) value -= 1n << BigInt(bytes.length * 8);
  return value;
}

function compilePrimitive(name: Extract<DeltaType, { kind: 'primitive' }>['name'], node: SchemaTree, mismatch: () => SyncError): Converter {
  const e = node.element;
  const physical = e.type;
  if (node.children.length > 0 || physical === undefined) throw mismatch();
  const isDate = e.converted_type === 'DATE' || e.logical_type?.type === 'DATE';
  switch (name) {
    case 'string':
      if (physical !== 'BYTE_ARRAY' && physical !== 'FIXED_LEN_BYTE_ARRAY') throw mismatch();
      return (raw) => (raw === null || raw === undefined ? null : raw instanceof Uint8Array ? utf8Decoder.decode(raw) : String(raw));
    case 'binary':
      if (physical !== 'BYTE_ARRAY' && physical !== 'FIXED_LEN_BYTE_ARRAY') throw mismatch();
      return (raw) =>
        raw === null || raw === undefined ? null : raw instanceof Uint8Array ? raw : utf8Encoder.encode(String(raw));
    case 'boolean':
      if (physical !== 'BOOLEAN') throw mismatch();
      return (raw) => (raw === null || raw === undefined ? null : Boolean(raw));
    case 'byte':
    case 'short':
    case 'integer':
      if (physical !== 'INT32' || isDate) throw mismatch();
      return (raw) => (raw === null || raw === undefined ? null : Number(raw));
    case 'long':
      if ((physical !== 'INT32' && physical !== 'INT64') || isDate) throw mismatch();
      return (raw) => (raw === null || raw === undefined ? null : typeof raw === 'bigint' ? raw : BigInt(raw as number));
    case 'float':
      if (physical !== 'FLOAT') throw mismatch();
      return (raw) => (raw === null || raw === undefined ? null : shortestFloat32(raw as number));
    case 'double':
      if (physical !== 'DOUBLE' && physical !== 'FLOAT' && physical !== 'INT32' && physical !== 'INT64') throw mismatch();
      if (isDate) throw mismatch();
      // float -> double widening keeps the float's exact value, as Spark's cast does.
      return (raw) => (raw === null || raw === undefined ? null : Number(raw));
    case 'date':
      if (physical !== 'INT32') throw mismatch();
      return (raw) => (raw === null || raw === undefined ? null : Number(raw));
    case 'timestamp':
    case 'timestamp_ntz':
      if (physical === 'INT32' && isDate) {
        // date -> timestamp_ntz widening: midnight of that day.
        return (raw) => (raw === null || raw === undefined ? null : BigInt(raw as number) * MICROS_PER_DAY);
      }
      if (physical !== 'INT64' && physical !== 'INT96') throw mismatch();
      return (raw) => (raw === null || raw === undefined ? null : typeof raw === 'bigint' ? raw : BigInt(raw as number));
  }
}

function describeNode(node: SchemaTree): string {
  const e = node.element;
  if (node.children.length > 0) {
    const ann = e.logical_type?.type ?? e.converted_type;
    return ann ? `a ${ann} group` : 'a group';
  }
  const ann = e.logical_type?.type ?? e.converted_type;
  return `${e.type ?? 'unknown'}${ann ? ` (${ann})` : ''}`;
}
