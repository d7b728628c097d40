import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClientBase } from 'pg';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Row } from '../delta/types';
import { CopyRowEncoder } from './copyEncoder';
import { qualifiedRef, quoteIdent } from './quoteIdent';
import type { TableRef } from '../ports/targetTypes';
import type { TargetColumn } from '../ports/targetTypes';
import type { RowBatches, EncodedRows } from '../ports/targetTypes';

export interface CopyRowsOptions {
  /** Target chunk size for writes to the socket; default 256 KiB. */
  chunkBytes?: number;
  /** Called for each row after it was encoded (progress). */
  onRows?: (count: number) => void;
  /** Target names of the key columns, named in encoding errors. */
  key?: readonly string[];
  /** Statements sent in the COPY's query, before it (no parameters): one round trip for them all. */
  before?: string;
}

/**
 * Streams rows into `table` with `COPY ... FROM STDIN` (text format) through
 * pg-copy-streams. Backpressure comes from stream.pipeline: the next batch is not pulled
 * from `batches` until the socket has drained. A value that cannot be encoded (NUL in text,
 * out-of-range date) aborts the COPY with a ValueEncodeError naming the column.
 * Returns the number of rows written. Runs in whatever transaction `client` is in.
 */
export async function copyRows(client: ClientBase, table: TableRef, columns: readonly TargetColumn[], batches: RowBatches, opts: CopyRowsOptions = {}): Promise<number> {
  const encoder = new CopyRowEncoder(columns, opts.key);
  const writer = new ChunkWriter(opts.chunkBytes);
  let count = 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    const full: Buffer[] = [];
    for await (const batch of batches) {
      for (const row of batch) {
        writer.write(encoder.encode(row), full);
        if (full.length > 0) {
          yield* full;
          full.length = 0;
        }
      }
      count += batch.length;
      opts.onRows?.(batch.length);
    }
    writer.flush(full);
    yield* full;
  }
  await copyChunks(client, table, columns, chunks(), opts.before);
  return count;
}

/** Encodes rows as COPY text chunks (see copyEncoded). Throws ValueEncodeError like copyRows. */
export function encodeRows(columns: readonly TargetColumn[], rows: Iterable<Row>, chunkBytes?: number, key?: readonly string[]): EncodedRows {
  const e = new RowChunkEncoder(columns, chunkBytes, key);
  e.push(rows);
  return e.take(true);
}

/** Encodes a stream of row batches into COPY text chunks, handed out as they fill. */
export class RowChunkEncoder {
  private readonly encoder: CopyRowEncoder;
  private readonly writer: ChunkWriter;
  private chunks: Buffer[] = [];
  private count = 0;
  private bytes = 0;

  /** `key`: target names of the key columns, named in encoding errors. */
  constructor(columns: readonly TargetColumn[], chunkBytes?: number, key?: readonly string[]) {
    this.encoder = new CopyRowEncoder(columns, key);
    this.writer = new ChunkWriter(chunkBytes);
  }

  push(rows: Iterable<Row>): void {
    for (const row of rows) {
      const before = this.chunks.length;
      this.writer.write(this.encoder.encode(row), this.chunks);
      for (let i = before; i < this.chunks.length; i++) this.bytes += (this.chunks[i] as Buffer).length;
      this.count++;
    }
  }

  /** Bytes in full chunks not taken yet. */
  get pendingBytes(): number {
    return this.bytes;
  }

  /** The full chunks and their rows so far (all rows, partial chunk included, when `all`). */
  take(all: boolean): EncodedRows {
    if (all) this.writer.flush(this.chunks);
    const out = { chunks: this.chunks, count: all ? this.count : this.count - this.writer.rows };
    this.chunks = [];
    this.count -= out.count;
    this.bytes = 0;
    return out;
  }
}

/** COPYs rows encoded by encodeRows for the same `columns`; returns their count. */
export async function copyEncoded(client: ClientBase, table: TableRef, columns: readonly TargetColumn[], rows: EncodedRows): Promise<number> {
  await copyChunks(
    client,
    table,
    columns,
    rows.chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
  );
  return rows.count;
}

/** COPYs a stream of encoded rows (e.g. from a worker thread); returns the row count. */
export async function copyEncodedStream(client: ClientBase, table: TableRef, columns: readonly TargetColumn[], parts: AsyncIterable<EncodedRows>, onRows?: (count: number) => void, before?: string): Promise<number> {
  let count = 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    for await (const p of parts) {
      for (const c of p.chunks) yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      count += p.count;
      onRows?.(p.count);
    }
  }
  await copyChunks(client, table, columns, chunks(), before);
  return count;
}

async function copyChunks(client: ClientBase, table: TableRef, columns: readonly TargetColumn[], chunks: AsyncIterable<Buffer> | Iterable<Buffer>, before?: string): Promise<void> {
  const sql = `${before ? `${before};\n` : ''}COPY ${qualifiedRef(table)} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) FROM STDIN`;
  const stream = client.query(pipelinedCopy(copyFrom(sql)));
  await pipeline(Readable.from(chunks, { objectMode: false }), stream);
}

/**
 * A pg-copy-streams COPY that sends its data right behind the query, without waiting a
 * round trip for the server's CopyInResponse (see pipelinedQuery: the protocol allows it;
 * data of a COPY that fails is dropped by the server). Backpressure still holds: it is the
 * socket's. Statements before the COPY in the same query (`before` of copyChunks) are run
 * first; their results are ignored.
 */
function pipelinedCopy<T extends ReturnType<typeof copyFrom>>(stream: T): T {
  const s = stream as unknown as { submit: (c: unknown) => void; handleCopyInResponse: (c: unknown) => void; _destroy: (err: Error | null, cb: (e?: Error | null) => void) => void; connection: unknown };
  const submit = s.submit.bind(stream);
  const started = s.handleCopyInResponse.bind(stream);
  const destroy = s._destroy.bind(stream);
  s.submit = (connection) => {
    submit(connection);
    started(connection);
  };
  // Already started at submit; the server's own CopyInResponse changes nothing.
  s.handleCopyInResponse = () => undefined;
  // After the server refused the query (the connection is let go), there is no COPY left to fail.
  s._destroy = (err, cb) => (s.connection ? destroy(err, cb) : cb(err));
  return stream;
}

/**
 * Packs COPY lines into preallocated chunks of about `chunkBytes` (default 256 KiB):
 * concatenating lines into one big string and converting it at the end cost about a third
 * of the encoding time (measured with bench/encodeBench.ts).
 */
class ChunkWriter {
  private readonly size: number;
  private chunk: Buffer;
  private pos = 0;
  /** Lines in the partly filled chunk. */
  rows = 0;

  constructor(chunkBytes = 256 * 1024) {
    this.size = Math.max(1024, chunkBytes);
    this.chunk = Buffer.allocUnsafe(this.size);
  }

  /** Adds one line; pushes the chunks that filled up onto `out`. */
  write(line: string, out: Buffer[]): void {
    // A UTF-16 code unit never takes more than 3 bytes in UTF-8.
    if (this.pos + line.length * 3 > this.chunk.length) {
      this.flush(out);
      if (line.length * 3 > this.chunk.length) {
        out.push(Buffer.from(line, 'utf8'));
        return;
      }
    }
    this.pos += this.chunk.write(line, this.pos, 'utf8');
    this.rows++;
  }

  /** Pushes the partly filled chunk, if any, onto `out`. */
  flush(out: Buffer[]): void {
    if (this.pos === 0) return;
    out.push(this.chunk.subarray(0, this.pos));
    this.chunk = Buffer.allocUnsafe(this.size);
    this.pos = 0;
    this.rows = 0;
  }
}

/** Wraps an array of rows as batches of `size` (for callers holding rows in memory). */
export function* inBatches(rows: readonly Row[], size = 10_000): Generator<Row[]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

/** One statement of a pipelined query: SQL text with no parameters; a COPY ... FROM STDIN carries its rows. */
export interface PipelinedStatement {
  sql: string;
  /** COPY text for a `COPY ... FROM STDIN` statement, sent right behind the query. */
  copy?: readonly Uint8Array[];
}

/** The `COPY table (columns) FROM STDIN` statement for `columns`. */
export function copyFromStdinSql(table: TableRef, columns: readonly TargetColumn[]): string {
  return `COPY ${qualifiedRef(table)} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) FROM STDIN`;
}

const COPY_DATA = 0x64;
const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]);

/**
 * A simple query of several statements, some of them `COPY ... FROM STDIN`, whose COPY
 * data goes out right behind the query text instead of after the server's CopyInResponse:
 * ONE round trip for the lot (over a 20 ms link, each COPY waiting for its CopyInResponse,
 * and each statement for the one before, is a round trip each). The protocol allows it:
 * the server reads the copy data when it reaches the COPY, and drops CopyData, CopyDone and
 * CopyFail messages that arrive outside a COPY (after a statement before it failed: the rest
 * of the query is then skipped, as in any simple query). For rows already in memory (an
 * apply part): the data is written at once, without backpressure.
 */
function pipelined(text: string, copies: ReadonlyArray<readonly Uint8Array[]>, callback: (err: Error | null, res: unknown) => void): pg.Query {
  const q = new pg.Query({ text }, undefined, callback as never);
  const submit = (q as unknown as { submit: (c: unknown) => Error | null }).submit.bind(q);
  Object.assign(q, {
    submit: (connection: unknown): Error | null => {
      const con = connection as { stream: NodeJS.WritableStream & { cork?: () => void; uncork?: () => void } };
      const err = submit(connection);
      if (err) return err;
      con.stream.cork?.();
      try {
        for (const chunks of copies) {
          for (const c of chunks) {
            if (c.byteLength === 0) continue;
            const head = Buffer.allocUnsafe(5);
            head[0] = COPY_DATA;
            head.writeUInt32BE(c.byteLength + 4, 1);
            con.stream.write(head);
            con.stream.write(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
          }
          con.stream.write(COPY_DONE);
        }
      } finally {
        con.stream.uncork?.();
      }
      return null;
    },
    // The data went out with the query.
    handleCopyInResponse: (): void => undefined,
  });
  return q;
}

/**
 * Runs `statements` as ONE simple query (see PipelinedQuery), in whatever transaction
 * `client` is in; returns one result per statement. A failure of any statement rejects
 * with the server's error, the statements after it not run.
 */
export function pipelinedQuery(client: ClientBase, statements: readonly PipelinedStatement[]): Promise<pg.QueryResult[]> {
  const text = statements.map((s) => s.sql).join(';\n');
  const copies = statements.filter((s) => s.copy !== undefined).map((s) => s.copy as readonly Uint8Array[]);
  return new Promise((resolve, reject) => {
    const q = pipelined(text, copies, (err, res) => {
      if (err) reject(err);
      else resolve((Array.isArray(res) ? res : [res]) as pg.QueryResult[]);
    });
    (client as unknown as { query: (q: unknown) => unknown }).query(q);
  });
}

/** Whether `client` is a node-postgres client (pipelinedQuery needs its protocol connection; the sandbox's is not one). */
export function isWireClient(client: ClientBase): boolean {
  return client instanceof pg.Client;
}
