import assert from 'node:assert/strict';
import { dryRunReport, rowCounts, syncHistoryReport } from '../../src/views/reports';
import type { PipelineStatus } from '../../src/sync/ports/reports';

const result = { inserted: 1550, updated: 0, unchanged: 0, deleted: 0, deleteMissing: 0, rejected: [], staged: { upserts: 1550, deletes: 0 } };

describe('report panels: what the grids say', () => {
  it('a dry run counts from the checkpoint (v1 → v2, not v2 → v2), with separators', () => {
    const r = dryRunReport('orders', { fromVersion: 2, toVersion: 2, result });
    assert.equal(r.subtitle, 'incremental: checkpoint v1 → v2');
    assert.equal(r.facts.find((f) => f.label === 'Inserted')?.value, '1,550');
    assert.equal(dryRunReport('orders', { fromVersion: 3, toVersion: 2, result }).subtitle, 'up to date at version 2');
  });

  it('a dry run says what it did: the change feed applied, or mode auto\'s snapshot swap or merge rehearsed, each rolled back, then why', () => {
    const auto = { path: 'snapshot' as const, reason: 'snapshot swap: 42 changes are 42% of 100 rows, above auto.maxChangeShare 20%' };
    assert.equal(dryRunReport('orders', { fromVersion: 2, toVersion: 2, result }).note, 'Applied inside a transaction that was rolled back: nothing was written.');
    assert.equal(
      dryRunReport('orders', { fromVersion: 2, toVersion: 4, result, auto, rehearsed: { path: 'snapshot', load: 'swap' } }).note,
      `Rehearsed the snapshot swap: the snapshot at version 4 was staged beside the table and indexed, then swapped in inside a transaction that was rolled back: nothing was written (the staging table was dropped). Mode auto: ${auto.reason}.`,
    );
    assert.match(dryRunReport('orders', { fromVersion: 2, toVersion: 4, result, auto, rehearsed: { path: 'snapshot', load: 'merge' } }).note ?? '', /^Rehearsed the snapshot merge: .* merged into it inside a transaction that was rolled back/);
  });

  it('sync history names modes in words and versions from the checkpoint', () => {
    const s = {
      pipeline: 'orders', source: '/d/orders', target: 'public.orders', latestVersion: 2, checkpoint: { version: 2n }, lag: 0,
      runs: [
        { runId: '7', mode: 'initial-swap', status: 'succeeded', fromVersion: null, toVersion: '1', rows: '200000', startedAt: 's', finishedAt: 'f', error: null },
        { runId: '8', mode: 'incremental', status: 'succeeded', fromVersion: '2', toVersion: '2', rows: '3', startedAt: 's', finishedAt: 'f', error: null },
      ],
    } as unknown as PipelineStatus;
    const g = syncHistoryReport(s).grids[0];
    assert.deepEqual(g?.rows.map((r) => [r[1], r[3], r[4]]), [
      ['initial load (new table swapped in)', 'snapshot v1', '200,000'],
      ['incremental', 'checkpoint v1 → v2', '3'],
    ]);
  });

  it('sync history shows, for each run of mode auto, the path it took and why (the run log\'s auto_path, auto_reason)', () => {
    const why = 'incremental: 12 changes, 12% of 100 rows (at most auto.maxChangeShare 30%)';
    const swapWhy = 'snapshot swap: 42 changes are 42% of 100 rows, above auto.maxChangeShare 30%';
    const s = {
      pipeline: 'orders', source: '/d/orders', target: 'public.orders', latestVersion: 4, checkpoint: { version: 4n }, lag: 0,
      runs: [
        { runId: '9', mode: 'incremental', status: 'succeeded', fromVersion: '4', toVersion: '4', rows: '12', startedAt: 's', finishedAt: 'f', error: null, auto: { path: 'incremental', reason: why } },
        { runId: '8', mode: 'auto-swap', status: 'succeeded', fromVersion: '2', toVersion: '3', rows: '100', startedAt: 's', finishedAt: 'f', error: null, auto: { path: 'snapshot', reason: swapWhy } },
        { runId: '7', mode: 'incremental', status: 'succeeded', fromVersion: '2', toVersion: '2', rows: '3', startedAt: 's', finishedAt: 'f', error: null },
      ],
    } as unknown as PipelineStatus;
    const g = syncHistoryReport(s).grids[0];
    const at = g?.columns.findIndex((c) => c.name === 'mode auto') ?? -1;
    assert.ok(at > 0, 'a "mode auto" column');
    assert.deepEqual(g?.rows.map((r) => [r[1], r[at]]), [
      ['incremental (auto)', why],
      ['snapshot swapped in (mode auto: many changes)', swapWhy],
      ['incremental', null],
    ]);
  });

  it('reads row counts from MERGE and WRITE operationMetrics, null when not recorded', () => {
    assert.deepEqual(rowCounts({ version: 3, timestamp: 0, operationMetrics: { numTargetRowsInserted: '2', numTargetRowsUpdated: '5', numTargetRowsDeleted: '1' } }), { added: 2, updated: 5, removed: 1 });
    assert.deepEqual(rowCounts({ version: 1, timestamp: 0, operationMetrics: { numOutputRows: '1200' } }), { added: 1200, updated: null, removed: null });
    assert.deepEqual(rowCounts({ version: 0, timestamp: 0 }), { added: null, updated: null, removed: null });
  });
});
