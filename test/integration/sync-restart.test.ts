import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import pg from 'pg';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { customerAt, upgradedCustomer } from '../../src/fixtures/customerProfiles';
import type { SyncEvent } from '../../src/sync/ports/events';
import { buildMapping } from '../builders/mappings';
import { getTestServer, useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Acceptance 4: the server goes down (immediate shutdown: every connection dies) and comes
 * back while a sync runs; the runner retries the transient errors with backoff, resumes
 * from its checkpoint, and ends equal to the source; the run history shows the failed
 * attempt and the successful one.
 */

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a pg_ctl command asynchronously (as the postgres OS user when root), like the harness does synchronously. */
function pgCtl(binDir: string, args: string[]): Promise<void> {
  const bin = path.join(binDir, 'pg_ctl');
  const child = isRoot ? spawn('runuser', ['-u', 'postgres', '--', bin, ...args], { stdio: 'ignore' }) : spawn(bin, args, { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pg_ctl ${args.join(' ')} exited ${code}`))));
  });
}

/** The throwaway cluster's data directory and server binaries (the harness records them in owner.pid beside the data). */
async function clusterDirs(adminUrl: string): Promise<{ dataDir: string; binDir: string }> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const dataDir = (await admin.query<{ data_directory: string }>('SHOW data_directory')).rows[0]!.data_directory;
    const exe = (await admin.query<{ s: string }>(`SELECT setting AS s FROM pg_settings WHERE name = 'data_directory'`)).rows[0]!.s;
    assert.equal(exe, dataDir);
    const binDir = require('node:fs').readFileSync(path.join(path.dirname(dataDir), 'owner.pid'), 'utf8').split('\n')[1] as string;
    return { dataDir, binDir };
  } finally {
    await admin.end();
  }
}

describe('sync survives a Postgres restart mid-run (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_restart');

  it('retries transient connection errors with backoff and ends equal to the source; the run history shows the interrupted attempt', async function () {
    const server = await getTestServer();
    if (!server.canRestart) this.skip();
    const { dataDir, binDir } = await clusterDirs(server.adminUrl);

    const dir = await tempDir();
    const t = await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 2000 });
    // 12 more versions of 100 updates each, so the incremental sync has many small batches.
    const w = await DeltaTableWriter.open(t.path);
    for (let i = 0; i < 12; i++) {
      const ids: number[] = [];
      // The sample deleted customers 2, 3, 52, 53, ... (i % 50 in {2, 3}): skip those.
      for (let k = 1 + i * 150; ids.length < 100; k++) if (k % 50 !== 2 && k % 50 !== 3) ids.push(k);
      await w.update('customer_id', ids.map((k) => upgradedCustomer(customerAt(k))));
    }
    const latest = w.version;
    const mapping = buildMapping({
      name: 'restart',
      source: t.path,
      target: 'customer_profiles',
      key: ['customer_id'],
      // One version per batch, throttled so the run lasts while the server restarts.
      batch: { maxRows: 50, maxRowsPerSecond: 400 },
    });
    const r = await openRunner(mapping, db().url);
    try {
      await r.runner.run({ mode: 'initial', toVersion: 1 });
      const events: SyncEvent[] = [];
      let restart: Promise<void> | undefined;
      const res = await r.runner.run({
        mode: 'incremental',
        backoffMs: 300,
        maxAttempts: 8,
        onEvent: (e) => {
          events.push(e);
          if (e.type === 'batch-committed' && !restart) {
            // Immediate stop (connections die, as in a crash), down for 1.5 s, then up again.
            restart = (async () => {
              await pgCtl(binDir, ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
              await new Promise((ok) => setTimeout(ok, 1500));
              await pgCtl(binDir, ['-D', dataDir, '-w', '-t', '60', '-l', path.join(path.dirname(dataDir), 'log'), 'restart']);
            })();
          }
        },
      });
      await restart;
      assert.equal(res.status, 'succeeded');
      assert.equal(res.toVersion, latest);
      const retries = events.filter((e): e is Extract<SyncEvent, { type: 'warning' }> => e.type === 'warning' && /retrying in \d+ ms/.test(e.message));
      assert.ok(retries.length >= 1, `a retry was announced: ${JSON.stringify(events.filter((e) => e.type === 'warning'))}`);
      await assertTargetEquals(db().url, { schema: 'public', name: 'customer_profiles' }, t.path, latest, { key: ['customer_id'] });
      assert.equal((await r.runner.verify()).equal, true);
      const status = await r.runner.status();
      assert.equal(status.checkpoint?.version, BigInt(latest));
      const incremental = status.runs.filter((x) => x.mode === 'incremental');
      assert.equal(incremental[0]?.status, 'succeeded', JSON.stringify(status.runs));
      assert.ok(incremental.length >= 2, `the interrupted attempt is in the history: ${JSON.stringify(status.runs)}`);
      assert.ok(incremental.slice(1).some((x) => x.status !== 'succeeded'), JSON.stringify(status.runs));
    } finally {
      await r.close();
    }
  });
  it('a server down for 8.5 s is waited out by the default retry budget (60 s), one warning per attempt, instead of giving up after five quick attempts', async function () {
    this.timeout(40_000);
    const server = await getTestServer();
    if (!server.canRestart) this.skip();
    const { dataDir, binDir } = await clusterDirs(server.adminUrl);
    const dir = await tempDir();
    const t = await createCustomerProfilesTable(path.join(dir, 'down_for_a_while'), { rows: 200 });
    const mapping = buildMapping({ name: 'down-for-a-while', source: t.path, target: 'down_for_a_while', key: ['customer_id'] });
    const r = await openRunner(mapping, db().url);
    try {
      await pgCtl(binDir, ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      // (restart, as above: it starts a stopped server too)
      const up = (async () => {
        await new Promise((ok) => setTimeout(ok, 8500));
        await pgCtl(binDir, ['-D', dataDir, '-w', '-t', '60', '-l', path.join(path.dirname(dataDir), 'log'), 'restart']);
      })();
      const events: SyncEvent[] = [];
      const res = await r.runner.run({ mode: 'initial', onEvent: (e) => events.push(e) }).finally(() => up);
      assert.equal(res.status, 'succeeded');
      const retries = events.filter((e): e is Extract<SyncEvent, { type: 'warning' }> => e.type === 'warning' && /retrying in \d+ ms/.test(e.message));
      assert.ok(retries.length >= 5, `more than the five attempts of before: ${retries.length}`);
      const attempts = retries.map((e) => /\(attempt (\d+),/.exec(e.message)?.[1]);
      assert.deepEqual(attempts, [...new Set(attempts)], 'one warning per attempt');
      assert.match(retries[0]!.message, /Waiting for the database at [^ ]+:\d+ to accept connections \(connection refused/);
    } finally {
      await r.close();
    }
  });
});
