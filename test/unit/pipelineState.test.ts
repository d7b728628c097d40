import * as assert from 'node:assert/strict';
import type { RunRecord } from '../../src/sync/ports/runLog';
import type { Checkpoint } from '../../src/sync/ports/targetTypes';
import { pipelineState } from '../../src/sync/run/SyncRunner';

/** The state the engine computes for a pipeline (the Mappings tree shows it as is). */

function run(fields: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: '1', mode: 'incremental', fromVersion: '3', toVersion: '4', rows: '10', status: 'succeeded', error: null, errorDetail: null,
    startedAt: '2024-05-01 10:00', finishedAt: '2024-05-01 10:01', ...fields,
  };
}

function checkpoint(version: number): Checkpoint {
  return { pipeline: 'orders', source: '/t/orders', version: BigInt(version), commitTimestamp: null, appliedRows: 10n, finishedAt: 'x' };
}

describe('pipelineState: where a pipeline stands, from its checkpoint, the source and its runs', () => {
  it('no checkpoint and no failed run: not-loaded', () => {
    assert.deepEqual(pipelineState(null, 5, [], false), { phase: 'not-loaded' });
  });

  it('a checkpoint at the latest version: up-to-date; below it: behind by the difference', () => {
    assert.deepEqual(pipelineState(checkpoint(6), 6, [run()], false), { phase: 'up-to-date', version: 6 });
    assert.deepEqual(pipelineState(checkpoint(4), 6, [run()], false), { phase: 'behind', version: 4, latestVersion: 6, versionsBehind: 2 });
  });

  it('a loaded pipeline whose source version was not read (its warehouse is stopped): source-not-checked, never up-to-date; not loaded, running and errored win', () => {
    const why = { reason: 'SQL warehouse "Shared" (abc) is STOPPED', short: 'warehouse stopped' };
    assert.deepEqual(pipelineState(checkpoint(6), why, [run()], false), { phase: 'source-not-checked', version: 6, ...why });
    assert.deepEqual(pipelineState(null, why, [], false), { phase: 'not-loaded' });
    assert.equal(pipelineState(checkpoint(6), why, [run({ status: 'failed', error: 'boom' })], false).phase, 'errored');
    assert.equal(pipelineState(checkpoint(6), why, [run({ status: 'running' })], true).phase, 'running');
  });

  it('the newest finished run failed: errored, with the error kind, retry and hint the run log kept', () => {
    const failed = run({ status: 'failed', error: 'boom', errorDetail: { message: 'boom', kind: 'schema-drift', retry: 'manual', hint: 'Run an initial load.' }, finishedAt: '2024-05-01 10:05' });
    assert.deepEqual(pipelineState(checkpoint(4), 6, [failed, run()], false), {
      phase: 'errored', version: 4, at: '2024-05-01 10:05',
      error: { message: 'boom', kind: 'schema-drift', retry: 'manual', hint: 'Run an initial load.' },
    });
    // A failure before any load: errored too, with no version.
    const st = pipelineState(null, 6, [failed], false);
    assert.equal(st.phase, 'errored');
    assert.equal(st.phase === 'errored' ? st.version : 'x', null);
  });

  it('a run recorded before error details were kept is errored with kind unknown and retry manual', () => {
    const st = pipelineState(checkpoint(4), 6, [run({ status: 'failed', error: 'old failure' })], false);
    assert.deepEqual(st.phase === 'errored' ? st.error : undefined, { message: 'old failure', kind: 'unknown', retry: 'manual' });
  });

  it('a later success clears the error; a cancelled or abandoned run is not an error', () => {
    const failed = run({ status: 'failed', error: 'boom' });
    assert.equal(pipelineState(checkpoint(6), 6, [run(), failed], false).phase, 'up-to-date');
    assert.equal(pipelineState(checkpoint(6), 6, [run({ status: 'cancelled' }), failed], false).phase, 'errored');
    assert.equal(pipelineState(checkpoint(6), 6, [run({ status: 'abandoned' })], false).phase, 'up-to-date');
  });

  it('a live run holding the pipeline: running, with its mode and start; a stale "running" row without a live run is not', () => {
    const live = run({ runId: '9', status: 'running', mode: 'initial-swap', startedAt: '2024-05-01 11:00', finishedAt: null });
    assert.deepEqual(pipelineState(null, 6, [live], true), { phase: 'running', runId: '9', mode: 'initial-swap', startedAt: '2024-05-01 11:00' });
    assert.deepEqual(pipelineState(checkpoint(6), 6, [live], false), { phase: 'up-to-date', version: 6 });
  });
});
