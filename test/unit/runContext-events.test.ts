import assert from 'node:assert/strict';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import type { SyncEvent } from '../../src/sync/ports/events';
import { silentLogger } from '../../src/sync/ports/Logger';
import { createRunContext, type RunContextDeps } from '../../src/sync/run/RunContext';

/**
 * A run's events end with its run-finished: a reader still winding down after a Stop (its
 * last row group read on the calling thread) must not report progress under a run the panel
 * already shows as cancelled (seen once in CI: sync-parts' abort test on the main thread got
 * a progress event after run-finished). A retry's run-started opens the stream again.
 */
describe('RunContext: no progress or phase after run-finished until a new run-started', () => {
  const mapping = parseMapping({ name: 'events', source: { type: 'delta', path: '/nowhere' }, target: { connection: 'x', table: 'events' }, key: ['id'] });
  // Only the event stream is exercised: the source and target are never touched by emit or the meter.
  const deps = { mapping, source: undefined, target: undefined, logger: silentLogger } as unknown as RunContextDeps;

  it('progress and phases after run-finished are dropped, warnings (a retry notice) still go out; a retry reports again', async () => {
    const events: SyncEvent[] = [];
    const ctx = createRunContext(deps, { onEvent: (e) => events.push(e) });
    ctx.emit({ type: 'run-started', runId: 'r1', pipeline: 'events', mode: 'initial', fromVersion: null, toVersion: 1 });
    ctx.progress.start();
    ctx.progress.report();
    ctx.emit({ type: 'run-finished', runId: 'r1', status: 'cancelled', checkpointVersion: null, rowsApplied: 0, error: 'stopped' });
    // The reader's last rows arrive after the run ended.
    await new Promise((r) => setTimeout(r, 210));
    ctx.progress.read(500);
    ctx.progress.report();
    ctx.phase('read', 'late');
    ctx.warn('retrying in 250 ms (attempt 2)');
    assert.deepEqual(events.map((e) => e.type), ['run-started', 'progress', 'run-finished', 'warning']);

    ctx.emit({ type: 'run-started', runId: 'r2', pipeline: 'events', mode: 'initial', fromVersion: null, toVersion: 1 });
    ctx.progress.report();
    ctx.emit({ type: 'run-finished', runId: 'r2', status: 'succeeded', checkpointVersion: 1, rowsApplied: 0 });
    assert.deepEqual(events.map((e) => e.type), ['run-started', 'progress', 'run-finished', 'warning', 'run-started', 'progress', 'run-finished']);
  });
});
