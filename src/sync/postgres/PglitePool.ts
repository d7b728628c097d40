import { Writable } from 'node:stream';
import type { Pool, PoolClient } from 'pg';
import type { PGlite, QueryOptions, Results } from '@electric-sql/pglite' with { 'resolution-mode': 'import' };
import { exactTypes } from './createPool';

/**
 * The embedded sandbox target: PGlite (Postgres in WASM, in-process) behind the small part
 * of node-postgres's Pool / Client API the target code uses, so initial loads, incremental
 * applies, previews and checkpoints run unchanged on it.
 *
 * Why an adapter and not pglite-socket: COPY FROM STDIN over PGlite's socket server breaks
 * the wire protocol (a known upstream bug). Here COPY goes through PGlite's own API
 * (`COPY ... FROM '/dev/blob'` with the rows as a Blob), in bounded chunks.
 *
 * PGlite has one session: the pool hands out one client at a time (connect() waits for the
 * previous client's release()), so transactions never interleave.
 */

/** COPY text is sent to PGlite in pieces of about this many bytes (memory stays bounded). */
const COPY_FLUSH_BYTES = 8 * 1024 * 1024;

// The OIDs whose parsing must be exact (see exactTypes): int8, numeric, date, timestamps and their arrays.
const EXACT_OIDS = [20, 1016, 1700, 1231, 1082, 1182, 1114, 1115, 1184, 1185];

interface PgLikeResult {
  rows: Record<string, unknown>[];
  rowCount: number;
  command: string;
  fields: Array<{ name: string; dataTypeID: number }>;
}

/** pg-copy-streams' query object: a Writable with the COPY statement in `text`. */
function isCopyQuery(q: unknown): q is Writable & { text: string } {
  return q instanceof Writable && typeof (q as { text?: unknown }).text === 'string';
}

/** Serializes a parameter the way node-postgres does (bigint, Buffer, arrays, JSON objects). */
function prepareValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return v;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return arrayLiteral(v);
  if (typeof v === 'object') return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  return v;
}

function arrayLiteral(items: unknown[]): string {
  const parts = items.map((item) => {
    if (item === null || item === undefined) return 'NULL';
    if (Array.isArray(item)) return arrayLiteral(item);
    const s = String(prepareValue(item));
    return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  });
  return `{${parts.join(',')}}`;
}

class PgliteClient {
  constructor(
    private readonly db: PGlite,
    private readonly onRelease: () => void,
    private readonly options: QueryOptions,
  ) {}

  query(text: unknown, values?: unknown[]): unknown {
    if (isCopyQuery(text)) return this.copyStream(text.text);
    if (typeof text === 'object' && text !== null && 'text' in text) {
      const cfg = text as { text: string; values?: unknown[] };
      return this.run(cfg.text, cfg.values);
    }
    return this.run(String(text), values);
  }

  private async run(sql: string, values?: unknown[]): Promise<PgLikeResult> {
    if (values === undefined || values.length === 0) {
      // Simple-query protocol, like pg without parameters: several statements allowed; pg returns the last result.
      const results = await this.db.exec(sql, this.options);
      return toPgResult(results[results.length - 1]);
    }
    return toPgResult(await this.db.query(sql, values.map(prepareValue), this.options));
  }

  /** A Writable that collects COPY text and loads it into PGlite chunk by chunk, split at row ends. */
  private copyStream(copySql: string): Writable {
    const sql = copySql.replace(/FROM\s+STDIN\s*$/i, "FROM '/dev/blob'");
    if (sql === copySql) throw new Error(`Only COPY ... FROM STDIN is supported on the sandbox: ${copySql}`);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (all: boolean): Promise<void> => {
      if (pendingBytes === 0) return;
      const buf = Buffer.concat(pending);
      const cut = all ? buf.length : buf.lastIndexOf(0x0a) + 1;
      if (cut === 0) return;
      const rest = buf.subarray(cut);
      pending = rest.length > 0 ? [Buffer.from(rest)] : [];
      pendingBytes = rest.length;
      await this.db.query(sql, [], { ...this.options, blob: new Blob([buf.subarray(0, cut)]) });
    };
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes < COPY_FLUSH_BYTES) return cb();
        flush(false).then(() => cb(), cb);
      },
      final: (cb) => {
        flush(true).then(() => cb(), cb);
      },
    });
  }

  release(): void {
    this.onRelease();
  }
}

function toPgResult(r: Results | undefined): PgLikeResult {
  if (!r) return { rows: [], rowCount: 0, command: '', fields: [] };
  const command = (r as { command?: string }).command ?? '';
  const rowCount = (r as { rowCount?: number }).rowCount ?? r.affectedRows ?? r.rows.length;
  return { rows: r.rows as Record<string, unknown>[], rowCount, command, fields: r.fields };
}

export interface SandboxDatabase {
  /** Quacks like a pg Pool for the engine's target code. */
  pool: Pool;
  db: PGlite;
  close(): Promise<void>;
}

/**
 * Opens (or creates) the sandbox database. `dataDir` undefined = in memory; a folder path
 * persists it (the extension keeps it in its global storage, the CLI demo in .delta-sync/).
 */
export async function openSandbox(dataDir?: string): Promise<SandboxDatabase> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = dataDir === undefined ? new PGlite() : new PGlite(dataDir);
  await db.waitReady;
  const parsers: Record<number, (value: string) => unknown> = {};
  for (const oid of EXACT_OIDS) {
    const parse = exactTypes.getTypeParser(oid, 'text') as (v: string) => unknown;
    parsers[oid] = (value: string) => parse(value);
  }
  const options: QueryOptions = { parsers };

  // One session: hand out one client at a time.
  let queue: Promise<void> = Promise.resolve();
  const connect = async (): Promise<PoolClient> => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const previous = queue;
    queue = queue.then(() => released);
    await previous;
    let done = false;
    const client = new PgliteClient(db, () => {
      if (!done) {
        done = true;
        release();
      }
    }, options);
    return client as unknown as PoolClient;
  };
  const pool = {
    connect,
    async query(text: string, values?: unknown[]) {
      const c = await connect();
      try {
        return await (c as unknown as PgliteClient).query(text, values);
      } finally {
        c.release();
      }
    },
    async end() {
      await queue;
    },
    on() {
      return pool;
    },
  };
  return {
    pool: pool as unknown as Pool,
    db,
    async close() {
      await queue;
      await db.close();
    },
  };
}
