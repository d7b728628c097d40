import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { long, string } from '../builders/deltaFields';
import { freePort, useTestDatabase } from '../helpers/postgres';
import { buildCli, pollUntil, runCli, startCli, tempDir } from '../helpers/syncHarness';

/**
 * Issue 11, the CLI's part of connections, locks and signals: the first SIGINT cancels the
 * statement in flight (here a lock wait) and the process exits once the server rolled it
 * back; each retry is printed once, and --retry-for sets the retry budget.
 */

function rows(a: number, b: number): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: BigInt(i), name: `item ${i}` });
  return out;
}

describe('CLI: signals and retries (real server, CLI processes)', function () {
  this.timeout(20_000);
  const db = useTestDatabase('cli_signals');
  let dir: string;
  let table: DeltaTableWriter;

  before(async function () {
    this.timeout(120_000);
    await buildCli();
    dir = await tempDir();
    table = await DeltaTableWriter.create(path.join(dir, 'items'), {
      columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }],
      configuration: { 'delta.enableChangeDataFeed': 'true' },
    });
    await table.append(rows(1, 10));
  });

  it('the first SIGINT cancels a statement waiting on a lock: the CLI exits at once, nothing of the batch is applied, no session is left waiting', async () => {
    const url = new URL(db().url);
    url.searchParams.set('lock_timeout', '60000');
    const args = ['sync', '--source', table.path, '--target', url.toString(), '--table', 'public.sig_items', '--key', 'id'];
    const first = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    await table.append(rows(11, 15));
    const holder = new pg.Client({ connectionString: db().url });
    await holder.connect();
    const watcher = new pg.Client({ connectionString: db().url });
    await watcher.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE public.sig_items IN ACCESS EXCLUSIVE MODE');
      const { child, done } = startCli(args);
      // Its own session: pg_stat_activity is a snapshot per transaction, and the holder's is open.
      const waitingPid = await pollUntil(async () => {
        const r = await watcher.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE application_name = 'delta-neon-sync' AND wait_event_type = 'Lock' AND datname = current_database()`,
        );
        return r.rows[0]?.pid;
      }, { timeoutMs: 10_000, what: 'the sync to wait for the table lock' });
      const t = Date.now();
      child.kill('SIGINT');
      const res = await done;
      assert.ok(Date.now() - t < 5_000, `exited ${Date.now() - t} ms after SIGINT`);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /cancelled/i, res.stderr);
      await pollUntil(async () => {
        const r = await watcher.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [waitingPid]);
        return r.rowCount === 0 ? true : undefined;
      }, { timeoutMs: 5_000, what: 'the cancelled session to end' });
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await watcher.end();
    }
    const check = new pg.Client({ connectionString: db().url });
    await check.connect();
    try {
      const n = await check.query<{ n: string }>('SELECT count(*)::text AS n FROM public.sig_items');
      assert.equal(n.rows[0]?.n, '10', 'nothing of the cancelled batch was applied');
    } finally {
      await check.end();
    }
  });

  it('each retry is printed once, and --retry-for sets how long the run retries', async () => {
    const port = await freePort();
    const url = `postgresql://nobody@127.0.0.1:${port}/nodb`;
    const t = Date.now();
    const res = await runCli(['sync', '--source', table.path, '--target', url, '--table', 'public.x', '--key', 'id', '--retry-for', '2']);
    const took = Date.now() - t;
    assert.equal(res.code, 1);
    const lines = res.stderr.split('\n');
    const retries = lines.filter((l) => /retrying in \d+ ms/.test(l));
    assert.ok(retries.length >= 2, res.stderr);
    assert.equal(lines.filter((l) => /retrying after transient error/.test(l)).length, 0, `printed once, not also through the logger:\n${res.stderr}`);
    assert.equal(new Set(retries).size, retries.length, res.stderr);
    assert.match(res.stderr, new RegExp(`Could not connect to Postgres at 127\\.0\\.0\\.1:${port}`));
    assert.ok(took < 10_000, `--retry-for 2 bounds the run: ${took} ms`);
  });
});
