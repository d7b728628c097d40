import { decimalToString, formatDate, formatTimestamp, shortestFloat32 } from './values';

/**
 * Decoding of unshredded VARIANT values (Delta's `variantType` reader feature) from the
 * Parquet Variant binary encoding: a `metadata` buffer (version byte, a dictionary of
 * field names) and a `value` buffer (a self-describing tree whose objects name their
 * fields by dictionary id), into exact JSON text for a Postgres `jsonb` column.
 *
 * JSON for each variant type (what the sync writes into jsonb), as the spec's "Conversion to
 * JSON" table says (apache/parquet-format VariantEncoding.md, until commit 855a58c removed
 * the table in 2025), as parquet-java's reference converter writes it
 * (org.apache.parquet.variant.DefaultScalarToJson: fixed 6 or 9 fraction digits, "+00:00"):
 *   null, true/false                 -> null, true, false
 *   int8/16/32/64                    -> JSON number with every digit (int64 via bigint)
 *   decimal4/8/16                    -> JSON number with exactly `scale` fraction digits, no
 *                                       exponent ("1.50" stays 1.50: jsonb numbers are numeric)
 *   double                           -> shortest round-trip number (JS `String(x)`), with a
 *                                       fraction: an integral double is "2147483648.0"
 *   float                            -> shortest decimal that rounds to the same float32,
 *                                       with a fraction the same way ("1.0")
 *   NaN / +-Infinity (double, float) -> the strings "NaN", "Infinity", "-Infinity", as the
 *                                       spec says (jsonb numbers cannot hold them)
 *   date                             -> "YYYY-MM-DD"
 *   timestamp (micros)               -> "YYYY-MM-DDTHH:MM:SS.ffffff+00:00" (UTC, every digit)
 *   timestamp (nanos)                -> "YYYY-MM-DDTHH:MM:SS.fffffffff+00:00"
 *   timestamp_ntz (micros / nanos)   -> the same without the offset
 *   time (micros, no zone)           -> "HH:MM:SS.ffffff"
 *   binary                           -> base64 string
 *   string, short string             -> JSON string
 *   uuid                             -> "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
 *   object                           -> JSON object, names from the metadata dictionary
 *   array                            -> JSON array
 *
 * Malformed input (a version other than 1, an offset past the buffer, an unknown type id)
 * throws VariantDecodeError; the parquet reader turns it into a SyncError naming the file,
 * table, version and column.
 */

/** The variant bytes are malformed or use a type this decoder does not know. */
export class VariantDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VariantDecodeError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The field-name dictionary of one variant's metadata buffer. */
export class VariantMetadata {
  private readonly names: string[];

  constructor(bytes: Uint8Array) {
    if (bytes.length < 1) throw new VariantDecodeError('the metadata is empty');
    const header = bytes[0] as number;
    const version = header & 0x0f;
    if (version !== 1) throw new VariantDecodeError(`the metadata has version ${version}; only version 1 is defined`);
    const offsetSize = ((header >> 6) & 0x03) + 1;
    const size = readUint(bytes, 1, offsetSize);
    const offsetsStart = 1 + offsetSize;
    const stringsStart = offsetsStart + (size + 1) * offsetSize;
    if (stringsStart > bytes.length) throw new VariantDecodeError('the metadata dictionary is truncated');
    this.names = new Array<string>(size);
    for (let i = 0; i < size; i++) {
      const from = readUint(bytes, offsetsStart + i * offsetSize, offsetSize);
      const to = readUint(bytes, offsetsStart + (i + 1) * offsetSize, offsetSize);
      if (from > to || stringsStart + to > bytes.length) throw new VariantDecodeError(`the metadata dictionary entry ${i} lies outside the buffer`);
      this.names[i] = decodeUtf8(bytes.subarray(stringsStart + from, stringsStart + to));
    }
  }

  /** The field name of dictionary id `id`. */
  name(id: number): string {
    const n = this.names[id];
    if (n === undefined) throw new VariantDecodeError(`field id ${id} is not in the metadata dictionary (${this.names.length} names)`);
    return n;
  }
}

/** Exact JSON text of one unshredded variant (`metadata`, `value` as stored in parquet). */
export function variantToJson(metadata: Uint8Array, value: Uint8Array): string {
  return valueToJson(new VariantMetadata(metadata), value, 0, 0);
}

const MAX_DEPTH = 1000;

function valueToJson(meta: VariantMetadata, b: Uint8Array, pos: number, depth: number): string {
  if (depth > MAX_DEPTH) throw new VariantDecodeError(`the value nests deeper than ${MAX_DEPTH} levels`);
  need(b, pos, 1);
  const header = b[pos] as number;
  const basicType = header & 0x03;
  const vh = header >> 2;
  switch (basicType) {
    case 0:
      return primitiveToJson(b, pos + 1, vh);
    case 1: {
      need(b, pos + 1, vh);
      return jsonString(decodeUtf8(b.subarray(pos + 1, pos + 1 + vh)));
    }
    case 2: {
      const offsetSize = (vh & 0x03) + 1;
      const idSize = ((vh >> 2) & 0x03) + 1;
      const large = (vh & 0x10) !== 0;
      const countSize = large ? 4 : 1;
      const n = readUint(b, pos + 1, countSize);
      const idsStart = pos + 1 + countSize;
      const offsetsStart = idsStart + n * idSize;
      const valuesStart = offsetsStart + (n + 1) * offsetSize;
      need(b, idsStart, valuesStart - idsStart);
      const parts = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const name = meta.name(readUint(b, idsStart + i * idSize, idSize));
        const off = readUint(b, offsetsStart + i * offsetSize, offsetSize);
        parts[i] = `${jsonString(name)}:${valueToJson(meta, b, valuesStart + off, depth + 1)}`;
      }
      return `{${parts.join(',')}}`;
    }
    default: {
      const offsetSize = (vh & 0x03) + 1;
      const large = (vh & 0x04) !== 0;
      const countSize = large ? 4 : 1;
      const n = readUint(b, pos + 1, countSize);
      const offsetsStart = pos + 1 + countSize;
      const valuesStart = offsetsStart + (n + 1) * offsetSize;
      need(b, offsetsStart, valuesStart - offsetsStart);
      const parts = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const off = readUint(b, offsetsStart + i * offsetSize, offsetSize);
        parts[i] = valueToJson(meta, b, valuesStart + off, depth + 1);
      }
      return `[${parts.join(',')}]`;
    }
  }
}

const MICROS_PER_SECOND = 1_000_000n;
const NANOS_PER_SECOND = 1_000_000_000n;

function primitiveToJson(b: Uint8Array, p: number, typeId: number): string {
  const view = (len: number): DataView => {
    need(b, p, len);
    return new DataView(b.buffer, b.byteOffset + p, len);
  };
  switch (typeId) {
    case 0:
      return 'null';
    case 1:
      return 'true';
    case 2:
      return 'false';
    case 3:
      return String(view(1).getInt8(0));
    case 4:
      return String(view(2).getInt16(0, true));
    case 5:
      return String(view(4).getInt32(0, true));
    case 6:
      return view(8).getBigInt64(0, true).toString();
    case 7:
      return numberJson(view(8).getFloat64(0, true));
    case 8:
    case 9:
    case 10: {
      const width = typeId === 8 ? 4 : typeId === 9 ? 8 : 16;
      const scale = view(1).getUint8(0);
      if (scale > 38) throw new VariantDecodeError(`a decimal has scale ${scale}; at most 38 is allowed`);
      need(b, p + 1, width);
      return decimalToString(readIntLE(b, p + 1, width), scale);
    }
    case 11:
      return JSON.stringify(formatDate(view(4).getInt32(0, true)));
    case 12:
    case 13:
      return JSON.stringify(formatTicks(view(8).getBigInt64(0, true), MICROS_PER_SECOND, 6, typeId === 12));
    case 14: {
      const f = view(4).getFloat32(0, true);
      return numberJson(Number.isFinite(f) ? shortestFloat32(f) : f);
    }
    case 15:
    case 16: {
      const len = view(4).getUint32(0, true);
      need(b, p + 4, len);
      const bytes = b.subarray(p + 4, p + 4 + len);
      return typeId === 15 ? JSON.stringify(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')) : jsonString(decodeUtf8(bytes));
    }
    case 17:
      return JSON.stringify(formatTime(view(8).getBigInt64(0, true)));
    case 18:
    case 19:
      return JSON.stringify(formatTicks(view(8).getBigInt64(0, true), NANOS_PER_SECOND, 9, typeId === 18));
    case 20: {
      need(b, p, 16);
      const hex = Buffer.from(b.buffer, b.byteOffset + p, 16).toString('hex');
      return JSON.stringify(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`);
    }
    default:
      throw new VariantDecodeError(`unknown primitive type id ${typeId}`);
  }
}

/** A float or double as JSON: non-finite ones as strings, finite ones always with a fraction or exponent. */
function numberJson(x: number): string {
  if (Number.isNaN(x)) return '"NaN"';
  if (x === Infinity) return '"Infinity"';
  if (x === -Infinity) return '"-Infinity"';
  const text = Object.is(x, -0) ? '-0' : String(x);
  return /^-?\d+$/.test(text) ? `${text}.0` : text;
}

/**
 * ISO timestamp of `ticks` (`perSecond` to a second) since the epoch, the fraction with all
 * `digits` digits, trailing zeros kept, and "+00:00" when the value is UTC.
 */
function formatTicks(ticks: bigint, perSecond: bigint, digits: number, withZone: boolean): string {
  let seconds = ticks / perSecond;
  let frac = ticks % perSecond;
  if (frac < 0n) {
    frac += perSecond;
    seconds -= 1n;
  }
  const whole = formatTimestamp(seconds * MICROS_PER_SECOND, false);
  return `${whole}.${frac.toString().padStart(digits, '0')}${withZone ? '+00:00' : ''}`;
}

/** Time of day (microseconds since midnight) as HH:MM:SS.ffffff (all six digits). */
function formatTime(micros: bigint): string {
  if (micros < 0n || micros >= 86_400_000_000n) throw new VariantDecodeError(`a time value (${micros} microseconds) is outside one day`);
  const us = Number(micros);
  const secs = Math.floor(us / 1_000_000);
  const frac = us - secs * 1_000_000;
  const two = (n: number): string => String(n).padStart(2, '0');
  const hms = `${two(Math.floor(secs / 3600))}:${two(Math.floor(secs / 60) % 60)}:${two(secs % 60)}`;
  return `${hms}.${String(frac).padStart(6, '0')}`;
}

/** A JSON string; Postgres jsonb cannot store U+0000, so it is refused here rather than by the server. */
function jsonString(s: string): string {
  if (s.includes('\u0000')) throw new VariantDecodeError('a string holds a NUL character (U+0000), which Postgres jsonb cannot store');
  return JSON.stringify(s);
}

function need(b: Uint8Array, pos: number, len: number): void {
  if (pos < 0 || len < 0 || pos + len > b.length) {
    throw new VariantDecodeError(`the value is truncated (needs bytes ${pos}..${pos + len} of ${b.length})`);
  }
}

function readUint(b: Uint8Array, pos: number, size: number): number {
  need(b, pos, size);
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + (b[pos + i] as number);
  return v;
}

/** Little-endian two's complement integer of `width` bytes. */
function readIntLE(b: Uint8Array, pos: number, width: number): bigint {
  let v = 0n;
  for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[pos + i] as number);
  if ((b[pos + width - 1] as number) & 0x80) v -= 1n << BigInt(width * 8);
  return v;
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new VariantDecodeError('a string is not valid UTF-8');
  }
}
