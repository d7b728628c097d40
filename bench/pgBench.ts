/**
 * Postgres target benchmark, the comparison on one machine, one server, the same rows:
 *
 *   npx tsx bench/pgBench.ts [rows=1000000] [reps=3] [--order random|sequential] [--ddl seed|pk]
 *                            [--rbr 10000] [--regenerate] [--tsx]
 *
 * Source: a local Delta table (cached under bench/.data/, generated once in a child process):
 *   v0 CREATE (CDF on), v1 WRITE of `rows` customer_profiles rows (src/fixtures/customerProfiles)
 *   in random key order (Delta files are not sorted by key; --order sequential writes them
 *   in key order instead), v2 MERGE of 10% of the keys drawn at random over all of them:
 *   90% updated (upgradedCustomer), 10% deleted, written copy-on-write with cdc files, the
 *   way Spark writes a MERGE.
 * Target: the seed article's table — customer_id VARCHAR(255) PRIMARY KEY, email
 *   VARCHAR(255) UNIQUE, ... (its updated_at column left out, since neither side writes it;
 *   is_active added, since the Delta table has it) — created with the same DDL for every
 *   method (--ddl pk drops the UNIQUE on email).
 * Methods, each repetition (the order of 1 and 2 alternates between repetitions):
 *   1. `psql \copy` of the v1 snapshot exported as CSV (same rows, same order; the export
 *      is not timed) into a fresh table with that DDL: the baseline;
 *   2. the engine's initial load: SyncRunner.run({ mode: 'initial', toVersion: 1 }) of a
 *      mapping onto the pre-created target — reading and decoding the Delta files is
 *      inside the timing; the swap keeps the seed table's UNIQUE constraint (rebuilt on the
 *      new table, also inside the timing);
 *   3. the engine's incremental sync of v2 (SyncRunner, mode 'incremental', default batch
 *      settings) onto the loaded target after VACUUM ANALYZE (as autovacuum would leave it):
 *      reading the Change Data Feed, netting, staging and applying, all timed.
 * Then once, on a target reloaded to v1 and vacuumed the same way:
 *   4. the seed's row-by-row loop on a sample of the same v2 changes (every n-th): one
 *      INSERT ... ON CONFLICT DO UPDATE round trip per upserted row, the deletes as one
 *      `DELETE ... WHERE customer_id = ANY($1)`, all in one transaction committed at the
 *      end, as the seed's foreachBatch does per micro-batch. The statement is prepared
 *      once (psycopg2 sends a new text query each time, which is slower), so this rate is,
 *      if anything, flattering to row-by-row. Reading the changes is not timed here,
 *      whereas the engine's incremental timing includes reading them.
 * Fairness: the server is a throwaway cluster with the server's durability defaults (fsync,
 * full_page_writes, synchronous_commit on); every timed step starts after CHECKPOINT.
 * Correctness: the \copy table and the engine's table are compared row for row (EXCEPT
 * ALL both ways) in the first repetition; the incremental run's counts are checked, and
 * in the first repetition SyncRunner.verify() compares the target with the v2 snapshot.
 * The targets are judged on the faithful configuration only: --order random --ddl seed.
 * The engine runs in a worker process (this file bundled by esbuild, under plain node as
 * the CLI ships; --tsx runs it under tsx), so the peak RSS reported for it is the engine's
 * own and not the bench's CSV export. The engine reads the local Delta table on a worker
 * thread (src/sync/worker/changePlanWorker.ts) in parallel with the database work; when it
 * reads on its calling thread instead (DELTA_NEON_SYNC_READ_THREAD=main), each run also
 * reports the time spent inside the Delta reader's iterators ("reader on the calling
 * thread"), which splits it into reading and the rest.
 * On a local server a row-by-row round trip is ~0.1 ms; against a remote database (the
 * seed's Neon) each costs a network round trip, so row-by-row is far slower there and the
 * "x row-by-row" ratio measured here is the low end.
 */
import { execFileSync, fork, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PoolClient } from 'pg';
import { CUSTOMER_KEY, CUSTOMER_PROFILE_COLUMNS, customerAt, customerId, upgradedCustomer } from '../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../src/fixtures/DeltaTableWriter';
import { mulberry32 as prng } from '../src/fixtures/prng';
import { DeltaTable } from '../src/sync/delta/DeltaTable';
import type { ChangeRow, Row } from '../src/sync/delta/types';
import { parseMapping } from '../src/sync/mapping/loadMapping';
import { createPool } from '../src/sync/postgres/createPool';
import { ensureStateTables } from '../src/sync/postgres/stateTables';
import { openSource } from '../src/sync/open/openSource';
import { SyncRunner } from '../src/sync/run/SyncRunner';
import { mappingTarget } from '../src/sync/open/openTarget';
import type { RunResult } from '../src/sync/ports/reports';
import type { ChangeSource, SourceSnapshot, WorkerSource } from '../src/sync/ports/ChangeSource';
import type { Mapping } from '../src/sync/mapping/mappingSchema';
import { startThrowawayServer } from '../test/helpers/postgres';

type Order = 'random' | 'sequential';
type Ddl = 'seed' | 'pk';

interface Args {
  rows: number;
  reps: number;
  order: Order;
  ddl: Ddl;
  /** Changes in the row-by-row sample. */
  rbr: number;
  regenerate: boolean;
  /** Child mode: write the source table there. */
  generateInto?: string;
  /** Child mode: run the engine for the parent (the server URL, then the source table folder). */
  engineWorker?: { url: string; source: string };
  /** Run the engine worker under tsx instead of bundled under plain node. */
  tsx: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rows: 1_000_000, reps: 3, order: 'random', ddl: 'seed', rbr: 10_000, regenerate: false, tsx: false };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--order') {
      const v = value();
      if (v !== 'random' && v !== 'sequential') throw new Error('--order must be random or sequential');
      args.order = v;
    } else if (a === '--ddl') {
      const v = value();
      if (v !== 'seed' && v !== 'pk') throw new Error('--ddl must be seed or pk');
      args.ddl = v;
    } else if (a === '--rbr') args.rbr = Number(value());
    else if (a === '--regenerate') args.regenerate = true;
    else if (a === '--generate-into') args.generateInto = value();
    else if (a === '--engine-worker') args.engineWorker = { url: value(), source: value() };
    else if (a === '--tsx') args.tsx = true;
    else if (a.startsWith('--')) throw new Error(`Unknown argument ${a}`);
    else positional.push(a);
  }
  if (positional[0] !== undefined) args.rows = Number(positional[0]);
  if (positional[1] !== undefined) args.reps = Number(positional[1]);
  if (!Number.isSafeInteger(args.rows) || args.rows < 100) throw new Error('rows must be an integer >= 100');
  if (!Number.isSafeInteger(args.reps) || args.reps < 1) throw new Error('reps must be a positive integer');
  if (!Number.isSafeInteger(args.rbr) || args.rbr < 10) throw new Error('--rbr must be an integer >= 10');
  return args;
}

const changesFor = (rows: number): number => Math.min(100_000, Math.floor(rows / 10));
const deletesFor = (rows: number): number => Math.floor(changesFor(rows) / 10);

// ---------------------------------------------------------------- the source Delta table

/** 1..n shuffled (Fisher-Yates); 4 bytes a row, so 1M customers cost 4 MB, not 1M objects. */
function shuffled(n: number, seed: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i + 1;
  const next = prng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = a[i] as number;
    a[i] = a[j] as number;
    a[j] = t;
  }
  return a;
}

/** Child: v0 create, v1 the customers (in `order`), v2 MERGE of random updates + deletes. */
async function generate(dir: string, rows: number, order: Order): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const t0 = performance.now();
  const w = await DeltaTableWriter.create(tmp, {
    columns: [...CUSTOMER_PROFILE_COLUMNS],
    configuration: { 'delta.enableChangeDataFeed': 'true' },
    name: 'customer_profiles',
  });
  const loadOrder = order === 'random' ? shuffled(rows, 1) : undefined;
  await w.append(
    (function* (): Generator<Row> {
      for (let p = 0; p < rows; p++) yield customerAt(loadOrder ? (loadOrder[p] as number) : p + 1);
    })(),
  );
  const t1 = performance.now();
  const picked = shuffled(rows, 2).subarray(0, changesFor(rows));
  const nUpdates = changesFor(rows) - deletesFor(rows);
  const updates: Row[] = [];
  for (let j = 0; j < nUpdates; j++) updates.push(upgradedCustomer(customerAt(picked[j] as number)));
  const deletes: string[] = [];
  for (let j = nUpdates; j < picked.length; j++) deletes.push(customerId(picked[j] as number));
  await w.merge(CUSTOMER_KEY, updates, { deleteKeys: deletes });
  fs.renameSync(tmp, dir);
  console.log(
    `generated ${dir}: v1 ${rows} rows (${order} key order) in ${((t1 - t0) / 1000).toFixed(1)} s, ` +
      `v2 MERGE ${updates.length} updates + ${deletes.length} deletes in ${((performance.now() - t1) / 1000).toFixed(1)} s`,
  );
}

/** The cached source table for (rows, order); generated in a child so its memory is not ours. */
function ensureSourceTable(args: Args): string {
  const dataDir = path.join(__dirname, '.data');
  fs.mkdirSync(dataDir, { recursive: true });
  // Bump the suffix when generate() changes.
  const dir = path.join(dataDir, `pg_customers_${args.rows}_${args.order}_v1`);
  if (args.regenerate) fs.rmSync(dir, { recursive: true, force: true });
  if (!fs.existsSync(path.join(dir, '_delta_log', '00000000000000000002.json'))) {
    console.log(`generating the ${args.rows}-row source Delta table (cached for later runs)...`);
    const child = spawnSync(process.execPath, [...process.execArgv, __filename, String(args.rows), '--order', args.order, '--generate-into', dir], { stdio: 'inherit' });
    if (child.status !== 0) throw new Error(`generating ${dir} failed (exit ${String(child.status)})`);
  }
  return dir;
}

// ---------------------------------------------------------------- values as text

/** Microseconds since epoch -> timestamptz text with all six fractional digits. */
function timestampText(us: bigint): string {
  const ms = us / 1000n;
  const iso = new Date(Number(ms)).toISOString(); // ...T12:34:56.789Z
  return `${iso.slice(0, -1)}${String(us - ms * 1000n).padStart(3, '0')}+00`;
}

function csvText(v: string): string {
  // An empty unquoted field is NULL in CSV; an empty string must be quoted.
  return v === '' || /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

const CSV_COLUMNS = CUSTOMER_PROFILE_COLUMNS.map((c) => c.name);

function csvLine(r: Row): string {
  const out: string[] = [];
  for (const name of CSV_COLUMNS) {
    const v = r[name];
    if (v === null || v === undefined) out.push('');
    else if (typeof v === 'bigint') out.push(timestampText(v)); // last_purchase_date is the only bigint column
    else if (typeof v === 'boolean') out.push(v ? 't' : 'f');
    else if (typeof v === 'number') out.push(String(v)); // shortest round-trip form, exact for float8
    else if (typeof v === 'string') out.push(csvText(v));
    else throw new Error(`unexpected value in ${name}`);
  }
  return out.join(',') + '\n';
}

// ---------------------------------------------------------------- helpers

const rate = (rows: number, ms: number): number => (rows / ms) * 1000;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const mb = (b: number | undefined): string => `${Math.round((b ?? 0) / 2 ** 20)} MB`;
const loadAvg = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

function targetDdl(name: string, ddl: Ddl): string {
  return `CREATE TABLE public.${name} (
    customer_id VARCHAR(255) PRIMARY KEY,
    full_name TEXT,
    email VARCHAR(255)${ddl === 'seed' ? ' UNIQUE' : ''},
    segment VARCHAR(100),
    last_purchase_date TIMESTAMP WITH TIME ZONE,
    total_spend NUMERIC(10, 2),
    propensity_score FLOAT,
    is_active BOOLEAN
  )`;
}

async function constraintsOf(c: PoolClient, table: string): Promise<string> {
  const r = await c.query<{ d: string }>(
    `SELECT string_agg(contype::text || ':' || pg_get_constraintdef(oid), '; ' ORDER BY contype, conname) AS d FROM pg_constraint WHERE conrelid = $1::regclass`,
    [table],
  );
  return r.rows[0]?.d ?? '';
}

async function currentLsn(c: PoolClient): Promise<string> {
  return (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l as string;
}

async function walMbSince(c: PoolClient, lsn: string): Promise<number> {
  const r = await c.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::text AS d', [lsn]);
  return Number(r.rows[0]?.d ?? 0) / 1e6;
}

async function count(c: PoolClient, sql: string): Promise<number> {
  return Number((await c.query<{ n: string }>(sql)).rows[0]?.n ?? NaN);
}

// ---------------------------------------------------------------- the engine, in its own process

/** The mapping every engine run uses: the pre-created seed table, with the seed's column types. */
function benchMapping(sourceDir: string): Mapping {
  return parseMapping({
    name: 'bench',
    source: { type: 'delta', path: sourceDir },
    target: { connection: 'bench', table: 'customer_profiles' },
    key: ['customer_id'],
    columns: { types: { customer_id: 'varchar(255)', email: 'varchar(255)', segment: 'varchar(100)', propensity_score: 'double precision' } },
  });
}

type EngineOp = 'initial' | 'incremental';

/** How the engine's read time shows: 0 when it read on its worker thread (in parallel, not separable). */
function readerNote(...ms: number[]): string {
  return ms.every((x) => x === 0) ? 'Delta read on the worker thread, in parallel' : `reader on the calling thread ${ms.join(' / ')} ms of it`;
}

/**
 * The source with a stopwatch: the time spent inside its row iterators (reading and
 * decoding the Delta files), so a run's time splits into reading and the rest (netting,
 * encoding, COPY and SQL). Approximate: while the reader awaits file I/O, COPY data
 * already written may still be flowing to the server.
 */
class TimedSource implements ChangeSource {
  readMs = 0;
  constructor(private readonly inner: ChangeSource) {}
  get name(): string {
    return this.inner.name;
  }
  latestVersion(): Promise<number> {
    return this.inner.latestVersion();
  }
  async snapshot(version?: number): Promise<SourceSnapshot> {
    const snap = await this.inner.snapshot(version);
    return { ...snap, rows: (opts) => this.timed(snap.rows(opts)) };
  }
  commitTimestamp(version: number): Promise<number> {
    return this.inner.commitTimestamp(version);
  }
  /** The engine reads changes on a worker thread when it can (its time is then not in readMs). */
  workerSource(): WorkerSource | undefined {
    return this.inner.workerSource?.();
  }
  changes(start: number, end: number, opts?: { batchSize?: number; signal?: AbortSignal }): AsyncIterable<ChangeRow[]> {
    return this.timed(this.inner.changes(start, end, opts));
  }
  private async *timed<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
    const it = source[Symbol.asyncIterator]();
    for (;;) {
      const s = performance.now();
      const r = await it.next();
      this.readMs += performance.now() - s;
      if (r.done) return;
      yield r.value;
    }
  }
}

interface EngineReply {
  op: EngineOp;
  ms: number;
  result: Pick<RunResult, 'rowsRead' | 'inserted' | 'updated' | 'deleted' | 'unchanged' | 'batches' | 'toVersion'>;
  /** Of `ms`, the time inside the Delta reader's iterators. */
  readMs: number;
  /** The worker's peak RSS so far (kernel maxRSS), bytes. */
  maxRss: number;
  /** JS heap in use after a full GC once the run is over (bytes): what the run left behind. */
  heapAfterGc: number;
  error?: string;
}

/**
 * Child: runs SyncRunner on request, so that its peak RSS is the engine's alone (plus
 * Node's baseline), not the bench's CSV export and samples. The timing is taken here, so
 * it does not include the IPC round trip.
 */
async function engineWorker(url: string, sourceDir: string): Promise<void> {
  const pool = createPool(url, { max: 4 });
  const mapping = benchMapping(sourceDir);
  const source = new TimedSource(await openSource(mapping.source));
  // The engine's debug lines (per-batch step timings) go to the bench's output.
  const logger = { debug: (m: string) => console.log(`    worker: ${m}`), info: () => undefined, warn: (m: string) => console.log(`    worker warning: ${m}`), error: (m: string) => console.log(`    worker error: ${m}`) };
  const runner = new SyncRunner(mapping, source, mappingTarget(pool, mapping.target, logger), logger);
  const send = (m: EngineReply | { ready: true }): void => {
    process.send?.(m);
  };
  process.on('message', (m: unknown) => {
    const op = (m as { op?: unknown }).op;
    if (op === 'exit') {
      void pool.end().then(() => process.exit(0));
      return;
    }
    if (op !== 'initial' && op !== 'incremental') return;
    void (async () => {
      source.readMs = 0;
      const s = performance.now();
      const empty = { rowsRead: 0, inserted: 0, updated: 0, deleted: 0, unchanged: 0, batches: 0, toVersion: -1 };
      try {
        const r = await runner.run(op === 'initial' ? { mode: 'initial', toVersion: 1 } : { mode: 'incremental' });
        const ms = Math.round(performance.now() - s);
        const { rowsRead, inserted, updated, deleted, unchanged, batches, toVersion } = r;
        (globalThis as { gc?: () => void }).gc?.();
        send({ heapAfterGc: process.memoryUsage().heapUsed, op, ms, readMs: Math.round(source.readMs), result: { rowsRead, inserted, updated, deleted, unchanged, batches, toVersion }, maxRss: process.resourceUsage().maxRSS * 1024 });
      } catch (e) {
        send({ heapAfterGc: 0, op, ms: 0, readMs: 0, result: empty, maxRss: process.resourceUsage().maxRSS * 1024, error: e instanceof Error ? e.stack ?? e.message : String(e) });
      }
    })();
  });
  send({ ready: true });
}

/** The parent's handle on the worker. */
class EngineWorker {
  private pending: ((r: EngineReply) => void) | undefined;
  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: unknown) => {
      if ((m as { ready?: unknown }).ready) return;
      const p = this.pending;
      this.pending = undefined;
      p?.(m as EngineReply);
    });
  }

  static async start(args: Args, url: string, sourceDir: string): Promise<EngineWorker> {
    const argv = ['--engine-worker', url, sourceDir];
    const child = args.tsx ? fork(__filename, argv, { execArgv: [...process.execArgv, '--expose-gc'] }) : fork(await bundle(), argv, { execArgv: ['--expose-gc'] });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`engine worker exited (${String(code)}) before it was ready`)));
    });
    return new EngineWorker(child);
  }

  run(op: EngineOp): Promise<EngineReply> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`engine worker exited (${String(code)}) during ${op}`));
      this.child.once('exit', onExit);
      this.pending = (r) => {
        this.child.off('exit', onExit);
        if (r.error) reject(new Error(`engine ${op} failed in the worker: ${r.error}`));
        else resolve(r);
      };
      this.child.send({ op });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ op: 'exit' });
    await gone;
  }
}

/**
 * This file bundled for plain `node`, the way the CLI ships (tsx's loader adds ~40 MB of
 * RSS); npm packages stay external and load from node_modules. Rebuilt every run: it is quick.
 */
async function bundle(): Promise<string> {
  const esbuild = await import('esbuild');
  const outfile = path.join(__dirname, '.data', 'pgBench.bundle.cjs');
  await esbuild.build({ entryPoints: [__filename], outfile, bundle: true, platform: 'node', format: 'cjs', target: 'node20', packages: 'external', logLevel: 'warning' });
  // The engine reads a Change Data Feed on a worker thread whose script sits next to its bundle (as dist/ ships it).
  await esbuild.build({
    entryPoints: [path.join(__dirname, '..', 'src', 'sync', 'worker', 'changePlanWorkerMain.ts')],
    outfile: path.join(__dirname, '.data', 'changePlanWorker.js'),
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', packages: 'external', logLevel: 'warning',
  });
  return outfile;
}

// ---------------------------------------------------------------- the benchmark

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.generateInto) {
    await generate(args.generateInto, args.rows, args.order);
    return;
  }
  if (args.engineWorker) {
    await engineWorker(args.engineWorker.url, args.engineWorker.source);
    return;
  }
  const t0 = Date.now();
  const N = args.rows;
  const CHANGES = changesFor(N);
  const DELETES = deletesFor(N);
  const faithful = args.order === 'random' && args.ddl === 'seed';
  const sourceDir = ensureSourceTable(args);

  const server = await startThrowawayServer({ fast: false });
  const url = server.adminUrl;
  const pool = createPool(url, { max: 4 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-bench-'));
  fs.chmodSync(tmp, 0o755);
  let held: PoolClient | undefined;
  let worker: EngineWorker | undefined;
  try {
    const c = await pool.connect();
    held = c;
    const setting = async (name: string): Promise<string> => (await c.query<Record<string, string>>(`SHOW ${name}`)).rows[0]?.[name] ?? '?';
    console.log(
      `PostgreSQL ${await setting('server_version')} (fsync=${await setting('fsync')}, full_page_writes=${await setting('full_page_writes')}, ` +
        `synchronous_commit=${await setting('synchronous_commit')}, shared_buffers=${await setting('shared_buffers')}, max_wal_size=${await setting('max_wal_size')}); ` +
        `${execFileSync('psql', ['--version'], { encoding: 'utf8' }).trim()}; ${os.cpus().length} cores`,
    );
    console.log(
      `configuration: ${args.order} key order, ${args.ddl === 'seed' ? 'seed DDL (PK customer_id + UNIQUE email)' : 'PK only'} ` +
        `${faithful ? '[the faithful one: targets are judged on it]' : '[NOT the faithful configuration: targets are not judged on it]'}; ` +
        `${fmt(N)} rows, ${fmt(CHANGES)} changes (${fmt(CHANGES - DELETES)} updates + ${fmt(DELETES)} deletes at random keys), ${args.reps} repetitions; ` +
        `source ${sourceDir}; load average ${loadAvg()}`,
    );
    await ensureStateTables(c);

    // The CSV for \copy: the v1 snapshot as the reader returns it (same rows, same order). Not timed.
    const csv = path.join(tmp, 'customers.csv');
    let t = Date.now();
    const table = await DeltaTable.open(sourceDir);
    {
      const fd = fs.openSync(csv, 'w');
      let n = 0;
      for await (const batch of (await table.snapshot({ version: 1 })).rows({ batchSize: 10_000 })) {
        let s = '';
        for (const r of batch) s += csvLine(r);
        fs.writeSync(fd, s);
        n += batch.length;
      }
      fs.closeSync(fd);
      if (n !== N) throw new Error(`snapshot v1 has ${n} rows, expected ${N}`);
    }
    const csvMs = Date.now() - t;

    // The v2 changes as the seed's foreachBatch sees them (insert/update_postimage rows
    // upserted, delete rows deleted); every n-th kept as the row-by-row sample. Reading the
    // whole CDF alone is timed, to show how much of the engine's incremental time is reading.
    const every = Math.max(1, Math.round(CHANGES / args.rbr));
    const sampleUpserts: Row[] = [];
    const sampleDeletes: string[] = [];
    let seenUp = 0;
    let seenDel = 0;
    let cdfRows = 0;
    t = Date.now();
    for await (const batch of table.changes({ startingVersion: 2, endingVersion: 2 }, { batchSize: 10_000 })) {
      cdfRows += batch.length;
      for (const ch of batch) {
        if (ch.changeType === 'insert' || ch.changeType === 'update_postimage') {
          if (seenUp++ % every === 0) sampleUpserts.push(ch.values);
        } else if (ch.changeType === 'delete') {
          if (seenDel++ % every === 0) sampleDeletes.push(ch.values.customer_id as string);
        }
      }
    }
    const cdfMs = Date.now() - t;
    if (seenUp !== CHANGES - DELETES || seenDel !== DELETES) throw new Error(`v2 CDF has ${seenUp} upserts and ${seenDel} deletes, expected ${CHANGES - DELETES} and ${DELETES}`);
    console.log(`not timed: CSV export ${csvMs} ms (${fmt(fs.statSync(csv).size / 1e6)} MB); v2 CDF read alone ${cdfMs} ms (${fmt(cdfRows)} change rows)`);

    // The engine: a mapping onto the pre-created seed table (its types, so the swapped-in table is the seed's too).
    // The parent's runner only verifies (read-only); the timed runs happen in the worker.
    const mapping = benchMapping(sourceDir);
    const runner = new SyncRunner(mapping, await openSource(mapping.source), mappingTarget(pool, mapping.target));
    worker = await EngineWorker.start(args, url, sourceDir);
    const engine = worker;
    await c.query(targetDdl('customer_profiles', args.ddl));
    const expectedConstraints = await constraintsOf(c, 'customer_profiles');

    const copyMs: number[] = [];
    const loadMs: number[] = [];
    const incMs: number[] = [];
    const incWal: number[] = [];
    let lastInc: EngineReply['result'] | undefined;
    let engineRss = 0;
    const loadReadMs: number[] = [];
    const incReadMs: number[] = [];

    const copy = async (rep: number, keep: boolean): Promise<void> => {
      await c.query('DROP TABLE IF EXISTS customer_profiles_copy');
      await c.query(targetDdl('customer_profiles_copy', args.ddl));
      await c.query('CHECKPOINT');
      const s = Date.now();
      execFileSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy customer_profiles_copy FROM '${csv}' WITH (FORMAT csv)`], { stdio: 'pipe' });
      copyMs.push(Date.now() - s);
      console.log(`  rep ${rep + 1}: \\copy ${copyMs.at(-1)} ms (load average ${loadAvg()})`);
      if (!keep) await c.query('DROP TABLE customer_profiles_copy');
    };

    const load = async (label: string): Promise<number> => {
      await c.query('CHECKPOINT');
      const { result: r, ms, readMs, maxRss, heapAfterGc } = await engine.run('initial');
      loadReadMs.push(readMs);
      engineRss = Math.max(engineRss, maxRss);
      if (r.rowsRead !== N || r.inserted !== N) throw new Error(`initial load read ${r.rowsRead} and loaded ${r.inserted} rows, expected ${N}`);
      const cons = await constraintsOf(c, 'customer_profiles');
      if (cons !== expectedConstraints) throw new Error(`after the swap the target has constraints [${cons}], expected [${expectedConstraints}]`);
      console.log(`  ${label}: engine initial load ${ms} ms (${readerNote(readMs)}; worker peak RSS so far ${mb(maxRss)}, heap after GC ${mb(heapAfterGc)}) (load average ${loadAvg()})`);
      // As autovacuum would leave a loaded table before the next sync; not timed.
      await c.query('VACUUM ANALYZE customer_profiles');
      return ms;
    };

    const incremental = async (rep: number, verify: boolean): Promise<void> => {
      await c.query('CHECKPOINT');
      const lsn = await currentLsn(c);
      const { result: r, ms, readMs, maxRss, heapAfterGc } = await engine.run('incremental');
      incReadMs.push(readMs);
      engineRss = Math.max(engineRss, maxRss);
      incMs.push(ms);
      incWal.push(await walMbSince(c, lsn));
      if (r.updated !== CHANGES - DELETES || r.deleted !== DELETES || r.inserted !== 0 || r.toVersion !== 2) {
        throw new Error(`incremental: ${r.updated} updated, ${r.deleted} deleted, ${r.inserted} inserted up to v${r.toVersion}; expected ${CHANGES - DELETES}, ${DELETES}, 0 up to v2`);
      }
      const left = await count(c, 'SELECT count(*) AS n FROM customer_profiles');
      if (left !== N - DELETES) throw new Error(`after the incremental sync the target has ${left} rows, expected ${N - DELETES}`);
      lastInc = r;
      let verified = '';
      if (verify) {
        const v = await runner.verify();
        if (!v.equal) throw new Error(`verify after the incremental sync: ${v.missing} missing, ${v.differing} differing, ${v.extra} extra`);
        verified = '; verify(): target equals the v2 snapshot';
      }
      console.log(
        `  rep ${rep + 1}: engine incremental ${incMs.at(-1)} ms (${readerNote(readMs)}; worker peak RSS so far ${mb(maxRss)}, heap after GC ${mb(heapAfterGc)}), ${r.batches} batch(es), ${fmt(r.rowsRead)} change rows read, ` +
          `WAL ${fmt(incWal.at(-1) as number)} MB${verified} (load average ${loadAvg()})`,
      );
    };

    for (let rep = 0; rep < args.reps; rep++) {
      if (rep % 2 === 0) {
        await copy(rep, rep === 0);
        loadMs.push(await load(`rep ${rep + 1}`));
        if (rep === 0) {
          // The same rows by both paths: compare the tables row for row (not timed).
          const diff = await count(
            c,
            `SELECT (SELECT count(*) FROM (SELECT * FROM customer_profiles EXCEPT ALL SELECT * FROM customer_profiles_copy) a)
                  + (SELECT count(*) FROM (SELECT * FROM customer_profiles_copy EXCEPT ALL SELECT * FROM customer_profiles) b) AS n`,
          );
          if (diff !== 0) throw new Error(`the engine's table and the \\copy table differ in ${diff} rows`);
          console.log(`  rep 1: the engine's table equals the \\copy table row for row (${fmt(N)} rows)`);
          await c.query('DROP TABLE customer_profiles_copy');
        }
        await incremental(rep, rep === 0);
      } else {
        loadMs.push(await load(`rep ${rep + 1}`));
        await incremental(rep, false);
        await copy(rep, false);
      }
    }

    // Row by row on a target in the same state as before each incremental run.
    const reloadMs = await load('before row-by-row');
    const sql = `INSERT INTO customer_profiles (customer_id, full_name, email, segment, last_purchase_date, total_spend, propensity_score, is_active)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (customer_id) DO UPDATE SET full_name = EXCLUDED.full_name, email = EXCLUDED.email, segment = EXCLUDED.segment,
                   last_purchase_date = EXCLUDED.last_purchase_date, total_spend = EXCLUDED.total_spend,
                   propensity_score = EXCLUDED.propensity_score, is_active = EXCLUDED.is_active`;
    const param = (v: Row[string]): string | number | boolean | null => {
      if (v === null || v === undefined) return null;
      if (typeof v === 'bigint') return timestampText(v);
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      throw new Error('unexpected value type');
    };
    await c.query('CHECKPOINT');
    t = Date.now();
    await c.query('BEGIN');
    let upserted = 0;
    for (const r of sampleUpserts) {
      const res = await c.query({ name: 'rbr_upsert', text: sql, values: CSV_COLUMNS.map((name) => param(r[name])) });
      upserted += res.rowCount ?? 0;
    }
    const del = await c.query('DELETE FROM customer_profiles WHERE customer_id = ANY($1)', [sampleDeletes]);
    await c.query('COMMIT');
    const rbrMs = Date.now() - t;
    const rbrN = sampleUpserts.length + sampleDeletes.length;
    if (upserted !== sampleUpserts.length || del.rowCount !== sampleDeletes.length) {
      throw new Error(`row-by-row: ${upserted} upserted, ${String(del.rowCount)} deleted; expected ${sampleUpserts.length} and ${sampleDeletes.length}`);
    }
    console.log(`  row-by-row: ${fmt(sampleUpserts.length)} upserts + ${fmt(sampleDeletes.length)} deletes in ${rbrMs} ms (load average ${loadAvg()})`);
    const size = (await c.query<{ t: string; i: string }>(`SELECT pg_size_pretty(pg_table_size('customer_profiles')) AS t, pg_size_pretty(pg_indexes_size('customer_profiles')) AS i`)).rows[0];
    c.release();
    held = undefined;

    const copyRate = rate(N, median(copyMs));
    const loadRate = rate(N, median(loadMs));
    const incRate = rate(CHANGES, median(incMs));
    const rbrRate = rate(rbrN, rbrMs);
    const lines: Array<[string, number, string]> = [
      [`psql \\copy CSV -> the table (median of ${copyMs.length})`, copyRate, `${copyMs.join(' / ')} ms`],
      [`engine initial load from Delta (median of ${loadMs.length})`, loadRate, `${loadMs.join(' / ')} ms, ${readerNote(...loadReadMs.slice(0, loadMs.length))} (+ ${reloadMs} ms before row-by-row, not in the median)`],
      [`engine incremental ${fmt(CHANGES)} changes (median of ${incMs.length})`, incRate, `${incMs.join(' / ')} ms, ${readerNote(...incReadMs)}`],
      [`row-by-row ON CONFLICT, 1 txn (${fmt(rbrN)} sample)`, rbrRate, `${rbrMs} ms; ${fmt(CHANGES)} changes would take ~${Math.round(CHANGES / rbrRate)} s`],
    ];
    console.log('');
    console.log(`target ${size?.t} + indexes ${size?.i}; constraints ${expectedConstraints}`);
    console.log(`last incremental: ${fmt(lastInc?.updated ?? 0)} updated, ${fmt(lastInc?.deleted ?? 0)} deleted, ${fmt(lastInc?.unchanged ?? 0)} unchanged; WAL median ${fmt(median(incWal))} MB`);
    console.log(`${'method'.padEnd(50)} ${'rows/s'.padStart(9)}  ${'vs \\copy'.padStart(8)}  ${'vs row-by-row'.padStart(13)}  detail`);
    for (const [name, r, detail] of lines) {
      console.log(`${name.padEnd(50)} ${fmt(r).padStart(9)}  ${(r / copyRate).toFixed(2).padStart(7)}x  ${(r / rbrRate).toFixed(1).padStart(12)}x  ${detail}`);
    }
    console.log(
      `peak RSS: engine worker (${args.tsx ? 'tsx' : 'bundled, plain node'}; every initial load and incremental run) ${mb(engineRss)}; ` +
        `bench process (CSV export, CDF sample, row-by-row) ${mb(process.resourceUsage().maxRSS * 1024)}`,
    );
    console.log(
      `per repetition (each engine run against the \\copy of the same repetition): ` +
        copyMs.map((cm, i) => `rep ${i + 1}: initial ${(cm / (loadMs[i] as number)).toFixed(2)}x, incremental ${(rate(CHANGES, incMs[i] as number) / rate(N, cm)).toFixed(2)}x`).join('; '),
    );
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    console.log(
      `targets${faithful ? '' : ' (NOT judged: not the faithful configuration)'}: initial load >= 0.7x \\copy: ${verdict(loadRate / copyRate >= 0.7)}; ` +
        `incremental >= 0.4x \\copy: ${verdict(incRate / copyRate >= 0.4)}; >= 50x row-by-row: ${verdict(incRate / rbrRate >= 50)}; ` +
        `engine peak RSS <= 300 MB: ${verdict(engineRss <= 300 * 2 ** 20)} (${mb(engineRss)})`,
    );
    console.log(`total ${Math.round((Date.now() - t0) / 1000)} s, load average now ${loadAvg()}`);
  } finally {
    // A client still checked out (after an error) would make pool.end() wait forever.
    held?.release(true);
    await worker?.stop();
    await pool.end();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
