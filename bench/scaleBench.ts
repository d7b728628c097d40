/**
 * Scale benchmark (issue 16, points 1-3, in one run): the same measurements at 1M and 10M
 * rows, to see whether time is linear and memory flat; the initial load with N parallel
 * COPY streams; and the Databricks path (bench/databricksBench.ts) at 1M rows. Ends with one
 * summary (every figure, each target met or missed, the date, the machine and the load
 * averages at the start and the end), printed and written to a markdown file for the README:
 *
 *   npx tsx bench/scaleBench.ts [--sizes 1000000,10000000] [--streams 1,2,4]
 *       [--databricks-rows 1000000 | --no-databricks] [--databricks-lz4 requested|always]
 *       [--summary FILE] [--tsx] [--regenerate]
 *
 * --summary: where the summary goes (default bench/.data/scale-summary.md).
 * --databricks-lz4: databricksBench's --lz4 (default requested: the warehouse compresses what
 * the driver asks for, which with CloudFetch is nothing for driver 2.1.0; always: LZ4-frame
 * files, to measure the decompression).
 * Point 2 first (minutes at 1M rows, so a broken Databricks path shows before the long
 * sizes): bench/databricksBench.ts in a process of its own (bundled under plain node unless
 * --tsx; the warehouse in yet another), its figures handed back as JSON. A failure there is
 * reported in the summary and makes the run exit 1, but the sizes still run.
 *
 * Source per size S: pgBench's customer_profiles table (bench/pgBenchKit.ts, cached under
 * bench/.data/): v1 S rows in random key order, v2 a MERGE of S/10 random keys (90%
 * updates, 10% deletes). At 1M it is pgBench's own table (100k changes); at 10M, 1M changes.
 * Target: the seed article's DDL (PK customer_id + UNIQUE email), on one throwaway server
 * with the durability defaults; every timed step starts after CHECKPOINT.
 * Per size:
 *   1. in a fresh engine process, the engine's initial load of v1 (copyStreams 1), its
 *      phases timed (read + stage = COPY into the unindexed staging table, index = its
 *      primary key, swap = the transaction that swaps it in, which rebuilds the seed's
 *      UNIQUE index on email);
 *   2. VACUUM ANALYZE (not timed), then, in the same process, the incremental sync of v2:
 *      that process's peak RSS is the size's engine peak RSS (the 300 MB target);
 *   3. the initial load of v1 again with each `--streams` N > 1 (initialLoad.copyStreams),
 *      each in an engine process of its own (each stream is a reader thread: its memory
 *      must not count against the default's);
 *   4. `psql \copy` of the v1 snapshot as CSV (exported, not timed) into a fresh table with
 *      the seed DDL: the baseline (last, so a long run prints the engine's figures first).
 * Ratios as pgBench prints them: rows/s of the engine / rows/s of \copy (the incremental's
 * rows are its changes). The wall time of the whole run and of each part is printed: at
 * 1M + 10M it is dominated by the 10M part (its \copy and the three loads).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PoolClient } from 'pg';
import { DeltaTable } from '../src/sync/delta/DeltaTable';
import { createPool } from '../src/sync/postgres/createPool';
import { ensureStateTables } from '../src/sync/postgres/stateTables';
import { startThrowawayServer } from '../test/helpers/postgres';
import { EngineWorker, constraintsOf, count, deletesFor, ensureSourceTable, exportCsv, fmt, loadAvg, mb, psqlCopy, targetDdl } from './pgBenchKit';
import type { EngineReply } from './pgBenchKit';
import { renderSummary } from './scaleSummary';
import type { DatabricksFigures, DatabricksOutcome, Machine, ParallelLoad, RunFigures, ScaleRun, SizeFigures } from './scaleSummary';

interface Args {
  sizes: number[];
  streams: number[];
  /** Rows of point 2's Databricks bench; 0 skips it. */
  databricksRows: number;
  /** databricksBench's --lz4: `requested` serves LZ4 only when the driver asks, `always` on every file. */
  databricksLz4: 'requested' | 'always';
  summary: string;
  tsx: boolean;
  regenerate: boolean;
}

const DEFAULT_SUMMARY = path.join(__dirname, '.data', 'scale-summary.md');

function parseArgs(argv: string[]): Args {
  const args: Args = { sizes: [1_000_000, 10_000_000], streams: [1, 2, 4], databricksRows: 1_000_000, databricksLz4: 'requested', summary: DEFAULT_SUMMARY, tsx: false, regenerate: false };
  const list = (v: string | undefined, what: string): number[] => {
    const xs = (v ?? '').split(',').map(Number);
    if (xs.length === 0 || xs.some((x) => !Number.isSafeInteger(x) || x < 1)) throw new Error(`${what} must be a comma-separated list of positive integers`);
    return xs;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--sizes') args.sizes = list(argv[++i], '--sizes');
    else if (a === '--streams') args.streams = list(argv[++i], '--streams');
    else if (a === '--databricks-rows') [args.databricksRows] = list(argv[++i], '--databricks-rows') as [number];
    else if (a === '--no-databricks') args.databricksRows = 0;
    else if (a === '--databricks-lz4') {
      const v = argv[++i];
      if (v !== 'requested' && v !== 'always') throw new Error('--databricks-lz4 must be requested or always');
      args.databricksLz4 = v;
    } else if (a === '--summary') {
      const v = argv[++i];
      if (!v) throw new Error('--summary needs a file path');
      args.summary = path.resolve(v);
    } else if (a === '--tsx') args.tsx = true;
    else if (a === '--regenerate') args.regenerate = true;
    else throw new Error(`Unknown argument ${String(a)} (see the header of bench/scaleBench.ts)`);
  }
  if (args.sizes.some((s) => s < 1000)) throw new Error('--sizes must be >= 1000 rows');
  if (args.databricksRows !== 0 && args.databricksRows < 1000) throw new Error('--databricks-rows must be >= 1000 rows');
  if (!args.streams.includes(1)) args.streams.unshift(1);
  return args;
}

const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** A run's phases with their durations, from its phase events. */
function phasesOf(r: EngineReply): RunFigures['phases'] {
  return r.phases.map((x, i) => ({ phase: x.phase, ms: (r.phases[i + 1]?.at ?? r.ms) - x.at }));
}

function runFigures(r: EngineReply): RunFigures {
  return { ms: r.ms, phases: phasesOf(r), cpuMs: r.cpuMs, sampledPeakRss: r.peaks.rss, processMaxRss: r.maxRss };
}

/** "read 0.0 s, stage 6.1 s, index 1.2 s, swap 2.0 s". */
const phaseSplit = (r: EngineReply): string =>
  phasesOf(r)
    .map((p) => `${p.phase} ${sec(p.ms)}`)
    .join(', ');

async function measureSize(c: PoolClient, url: string, rows: number, args: Args, tmp: string): Promise<SizeFigures> {
  const t0 = Date.now();
  const loadAvgStart = os.loadavg();
  const changes = Math.floor(rows / 10);
  const deletes = deletesFor(changes);
  const sourceDir = ensureSourceTable({ rows, order: 'random', changes, regenerate: args.regenerate });
  const generateMs = Date.now() - t0;
  console.log(`\n== ${fmt(rows)} rows, ${fmt(changes)} changes (${fmt(changes - deletes)} updates + ${fmt(deletes)} deletes); source ${sourceDir}; load average ${loadAvg()}`);
  await c.query('DROP TABLE IF EXISTS customer_profiles');
  await c.query(targetDdl('customer_profiles', 'seed'));
  const expectedConstraints = await constraintsOf(c, 'customer_profiles');

  const load = async (engine: EngineWorker, streams: number): Promise<EngineReply> => {
    await c.query('CHECKPOINT');
    const r = await engine.run('initial', { toVersion: 1, settings: { copyStreams: streams } });
    if (r.result.rowsRead !== rows || r.result.inserted !== rows) throw new Error(`initial load (${streams} streams) read ${r.result.rowsRead} and loaded ${r.result.inserted} rows, expected ${rows}`);
    const cons = await constraintsOf(c, 'customer_profiles');
    if (cons !== expectedConstraints) throw new Error(`after the swap the target has constraints [${cons}], expected [${expectedConstraints}]`);
    console.log(
      `  initial load, ${streams} COPY stream(s): ${sec(r.ms)} (${phaseSplit(r)}); engine CPU ${sec(r.cpuMs)}; ` +
        `peak RSS ${mb(r.peaks.rss)} (main heap ${mb(r.peaks.heapUsed)}, buffers ${mb(r.peaks.arrayBuffers)}; process ${mb(r.maxRss)}) (load average ${loadAvg()})`,
    );
    return r;
  };

  // The default configuration: the initial load and the incremental, in one engine process.
  let initial: EngineReply;
  let inc: EngineReply;
  const engine = await EngineWorker.start({ tsx: args.tsx }, url, sourceDir);
  try {
    initial = await load(engine, 1);
    // As autovacuum would leave a loaded table before the next sync; not timed.
    await c.query('VACUUM ANALYZE customer_profiles');
    await c.query('CHECKPOINT');
    inc = await engine.run('incremental');
    const r = inc.result;
    if (r.updated !== changes - deletes || r.deleted !== deletes || r.inserted !== 0 || r.toVersion !== 2) {
      throw new Error(`incremental: ${r.updated} updated, ${r.deleted} deleted, ${r.inserted} inserted up to v${r.toVersion}; expected ${changes - deletes}, ${deletes}, 0 up to v2`);
    }
    const left = await count(c, 'SELECT count(*) AS n FROM customer_profiles');
    if (left !== rows - deletes) throw new Error(`after the incremental sync the target has ${left} rows, expected ${rows - deletes}`);
    console.log(
      `  incremental: ${sec(inc.ms)}; ${fmt(r.rowsRead)} change rows; engine CPU ${sec(inc.cpuMs)}; ` +
        `peak RSS ${mb(inc.peaks.rss)} (main heap ${mb(inc.peaks.heapUsed)}, buffers ${mb(inc.peaks.arrayBuffers)}; process ${mb(inc.maxRss)}) (load average ${loadAvg()})`,
    );
    for (const line of inc.log) console.log(`    engine: ${line}`);
  } finally {
    await engine.stop();
  }

  // Each parallel load in a process of its own, so its peak RSS is its own.
  const parallel: ParallelLoad[] = [];
  for (const n of args.streams) {
    if (n === 1) continue;
    const e = await EngineWorker.start({ tsx: args.tsx }, url, sourceDir);
    try {
      parallel.push({ streams: n, ...runFigures(await load(e, n)) });
    } finally {
      await e.stop();
    }
  }

  // The baseline last, so the engine's figures are out first (a 10M run is long).
  const csv = path.join(tmp, `customers_${rows}.csv`);
  const t = Date.now();
  const exported = await exportCsv(await DeltaTable.open(sourceDir), 1, csv);
  if (exported !== rows) throw new Error(`snapshot v1 has ${exported} rows, expected ${rows}`);
  console.log(`  not timed: CSV export ${sec(Date.now() - t)} (${fmt(fs.statSync(csv).size / 1e6)} MB)`);

  await c.query('DROP TABLE IF EXISTS customer_profiles_copy');
  await c.query(targetDdl('customer_profiles_copy', 'seed'));
  await c.query('CHECKPOINT');
  const copyMs = psqlCopy(url, 'customer_profiles_copy', csv);
  console.log(`  \\copy ${sec(copyMs)} (load average ${loadAvg()})`);
  await c.query('DROP TABLE customer_profiles_copy');
  fs.rmSync(csv);

  const wallMs = Date.now() - t0;
  console.log(`  ${fmt(rows)} rows: wall time ${sec(wallMs)}${generateMs >= 1000 ? ` (of which generating the source table ${sec(generateMs)})` : ''}`);
  return { rows, changes, copyMs, initial: runFigures(initial), incremental: runFigures(inc), parallel, wallMs, generateMs, loadAvgStart, loadAvgEnd: os.loadavg() };
}

/**
 * Point 2: bench/databricksBench.ts in a process of its own (its own throwaway server and
 * warehouse process), its figures back through a JSON file. Never throws: a failure is
 * the outcome.
 */
async function databricksPoint(args: Args, tmp: string): Promise<DatabricksOutcome> {
  if (args.databricksRows === 0) return { status: 'skipped' };
  const t0 = Date.now();
  const json = path.join(tmp, 'databricks.json');
  const argv = ['--import', 'tsx', path.join(__dirname, 'databricksBench.ts'), String(args.databricksRows), '--lz4', args.databricksLz4, '--json', json, ...(args.tsx ? ['--tsx'] : []), ...(args.regenerate ? ['--regenerate'] : [])];
  console.log(`\n== the Databricks path, ${fmt(args.databricksRows)} rows (bench/databricksBench.ts); load average ${loadAvg()}`);
  const child = spawn(process.execPath, argv, { stdio: 'inherit', cwd: path.join(__dirname, '..') });
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const wallMs = Date.now() - t0;
  console.log(`  Databricks: wall time ${sec(wallMs)}`);
  if (exit.error) return { status: 'failed', error: `bench/databricksBench.ts did not start: ${exit.error.message}`, wallMs };
  if (exit.code !== 0) return { status: 'failed', error: `bench/databricksBench.ts ${exit.signal ? `was killed by ${exit.signal}` : `exited ${String(exit.code)}`} (its output is above)`, wallMs };
  if (!fs.existsSync(json)) return { status: 'failed', error: `bench/databricksBench.ts exited 0 without writing ${json}`, wallMs };
  return { status: 'measured', figures: JSON.parse(fs.readFileSync(json, 'utf8')) as DatabricksFigures, wallMs };
}

async function machineOf(c: PoolClient): Promise<Machine> {
  const show = async (name: string): Promise<string> => (await c.query<Record<string, string>>(`SHOW ${name}`)).rows[0]?.[name] ?? '?';
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? '?',
    memBytes: os.totalmem(),
    postgres: `PostgreSQL ${await show('server_version')}`,
    postgresSettings: `shared_buffers ${await show('shared_buffers')}, fsync ${await show('fsync')}, synchronous_commit ${await show('synchronous_commit')}, max_parallel_maintenance_workers ${await show('max_parallel_maintenance_workers')}`,
    node: process.version,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const loadAvgStart = os.loadavg();
  const command = `npx tsx bench/scaleBench.ts ${process.argv.slice(2).join(' ')}`.trimEnd();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-scale-'));
  fs.chmodSync(tmp, 0o755);
  console.log(
    `scaleBench: sizes ${args.sizes.map(fmt).join(', ')}; COPY streams ${args.streams.join(', ')}; ` +
      `Databricks ${args.databricksRows === 0 ? 'skipped' : `${fmt(args.databricksRows)} rows`}; ${os.cpus().length} cores; load average ${loadAvg()}`,
  );
  try {
    const databricks = await databricksPoint(args, tmp);
    const server = await startThrowawayServer({ fast: false });
    const url = server.adminUrl;
    const pool = createPool(url, { max: 2 });
    let held: PoolClient | undefined;
    try {
      const c = await pool.connect();
      held = c;
      const machine = await machineOf(c);
      await ensureStateTables(c);
      const sizes: SizeFigures[] = [];
      for (const rows of args.sizes) sizes.push(await measureSize(c, url, rows, args, tmp));
      c.release();
      held = undefined;

      const endedAt = new Date();
      const run: ScaleRun = { startedAt, endedAt, command, machine, loadAvgStart, loadAvgEnd: os.loadavg(), wallMs: endedAt.getTime() - startedAt.getTime(), sizes, databricks };
      const text = renderSummary(run);
      fs.mkdirSync(path.dirname(args.summary), { recursive: true });
      fs.writeFileSync(args.summary, text);
      console.log(`\n${text}\n(summary written to ${args.summary}; shared machine: timings are noisy, read them with the load averages)`);
      if (databricks.status === 'failed') process.exitCode = 1;
    } finally {
      held?.release(true);
      await pool.end();
      await server.stop();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
