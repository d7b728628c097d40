import * as assert from 'node:assert/strict';
import { ProgressSnapshot as ProgressSnapshotSchema, type ProgressSnapshot } from '../../src/protocol/messages';
import type { SyncEvent } from '../../src/sync/ports/events';
import { ProgressMeter, progressRate, type PhaseEvent } from '../../src/sync/run/RunContext';
import { foldEvent, percentDone, statusBarLook } from '../../src/views/ProgressModel';
import { RunController } from '../../src/views/RunController';

type Progress = Extract<SyncEvent, { type: 'progress' }>;

function progress(fields: Partial<Progress>): Progress {
  return { type: 'progress', rowsRead: 0, rowsApplied: 0, bytesRead: 0, batches: 0, version: null, rowsPerSecond: 0, etaSeconds: null, totalRows: null, at: 1, ...fields };
}

const started: SyncEvent = { type: 'run-started', runId: 'r1', pipeline: 'orders', mode: 'initial', fromVersion: null, toVersion: 7, at: 0 };

describe('the Progress panel says which path mode auto took', () => {
  it('run-started with auto folds its reason into the snapshot (valid to the protocol); a run without auto has none', () => {
    const reason = 'snapshot swap: 420,000 changes are 42% of 1,000,000 rows, above auto.maxChangeShare 30%';
    const s = foldEvent(new RunController(() => 0).current(), { ...started, fromVersion: 5, toVersion: 9, auto: { path: 'snapshot', reason } } as SyncEvent);
    assert.equal(s.auto, reason);
    assert.equal(ProgressSnapshotSchema.safeParse(s).success, true);
    // The next run starts clean.
    assert.equal(foldEvent(s, started).auto ?? null, null);
  });
});

describe('honest progress: totals, percent, ETA and run states', () => {
  describe('rate and ETA', () => {
    it('with no known total there is a rate but no ETA', () => {
      assert.deepEqual(progressRate(1000, 0, null, 2), { rowsPerSecond: 500, etaSeconds: null, totalRows: null });
    });

    it('while reading, the ETA is the rows left at the read rate', () => {
      assert.deepEqual(progressRate(50_000, 0, 200_000, 10), { rowsPerSecond: 5000, etaSeconds: 30, totalRows: 200_000 });
    });

    it('once rows are applied, the ETA follows the slower of reading and applying (a paced COPY)', () => {
      // 100 000 read but 20 000 applied in 10 s: 180 000 left at 2 000 rows/s.
      const r = progressRate(100_000, 20_000, 200_000, 10);
      assert.equal(r.etaSeconds, 90);
      assert.equal(r.rowsPerSecond, 10_000);
    });

    it('the ETA never goes below 0 when the stats undercount the rows', () => {
      assert.equal(progressRate(1200, 1200, 1000, 1).etaSeconds, 0);
    });

    it('the meter reports the total it is given from the first event, and rows applied as COPY takes them', () => {
      const seen: PhaseEvent[] = [];
      const meter = new ProgressMeter((e) => seen.push(e));
      meter.start();
      meter.totalRows = 5000;
      meter.report();
      meter.read(1000);
      meter.applied(1000);
      meter.report();
      const events = seen.filter((e): e is Omit<Progress, 'at'> => e.type === 'progress');
      assert.equal(events[0]?.totalRows, 5000);
      assert.equal(events[0]?.rowsApplied, 0);
      const last = events[events.length - 1];
      assert.equal(last?.rowsApplied, 1000);
      assert.equal(last?.totalRows, 5000);
      assert.notEqual(last?.etaSeconds, null);
    });
  });

  describe('percent', () => {
    it('is unknown without a total, counts rows read until rows are applied, then rows applied, capped at 100', () => {
      assert.equal(percentDone(10, 0, null), null);
      assert.equal(percentDone(50, 0, 200), 25);
      assert.equal(percentDone(150, 20, 200), 10);
      assert.equal(percentDone(300, 300, 200), 100);
      assert.equal(percentDone(0, 0, 0), 100);
    });

    it('is folded into the snapshot from progress events; a succeeded run ends at 100, a cancelled one has none (its staged rows were rolled back)', () => {
      let s: ProgressSnapshot = foldEvent(new RunController(() => 0).current(), { ...started, totalRows: 200_000 } as SyncEvent);
      // Known from run-started, before the first progress event.
      assert.equal(s.percent, 0);
      assert.equal(s.totalRows, 200_000);
      assert.equal(foldEvent(new RunController(() => 0).current(), started).percent ?? null, null, 'no total, no percent');
      s = foldEvent(s, progress({ rowsRead: 60_000, rowsApplied: 50_000, totalRows: 200_000, etaSeconds: 30 }));
      assert.equal(s.percent, 25);
      assert.equal(s.etaSeconds, 30);
      assert.ok(ProgressSnapshotSchema.safeParse(s).success);
      const cancelled = foldEvent(s, { type: 'run-finished', runId: 'r1', status: 'cancelled', checkpointVersion: null, rowsApplied: 0, at: 9 });
      assert.equal(cancelled.percent, null);
      assert.equal(cancelled.etaSeconds, null);
      const done = foldEvent(s, { type: 'run-finished', runId: 'r1', status: 'succeeded', checkpointVersion: 7, rowsApplied: 200_000, at: 9 });
      assert.equal(done.percent, 100);
    });
  });

  describe('run states', () => {
    it('a Stop that comes after the run committed does not turn its success into "cancelled"', async () => {
      const runs = new RunController();
      await runs.start('orders', 'initial', async (_signal, onEvent) => {
        onEvent(started);
        onEvent({ type: 'run-finished', runId: 'r1', status: 'succeeded', checkpointVersion: 7, rowsApplied: 10, at: 2 });
        runs.stop();
      });
      assert.equal(runs.current().status, 'succeeded');
    });

    it('a Stop the run ends on quietly (no run-finished event) is cancelled; a run that reports cancelled is cancelled', async () => {
      const quiet = new RunController();
      await quiet.start('orders', 'incremental', async (signal) => {
        quiet.stop();
        assert.ok(signal.aborted);
      });
      assert.equal(quiet.current().status, 'cancelled');

      const reported = new RunController();
      await reported.start('orders', 'incremental', async (_signal, onEvent) => {
        onEvent(started);
        reported.stop();
        onEvent({ type: 'run-finished', runId: 'r1', status: 'cancelled', checkpointVersion: null, rowsApplied: 0, error: 'Sync of pipeline "orders" was cancelled.', at: 3 });
      });
      assert.equal(reported.current().status, 'cancelled');
    });
  });

  describe('status bar item', () => {
    it('is hidden before any run', () => {
      assert.equal(statusBarLook(new RunController(() => 0).current()).visible, false);
    });

    it('shows the running mapping with its phase, percent and rows, then how the run ended', () => {
      let s: ProgressSnapshot = foldEvent(new RunController(() => 0).current(), started);
      s = foldEvent(s, { type: 'phase', phase: 'stage', detail: 'COPY into the staging table', at: 1 });
      s = foldEvent(s, progress({ rowsRead: 120_000, rowsApplied: 100_000, totalRows: 200_000 }));
      const running = statusBarLook(s);
      assert.equal(running.visible, true);
      assert.equal(running.text, '$(sync~spin) orders: stage 50% · 100,000 rows');
      assert.match(running.tooltip, /100,000 rows applied of 200,000/);
      assert.equal(running.error, false);
      const cancelled = statusBarLook(foldEvent(s, { type: 'run-finished', runId: 'r1', status: 'cancelled', checkpointVersion: null, rowsApplied: 0, at: 2 }));
      assert.equal(cancelled.text, '$(circle-slash) orders: cancelled · 0 rows');
      const failed = statusBarLook(foldEvent(s, { type: 'run-finished', runId: 'r1', status: 'failed', checkpointVersion: null, rowsApplied: 0, error: 'boom', at: 2 }));
      assert.equal(failed.error, true);
      assert.match(failed.tooltip, /boom/);
    });
  });
});
