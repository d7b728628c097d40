/**
 * Crossover benchmark (issue 15, point 3: "snapshot or incremental, chosen by cost"): the
 * time to bring a target from version 1 to version 2 of a table whose version 2 changed a
 * given share of the rows, three ways: the incremental sync (Change Data Feed, the apply
 * path), a snapshot swap (initial load of version 2 into a new table, swapped in) and a
 * repair by checksums. The share at which the incremental stops being the cheapest is the
 * crossover a `mode: auto` uses (`auto.maxChangeShare`'s default, `DEFAULT_MAX_CHANGE_SHARE`).
 *
 *   npx tsx bench/crossoverBench.ts [rows=1000000] [--shares 5,10,20,30,40,50]
 *       [--ways incremental,swap,repair] [--no-check]
 *
 * A quick run: `npx tsx bench/crossoverBench.ts 100000 --ways incremental,swap`. The last
 * lines print the crossover: the share, linearly interpolated between the two measured
 * shares around it, where the incremental's time first exceeds the swap's (and the repair's).
 *
 * The table is written by the project's writer (a bigint key, text, double, timestamp,
 * CDF on) under bench/.data (cached by rows and share); the target is a throwaway server with
 * the server's durability defaults. Before each measured run the target is reset to
 * version 1 by an initial load (not timed). Each run is checked: the target's checksums
 * equal version 2's afterwards (a dry-run repair finds no difference).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeltaTableWriter } from '../src/fixtures/DeltaTableWriter';
import { mulberry32 as prng } from '../src/fixtures/prng';
import type { Row } from '../src/sync/delta/types';
import { parseMapping } from '../src/sync/mapping/loadMapping';
import { createPool } from '../src/sync/postgres/createPool';
import { openSource } from '../src/sync/open/openSource';
import { mappingTarget } from '../src/sync/open/openTarget';
import { SyncRunner } from '../src/sync/run/SyncRunner';
import { startThrowawayServer } from '../test/helpers/postgres';

type Way = 'incremental' | 'swap' | 'repair';
const WAYS: readonly Way[] = ['incremental', 'swap', 'repair'];

function parseArgs(argv: string[]): { rows: number; shares: number[]; ways: Way[]; check: boolean } {
  const args = { rows: 1_000_000, shares: [5, 10, 20, 30, 40, 50], ways: [...WAYS], check: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--shares') args.shares = (argv[++i] ?? '').split(',').map(Number);
    else if (a === '--ways') {
      args.ways = (argv[++i] ?? '').split(',').map((w) => {
        if (!(WAYS as readonly string[]).includes(w)) throw new Error(`--ways: unknown way ${w} (one of ${WAYS.join(', ')})`);
        return w as Way;
      });
    } else if (a === '--no-check') args.check = false;
    else if (/^\d+$/.test(a)) args.rows = Number(a);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.ways.includes('incremental')) throw new Error('--ways must include incremental (the crossover is measured against it)');
  return args;
}

/**
 * The share at which `slower(share) - faster(share)` first turns positive, linearly
 * interpolated between the two measured shares around it; null when it never does
 * (`below` when it is positive from the first share on).
 */
function crossoverShare(points: Array<{ share: number; incremental: number; other: number }>): { share: number | null; below: boolean } {
  const sorted = [...points].sort((a, b) => a.share - b.share);
  const first = sorted[0];
  if (!first) return { share: null, below: false };
  if (first.incremental > first.other) return { share: first.share, below: true };
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] as (typeof sorted)[number];
    const b = sorted[i] as (typeof sorted)[number];
    const da = a.incremental - a.other;
    const db = b.incremental - b.other;
    if (db > 0) return { share: a.share + ((b.share - a.share) * (0 - da)) / (db - da), below: false };
  }
  return { share: null, below: false };
}

function rowAt(id: number, tag: string): Row {
  return { id: BigInt(id), name: `customer ${id}${tag}`, score: id / 7, at: BigInt(Date.UTC(2026, 0, 1)) * 1000n + BigInt(id) * 1_000_000n };
}

/** Version 1: `rows` rows; version 2: `share`% of them updated (random keys, fixed seed). */
async function sourceTable(rows: number, share: number): Promise<string> {
  const dir = path.join(__dirname, '.data', `crossover_${rows}_${share}pct_v1`);
  if (fs.existsSync(path.join(dir, '_delta_log', '00000000000000000002.json'))) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  const w = await DeltaTableWriter.create(dir, {
    columns: [
      { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
      { name: 'name', type: { kind: 'primitive', name: 'string' } },
      { name: 'score', type: { kind: 'primitive', name: 'double' } },
      { name: 'at', type: { kind: 'primitive', name: 'timestamp' } },
    ],
    configuration: { 'delta.enableChangeDataFeed': 'true' },
  });
  await w.append(Array.from({ length: rows }, (_, i) => rowAt(i + 1, '')));
  const next = prng(share);
  const picked = new Set<number>();
  const n = Math.round((rows * share) / 100);
  while (picked.size < n) picked.add(1 + Math.floor(next() * rows));
  await w.update('id', [...picked].map((id) => rowAt(id, ' (changed)')));
  return dir;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const server = await startThrowawayServer({ fast: false });
  const pool = createPool(server.adminUrl, { max: 4 });
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  console.log(`${args.rows} rows; node ${process.version}; ${os.cpus().length} CPUs; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const label: Record<Way, string> = { incremental: 'incremental', swap: 'snapshot swap', repair: 'repair' };
  console.log(`| changed | ${args.ways.map((w) => label[w]).join(' | ')} | cheapest | load |`);
  console.log(`|---:|${args.ways.map(() => '---:|').join('')}---|---:|`);
  const measured: Array<{ share: number } & Partial<Record<Way, number>>> = [];
  try {
    for (const share of args.shares) {
      const dir = await sourceTable(args.rows, share);
      const mapping = parseMapping({ name: `crossover-${share}`, source: { type: 'delta', path: dir }, target: { connection: 'bench', table: `crossover_${share}` }, key: ['id'] });
      const runner = new SyncRunner(mapping, await openSource(mapping.source), mappingTarget(pool, mapping.target));
      const times: Partial<Record<Way, number>> = {};
      const run: Record<Way, () => Promise<unknown>> = {
        incremental: () => runner.run({ mode: 'incremental', toVersion: 2 }),
        swap: () => runner.run({ mode: 'initial', toVersion: 2 }),
        repair: () => runner.repair({ toVersion: 2 }),
      };
      for (const way of args.ways) {
        const fn = run[way];
        await runner.run({ mode: 'initial', toVersion: 1 });
        await pool.query(`VACUUM ANALYZE crossover_${share}`);
        await pool.query('CHECKPOINT');
        const t = Date.now();
        await fn();
        times[way] = Date.now() - t;
        if (!args.check) continue;
        const check = await runner.repair({ dryRun: true, limit: 1, toVersion: 2 });
        if (!check.equal) {
          console.error(`${way} at ${share}%: the target differs from version 2 afterwards`);
          process.exitCode = 1;
        }
      }
      const cheapest = (Object.entries(times) as Array<[Way, number]>).sort((a, b) => a[1] - b[1])[0]?.[0];
      measured.push({ share, ...times });
      console.log(`| ${share}% | ${args.ways.map((w) => s(times[w] ?? 0)).join(' | ')} | ${cheapest ? label[cheapest] : ''} | ${os.loadavg()[0]?.toFixed(1)} |`);
    }
    for (const other of args.ways.filter((w) => w !== 'incremental')) {
      const c = crossoverShare(measured.map((m) => ({ share: m.share, incremental: m.incremental ?? 0, other: m[other] ?? 0 })));
      const said =
        c.share === null ? `the incremental is faster at every measured share (up to ${Math.max(...args.shares)}%)`
        : c.below ? `the incremental is slower already at ${c.share}% (the first measured share)`
        : `the incremental stops winning at about ${c.share.toFixed(1)}% changed (interpolated)`;
      console.log(`crossover against the ${label[other]}: ${said}`);
    }
  } finally {
    await pool.end();
    await server.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
