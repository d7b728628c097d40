import assert from 'node:assert/strict';
import * as path from 'node:path';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { openSource } from '../../src/sync/open/openSource';
import { openTarget, mappingTarget } from '../../src/sync/open/openTarget';
import type { OpenedTarget } from '../../src/sync/open/openTarget';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { buildMapping } from '../builders/mappings';
import { tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Acceptance 6: the embedded sandbox target (PGlite through openTarget('sandbox')) gives the
 * same results as the real server: initial load, preview, incremental syncs one version at
 * a time, each step equal to the Delta snapshot.
 */

const TABLE = { schema: 'public', name: 'customer_profiles' };
const KEY = ['customer_id'];

describe('sync into the embedded sandbox (PGlite) target', function () {
  this.timeout(180_000);
  let target: OpenedTarget;
  let tablePath: string;
  let latest: number;

  before(async function () {
    this.timeout(120_000);
    const dir = await tempDir();
    const t = await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 600 });
    latest = await applySampleChanges(t.path);
    tablePath = t.path;
    target = await openTarget('sandbox');
    assert.equal(target.kind, 'sandbox');
  });
  after(async () => {
    await target?.close();
  });

  it('initial load, preview, then one incremental sync per version: equal to the snapshot after every step', async () => {
    const mapping = buildMapping({ name: 'sandbox', source: tablePath, target: { connection: 'sandbox', table: TABLE.name }, key: KEY });
    const runner = new SyncRunner(mapping, await openSource(mapping.source), mappingTarget(target.pool, mapping.target));
    const pv0 = await runner.preview({ toVersion: 1, limit: 5 });
    assert.equal(pv0.targetMissing, true);
    const first = await runner.run({ mode: 'initial', toVersion: 1 });
    assert.equal(first.inserted, pv0.totals.insert);
    await assertTargetEquals(target.pool, TABLE, tablePath, 1, { key: KEY });

    const pv = await runner.preview({ limit: 10_000 });
    assert.equal(pv.mode, 'incremental');
    assert.equal(pv.toVersion, latest);
    let inserted = 0;
    let updated = 0;
    let deleted = 0;
    for (let v = 2; v <= latest; v++) {
      const res = await runner.run({ mode: 'incremental', toVersion: v });
      assert.equal(res.toVersion, v);
      inserted += res.inserted;
      updated += res.updated;
      deleted += res.deleted;
      await assertTargetEquals(target.pool, TABLE, tablePath, v, { key: KEY });
      assert.equal((await runner.verify()).equal, true, `verify() at ${v}`);
    }
    // Net over the whole range: the preview's inserts all arrived and its deletes are gone.
    const keys = new Set((await target.pool.query<{ k: string }>(`SELECT customer_id AS k FROM public.customer_profiles`)).rows.map((r) => r.k));
    for (const row of pv.rows) {
      const k = row.key.customer_id as string;
      if (row.action === 'insert') assert.ok(keys.has(k), `preview insert ${k} is in the target`);
      if (row.action === 'delete') assert.ok(!keys.has(k), `preview delete ${k} is gone`);
    }
    assert.ok(inserted >= pv.totals.insert && deleted >= pv.totals.delete && updated > 0, JSON.stringify({ inserted, updated, deleted, totals: pv.totals }));
    const again = await runner.run({});
    assert.equal(again.status, 'up-to-date');
  });
});
