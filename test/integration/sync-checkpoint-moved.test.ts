import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import type { ChangeSource } from '../../src/sync/ports/ChangeSource';
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
 * The checkpoint refusal at the runner level: when the checkpoint moves between the moment
 * a run reads it and the moment it applies (another run, or a hand edit, got there first),
 * the run refuses (expectVersion), applies nothing, says which versions, and is recorded
 * as failed; it never applies its changes over a checkpoint it did not start from.
 */
describe('a run whose checkpoint moved under it (real server)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('sync_moved');
  const KEY = ['customer_id'];

  it('refuses before applying, names the pipeline and both versions, leaves the target and the moved checkpoint as they were', async () => {
    const dir = await tempDir();
    const t = await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 400 });
    const latest = await applySampleChanges(t.path);
    const mapping = buildMapping({ name: 'moved', source: t.path, target: 'moved_customers', key: KEY });
    const first = await openRunner(mapping, db().url);
    try {
      assert.equal((await first.runner.run({ mode: 'initial', toVersion: 1 })).status, 'succeeded');
    } finally {
      await first.close();
    }

    // A source that, when the run starts reading changes, moves the checkpoint as another run would.
    const inner = await openSource(mapping.source);
    const moveTo = latest;
    let moved = false;
    const source: ChangeSource = {
      name: inner.name,
      latestVersion: () => inner.latestVersion(),
      snapshot: (v) => inner.snapshot(v),
      commitTimestamp: (v) => inner.commitTimestamp(v),
      changes: (start, end, opts) => {
        const rows = inner.changes(start, end, opts);
        return (async function* () {
          if (!moved) {
            moved = true;
            const c = new pg.Client({ connectionString: db().url });
            await c.connect();
            try {
              await c.query(`UPDATE delta_neon_sync.checkpoints SET version = $2 WHERE pipeline = $1`, [mapping.name, moveTo]);
            } finally {
              await c.end();
            }
          }
          yield* rows;
        })();
      },
    };
    const pool = createPool(db().url, { max: 4 });
    try {
      const runner = new SyncRunner(mapping, source, mappingTarget(pool, mapping.target));
      await expectSyncError(runner.run({ mode: 'incremental', toVersion: latest }), {
        kind: 'target',
        retry: 'manual',
        message: new RegExp(`checkpoint of pipeline "moved" is at version ${moveTo}, expected 1; nothing was applied`),
        // The apply's opening checks the checkpoint concurrently with the first read, so the
        // move is met either there or by the checkpoint statement before COMMIT: one hint for both.
        hint: /Another run \(or a change by hand\) advanced this pipeline since this run read its checkpoint/,
      });
      assert.ok(moved, 'the run read changes (and so met the moved checkpoint)');
      // Nothing of versions 2..latest was applied: the target is still the snapshot at version 1.
      await assertTargetEquals(db().url, { schema: 'public', name: 'moved_customers' }, t.path, 1, { key: KEY });
      const status = await runner.status();
      assert.equal(status.checkpoint?.version, BigInt(moveTo), 'the checkpoint the other run set is left alone');
      assert.equal(status.runs[0]?.status, 'failed', JSON.stringify(status.runs[0]));
    } finally {
      await pool.end();
    }
  });
});
