import assert from 'node:assert/strict';
import * as path from 'node:path';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import type { Row } from '../../src/sync/delta/types';
import { initialLoad } from '../../src/sync/postgres/initialLoad';
import type { InitialLoadOptions } from '../../src/sync/postgres/initialLoad';
import { qualified, quoteIdent } from '../../src/sync/postgres/quoteIdent';
import type { TableRef } from '../../src/sync/ports/targetTypes';
import { defaultTargetColumns } from '../../src/sync/postgres/renderCreateTable';
import { field, long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { useTargetPool } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * Storage parameters of the tables an initial load creates, read back from pg_class on a
 * real server: the fillfactor (option, else the replaced table's, else 85), the replaced
 * table's other reloptions and its TOAST table's, and merge leaving them alone.
 */

// A text column, so every target has a TOAST table whose reloptions can be checked.
const fields = [field('id', long(), { nullable: false }), field('note', string())];
const columns = defaultTargetColumns(fields);
const key = ['id'];

function rows(n: number, start = 0): Row[] {
  const out: Row[] = [];
  for (let i = start; i < start + n; i++) out.push({ id: BigInt(i), note: `note ${i} ${'x'.repeat(60)}` });
  return out;
}

interface Storage {
  /** pg_class.reloptions of the table, sorted; [] when none. */
  heap: string[];
  /** reloptions of its TOAST table, sorted; [] when none. */
  toast: string[];
  hasToast: boolean;
  persistence: string;
  oid: number;
}

describe('initial load: fillfactor and storage parameters of the created table (real server)', function () {
  this.timeout(120_000);
  const { db, pool } = useTargetPool('fillfactor', 4);
  let pipelineNo = 0;

  const storage = async (t: TableRef): Promise<Storage> => {
    const r = await pool().query<{ heap: string[] | null; toast: string[] | null; has_toast: boolean; persistence: string; oid: number }>(
      `SELECT c.reloptions AS heap, t.reloptions AS toast, c.reltoastrelid <> 0 AS has_toast, c.relpersistence::text AS persistence, c.oid::int8::float8 AS oid
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE n.nspname = $1 AND c.relname = $2`,
      [t.schema ?? 'public', t.name],
    );
    const x = r.rows[0];
    assert.ok(x, `table ${t.schema}.${t.name} not found`);
    return { heap: [...(x.heap ?? [])].sort(), toast: [...(x.toast ?? [])].sort(), hasToast: x.has_toast, persistence: x.persistence, oid: x.oid };
  };
  const load = (t: TableRef, opts: Partial<InitialLoadOptions> = {}): ReturnType<typeof initialLoad> =>
    initialLoad(pool(), { table: t, columns, key, rows: [rows(2000)], mode: 'swap', checkpoint: { pipeline: `ff${++pipelineNo}`, source: 'src', version: 1, commitTimestamp: null }, ...opts });
  const count = async (t: TableRef): Promise<number> => (await pool().query<{ n: number }>(`SELECT count(*)::int AS n FROM ${qualified(t.schema, t.name)}`)).rows[0]?.n ?? -1;
  /** Heap pages of the table (relation size / block size), after the load's own ANALYZE. */
  const pages = async (t: TableRef): Promise<number> =>
    (await pool().query<{ p: number }>(`SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::int AS p`, [qualified(t.schema, t.name)])).rows[0]?.p ?? -1;
  const leftovers = async (): Promise<number> => (await pool().query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE '%\\_\\_dns\\_%'`)).rows[0]?.n ?? -1;
  const createOld = async (t: TableRef, withClause: string): Promise<void> => {
    if (t.schema) await pool().query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(t.schema)}`);
    await pool().query(`CREATE TABLE ${qualified(t.schema, t.name)} (id bigint PRIMARY KEY, note text) WITH (${withClause})`);
    await pool().query(`INSERT INTO ${qualified(t.schema, t.name)} SELECT g, 'old' FROM generate_series(1, 10) g`);
  };

  it('a swap load that creates the table gives it fillfactor=85, a logged table, and no other storage parameters', async () => {
    const t = { schema: 'public', name: 'created_default' };
    const r = await load(t);
    assert.equal(r.createdTable, true);
    const s = await storage(t);
    assert.deepEqual(s.heap, ['fillfactor=85']);
    assert.deepEqual(s.toast, []);
    assert.equal(s.persistence, 'p', 'the swapped-in table is logged');
    assert.equal(await count(t), 2000);
  });

  it('a merge load of a table that does not exist yet creates it with fillfactor=85 too', async () => {
    const t = { schema: 'public', name: 'created_by_merge' };
    const r = await load(t, { mode: 'merge' });
    assert.equal(r.createdTable, true);
    assert.deepEqual((await storage(t)).heap, ['fillfactor=85']);
    assert.equal((await storage(t)).persistence, 'p');
    assert.equal(await count(t), 2000);
  });

  it('the fillfactor option wins over the default, and the COPY already fills pages only that far', async () => {
    const at70 = { schema: 'public', name: 'created_ff70' };
    const at100 = { schema: 'public', name: 'created_ff100' };
    await load(at70, { fillfactor: 70 });
    await load(at100, { fillfactor: 100 });
    assert.deepEqual((await storage(at70)).heap, ['fillfactor=70']);
    // 100 is Postgres' own default: no reloption is written at all.
    assert.deepEqual((await storage(at100)).heap, []);
    // Same 2000 rows: 30% free space per page must show as ~1/0.7 the pages (set before
    // COPY, not after it, else both would be packed alike).
    const [p70, p100] = [await pages(at70), await pages(at100)];
    assert.ok(p100 > 10, `too few pages to compare: ${p100}`);
    assert.ok(p70 >= p100 * 1.3, `fillfactor 70: ${p70} pages, 100: ${p100} pages`);
  });

  it('a swap over a table WITH (fillfactor = 60, autovacuum_enabled = false, toast.autovacuum_enabled = false) keeps all three', async () => {
    const t = { schema: 'public', name: 'swap_keeps' };
    await createOld(t, 'fillfactor = 60, autovacuum_enabled = false, toast.autovacuum_enabled = false');
    const before = await storage(t);
    assert.deepEqual(before.heap, ['autovacuum_enabled=false', 'fillfactor=60']);
    assert.deepEqual(before.toast, ['autovacuum_enabled=false']);
    const r = await load(t);
    assert.equal(r.createdTable, false);
    assert.deepEqual(r.warnings, []);
    const after = await storage(t);
    assert.notEqual(after.oid, before.oid, 'a swap replaces the table');
    assert.deepEqual(after.heap, ['autovacuum_enabled=false', 'fillfactor=60']);
    assert.ok(after.hasToast);
    assert.deepEqual(after.toast, ['autovacuum_enabled=false']);
    assert.equal(after.persistence, 'p');
    assert.equal(await count(t), 2000);
    // The carried-over fillfactor is set before the COPY (ALTER TABLE SET only affects
    // pages written later): the same rows packed full take ~0.6 of the pages.
    const packed = { schema: 'public', name: 'swap_keeps_packed' };
    await load(packed, { fillfactor: 100 });
    const [p60, p100] = [await pages(t), await pages(packed)];
    assert.ok(p100 > 10 && p60 >= p100 * 1.4, `fillfactor 60: ${p60} pages, 100: ${p100} pages`);
    assert.equal(await leftovers(), 0);
  });

  it('a swap with fillfactor 90 over that table has fillfactor=90 and still the two autovacuum settings', async () => {
    const t = { schema: 'public', name: 'swap_option_wins' };
    await createOld(t, 'fillfactor = 60, autovacuum_enabled = false, toast.autovacuum_enabled = false');
    await load(t, { fillfactor: 90 });
    const s = await storage(t);
    assert.deepEqual(s.heap, ['autovacuum_enabled=false', 'fillfactor=90']);
    assert.deepEqual(s.toast, ['autovacuum_enabled=false']);
    assert.equal(await count(t), 2000);
  });

  it('a swap with fillfactor 100 over a fillfactor-60 table leaves no fillfactor reloption (Postgres\' default, full pages)', async () => {
    const t = { schema: 'public', name: 'swap_to_100' };
    await createOld(t, 'fillfactor = 60, autovacuum_vacuum_scale_factor = 0.05');
    await load(t, { fillfactor: 100 });
    assert.deepEqual((await storage(t)).heap, ['autovacuum_vacuum_scale_factor=0.05']);
  });

  it('a second swap without the option keeps the fillfactor the first swap was given (75, not 85)', async () => {
    const t = { schema: 'public', name: 'swap_twice' };
    await load(t, { fillfactor: 75 });
    await load(t);
    assert.deepEqual((await storage(t)).heap, ['fillfactor=75']);
  });

  it('merge into an existing table changes none of its storage parameters, even with a fillfactor option', async () => {
    const t = { schema: 'public', name: 'merge_keeps' };
    await createOld(t, 'fillfactor = 60, autovacuum_enabled = false, toast.autovacuum_enabled = false');
    const before = await storage(t);
    const plain = { schema: 'public', name: 'merge_plain' };
    await pool().query(`CREATE TABLE ${qualified(plain.schema, plain.name)} (id bigint PRIMARY KEY, note text)`);
    const plainBefore = await storage(plain);
    await load(t, { mode: 'merge', fillfactor: 90 });
    await load(plain, { mode: 'merge' });
    const after = await storage(t);
    assert.equal(after.oid, before.oid, 'merge keeps the table');
    assert.deepEqual({ heap: after.heap, toast: after.toast }, { heap: ['autovacuum_enabled=false', 'fillfactor=60'], toast: ['autovacuum_enabled=false'] });
    // A table created without parameters does not get the default 85 from a merge.
    const plainAfter = await storage(plain);
    assert.equal(plainAfter.oid, plainBefore.oid);
    assert.deepEqual({ heap: plainAfter.heap, toast: plainAfter.toast }, { heap: [], toast: [] });
    assert.equal(await count(t), 2000);
    assert.equal(await count(plain), 2000);
    assert.equal(await leftovers(), 0);
  });

  it('swaps a table with a hostile schema and name (quotes, semicolons, unicode) and keeps its storage parameters', async () => {
    const t = { schema: 'ff "schema"; DROP TABLE x; --', name: 'Größe "t"; DROP TABLE swap_keeps; -- 日本' };
    await createOld(t, 'fillfactor = 55, autovacuum_vacuum_scale_factor = 0.02, toast.autovacuum_enabled = false');
    const before = await storage(t);
    const r = await load(t);
    assert.equal(r.createdTable, false);
    const after = await storage(t);
    assert.notEqual(after.oid, before.oid);
    assert.deepEqual(after.heap, ['autovacuum_vacuum_scale_factor=0.02', 'fillfactor=55']);
    assert.deepEqual(after.toast, ['autovacuum_enabled=false']);
    assert.equal(await count(t), 2000);
    // Nothing was injected: the table the name mentions is still there.
    assert.notEqual((await pool().query<{ t: string | null }>(`SELECT to_regclass('public.swap_keeps')::text AS t`)).rows[0]?.t, null);
    await load(t, { fillfactor: 65 });
    assert.deepEqual((await storage(t)).heap, ['autovacuum_vacuum_scale_factor=0.02', 'fillfactor=65']);
    assert.equal(await leftovers(), 0);
  });

  it('SyncRunner: the DDL shown and createdTableSql carry the mapping\'s fillfactor (else 85), and the table gets it', async () => {
    const dir = await tempDir('dns-ff-');
    const src = await createCustomerProfilesTable(path.join(dir, 'customers'), { rows: 200 });
    for (const [table, ff, expected] of [['runner_ff70', 70, 70], ['runner_default', undefined, 85]] as const) {
      const mapping = buildMapping({
        name: `ff-${table.replace(/_/g, '-')}`, source: src.path, target: table, key: ['customer_id'],
        ...(ff === undefined ? {} : { initialLoad: { fillfactor: ff } }),
      });
      const r = await openRunner(mapping, db().url);
      try {
        const ddl = await r.runner.renderDdl(1);
        assert.match(ddl, new RegExp(`\\n\\) WITH \\(fillfactor = ${expected}\\);$`), ddl);
        const init = await r.runner.run({ mode: 'initial', toVersion: 1 });
        assert.equal(init.createdTableSql, ddl);
        assert.deepEqual((await storage({ schema: 'public', name: table })).heap, [`fillfactor=${expected}`]);
      } finally {
        await r.close();
      }
    }
  });
});
