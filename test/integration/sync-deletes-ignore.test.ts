import assert from 'node:assert/strict';
import * as path from 'node:path';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { diffRows, snapshotText, targetText } from '../helpers/targetEquality';

/**
 * deletes.mode "ignore", end to end on a real server: inserts and updates are applied, rows
 * deleted in Delta stay in the target with the values they had when they were deleted.
 * The expected table is built from the Delta snapshots (version by version), never from
 * the engine's own results; the sync goes one version at a time so each version is one
 * batch (a key updated and deleted within one batch nets to a delete, which is dropped).
 */
describe('deletes: ignore, end to end (real server)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('sync_ignore');
  const KEY = ['customer_id'];

  it('keeps rows deleted in Delta with their last values, applies inserts and updates, and neither preview nor sync counts a delete', async () => {
    const dir = await tempDir();
    const t = await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 400 });
    const latest = await applySampleChanges(t.path);
    const mapping = buildMapping({ name: 'ignore-deletes', source: t.path, target: 'kept_customers', key: KEY, deletes: { mode: 'ignore' } });
    const r = await openRunner(mapping, db().url);
    try {
      const init = await r.runner.run({ mode: 'initial', toVersion: 1 });
      assert.equal(init.status, 'succeeded');
      let { rows: previous, columns } = await snapshotText(t.path, 1, { key: KEY });
      const expected = new Map(previous);
      const deletedInDelta: string[] = [];
      for (let v = 2; v <= latest; v++) {
        const { rows: current } = await snapshotText(t.path, v, { key: KEY });
        for (const k of previous.keys()) if (!current.has(k)) deletedInDelta.push(k);
        for (const [k, row] of current) expected.set(k, row);
        previous = current;

        const pv = await r.runner.preview({ toVersion: v, limit: 0 });
        assert.equal(pv.totals.delete + pv.totals['delete-missing'], 0, `preview of version ${v} counts no delete`);
        const res = await r.runner.run({ mode: 'incremental', toVersion: v });
        assert.equal(res.status, 'succeeded');
        assert.equal(res.deleted, 0, `version ${v}: nothing deleted`);
        assert.deepEqual({ inserted: res.inserted, updated: res.updated }, { inserted: pv.totals.insert, updated: pv.totals.update }, `version ${v}: the sync applies what the preview showed`);
      }
      assert.ok(deletedInDelta.length > 0, 'the sample table deletes rows');
      const actual = await targetText(db().url, { schema: 'public', name: 'kept_customers' }, columns, KEY);
      assert.deepEqual(diffRows(expected, actual, columns), { missing: [], extra: [], differing: [] });
      for (const k of deletedInDelta) assert.ok(actual.has(k), `deleted key ${k} is still in the target`);
      const status = await r.runner.status();
      assert.equal(status.checkpoint?.version, BigInt(latest));
    } finally {
      await r.close();
    }
  });
});
