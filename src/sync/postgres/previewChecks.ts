import type { DeltaValue, Row } from '../delta/types';
import { encodeKey } from '../plan/encodeKey';
import type { PreviewWarning, PreviewWarningCheck } from '../ports/reports';
import type { TargetColumn } from '../ports/targetTypes';
import { formatOrThrow, formatValue } from './formatValue';

/** Offending rows kept per warning. */
export const SAMPLE_ROWS = 5;
/** Distinct keys remembered for the duplicate check; beyond it the check says it stopped. */
export const MAX_TRACKED_KEYS = 2_000_000;

/** What a column's Postgres type limits, parsed once from its type text. */
interface Limit {
  /** varchar(n) / char(n): most characters. */
  chars?: number;
  /** numeric(p, s): most digits before the point (p - s). */
  intDigits?: number;
  /** smallint / integer: the range. */
  range?: [bigint, bigint];
}

function limitOf(pgType: string): Limit {
  const t = pgType.toLowerCase().trim();
  const chars = /^(?:character varying|varchar|character|char|bpchar)\s*\((\d+)\)$/.exec(t);
  if (chars) return { chars: Number(chars[1]) };
  const num = /^(?:numeric|decimal)\s*\((\d+)(?:\s*,\s*(-?\d+))?\)$/.exec(t);
  if (num) return { intDigits: Number(num[1]) - Number(num[2] ?? 0) };
  if (t === 'smallint' || t === 'int2') return { range: [-32768n, 32767n] };
  if (t === 'integer' || t === 'int' || t === 'int4') return { range: [-2147483648n, 2147483647n] };
  return {};
}

const MESSAGES: Record<Exclude<PreviewWarningCheck, 'existing-key'>, (column: string | undefined, pgType: string | undefined) => string> = {
  'null-key': (c) => `Key column "${c ?? '?'}" is NULL: the target's primary key cannot hold NULL, so applying fails.`,
  'duplicate-key': () => 'Several source rows have the same key: the initial load refuses them (the primary key must be unique).',
  'too-long': (c, t) => `Values of "${c ?? '?'}" are longer than its target type ${t ?? ''} allows.`,
  'numeric-range': (c, t) => `Values of "${c ?? '?'}" do not fit its target type ${t ?? ''} (too many digits before the point).`,
  'integer-range': (c, t) => `Values of "${c ?? '?'}" are outside the range of its target type ${t ?? ''}.`,
  'timestamp-range': (c) => `Dates or timestamps of "${c ?? '?'}" are outside the range Postgres can store (4713 BC to 294276 AD).`,
  'nul-byte': (c) => `Text of "${c ?? '?'}" contains a NUL character (U+0000), which Postgres text cannot store.`,
};

/**
 * The pre-apply checks of a preview, fed the rows a sync would write (the snapshot of an
 * initial load, the upserts of an incremental range) as they stream by: NULL keys,
 * duplicate keys (initial loads), and values that do not fit the target column (too long
 * for varchar(n), numeric or integer out of range, dates/timestamps out of range, NUL in
 * text). Memory is bounded: counts, the first SAMPLE_ROWS offending rows per warning, and
 * at most MAX_TRACKED_KEYS keys for the duplicate check.
 *
 * `targetTypes` are the existing target's column types (format_type text), which win over
 * the mapping's planned types: a value must fit the column that is there.
 */
export class PreviewChecker {
  private readonly found = new Map<string, PreviewWarning>();
  private readonly keyColumns: TargetColumn[];
  private readonly limits: Array<{ column: TargetColumn; pgType: string; limit: Limit }>;
  private readonly seen = new Map<string, number>();
  private keysTruncated = false;

  constructor(
    private readonly columns: readonly TargetColumn[],
    key: readonly string[],
    private readonly opts: { duplicates: boolean; targetTypes?: ReadonlyMap<string, string> },
  ) {
    this.keyColumns = key.map((k) => columns.find((c) => c.name === k)).filter((c): c is TargetColumn => c !== undefined);
    this.limits = columns.map((c) => {
      const pgType = opts.targetTypes?.get(c.name) ?? c.pgType;
      return { column: c, pgType, limit: limitOf(pgType) };
    });
  }

  /** Checks a batch of rows (keyed by source column name, as the sync reads them). */
  add(rows: readonly Row[]): void {
    for (const row of rows) this.check(row);
  }

  /** Wraps a stream of row batches so they are checked as the consumer reads them. */
  async *tap(batches: AsyncIterable<Row[]> | Iterable<Row[]>): AsyncGenerator<Row[]> {
    for await (const b of batches) {
      this.add(b);
      yield b;
    }
  }

  /** The warnings so far, most harmful first (keys, then values), each with its count and first rows. */
  warnings(): PreviewWarning[] {
    const out = [...this.found.values()];
    if (this.keysTruncated) {
      const dup = out.find((w) => w.check === 'duplicate-key');
      if (dup) dup.message += ` Checked the first ${MAX_TRACKED_KEYS.toLocaleString('en-US')} keys only.`;
    }
    const order: PreviewWarningCheck[] = ['null-key', 'duplicate-key', 'nul-byte', 'too-long', 'numeric-range', 'integer-range', 'timestamp-range'];
    return out.sort((a, b) => order.indexOf(a.check) - order.indexOf(b.check));
  }

  private check(row: Row): void {
    const keyValues: DeltaValue[] = [];
    for (const k of this.keyColumns) {
      const v = row[k.source.name];
      if (v === null || v === undefined) this.flag('null-key', k.name, k.pgType, row, k);
      keyValues.push(v ?? null);
    }
    if (this.opts.duplicates && this.keyColumns.length > 0 && keyValues.every((v) => v !== null)) {
      const k = encodeKey(keyValues);
      const n = this.seen.get(k);
      if (n !== undefined) {
        this.seen.set(k, n + 1);
        this.flag('duplicate-key', undefined, undefined, row);
      } else if (this.seen.size < MAX_TRACKED_KEYS) this.seen.set(k, 1);
      else this.keysTruncated = true;
    }
    for (const { column, pgType, limit } of this.limits) {
      const v = row[column.source.name];
      if (v === null || v === undefined) continue;
      let text: string;
      try {
        text = formatOrThrow(v, column);
      } catch (e) {
        const sqlstate = (e as { sqlstate?: string }).sqlstate;
        this.flag(sqlstate === '22021' ? 'nul-byte' : 'timestamp-range', column.name, pgType, row, column);
        continue;
      }
      if (limit.chars !== undefined && [...text].length > limit.chars) this.flag('too-long', column.name, pgType, row, column);
      else if (limit.intDigits !== undefined && intDigits(text) > limit.intDigits) this.flag('numeric-range', column.name, pgType, row, column);
      else if (limit.range && /^-?\d+$/.test(text) && (BigInt(text) < limit.range[0] || BigInt(text) > limit.range[1])) this.flag('integer-range', column.name, pgType, row, column);
    }
  }

  private flag(check: Exclude<PreviewWarningCheck, 'existing-key'>, column: string | undefined, pgType: string | undefined, row: Row, at?: TargetColumn): void {
    const id = `${check}:${column ?? ''}`;
    let w = this.found.get(id);
    if (!w) {
      w = { check, ...(column ? { column } : {}), count: 0, message: MESSAGES[check](column, pgType), samples: [] };
      this.found.set(id, w);
    }
    w.count++;
    if (w.samples.length < SAMPLE_ROWS) w.samples.push(this.sample(row, at));
  }

  /** The row's key and the offending column, as preview text. */
  private sample(row: Row, at?: TargetColumn): Record<string, string | null> {
    const out: Record<string, string | null> = {};
    for (const c of [...this.keyColumns, ...(at && !this.keyColumns.includes(at) ? [at] : [])]) {
      const shown = formatValue(row[c.source.name], c);
      out[c.name] = shown !== null && shown.length > 200 ? `${shown.slice(0, 200)}…` : shown;
    }
    return out;
  }
}

/** Digits before the decimal point of a numeric's text (leading zeros and sign left out). */
function intDigits(text: string): number {
  const m = /^-?0*(\d*)/.exec(text);
  return m ? (m[1] as string).length : 0;
}
