import assert from 'node:assert/strict';
import * as path from 'node:path';
import { CUSTOMER_PROFILE_COLUMNS, customerAt, upgradedCustomer } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * The parts of a big version are staged in key order (the worker sorts each part's upserts
 * and deletes before encoding them), so the statements probe the target's primary key in
 * index order. The order the server applied them in is read from row triggers on the
 * target; the Delta files hold the keys in descending order, so the reader's order is the
 * opposite.
 */
describe('apply order of a part\'s upserts and deletes (real server, worker thread)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('apply_key_order');

  it('each part\'s updates reach the target in ascending key order, though the change files hold the keys descending', async () => {
    const dir = await tempDir('dns-key-order-');
    const w = await DeltaTableWriter.create(path.join(dir, 'desc'), { columns: [...CUSTOMER_PROFILE_COLUMNS], configuration: { 'delta.enableChangeDataFeed': 'true' } });
    const indexes = Array.from({ length: 120 }, (_, i) => 120 - i);
    await w.append(indexes.map((i) => customerAt(i)), { rowsPerFile: 1000 });
    await w.update('customer_id', indexes.map((i) => upgradedCustomer(customerAt(i))), { rowsPerFile: 1000 });
    const name = 'key_order';
    const r = await openRunner(buildMapping({ name: 'key-order', source: w.path, target: name, key: ['customer_id'], batch: { maxRows: 25 } }), db().url);
    const saved = process.env.DELTA_NEON_SYNC_READ_THREAD;
    process.env.DELTA_NEON_SYNC_READ_THREAD = 'worker';
    try {
      await r.runner.run({ mode: 'initial', toVersion: 1 });
      // One row per updated key, with the statement (one per part: a part is one query) it came in.
      await r.pool.query(`CREATE TABLE public.update_log (seq bigserial PRIMARY KEY, stmt timestamptz NOT NULL, k text NOT NULL)`);
      await r.pool.query(`CREATE FUNCTION public.log_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.update_log (stmt, k) VALUES (statement_timestamp(), NEW.customer_id); RETURN NEW; END $$`);
      await r.pool.query(`CREATE TRIGGER log_update BEFORE UPDATE ON public."${name}" FOR EACH ROW EXECUTE FUNCTION public.log_update()`);
      const res = await r.runner.run({ mode: 'incremental' });
      assert.equal(res.updated, 120);
      await assertTargetEquals(db().url, { schema: 'public', name }, w.path, w.version, { key: ['customer_id'] });
      const log = await r.pool.query<{ stmt: string; k: string }>(`SELECT stmt::text, k FROM public.update_log ORDER BY seq`);
      const parts = new Map<string, string[]>();
      for (const row of log.rows) parts.set(row.stmt, [...(parts.get(row.stmt) ?? []), row.k]);
      assert.ok(parts.size >= 3, `the version is applied in several parts (${parts.size})`);
      for (const keys of parts.values()) assert.deepEqual(keys, [...keys].sort(), 'a part\'s updates in ascending key order');
      assert.equal(log.rows.length, 120);

      // A version of deletes (held to its last part, one statement): in ascending key order too.
      await r.pool.query(`CREATE TABLE public.delete_log (seq bigserial PRIMARY KEY, k text NOT NULL)`);
      await r.pool.query(`CREATE FUNCTION public.log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.delete_log (k) VALUES (OLD.customer_id); RETURN OLD; END $$`);
      await r.pool.query(`CREATE TRIGGER log_delete BEFORE DELETE ON public."${name}" FOR EACH ROW EXECUTE FUNCTION public.log_delete()`);
      await w.delete('customer_id', indexes.filter((i) => i % 2 === 0).map((i) => customerAt(i).customer_id), { rowsPerFile: 1000 });
      const del = await r.runner.run({ mode: 'incremental' });
      assert.equal(del.deleted, 60);
      await assertTargetEquals(db().url, { schema: 'public', name }, w.path, w.version, { key: ['customer_id'] });
      const deleted = (await r.pool.query<{ k: string }>(`SELECT k FROM public.delete_log ORDER BY seq`)).rows.map((x) => x.k);
      assert.equal(deleted.length, 60);
      assert.deepEqual(deleted, [...deleted].sort(), 'the deletes in ascending key order');
    } finally {
      if (saved === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
      else process.env.DELTA_NEON_SYNC_READ_THREAD = saved;
      await r.close();
    }
  });
});
