/**
 * Crossover benchmark (issue 15, point 3: "snapshot or incremental, chosen by cost"): the
 * time to bring a target from version 1 to version 2 of a table whose version 2 changed a
 * given share of the rows, three ways: the incremental sync (Change Data Feed, the apply
 * path), a snapshot swap (initial load of version 2 into a new table, swapped in) and a
 * repair by checksums. The share at which the incremental stops being the cheapest is the
 * crossover a `mode: auto` would use.
 *
 *   npx tsx bench/crossoverBench.ts [rows=100000] [--shares 1,5,10,25,50]
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

function parseArgs(argv: string[]): { rows: number; shares: number[] } {
  const args = { rows: 100_000, shares: [1, 5, 10, 25, 50] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--shares') args.shares = (argv[++i] ?? '').split(',').map(Number);
    else if (/^\d+$/.test(a)) args.rows = Number(a);
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
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
  console.log(`${args.rows} rows; node ${process.version}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log('| changed | incremental | snapshot swap | repair | cheapest |');
  console.log('|---:|---:|---:|---:|---|');
  try {
    for (const share of args.shares) {
      const dir = await sourceTable(args.rows, share);
      const mapping = parseMapping({ name: `crossover-${share}`, source: { type: 'delta', path: dir }, target: { connection: 'bench', table: `crossover_${share}` }, key: ['id'] });
      const runner = new SyncRunner(mapping, await openSource(mapping.source), mappingTarget(pool, mapping.target));
      const times: Record<string, number> = {};
      const ways: Array<[string, () => Promise<unknown>]> = [
        ['incremental', () => runner.run({ mode: 'incremental', toVersion: 2 })],
        ['snapshot swap', () => runner.run({ mode: 'initial', toVersion: 2 })],
        ['repair', () => runner.repair({ toVersion: 2 })],
      ];
      for (const [way, fn] of ways) {
        await runner.run({ mode: 'initial', toVersion: 1 });
        await pool.query(`VACUUM ANALYZE crossover_${share}`);
        await pool.query('CHECKPOINT');
        const t = Date.now();
        await fn();
        times[way] = Date.now() - t;
        const check = await runner.repair({ dryRun: true, limit: 1, toVersion: 2 });
        if (!check.equal) {
          console.error(`${way} at ${share}%: the target differs from version 2 afterwards`);
          process.exitCode = 1;
        }
      }
      const cheapest = Object.entries(times).sort((a, b) => a[1] - b[1])[0]?.[0];
      console.log(`| ${share}% | ${s(times.incremental ?? 0)} | ${s(times['snapshot swap'] ?? 0)} | ${s(times.repair ?? 0)} | ${cheapest} (load ${os.loadavg()[0]?.toFixed(1)}) |`);
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
