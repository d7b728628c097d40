import assert from 'node:assert/strict';
import type pg from 'pg';
import type { Row } from '../../src/sync/delta/types';
import { applyChanges, dryRunChanges } from '../../src/sync/postgres/applyChanges';
import { createPool } from '../../src/sync/postgres/createPool';
import { initialLoad } from '../../src/sync/postgres/initialLoad';
import { previewChanges } from '../../src/sync/postgres/previewChanges';
import { defaultTargetColumns } from '../../src/sync/postgres/renderCreateTable';
import { readCheckpoint } from '../../src/sync/postgres/stateTables';
import { boolean, decimal, field, string } from '../builders/deltaFields';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTargetPool } from '../helpers/postgres';

const fields = [field('customer_id', string(), { nullable: false }), field('name', string()), field('spend', decimal(10, 2)), field('active', boolean())];
const columns = defaultTargetColumns(fields);
const key = ['customer_id'];
function cust(i: number, spend = `${i}.50`, name = `Customer ${i}`): Row {
  return { customer_id: `c${String(i).padStart(5, '0')}`, name, spend, active: i % 2 === 0 };
}
function range(a: number, b: number): Row[] {
  const out: Row[] = [];
  for (let i = a; i < b; i++) out.push(cust(i));
  return out;
}
async function* slowly(batches: Row[][], between: () => Promise<void>): AsyncGenerator<Row[]> {
  for (const b of batches) {
    yield b;
    await between();
  }
}

describe('postgres target: initial load, incremental apply, preview (real server)', function () {
  this.timeout(120_000);
  const { db, pool, withClient } = useTargetPool('sync', 6);
  const count = async (table: string): Promise<number> => (await pool().query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;
  const checkpointVersion = (pipeline: string): Promise<bigint | undefined> => withClient(async (c) => (await readCheckpoint(c, pipeline))?.version);
  /**
   * Each test starts from its own table and pipeline, loaded here: no test depends on
   * what an earlier one left behind, so one failure does not cascade into the next.
   */
  async function seed(name: string, pipeline: string, version: number, rows: Row[] = range(0, 1000)): Promise<{ name: string }> {
    await initialLoad(pool(), { table: { schema: 'public', name }, columns, key, rows: [rows], mode: 'swap', checkpoint: { pipeline, source: 'src', version, commitTimestamp: null } });
    return { name };
  }

  it('swap load creates the table, then a second swap keeps indexes, constraints, grants and comments', async () => {
    const table = { schema: 'public', name: 'customers' };
    const r1 = await initialLoad(pool(), { table, columns, key, rows: [range(0, 500), range(500, 1000)], mode: 'swap', checkpoint: { pipeline: 'p1', source: 'src', version: 3, commitTimestamp: 1_700_000_000_000 } });
    assert.equal(r1.rows, 1000);
    assert.equal(r1.createdTable, true);
    assert.equal(await count('customers'), 1000);
    await pool().query(`CREATE INDEX customers_name_idx ON customers (name)`);
    await pool().query(`ALTER TABLE customers ADD CONSTRAINT spend_nonneg CHECK (spend >= 0)`);
    await pool().query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'report_reader') THEN CREATE ROLE report_reader; END IF; END $$`);
    await pool().query(`GRANT SELECT ON customers TO report_reader`);
    await pool().query(`COMMENT ON TABLE customers IS 'synced from delta; don''t edit'`);
    await pool().query(`COMMENT ON COLUMN customers.spend IS 'lifetime \\ spend'`);
    const r2 = await initialLoad(pool(), { table, columns, key, rows: [range(100, 1100)], mode: 'swap', checkpoint: { pipeline: 'p1', source: 'src', version: 5, commitTimestamp: null } });
    assert.equal(r2.createdTable, false);
    assert.deepEqual(r2.warnings, []);
    assert.equal(await count('customers'), 1000);
    assert.equal(await count(`customers WHERE customer_id = 'c00000'`), 0);
    const idx = await pool().query(`SELECT indexname FROM pg_indexes WHERE tablename = 'customers' ORDER BY 1`);
    assert.deepEqual(idx.rows.map((x) => x.indexname), ['customers_name_idx', 'customers_pkey']);
    const con = await pool().query(`SELECT conname FROM pg_constraint WHERE conrelid = 'customers'::regclass ORDER BY 1`);
    assert.deepEqual(con.rows.map((x) => x.conname), ['customers_pkey', 'spend_nonneg']);
    const grant = await pool().query(`SELECT has_table_privilege('report_reader', 'customers', 'SELECT') AS s, has_table_privilege('report_reader', 'customers', 'INSERT') AS i`);
    assert.deepEqual(grant.rows[0], { s: true, i: false });
    const cm = await pool().query(`SELECT obj_description('customers'::regclass, 'pg_class') AS t, col_description('customers'::regclass, 3) AS c`);
    assert.deepEqual(cm.rows[0], { t: "synced from delta; don't edit", c: 'lifetime \\ spend' });
    const cp = await withClient((c) => readCheckpoint(c, 'p1'));
    assert.equal(cp?.version, 5n);
    const leftovers = await pool().query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'customers__dns_%'`);
    assert.equal(leftovers.rows[0].n, 0);
  });

  it('a swap that fails (duplicate source key) leaves the old table and checkpoint untouched and drops the staging table', async () => {
    const table = { schema: 'public', ...(await seed('swap_fail', 'swap-fail', 5)) };
    await expectSyncError(
      initialLoad(pool(), { table, columns, key, rows: [[cust(1), cust(1)]], mode: 'swap', checkpoint: { pipeline: 'swap-fail', source: 'src', version: 9, commitTimestamp: null } }),
      { kind: 'target', message: /same key twice/ },
    );
    assert.equal(await count('swap_fail'), 1000);
    assert.equal(await checkpointVersion('swap-fail'), 5n);
    assert.equal((await pool().query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'swap_fail__dns_%'`)).rows[0].n, 0);
  });

  it('a swap builds the old table\'s indexes and UNIQUE constraints beside the primary key, before its transaction, which attaches them under their names and definitions; a duplicate in a UNIQUE column is refused naming the constraint and the table', async () => {
    const name = 'swap_prebuilt';
    const table = { schema: 'public', ...(await seed(name, 'swap-prebuilt', 5)) };
    await pool().query(`ALTER TABLE ${name} ADD CONSTRAINT ${name}_name_key UNIQUE (name) WITH (fillfactor = 80)`);
    await pool().query(`CREATE INDEX ${name}_lower_idx ON ${name} (lower(name)) WHERE active`);
    await pool().query(`CREATE UNIQUE INDEX "${name} Spend" ON ${name} (spend DESC, customer_id)`);
    // Built in the swap as before: ADD CONSTRAINT ... USING INDEX would not give them back as they were.
    await pool().query(`ALTER TABLE ${name} ADD CONSTRAINT ${name}_def_key UNIQUE (customer_id, name) DEFERRABLE INITIALLY DEFERRED`);
    await pool().query(`ALTER TABLE ${name} ADD CONSTRAINT ${name}_incl_key UNIQUE (spend) INCLUDE (name)`);
    const shape = async (): Promise<unknown> => (await pool().query(
      `SELECT ic.relname, pg_get_indexdef(i.indexrelid) AS def, k.conname, pg_get_constraintdef(k.oid) AS condef, k.condeferrable
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
        WHERE i.indrelid = '${name}'::regclass ORDER BY 1`,
    )).rows;
    const before = await shape();
    // Every statement with the connection it went on.
    const traced = createPool(db().url, { max: 4 });
    const sent: Array<{ conn: number; text: string }> = [];
    let conns = 0;
    traced.on('connect', (client: pg.PoolClient) => {
      const conn = ++conns;
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        const a = args[0] as { text?: unknown } | string;
        sent.push({ conn, text: String(typeof a === 'string' ? a : a.text) });
        return query(...args);
      };
    });
    try {
      // 100,000 rows: large enough for the indexes to be built on a connection of their own.
      await initialLoad(traced, { table, columns, key, rows: [range(100, 100_100)], mode: 'swap', checkpoint: { pipeline: 'swap-prebuilt', source: 'src', version: 6, commitTimestamp: null } });
      assert.deepEqual(await shape(), before);
      const pk = sent.find((x) => /PRIMARY KEY/.test(x.text));
      const beside = sent.find((x) => /CREATE UNIQUE INDEX/.test(x.text));
      assert.ok(pk && beside && pk.conn !== beside.conn, `the indexes were not built beside the primary key:\n${sent.map((x) => `${x.conn}: ${x.text.slice(0, 100)}`).join('\n')}`);
      assert.equal(beside.text.match(/CREATE (UNIQUE )?INDEX/g)?.length, 3, beside.text);
      const swapped = sent.slice(sent.findIndex((x) => /^LOCK TABLE/.test(x.text))).map((x) => x.text);
      assert.ok(swapped.some((x) => x.includes(`ADD CONSTRAINT "${name}_name_key" UNIQUE USING INDEX`)), swapped.join('\n'));
      assert.ok(swapped.some((x) => /^ALTER INDEX .* RENAME TO "swap_prebuilt Spend"$/.test(x)), swapped.join('\n'));
      assert.ok(!swapped.some((x) => /CREATE (UNIQUE )?INDEX/.test(x)), `the swap built an index under its lock:\n${swapped.join('\n')}`);
      assert.ok(swapped.some((x) => x.includes(`ADD CONSTRAINT "${name}_def_key" UNIQUE (customer_id, name) DEFERRABLE INITIALLY DEFERRED`)), swapped.join('\n'));

      // A small table's are built after the primary key, in its transaction.
      sent.length = 0;
      const dup = range(100, 1100);
      dup[5] = cust(105, '105.50', 'Customer 7');
      dup[7] = cust(107, '107.50', 'Customer 7');
      const err = await expectSyncError(
        initialLoad(traced, { table, columns, key, rows: [dup], mode: 'swap', checkpoint: { pipeline: 'swap-prebuilt', source: 'src', version: 7, commitTimestamp: null } }),
        { kind: 'target', table: `public.${name}`, message: new RegExp(`could not create unique index "${name}_name_key".*constraint "${name}_name_key".*Key \\(name\\)=\\(Customer 7\\) is duplicated`), hint: /"deadLetter": true/ },
      );
      assert.doesNotMatch(err.message, /__dns_/);
      const after = sent.find((x) => /PRIMARY KEY/.test(x.text));
      assert.match(after?.text ?? '', /PRIMARY KEY[\s\S]*CREATE UNIQUE INDEX[\s\S]*ANALYZE/);
    } finally {
      await traced.end();
    }
    assert.deepEqual(await shape(), before);
    assert.equal(await count(name), 100_000);
    assert.equal(await checkpointVersion('swap-prebuilt'), 6n);
    assert.equal((await pool().query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE '${name}__dns_%'`)).rows[0].n, 0);
  });

  it('merge load upserts changed rows, deletes missing keys, counts unchanged, and keeps the table oid', async () => {
    const table = await seed('merge_load', 'merge', 5, range(100, 1100));
    const oid = (await pool().query(`SELECT 'merge_load'::regclass::oid::int AS o`)).rows[0].o;
    const rows = range(100, 1100);
    rows[0] = cust(100, '999.99');
    rows.push(cust(5000));
    const r = await initialLoad(pool(), { table, columns, key, rows: [rows.slice(0, 1000).filter((_, i) => i !== 10), rows.slice(1000)], mode: 'merge', checkpoint: { pipeline: 'merge', source: 'src', version: 6, commitTimestamp: null } });
    assert.deepEqual({ rows: r.rows, inserted: r.inserted, updated: r.updated, deleted: r.deleted, unchanged: r.unchanged }, { rows: 1000, inserted: 1, updated: 1, deleted: 1, unchanged: 998 });
    assert.equal((await pool().query(`SELECT 'merge_load'::regclass::oid::int AS o`)).rows[0].o, oid);
  });

  it('applyChanges reports counts equal to the preview totals, advances the checkpoint, and re-running the batch changes nothing', async () => {
    // c00100 has spend 999.99; c00101 is as the batch has it; c00102 is there to delete.
    const seeded = range(100, 1100);
    seeded[0] = cust(100, '999.99');
    const table = await seed('apply_batch', 'apply', 6, seeded);
    const upserts = [cust(100, '1.00'), cust(101), cust(7000), cust(7001, '2.00', 'tab\tname')];
    const deletes = [{ customer_id: 'c00102' }, { customer_id: 'nope' }];
    const preview = await withClient((pc) => previewChanges(pc, { table, columns, key, upserts: [upserts], deletes: [deletes], include: ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] }));
    assert.deepEqual(preview.totals, { insert: 2, update: 1, delete: 1, unchanged: 1, 'delete-missing': 1 });
    const upd = preview.rows.find((r) => r.action === 'update');
    assert.deepEqual(upd?.changes, [{ column: 'spend', old: '999.99', new: '1.00' }]);
    assert.equal(preview.rows.find((r) => r.action === 'delete')?.oldRow?.name, 'Customer 102');
    assert.equal(preview.rows.find((r) => r.key.customer_id === 'c07001')?.newRow?.name, 'tab\tname');
    assert.equal(await count(`apply_batch WHERE customer_id = 'c07000'`), 0, 'preview wrote nothing');
    const page2 = await withClient((pc) => previewChanges(pc, { table, columns, key, upserts: [upserts], deletes: [deletes], limit: 2, offset: 2 }));
    assert.equal(page2.matching, 5);
    assert.deepEqual(page2.rows.map((r) => r.action), ['update', 'delete']); // order: insert, update, delete, delete-missing, then key

    const c = await pool().connect();
    try {
      const r1 = await applyChanges(c, { table, columns, key, upserts: [upserts], deletes: [deletes], checkpoint: { pipeline: 'apply', source: 'src', version: 7, commitTimestamp: 1_700_000_001_000 }, expectVersion: 6 });
      assert.deepEqual({ i: r1.inserted, u: r1.updated, d: r1.deleted, un: r1.unchanged, dm: r1.deleteMissing }, { i: preview.totals.insert, u: preview.totals.update, d: preview.totals.delete, un: preview.totals.unchanged, dm: preview.totals['delete-missing'] });
      assert.equal((await readCheckpoint(c, 'apply'))?.version, 7n);
      const before = (await c.query(`SELECT md5(string_agg(t::text, ',' ORDER BY customer_id)) AS h FROM apply_batch t`)).rows[0].h;
      const r2 = await applyChanges(c, { table, columns, key, upserts: [upserts], deletes: [deletes], checkpoint: { pipeline: 'apply', source: 'src', version: 7, commitTimestamp: 1_700_000_001_000 } });
      assert.deepEqual({ i: r2.inserted, u: r2.updated, d: r2.deleted, un: r2.unchanged, dm: r2.deleteMissing }, { i: 0, u: 0, d: 0, un: 4, dm: 2 });
      assert.equal((await c.query(`SELECT md5(string_agg(t::text, ',' ORDER BY customer_id)) AS h FROM apply_batch t`)).rows[0].h, before);
      await expectSyncError(
        applyChanges(c, { table, columns, key, upserts: [], deletes: [], checkpoint: { pipeline: 'apply', source: 'src', version: 8, commitTimestamp: null }, expectVersion: 6 }),
        { message: /expected 6/ },
      );
    } finally {
      c.release();
    }
  });

  it('a connection killed mid-transaction applies nothing and leaves the checkpoint, and is classified as a retryable connection error', async () => {
    const table = await seed('killed_apply', 'killed', 7);
    const before = await count('killed_apply');
    const c = await pool().connect();
    c.on('error', () => undefined);
    const pid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p;
    let killed = false;
    const applying = applyChanges(c, {
      table, columns, key,
      upserts: slowly([range(20000, 21000), range(21000, 22000)], async () => {
        if (!killed) {
          killed = true;
          await pool().query('SELECT pg_terminate_backend($1)', [pid]);
        }
      }),
      deletes: [],
      checkpoint: { pipeline: 'killed', source: 'src', version: 8, commitTimestamp: null },
    });
    await expectSyncError(applying, { kind: 'connection', retry: 'auto' }).finally(() => c.release(true));
    assert.equal(await count('killed_apply'), before);
    assert.equal(await checkpointVersion('killed'), 7n);
  });

  it('dead-letter mode isolates rows violating a constraint, stores them, and applies the rest; a dry run reports the same and writes nothing', async () => {
    const table = await seed('dead_letter', 'dead-letter', 8);
    await pool().query(`ALTER TABLE dead_letter ADD CONSTRAINT spend_nonneg CHECK (spend >= 0)`);
    const upserts = [cust(8000), cust(8001, '-5.00'), cust(8002), cust(8003, '-1.00'), ...range(8004, 8100)];
    const c = await pool().connect();
    try {
      const dry = await dryRunChanges(c, { table, columns, key, upserts: [upserts], deletes: [], checkpoint: { pipeline: 'dead-letter', source: 'src', version: 9, commitTimestamp: null } });
      assert.equal(dry.rejected.length, 2);
      assert.equal(dry.inserted, 98);
      assert.equal(await count(`dead_letter WHERE customer_id >= 'c08000' AND customer_id < 'c08100'`), 0);
      await expectSyncError(
        applyChanges(c, { table, columns, key, upserts: [upserts], deletes: [], checkpoint: { pipeline: 'dead-letter', source: 'src', version: 9, commitTimestamp: null } }),
        { kind: 'target', message: /spend_nonneg/ },
      );
      const r = await applyChanges(c, { table, columns, key, upserts: [upserts, [{ ...cust(8200), name: 'nul\u0000byte' }]], deletes: [], checkpoint: { pipeline: 'dead-letter', source: 'src', version: 9, commitTimestamp: null }, deadLetter: true });
      assert.equal(r.inserted, 98);
      assert.deepEqual(r.rejected.map((x) => x.sqlstate).sort(), ['22021', '23514', '23514']);
      const dl = await c.query(`SELECT key->>'customer_id' AS k, sqlstate, version FROM delta_neon_sync.dead_letters WHERE pipeline = 'dead-letter' ORDER BY 1`);
      assert.deepEqual(dl.rows, [{ k: 'c08001', sqlstate: '23514', version: 9n }, { k: 'c08003', sqlstate: '23514', version: 9n }, { k: 'c08200', sqlstate: '22021', version: 9n }]);
      assert.equal((await readCheckpoint(c, 'dead-letter'))?.version, 9n);
    } finally {
      c.release();
    }
  });
});
