/**
 * The Databricks path at scale (issue 16, point 2): rows/s of reading a snapshot through
 * the real @databricks/sql driver from a local SQL warehouse that serves it as a real one
 * does for large results (CloudFetch: presigned HTTPS links to Arrow IPC files), and of an
 * initial load into Postgres from it, against the initial load of the same rows from the
 * local Delta table, in one run.
 *
 *   npx tsx bench/databricksBench.ts [rows=1000000] [--lz4 requested|always] [--no-main] [--tsx] [--json FILE] [--regenerate]
 *
 * Runs bundled by esbuild under plain node, as the CLI ships, with the worker thread's script
 * next to the bundle (bench/.data/dbx/); --tsx runs it under tsx (the worker thread then
 * compiles the engine with tsx when it starts, which makes small runs slower).
 *
 * Source: the `ledger` table (src/fixtures/ledgerRows.ts: 64-bit ints beyond 2^53, DECIMAL(38,6),
 *   sub-ms timestamps, nulls), cached under bench/.data/, v1 = `rows` rows.
 * Warehouse: test/helpers/fakeWarehouse in a child process (so its file serving does not
 *   share the engine's thread), with its result cache on: the snapshot statement is run once
 *   untimed (the warehouse's own work: reading Delta, writing Arrow files), then every timed
 *   read downloads the same files, as a repeated query on an unchanged table does on a real
 *   warehouse. `--lz4 requested` (default) compresses only what the driver asks for, which
 *   with CloudFetch on is nothing (driver 2.1.0); `always` serves LZ4-frame files.
 * Figures, each one run: (1) the read alone on this thread (rows decoded to engine values,
 *   nothing written); (2) the initial load from Databricks, read on the worker thread
 *   (default); (3) the same with DELTA_NEON_SYNC_READ_THREAD=main (skipped with --no-main);
 *   (4) the initial load from the local Delta table (worker thread). Each load goes into a
 *   fresh database of one throwaway server (durability defaults), and is checked by count.
 * Machine shared with other work: the load average is printed before and after.
 *
 * `runDatabricksBench({ rows })` returns the figures; `--json FILE` writes them there, which is
 * how bench/scaleBench.ts takes them into its one summary (running this bench in a process of
 * its own).
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { createLedgerTable, LEDGER_KEY } from '../src/fixtures/ledgerRows';
import type { DatabricksConnectionConfig } from '../src/sync/ports/databricksConnection';
import { parseMapping } from '../src/sync/mapping/loadMapping';
import { createPool } from '../src/sync/postgres/createPool';
import { mappingTarget } from '../src/sync/open/openTarget';
import { DatabricksChangeSource } from '../src/sync/sources/DatabricksChangeSource';
import { DeltaChangeSource } from '../src/sync/sources/DeltaChangeSource';
import type { ChangeSource } from '../src/sync/ports/ChangeSource';
import { SyncRunner } from '../src/sync/run/SyncRunner';
import { FakeWarehouse } from '../test/helpers/fakeWarehouse/FakeWarehouse';
import { startThrowawayServer } from '../test/helpers/postgres';

export interface DatabricksBenchOptions {
  rows: number;
  lz4?: 'requested' | 'always';
  /** Also the load with the Databricks read on the calling thread (default true). */
  mainThread?: boolean;
  /** Write the cached ledger table anew. */
  regenerate?: boolean;
  log?: (line: string) => void;
}

export interface DatabricksBenchFigures {
  rows: number;
  lz4: 'requested' | 'always';
  /** Whether the CloudFetch files were served LZ4-compressed (with `requested`, only when the driver asks). */
  filesLz4: boolean;
  /** CloudFetch files and their bytes as served. */
  files: number;
  fileBytes: number;
  /** Rows/s of the read alone (driver download + Arrow decode + engine values), this thread. */
  readRowsPerSec: number;
  /** Rows/s of the initial load from Databricks, read on the worker thread. */
  syncRowsPerSec: number;
  /** The same, read on the calling thread (undefined when skipped). */
  syncMainThreadRowsPerSec?: number;
  /** Rows/s of the initial load of the same rows from the local Delta table. */
  localSyncRowsPerSec: number;
  /** Peak RSS of this process (kernel maxRSS: the read, the loads and their reader threads; the warehouse and Postgres are other processes). */
  maxRss: number;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
  date: string;
}

const TABLE = 'main.fin.ledger';
/** bench/: this file's folder, or two up from the bundle in bench/.data/dbx/. */
const BENCH_DIR = __filename.endsWith('.cjs') ? path.resolve(__dirname, '..', '..') : __dirname;

const ledgerDir = (rows: number): string => path.join(BENCH_DIR, '.data', `ledger_${rows}_v1`);

/** Writes the cached ledger table of `rows` (in the child that --generate-ledger starts). */
async function generateLedger(rows: number): Promise<void> {
  const dir = ledgerDir(rows);
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  await createLedgerTable(tmp, { rows, changedKeys: Math.floor(rows / 10), rowsPerFile: 100_000 });
  fs.renameSync(tmp, dir);
}

/**
 * The cached ledger table of `rows`, generated in a child process when missing, so that
 * this process's peak RSS (a figure of the bench) is the read's and the loads', not the
 * writer's.
 */
async function ledgerTable(rows: number, log: (l: string) => void): Promise<string> {
  const dir = ledgerDir(rows);
  if (fs.existsSync(path.join(dir, '_delta_log', '00000000000000000002.json'))) return dir;
  log(`generating the ${rows}-row ledger table (cached for later runs)...`);
  const child = fork(__filename, ['--generate-ledger', String(rows)], { execArgv: __filename.endsWith('.cjs') ? [] : ['--import', 'tsx'], stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  if (code !== 0) throw new Error(`generating the ledger table ${dir} failed (exit ${String(code)})`);
  return dir;
}

/** The warehouse in a child process; resolves with its connection config. */
function startWarehouse(dir: string, lz4: 'requested' | 'always'): Promise<{ child: ChildProcess; config: DatabricksConnectionConfig }> {
  const bundled = __filename.endsWith('.cjs');
  const child = fork(__filename, ['--serve', dir, '--lz4', lz4], { execArgv: bundled ? [] : ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ child, config: m as DatabricksConnectionConfig }));
    child.once('exit', (code) => reject(new Error(`the warehouse process exited (${String(code)})`)));
  });
}

async function serve(dir: string, lz4: 'requested' | 'always'): Promise<void> {
  const w = await FakeWarehouse.start({ catalogs: { main: { fin: { ledger: dir } } }, cloudFetch: { lz4, rowsPerFile: 50_000 }, resultCache: true });
  process.on('message', (m) => {
    if (m === 'stats') {
      const r = w.results.find((x) => x.cloudFetch);
      process.send?.({ files: r?.files ?? 0, bytes: r?.bytes ?? 0, lz4: r?.lz4 ?? false, cacheHits: w.cacheHits });
    }
  });
  process.on('disconnect', () => void w.stop().then(() => process.exit(0)));
  process.send?.({ ...w.config(), retryMaxAttempts: 3 });
}

interface WarehouseStats {
  files: number;
  bytes: number;
  /** Whether the CloudFetch files were served LZ4-compressed. */
  lz4: boolean;
  cacheHits: number;
}

function stats(child: ChildProcess): Promise<WarehouseStats> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as WarehouseStats));
    child.send('stats');
  });
}

async function readAll(src: DatabricksChangeSource): Promise<number> {
  let n = 0;
  for await (const b of (await src.snapshot(1)).rows({ batchSize: 10_000 })) n += b.length;
  return n;
}

async function load(adminUrl: string, db: string, source: ChangeSource, sourceSpec: unknown, thread: 'main' | undefined): Promise<{ rows: number; ms: number }> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${db}`;
  const url = u.toString();
  const mapping = parseMapping({ name: 'ledger', source: sourceSpec, target: { connection: 'bench', table: 'ledger' }, key: [LEDGER_KEY] });
  const pool = createPool(url, { max: 2 });
  const before = process.env.DELTA_NEON_SYNC_READ_THREAD;
  if (thread) process.env.DELTA_NEON_SYNC_READ_THREAD = thread;
  try {
    const t0 = performance.now();
    const r = await new SyncRunner(mapping, source, mappingTarget(pool, mapping.target)).run({ mode: 'initial', toVersion: 1 });
    const ms = performance.now() - t0;
    const c = await pool.query<{ n: string }>('SELECT count(*) AS n FROM ledger');
    if (Number(c.rows[0]?.n) !== r.inserted) throw new Error(`the target holds ${c.rows[0]?.n} rows, the run reported ${r.inserted}`);
    return { rows: r.inserted, ms };
  } finally {
    if (before === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
    else process.env.DELTA_NEON_SYNC_READ_THREAD = before;
    await pool.end();
  }
}

export async function runDatabricksBench(opts: DatabricksBenchOptions): Promise<DatabricksBenchFigures> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const lz4 = opts.lz4 ?? 'requested';
  if (opts.regenerate) fs.rmSync(ledgerDir(opts.rows), { recursive: true, force: true });
  const dir = await ledgerTable(opts.rows, log);
  const loadAverageBefore = os.loadavg();
  const { child, config } = await startWarehouse(dir, lz4);
  const server = await startThrowawayServer({ fast: false });
  const rate = (rows: number, ms: number): number => Math.round(rows / (ms / 1000));
  try {
    const src = await DatabricksChangeSource.open(config, TABLE);
    try {
      let t0 = performance.now();
      const warm = await readAll(src);
      log(`warehouse: the snapshot statement run once (untimed, fills its result cache): ${warm} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      t0 = performance.now();
      const read = await readAll(src);
      const readMs = performance.now() - t0;
      if (read !== opts.rows) throw new Error(`read ${read} rows, expected ${opts.rows}`);
      const s = await stats(child);
      log(`read alone (CloudFetch, ${s.files} files, ${(s.bytes / 2 ** 20).toFixed(1)} MiB, lz4 ${lz4}: files ${s.lz4 ? '' : 'not '}compressed): ${read} rows in ${(readMs / 1000).toFixed(1)} s = ${rate(read, readMs)} rows/s`);
      const spec = { type: 'databricks', connection: 'default', table: TABLE };
      const w = await load(server.adminUrl, 'dbx_worker', src, spec, undefined);
      log(`initial load from Databricks (worker thread): ${w.rows} rows in ${(w.ms / 1000).toFixed(1)} s = ${rate(w.rows, w.ms)} rows/s`);
      let m: { rows: number; ms: number } | undefined;
      if (opts.mainThread !== false) {
        m = await load(server.adminUrl, 'dbx_main', src, spec, 'main');
        log(`initial load from Databricks (calling thread): ${m.rows} rows in ${(m.ms / 1000).toFixed(1)} s = ${rate(m.rows, m.ms)} rows/s`);
      }
      const l = await load(server.adminUrl, 'local', await DeltaChangeSource.open(dir), { type: 'delta', path: dir }, undefined);
      log(`initial load from the local Delta table (worker thread): ${l.rows} rows in ${(l.ms / 1000).toFixed(1)} s = ${rate(l.rows, l.ms)} rows/s`);
      const hits = (await stats(child)).cacheHits;
      if (hits < 2) throw new Error(`the warehouse's result cache was hit ${hits} times: the timed reads were not all served from files`);
      const figures: DatabricksBenchFigures = {
        rows: opts.rows, lz4, filesLz4: s.lz4, files: s.files, fileBytes: s.bytes,
        readRowsPerSec: rate(read, readMs), syncRowsPerSec: rate(w.rows, w.ms), ...(m ? { syncMainThreadRowsPerSec: rate(m.rows, m.ms) } : {}),
        localSyncRowsPerSec: rate(l.rows, l.ms), maxRss: process.resourceUsage().maxRSS * 1024, loadAverageBefore, loadAverageAfter: os.loadavg(), date: new Date().toISOString(),
      };
      log(`Databricks load / local load: ${(figures.syncRowsPerSec / figures.localSyncRowsPerSec).toFixed(2)}x` +
        (figures.syncMainThreadRowsPerSec ? `; worker / calling thread: ${(figures.syncRowsPerSec / figures.syncMainThreadRowsPerSec).toFixed(2)}x` : ''));
      log(`peak RSS of this process (read and loads): ${(figures.maxRss / 2 ** 20).toFixed(0)} MB`);
      log(`${figures.date}, load average before ${loadAverageBefore.map((x) => x.toFixed(2)).join(' ')}, after ${figures.loadAverageAfter.map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)`);
      return figures;
    } finally {
      await src.close();
    }
  } finally {
    child.disconnect();
    await server.stop();
  }
}

/** This file and the worker thread's entry, bundled under bench/.data/dbx/ (packages external). */
async function bundle(): Promise<string> {
  const esbuild = await import('esbuild');
  const out = path.join(__dirname, '.data', 'dbx');
  const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', packages: 'external', logLevel: 'warning' } as const;
  await esbuild.build({ ...common, entryPoints: [__filename], outfile: path.join(out, 'databricksBench.bundle.cjs') });
  await esbuild.build({ ...common, entryPoints: [path.join(__dirname, '..', 'src', 'sync', 'worker', 'changePlanWorkerMain.ts')], outfile: path.join(out, 'changePlanWorker.js') });
  return path.join(out, 'databricksBench.bundle.cjs');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (!__filename.endsWith('.cjs') && !argv.includes('--tsx') && !argv.includes('--serve') && !argv.includes('--generate-ledger')) {
    const file = await bundle();
    const child = fork(file, argv, { execArgv: [], stdio: 'inherit' });
    const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
    process.exit(code);
  }
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const lz4 = flag('--lz4') === 'always' ? 'always' : 'requested';
  const serveDir = flag('--serve');
  if (serveDir) return serve(serveDir, lz4);
  const generate = flag('--generate-ledger');
  if (generate) return generateLedger(Number(generate));
  const rows = Number(argv.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
  const figures = await runDatabricksBench({ rows, lz4, mainThread: !argv.includes('--no-main'), regenerate: argv.includes('--regenerate') });
  const json = flag('--json');
  if (json) fs.writeFileSync(json, JSON.stringify(figures, null, 2));
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
