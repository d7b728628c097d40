import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClientBase } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Row } from '../delta/types';
import { CopyRowEncoder } from './copyEncoder';
import { qualifiedRef, quoteIdent } from './quoteIdent';
import type { TableRef } from './quoteIdent';
import type { TargetColumn } from './renderCreateTable';

/** Rows arrive in batches; memory use is bounded by one batch plus one COPY chunk. */
export type RowBatches = AsyncIterable<Row[]> | Iterable<Row[]>;

export interface CopyRowsOptions {
  /** Target chunk size for writes to the socket; default 256 KiB. */
  chunkBytes?: number;
  /** Called for each row after it was encoded (progress). */
  onRows?: (count: number) => void;
}

/**
 * Streams rows into `table` with `COPY ... FROM STDIN` (text format) through
 * pg-copy-streams. Backpressure comes from stream.pipeline: the next batch is not pulled
 * from `batches` until the socket has drained. A value that cannot be encoded (NUL in text,
 * out-of-range date) aborts the COPY with a ValueEncodeError naming the column.
 * Returns the number of rows written. Runs in whatever transaction `client` is in.
 */
export async function copyRows(client: ClientBase, table: TableRef, columns: readonly TargetColumn[], batches: RowBatches, opts: CopyRowsOptions = {}): Promise<number> {
  const encoder = new CopyRowEncoder(columns);
  const chunkBytes = Math.max(1024, opts.chunkBytes ?? 256 * 1024);
  let count = 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    // Each line is written straight into a preallocated chunk: concatenating lines into one
    // big string and converting it at the end cost about a third of the encoding time
    // (measured with bench/encodeBench.ts).
    let chunk = Buffer.allocUnsafe(chunkBytes);
    let pos = 0;
    for await (const batch of batches) {
      for (const row of batch) {
        const line = encoder.encode(row);
        // A UTF-16 code unit never takes more than 3 bytes in UTF-8.
        if (pos + line.length * 3 > chunk.length) {
          if (pos > 0) {
            yield chunk.subarray(0, pos);
            chunk = Buffer.allocUnsafe(chunkBytes);
            pos = 0;
          }
          if (line.length * 3 > chunk.length) {
            yield Buffer.from(line, 'utf8');
            continue;
          }
        }
        pos += chunk.write(line, pos, 'utf8');
      }
      count += batch.length;
      opts.onRows?.(batch.length);
    }
    if (pos > 0) yield chunk.subarray(0, pos);
  }
  const sql = `COPY ${qualifiedRef(table)} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) FROM STDIN`;
  const stream = client.query(copyFrom(sql));
  await pipeline(Readable.from(chunks(), { objectMode: false }), stream);
  return count;
}

/** Wraps an array of rows as batches of `size` (for callers holding rows in memory). */
export function* inBatches(rows: readonly Row[], size = 10_000): Generator<Row[]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}
