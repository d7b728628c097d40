/**
 * Scale benchmark (issue 16 points 1 and 3): the same measurements at 1M and 10M rows, in
 * one run, to see whether time is linear and memory flat, and the initial load with N
 * parallel COPY streams:
 *
 *   npx tsx bench/scaleBench.ts [--sizes 1000000,10000000] [--streams 1,2,4] [--tsx] [--regenerate]
 *
 * Source per size S: pgBench's customer_profiles table (bench/pgBenchKit.ts, cached under
 * bench/.data/): v1 S rows in random key order, v2 a MERGE of S/10 random keys (90%
 * updates, 10% deletes). At 1M it is pgBench's own table (100k changes); at 10M, 1M changes.
 * Target: the seed article's DDL (PK customer_id + UNIQUE email), on one throwaway server
 * with the durability defaults; every timed step starts after CHECKPOINT.
 * Per size, in a fresh engine process (its peak RSS is that size's alone):
 *   1. the engine's initial load of v1 (copyStreams 1), its phases timed (read + stage =
 *      COPY into the unindexed staging table, index = its primary key, swap = the
 *      transaction that swaps it in, which rebuilds the seed's UNIQUE index on email);
 *   2. VACUUM ANALYZE (not timed), then the incremental sync of v2;
 *   3. the initial load of v1 again with each `--streams` N > 1 (initialLoad.copyStreams);
 *   4. `psql \copy` of the v1 snapshot as CSV (exported, not timed) into a fresh table with
 *      the seed DDL: the baseline (last, so a long run prints the engine's figures first).
 * Ratios as pgBench prints them: rows/s of the engine / rows/s of \copy (the incremental's
 * rows are its changes). Then the 10M/1M time ratios and the targets.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PoolClient } from 'pg';
import { DeltaTable } from '../src/sync/delta/DeltaTable';
import { createPool } from '../src/sync/postgres/createPool';
import { ensureStateTables } from '../src/sync/postgres/stateTables';
import { startThrowawayServer } from '../test/helpers/postgres';
import { EngineWorker, constraintsOf, count, deletesFor, ensureSourceTable, exportCsv, fmt, loadAvg, mb, psqlCopy, rate, targetDdl } from './pgBenchKit';
import type { EngineReply } from './pgBenchKit';

interface Args {
  sizes: number[];
  streams: number[];
  tsx: boolean;
  regenerate: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { sizes: [1_000_000, 10_000_000], streams: [1, 2, 4], tsx: false, regenerate: false };
  const list = (v: string | undefined, what: string): number[] => {
    const xs = (v ?? '').split(',').map(Number);
    if (xs.length === 0 || xs.some((x) => !Number.isSafeInteger(x) || x < 1)) throw new Error(`${what} must be a comma-separated list of positive integers`);
    return xs;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--sizes') args.sizes = list(argv[++i], '--sizes');
    else if (a === '--streams') args.streams = list(argv[++i], '--streams');
    else if (a === '--tsx') args.tsx = true;
    else if (a === '--regenerate') args.regenerate = true;
    else throw new Error(`Unknown argument ${String(a)}`);
  }
  if (args.sizes.some((s) => s < 1000)) throw new Error('--sizes must be >= 1000 rows');
  if (!args.streams.includes(1)) args.streams.unshift(1);
  return args;
}

/** What one size measured. */
interface SizeFigures {
  rows: number;
  changes: number;
  copyMs: number;
  /** copyStreams -> the initial load. */
  loads: Map<number, EngineReply>;
  incremental: EngineReply;
  /** Engine process peak RSS over every run of this size (kernel maxRSS). */
  maxRss: number;
}

const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** "read 0.0 s, stage 6.1 s, index 1.2 s, swap 2.0 s" from a run's phase events. */
function phaseSplit(r: EngineReply): string {
  const p = r.phases;
  return p.map((x, i) => `${x.phase} ${sec(((p[i + 1]?.at ?? r.ms) - x.at))}`).join(', ');
}

async function measureSize(c: PoolClient, url: string, rows: number, args: Args, tmp: string): Promise<SizeFigures> {
  const changes = Math.floor(rows / 10);
  const deletes = deletesFor(changes);
  const sourceDir = ensureSourceTable({ rows, order: 'random', changes, regenerate: args.regenerate });
  console.log(`\n== ${fmt(rows)} rows, ${fmt(changes)} changes (${fmt(changes - deletes)} updates + ${fmt(deletes)} deletes); source ${sourceDir}; load average ${loadAvg()}`);
  await c.query('DROP TABLE IF EXISTS customer_profiles');
  await c.query(targetDdl('customer_profiles', 'seed'));
  const expectedConstraints = await constraintsOf(c, 'customer_profiles');
  const engine = await EngineWorker.start({ tsx: args.tsx }, url, sourceDir);
  const loads = new Map<number, EngineReply>();
  let maxRss = 0;
  let inc: EngineReply;
  try {
    const load = async (streams: number): Promise<void> => {
      await c.query('CHECKPOINT');
      const r = await engine.run('initial', { toVersion: 1, settings: { copyStreams: streams } });
      maxRss = Math.max(maxRss, r.maxRss);
      if (r.result.rowsRead !== rows || r.result.inserted !== rows) throw new Error(`initial load (${streams} streams) read ${r.result.rowsRead} and loaded ${r.result.inserted} rows, expected ${rows}`);
      const cons = await constraintsOf(c, 'customer_profiles');
      if (cons !== expectedConstraints) throw new Error(`after the swap the target has constraints [${cons}], expected [${expectedConstraints}]`);
      loads.set(streams, r);
      console.log(
        `  initial load, ${streams} COPY stream(s): ${sec(r.ms)} (${phaseSplit(r)}); engine CPU ${sec(r.cpuMs)}; ` +
          `peak RSS ${mb(r.peaks.rss)} (main heap ${mb(r.peaks.heapUsed)}, buffers ${mb(r.peaks.arrayBuffers)}) (load average ${loadAvg()})`,
      );
    };
    await load(1);
    // As autovacuum would leave a loaded table before the next sync; not timed.
    await c.query('VACUUM ANALYZE customer_profiles');
    await c.query('CHECKPOINT');
    inc = await engine.run('incremental');
    maxRss = Math.max(maxRss, inc.maxRss);
    const r = inc.result;
    if (r.updated !== changes - deletes || r.deleted !== deletes || r.inserted !== 0 || r.toVersion !== 2) {
      throw new Error(`incremental: ${r.updated} updated, ${r.deleted} deleted, ${r.inserted} inserted up to v${r.toVersion}; expected ${changes - deletes}, ${deletes}, 0 up to v2`);
    }
    const left = await count(c, 'SELECT count(*) AS n FROM customer_profiles');
    if (left !== rows - deletes) throw new Error(`after the incremental sync the target has ${left} rows, expected ${rows - deletes}`);
    console.log(
      `  incremental: ${sec(inc.ms)}; ${fmt(r.rowsRead)} change rows; engine CPU ${sec(inc.cpuMs)}; ` +
        `peak RSS ${mb(inc.peaks.rss)} (main heap ${mb(inc.peaks.heapUsed)}, buffers ${mb(inc.peaks.arrayBuffers)}) (load average ${loadAvg()})`,
    );
    for (const line of inc.log) console.log(`    engine: ${line}`);
    for (const n of args.streams) if (n > 1) await load(n);
  } finally {
    await engine.stop();
  }
  // The baseline last, so the engine's figures are out first (a 10M run is long).
  const csv = path.join(tmp, `customers_${rows}.csv`);
  let t = Date.now();
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

  return { rows, changes, copyMs, loads, incremental: inc, maxRss };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const server = await startThrowawayServer({ fast: false });
  const url = server.adminUrl;
  const pool = createPool(url, { max: 2 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-scale-'));
  fs.chmodSync(tmp, 0o755);
  let held: PoolClient | undefined;
  const figures: SizeFigures[] = [];
  try {
    const c = await pool.connect();
    held = c;
    console.log(`scaleBench: sizes ${args.sizes.map(fmt).join(', ')}; COPY streams ${args.streams.join(', ')}; ${os.cpus().length} cores; load average ${loadAvg()}`);
    await ensureStateTables(c);
    for (const rows of args.sizes) figures.push(await measureSize(c, url, rows, args, tmp));
    c.release();
    held = undefined;

    console.log('\nsummary (ratios: rows/s engine / rows/s \\copy; incremental rows = its changes)');
    console.log(`${'rows'.padStart(11)} ${'\\copy'.padStart(8)} ${'initial'.padStart(8)} ${'ratio'.padStart(6)} ${'incr.'.padStart(8)} ${'ratio'.padStart(6)} ${'peak RSS'.padStart(9)}  parallel initial loads`);
    for (const f of figures) {
      const one = f.loads.get(1) as EngineReply;
      const par = [...f.loads.entries()].filter(([n]) => n > 1).map(([n, r]) => `${n} streams ${sec(r.ms)} (${(f.copyMs / r.ms).toFixed(2)}x)`).join(', ');
      console.log(
        `${fmt(f.rows).padStart(11)} ${sec(f.copyMs).padStart(8)} ${sec(one.ms).padStart(8)} ${(f.copyMs / one.ms).toFixed(2).padStart(5)}x ${sec(f.incremental.ms).padStart(8)} ` +
          `${(rate(f.changes, f.incremental.ms) / rate(f.rows, f.copyMs)).toFixed(2).padStart(5)}x ${mb(f.maxRss).padStart(9)}  ${par}`,
      );
    }
    const small = figures[0];
    const large = figures.at(-1);
    if (small && large && large !== small) {
      const k = large.rows / small.rows;
      const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;
      const sl = small.loads.get(1) as EngineReply;
      const ll = large.loads.get(1) as EngineReply;
      console.log(
        `${fmt(large.rows)} / ${fmt(small.rows)} time (rows x${k}): \\copy ${ratio(large.copyMs, small.copyMs)}, initial load ${ratio(ll.ms, sl.ms)}, incremental ${ratio(large.incremental.ms, small.incremental.ms)}`,
      );
      const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
      const initialRatio = large.copyMs / ll.ms;
      const incRatio = rate(large.changes, large.incremental.ms) / rate(large.rows, large.copyMs);
      const linear = Math.max(ll.ms / sl.ms, large.incremental.ms / small.incremental.ms) <= 1.05 * k;
      console.log(
        `targets at ${fmt(large.rows)}: initial >= 2x \\copy: ${verdict(initialRatio >= 2)} (${initialRatio.toFixed(2)}x); incremental >= 0.75x: ${verdict(incRatio >= 0.75)} (${incRatio.toFixed(2)}x); ` +
          `peak RSS <= 300 MB: ${verdict(large.maxRss <= 300 * 2 ** 20)} (${mb(large.maxRss)}); time <= ${(1.05 * k).toFixed(1)}x the ${fmt(small.rows)} time: ${verdict(linear)}`,
      );
    }
    console.log(`total ${Math.round((Date.now() - t0) / 1000)} s, load average now ${loadAvg()} (${os.cpus().length} cores, shared machine: timings are noisy)`);
  } finally {
    held?.release(true);
    await pool.end();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
