import * as assert from 'node:assert/strict';
import { ProgressSnapshot as ProgressSnapshotSchema, type ProgressSnapshot } from '../../src/protocol/messages';
import { SyncError } from '../../src/sync/errors';
import type { SyncEvent } from '../../src/sync/ports/events';
import { MAX_THROUGHPUT_SAMPLES, Throttle, foldEvent } from '../../src/views/ProgressModel';
import { RunController } from '../../src/views/RunController';
import { expectSyncError } from '../helpers/expectSyncError';

const events: SyncEvent[] = [
  { type: 'run-started', runId: 'r1', pipeline: 'orders', mode: 'incremental', fromVersion: 4, toVersion: 9, at: 1000 },
  { type: 'phase', phase: 'apply', detail: 'batch 1', at: 1100 },
  { type: 'progress', rowsRead: 500, rowsApplied: 400, bytesRead: 1, batches: 1, version: 6, rowsPerSecond: 4000, etaSeconds: 2, totalRows: 1200, at: 1200 },
  { type: 'warning', message: 'column x ignored', at: 1250 },
  { type: 'batch-committed', fromVersion: 7, toVersion: 8, inserted: 1, updated: 2, deleted: 3, unchanged: 0, deadLettered: 0, at: 1300 },
  { type: 'run-finished', runId: 'r1', status: 'succeeded', checkpointVersion: 9, rowsApplied: 1200, at: 1400 },
];

describe('progress snapshots and the run controller', () => {
  it('folding a run\'s events yields valid snapshots that end succeeded at the checkpoint version', () => {
    let s: ProgressSnapshot = new RunController(() => 0).current();
    const seen: ProgressSnapshot[] = [];
    for (const e of events) {
      s = foldEvent(s, e);
      seen.push(s);
      assert.ok(ProgressSnapshotSchema.safeParse(s).success, e.type);
    }
    assert.equal(seen[0]?.status, 'running');
    assert.equal(seen[1]?.phase, 'apply: batch 1');
    assert.equal(seen[2]?.rowsApplied, 400);
    assert.deepEqual(seen[3]?.warnings, ['column x ignored']);
    assert.equal(seen[4]?.version, 8);
    assert.equal(s.status, 'succeeded');
    assert.equal(s.phase, 'done');
    assert.equal(s.version, 9);
    assert.equal(s.rowsApplied, 1200);
  });

  it('a repair started through the controller shows as mode "repair" in every snapshot (the protocol accepts it)', async () => {
    const c = new RunController(() => 0);
    const seen: ProgressSnapshot[] = [];
    c.onSnapshot((s) => seen.push(s));
    await c.start('orders', 'repair', (_signal, onEvent) => {
      onEvent({ type: 'run-started', runId: 'r2', pipeline: 'orders', mode: 'repair', fromVersion: 3, toVersion: 5, at: 10 });
      onEvent({ type: 'batch-committed', fromVersion: 5, toVersion: 5, inserted: 2, updated: 1, deleted: 1, unchanged: 0, deadLettered: 0, at: 20 });
      onEvent({ type: 'run-finished', runId: 'r2', status: 'succeeded', checkpointVersion: 5, rowsApplied: 4, at: 30 });
      return Promise.resolve();
    });
    assert.ok(seen.length >= 4);
    for (const s of seen) {
      assert.equal(s.mode, 'repair');
      assert.ok(ProgressSnapshotSchema.safeParse(s).success, JSON.stringify(s));
    }
    assert.equal(c.current().status, 'succeeded');
    assert.equal(c.current().version, 5);
  });

  it('a run that is cancelled or fails keeps the phase it stopped in and the version it last committed', () => {
    for (const status of ['cancelled', 'failed'] as const) {
      let s: ProgressSnapshot = new RunController(() => 0).current();
      for (const e of events.slice(0, 5)) s = foldEvent(s, e);
      s = foldEvent(s, { type: 'run-finished', runId: 'r1', status, checkpointVersion: null, rowsApplied: 400, at: 1500, ...(status === 'failed' ? { error: 'boom' } : {}) });
      assert.equal(s.status, status);
      assert.equal(s.phase, 'apply: batch 1');
      assert.equal(s.version, 8);
      assert.ok(ProgressSnapshotSchema.safeParse(s).success);
    }
  });

  it('progress events feed a bounded throughput series for the chart; a new run starts it afresh', () => {
    let s: ProgressSnapshot = foldEvent(new RunController(() => 0).current(), events[0] as SyncEvent);
    const n = MAX_THROUGHPUT_SAMPLES + 15;
    for (let i = 0; i < n; i++) {
      s = foldEvent(s, { type: 'progress', rowsRead: i, rowsApplied: i, bytesRead: 0, batches: i, version: null, rowsPerSecond: i * 10, etaSeconds: null, totalRows: null, at: 2000 + i });
    }
    assert.equal(s.throughput?.length, MAX_THROUGHPUT_SAMPLES);
    assert.deepEqual(s.throughput?.[s.throughput.length - 1], [2000 + n - 1, (n - 1) * 10]);
    assert.deepEqual(s.throughput?.[0], [2000 + 15, 150], 'the oldest samples are dropped first');
    assert.ok(ProgressSnapshotSchema.safeParse(s).success);
    s = foldEvent(s, { ...(events[0] as Extract<SyncEvent, { type: 'run-started' }>), runId: 'r2' });
    assert.deepEqual(s.throughput, []);
  });

  it('a second run while one is active is refused', async () => {
    const runs = new RunController();
    let release!: () => void;
    const first = runs.start('a', 'initial', () => new Promise<void>((r) => (release = r)));
    await expectSyncError(runs.start('b', 'initial', async () => undefined), { kind: 'usage' });
    release();
    await first;
    assert.equal(runs.current().status, 'succeeded');
    assert.equal(runs.running, false);
  });

  it('stop aborts the run through its AbortSignal and ends cancelled without rejecting', async () => {
    const runs = new RunController();
    const statuses: string[] = [];
    runs.onSnapshot((s) => statuses.push(s.status));
    const done = runs.start('a', 'incremental', (signal) =>
      new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    );
    assert.equal(runs.stop(), true);
    await done;
    assert.equal(runs.current().status, 'cancelled');
    assert.deepEqual(statuses, ['running', 'stopping', 'cancelled']);
    assert.equal(runs.stop(), false);
  });

  it('a failing run rejects and its last snapshot carries the error and hint', async () => {
    const runs = new RunController();
    let terminal: ProgressSnapshot | undefined;
    runs.onSnapshot((s, isTerminal) => {
      if (isTerminal) terminal = s;
    });
    await assert.rejects(runs.start('a', 'initial', async () => {
      throw new SyncError('target', 'relation missing', { hint: 'run the initial load' });
    }));
    assert.equal(terminal?.status, 'failed');
    assert.deepEqual(terminal?.error, { message: 'relation missing', kind: 'target', hint: 'run the initial load' });
  });

  it("a failed run's snapshot carries the setting its error names, with the mapping file for a mapping key (the Progress panel's Open Setting)", async () => {
    const failWith = async (error: SyncError, file?: string): Promise<ProgressSnapshot> => {
      const runs = new RunController();
      let terminal: ProgressSnapshot | undefined;
      runs.onSnapshot((s, isTerminal) => {
        if (isTerminal) terminal = s;
      });
      await assert.rejects(runs.start('orders', 'incremental', async () => {
        throw error;
      }, file));
      assert.ok(terminal && ProgressSnapshotSchema.safeParse(terminal).success, 'the snapshot passes the protocol');
      return terminal;
    };
    const massDelete = new SyncError('mapping', 'The batch would delete 80% of orders.', { setting: 'safety.maxDeleteShare', hint: 'Raise safety.maxDeleteShare.' });
    assert.deepEqual((await failWith(massDelete, '/ws/.delta-sync/orders.json')).error?.setting, { scope: 'mapping', key: 'safety.maxDeleteShare', file: '/ws/.delta-sync/orders.json' });
    // A mapping key without the mapping's file: nothing to open.
    assert.equal((await failWith(massDelete)).error?.setting, undefined);
    const pageSize = new SyncError('usage', 'Too big.', { setting: 'deltaSync.preview.pageSize' });
    assert.deepEqual((await failWith(pageSize)).error?.setting, { scope: 'vscode', key: 'deltaSync.preview.pageSize' });
    // A connection-string parameter lives in no file the editor opens.
    const ssl = new SyncError('connection', 'TLS refused.', { setting: 'sslmode' });
    assert.equal((await failWith(ssl, '/ws/.delta-sync/orders.json')).error?.setting, undefined);
  });

  it('the throttle posts the first value at once, then only the latest per interval', async () => {
    const posted: number[] = [];
    const t = new Throttle<number>(30, (v) => posted.push(v));
    t.push(1);
    t.push(2);
    t.push(3);
    assert.deepEqual(posted, [1]);
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(posted, [1, 3]);
    t.flushNow(4);
    assert.deepEqual(posted, [1, 3, 4]);
    t.dispose();
  });
});
