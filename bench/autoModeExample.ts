/**
 * The README's `"mode": "auto"` example, from a real run of the CLI (issue 15, point 3):
 * a table of `rows` customers (default 100,000) written by the project's writer with the
 * Change Data Feed on, a mapping with `"mode": "auto"` and `auto.maxChangeShare` 0.3 (the
 * default), a throwaway Postgres. It runs, and prints verbatim:
 *
 *   1. `sync` (the initial load), not printed;
 *   2. 42% of the rows updated in one version: `sync` (mode auto loads the snapshot);
 *   3. 1.2% updated: `preview --limit 3` (mode auto stays incremental), then `sync`;
 *   4. `status` (the run history: each auto run's path and why).
 *
 *   npx tsx bench/autoModeExample.ts [rows=100000]
 *
 * Times, paths and the server's port change from run to run; the counts and the reasons do not.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeltaTableWriter } from '../src/fixtures/DeltaTableWriter';
import type { Row } from '../src/sync/delta/types';
import { long, string } from '../test/builders/deltaFields';
import { startThrowawayServer } from '../test/helpers/postgres';
import { CLI, buildCli } from '../test/helpers/syncHarness';

const rows = Number(process.argv[2] ?? 100_000);

function cli(cwd: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    // stderr and stdout in the order they were written, as a terminal shows them.
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-auto-example-'));
  const server = await startThrowawayServer();
  try {
    await buildCli();
    const url = server.adminUrl;
    const customer = (id: number, tag = ''): Row => ({ id: BigInt(id), name: `customer ${id}${tag}`, city: ['Berlin', 'Lisbon', 'Oslo', 'Rome'][id % 4] as string });
    const ids = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const w = await DeltaTableWriter.create(path.join(dir, 'customers'), {
      columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }, { name: 'city', type: string() }],
      configuration: { 'delta.enableChangeDataFeed': 'true' },
    });
    await w.append(ids(1, rows).map((i) => customer(i)));
    fs.mkdirSync(path.join(dir, '.delta-sync'));
    const mapping = {
      name: 'customers', source: { type: 'delta', path: '../customers' }, target: { connection: '${env:DATABASE_URL}', table: 'customers' }, key: ['id'],
      mode: 'auto', auto: { maxChangeShare: 0.3 },
    };
    fs.writeFileSync(path.join(dir, '.delta-sync', 'customers.json'), JSON.stringify(mapping, null, 2));
    const env = { DATABASE_URL: url };
    const m = ['--mapping', '.delta-sync/customers.json'];
    const run = async (args: string[], show = true): Promise<void> => {
      const r = await cli(dir, args, env);
      if (r.code !== 0) throw new Error(`delta-neon-sync ${args.join(' ')} exited ${r.code}:\n${r.out}`);
      if (show) process.stdout.write(`$ delta-neon-sync ${args.join(' ')}\n${r.out}`);
    };
    await run(['sync', ...m], false);
    await w.update('id', ids(1, Math.round(rows * 0.42)).map((i) => customer(i, ' (moved)')));
    await run(['sync', ...m]);
    await w.update('id', ids(1, Math.round(rows * 0.012)).map((i) => customer(i, ' (renamed)')));
    await run(['preview', ...m, '--limit', '3']);
    await run(['sync', ...m]);
    await run(['status', ...m]);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
