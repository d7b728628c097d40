import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { applySampleChanges, createCustomerProfilesTable, CUSTOMER_PROFILE_COLUMNS } from '../../src/fixtures/customerProfiles';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import type { OpenedRunner } from '../helpers/syncHarness';
import { assertTargetEquals, targetText } from '../helpers/targetEquality';
import type { ComparedColumn } from '../helpers/targetEquality';

/**
 * Acceptance 2: the preview's totals and rows are what the following sync applies; a sync
 * with nothing new touches nothing; re-applying already-applied versions is harmless.
 */

const TABLE = { schema: 'public', name: 'customer_profiles' };
const KEY = ['customer_id'];
const COLUMNS: ComparedColumn[] = CUSTOMER_PROFILE_COLUMNS.map((c) => ({ source: c.name, target: c.name, type: c.type }));

describe('sync preview, no-op and re-run (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_prev');
  let tablePath: string;
  let r: OpenedRunner;
  let latest: number;

  before(async function () {
    this.timeout(60_000);
    const dir = await tempDir();
    const t = await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 1000 });
    latest = await applySampleChanges(t.path);
    tablePath = t.path;
    const mapping = buildMapping({ name: 'preview-check', source: tablePath, target: TABLE.name, key: KEY });
    r = await openRunner(mapping, db().url);
  });
  after(async () => {
    await r?.close();
  });

  it('the initial-load preview lists every snapshot row as an insert and the load inserts exactly those', async () => {
    const pv = await r.runner.preview({ toVersion: 1, limit: 1_000_000, include: ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] });
    assert.equal(pv.mode, 'initial');
    assert.equal(pv.targetMissing, true);
    assert.ok(pv.ddl?.includes('CREATE TABLE'));
    const res = await r.runner.run({ mode: 'initial', toVersion: 1 });
    assert.equal(res.inserted, pv.totals.insert);
    const after = await targetText(db().url, TABLE, COLUMNS, KEY);
    assert.deepEqual(pv.rows.map((x) => x.key.customer_id).sort(), [...after.keys()].sort());
  });

  it('the incremental preview totals equal the RunResult counts, and its keys and changed columns are what changed in the target', async () => {
    const before = await targetText(db().url, TABLE, COLUMNS, KEY);
    const pv = await r.runner.preview({ limit: 1_000_000, include: ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] });
    assert.equal(pv.mode, 'incremental');
    assert.equal(pv.fromVersion, 2);
    assert.equal(pv.toVersion, latest);
    assert.ok(pv.totals.insert > 0 && pv.totals.update > 0 && pv.totals.delete > 0, JSON.stringify(pv.totals));
    const res = await r.runner.run({ mode: 'incremental' });
    assert.deepEqual(
      { insert: res.inserted, update: res.updated, delete: res.deleted },
      { insert: pv.totals.insert, update: pv.totals.update, delete: pv.totals.delete },
    );
    const after = await targetText(db().url, TABLE, COLUMNS, KEY);

    // What actually changed, computed from the two reads of the target.
    const inserted = [...after.keys()].filter((k) => !before.has(k)).sort();
    const deleted = [...before.keys()].filter((k) => !after.has(k)).sort();
    const updated = new Map<string, string[]>();
    for (const [k, a] of after) {
      const b = before.get(k);
      if (!b) continue;
      const cols = COLUMNS.map((c) => c.target).filter((c) => a[c] !== b[c]);
      if (cols.length) updated.set(k, cols.sort());
    }
    const keysOf = (action: string): string[] => pv.rows.filter((x) => x.action === action).map((x) => x.key.customer_id as string).sort();
    assert.deepEqual(keysOf('insert'), inserted);
    assert.deepEqual(keysOf('delete'), deleted);
    assert.deepEqual(keysOf('update'), [...updated.keys()].sort());
    for (const row of pv.rows.filter((x) => x.action === 'update')) {
      const k = row.key.customer_id as string;
      assert.deepEqual((row.changes ?? []).map((c) => c.column).sort(), updated.get(k), `changed columns of ${k}`);
      for (const ch of row.changes ?? []) {
        // Timestamps print in the session time zone; compare the other columns' text exactly.
        if (ch.column === 'last_purchase_date') continue;
        assert.equal(ch.new, after.get(k)?.[ch.column] ?? null, `new ${ch.column} of ${k}`);
        assert.equal(ch.old, before.get(k)?.[ch.column] ?? null, `old ${ch.column} of ${k}`);
      }
    }
    // Rows the preview calls unchanged kept their values.
    for (const row of pv.rows.filter((x) => x.action === 'unchanged')) {
      const k = row.key.customer_id as string;
      assert.deepEqual(after.get(k), before.get(k));
    }
    await assertTargetEquals(db().url, TABLE, tablePath, latest, { key: KEY });
  });

  it('a second sync with no new versions is up-to-date and touches no row (xmin, trigger count, checkpoint)', async () => {
    const c = new pg.Client({ connectionString: db().url });
    await c.connect();
    try {
      await c.query(`CREATE TABLE IF NOT EXISTS touch_count (n int NOT NULL)`);
      await c.query(`INSERT INTO touch_count VALUES (0)`);
      await c.query(`CREATE OR REPLACE FUNCTION count_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE touch_count SET n = n + 1; RETURN NULL; END $$`);
      await c.query(`CREATE TRIGGER count_touch AFTER INSERT OR UPDATE OR DELETE ON public.customer_profiles FOR EACH ROW EXECUTE FUNCTION count_touch()`);
      const xminBefore = (await c.query(`SELECT customer_id, xmin::text AS x FROM public.customer_profiles ORDER BY customer_id`)).rows;
      const cpBefore = (await c.query(`SELECT version::text, finished_at::text, applied_rows::text FROM delta_neon_sync.checkpoints WHERE pipeline = 'preview-check'`)).rows;
      const res = await r.runner.run({});
      assert.equal(res.status, 'up-to-date');
      assert.equal(res.inserted + res.updated + res.deleted + res.batches, 0);
      assert.deepEqual((await c.query(`SELECT customer_id, xmin::text AS x FROM public.customer_profiles ORDER BY customer_id`)).rows, xminBefore);
      assert.deepEqual((await c.query(`SELECT version::text, finished_at::text, applied_rows::text FROM delta_neon_sync.checkpoints WHERE pipeline = 'preview-check'`)).rows, cpBefore);
      assert.equal((await c.query(`SELECT n FROM touch_count`)).rows[0].n, 0);
      const pv = await r.runner.preview({});
      assert.deepEqual(pv.totals, { insert: 0, update: 0, delete: 0, unchanged: 0, 'delete-missing': 0 });
    } finally {
      await c.end();
    }
  });

  it('after the checkpoint is reset to an earlier version, syncing again re-applies the range harmlessly: the target still equals the source', async () => {
    const c = new pg.Client({ connectionString: db().url });
    await c.connect();
    try {
      await c.query(`UPDATE touch_count SET n = 0`);
      await c.query(`UPDATE delta_neon_sync.checkpoints SET version = 1 WHERE pipeline = 'preview-check'`);
      const res = await r.runner.run({});
      assert.equal(res.mode, 'incremental');
      assert.equal(res.fromVersion, 2);
      assert.equal(res.toVersion, latest);
      // Every re-applied change is already in the target: nothing is written again.
      assert.deepEqual({ i: res.inserted, u: res.updated, d: res.deleted }, { i: 0, u: 0, d: 0 });
      assert.equal((await c.query(`SELECT n FROM touch_count`)).rows[0].n, 0);
      assert.equal((await c.query(`SELECT version::int AS v FROM delta_neon_sync.checkpoints WHERE pipeline = 'preview-check'`)).rows[0].v, latest);
      await assertTargetEquals(db().url, TABLE, tablePath, latest, { key: KEY });
      assert.equal((await r.runner.verify()).equal, true);
    } finally {
      await c.end();
    }
  });
  it('two syncs of one pipeline started together: the target ends equal to the source; a loser stops with a clear "another run" error', async () => {
    const mapping = buildMapping({ name: 'concurrent', source: tablePath, target: 'concurrent', key: KEY, batch: { maxRows: 10 } });
    const a = await openRunner(mapping, db().url);
    const b = await openRunner(mapping, db().url);
    try {
      await a.runner.run({ mode: 'initial', toVersion: 1 });
      const results = await Promise.allSettled([a.runner.run({}), b.runner.run({})]);
      assert.ok(results.some((x) => x.status === 'fulfilled'), JSON.stringify(results.map((x) => x.status)));
      for (const x of results) {
        if (x.status === 'rejected') {
          const e = x.reason as { message: string; hint?: string };
          assert.match(e.message, /checkpoint|another run/i, e.message);
          assert.ok(e.hint, 'has a hint');
        }
      }
      // Whatever happened, a further sync finishes the job and the target equals the source.
      await a.runner.run({});
      await assertTargetEquals(db().url, { schema: 'public', name: 'concurrent' }, tablePath, latest, { key: KEY });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
