import assert from 'node:assert/strict';
import * as path from 'node:path';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { SyncError } from '../../src/sync/errors';
import type { SyncEvent } from '../../src/sync/ports/events';
import { statusRows } from '../../src/views/MappingsModel';
import { RunController } from '../../src/views/RunController';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

type ProgressEvent = Extract<SyncEvent, { type: 'progress' }>;

/**
 * Honest progress of a long initial load (issue 13, point 6): the total comes from the
 * snapshot's log stats before any row is read, "rows applied" moves while COPY runs (not
 * only at the end), and a user's Stop, driven the way the extension drives it (the
 * RunController's AbortSignal, whose reason is a 'cancelled' SyncError), is recorded as
 * cancelled in the runs table, the run's snapshot and the Mappings tree rows.
 */
describe('progress and Stop of a paced initial load (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_progress_stop');

  async function sample(rows: number): Promise<string> {
    const dir = await tempDir();
    return (await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows })).path;
  }

  for (const thread of ['worker', 'main'] as const) {
    describe(`read on the ${thread} thread`, () => {
      let previous: string | undefined;
      beforeEach(() => {
        previous = process.env.DELTA_NEON_SYNC_READ_THREAD;
        process.env.DELTA_NEON_SYNC_READ_THREAD = thread; // 'worker' even for small reads
      });
      afterEach(() => {
        if (previous === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
        else process.env.DELTA_NEON_SYNC_READ_THREAD = previous;
      });

      it('reports the snapshot row count from the start and rows applied while COPY runs', async () => {
        const table = await sample(3000);
        const mapping = buildMapping({ name: `progress-${thread}`, source: table, target: `progress_${thread}`, key: ['customer_id'], batch: { maxRows: 1000, maxRowsPerSecond: 1000 } });
        const r = await openRunner(mapping, db().url);
        try {
          const events: SyncEvent[] = [];
          const res = await r.runner.run({ mode: 'initial', onEvent: (e) => events.push(e) });
          assert.equal(res.status, 'succeeded');
          const progress = events.filter((e): e is ProgressEvent => e.type === 'progress');
          // run-started (before any row is read) and every progress event know the total:
          // the fixture's 3000 customers plus its later versions' rows, the snapshot's live rows, all read.
          const started = events.find((e) => e.type === 'run-started');
          assert.equal(started?.type === 'run-started' ? started.totalRows : undefined, res.rowsRead);
          assert.ok(progress.length > 0 && progress.every((e) => e.totalRows === res.rowsRead), JSON.stringify(progress));
          // Before the load commits, some event shows rows applied part of the way, with an ETA.
          const committed = events.findIndex((e) => e.type === 'batch-committed');
          const during = events.slice(0, committed).filter((e): e is ProgressEvent => e.type === 'progress' && e.rowsApplied > 0 && e.rowsApplied < res.rowsRead);
          assert.ok(during.length > 0, `rows applied moved during the load: ${JSON.stringify(progress.map((e) => [e.rowsRead, e.rowsApplied]))}`);
          assert.ok(during.every((e) => e.totalRows === res.rowsRead && e.etaSeconds !== null), JSON.stringify(during));
          const last = progress[progress.length - 1] as ProgressEvent;
          assert.equal(last.rowsApplied, res.inserted);
        } finally {
          await r.close();
        }
      });

      it('a Stop from the RunController in the middle of COPY is recorded as cancelled everywhere', async () => {
        const table = await sample(3000);
        const mapping = buildMapping({ name: `stop-${thread}`, source: table, target: `stop_${thread}`, key: ['customer_id'], batch: { maxRows: 1000, maxRowsPerSecond: 500 } });
        const r = await openRunner(mapping, db().url);
        const runs = new RunController();
        try {
          const seen: ProgressEvent[] = [];
          await runs.start(mapping.name, 'initial', (signal, onEvent) =>
            r.runner.run({
              mode: 'initial',
              signal,
              onEvent: (e) => {
                onEvent(e);
                // Stop once COPY has taken rows: the moment the Stop came.
                if (e.type === 'progress' && e.rowsApplied > 0 && runs.running && runs.current().status === 'running') {
                  seen.push(e);
                  runs.stop();
                }
              },
            }).then(() => undefined),
          );
          assert.ok(seen.length > 0, 'the Stop came while COPY ran');
          assert.equal(runs.current().status, 'cancelled');
          assert.equal(runs.current().error, null);
          const status = await r.runner.status();
          assert.equal(status.runs[0]?.status, 'cancelled', JSON.stringify(status.runs));
          assert.notEqual(status.state.phase, 'errored', JSON.stringify(status.state));
          const rows = statusRows('stop.json', { state: 'ok', status });
          const lastRun = rows.find((n) => n.kind === 'status' && n.label === 'Last run');
          assert.ok(lastRun && lastRun.kind === 'status' && lastRun.detail.startsWith('cancelled') && lastRun.icon !== 'error', JSON.stringify(rows));
          assert.ok(!rows.some((n) => n.kind === 'status' && n.label === 'Error'), JSON.stringify(rows));
        } finally {
          await r.close();
        }
      });
    });
  }

  it('an abort whose reason is a cancelled SyncError is classified as cancelled, not as a failure', async () => {
    const table = await sample(2000);
    const mapping = buildMapping({ name: 'stop-reason', source: table, target: 'stop_reason', key: ['customer_id'], batch: { maxRows: 500, maxRowsPerSecond: 400 } });
    const r = await openRunner(mapping, db().url);
    const abort = new AbortController();
    try {
      const err = await r.runner
        .run({ mode: 'initial', signal: abort.signal, onEvent: (e) => { if (e.type === 'progress' && e.rowsApplied > 0 && !abort.signal.aborted) abort.abort(new SyncError('cancelled', 'Stopped by the user.')); } })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof SyncError && err.kind === 'cancelled', String(err));
      assert.equal((await r.runner.status()).runs[0]?.status, 'cancelled');
    } finally {
      await r.close();
    }
  });
});
