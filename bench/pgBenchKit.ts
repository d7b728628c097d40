/**
 * What bench/pgBench.ts and bench/scaleBench.ts share: the cached customer_profiles source
 * table (generated once in a child process), its rows as CSV for `psql \copy`, the seed
 * article's target DDL, the engine run in a process of its own (so its peak RSS is the
 * engine's alone) and the small formatting helpers.
 *
 * Run directly, this file is that child: `--generate-into <dir> <rows> <order> <changes>`
 * writes a source table, `--engine-worker <url> <source>` serves engine runs over IPC.
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
import type { DeltaTable } from '../src/sync/delta/DeltaTable';
import type { ChangeRow, Row } from '../src/sync/delta/types';
import { parseMapping } from '../src/sync/mapping/loadMapping';
import { createPool } from '../src/sync/postgres/createPool';
import { openSource } from '../src/sync/open/openSource';
import { SyncRunner } from '../src/sync/run/SyncRunner';
import { mappingTarget } from '../src/sync/open/openTarget';
import type { RunResult } from '../src/sync/ports/reports';
import type { SyncEvent } from '../src/sync/ports/events';
import type { ChangeSource, SourceSnapshot, WorkerSource } from '../src/sync/ports/ChangeSource';
import type { Mapping } from '../src/sync/mapping/mappingSchema';

export type Order = 'random' | 'sequential';
export type Ddl = 'seed' | 'pk';

// ---------------------------------------------------------------- the source Delta table

/** The v2 MERGE of a table of `rows`: pgBench's 10% of the rows up to 100,000, 10% of them deletes. */
export const changesFor = (rows: number): number => Math.min(100_000, Math.floor(rows / 10));
export const deletesFor = (changes: number): number => Math.floor(changes / 10);

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

/**
 * v0 create (CDF on), v1 the customers (in `order`), v2 MERGE of `changes` random keys:
 * 90% updated, 10% deleted, copy-on-write with cdc files, the way Spark writes a MERGE.
 */
export async function generate(dir: string, rows: number, order: Order, changes = changesFor(rows)): Promise<void> {
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
  const picked = shuffled(rows, 2).subarray(0, changes);
  const nUpdates = changes - deletesFor(changes);
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

/**
 * The cached source table for (rows, order, changes) under bench/.data, generated in a
 * child process (its memory is not the caller's). pgBench's tables (changesFor(rows)
 * changes) keep their old folder name, which repairBench reads too.
 */
export function ensureSourceTable(o: { rows: number; order: Order; changes?: number; regenerate?: boolean }): string {
  const changes = o.changes ?? changesFor(o.rows);
  const dataDir = path.join(__dirname, '.data');
  fs.mkdirSync(dataDir, { recursive: true });
  // Bump the suffix when generate() changes.
  const dir = path.join(dataDir, `pg_customers_${o.rows}_${o.order}${changes === changesFor(o.rows) ? '' : `_c${changes}`}_v1`);
  if (o.regenerate) fs.rmSync(dir, { recursive: true, force: true });
  if (!fs.existsSync(path.join(dir, '_delta_log', '00000000000000000002.json'))) {
    console.log(`generating the ${o.rows}-row source Delta table with ${changes} changes (cached for later runs)...`);
    // The writer holds a MERGE's change rows in memory: 1M changes need more than the default heap.
    const child = spawnSync(process.execPath, [...process.execArgv, '--max-old-space-size=8192', __filename, '--generate-into', dir, String(o.rows), o.order, String(changes)], { stdio: 'inherit' });
    if (child.status !== 0) throw new Error(`generating ${dir} failed (exit ${String(child.status)})`);
  }
  return dir;
}

// ---------------------------------------------------------------- values as text

/** Microseconds since epoch -> timestamptz text with all six fractional digits. */
export function timestampText(us: bigint): string {
  const ms = us / 1000n;
  const iso = new Date(Number(ms)).toISOString(); // ...T12:34:56.789Z
  return `${iso.slice(0, -1)}${String(us - ms * 1000n).padStart(3, '0')}+00`;
}

function csvText(v: string): string {
  // An empty unquoted field is NULL in CSV; an empty string must be quoted.
  return v === '' || /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export const CSV_COLUMNS = CUSTOMER_PROFILE_COLUMNS.map((c) => c.name);

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

/** The snapshot at `version` as the reader returns it (same rows, same order), as CSV; returns its row count. */
export async function exportCsv(table: DeltaTable, version: number, file: string): Promise<number> {
  const fd = fs.openSync(file, 'w');
  let n = 0;
  try {
    for await (const batch of (await table.snapshot({ version })).rows({ batchSize: 10_000 })) {
      let s = '';
      for (const r of batch) s += csvLine(r);
      fs.writeSync(fd, s);
      n += batch.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return n;
}

/** `psql \copy` of a CSV file into `table`; returns the milliseconds. */
export function psqlCopy(url: string, table: string, csv: string): number {
  const s = Date.now();
  execFileSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy ${table} FROM '${csv}' WITH (FORMAT csv)`], { stdio: 'pipe' });
  return Date.now() - s;
}

// ---------------------------------------------------------------- helpers

export const rate = (rows: number, ms: number): number => (rows / ms) * 1000;
export const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
export const mb = (b: number | undefined): string => `${Math.round((b ?? 0) / 2 ** 20)} MB`;
export const loadAvg = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export function targetDdl(name: string, ddl: Ddl): string {
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

export async function constraintsOf(c: PoolClient, table: string): Promise<string> {
  const r = await c.query<{ d: string }>(
    `SELECT string_agg(contype::text || ':' || pg_get_constraintdef(oid), '; ' ORDER BY contype, conname) AS d FROM pg_constraint WHERE conrelid = $1::regclass`,
    [table],
  );
  return r.rows[0]?.d ?? '';
}

export async function currentLsn(c: PoolClient): Promise<string> {
  return (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l as string;
}

export async function walMbSince(c: PoolClient, lsn: string): Promise<number> {
  const r = await c.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::text AS d', [lsn]);
  return Number(r.rows[0]?.d ?? 0) / 1e6;
}

export async function count(c: PoolClient, sql: string): Promise<number> {
  return Number((await c.query<{ n: string }>(sql)).rows[0]?.n ?? NaN);
}

// ---------------------------------------------------------------- the engine, in its own process

/** What an engine run may vary: the initial load's COPY streams (initialLoad.copyStreams). */
export interface EngineSettings {
  copyStreams?: number;
}

/** The mapping every engine run uses: the pre-created seed table, with the seed's column types. */
export function benchMapping(sourceDir: string, settings: EngineSettings = {}): Mapping {
  return parseMapping({
    name: 'bench',
    source: { type: 'delta', path: sourceDir },
    target: { connection: 'bench', table: 'customer_profiles' },
    key: ['customer_id'],
    columns: { types: { customer_id: 'varchar(255)', email: 'varchar(255)', segment: 'varchar(100)', propensity_score: 'double precision' } },
    ...(settings.copyStreams === undefined ? {} : { initialLoad: { copyStreams: settings.copyStreams } }),
  });
}

export type EngineOp = 'initial' | 'incremental';

/** How the engine's read time shows: 0 when it read on its worker thread (in parallel, not separable). */
export function readerNote(...ms: number[]): string {
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

/** Memory of the engine's process, sampled every 100 ms during a run (the peaks). */
export interface MemoryPeaks {
  rss: number;
  /** JS heap of the main thread (the Delta reader's worker thread has its own, in rss only). */
  heapUsed: number;
  /** Buffers and typed arrays of the main thread. */
  arrayBuffers: number;
}

export interface EngineReply {
  op: EngineOp;
  ms: number;
  result: Pick<RunResult, 'rowsRead' | 'inserted' | 'updated' | 'deleted' | 'unchanged' | 'batches' | 'toVersion'>;
  /** Of `ms`, the time inside the Delta reader's iterators. */
  readMs: number;
  /** The worker's peak RSS so far (kernel maxRSS), bytes. */
  maxRss: number;
  /** Peaks sampled during this run. */
  peaks: MemoryPeaks;
  /** JS heap in use after a full GC once the run is over (bytes): what the run left behind. */
  heapAfterGc: number;
  /** The engine's debug lines of this run (per-phase and per-batch timings). */
  log: string[];
  /** When each phase began, ms after the run's start (phase events). */
  phases: Array<{ phase: string; at: number }>;
  /** CPU time of the engine's process during the run (all its threads, user + system), ms. */
  cpuMs: number;
  error?: string;
}

interface EngineRequest {
  op: EngineOp | 'exit';
  toVersion?: number;
  settings?: EngineSettings;
}

/**
 * Child: runs SyncRunner on request, so that its peak RSS is the engine's alone (plus
 * Node's baseline), not the bench's CSV export and samples. The timing is taken here, so
 * it does not include the IPC round trip.
 */
async function engineWorker(url: string, sourceDir: string): Promise<void> {
  const pool = createPool(url, { max: 8 });
  const send = (m: EngineReply | { ready: true }): void => {
    process.send?.(m);
  };
  let log: string[] = [];
  // The engine's debug lines (per-phase and per-batch step timings) go back with the reply.
  const logger = { debug: (m: string) => log.push(m), info: () => undefined, warn: (m: string) => log.push(`warning: ${m}`), error: (m: string) => log.push(`error: ${m}`) };
  const source = new TimedSource(await openSource(benchMapping(sourceDir).source));
  process.on('message', (m: unknown) => {
    const req = m as EngineRequest;
    if (req.op === 'exit') {
      void pool.end().then(() => process.exit(0));
      return;
    }
    if (req.op !== 'initial' && req.op !== 'incremental') return;
    const op = req.op;
    void (async () => {
      log = [];
      const mapping = benchMapping(sourceDir, req.settings);
      const runner = new SyncRunner(mapping, source, mappingTarget(pool, mapping.target, logger), logger);
      const phases: Array<{ phase: string; at: number }> = [];
      source.readMs = 0;
      const peaks: MemoryPeaks = { rss: 0, heapUsed: 0, arrayBuffers: 0 };
      const sample = (): void => {
        const u = process.memoryUsage();
        peaks.rss = Math.max(peaks.rss, u.rss);
        peaks.heapUsed = Math.max(peaks.heapUsed, u.heapUsed);
        peaks.arrayBuffers = Math.max(peaks.arrayBuffers, u.arrayBuffers);
      };
      const timer = setInterval(sample, 100);
      const cpu0 = process.cpuUsage();
      const s = performance.now();
      const empty = { rowsRead: 0, inserted: 0, updated: 0, deleted: 0, unchanged: 0, batches: 0, toVersion: -1 };
      try {
        const onEvent = (e: SyncEvent): void => {
          if (e.type === 'phase') phases.push({ phase: e.phase, at: Math.round(performance.now() - s) });
        };
        const r = await runner.run(op === 'initial' ? { mode: 'initial', onEvent, ...(req.toVersion === undefined ? {} : { toVersion: req.toVersion }) } : { mode: 'incremental', onEvent });
        const ms = Math.round(performance.now() - s);
        clearInterval(timer);
        sample();
        const cpu = process.cpuUsage(cpu0);
        const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
        const { rowsRead, inserted, updated, deleted, unchanged, batches, toVersion } = r;
        (globalThis as { gc?: () => void }).gc?.();
        send({ heapAfterGc: process.memoryUsage().heapUsed, op, ms, readMs: Math.round(source.readMs), result: { rowsRead, inserted, updated, deleted, unchanged, batches, toVersion }, maxRss: process.resourceUsage().maxRSS * 1024, peaks, log, phases, cpuMs });
      } catch (e) {
        clearInterval(timer);
        send({ heapAfterGc: 0, op, ms: 0, readMs: 0, result: empty, maxRss: process.resourceUsage().maxRSS * 1024, peaks, log, phases, cpuMs: 0, error: e instanceof Error ? e.stack ?? e.message : String(e) });
      }
    })();
  });
  send({ ready: true });
}

/** The parent's handle on the engine's process. */
export class EngineWorker {
  private pending: ((r: EngineReply) => void) | undefined;
  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: unknown) => {
      if ((m as { ready?: unknown }).ready) return;
      const p = this.pending;
      this.pending = undefined;
      p?.(m as EngineReply);
    });
  }

  /** Starts the engine's process: this file bundled for plain node (as the CLI ships), or under tsx with `tsx`. */
  static async start(o: { tsx: boolean }, url: string, sourceDir: string): Promise<EngineWorker> {
    const argv = ['--engine-worker', url, sourceDir];
    const child = o.tsx ? fork(__filename, argv, { execArgv: [...process.execArgv, '--expose-gc'] }) : fork(await bundle(), argv, { execArgv: ['--expose-gc'] });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`engine worker exited (${String(code)}) before it was ready`)));
    });
    return new EngineWorker(child);
  }

  run(op: EngineOp, opts: { toVersion?: number; settings?: EngineSettings } = {}): Promise<EngineReply> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`engine worker exited (${String(code)}) during ${op}`));
      this.child.once('exit', onExit);
      this.pending = (r) => {
        this.child.off('exit', onExit);
        if (r.error) reject(new Error(`engine ${op} failed in the worker: ${r.error}`));
        else resolve(r);
      };
      const req: EngineRequest = { op, ...opts };
      this.child.send(req);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ op: 'exit' });
    await gone;
  }
}

let bundled: Promise<string> | undefined;

/**
 * This file bundled for plain `node`, the way the CLI ships (tsx's loader adds ~40 MB of
 * RSS); npm packages stay external and load from node_modules. Built once per bench process
 * (scaleBench starts an engine process per size and per COPY-stream count): it is quick.
 */
function bundle(): Promise<string> {
  bundled ??= buildBundle();
  return bundled;
}

async function buildBundle(): Promise<string> {
  const esbuild = await import('esbuild');
  const outfile = path.join(__dirname, '.data', 'pgBenchKit.bundle.cjs');
  await esbuild.build({ entryPoints: [__filename], outfile, bundle: true, platform: 'node', format: 'cjs', target: 'node20', packages: 'external', logLevel: 'warning' });
  // The engine reads a Change Data Feed on a worker thread whose script sits next to its bundle (as dist/ ships it).
  await esbuild.build({
    entryPoints: [path.join(__dirname, '..', 'src', 'sync', 'worker', 'changePlanWorkerMain.ts')],
    outfile: path.join(__dirname, '.data', 'changePlanWorker.js'),
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', packages: 'external', logLevel: 'warning',
  });
  return outfile;
}

// ---------------------------------------------------------------- as a child process

async function childMain(argv: string[]): Promise<void> {
  if (argv[0] === '--generate-into') {
    const [, dir, rows, order, changes] = argv;
    if (!dir || (order !== 'random' && order !== 'sequential')) throw new Error('--generate-into <dir> <rows> <random|sequential> <changes>');
    await generate(dir, Number(rows), order, Number(changes));
  } else if (argv[0] === '--engine-worker') {
    const [, url, source] = argv;
    if (!url || !source) throw new Error('--engine-worker <url> <source>');
    await engineWorker(url, source);
  } else throw new Error(`pgBenchKit: unknown child mode ${argv[0] ?? '(none)'}`);
}

if (require.main === module) {
  childMain(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
