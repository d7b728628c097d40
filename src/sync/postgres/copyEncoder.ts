import type { DeltaType, DeltaValue, Row } from '../delta/types';
import { civilFromDays } from '../delta/values';
import { SyncError } from '../errors';
import type { TargetColumn } from '../ports/targetTypes';

/**
 * Encoding of Delta values (representation in delta/types.ts) into Postgres COPY text
 * format fields, and into exact JSON for jsonb columns.
 *
 * COPY text format: fields separated by TAB, rows by LF, `\N` is NULL, and backslash,
 * TAB, LF and CR inside a value must be escaped. Postgres text/jsonb cannot hold NUL,
 * so a string with U+0000 is refused with an error naming the column.
 */

/** Thrown for a value that cannot be represented in the target; `column` names it. */
export class ValueEncodeError extends SyncError {
  /** SQLSTATE Postgres itself would use for this problem (for dead letters). */
  readonly sqlstate: string;
  /** `setting`: the mapping setting the hint offers (deadLetter), which the editor can open. */
  constructor(message: string, column: string | undefined, sqlstate: string, hint?: string, setting?: string) {
    super('target', message, { column, hint, retry: 'never', ...(setting === undefined ? {} : { setting }) });
    this.sqlstate = sqlstate;
  }

  /** The same error naming the row's key (`id=4`), appended to the message. */
  withKey(key: string): ValueEncodeError {
    return new ValueEncodeError(`${this.message} (row with key ${key})`, this.column, this.sqlstate, this.hint, this.setting);
  }
}

const NEEDS_ESCAPE = /[\\\t\n\r]/;
// One scan for the common case (nothing to escape, no NUL) instead of two.
const NEEDS_CARE = /[\\\t\n\r\u0000]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** Escapes a text value for COPY text format (no NUL check: see encodeText). */
export function escapeCopyText(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c] as string) : s;
}

function nulError(column: string | undefined): ValueEncodeError {
  return new ValueEncodeError(
    `Column "${column ?? '?'}" has a string containing a NUL character (U+0000), which Postgres text and jsonb cannot store.`,
    column,
    '22021',
    'Postgres text cannot hold U+0000 in any column type: strip the NUL characters in the Delta table, or set "deadLetter": true in the mapping to set such rows aside in delta_neon_sync.dead_letters and load the rest.',
    'deadLetter',
  );
}

// ---- dates and timestamps ----

const MICROS_PER_DAY = 86_400_000_000;
const MICROS_PER_DAY_N = 86_400_000_000n;
// Postgres ranges (docs, "Date/Time Types"): timestamp 4713 BC .. 294276 AD, date 4713 BC .. 5874897 AD.
const MIN_DAY = -2_440_588; // 4714-11-24 BC (proleptic), i.e. Julian day 0
const MAX_DATE_DAY = 2_145_042_905; // 5874897-12-31
const MAX_TS_DAY = 106_762_939; // 294276-12-31

function pad(n: number, width: number): string {
  const s = String(n);
  return s.length >= width ? s : '0'.repeat(width - s.length) + s;
}

// Timestamps are the costliest common field to encode; these tables avoid per-field padding.
const TWO_DIGITS: string[] = Array.from({ length: 60 }, (_, i) => (i < 10 ? '0' : '') + String(i));

/** `HH:MM:SS[.ffffff]` from microseconds of the day (0 <= usOfDay < 86,400,000,000). */
function timeOfDay(usOfDay: number): string {
  const secs = Math.floor(usOfDay / 1_000_000);
  const frac = usOfDay - secs * 1_000_000;
  const hms = `${TWO_DIGITS[Math.floor(secs / 3600)] as string}:${TWO_DIGITS[Math.floor(secs / 60) % 60] as string}:${TWO_DIGITS[secs % 60] as string}`;
  // frac + 1e6 has exactly 7 digits; dropping the leading 1 zero-pads to 6.
  return frac === 0 ? hms : `${hms}.${String(frac + 1_000_000).slice(1)}`;
}

/** Postgres style: year 0 (astronomical) is 1 BC; years > 9999 are written in full. */
function formatCivil(days: number): { text: string; bc: boolean } {
  const { year: y, month: m, day: d } = civilFromDays(days);
  const bc = y <= 0;
  const year = bc ? 1 - y : y;
  return { text: `${pad(year, 4)}-${pad(m, 2)}-${pad(d, 2)}`, bc };
}

/** `YYYY-MM-DD` (with ` BC` when needed) from days since the epoch. */
export function formatDate(days: number, column?: string): string {
  if (!Number.isInteger(days) || days < MIN_DAY || days > MAX_DATE_DAY) {
    throw new ValueEncodeError(`Column "${column ?? '?'}" has date ${days} (days since 1970-01-01), outside the range Postgres can store.`, column, '22008');
  }
  const c = formatCivil(days);
  return c.bc ? `${c.text} BC` : c.text;
}

function splitMicros(us: bigint | number): { days: number; usOfDay: number } {
  // Fast path: Number is exact for |us| < 2^53 (about year 2255), the common case.
  const n = Number(us);
  if (Number.isSafeInteger(n)) {
    const days = Math.floor(n / MICROS_PER_DAY);
    return { days, usOfDay: n - days * MICROS_PER_DAY };
  }
  const big = typeof us === 'number' ? BigInt(Math.trunc(us)) : us;
  let days = big / MICROS_PER_DAY_N;
  let rem = big % MICROS_PER_DAY_N;
  if (rem < 0n) {
    rem += MICROS_PER_DAY_N;
    days -= 1n;
  }
  return { days: Number(days), usOfDay: Number(rem) };
}

// Rows of one table often share dates: remember the last day's text.
let lastDay = Number.NaN;
let lastDayText = { text: '', bc: false };
function civilText(days: number): { text: string; bc: boolean } {
  if (days !== lastDay) {
    lastDayText = formatCivil(days);
    lastDay = days;
  }
  return lastDayText;
}

/**
 * Timestamp text from microseconds since the epoch: `YYYY-MM-DD HH:MM:SS[.ffffff][+00][ BC]`.
 * `withZone` appends `+00` (the value is UTC); without it, it is a wall-clock time.
 * `iso` gives the JSON flavour (`T` separator, `Z`), years beyond 9999 and BC as +/- years.
 */
export function formatTimestamp(us: bigint | number, withZone: boolean, column?: string, iso = false): string {
  const { days, usOfDay } = splitMicros(us);
  if (days < MIN_DAY || days > MAX_TS_DAY) {
    throw new ValueEncodeError(`Column "${column ?? '?'}" has timestamp ${String(us)} (microseconds since 1970-01-01), outside the range Postgres can store (4713 BC to 294276 AD).`, column, '22008');
  }
  const time = timeOfDay(usOfDay);
  if (iso) {
    const { year: y, month: m, day: d } = civilFromDays(days);
    const year = y >= 0 && y <= 9999 ? pad(y, 4) : (y < 0 ? '-' : '+') + pad(Math.abs(y), 6);
    return `${year}-${pad(m, 2)}-${pad(d, 2)}T${time}${withZone ? 'Z' : ''}`;
  }
  const c = civilText(days);
  return `${c.text} ${time}${withZone ? '+00' : ''}${c.bc ? ' BC' : ''}`;
}

// ---- JSON (for jsonb) ----

const DECIMAL_RE = /^-?\d+(\.\d+)?$/;

function bytesToBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/**
 * Exact JSON text for a nested value: long and decimal are written as JSON numbers with
 * all their digits (jsonb stores numbers as numeric, so nothing is rounded); NaN/Infinity
 * become strings; binary becomes base64; dates/timestamps ISO strings; maps with string
 * keys become objects, other maps arrays of {"key", "value"}.
 */
export function toExactJson(v: DeltaValue, type: DeltaType, column?: string): string {
  if (v === null || v === undefined) return 'null';
  switch (type.kind) {
    case 'decimal': {
      const s = typeof v === 'string' ? v : String(v);
      return DECIMAL_RE.test(s) ? s : JSON.stringify(s);
    }
    case 'struct': {
      if (typeof v !== 'object' || v instanceof Uint8Array || v instanceof Map || Array.isArray(v)) return jsonLoose(v, column);
      const obj = v as Record<string, DeltaValue>;
      const parts: string[] = [];
      for (const f of type.fields) {
        const fv = obj[f.name];
        parts.push(`${jsonString(f.name, column)}:${toExactJson(fv === undefined ? null : fv, f.type, column)}`);
      }
      return `{${parts.join(',')}}`;
    }
    case 'array': {
      if (!Array.isArray(v)) return jsonLoose(v, column);
      return `[${v.map((e) => toExactJson(e, type.elementType, column)).join(',')}]`;
    }
    case 'map': {
      if (!(v instanceof Map)) return jsonLoose(v, column);
      const stringKeys = type.keyType.kind === 'primitive' && type.keyType.name === 'string';
      const parts: string[] = [];
      for (const [k, val] of v) {
        if (stringKeys) parts.push(`${jsonString(String(k), column)}:${toExactJson(val, type.valueType, column)}`);
        else parts.push(`{"key":${toExactJson(k, type.keyType, column)},"value":${toExactJson(val, type.valueType, column)}}`);
      }
      return stringKeys ? `{${parts.join(',')}}` : `[${parts.join(',')}]`;
    }
    case 'primitive':
      switch (type.name) {
        case 'string':
          return jsonString(typeof v === 'string' ? v : String(v), column);
        case 'long':
        case 'integer':
        case 'short':
        case 'byte':
          return typeof v === 'bigint' || typeof v === 'number' ? String(v) : jsonLoose(v, column);
        case 'float':
        case 'double':
          return typeof v === 'number' && !Number.isFinite(v) ? `"${String(v)}"` : String(v);
        case 'boolean':
          return v ? 'true' : 'false';
        case 'binary':
          return v instanceof Uint8Array ? `"${bytesToBase64(v)}"` : jsonLoose(v, column);
        case 'date':
          return typeof v === 'number' ? `"${formatIsoDate(v, column)}"` : jsonLoose(v, column);
        case 'timestamp':
        case 'timestamp_ntz':
          return typeof v === 'bigint' || typeof v === 'number'
            ? `"${formatTimestamp(v, type.name === 'timestamp', column, true)}"`
            : jsonLoose(v, column);
        case 'variant':
          // Already exact JSON text (delta/variant.ts): nested as is, not as a string.
          return typeof v === 'string' ? v : jsonLoose(v, column);
      }
  }
  return jsonLoose(v, column);
}

function formatIsoDate(days: number, column?: string): string {
  formatDate(days, column); // range check
  const { year: y, month: m, day: d } = civilFromDays(days);
  const year = y >= 0 && y <= 9999 ? pad(y, 4) : (y < 0 ? '-' : '+') + pad(Math.abs(y), 6);
  return `${year}-${pad(m, 2)}-${pad(d, 2)}`;
}

function jsonString(s: string, column?: string): string {
  if (s.includes('\u0000')) throw nulError(column);
  return JSON.stringify(s);
}

/** JSON for a value whose shape does not match its declared type (kept exact anyway). */
function jsonLoose(v: DeltaValue, column?: string): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : `"${String(v)}"`;
  if (typeof v === 'string') return jsonString(v, column);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof Uint8Array) return `"${bytesToBase64(v)}"`;
  if (Array.isArray(v)) return `[${v.map((e) => jsonLoose(e, column)).join(',')}]`;
  if (v instanceof Map) return `[${[...v].map(([k, x]) => `{"key":${jsonLoose(k, column)},"value":${jsonLoose(x, column)}}`).join(',')}]`;
  return `{${Object.entries(v).map(([k, x]) => `${jsonString(k, column)}:${jsonLoose(x, column)}`).join(',')}}`;
}

// ---- COPY text fields ----

export type FieldEncoder = (v: DeltaValue) => string;

const HEX: string[] = Array.from({ length: 256 }, (_, i) => (i < 16 ? '0' : '') + i.toString(16));

/**
 * Builds the encoder for one column (chosen once, not per value). Values are encoded by
 * the column's *source* Delta type; a pgType override only has to accept that text.
 */
export function fieldEncoderFor(type: DeltaType, column?: string): FieldEncoder {
  const text = (s: string): string => {
    if (!NEEDS_CARE.test(s)) return s;
    if (s.includes('\u0000')) throw nulError(column);
    return escapeCopyText(s);
  };
  switch (type.kind) {
    case 'decimal':
      return (v) => (v === null || v === undefined ? '\\N' : typeof v === 'string' ? text(v) : text(String(v)));
    case 'struct':
    case 'array':
    case 'map':
      return (v) => (v === null || v === undefined ? '\\N' : escapeCopyText(toExactJson(v, type, column)));
    case 'primitive':
      switch (type.name) {
        case 'string':
          return (v) => (v === null || v === undefined ? '\\N' : text(typeof v === 'string' ? v : jsonLoose(v, column)));
        case 'long':
        case 'integer':
        case 'short':
        case 'byte':
          return (v) => (v === null || v === undefined ? '\\N' : typeof v === 'bigint' || typeof v === 'number' ? String(v) : text(String(v)));
        case 'float':
        case 'double':
          return (v) => {
            if (v === null || v === undefined) return '\\N';
            if (typeof v !== 'number') return text(String(v));
            if (Number.isNaN(v)) return 'NaN';
            if (v === Infinity) return 'Infinity';
            if (v === -Infinity) return '-Infinity';
            return Object.is(v, -0) ? '-0' : String(v);
          };
        case 'boolean':
          return (v) => (v === null || v === undefined ? '\\N' : v ? 't' : 'f');
        case 'binary':
          return (v) => {
            if (v === null || v === undefined) return '\\N';
            if (!(v instanceof Uint8Array)) return text(String(v));
            // `\\x` in COPY text is the bytea hex input `\x` after COPY's own unescaping.
            let s = '\\\\x';
            for (let i = 0; i < v.length; i++) s += HEX[v[i] as number];
            return s;
          };
        case 'date':
          return (v) => (v === null || v === undefined ? '\\N' : typeof v === 'number' ? formatDate(v, column) : text(String(v)));
        case 'timestamp':
        case 'timestamp_ntz': {
          const withZone = type.name === 'timestamp';
          return (v) => (v === null || v === undefined ? '\\N' : typeof v === 'bigint' || typeof v === 'number' ? formatTimestamp(v, withZone, column) : text(String(v)));
        }
        case 'variant':
          // The variant's JSON text goes into a jsonb column as is (escaped for COPY).
          return (v) => (v === null || v === undefined ? '\\N' : text(typeof v === 'string' ? v : jsonLoose(v, column)));
      }
  }
  throw new SyncError('schema-drift', `${column === undefined ? 'A column' : `Column "${column}"`} has a Delta type the sync cannot write to Postgres (${JSON.stringify(type)}).`, {
    column,
    setting: 'columns.exclude',
    hint: 'Leave the column out with columns.exclude in the mapping.',
  });
}

/** Encodes whole rows (one COPY line each, LF-terminated) for a fixed column list. */
export class CopyRowEncoder {
  private readonly encoders: FieldEncoder[];
  private readonly sourceNames: string[];
  private readonly keyColumns: readonly TargetColumn[];
  /** `key`: target names of the key columns, named in a ValueEncodeError (those among `columns`). */
  constructor(columns: readonly TargetColumn[], key: readonly string[] = []) {
    this.encoders = columns.map((c) => fieldEncoderFor(c.source.type, c.name));
    this.sourceNames = columns.map((c) => c.source.name);
    this.keyColumns = columns.filter((c) => key.includes(c.name));
  }

  /** One row as a COPY text line including the trailing LF. Throws ValueEncodeError (naming the row's key when known). */
  encode(row: Row): string {
    try {
      let line = '';
      const n = this.encoders.length;
      for (let i = 0; i < n; i++) {
        const v = row[this.sourceNames[i] as string];
        line += (this.encoders[i] as FieldEncoder)(v === undefined ? null : v);
        line += i === n - 1 ? '\n' : '\t';
      }
      return line;
    } catch (e) {
      if (e instanceof ValueEncodeError && this.keyColumns.length > 0) throw e.withKey(this.describeKey(row));
      throw e;
    }
  }

  private describeKey(row: Row): string {
    return this.keyColumns
      .map((c) => {
        const v = row[c.source.name];
        return `${c.name}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`;
      })
      .join(', ');
  }
}

/** A row as exact JSON (object keyed by target column), for dead letters and reports. */
export function rowToJson(row: Row, columns: readonly TargetColumn[]): string {
  const parts: string[] = [];
  for (const c of columns) {
    const v = row[c.source.name];
    let j: string;
    try {
      j = toExactJson(v === undefined ? null : v, c.source.type, c.name);
    } catch {
      // A value JSON cannot carry (NUL) is shown escaped rather than losing the whole row.
      j = JSON.stringify(String(v).replace(/\u0000/g, '\\u0000'));
    }
    parts.push(`${JSON.stringify(c.name)}:${j}`);
  }
  return `{${parts.join(',')}}`;
}
