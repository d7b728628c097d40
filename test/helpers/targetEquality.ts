import assert from 'node:assert/strict';
import pg from 'pg';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import type { DeltaField, DeltaType, DeltaValue, Row } from '../../src/sync/delta/types';

/**
 * "The target equals the Delta snapshot at version V", checked without any of the engine's
 * own code on the Postgres side: the target is read as `col::text` in a session pinned to
 * UTC, the snapshot's values (from the reader, whose contract types.ts fixes) are turned
 * into Postgres' text output format here, by hand. Doubles and reals are compared as
 * numbers (their text differs between JS and Postgres for large exponents).
 */

/** A synced column: Delta name and type, and the Postgres column it lands in. */
export interface ComparedColumn {
  source: string;
  target: string;
  type: DeltaType;
}

/** Where the target table is: a URL (a fresh session is opened) or an open client/pool. */
export type TargetHandle = string | { query: pg.Pool['query'] };

export interface EqualityOptions {
  /** Target (Postgres) key column names; their values order and match the rows. */
  key: readonly string[];
  /** Default: every Delta column of the snapshot, same name in Postgres. */
  columns?: readonly ComparedColumn[];
  /** Keep only these snapshot rows (mapping filters). */
  filter?: (row: Row) => boolean;
}

/** A row as `column -> text or null`, keyed by the key columns' text joined with U+241F. */
export type TextRows = Map<string, Record<string, string | null>>;

function pad(n: number | bigint, width: number): string {
  return String(n).padStart(width, '0');
}

/** 'YYYY-MM-DD' of a day number (days since 1970-01-01). */
export function formatDate(days: number): string {
  const d = new Date(days * 86_400_000);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

/** Postgres' timestamp output: 'YYYY-MM-DD HH:MM:SS[.ffffff]' with trailing fraction zeros dropped. */
export function formatMicros(micros: bigint): string {
  let secs = micros / 1_000_000n;
  let frac = micros % 1_000_000n;
  if (frac < 0n) {
    frac += 1_000_000n;
    secs -= 1n;
  }
  const d = new Date(Number(secs) * 1000);
  const base = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} ${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
  const f = frac === 0n ? '' : `.${pad(frac, 6).replace(/0+$/, '')}`;
  return base + f;
}

/** numeric(p, s) output: exactly `s` fraction digits, no '+', '-0' as '0'. */
export function formatDecimal(text: string, scale: number): string {
  const m = /^([+-])?(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!m) throw new Error(`not a decimal: ${text}`);
  const int = (m[2] ?? '').replace(/^0+(?=\d)/, '') || '0';
  const frac = (m[3] ?? '').padEnd(scale, '0');
  if (frac.length > scale && /[1-9]/.test(frac.slice(scale))) throw new Error(`decimal ${text} has more than ${scale} fraction digits`);
  const body = scale > 0 ? `${int}.${frac.slice(0, scale)}` : int;
  return m[1] === '-' && /[1-9]/.test(body) ? `-${body}` : body;
}

/** Number text compared numerically: both sides go through Number(), then a canonical String(). */
function numberText(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (Object.is(n, -0)) return '0';
  return String(n);
}

/** The text Postgres prints for a Delta value of `type` in the default type map (UTC session). */
export function expectedText(value: DeltaValue | undefined, type: DeltaType): string | null {
  if (value === null || value === undefined) return null;
  switch (type.kind) {
    case 'decimal':
      return formatDecimal(String(value), type.scale);
    case 'struct':
    case 'array':
    case 'map':
      throw new Error(`nested column (${type.kind}) not compared by this helper`);
    case 'primitive':
      switch (type.name) {
        case 'byte':
        case 'short':
        case 'integer':
          return String(value as number);
        case 'long':
          return (value as bigint).toString();
        case 'float':
          return numberText(Math.fround(value as number));
        case 'double':
          return numberText(value as number);
        case 'boolean':
          // boolean::text is 'true'/'false' (the output function's 't'/'f' is not what a cast gives).
          return value ? 'true' : 'false';
        case 'string':
          return value as string;
        case 'binary':
          return `\\x${Buffer.from(value as Uint8Array).toString('hex')}`;
        case 'date':
          return formatDate(value as number);
        case 'timestamp':
          return `${formatMicros(value as bigint)}+00`;
        case 'timestamp_ntz':
          return formatMicros(value as bigint);
        case 'variant':
          throw new Error('variant column (jsonb) not compared by this helper');
      }
  }
}

/** Postgres text of a column, normalized where the comparison is numeric (float types). */
function normalizeTarget(text: string | null, type: DeltaType): string | null {
  if (text === null) return null;
  if (type.kind === 'primitive' && (type.name === 'double' || type.name === 'float')) {
    const n = Number(text);
    return numberText(type.name === 'float' ? Math.fround(n) : n);
  }
  return text;
}

function quote(ident: string): string {
  return `"${ident.replace(/"/g, '""')}"`;
}

function keyOf(row: Record<string, string | null>, key: readonly string[]): string {
  return key.map((k) => row[k] ?? '\u2400').join('\u241f');
}

function columnsOf(fields: readonly DeltaField[]): ComparedColumn[] {
  return fields.map((f) => ({ source: f.name, target: f.name, type: f.type }));
}

/** The Delta snapshot at `version` as Postgres would print it. */
export async function snapshotText(tablePath: string, version: number, opts: EqualityOptions): Promise<{ rows: TextRows; columns: ComparedColumn[] }> {
  const table = await DeltaTable.open(tablePath);
  const snap = await table.snapshot({ version });
  const columns = opts.columns ? [...opts.columns] : columnsOf(snap.schema);
  const rows: TextRows = new Map();
  for await (const batch of snap.rows({ batchSize: 10_000 })) {
    for (const r of batch) {
      if (opts.filter && !opts.filter(r)) continue;
      const out: Record<string, string | null> = {};
      for (const c of columns) out[c.target] = expectedText(r[c.source], c.type);
      const k = keyOf(out, opts.key);
      if (rows.has(k)) throw new Error(`snapshot of ${tablePath} at ${version} has key ${k} twice`);
      rows.set(k, out);
    }
  }
  return { rows, columns };
}

/** The target table's rows as `col::text`, read in a session with TimeZone UTC. */
export async function targetText(target: TargetHandle, table: { schema: string; name: string }, columns: readonly ComparedColumn[], key: readonly string[]): Promise<TextRows> {
  const select = columns.map((c, i) => `${quote(c.target)}::text AS c${i}`).join(', ');
  const sql = `SELECT ${select} FROM ${quote(table.schema)}.${quote(table.name)}`;
  let result: { rows: Record<string, string | null>[] };
  if (typeof target === 'string') {
    const client = new pg.Client({ connectionString: target });
    await client.connect();
    try {
      await client.query(`SET TimeZone = 'UTC'`);
      await client.query(`SET extra_float_digits = 1`);
      result = await client.query(sql);
    } finally {
      await client.end();
    }
  } else {
    // A shared pool/client: pin the settings for this one transaction only.
    await target.query('BEGIN');
    try {
      await target.query(`SET LOCAL TimeZone = 'UTC'`);
      await target.query(`SET LOCAL extra_float_digits = 1`);
      result = await target.query(sql);
    } finally {
      await target.query('COMMIT');
    }
  }
  const rows: TextRows = new Map();
  for (const r of result.rows) {
    const out: Record<string, string | null> = {};
    columns.forEach((c, i) => {
      out[c.target] = normalizeTarget(r[`c${i}`] ?? null, c.type);
    });
    const k = keyOf(out, key);
    if (rows.has(k)) throw new Error(`target ${table.schema}.${table.name} has key ${k} twice`);
    rows.set(k, out);
  }
  return rows;
}

export interface RowDiff {
  missing: string[];
  extra: string[];
  differing: { key: string; column: string; expected: string | null; actual: string | null }[];
}

export function diffRows(expected: TextRows, actual: TextRows, columns: readonly ComparedColumn[]): RowDiff {
  const diff: RowDiff = { missing: [], extra: [], differing: [] };
  for (const [k, e] of expected) {
    const a = actual.get(k);
    if (!a) {
      diff.missing.push(k);
      continue;
    }
    for (const c of columns) {
      if (e[c.target] !== a[c.target]) diff.differing.push({ key: k, column: c.target, expected: e[c.target] ?? null, actual: a[c.target] ?? null });
    }
  }
  for (const k of actual.keys()) if (!expected.has(k)) diff.extra.push(k);
  diff.missing.sort();
  diff.extra.sort();
  return diff;
}

/**
 * Asserts the target table equals the Delta snapshot at `version`, row for row and value for
 * value (sorted by key). Returns the number of rows compared.
 */
export async function assertTargetEquals(
  target: TargetHandle,
  table: { schema: string; name: string },
  tablePath: string,
  version: number,
  opts: EqualityOptions,
): Promise<number> {
  const { rows: expected, columns } = await snapshotText(tablePath, version, opts);
  const actual = await targetText(target, table, columns, opts.key);
  const d = diffRows(expected, actual, columns);
  const bad = d.missing.length + d.extra.length + d.differing.length;
  if (bad > 0) {
    assert.fail(
      `target ${table.schema}.${table.name} differs from ${tablePath} at version ${version}: ` +
        `${d.missing.length} missing, ${d.extra.length} extra, ${d.differing.length} differing values ` +
        `(expected ${expected.size} rows, target has ${actual.size}).\n` +
        `missing: ${d.missing.slice(0, 5).join(', ')}\nextra: ${d.extra.slice(0, 5).join(', ')}\n` +
        `differing: ${JSON.stringify(d.differing.slice(0, 5))}`,
    );
  }
  // Also the sorted lists, so equal sizes are asserted explicitly.
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  return expected.size;
}
