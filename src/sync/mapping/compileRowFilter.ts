import { SyncError } from '../errors';
import type { DeltaField, DeltaType, DeltaValue, Row } from '../delta/types';
import type { FilterCondition } from './mappingSchema';
import { formatDeltaType } from '../delta/schema';

/**
 * Compiles a mapping's `filter` (all conditions must hold) into a predicate over Delta rows,
 * checking every column and value against the Delta schema first, so a bad filter fails
 * before any row is read. Comparisons are exact in the column's own representation:
 * long and timestamps as bigint, decimals as scaled integers, strings by code point (the
 * order of UTF-8 bytes, as Spark and Postgres' "C" collation compare). SQL null logic: a
 * comparison with a null column value is not a match; use 'is null' for those rows.
 *
 * Values: numbers or strings for numeric columns (64-bit integers and decimals as strings
 * when they exceed 2^53), 'YYYY-MM-DD' for dates, ISO-8601 for timestamps (no zone = UTC;
 * timestamp_ntz takes no zone), true/false for booleans. Binary, variant and nested columns can only
 * be tested with 'is null' / 'is not null'.
 */
export function compileRowFilter(filter: readonly FilterCondition[], schema: readonly DeltaField[]): (row: Row) => boolean {
  const tests = filter.map((c, i) => compileCondition(c, i, schema));
  return (row) => {
    for (const t of tests) if (!t(row)) return false;
    return true;
  };
}

type Cmp = (a: DeltaValue, b: DeltaValue) => number;

function bad(index: number, column: string, message: string): SyncError {
  return new SyncError('mapping', `filter[${index}]: ${message}`, { column, setting: `filter[${index}]` });
}

function compileCondition(c: FilterCondition, index: number, schema: readonly DeltaField[]): (row: Row) => boolean {
  const field = schema.find((f) => f.name === c.column);
  if (!field) throw bad(index, c.column, `column "${c.column}" is not in the Delta table`);
  const col = c.column;
  if (c.op === 'is null') return (row) => row[col] === null || row[col] === undefined;
  if (c.op === 'is not null') return (row) => row[col] !== null && row[col] !== undefined;

  const kind = comparerFor(field.type);
  if (!kind) {
    throw bad(index, col, `column "${col}" is ${formatDeltaType(field.type)}: only 'is null' and 'is not null' apply to it`);
  }
  const parse = (v: string | number | boolean): DeltaValue => {
    try {
      return kind.parse(v);
    } catch (e) {
      throw bad(index, col, `${JSON.stringify(v)} is not a valid ${formatDeltaType(field.type)} value: ${(e as Error).message}`);
    }
  };
  const cmp = kind.cmp;
  if (c.op === 'in') {
    const values = c.values.map(parse);
    return (row) => {
      const v = row[col];
      if (v === null || v === undefined) return false;
      return values.some((x) => cmp(v, x) === 0);
    };
  }
  // The schema guarantees a value here; the check only narrows the type.
  if (!('value' in c)) throw bad(index, col, `operator '${c.op}' needs a value`);
  const target = parse(c.value);
  const op = c.op;
  return (row) => {
    const v = row[col];
    if (v === null || v === undefined) return false;
    const r = cmp(v, target);
    switch (op) {
      case '=':
        return r === 0;
      case '!=':
        return r !== 0;
      case '<':
        return r < 0;
      case '<=':
        return r <= 0;
      case '>':
        return r > 0;
      case '>=':
        return r >= 0;
    }
  };
}

interface Comparer {
  parse: (v: string | number | boolean) => DeltaValue;
  cmp: Cmp;
}

/** NaN equals NaN and sorts above every other number, as in Spark and Postgres. */
const numCmp: Cmp = (a, b) => {
  const x = a as number;
  const y = b as number;
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : 1) : -1;
  return x < y ? -1 : x > y ? 1 : 0;
};
const bigCmp: Cmp = (a, b) => ((a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0);

/** Code point order, which equals UTF-8 byte order (JS `<` compares UTF-16 units). */
function stringCmp(a: DeltaValue, b: DeltaValue): number {
  const x = a as string;
  const y = b as string;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; ) {
    const cx = x.codePointAt(i)!;
    const cy = y.codePointAt(i)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
    i += cx > 0xffff ? 2 : 1;
  }
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

function toNumber(v: string | number | boolean, integer: boolean): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (Number.isNaN(n) && !(typeof v === 'string' && v === 'NaN')) throw new Error('not a number');
  if (integer && !Number.isInteger(n)) throw new Error('not an integer');
  return n;
}

function toBigInt(v: string | number | boolean): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error('give integers beyond 2^53 as strings');
    return BigInt(v);
  }
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw new Error('not an integer');
  return BigInt(v);
}

/** Decimal text -> [unscaled, scale]. */
function parseDecimal(s: string): [bigint, number] {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s.trim());
  if (!m) throw new Error('not a decimal');
  const frac = m[3] ?? '';
  return [BigInt(`${m[1]}${m[2]}${frac}`), frac.length];
}

const decimalCmp: Cmp = (a, b) => {
  const [x, sx] = parseDecimal(a as string);
  const [y, sy] = parseDecimal(b as string);
  const s = Math.max(sx, sy);
  return bigCmp(x * 10n ** BigInt(s - sx), y * 10n ** BigInt(s - sy));
};

const DAY_MS = 86_400_000;

function parseDate(v: string | number | boolean): number {
  const m = typeof v === 'string' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(v) : null;
  if (!m) throw new Error("give dates as 'YYYY-MM-DD'");
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (new Date(ms).getUTCDate() !== Number(m[3])) throw new Error('no such day');
  return ms / DAY_MS;
}

function parseTimestamp(v: string | number | boolean, ntz: boolean): bigint {
  const m =
    typeof v === 'string'
      ? /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(v)
      : null;
  if (!m) throw new Error("give timestamps as ISO-8601 text such as '2024-05-01T12:00:00.123456Z'");
  if (ntz && m[6]) throw new Error('timestamp_ntz values take no time zone');
  const days = BigInt(parseDate(m[1]!));
  const secs = Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  let micros = days * 86_400_000_000n + BigInt(secs) * 1_000_000n + BigInt((m[5] ?? '').padEnd(6, '0') || '0');
  const zone = m[6];
  if (zone && zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    const off = BigInt(Number(z[2]) * 3600 + Number(z[3]) * 60) * 1_000_000n;
    micros += z[1] === '+' ? -off : off;
  }
  return micros;
}

function comparerFor(t: DeltaType): Comparer | undefined {
  if (t.kind === 'decimal') {
    return {
      parse: (v) => {
        const s = typeof v === 'number' ? String(v) : v;
        if (typeof s !== 'string' || /e/i.test(s)) throw new Error('give decimals as plain text such as "12.50"');
        parseDecimal(s);
        return s.trim();
      },
      cmp: decimalCmp,
    };
  }
  if (t.kind !== 'primitive') return undefined;
  switch (t.name) {
    case 'byte':
    case 'short':
    case 'integer':
      return { parse: (v) => toNumber(v, true), cmp: numCmp };
    case 'float':
    case 'double':
      return { parse: (v) => toNumber(v, false), cmp: numCmp };
    case 'long':
      return { parse: toBigInt, cmp: bigCmp };
    case 'string':
      return {
        parse: (v) => {
          if (typeof v !== 'string') throw new Error('give text values as strings');
          return v;
        },
        cmp: stringCmp,
      };
    case 'boolean':
      return {
        parse: (v) => {
          if (typeof v !== 'boolean') throw new Error('give true or false');
          return v;
        },
        cmp: (a, b) => Number(a) - Number(b),
      };
    case 'date':
      return { parse: parseDate, cmp: numCmp };
    case 'timestamp':
      return { parse: (v) => parseTimestamp(v, false), cmp: bigCmp };
    case 'timestamp_ntz':
      return { parse: (v) => parseTimestamp(v, true), cmp: bigCmp };
    case 'binary':
    case 'variant':
      return undefined;
  }
}
