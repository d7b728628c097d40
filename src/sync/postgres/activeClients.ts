import * as net from 'node:net';
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { SyncError } from '../errors';

/**
 * The connections of a pool that are checked out (a statement may be in flight on them),
 * so a Stop can cut those statements off instead of waiting for them: a cancel request to
 * the server (which ends a lock wait or a long statement at once), then the socket is
 * destroyed (so the client does not wait on a server that no longer answers). The server
 * rolls back the open transaction when the session ends.
 *
 * Tracked through the pool's acquire/release events, so every user of the pool (apply,
 * initial load, lease heartbeat) is covered. A pool without events (the sandbox) tracks nothing.
 */
export class ActiveClients {
  private readonly active = new Map<PoolClient, Progress>();
  private timer: NodeJS.Timeout | undefined;
  private readonly watchdogMs: number;

  constructor(private readonly pool: Pool) {
    const o = (pool as unknown as { options?: { watchdogMillis?: unknown } }).options;
    this.watchdogMs = typeof o?.watchdogMillis === 'number' ? o.watchdogMillis : 0;
    if (typeof (pool as { on?: unknown }).on !== 'function') return;
    pool.on('acquire', (c) => {
      this.active.set(c, { at: Date.now(), io: ioCount(c), probing: false });
      this.startWatchdog();
    });
    const drop = (c: PoolClient): void => {
      this.active.delete(c);
      if (this.active.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
    pool.on('release', (_err, c) => drop(c));
    pool.on('remove', (c) => drop(c));
  }

  get size(): number {
    return this.active.size;
  }

  /** Cancels the statements in flight and destroys the connections checked out now. */
  interrupt(reason: string): void {
    for (const c of this.active.keys()) {
      sendCancel(this.pool, c);
      // An AbortError: whoever classifies the failed statement sees the user's Stop, not a fault.
      const err = new Error(reason);
      err.name = 'AbortError';
      destroyConnection(c, err);
    }
  }

  /**
   * Cuts off the statements in flight with `err` (not a Stop: the run failed, e.g. it lost
   * its run lease): a cancel request, then the connections are destroyed, so their
   * statements fail with `err` and the server rolls back their transactions.
   */
  cutOff(err: Error): void {
    for (const c of this.active.keys()) {
      sendCancel(this.pool, c);
      destroyConnection(c, err);
    }
  }

  /**
   * The watchdog: a connection with a statement in flight that has neither received nor
   * sent a byte for watchdogMillis is checked from a connection of its own: a server that
   * does not answer, a session that no longer exists, or a session that is not working on
   * the statement (idle, or waiting for bytes this client cannot get through) means the
   * connection is dead or stalled, and it is cut off with an error that says so and names
   * the server (a 'connection' error: the run's retries take over). A session that is
   * working (a long index build, a lock wait bounded by lock_timeout) is left alone.
   */
  private startWatchdog(): void {
    if (this.timer || this.watchdogMs <= 0) return;
    this.timer = setInterval(() => this.check(), Math.max(50, Math.min(5000, this.watchdogMs / 4)));
    this.timer.unref();
  }

  private check(): void {
    const now = Date.now();
    for (const [c, p] of this.active) {
      const io = ioCount(c);
      if (io !== p.io || !busy(c)) {
        p.io = io;
        p.at = now;
        continue;
      }
      if (p.probing || now - p.at < this.watchdogMs) continue;
      p.probing = true;
      void this.probe(c).then((verdict) => {
        p.probing = false;
        p.at = Date.now();
        if (verdict && this.active.has(c) && ioCount(c) === p.io) destroyConnection(c, verdict);
      });
    }
  }

  /** Undefined when the session is alive and working; else the error to cut it off with. */
  private async probe(c: PoolClient): Promise<SyncError | undefined> {
    const o = (this.pool as unknown as { options: pg.ClientConfig }).options;
    const server = `${String(o.host)}${o.port !== undefined ? `:${o.port}` : ''}`;
    const secs = Math.round(this.watchdogMs / 1000);
    const dead = (why: string): SyncError =>
      new SyncError('connection', `Postgres at ${server} did not answer for ${secs} s (${why}); the connection was cut off.`, {
        setting: 'watchdog_timeout',
        retry: 'auto',
        hint: `Nothing from the interrupted transaction was applied. Check the network to ${server}; a statement that is silent for longer on purpose needs watchdog_timeout=<seconds> in the connection string (default 60).`,
      });
    const { processID } = c as unknown as ClientInternals;
    const limit = Math.max(1000, Math.min(this.watchdogMs, 10_000));
    const probe = new pg.Client({ ...o, connectionTimeoutMillis: limit, query_timeout: limit, application_name: 'delta-neon-sync watchdog' });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      const r = await probe.query<{ me: number; state: string | null; wait: string | null }>(
        `SELECT pg_backend_pid() AS me, a.state, a.wait_event AS wait FROM (SELECT 1) one LEFT JOIN pg_stat_activity a ON a.pid = $1`,
        [processID],
      );
      // Behind a pooler or a proxy that hands out its own process ids (PgBouncer, Neon's
      // proxy), the session cannot be looked up by id: the server answering is all the
      // watchdog can tell, and a silent statement is left to statement_timeout.
      if (r.rows[0]?.me !== (probe as unknown as ClientInternals).processID) return undefined;
      const row = r.rows[0]?.state === undefined || r.rows[0]?.state === null ? undefined : r.rows[0];
      if (!row) return dead(`its session, pid ${String(processID)}, no longer exists on the server`);
      const unsent = (c as unknown as ClientInternals).connection?.stream?.writableLength ?? 0;
      if (row.state !== 'active') return dead(`its session, pid ${String(processID)}, is ${row.state ?? 'gone'}: the statement never reached it or its answer never came back`);
      // Both waiting for the other: the server for bytes, this client for an answer (or to
      // get its bytes out). A COPY whose rows this client is still producing is not that.
      if (row.wait === 'ClientRead' && (unsent > 0 || !producing(c))) return dead(`its session, pid ${String(processID)}, waits for data this client sent or cannot get through`);
      return undefined;
    } catch (e) {
      return dead(`a check from a new connection failed too: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      void probe.end().catch(() => undefined);
    }
  }
}

interface Progress {
  /** When the connection last moved a byte (or was idle). */
  at: number;
  /** Bytes received plus bytes flushed, at `at`. */
  io: number;
  probing: boolean;
}

function ioCount(c: PoolClient): number {
  const s = (c as unknown as ClientInternals).connection?.stream;
  if (!s) return 0;
  return (s.bytesRead ?? 0) + (s.bytesWritten ?? 0) - (s.writableLength ?? 0);
}

/** Whether a statement is in flight on `c` (pg keeps it as _activeQuery; activeQuery is deprecated). */
function busy(c: PoolClient): boolean {
  const q = (c as unknown as { _activeQuery?: unknown })._activeQuery;
  return q !== null && q !== undefined;
}

/** Whether `c`'s statement is a COPY FROM STDIN whose rows this client is still writing. */
function producing(c: PoolClient): boolean {
  const q = (c as unknown as { _activeQuery?: { writable?: unknown; writableEnded?: unknown } | null })._activeQuery;
  return typeof q?.writable === 'boolean' && q.writableEnded === false;
}

interface ClientInternals {
  processID?: number | null;
  secretKey?: number | null;
  connection?: { stream?: { destroy(err?: Error): void; bytesRead?: number; bytesWritten?: number; writableLength?: number } };
}

/** Destroys a client's socket: its pending statement fails with a connection error at once. */
export function destroyConnection(c: PoolClient, err: Error): void {
  (c as unknown as ClientInternals).connection?.stream?.destroy(err);
}

/**
 * Postgres's CancelRequest for the statement running on `c`'s session, over a connection
 * of its own (best effort: no answer is expected, failures are ignored).
 */
function sendCancel(pool: Pool, c: PoolClient): void {
  const { processID, secretKey } = c as unknown as ClientInternals;
  const o = (pool as unknown as { options?: { host?: unknown; port?: unknown } }).options;
  if (typeof processID !== 'number' || typeof secretKey !== 'number' || typeof o?.host !== 'string') return;
  const port = typeof o.port === 'number' ? o.port : Number(o.port ?? 5432);
  const msg = Buffer.alloc(16);
  msg.writeInt32BE(16, 0);
  msg.writeInt32BE(80877102, 4);
  msg.writeInt32BE(processID, 8);
  msg.writeInt32BE(secretKey, 12);
  const sock = o.host.startsWith('/') ? net.connect(`${o.host}/.s.PGSQL.${port}`) : net.connect(port, o.host);
  sock.setTimeout(5000, () => sock.destroy());
  sock.on('error', () => undefined);
  sock.on('connect', () => sock.end(msg));
}
