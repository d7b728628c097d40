import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import type { SyncEvent } from '../../src/sync/ports/events';
import type { InitialLoadRequest } from '../../src/sync/ports/Target';
import { openSource } from '../../src/sync/open/openSource';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { createPool } from '../../src/sync/postgres/createPool';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
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
/** The same rows, counting each batch (or encoded message) as the target pulls it. */
function countingRows(rows: InitialLoadRequest['rows'], count: (n: number) => void): InitialLoadRequest['rows'] {
  if ('encoded' in rows) {
    const encoded = rows.encoded;
    return { encoded: (async function* () { for await (const m of encoded) { count(m.count); yield m; } })() };
  }
  return (async function* () { for await (const b of rows) { count(b.length); yield b; } })();
}

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
      process.env.DELTA_NEON_SYNC_READ_THREAD = thread; // 'worker' even for small reads
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
    // Count the rows the target takes from the paced stream (what COPY is given).
    let sent = 0;
    const pool = createPool(db().url, { max: 4 });
    const target = mappingTarget(pool, mapping.target);
    const initialLoad = target.initialLoad.bind(target);
    target.initialLoad = (req) => initialLoad({ ...req, rows: countingRows(req.rows, (n) => (sent += n)) });
    const r = { runner: new SyncRunner(mapping, await openSource(mapping.source), target), close: () => pool.end() };
    const abort = new AbortController();
    try {
      const events: SyncEvent[] = [];
      // Stop once the first rows have been read (not after a fixed time, which a loaded machine stretches).
      const onEvent = (e: SyncEvent): void => {
        events.push(e);
        if (e.type === 'progress' && e.rowsRead > 0 && !abort.signal.aborted) abort.abort();
      };
      await expectSyncError(r.runner.run({ mode: 'initial', signal: abort.signal, onEvent }), { kind: 'cancelled' });
      // Progress while reading says nothing is committed yet (the Progress panel's "Committed").
      const progress = events.filter((e): e is Extract<SyncEvent, { type: 'progress' }> => e.type === 'progress');
      assert.ok(progress.length > 0 && progress.some((e) => e.rowsRead > 0), 'progress was reported while reading');
      // Stop does not wait for the pacing to run out (3000 rows at 500 rows/s): the run ends
      // cancelled without handing the rest of the table to COPY.
      assert.ok(sent > 0 && sent < 3000, `rows given to COPY before the run stopped: ${sent} of 3000`);
      const finished = events.filter((e) => e.type === 'run-finished');
      assert.deepEqual(finished.map((e) => e.type === 'run-finished' && [e.status, e.rowsApplied]), [['cancelled', 0]]);
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
