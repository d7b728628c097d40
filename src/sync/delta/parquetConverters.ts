import type { SyncError } from '../errors';
import type { ReadContext } from './parquetFileAccess';
import { fileError } from './parquetFileAccess';
import { formatDeltaType } from './schema';
import type { ColumnMappingMode, DeltaField, DeltaType, DeltaValue } from './types';
import { decimalToString, shortestFloat32 } from './values';
import { VariantDecodeError, variantToJson } from './variant';
import type { SchemaElement, SchemaTree } from 'hyparquet' with { 'resolution-mode': 'import' };

/**
 * From hyparquet's values to DeltaValues: finding a field's parquet column, and compiling,
 * once per file and column, the converter that turns each of the column's values into the
 * Delta value of the field's type (checking that the stored type can be read as it).
 *
 * hyparquet's own conversions are lossy for Delta (DECIMAL -> JS number, maps -> objects
 * with stringified keys, variants through JS numbers), so the metadata handed to it has
 * DECIMAL, MAP and VARIANT annotations removed (stripLossyAnnotations): decimals arrive as raw INT32/INT64/bytes and are scaled
 * here with bigint arithmetic, and maps arrive as lists of {key, value} structs.
 * Timestamps arrive as bigint microseconds and dates as day numbers (PARSERS).
 */

const utf8Decoder = new TextDecoder();
const fatalUtf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();
const MICROS_PER_DAY = 86_400_000_000n;

/**
 * Thrown by a string converter for bytes that are not valid UTF-8 (under the default
 * invalidUtf8 policy 'fail'); the row loop turns it into a SyncError naming the file,
 * column, row and key.
 */
export class InvalidUtf8Error extends Error {
  constructor(readonly bytes: Uint8Array) {
    super('not valid UTF-8');
    this.name = 'InvalidUtf8Error';
  }
}

/** Text bytes to a string: refused (InvalidUtf8Error) when not valid UTF-8, unless the policy is 'replace'. */
function textDecoder(policy: ReadContext['invalidUtf8']): (bytes: Uint8Array) => string {
  if (policy === 'replace') return (bytes) => utf8Decoder.decode(bytes);
  return (bytes) => {
    try {
      return fatalUtf8Decoder.decode(bytes);
    } catch {
      throw new InvalidUtf8Error(bytes);
    }
  };
}

/** Turns one of a column's values, as hyparquet decoded it, into the Delta value. */
export type Converter = (raw: unknown) => DeltaValue;

/**
 * Converter of a tag column to string | null. Tag columns are dictionary-encoded in
 * practice (four distinct `_change_type` values), and hyparquet hands out the same byte
 * array object for every occurrence of a dictionary entry, so the last decoded array is
 * remembered and a repeat costs a comparison instead of a UTF-8 decode.
 */
export function compileTag(node: SchemaTree, ctx: ReadContext): (raw: unknown) => string | null {
  const physical = node.element.type;
  if (node.children.length > 0 || (physical !== 'BYTE_ARRAY' && physical !== 'FIXED_LEN_BYTE_ARRAY')) {
    throw fileError(ctx, `column '${node.element.name}' is stored as ${describeNode(node)}, which cannot be read as string`, undefined, node.element.name);
  }
  let lastRaw: unknown;
  let lastValue: string | null = null;
  return (raw) => {
    if (raw === lastRaw) return lastValue;
    const value = raw === null || raw === undefined ? null : raw instanceof Uint8Array ? utf8Decoder.decode(raw) : String(raw);
    lastRaw = raw;
    lastValue = value;
    return value;
  };
}

/**
 * The schema element as handed to hyparquet: DECIMAL annotations removed (so values stay
 * exact), MAP annotations removed (so maps assemble as lists of key/value structs) and
 * VARIANT annotations removed (hyparquet's own variant decoding turns decimals and int64
 * into JS numbers; the group arrives as raw metadata/value bytes for delta/variant.ts).
 */
export function stripLossyAnnotations(e: SchemaElement): SchemaElement {
  const ctype = e.converted_type;
  const ltype = e.logical_type?.type;
  if (ctype === 'DECIMAL' || ltype === 'DECIMAL' || ctype === 'MAP' || ctype === 'MAP_KEY_VALUE' || ltype === 'MAP' || ltype === 'VARIANT') {
    return { ...e, converted_type: undefined, logical_type: undefined };
  }
  return e;
}

export function findChild(node: SchemaTree, field: DeltaField, mode: ColumnMappingMode): SchemaTree | undefined {
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

/** Builds the converter from hyparquet's value for `node` to the Delta value of `type`. */
export function compileConverter(type: DeltaType, node: SchemaTree, path: string, ctx: ReadContext): Converter {
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
        return { name: f.name, source: child?.element.name, convert: child ? compileConverter(f.type, child, `${path}.${f.name}`, ctx) : undefined };
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
      if (type.name === 'variant') return compileVariant(node, path, ctx, mismatch);
      return compilePrimitive(type.name, node, mismatch, ctx);
  }
}

/**
 * An unshredded variant is a group of two binary fields, `metadata` and `value`; its
 * converter yields the value's exact JSON text (delta/variant.ts). A shredded variant
 * (a `typed_value` field beside them) is refused, naming the column.
 */
function compileVariant(node: SchemaTree, path: string, ctx: ReadContext, mismatch: () => SyncError): Converter {
  if (node.children.some((c) => c.element.name === 'typed_value')) {
    throw fileError(
      ctx,
      `column '${path}' is a shredded VARIANT (it has a typed_value field); this reader decodes unshredded variants only`,
      undefined,
      path,
    );
  }
  const meta = node.children.find((c) => c.element.name === 'metadata');
  const value = node.children.find((c) => c.element.name === 'value');
  const isBinary = (c: SchemaTree | undefined): c is SchemaTree => c !== undefined && c.children.length === 0 && c.element.type === 'BYTE_ARRAY';
  if (!isBinary(meta) || !isBinary(value)) throw mismatch();
  const metaName = meta.element.name;
  const valueName = value.element.name;
  return (raw) => {
    if (raw === null || raw === undefined || typeof raw !== 'object') return null;
    const obj = raw as Record<string, unknown>;
    const m = obj[metaName];
    const v = obj[valueName];
    if (!(m instanceof Uint8Array) || !(v instanceof Uint8Array)) {
      // A non-null variant always has both parts; a missing value is an all-null group.
      if ((m === null || m === undefined) && (v === null || v === undefined)) return null;
      throw fileError(ctx, `column '${path}' holds a variant without its ${m instanceof Uint8Array ? 'value' : 'metadata'} bytes`, undefined, path);
    }
    try {
      return variantToJson(m, v);
    } catch (e) {
      if (e instanceof VariantDecodeError) throw fileError(ctx, `column '${path}' holds a variant that cannot be decoded: ${e.message}`, e, path);
      throw e;
    }
  };
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
    const convert = compileConverter(elementType, { ...node, element: { ...e, repetition_type: 'REQUIRED' } }, `${path}.element`, ctx);
    return (raw) => (Array.isArray(raw) ? raw.map(convert) : null);
  }
  if (!isListAnnotated(e) || node.children.length !== 1) throw mismatch();
  const rep = node.children[0];
  if (rep.element.repetition_type !== 'REPEATED') throw mismatch();
  if (rep.children.length > 1) {
    // Two-level list of structs: hyparquet assembles it as a struct holding the repeated group.
    const convert = compileConverter(elementType, rep, `${path}.element`, ctx);
    const key = rep.element.name;
    return (raw) => {
      if (raw === null || raw === undefined || typeof raw !== 'object') return null;
      const items = (raw as Record<string, unknown>)[key];
      return Array.isArray(items) ? items.map(convert) : [];
    };
  }
  if (rep.children.length === 0) {
    // Two-level list of primitives: the repeated field is the element.
    const convert = compileConverter(elementType, { ...rep, element: { ...rep.element, repetition_type: 'REQUIRED' } }, `${path}.element`, ctx);
    return (raw) => (Array.isArray(raw) ? raw.map(convert) : null);
  }
  const only = rep.children[0];
  const legacyStructElement =
    elementType.kind === 'struct' && (rep.element.name === 'array' || rep.element.name === `${e.name}_tuple`);
  if (legacyStructElement) {
    // Legacy two-level list whose repeated group is a one-field struct element; hyparquet
    // unwraps the group, so wrap the field back into the struct.
    const convert = compileConverter(elementType, rep, `${path}.element`, ctx);
    const key = only.element.name;
    return (raw) => (Array.isArray(raw) ? raw.map((v) => convert({ [key]: v })) : null);
  }
  const convert = compileConverter(elementType, only, `${path}.element`, ctx);
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
  const convertKey = compileConverter(type.keyType, keyNode, `${path}.key`, ctx);
  const convertValue = valueNode ? compileConverter(type.valueType, valueNode, `${path}.value`, ctx) : () => null;
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

function compilePrimitive(name: Extract<DeltaType, { kind: 'primitive' }>['name'], node: SchemaTree, mismatch: () => SyncError, ctx: ReadContext): Converter {
  const e = node.element;
  const physical = e.type;
  if (node.children.length > 0 || physical === undefined) throw mismatch();
  const isDate = e.converted_type === 'DATE' || e.logical_type?.type === 'DATE';
  switch (name) {
    case 'string':
      if (physical !== 'BYTE_ARRAY' && physical !== 'FIXED_LEN_BYTE_ARRAY') throw mismatch();
      {
        // Text arrives decoded (the readers hand on invalid UTF-8 as bytes) or as raw bytes
        // of an unannotated column: bytes are decoded here, under the invalidUtf8 policy.
        const decode = textDecoder(ctx.invalidUtf8);
        return (raw) => (raw === null || raw === undefined ? null : raw instanceof Uint8Array ? decode(raw) : String(raw));
      }
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
    case 'variant':
      throw mismatch();
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
