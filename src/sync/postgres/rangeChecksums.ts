import { createHash } from 'node:crypto';
import type { ClientBase } from 'pg';
import type { Row } from '../delta/types';
import { SyncError } from '../errors';
import type { BucketSum, SoftDeleteMarker, TableRef, TargetBucketRow, TargetColumn } from '../ports/targetTypes';
import { beginTransaction } from './transaction';
import { formatValue } from './formatValue';
import { qualifiedRef, quoteIdent } from './quoteIdent';
import { isLiveSql } from './softDeleteMarker';

/**
 * Checksums of a table by key buckets, computed the same way by Postgres (SQL over the
 * target) and by the engine (over rows of the Delta snapshot), so the two can be compared
 * without moving the rows.
 *
 * The canonical text of a row: for each column in order, `N` for NULL, else `V`, the byte
 * length of the value's text, `:`, and the text, where the text is what Postgres prints for
 * the stored value (`col::text` in a session with TimeZone UTC, DateStyle ISO, hex bytea and
 * shortest-exact floats) and what the engine's one formatter (formatValue) prints for the
 * Delta value. Lengths make the encoding unambiguous whatever the values hold.
 *
 * A row's hash is the first 64 bits of the MD5 of its canonical text (signed); a bucket's
 * checksum is the row count and the sum of its rows' hashes modulo 2^64: order-independent,
 * and any change to one row changes it. The bucket of a row is taken from the key alone:
 * the first 32 bits of the MD5 of the key columns' canonical text, of which a level keeps
 * the top `bits`. A bucket at `bits` splits into 2^k buckets at `bits + k`, which is how a
 * difference is narrowed. Hash buckets need no order of the key (any key type works) and
 * no sort of the snapshot: the engine keeps one counter per bucket, whatever the table's size.
 */

export interface ChecksumQuery {
  table: TableRef;
  /** The columns hashed, in order (key columns among them). */
  columns: readonly TargetColumn[];
  key: readonly string[];
  /** Bucket bits of the answer (1..32). */
  bits: number;
  /** Only rows of these buckets at `within.bits` (< bits); all rows when absent. */
  within?: { bits: number; buckets: readonly number[] };
  /** Soft delete: only live rows are compared. */
  liveOnly?: SoftDeleteMarker;
}

const MOD64 = 1n << 64n;

/** Session settings under which `::text` prints as formatValue does. */
const TEXT_SETTINGS = [
  `SET LOCAL TimeZone TO 'UTC'`,
  `SET LOCAL DateStyle TO 'ISO, MDY'`,
  `SET LOCAL bytea_output TO 'hex'`,
  `SET LOCAL extra_float_digits TO 1`,
  `SET LOCAL IntervalStyle TO 'postgres'`,
];

/** SQL: the canonical text of `columns` of alias `t` (see the file comment). */
function canonicalSql(alias: string, columns: readonly TargetColumn[]): string {
  if (columns.length === 0) return `''`;
  return columns
    .map((c) => {
      const e = `${alias}.${quoteIdent(c.name)}::text`;
      return `(CASE WHEN ${e} IS NULL THEN 'N' ELSE 'V' || octet_length(${e}) || ':' || ${e} END)`;
    })
    .join(' || ');
}

/** SQL: the row's 32-bit key bucket hash, as a non-negative bigint. */
function keyHashSql(alias: string, key: readonly TargetColumn[]): string {
  return `('x' || substr(md5(${canonicalSql(alias, key)}), 1, 8))::bit(32)::bigint`;
}

/** SQL: the row's 64-bit hash, signed. */
function rowHashSql(alias: string, columns: readonly TargetColumn[]): string {
  return `('x' || substr(md5(${canonicalSql(alias, columns)}), 1, 16))::bit(64)::bigint`;
}

function keyColumnsOf(q: Pick<ChecksumQuery, 'columns' | 'key'>): TargetColumn[] {
  return q.key.map((k) => {
    const c = q.columns.find((x) => x.name === k);
    if (!c) throw new Error(`rangeChecksums: key column ${k} is not among the columns`);
    return c;
  });
}

function whereSql(q: ChecksumQuery, kh: string, param: number): { sql: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  if (q.liveOnly) conds.push(isLiveSql('t', q.liveOnly));
  if (q.within) {
    conds.push(`(${kh} >> ${32 - q.within.bits}) = ANY($${param}::bigint[])`);
    params.push(q.within.buckets.map(String));
  }
  return { sql: conds.length ? ` WHERE ${conds.join(' AND ')}` : '', params };
}

/** Bytes the client has received so far (0 when the driver has no socket, as PGlite). */
export function bytesReceived(c: ClientBase): number {
  const s = (c as unknown as { connection?: { stream?: { bytesRead?: number } } }).connection?.stream;
  return s?.bytesRead ?? 0;
}

/**
 * Checksums of the target's buckets at `q.bits` (only non-empty buckets are returned), in
 * one read-only statement (a read-only transaction of its own, for the text settings).
 */
export async function targetBucketSums(client: ClientBase, q: ChecksumQuery): Promise<Map<number, BucketSum>> {
  const key = keyColumnsOf(q);
  const kh = keyHashSql('t', key);
  const where = whereSql(q, kh, 1);
  const sql = `SELECT (${kh} >> ${32 - q.bits})::bigint AS b, count(*)::bigint AS n, sum(${rowHashSql('t', q.columns)}::numeric)::text AS s FROM ${qualifiedRef(q.table)} AS t${where.sql} GROUP BY 1`;
  return withTextSettings(client, async () => {
    const r = await client.query<{ b: string; n: string; s: string }>(sql, where.params);
    const out = new Map<number, BucketSum>();
    for (const row of r.rows) out.set(Number(row.b), { rows: Number(row.n), sum: mod64(BigInt(row.s)) });
    return out;
  });
}

/** The key and hash of every target row in `buckets` at `bits` (what a repair reads back). */
export async function targetBucketRows(client: ClientBase, q: Omit<ChecksumQuery, 'within'> & { buckets: readonly number[] }): Promise<TargetBucketRow[]> {
  if (q.buckets.length === 0) return [];
  const key = keyColumnsOf(q);
  const kh = keyHashSql('t', key);
  const where = whereSql({ ...q, within: { bits: q.bits, buckets: q.buckets } }, kh, 1);
  const keyCols = key.map((c, i) => `t.${quoteIdent(c.name)}::text AS k${i}`).join(', ');
  const sql = `SELECT ${canonicalSql('t', key)} AS kt, ${rowHashSql('t', q.columns)}::text AS h, ${keyCols} FROM ${qualifiedRef(q.table)} AS t${where.sql}`;
  return withTextSettings(client, async () => {
    const r = await client.query<Record<string, string | null>>(sql, where.params);
    return r.rows.map((row) => {
      const k: Record<string, string | null> = {};
      key.forEach((c, i) => (k[c.name] = row[`k${i}`] ?? null));
      return { keyText: row.kt as string, hash: mod64(BigInt(row.h as string)), key: k };
    });
  });
}

async function withTextSettings<T>(client: ClientBase, fn: () => Promise<T>): Promise<T> {
  await beginTransaction(client);
  try {
    await client.query(`SET TRANSACTION READ ONLY; ${TEXT_SETTINGS.join('; ')}`);
    const r = await fn();
    await client.query('COMMIT');
    return r;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

function mod64(x: bigint): bigint {
  return ((x % MOD64) + MOD64) % MOD64;
}

/**
 * The engine's side: the same canonical texts and hashes for Delta rows (values formatted
 * by formatValue as the target column prints them), so a row hashes as it will once stored.
 */
export class RowHasher {
  private readonly keyTexts: ColumnText[];
  private readonly texts: ColumnText[];

  constructor(columns: readonly TargetColumn[], key: readonly string[]) {
    this.texts = columns.map(columnText);
    this.keyTexts = keyColumnsOf({ columns, key }).map(columnText);
  }

  /** Canonical text of the row's key columns. */
  keyText(row: Row): string {
    return canonical(row, this.keyTexts);
  }

  /** The row's key as Postgres' key errors print it: `(id, region)=(1, eu)` (Delta names, values as Postgres prints them). */
  keyLabel(row: Row): string {
    const values = this.keyTexts.map((c) => c.text(row[c.name]) ?? 'NULL');
    return `(${this.keyTexts.map((c) => c.name).join(', ')})=(${values.join(', ')})`;
  }

  /** The row's 32-bit key hash (unsigned), of which a level keeps the top bits. */
  keyHash(keyText: string): number {
    return createHash('md5').update(keyText, 'utf8').digest().readUInt32BE(0);
  }

  /** The row's 64-bit hash (unsigned). */
  rowHash(row: Row): bigint {
    return createHash('md5').update(canonical(row, this.texts), 'utf8').digest().readBigUInt64BE(0);
  }
}

/** A column's Delta name and its value's text as Postgres prints it (null for NULL). */
interface ColumnText {
  name: string;
  text: (v: Row[string] | undefined) => string | null;
}

/**
 * formatValue for one column, with the common cases inlined (the hash of a large snapshot
 * formats every value): they print exactly as formatValue prints them.
 */
function columnText(c: TargetColumn): ColumnText {
  const slow = (v: Row[string] | undefined): string | null => formatValue(v, c);
  const t = c.source.type;
  if (t.kind === 'primitive') {
    switch (t.name) {
      case 'string':
        return { name: c.source.name, text: (v) => (typeof v === 'string' && !v.includes('\u0000') ? v : slow(v)) };
      case 'long':
      case 'integer':
      case 'short':
      case 'byte':
        return { name: c.source.name, text: (v) => (typeof v === 'bigint' || typeof v === 'number' ? String(v) : slow(v)) };
      case 'double':
        // floatText: plain digits for decimal exponents -4..14.
        return { name: c.source.name, text: (v) => (typeof v === 'number' && Math.abs(v) >= 1e-4 && Math.abs(v) < 1e15 ? String(v) : slow(v)) };
    }
  }
  return { name: c.source.name, text: slow };
}

function canonical(row: Row, texts: readonly ColumnText[]): string {
  let s = '';
  for (const c of texts) {
    const v = c.text(row[c.name]);
    s += v === null ? 'N' : `V${Buffer.byteLength(v, 'utf8')}:${v}`;
  }
  return s;
}

/** The canonical text of a Delta row for `columns` (see the file comment). */
export function canonicalText(row: Row, columns: readonly TargetColumn[]): string {
  return canonical(row, columns.map(columnText));
}

/** The bucket at `bits` of a 32-bit key hash. */
export function bucketAt(keyHash: number, bits: number): number {
  return bits >= 32 ? keyHash : Math.floor(keyHash / 2 ** (32 - bits));
}

/** Adds a row hash (unsigned 64-bit) to a sum mod 2^64. */
export function addHash(sum: bigint, h: bigint): bigint {
  return (sum + h) % MOD64;
}

/**
 * The refusal of a snapshot that holds a key twice, which a repair meets in its second pass
 * (a duplicated key always makes its bucket differ: the target holds it at most once).
 * Repairing on would leave the target unequal to the snapshot with the checkpoint moved on.
 */
export function duplicateSnapshotKeyError(table: string, version: number, key: readonly string[], keyLabel: string): SyncError {
  return new SyncError(
    'mapping',
    `The snapshot of ${table} at version ${version} holds the key ${keyLabel} twice: the key (${key.join(', ')}) is not unique, so the target (one row per key) cannot equal it, and nothing was repaired.`,
    { table, version, hint: 'Choose key columns that are unique in the Delta table (key of the mapping), or remove the duplicate rows from it.' },
  );
}
