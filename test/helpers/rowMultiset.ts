import type { ChangeRow, DeltaField, DeltaType, DeltaValue, Row } from '../../src/sync/delta/types';

/**
 * Canonical text for values and rows, so that reader output, Spark-written parquet and
 * pretty-printed reference tables can be compared as sorted lists (multisets) with readable
 * diffs. Written independently of the reader's own equality code on purpose.
 */

/** Decimal text without sign noise or trailing fraction zeros: '1.50' -> '1.5', '-0.0' -> '0'. */
export function normalizeDecimal(text: string): string {
  const m = /^([+-])?(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!m) throw new Error(`not a decimal: ${text}`);
  const int = (m[2] ?? '').replace(/^0+(?=\d)/, '') || '0';
  const frac = (m[3] ?? '').replace(/0+$/, '');
  const body = frac ? `${int}.${frac}` : int;
  return m[1] === '-' && body !== '0' ? `-${body}` : body;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function canonicalNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (Object.is(n, -0)) return '-0';
  return String(n);
}

/** Canonical text of a reader value of `type` (the project value representation). */
export function canonicalValue(value: DeltaValue | undefined, type: DeltaType): string {
  if (value === null || value === undefined) return 'null';
  switch (type.kind) {
    case 'decimal':
      return `d:${normalizeDecimal(String(value))}`;
    case 'struct': {
      const obj = value as Record<string, DeltaValue>;
      return `{${type.fields.map((f) => `${JSON.stringify(f.name)}:${canonicalValue(obj[f.name], f.type)}`).join(',')}}`;
    }
    case 'array':
      return `[${(value as DeltaValue[]).map((v) => canonicalValue(v, type.elementType)).join(',')}]`;
    case 'map': {
      // Map entry order is not part of a map's value.
      const entries = [...(value as Map<DeltaValue, DeltaValue>)].map(
        ([k, v]) => `${canonicalValue(k, type.keyType)}=>${canonicalValue(v, type.valueType)}`,
      );
      return `map{${entries.sort().join(',')}}`;
    }
    case 'primitive':
      switch (type.name) {
        case 'byte':
        case 'short':
        case 'integer':
        case 'long':
          if (typeof value !== 'number' && typeof value !== 'bigint') return `BAD(${typeof value}):${String(value)}`;
          return `i:${BigInt(value)}`;
        case 'float':
          return `f:${canonicalNumber(Math.fround(value as number))}`;
        case 'double':
          return `f:${canonicalNumber(value as number)}`;
        case 'boolean':
          return `b:${String(value)}`;
        case 'string':
          return `s:${JSON.stringify(value)}`;
        case 'binary':
          return value instanceof Uint8Array ? `x:${hex(value)}` : `BAD(${typeof value}):${String(value)}`;
        case 'date':
          return `date:${String(value)}`;
        case 'timestamp':
        case 'timestamp_ntz':
          if (typeof value !== 'bigint') return `BAD(${typeof value}):${String(value)}`;
          return `ts:${value}`;
        case 'variant':
          return `v:${String(value)}`;
      }
  }
}

/** Days since 1970-01-01 of 'YYYY-MM-DD'. */
export function parseIsoDate(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) throw new Error(`not a date: ${text}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / 86_400_000;
}

/** Microseconds of 'YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z]', read as UTC (or wall clock for ntz). */
export function parseIsoMicros(text: string): bigint {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z?$/.exec(text);
  if (!m) throw new Error(`not a timestamp: ${text}`);
  const seconds = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  return BigInt(seconds) * 1_000_000n + BigInt((m[7] ?? '').padEnd(6, '0'));
}

/** Canonical text of a pretty-printed cell for a column of `type` (same space as canonicalValue). */
export function canonicalCell(cell: string | null, type: DeltaType): string {
  if (cell === null) return 'null';
  switch (type.kind) {
    case 'decimal':
      return `d:${normalizeDecimal(cell)}`;
    case 'primitive':
      switch (type.name) {
        case 'byte':
        case 'short':
        case 'integer':
        case 'long':
          return `i:${BigInt(cell)}`;
        case 'float':
          return `f:${canonicalNumber(Math.fround(Number(cell)))}`;
        case 'double':
          return `f:${canonicalNumber(Number(cell))}`;
        case 'boolean':
          return `b:${cell}`;
        case 'string':
          return `s:${JSON.stringify(cell)}`;
        case 'date':
          return `date:${parseIsoDate(cell)}`;
        case 'timestamp':
        case 'timestamp_ntz':
          return `ts:${parseIsoMicros(cell)}`;
        case 'binary':
          throw new Error('binary cells are not used in the expected files');
      }
      break;
    default:
      throw new Error(`nested cells are not used in the expected files (${type.kind})`);
  }
  throw new Error('unreachable');
}

export function canonicalRow(row: Row, fields: readonly DeltaField[]): string {
  return fields.map((f) => `${f.name}=${canonicalValue(row[f.name], f.type)}`).join(' | ');
}

export function canonicalChange(c: ChangeRow, fields: readonly DeltaField[]): string {
  return `${canonicalRow(c.values, fields)} || ${c.changeType} @${c.commitVersion} t=${new Date(c.commitTimestamp).toISOString()}`;
}

/** Sorted copy, for multiset comparison with assert.deepEqual. */
export function sorted(xs: readonly string[]): string[] {
  return [...xs].sort();
}

/** A multiset of strings (counts), for applying changes row by row. */
export class Multiset {
  private readonly counts = new Map<string, number>();

  add(x: string): void {
    this.counts.set(x, (this.counts.get(x) ?? 0) + 1);
  }

  /** False when `x` is not present (the caller reports it). */
  remove(x: string): boolean {
    const n = this.counts.get(x);
    if (!n) return false;
    if (n === 1) this.counts.delete(x);
    else this.counts.set(x, n - 1);
    return true;
  }

  toSortedArray(): string[] {
    const out: string[] = [];
    for (const [x, n] of this.counts) for (let i = 0; i < n; i++) out.push(x);
    return out.sort();
  }
}

/** The same fields with physicalName = name and no field ids, recursively (for Spark's logical-name parquet). */
export function logicalFields(fields: readonly DeltaField[]): DeltaField[] {
  return fields.map((f) => ({ ...f, physicalName: f.name, fieldId: undefined, type: logicalType(f.type) }));
}

function logicalType(t: DeltaType): DeltaType {
  switch (t.kind) {
    case 'struct':
      return { ...t, fields: logicalFields(t.fields) };
    case 'array':
      return { ...t, elementType: logicalType(t.elementType) };
    case 'map':
      return { ...t, keyType: logicalType(t.keyType), valueType: logicalType(t.valueType) };
    default:
      return t;
  }
}
