import assert from 'node:assert/strict';
import * as path from 'node:path';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { queryOnce, checkpointVersion } from '../helpers/pgQuery';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * initialLoad.copyStreams: the snapshot's files split among reader threads, each COPYed on
 * a connection of its own into the staging table, the swap still one transaction.
 * (A SIGKILL mid-way is in sync-kill.test.ts.)
 */
describe('initial load over parallel COPY streams (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_parallel');
  let table: string;
  const TARGET = { schema: 'public', name: 'par_customers' };

  before(async () => {
    const dir = await tempDir();
    // 3000 customers in files of 400: enough files for three streams.
    table = (await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 3000, rowsPerFile: 400 })).path;
  });

  it('loads every row once and reports them all, as the one-stream load does', async () => {
    const mapping = buildMapping({ name: 'par', source: table, target: TARGET.name, key: ['customer_id'], initialLoad: { copyStreams: 3 } });
    const r = await openRunner(mapping, db().url);
    try {
      const res = await r.runner.run({ mode: 'initial' });
      assert.equal(res.status, 'succeeded');
      assert.equal(res.inserted, res.rowsRead);
      await assertTargetEquals(db().url, TARGET, table, res.toVersion, { key: ['customer_id'] });
      const n = await queryOnce<{ n: number }>(db().url, `SELECT count(*)::int AS n FROM public.par_customers`);
      assert.equal(n[0]?.n, res.inserted);
    } finally {
      await r.close();
    }
  });

  it('a value the staging table refuses stops every stream: the load fails naming the table, the loaded target and its checkpoint stay, no staging table is left', async () => {
    // full_name as varchar(4): every stream meets names longer than that.
    const mapping = buildMapping({ name: 'par', source: table, target: TARGET.name, key: ['customer_id'], initialLoad: { copyStreams: 3 }, columns: { types: { full_name: 'varchar(4)' } } });
    const before = await checkpointVersion(db().url, 'par');
    assert.notEqual(before, undefined, 'the previous test loaded the target');
    const r = await openRunner(mapping, db().url);
    try {
      await assert.rejects(r.runner.run({ mode: 'initial' }), (e: Error) => {
        assert.match(e.message, /par_customers/);
        assert.match(e.message, /character varying\(4\)/);
        assert.doesNotMatch(e.message, /another COPY stream/);
        return true;
      });
      // The pool still serves (no connection left mid-COPY).
      const ok = await r.pool.query<{ one: number }>('SELECT 1 AS one');
      assert.equal(ok.rows[0]?.one, 1);
    } finally {
      await r.close();
    }
    assert.equal(await checkpointVersion(db().url, 'par'), before);
    await assertTargetEquals(db().url, TARGET, table, before as number, { key: ['customer_id'] });
    const tables = await queryOnce<{ relname: string }>(db().url, `SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1`);
    assert.deepEqual(tables.map((t) => t.relname), [TARGET.name]);
  });
});
