import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { freePort, getTestServer } from './postgres';

/**
 * A throwaway PgBouncer (Debian's `pgbouncer` package, installed by .ci/run) in front of
 * the throwaway PostgreSQL of test/helpers/postgres.ts, as Neon's pooled endpoint is: its
 * own port, a config file and an auth file in a temp dir, `pool_mode` transaction (Neon's)
 * or session, a small `default_pool_size`, and no `ignore_startup_parameters` (so a
 * client that sends `options` is refused, as Neon's pooler refuses it). Stopped with
 * stop(), and at process exit whatever happens.
 */
export interface PgBouncer {
  readonly port: number;
  readonly mode: 'transaction' | 'session';
  /** `url` (a database on the test server) rewritten to go through this PgBouncer. */
  urlFor(url: string): string;
  /** The PgBouncer log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  mode: 'transaction' | 'session';
  /** Server connections per database/user pair; default 10 (the issue's setup). */
  poolSize?: number;
  /** Extra users (besides the test server's) that may log in; trust auth, as the test server. */
  users?: string[];
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** The pgbouncer binary (Debian puts it in /usr/sbin, often not on a user's PATH). */
export function findPgBouncer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, 'pgbouncer');
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

export async function startPgBouncer(opts: PgBouncerOptions): Promise<PgBouncer> {
  const bin = findPgBouncer();
  if (!bin) throw new Error('pgbouncer not found: install it (apt-get install -y pgbouncer; .ci/run does).');
  const server = await getTestServer();
  const admin = new URL(server.adminUrl);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-pgbouncer-'));
  const port = await freePort();
  const users = new Set([decodeURIComponent(admin.username || 'postgres'), ...(opts.users ?? [])]);
  const password = admin.password ? decodeURIComponent(admin.password) : '';
  // trust: no check here (the test server trusts too); PgBouncer still wants every user in the auth file.
  fs.writeFileSync(path.join(dir, 'userlist.txt'), [...users].map((u) => `"${u}" "${password}"`).join('\n') + '\n');
  const logFile = path.join(dir, 'pgbouncer.log');
  fs.writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${admin.hostname} port=${admin.port || '5432'}${password ? ` password=${password}` : ''}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      `auth_type = ${password ? 'plain' : 'trust'}`,
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `pool_mode = ${opts.mode}`,
      `default_pool_size = ${opts.poolSize ?? 10}`,
      'max_client_conn = 500',
      `logfile = ${logFile}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      'server_idle_timeout = 600',
      '',
    ].join('\n'),
  );
  if (isRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  // PgBouncer refuses to run as root; -u drops to the postgres OS user (as the test server runs).
  const child: ChildProcess = spawn(bin, [...(isRoot ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let exited = false;
  child.on('exit', () => (exited = true));
  const readLog = (): string => {
    try {
      return fs.readFileSync(logFile, 'utf8') + stderr;
    } catch {
      return stderr;
    }
  };
  const kill = (): void => {
    if (!exited) child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', kill);
  const urlFor = (url: string): string => {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(port);
    return u.toString();
  };
  // Bounded wait for it to accept a login and pass a statement through.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      kill();
      throw new Error(`pgbouncer exited at startup: ${readLog()}`);
    }
    const c = new pg.Client({ connectionString: urlFor(server.adminUrl), connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      break;
    } catch (e) {
      await c.end().catch(() => undefined);
      if (Date.now() > deadline) {
        kill();
        throw new Error(`pgbouncer on port ${port} did not accept a connection within 15 s (${e instanceof Error ? e.message : String(e)}): ${readLog()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    mode: opts.mode,
    urlFor,
    log: readLog,
    async stop() {
      process.removeListener('exit', kill);
      if (!exited) {
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
        if (!exited) child.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Other clients of the pool, as on a shared pooled endpoint: `n` connections through the
 * pooler, each looping `select pg_sleep(ms)` until stop(). They keep the pool's server
 * connections busy and changing hands, so any session state a client leaves behind lands
 * on a connection another client uses next.
 */
export function noisyClients(url: string, n: number, sleepSeconds = 0.02): { stop(): Promise<void>; queries(): number; errors(): string[] } {
  let running = true;
  let count = 0;
  const errors: string[] = [];
  const loops = Array.from({ length: n }, async () => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      while (running) {
        await c.query('select pg_sleep($1)', [sleepSeconds]);
        count++;
      }
    } catch (e) {
      // Kept for the caller (a noisy client the pooler refused is a finding); the loop ends.
      if (running) errors.push(e instanceof Error ? e.message : String(e));
    } finally {
      await c.end().catch(() => undefined);
    }
  });
  return {
    queries: () => count,
    errors: () => [...errors],
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
