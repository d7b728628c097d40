/**
 * Lag benchmark (issue 14, point 1): how long a commit to a local Delta table takes to be
 * visible in Postgres under a continuous sync (`watchPipeline`, what `sync --watch` and
 * "Start Continuous Sync" run), with a 1 s poll floor.
 *
 *   npx tsx bench/lagBench.ts [commits=50] [--interval 1s] [--gap-min 100] [--gap-max 1500] [--rows 20000]
 *
 * Source: a local Delta table with Change Data Feed, `--rows` rows loaded first (the watch's
 *   initial load), then `commits` commits at random gaps (uniform between --gap-min and
 *   --gap-max ms, independent of the sync: some land while a batch is in flight). Each commit
 *   appends one marker row (id = 1e9 + n) and updates a few other rows.
 * Target: a throwaway cluster (test/helpers/postgres, the server's durability defaults), or
 *   DATABASE_URL.
 * Measure: a separate connection polls the target every 10 ms for the marker rows not yet
 *   seen; lag = first seen - the moment the writer's commit (the log file) was in place.
 * Prints p50 / p95 / max over the commits, the poll floor, the date and the load average;
 * target p50 under 2 s.
 */
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../src/fixtures/DeltaTableWriter';
import type { Row } from '../src/sync/delta/types';
import { parseMapping } from '../src/sync/mapping/loadMapping';
import { createPool } from '../src/sync/postgres/createPool';
import { openSource } from '../src/sync/open/openSource';
import { mappingTarget } from '../src/sync/open/openTarget';
import { formatDuration, parseDuration } from '../src/sync/run/duration';
import { SyncRunner } from '../src/sync/run/SyncRunner';
import { watchPipeline } from '../src/sync/run/watch';
import { long, string } from '../test/builders/deltaFields';
import { benchDatabase, loadLine, runBench } from './benchSetup';

interface Args {
  commits: number;
  intervalMs: number;
  gapMinMs: number;
  gapMaxMs: number;
  rows: number;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { commits: 50, intervalMs: 1_000, gapMinMs: 100, gapMaxMs: 1_500, rows: 20_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--interval') out.intervalMs = parseDuration(next(), '--interval');
    else if (a === '--gap-min') out.gapMinMs = Number(next());
    else if (a === '--gap-max') out.gapMaxMs = Number(next());
    else if (a === '--rows') out.rows = Number(next());
    else if (/^\d+$/.test(a)) out.commits = Number(a);
    else throw new Error(`unknown argument ${a} (usage: lagBench.ts [commits] [--interval 1s] [--gap-min ms] [--gap-max ms] [--rows n])`);
  }
  return out;
}

const MARKER = 1_000_000_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const db = await benchDatabase('lag');
  const { url, dir } = db;
  const table = `lag_bench_${process.pid}`;
  const pool = createPool(url, { max: 4 });
  const probe = new pg.Client({ connectionString: url });
  await probe.connect();
  const abort = new AbortController();
  try {
    const w = await DeltaTableWriter.create(path.join(dir, 'lag'), {
      columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }],
      configuration: { 'delta.enableChangeDataFeed': 'true' },
    });
    const base: Row[] = [];
    for (let i = 1; i <= args.rows; i++) base.push({ id: BigInt(i), name: `row ${i}` });
    await w.append(base, { rowsPerFile: 1_000 });

    const mapping = parseMapping({ name: table, source: { type: 'delta', path: w.path }, target: { connection: 'bench', table }, key: ['id'] });
    const source = await openSource(mapping.source);
    const runner = new SyncRunner(mapping, source, mappingTarget(pool, mapping.target));
    let loaded!: () => void;
    const initial = new Promise<void>((r) => (loaded = r));
    const watch = watchPipeline({
      runner,
      source,
      localTablePath: w.path,
      mode: 'follow',
      intervalMs: args.intervalMs,
      signal: abort.signal,
      onApplied: () => loaded(),
      run: process.env.LAG_TRACE
        ? {
          onEvent: (e) => {
            if (e.type === 'run-started' || e.type === 'phase' || e.type === 'run-finished') console.error(`${(performance.now() / 1000).toFixed(3)} ${e.type} ${'phase' in e ? e.phase : ''} ${'toVersion' in e ? `v${e.fromVersion}..v${e.toVersion}` : ''}`);
          },
        }
        : undefined,
      onRetry: (e, d) => console.error(`retry in ${d} ms: ${e.message}`),
    });
    await initial;
    console.log(`${new Date().toISOString()}  ${loadLine()}`);
    console.log(`watch on a local table of ${args.rows} rows, poll floor ${formatDuration(args.intervalMs)}; ${args.commits} commits at random gaps of ${args.gapMinMs}-${args.gapMaxMs} ms, each one marker row and 5 updates`);

    const committedAt = new Map<number, number>();
    const lags: number[] = [];
    let writing = true;
    const poller = (async () => {
      while (writing || lags.length < committedAt.size) {
        const pending = [...committedAt.keys()].filter((n) => committedAt.get(n) !== -1);
        if (pending.length) {
          const r = await probe.query<{ id: string }>(`SELECT id::text FROM public.${table} WHERE id = ANY($1::bigint[])`, [pending.map((n) => MARKER + n)]);
          const now = performance.now();
          for (const row of r.rows) {
            const n = Number(row.id) - MARKER;
            const at = committedAt.get(n);
            if (at === undefined || at === -1) continue;
            lags.push(now - at);
            committedAt.set(n, -1);
          }
        }
        await sleep(10);
      }
    })();
    for (let n = 1; n <= args.commits; n++) {
      await sleep(args.gapMinMs + Math.random() * (args.gapMaxMs - args.gapMinMs));
      const updates: Row[] = [];
      for (let k = 0; k < 5; k++) {
        const id = 1 + Math.floor(Math.random() * args.rows);
        updates.push({ id: BigInt(id), name: `row ${id} at commit ${n}` });
      }
      await w.merge('id', [{ id: BigInt(MARKER + n), name: `marker ${n}` }, ...updates]);
      committedAt.set(n, performance.now());
      if (process.env.LAG_TRACE) console.error(`${(performance.now() / 1000).toFixed(3)} committed v${w.version}`);
    }
    writing = false;
    const deadline = performance.now() + 60_000;
    while (lags.length < args.commits && performance.now() < deadline) await sleep(50);
    if (lags.length < args.commits) throw new Error(`only ${lags.length} of ${args.commits} commits became visible within 60 s`);
    await poller;
    const sorted = [...lags].sort((a, b) => a - b);
    const p50 = quantile(sorted, 0.5);
    console.log(`commit -> visible over ${sorted.length} commits: p50 ${formatDuration(p50)}, p95 ${formatDuration(quantile(sorted, 0.95))}, max ${formatDuration(sorted[sorted.length - 1] as number)}, min ${formatDuration(sorted[0] as number)}`);
    console.log(`after: ${loadLine()}`);
    console.log(p50 < 2_000 ? 'target p50 < 2 s: met' : 'target p50 < 2 s: MISSED');
    abort.abort();
    await watch;
    if (p50 >= 2_000) process.exitCode = 1;
  } finally {
    abort.abort();
    await probe.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await db.close();
  }
}

runBench(main);
