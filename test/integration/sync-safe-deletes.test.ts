import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { CUSTOMER_KEY, CUSTOMER_PROFILE_COLUMNS, customerId, generateCustomers } from '../../src/fixtures/customerProfiles';
import type { MappingOverrides } from '../builders/mappings';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { checkpointVersion, queryOnce } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import type { OpenedRunner } from '../helpers/syncHarness';

/**
 * Safe deletes (safety.maxDeleteShare, default 50%) on a real server with tables written by
 * the fixture writer: a run that would delete more than the share of the target, or an
 * initial load that would swap an empty snapshot over a non-empty table, is refused before
 * it writes, naming rows, versions and the commit's operation; allowMassDelete lets one run
 * through; a run under the share is not refused.
 */
describe('safe deletes: maxDeleteShare and the empty-snapshot swap (real server)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('safe_deletes');
  const ROWS = 100;

  async function loaded(name: string, overrides: MappingOverrides = {}): Promise<{ w: DeltaTableWriter; r: OpenedRunner; table: string }> {
    const dir = await tempDir();
    const w = await DeltaTableWriter.create(path.join(dir, name), {
      columns: [...CUSTOMER_PROFILE_COLUMNS],
      configuration: { 'delta.enableChangeDataFeed': 'true' },
    });
    await w.append(generateCustomers(ROWS));
    const r = await openRunner(buildMapping({ name: name.replace(/_/g, '-'), source: w.path, target: name, key: [CUSTOMER_KEY], ...overrides }), db().url);
    const init = await r.runner.run({ mode: 'initial' });
    assert.equal(init.inserted, ROWS);
    return { w, r, table: name };
  }

  async function rows(table: string, where = ''): Promise<number> {
    const [row] = await queryOnce<{ n: string }>(db().url, `SELECT count(*)::text AS n FROM public.${table}${where}`);
    return Number(row?.n);
  }

  it('refuses a truncate that would delete every row, names the version and TRUNCATE, and allows it once with allowMassDelete', async () => {
    const { w, r, table } = await loaded('truncated');
    try {
      const before = await checkpointVersion(db().url, 'truncated');
      const v = await w.overwrite([], { operation: 'TRUNCATE' });
      const e = await expectSyncError(r.runner.run({ mode: 'incremental' }), {
        kind: 'target', retry: 'manual', setting: 'safety.maxDeleteShare', table: /truncated/, version: v,
        message: new RegExp(`delete ${ROWS} of about ${ROWS} row\\(s\\).*version ${v}: TRUNCATE`),
        hint: /--allow-mass-delete/,
      });
      assert.match(e.message, /at most 50 row\(s\)/);
      assert.equal(await rows(table), ROWS, 'nothing was deleted');
      assert.equal(await checkpointVersion(db().url, 'truncated'), before, 'the checkpoint did not move');

      const allowed = await r.runner.run({ mode: 'incremental', allowMassDelete: true });
      assert.equal(allowed.deleted, ROWS);
      assert.equal(await rows(table), 0);
      assert.equal(await checkpointVersion(db().url, 'truncated'), v);

      // Once: the next mass delete is refused again without the option.
      await w.append(generateCustomers(ROWS));
      assert.equal((await r.runner.run({ mode: 'incremental' })).inserted, ROWS);
      const del = await w.deleteWhere(() => true);
      await expectSyncError(r.runner.run({ mode: 'incremental' }), { setting: 'safety.maxDeleteShare', message: new RegExp(`version ${del}: DELETE`) });
      assert.equal(await rows(table), ROWS);
    } finally {
      await r.close();
    }
  });

  it('refuses an overwrite (WRITE, mode Overwrite) that replaces every key, and allows it once', async () => {
    const { w, r, table } = await loaded('overwritten');
    try {
      const v = await w.overwrite([...generateCustomers(10, 7, ROWS + 1)]);
      await expectSyncError(r.runner.run({ mode: 'incremental' }), {
        setting: 'safety.maxDeleteShare',
        // The 10 rows the overwrite inserts (in the same, refused, transaction) count as target rows.
        message: new RegExp(`delete ${ROWS} of about ${ROWS + 10}.*version ${v}: WRITE \\(mode Overwrite\\)`),
      });
      assert.equal(await rows(table), ROWS);
      const allowed = await r.runner.run({ mode: 'incremental', allowMassDelete: true });
      assert.deepEqual({ deleted: allowed.deleted, inserted: allowed.inserted }, { deleted: ROWS, inserted: 10 });
      assert.equal(await rows(table), 10);
    } finally {
      await r.close();
    }
  });

  it('does not refuse deletes under the share, and counts soft deletes as deletes', async () => {
    const { w, r, table } = await loaded('under_share');
    try {
      await w.delete(CUSTOMER_KEY, Array.from({ length: 40 }, (_, i) => customerId(i + 1)));
      const res = await r.runner.run({ mode: 'incremental' });
      assert.equal(res.deleted, 40);
      assert.equal(await rows(table), ROWS - 40);
    } finally {
      await r.close();
    }
    const soft = await loaded('soft_deleted', { deletes: { mode: 'soft-delete', column: 'deleted', kind: 'boolean' } });
    try {
      await soft.w.delete(CUSTOMER_KEY, Array.from({ length: 60 }, (_, i) => customerId(i + 1)));
      await expectSyncError(soft.r.runner.run({ mode: 'incremental' }), { setting: 'safety.maxDeleteShare', message: /delete 60 of about 100/ });
      assert.equal(await rows(soft.table, ' WHERE deleted'), 0, 'nothing was marked deleted');
      const res = await soft.r.runner.run({ mode: 'incremental', allowMassDelete: true });
      assert.equal(res.softDeleted, 60);
    } finally {
      await soft.r.close();
    }
  });

  it('a mapping with maxDeleteShare 1 or null does not refuse', async () => {
    for (const [name, share] of [['share_one', 1], ['share_off', null]] as const) {
      const { w, r, table } = await loaded(name, { safety: { maxDeleteShare: share } });
      try {
        await w.overwrite([], { operation: 'TRUNCATE' });
        assert.equal((await r.runner.run({ mode: 'incremental' })).deleted, ROWS);
        assert.equal(await rows(table), 0);
      } finally {
        await r.close();
      }
    }
  });

  it('refuses to swap an empty snapshot over a non-empty table, and allows it once', async () => {
    const { w, r, table } = await loaded('empty_swap');
    try {
      const v = await w.overwrite([], { operation: 'TRUNCATE' });
      await expectSyncError(r.runner.run({ mode: 'initial' }), {
        setting: 'safety.maxDeleteShare', retry: 'manual', version: v,
        message: new RegExp(`empty snapshot over .*empty_swap.*version ${v}: TRUNCATE.*all ${ROWS} row\\(s\\)`),
        hint: /--allow-mass-delete/,
      });
      assert.equal(await rows(table), ROWS, 'the table was not replaced');
      const allowed = await r.runner.run({ mode: 'initial', allowMassDelete: true });
      assert.equal(allowed.toVersion, v);
      assert.equal(await rows(table), 0);
    } finally {
      await r.close();
    }
  });
});
