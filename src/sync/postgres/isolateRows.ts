import type { ClientBase } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Row } from '../delta/types';
import { pgErrorFields } from './classifyPgError';
import { CopyRowEncoder, ValueEncodeError, rowToJson } from './copyEncoder';
import type { RowBatches } from '../ports/targetTypes';
import { qualifiedRef, quoteIdent } from './quoteIdent';
import type { TableRef } from '../ports/targetTypes';
import type { TargetColumn } from '../ports/targetTypes';
import type { RejectedRow } from '../ports/targetTypes';

/** Numbers the staged rows once a statement over them failed (bisection ranges). */
const ORD = '__dns_ord';

/**
 * SQLSTATE classes a row can be set aside for: data exceptions (22), integrity constraints
 * (23), and PL/pgSQL errors (P0: RAISE EXCEPTION's default P0001, ASSERT's P0004, ...),
 * which a trigger raises to refuse a row as a constraint would. Anything else (a trigger
 * that is broken for every row, a lost connection) fails the batch.
 */
export function isRowLevel(e: unknown): boolean {
  if (e instanceof ValueEncodeError) return true;
  const code = pgErrorFields(e)?.code ?? '';
  return code.startsWith('22') || code.startsWith('23') || code.startsWith('P0');
}

/**
 * Stages rows batch by batch, each COPY of up to `batchRows` rows under a savepoint. Rows
 * the encoder refuses are set aside before COPY; when the server refuses a line (type
 * error for an overridden pgType), that line is set aside and the chunk retried. Returns
 * the number of rows staged (the refused ones not counted).
 */
export async function stageIsolating(client: ClientBase, table: TableRef, columns: readonly TargetColumn[], key: readonly string[], batches: RowBatches, op: RejectedRow['op'], rejected: RejectedRow[], batchRows: number): Promise<number> {
  const encoder = new CopyRowEncoder(columns);
  const keyColumns = key.map((k) => columns.find((c) => c.name === k) as TargetColumn);
  const sql = `COPY ${qualifiedRef(table)} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) FROM STDIN`;
  const refuse = (row: Row, sqlstate: string | null, message: string): void => {
    rejected.push({ op, keyJson: rowToJson(row, keyColumns), rowJson: rowToJson(row, columns), sqlstate, message, phase: 'staging' });
  };
  let staged = 0;
  let pending: { row: Row; line: string }[] = [];
  const flush = async (): Promise<void> => {
    while (pending.length > 0) {
      await client.query('SAVEPOINT dns_stage');
      try {
        const text = pending.map((p) => p.line).join('');
        await pipeline(Readable.from([Buffer.from(text, 'utf8')]), client.query(copyFrom(sql)));
        await client.query('RELEASE SAVEPOINT dns_stage');
        staged += pending.length;
        pending = [];
      } catch (e) {
        await client.query('ROLLBACK TO SAVEPOINT dns_stage');
        const f = pgErrorFields(e);
        const line = /line (\d+)/.exec(f?.where ?? '')?.[1];
        if (!isRowLevel(e) || line === undefined) throw e;
        const idx = Number(line) - 1;
        const bad = pending[idx];
        if (!bad) throw e;
        refuse(bad.row, f?.code ?? null, f?.message ?? String(e));
        pending.splice(idx, 1);
      }
    }
  };
  for await (const batch of batches) {
    for (const row of batch) {
      try {
        pending.push({ row, line: encoder.encode(row) });
      } catch (e) {
        if (!(e instanceof ValueEncodeError)) throw e;
        refuse(row, e.sqlstate, e.message);
      }
      if (pending.length >= batchRows) await flush();
    }
  }
  await flush();
  return staged;
}

/** Counts a statement returns; isolation adds them up over the ranges it runs. */
export type StatementCounts = Record<string, number>;

/**
 * Runs `stmt` over all staged rows of `staging` under a savepoint; if it fails on a
 * row-level error, numbers the staged rows and bisects under savepoints until each
 * failing row is isolated, recording it in `rejected` and applying all the others.
 * `stmt(where)` must apply only the staged rows matching `where` (a condition on the
 * staging table's columns; '' for all). Returns the summed counts and how many rows
 * were refused.
 */
export async function withIsolation<T extends StatementCounts>(
  client: ClientBase,
  staging: TableRef,
  columns: readonly TargetColumn[],
  key: readonly string[],
  op: RejectedRow['op'],
  stmt: (where: string) => Promise<T>,
  zero: T,
  rejected: RejectedRow[],
): Promise<{ counts: T; refused: number }> {
  await client.query('SAVEPOINT dns_all');
  try {
    const counts = await stmt('');
    await client.query('RELEASE SAVEPOINT dns_all');
    return { counts, refused: 0 };
  } catch (e) {
    await client.query('ROLLBACK TO SAVEPOINT dns_all');
    if (!isRowLevel(e)) throw e;
  }
  // Numbering the rows rewrites the temp table once; only on this failure path. A table
  // numbered for an earlier part keeps its column (TRUNCATE leaves it) and numbers the
  // rows staged since on from where its sequence stands, hence min and max.
  const ord = quoteIdent(ORD);
  await client.query(`ALTER TABLE ${qualifiedRef(staging)} ADD COLUMN IF NOT EXISTS ${ord} bigserial`);
  const span = (await client.query<{ lo: bigint | null; hi: bigint | null }>(`SELECT min(${ord})::int8 AS lo, max(${ord})::int8 AS hi FROM ${qualifiedRef(staging)}`)).rows[0];
  const colNames = columns.map((c) => c.name);
  let counts = zero;
  let refused = 0;
  const range = async (lo: number, hi: number): Promise<void> => {
    await client.query('SAVEPOINT dns_range');
    try {
      const r = await stmt(`${ord} BETWEEN ${lo} AND ${hi}`);
      await client.query('RELEASE SAVEPOINT dns_range');
      counts = addCounts(counts, r);
      return;
    } catch (e) {
      await client.query('ROLLBACK TO SAVEPOINT dns_range');
      if (!isRowLevel(e)) throw e;
      if (lo === hi) {
        const f = pgErrorFields(e);
        const row = await client.query<{ k: string | null; r: string | null }>(
          `SELECT jsonb_object($1::text[], ARRAY[${key.map((k) => `s.${quoteIdent(k)}::text`).join(', ')}])::text AS k,
                  jsonb_object($2::text[], ARRAY[${colNames.map((c) => `s.${quoteIdent(c)}::text`).join(', ')}])::text AS r
             FROM ${qualifiedRef(staging)} s WHERE s.${ord} = $3::int8`,
          [key, colNames, String(lo)],
        );
        rejected.push({ op, keyJson: row.rows[0]?.k ?? null, rowJson: row.rows[0]?.r ?? null, sqlstate: f?.code ?? null, message: f?.message ?? String(e), phase: 'apply' });
        refused++;
        return;
      }
    }
    const mid = Math.floor((lo + hi) / 2);
    await range(lo, mid);
    await range(mid + 1, hi);
  };
  if (span?.lo != null && span.hi != null) await range(Number(span.lo), Number(span.hi));
  return { counts, refused };
}

function addCounts<T extends StatementCounts>(a: T, b: T): T {
  const sum: StatementCounts = { ...a };
  for (const k of Object.keys(b)) sum[k] = (sum[k] ?? 0) + (b[k] ?? 0);
  return sum as T;
}
