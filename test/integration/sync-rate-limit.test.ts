import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import type { SyncEvent } from '../../src/sync/ports/events';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * batch.maxRowsPerSecond paces the initial load as well as incremental syncs: a backfill
 * is the heaviest load a target serving an application meets. Only lower bounds on the
 * duration are asserted (a slower machine makes a run longer, never shorter), and Stop
 * during the paced load leaves the target untouched.
 */
describe('batch.maxRowsPerSecond on an initial load (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_rate');

  async function sample(rows: number): Promise<string> {
    const dir = await tempDir();
    return (await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows })).path;
  }

  for (const thread of ['worker', 'main'] as const) {
    it(`paces the snapshot rows sent by COPY (read on the ${thread} thread) and still loads every row`, async () => {
      const table = await sample(3000);
      const mapping = buildMapping({
        name: `rate-${thread}`,
        source: table,
        target: `paced_${thread}`,
        key: ['customer_id'],
        batch: { maxRows: 1000, maxRowsPerSecond: 2000 },
      });
      const previous = process.env.DELTA_NEON_SYNC_READ_THREAD;
      if (thread === 'main') process.env.DELTA_NEON_SYNC_READ_THREAD = 'main';
      const r = await openRunner(mapping, db().url);
      try {
        const t0 = Date.now();
        const res = await r.runner.run({ mode: 'initial' });
        const ms = Date.now() - t0;
        assert.equal(res.status, 'succeeded');
        assert.equal(res.inserted, res.rowsRead);
        // 3000 rows at 2000 rows/s: the last rows may leave no earlier than 1 s after the first
        // (the first batch goes at once; the worker's batches are 1000 rows, the main thread's fewer).
        assert.ok(ms >= 1000, `an initial load of ${res.rowsRead} rows at 2000 rows/s took only ${ms} ms`);
        await assertTargetEquals(db().url, { schema: 'public', name: `paced_${thread}` }, table, res.toVersion, { key: ['customer_id'] });
      } finally {
        if (previous === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
        else process.env.DELTA_NEON_SYNC_READ_THREAD = previous;
        await r.close();
      }
    });
  }

  it('Stop during a paced initial load ends it cancelled, with no table, no checkpoint and the run recorded', async () => {
    const table = await sample(3000);
    const mapping = buildMapping({
      name: 'rate-stop',
      source: table,
      target: 'paced_stop',
      key: ['customer_id'],
      batch: { maxRows: 1000, maxRowsPerSecond: 500 },
    });
    const r = await openRunner(mapping, db().url);
    const abort = new AbortController();
    try {
      const events: SyncEvent[] = [];
      const t0 = Date.now();
      setTimeout(() => abort.abort(), 800);
      // The paced load must not finish before Stop.
      await expectSyncError(r.runner.run({ mode: 'initial', signal: abort.signal, onEvent: (e) => events.push(e) }), { kind: 'cancelled' });
      // Stop does not wait for the pacing to run out (3000 rows at 500 rows/s is 6 s).
      assert.ok(Date.now() - t0 < 5000, `Stop took effect after ${Date.now() - t0} ms`);
      // Progress while reading says nothing is committed yet (the Progress panel's "Committed").
      const progress = events.filter((e): e is Extract<SyncEvent, { type: 'progress' }> => e.type === 'progress');
      assert.ok(progress.length > 0 && progress.some((e) => e.rowsRead > 0), 'progress was reported while reading');
      assert.deepEqual([...new Set(progress.map((e) => e.version))], [null]);
      const c = new pg.Client({ connectionString: db().url });
      await c.connect();
      try {
        assert.equal((await c.query(`SELECT to_regclass('public.paced_stop') AS t`)).rows[0].t, null);
        const staging = await c.query(`SELECT relname FROM pg_class WHERE relname LIKE '%paced_stop%'`);
        assert.deepEqual(staging.rows, [], 'no staging table is left');
      } finally {
        await c.end();
      }
      const status = await r.runner.status();
      assert.equal(status.checkpoint, null);
      assert.equal(status.runs[0]?.status, 'cancelled', JSON.stringify(status.runs));
    } finally {
      await r.close();
    }
  });
});
