import { SyncError } from '../errors';
import { formatDeltaType } from './schema';
import type { DeltaMap, DeltaStruct, DeltaType, DeltaValue } from './types';

/**
 * Conversions of Delta values (representation in types.ts) from partition strings and to
 * JSON, plus exact decimal and calendar arithmetic. Calendar maths is proleptic Gregorian
 * on plain integers (not JS Date), so years far outside 0000-9999 keep their exact value.
 */

const MICROS_PER_DAY = 86_400_000_000n;
const MICROS_PER_SECOND = 1_000_000n;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const MAX_SAFE = 2n ** 53n;

const utf8Encoder = new TextEncoder();

// ---------------------------------------------------------------- calendar

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = month > 2 ? month - 3 : month + 9;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The proleptic Gregorian date of a day number (days since 1970-01-01). */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return { year, month, day };
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

/** ISO-8601 year: 4 digits for 0000-9999, else the expanded form with sign and >= 6 digits. */
function formatYear(year: number): string {
  if (year >= 0 && year <= 9999) return String(year).padStart(4, '0');
  return (year < 0 ? '-' : '+') + String(Math.abs(year)).padStart(6, '0');
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** 'YYYY-MM-DD' (expanded years outside 0000-9999, e.g. '+275760-09-13'). */
export function formatDate(days: number): string {
  const { year, month, day } = civilFromDays(days);
  return `${formatYear(year)}-${pad2(month)}-${pad2(day)}`;
}

/**
 * ISO-8601 of microseconds since the epoch: 'YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]' plus 'Z'
 * when `withZone`. The fraction is omitted when zero, 3 digits when whole milliseconds,
 * else 6 digits.
 */
export function formatTimestamp(micros: bigint, withZone: boolean): string {
  let days = micros / MICROS_PER_DAY;
  let rem = micros % MICROS_PER_DAY;
  if (rem < 0n) {
    rem += MICROS_PER_DAY;
    days -= 1n;
  }
  const secondsOfDay = Number(rem / MICROS_PER_SECOND);
  const fraction = Number(rem % MICROS_PER_SECOND);
  const h = Math.floor(secondsOfDay / 3600);
  const m = Math.floor((secondsOfDay % 3600) / 60);
  const s = secondsOfDay % 60;
  let frac = '';
  if (fraction !== 0) {
    frac = fraction % 1000 === 0 ? '.' + String(fraction / 1000).padStart(3, '0') : '.' + String(fraction).padStart(6, '0');
  }
  return `${formatDate(Number(days))}T${pad2(h)}:${pad2(m)}:${pad2(s)}${frac}${withZone ? 'Z' : ''}`;
}

// ---------------------------------------------------------------- decimals

/** Canonical decimal text of an unscaled integer: optional '-', digits, exactly `scale` fraction digits. */
export function decimalToString(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  let digits = (negative ? -unscaled : unscaled).toString();
  if (scale > 0) {
    if (digits.length <= scale) digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  }
  return negative ? `-${digits}` : digits;
}

/**
 * The unscaled integer of a decimal literal ('12.5', '-0.001', '1E+3') at `scale`, or
 * undefined when the text is not a number or would lose non-zero digits at that scale.
 */
export function decimalUnscaled(text: string, scale: number): bigint | undefined {
  const m = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!m) return undefined;
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  if (intPart === '' && fracPart === '') return undefined;
  const exponent = m[4] ? Number(m[4]) : 0;
  let unscaled = BigInt((intPart + fracPart) || '0');
  // value = unscaled * 10^(exponent - fracPart.length); bring it to 10^-scale.
  const shift = scale + exponent - fracPart.length;
  if (shift >= 0) {
    unscaled *= 10n ** BigInt(shift);
  } else {
    const divisor = 10n ** BigInt(-shift);
    if (unscaled % divisor !== 0n) return undefined;
    unscaled /= divisor;
  }
  return m[1] === '-' ? -unscaled : unscaled;
}

/** Whether an unscaled decimal fits `precision` digits. */
export function decimalFits(unscaled: bigint, precision: number): boolean {
  const abs = unscaled < 0n ? -unscaled : unscaled;
  return abs < 10n ** BigInt(precision);
}

// ---------------------------------------------------------------- floats

/**
 * The shortest decimal that rounds to the same float32, as a double: a FLOAT column
 * holding 3.14f reads as 3.14, not 3.140000104904175, the way Spark prints it.
 */
export function shortestFloat32(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(f.toPrecision(p));
    if (Math.fround(candidate) === f) return candidate;
  }
  return f;
}

// ---------------------------------------------------------------- partition values

/**
 * Partition values per the protocol's "Partition Value Serialization" (null/missing/empty
 * -> null; timestamps in 'yyyy-MM-dd HH:mm:ss[.SSSSSS]' (UTC for timestamp) or ISO-8601
 * with zone; dates 'yyyy-MM-dd'; decimals canonicalised to scale; booleans; binary as raw
 * string bytes). Throws SyncError('delta-log') naming the column on a bad value.
 */
export function parsePartitionValue(raw: string | null | undefined, type: DeltaType, column: string): DeltaValue {
  if (raw === null || raw === undefined || raw === '') return null;
  const bad = (why?: string): SyncError =>
    new SyncError(
      'delta-log',
      `Partition value '${raw}' of column '${column}' is not a valid ${formatDeltaType(type)}${why ? ` (${why})` : ''}`,
      { column, hint: 'The Delta log holds a partition value this reader cannot parse; check the writer.' },
    );
  if (type.kind === 'decimal') {
    const unscaled = decimalUnscaled(raw, type.scale);
    if (unscaled === undefined) throw bad();
    if (!decimalFits(unscaled, type.precision)) throw bad(`more than ${type.precision} digits`);
    return decimalToString(unscaled, type.scale);
  }
  if (type.kind !== 'primitive') throw bad('complex types cannot be partition columns');
  switch (type.name) {
    case 'string':
      return raw;
    case 'binary':
      return utf8Encoder.encode(raw);
    case 'variant':
      throw bad('variant columns cannot be partition columns');
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      if (v === 'true') return true;
      if (v === 'false') return false;
      throw bad();
    }
    case 'byte':
    case 'short':
    case 'integer': {
      const v = raw.trim();
      if (!/^[+-]?\d+$/.test(v)) throw bad();
      const n = Number(v);
      const limit = type.name === 'byte' ? 128 : type.name === 'short' ? 32768 : 2147483648;
      if (n < -limit || n >= limit) throw bad('out of range');
      return n;
    }
    case 'long': {
      const v = raw.trim();
      if (!/^[+-]?\d+$/.test(v)) throw bad();
      const n = BigInt(v);
      if (n < INT64_MIN || n > INT64_MAX) throw bad('out of range');
      return n;
    }
    case 'float':
    case 'double': {
      const v = raw.trim();
      let n: number;
      if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) n = Number(v);
      else if (/^nan$/i.test(v)) n = NaN;
      else if (/^\+?inf(inity)?$/i.test(v)) n = Infinity;
      else if (/^-inf(inity)?$/i.test(v)) n = -Infinity;
      else throw bad();
      return type.name === 'float' ? shortestFloat32(n) : n;
    }
    case 'date': {
      const m = /^([+-]?\d{4,6})-(\d{1,2})-(\d{1,2})$/.exec(raw.trim());
      if (!m) throw bad('expected yyyy-MM-dd');
      const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) throw bad('no such date');
      return daysFromCivil(year, month, day);
    }
    case 'timestamp':
    case 'timestamp_ntz': {
      const micros = parseTimestampText(raw, type.name === 'timestamp');
      if (micros === undefined) throw bad("expected 'yyyy-MM-dd HH:mm:ss[.SSSSSS]' or ISO-8601");
      return micros;
    }
  }
}

/**
 * Microseconds of 'yyyy-MM-dd[( |T)HH:mm[:ss[.fraction]]][zone]'. Without a zone the text is
 * UTC (timestamp) or wall clock (timestamp_ntz); a zone ('Z', '+01:00', '+0100', '+01')
 * is applied for timestamp and ignored for timestamp_ntz, whose value is the wall clock.
 * Fractions beyond microseconds are truncated toward the past.
 */
function parseTimestampText(raw: string, applyZone: boolean): bigint | undefined {
  const m =
    /^([+-]?\d{4,6})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$/i.exec(
      raw.trim(),
    );
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const fraction = BigInt((m[7] ?? '').padEnd(6, '0').slice(0, 6) || '0');
  let micros =
    BigInt(daysFromCivil(year, month, day)) * MICROS_PER_DAY +
    BigInt(hour * 3600 + minute * 60 + second) * MICROS_PER_SECOND +
    fraction;
  const zone = m[8];
  if (applyZone && zone && !/^(z|utc)$/i.test(zone)) {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
    if (!z) return undefined;
    const offsetMinutes = Number(z[2]) * 60 + Number(z[3] ?? 0);
    const offset = BigInt(offsetMinutes) * 60n * MICROS_PER_SECOND;
    micros = z[1] === '+' ? micros - offset : micros + offset;
  }
  return micros;
}

// ---------------------------------------------------------------- JSON

/** Base64 of bytes, without going through a binary string. */
function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function asBigint(v: DeltaValue): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  if (typeof v === 'string') return BigInt(v);
  throw new TypeError(`Expected an integer value, got ${typeof v}`);
}

/**
 * JSON for the CLI's jsonl: dates 'YYYY-MM-DD'; timestamps ISO-8601 UTC with 'Z' (fraction
 * only when non-zero); timestamp_ntz the same without 'Z'; long/decimal as JSON number when
 * exact through a double, else as string; binary base64; NaN/±Infinity as strings; struct
 * -> object; array -> array; map -> object when keys are strings, else [{key, value}].
 */
export function toJsonValue(value: DeltaValue, type: DeltaType): unknown {
  if (value === null || value === undefined) return null;
  switch (type.kind) {
    case 'decimal': {
      const s = String(value);
      const n = Number(s);
      return Number.isFinite(n) && String(n) === s ? n : s;
    }
    case 'struct': {
      const obj = value as DeltaStruct;
      const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      for (const f of type.fields) out[f.name] = toJsonValue(obj[f.name] ?? null, f.type);
      return out;
    }
    case 'array':
      return (value as DeltaValue[]).map((v) => toJsonValue(v, type.elementType));
    case 'map': {
      const map = value as DeltaMap;
      if (type.keyType.kind === 'primitive' && type.keyType.name === 'string') {
        const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
        for (const [k, v] of map) out[String(k)] = toJsonValue(v, type.valueType);
        return out;
      }
      return [...map].map(([k, v]) => ({ key: toJsonValue(k, type.keyType), value: toJsonValue(v, type.valueType) }));
    }
    case 'primitive':
      switch (type.name) {
        case 'long': {
          const n = asBigint(value);
          return n <= MAX_SAFE && n >= -MAX_SAFE ? Number(n) : n.toString();
        }
        case 'float':
        case 'double': {
          const n = value as number;
          if (Number.isNaN(n)) return 'NaN';
          if (n === Infinity) return 'Infinity';
          if (n === -Infinity) return '-Infinity';
          return n;
        }
        case 'binary':
          return base64(value as Uint8Array);
        case 'date':
          return formatDate(value as number);
        case 'timestamp':
          return formatTimestamp(asBigint(value), true);
        case 'timestamp_ntz':
          return formatTimestamp(asBigint(value), false);
        case 'variant':
          // The value is JSON text; parsed back so the jsonl line nests it (int64 beyond
          // 2^53 and long decimals lose digits here, as JSON.parse cannot keep them).
          return typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
        default:
          return value;
      }
  }
}

// ---------------------------------------------------------------- equality

/** Deep equality of two values of one type (bigints, Uint8Array, maps, NaN==NaN). */
export function deltaValuesEqual(a: DeltaValue, b: DeltaValue, type: DeltaType): boolean {
  if (a === null || a === undefined || b === null || b === undefined) {
    return (a === null || a === undefined) && (b === null || b === undefined);
  }
  switch (type.kind) {
    case 'decimal':
      return a === b || decimalUnscaled(String(a), type.scale) === decimalUnscaled(String(b), type.scale);
    case 'struct': {
      const sa = a as DeltaStruct;
      const sb = b as DeltaStruct;
      return type.fields.every((f) => deltaValuesEqual(sa[f.name] ?? null, sb[f.name] ?? null, f.type));
    }
    case 'array': {
      const xa = a as DeltaValue[];
      const xb = b as DeltaValue[];
      return xa.length === xb.length && xa.every((v, i) => deltaValuesEqual(v, xb[i], type.elementType));
    }
    case 'map': {
      const ma = a as DeltaMap;
      const mb = b as DeltaMap;
      if (ma.size !== mb.size) return false;
      // Keys may be bigints, byte arrays or structs, so match them by value, not identity.
      const rest = [...mb];
      for (const [k, v] of ma) {
        const i = rest.findIndex(([k2]) => deltaValuesEqual(k, k2, type.keyType));
        if (i < 0 || !deltaValuesEqual(v, rest[i][1], type.valueType)) return false;
        rest.splice(i, 1);
      }
      return true;
    }
    case 'primitive':
      switch (type.name) {
        case 'float':
        case 'double':
          return a === b || (Number.isNaN(a) && Number.isNaN(b));
        case 'binary': {
          const ba = a as Uint8Array;
          const bb = b as Uint8Array;
          return ba.length === bb.length && ba.every((x, i) => x === bb[i]);
        }
        case 'long':
        case 'timestamp':
        case 'timestamp_ntz':
          return asBigint(a) === asBigint(b);
        default:
          return a === b;
      }
  }
}
