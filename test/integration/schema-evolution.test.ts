import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { MappingInput } from '../../src/sync/mapping/mappingSchema';
import { queryOnce } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import type { TestDatabase } from '../helpers/postgres';
import { buildMapping } from '../builders/mappings';
import type { MappingOverrides } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import { requireSharedTable } from '../helpers/sharedTables';

/**
 * Schema changes beyond added columns (issue 15 point 4), on tables written by the
 * project's writer (widening, dropped columns) against a real Postgres: each allowed
 * change is shown by the preview and the dry run as DDL, and the sync runs exactly that DDL
 * (captured by an event trigger on the server: the statements it executed) in the
 * transaction of its first batch; refused ones name table, version and column and leave
 * the target and the checkpoint as they were. Initial loads of the changed tables read the
 * old files (narrower physical types) into the new types.
 */

const LONG: WriterColumn['type'] = { kind: 'primitive', name: 'long' };
const INT: WriterColumn['type'] = { kind: 'primitive', name: 'integer' };
const STRING: WriterColumn['type'] = { kind: 'primitive', name: 'string' };
const DATE: WriterColumn['type'] = { kind: 'primitive', name: 'date' };
const NTZ: WriterColumn['type'] = { kind: 'primitive', name: 'timestamp_ntz' };

const V1: WriterColumn[] = [
  { name: 'id', type: LONG, nullable: false },
  { name: 'qty', type: INT },
  { name: 'price', type: { kind: 'decimal', precision: 10, scale: 2 } },
  { name: 'day', type: DATE },
  { name: 'note', type: STRING, nullable: false },
];

/** The same columns widened as Delta's type widening allows (the commit Spark's ALTER COLUMN TYPE leaves). */
const WIDE: WriterColumn[] = V1.map((c) =>
  c.name === 'qty' ? { ...c, type: LONG } : c.name === 'price' ? { ...c, type: { kind: 'decimal', precision: 20, scale: 4 } } : c.name === 'day' ? { ...c, type: NTZ } : c,
);

function rows(a: number, b: number): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: BigInt(i), qty: i * 10, price: `${i}.25`, day: 19_000 + i, note: `note ${i}` });
  return out;
}

/** The DDL statements the server ran on the table (ALTER TABLE), in order, as the client sent them. */
class DdlLog {
  constructor(private readonly url: string) {}

  async install(): Promise<void> {
    await this.sql(`
      CREATE TABLE IF NOT EXISTS public.ddl_log (n bigserial PRIMARY KEY, query text NOT NULL);
      CREATE OR REPLACE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO public.ddl_log (query) VALUES (current_query()); END $$;
      DROP EVENT TRIGGER IF EXISTS dns_test_log_ddl;
      CREATE EVENT TRIGGER dns_test_log_ddl ON ddl_command_end WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION public.log_ddl();`);
  }

  async take(): Promise<string[]> {
    return (await queryOnce<{ query: string }>(this.url, 'DELETE FROM public.ddl_log RETURNING n, query')).map((x) => x.query);
  }

  async sql(text: string): Promise<void> {
    await queryOnce(this.url, text);
  }
}

/**
 * For a describe block: its test database with the DdlLog installed, and a temp folder
 * removed after the block.
 */
function ddlSuite(prefix: string): { db: () => TestDatabase; dir: () => string; log: () => DdlLog } {
  const db = useTestDatabase(prefix);
  let dir: string | undefined;
  let log: DdlLog | undefined;
  before(async () => {
    dir = await tempDir();
    log = new DdlLog(db().url);
    await log.install();
  });
  after(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('ddlSuite(): set up in a before() hook; use it inside tests.');
    return v;
  };
  return { db, dir: () => ready(dir), log: () => ready(log) };
}

async function columnsOf(url: string, table: string): Promise<Array<{ name: string; type: string; notNull: boolean }>> {
  const r = await queryOnce<{ name: string; type: string; not_null: boolean }>(
    url,
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
       FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [`public.${table}`],
  );
  return r.map((x) => ({ name: x.name, type: x.type, notNull: x.not_null }));
}

describe('schema changes beyond added columns: widened and dropped columns (fixture-writer tables, real server)', function () {
  this.timeout(180_000);
  const { db, dir, log } = ddlSuite('schema_evolution');

  /**
   * A CDF table with v1 (`n` rows, 30 unless told) synced into `table` by an initial load
   * (mapping `table` with `-` for `_`, key id, `overrides` over it), the DDL log emptied;
   * the runner is open. `columnMapping` writes the table under column mapping mode name.
   */
  async function loaded(table: string, overrides: MappingOverrides, opts: { n?: number; columnMapping?: boolean } = {}) {
    const configuration: Record<string, string> = { 'delta.enableChangeDataFeed': 'true', ...(opts.columnMapping ? { 'delta.columnMapping.mode': 'name' } : {}) };
    const w = await DeltaTableWriter.create(path.join(dir(), table), { columns: V1, configuration });
    await w.append(rows(1, opts.n ?? 30)); // v1
    const r = await openRunner(buildMapping({ name: table.replace(/_/g, '-'), source: w.path, target: { table }, key: ['id'], ...overrides }), db().url);
    try {
      await r.runner.run({});
      await log().take();
    } catch (e) {
      await r.close();
      throw e;
    }
    return { w, r };
  }

  it('widened columns (integer -> long, decimal(10,2) -> (20,4), date -> timestamp_ntz) under widened "alter": preview and dry run show the ALTERs the sync then runs, in its transaction', async () => {
    const { w, r } = await loaded('widen_alter', { schemaDrift: { widened: 'alter' } });
    try {
      await w.replaceSchema(WIDE); // v2
      await w.append([{ id: 31n, qty: 9_000_000_000n, price: '1234567890123456.5678', day: 1_700_000_000_123_456n, note: 'wide' }]); // v3
      const preview = await r.runner.preview({});
      const expected = [
        'ALTER TABLE "public"."widen_alter" ALTER COLUMN "qty" TYPE bigint USING "qty"::bigint',
        'ALTER TABLE "public"."widen_alter" ALTER COLUMN "price" TYPE numeric(20,4) USING "price"::numeric(20,4)',
        'ALTER TABLE "public"."widen_alter" ALTER COLUMN "day" TYPE timestamp USING "day"::timestamp',
      ];
      assert.deepEqual(preview.alterations, expected);
      assert.equal(preview.totals.insert, 1, 'the wide row is classified against the widened table');
      const dry = await r.runner.dryRun({});
      assert.deepEqual(dry.alterations, expected);
      assert.equal(dry.result.inserted, 1);
      // Preview and dry run ran the DDL in transactions that were rolled back (the log's rows with them).
      assert.deepEqual(await log().take(), []);
      assert.equal((await columnsOf(db().url, 'widen_alter')).find((c) => c.name === 'qty')?.type, 'integer');

      const res = await r.runner.run({});
      assert.equal(res.status, 'succeeded');
      assert.equal(res.inserted, 1);
      assert.match(res.warnings.join('\n'), /column "qty" widened from integer to bigint/);
      assert.deepEqual(await log().take(), expected, 'the sync ran exactly the DDL the preview showed');
      assert.deepEqual((await columnsOf(db().url, 'widen_alter')).map((c) => [c.name, c.type]), [
        ['id', 'bigint'], ['qty', 'bigint'], ['price', 'numeric(20,4)'], ['day', 'timestamp without time zone'], ['note', 'text'],
      ]);
      assert.equal((await r.runner.status()).checkpoint?.version, 3n);
      await assertTargetEquals(db().url, { schema: 'public', name: 'widen_alter' }, w.path, 3, { key: ['id'] });
      // A second run has nothing to change.
      await w.append([{ id: 32n, qty: 1n, price: '1.0001', day: 1n, note: 'again' }]); // v4
      await r.runner.run({});
      assert.deepEqual(await log().take(), []);
      await assertTargetEquals(db().url, { schema: 'public', name: 'widen_alter' }, w.path, 4, { key: ['id'] });
    } finally {
      await r.close();
    }
  });

  it('drift and lineage in one run: the preview and the dry run show one list of DDL (the widenings, then the lineage columns), which is exactly what the sync runs, in that order', async () => {
    const table = 'drift_lineage';
    const first = await loaded(table, { schemaDrift: { widened: 'alter' } });
    await first.r.close();
    const { w } = first;
    await w.replaceSchema(WIDE); // v2
    await w.append([{ id: 31n, qty: 9_000_000_000n, price: '1.5', day: 1n, note: 'wide' }]); // v3
    const lineage = { version: '_delta_version', syncedAt: 'synced_at' };
    const r = await openRunner(buildMapping({ name: 'drift-lineage', source: w.path, target: { table }, key: ['id'], schemaDrift: { widened: 'alter' }, lineage }), db().url);
    try {
      const preview = await r.runner.preview({});
      const expected = [
        `ALTER TABLE "public"."${table}" ALTER COLUMN "qty" TYPE bigint USING "qty"::bigint`,
        `ALTER TABLE "public"."${table}" ALTER COLUMN "price" TYPE numeric(20,4) USING "price"::numeric(20,4)`,
        `ALTER TABLE "public"."${table}" ALTER COLUMN "day" TYPE timestamp USING "day"::timestamp`,
        `ALTER TABLE "public"."${table}" ADD COLUMN IF NOT EXISTS "_delta_version" bigint`,
        `ALTER TABLE "public"."${table}" ADD COLUMN IF NOT EXISTS "synced_at" timestamptz`,
      ];
      assert.deepEqual(preview.alterations, expected);
      assert.equal(preview.totals.insert, 1);
      const dry = await r.runner.dryRun({});
      assert.deepEqual(dry.alterations, expected);
      assert.equal(dry.result.inserted, 1);
      assert.deepEqual(await log().take(), [], 'the preview and the dry run rolled their DDL back');

      const res = await r.runner.run({});
      assert.equal(res.inserted, 1);
      assert.deepEqual(await log().take(), preview.alterations, "the sync ran exactly the preview's DDL, in its order");
      assert.deepEqual((await columnsOf(db().url, table)).map((c) => c.name), ['id', 'qty', 'price', 'day', 'note', '_delta_version', 'synced_at']);
      const wide = await queryOnce<{ v: string }>(db().url, `SELECT _delta_version::text AS v FROM public.${table} WHERE id = 31`);
      assert.deepEqual(wide, [{ v: '3' }]);
    } finally {
      await r.close();
    }
  });

  it('widened columns under the default (fail): refused naming table, version and column; nothing applied, no DDL ran', async () => {
    const { w, r } = await loaded('widen_fail', { schemaDrift: 'fail' });
    try {
      await w.replaceSchema(WIDE); // v2
      await w.append([{ id: 31n, qty: 9_000_000_000n, price: '1.5', day: 1n, note: 'wide' }]); // v3
      const err = await expectSyncError(r.runner.run({}), {
        kind: 'schema-drift', column: 'qty', version: 3, setting: 'schemaDrift', message: /widened "qty" integer -> long \(Postgres integer\)/, hint: /schemaDrift\.widened "alter"/,
      });
      assert.ok(err.table?.includes('widen_fail'));
      await expectSyncError(r.runner.preview({}), { kind: 'schema-drift', column: 'qty' });
      assert.deepEqual(await log().take(), []);
      assert.equal((await r.runner.status()).checkpoint?.version, 1n);
      assert.equal((await columnsOf(db().url, 'widen_fail')).find((c) => c.name === 'qty')?.type, 'integer');
    } finally {
      await r.close();
    }
  });

  it('a widening into a Postgres column already wide enough (columns.types) runs no DDL, under the default policy', async () => {
    const table = 'widen_fits';
    const { w, r } = await loaded(table, { columns: { types: { qty: 'bigint', price: 'numeric(20,4)' } } }, { n: 5 });
    try {
      await w.replaceSchema(V1.map((c) => (c.name === 'qty' ? { ...c, type: LONG } : c.name === 'price' ? { ...c, type: { kind: 'decimal', precision: 20, scale: 4 } } : c))); // v2
      await w.append([{ id: 6n, qty: 9_000_000_000n, price: '12.3456', day: 1, note: 'six' }]); // v3
      const preview = await r.runner.preview({});
      assert.equal(preview.alterations, undefined);
      const res = await r.runner.run({});
      assert.equal(res.inserted, 1);
      assert.deepEqual(await log().take(), []);
      await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 3, { key: ['id'] });
    } finally {
      await r.close();
    }
  });

  it('a narrowed type (decimal(10,2) -> (8,2), written by overwriteSchema) is refused under every rule, naming the column and version', async () => {
    const { w, r } = await loaded('narrowed', { schemaDrift: { widened: 'alter', dropped: 'drop', renamed: 'rename', added: 'add' } });
    try {
      await w.replaceSchema(V1.map((c) => (c.name === 'price' ? { ...c, type: { kind: 'decimal', precision: 8, scale: 2 } } : c))); // v2
      await w.append([{ id: 31n, qty: 1, price: '1.50', day: 1, note: 'x' }]); // v3
      await expectSyncError(r.runner.run({}), { kind: 'schema-drift', column: 'price', version: 3, message: /changed "price" decimal\(10,2\) -> decimal\(8,2\).*refused under every schemaDrift policy/ });
      assert.deepEqual(await log().take(), []);
      assert.equal((await r.runner.status()).checkpoint?.version, 1n);
    } finally {
      await r.close();
    }
  });

  for (const dropped of ['keep', 'drop', 'fail'] as const) {
    it(`a dropped NOT NULL column under dropped "${dropped}"`, async () => {
      const table = `dropped_${dropped}`;
      const { w, r } = await loaded(table, { schemaDrift: { dropped } });
      try {
        await w.replaceSchema(V1.filter((c) => c.name !== 'note')); // v2
        await w.append([{ id: 31n, qty: 310, price: '31.25', day: 19_031 }]); // v3
        if (dropped === 'fail') {
          await expectSyncError(r.runner.run({}), { kind: 'schema-drift', column: 'note', version: 3, setting: 'schemaDrift', message: /removed "note"/, hint: /schemaDrift\.dropped "keep" or "drop"/ });
          assert.deepEqual(await log().take(), []);
          assert.equal((await r.runner.status()).checkpoint?.version, 1n);
          return;
        }
        const want = droppedNoteDdl(table, dropped);
        assert.deepEqual((await r.runner.preview({})).alterations, want);
        await log().take();
        const res = await r.runner.run({});
        assert.equal(res.inserted, 1);
        assert.deepEqual(await log().take(), want);
        await assertDroppedNote(db().url, table, dropped, w.path);
      } finally {
        await r.close();
      }
    });
  }

  it("the writer's column-mapping table: a RENAME COLUMN then an ALTER COLUMN TYPE (typeWidening) follow as rename then retype of the new name, in one transaction; the initial load agrees", async () => {
    const table = 'cm_both';
    const { w, r } = await loaded(table, { schemaDrift: { renamed: 'rename', widened: 'alter' } }, { n: 20, columnMapping: true });
    try {
      await w.renameColumn('qty', 'quantity'); // v2
      await w.widenColumns({ quantity: LONG, price: { kind: 'decimal', precision: 20, scale: 4 } }); // v3
      await w.append([{ id: 21n, quantity: 9_000_000_000n, price: '1234567890123456.5678', day: 19_021, note: 'wide' }]); // v4
      const want = [
        `ALTER TABLE "public"."${table}" RENAME COLUMN "qty" TO "quantity"`,
        `ALTER TABLE "public"."${table}" ALTER COLUMN "quantity" TYPE bigint USING "quantity"::bigint`,
        `ALTER TABLE "public"."${table}" ALTER COLUMN "price" TYPE numeric(20,4) USING "price"::numeric(20,4)`,
      ];
      const preview = await r.runner.preview({});
      assert.deepEqual(preview.alterations, want);
      assert.equal(preview.totals.insert, 1);
      const res = await r.runner.run({});
      assert.equal(res.inserted, 1);
      assert.deepEqual(await log().take(), want, 'the sync ran exactly the DDL the preview showed');
      assert.deepEqual((await columnsOf(db().url, table)).map((c) => [c.name, c.type]), [
        ['id', 'bigint'], ['quantity', 'bigint'], ['price', 'numeric(20,4)'], ['day', 'date'], ['note', 'text'],
      ]);
      await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 4, { key: ['id'] });
    } finally {
      await r.close();
    }
    // The initial-load path over the same history: old files read by physical name into the wide types.
    const fresh = await openRunner(buildMapping({ name: 'cm-both-initial', source: w.path, target: { table: 'cm_both_initial' }, key: ['id'] }), db().url);
    try {
      assert.match((await fresh.runner.preview({})).ddl ?? '', /"quantity" bigint/);
      await fresh.runner.run({});
      await assertTargetEquals(db().url, { schema: 'public', name: 'cm_both_initial' }, w.path, 4, { key: ['id'] });
    } finally {
      await fresh.close();
    }
  });

  it('the DDL commits or rolls back with the batch: a row the target refuses (a CHECK constraint) rolls the ALTER back too', async () => {
    const { w, r } = await loaded('widen_rollback', { schemaDrift: { widened: 'alter' } });
    try {
      await log().sql('ALTER TABLE public.widen_rollback ADD CONSTRAINT small_qty CHECK (qty < 1000000)');
      await log().take();
      await w.replaceSchema(WIDE); // v2
      await w.append([{ id: 31n, qty: 9_000_000_000n, price: '1.5', day: 1n, note: 'too big' }]); // v3
      await assert.rejects(r.runner.run({ maxAttempts: 1 }), /small_qty|check constraint/i);
      assert.deepEqual(await log().take(), [], 'the ALTER was rolled back with the batch');
      assert.equal((await columnsOf(db().url, 'widen_rollback')).find((c) => c.name === 'qty')?.type, 'integer');
      assert.equal((await r.runner.status()).checkpoint?.version, 1n);
    } finally {
      await r.close();
    }
  });

  it('initial load of the widened table: old files (narrow physical types) read into the wide types, the CREATE TABLE has them', async () => {
    const table = 'widen_initial';
    const w = await DeltaTableWriter.create(path.join(dir(), table), { columns: V1, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(rows(1, 20)); // v1
    await w.replaceSchema(WIDE); // v2
    await w.append([{ id: 21n, qty: 9_000_000_000n, price: '1234567890123456.5678', day: 1_700_000_000_123_456n, note: 'wide' }]); // v3
    const m = buildMapping({ name: 'widen-initial', source: w.path, target: { table }, key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      const preview = await r.runner.preview({});
      assert.match(preview.ddl ?? '', /"qty" bigint/);
      assert.match(preview.ddl ?? '', /"price" numeric\(20,4\)/);
      assert.match(preview.ddl ?? '', /"day" timestamp/);
      const res = await r.runner.run({});
      assert.equal(res.inserted, 21);
      await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 3, { key: ['id'] });
      // The swap's own ALTERs (primary key, rename into place), no column changes.
      assert.deepEqual((await log().take()).filter((q) => /ALTER COLUMN|DROP COLUMN|RENAME COLUMN|ADD COLUMN/.test(q)), []);
    } finally {
      await r.close();
    }
  });
});

/**
 * The same schema changes on the initial path: a load with initialLoad.mode "merge" into
 * the existing table (issue 15: "each schema change above on both the incremental and the
 * initial paths"). A reload (a checkpoint, `mode: 'initial'`) compares the schema synced at
 * the checkpoint with the snapshot's, as the incremental does; the preview of the reload
 * shows the DDL, and the load runs exactly it in its merge transaction (the event trigger's
 * log). A first merge into a table the user made has no synced schema: its missing columns
 * follow schemaDrift.added.
 */
describe('schema changes on the initial path: a merge load into the existing table (fixture-writer tables, real server)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('schema_evolution_merge');
  let dir: string;
  let log: DdlLog;

  before(async () => {
    dir = await tempDir();
    log = new DdlLog(db().url);
    await log.install();
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** A CDF table with v1 (30 rows) loaded by merge into `table`; the runner is open. */
  async function loaded(table: string, schemaDrift: MappingInput['schemaDrift'], extra: Partial<MappingOverrides> = {}, configuration: Record<string, string> = {}) {
    const w = await DeltaTableWriter.create(path.join(dir, table), { columns: V1, configuration: { 'delta.enableChangeDataFeed': 'true', ...configuration } });
    await w.append(rows(1, 30)); // v1
    const m = buildMapping({ name: table.replace(/_/g, '-'), source: w.path, target: { table }, key: ['id'], schemaDrift, initialLoad: { mode: 'merge' }, ...extra });
    const r = await openRunner(m, db().url);
    await r.runner.run({});
    await log.take();
    return { w, r };
  }

  /** The column DDL the server ran (the merge runs no other ALTER TABLE). */
  const columnDdl = async (): Promise<string[]> => (await log.take()).filter((q) => /ALTER COLUMN|DROP COLUMN|RENAME COLUMN|ADD COLUMN/.test(q));

  it('widened columns under widened "alter": the reload\'s preview shows the ALTERs, the merge runs exactly them in its transaction and equals the snapshot', async () => {
    const table = 'merge_widen';
    const { w, r } = await loaded(table, { widened: 'alter' });
    try {
      await w.replaceSchema(WIDE); // v2
      await w.append([{ id: 31n, qty: 9_000_000_000n, price: '1234567890123456.5678', day: 1_700_000_000_123_456n, note: 'wide' }]); // v3
      const expected = [
        `ALTER TABLE "public"."${table}" ALTER COLUMN "qty" TYPE bigint USING "qty"::bigint`,
        `ALTER TABLE "public"."${table}" ALTER COLUMN "price" TYPE numeric(20,4) USING "price"::numeric(20,4)`,
        `ALTER TABLE "public"."${table}" ALTER COLUMN "day" TYPE timestamp USING "day"::timestamp`,
      ];
      const preview = await r.runner.preview({ mode: 'initial' });
      assert.equal(preview.mode, 'initial');
      assert.deepEqual(preview.alterations, expected);
      assert.equal(preview.totals.insert, 1, 'the wide row is classified against the widened table');
      assert.deepEqual(await log.take(), [], 'the preview rolled its DDL back');
      const res = await r.runner.run({ mode: 'initial' });
      assert.equal(res.status, 'succeeded');
      assert.equal(res.inserted, 1);
      assert.match(res.warnings.join('\n'), /column "qty" widened from integer to bigint/);
      assert.deepEqual(await columnDdl(), expected, 'the merge ran exactly the DDL the preview showed');
      assert.deepEqual((await columnsOf(db().url, table)).map((c) => [c.name, c.type]), [
        ['id', 'bigint'], ['qty', 'bigint'], ['price', 'numeric(20,4)'], ['day', 'timestamp without time zone'], ['note', 'text'],
      ]);
      assert.equal((await r.runner.status()).checkpoint?.version, 3n);
      await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 3, { key: ['id'] });
    } finally {
      await r.close();
    }
  });

  it('widened columns under the default (fail): the merge load is refused naming table, version and column, before anything is staged; nothing changed', async () => {
    const table = 'merge_widen_fail';
    const { w, r } = await loaded(table, 'fail');
    try {
      await w.replaceSchema(WIDE); // v2
      await w.append([{ id: 31n, qty: 9_000_000_000n, price: '1.5', day: 1n, note: 'wide' }]); // v3
      const err = await expectSyncError(r.runner.run({ mode: 'initial', maxAttempts: 1 }), {
        kind: 'schema-drift', column: 'qty', version: 3, setting: 'schemaDrift', message: /widened "qty" integer -> long \(Postgres integer\)/, hint: /schemaDrift\.widened "alter"/,
      });
      assert.ok(err.table?.includes(table));
      await expectSyncError(r.runner.preview({ mode: 'initial' }), { kind: 'schema-drift', column: 'qty' });
      assert.deepEqual(await columnDdl(), []);
      assert.equal((await r.runner.status()).checkpoint?.version, 1n);
      assert.equal((await columnsOf(db().url, table)).find((c) => c.name === 'qty')?.type, 'integer');
      await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 1, { key: ['id'] });
    } finally {
      await r.close();
    }
  });

  for (const dropped of ['keep', 'drop', 'fail'] as const) {
    it(`a dropped NOT NULL column under dropped "${dropped}" on the merge path`, async () => {
      const table = `merge_dropped_${dropped}`;
      const { w, r } = await loaded(table, { dropped });
      try {
        await w.replaceSchema(V1.filter((c) => c.name !== 'note')); // v2
        await w.append([{ id: 31n, qty: 310, price: '31.25', day: 19_031 }]); // v3
        if (dropped === 'fail') {
          await expectSyncError(r.runner.run({ mode: 'initial', maxAttempts: 1 }), { kind: 'schema-drift', column: 'note', version: 3, setting: 'schemaDrift', message: /removed "note"/, hint: /schemaDrift\.dropped "keep" or "drop"/ });
          assert.deepEqual(await columnDdl(), []);
          assert.equal((await r.runner.status()).checkpoint?.version, 1n);
          return;
        }
        const want = droppedNoteDdl(table, dropped);
        assert.deepEqual((await r.runner.preview({ mode: 'initial' })).alterations, want);
        await log.take();
        const res = await r.runner.run({ mode: 'initial' });
        assert.equal(res.inserted, 1);
        assert.equal(res.updated, 0, 'the other rows are unchanged: the merge does not write the dropped column');
        assert.deepEqual(await columnDdl(), want);
        await assertDroppedNote(db().url, table, dropped, w.path);
      } finally {
        await r.close();
      }
    });
  }

  for (const renamed of ['rename', 'fail'] as const) {
    it(`a column renamed under column mapping (then widened) under renamed "${renamed}" on the merge path`, async () => {
      const table = `merge_renamed_${renamed}`;
      const { w, r } = await loaded(table, { renamed, widened: 'alter' }, {}, { 'delta.columnMapping.mode': 'name' });
      try {
        await w.renameColumn('qty', 'quantity'); // v2
        await w.widenColumns({ quantity: LONG }); // v3
        await w.append([{ id: 31n, quantity: 9_000_000_000n, price: '31.25', day: 19_031, note: 'new' }]); // v4
        if (renamed === 'fail') {
          await expectSyncError(r.runner.run({ mode: 'initial', maxAttempts: 1 }), { kind: 'schema-drift', column: 'qty', version: 4, setting: 'schemaDrift', message: /renamed "qty" -> "quantity"/, hint: /schemaDrift\.renamed "rename"/ });
          assert.deepEqual(await columnDdl(), []);
          assert.equal((await columnsOf(db().url, table)).some((c) => c.name === 'qty'), true);
          return;
        }
        const want = [
          `ALTER TABLE "public"."${table}" RENAME COLUMN "qty" TO "quantity"`,
          `ALTER TABLE "public"."${table}" ALTER COLUMN "quantity" TYPE bigint USING "quantity"::bigint`,
        ];
        const preview = await r.runner.preview({ mode: 'initial' });
        assert.deepEqual(preview.alterations, want);
        assert.equal(preview.totals.insert, 1);
        assert.equal(preview.totals.update, 0, 'the renamed column\'s values are compared under the new name: unchanged');
        const res = await r.runner.run({ mode: 'initial' });
        assert.equal(res.inserted, 1);
        assert.equal(res.updated, 0);
        assert.deepEqual(await columnDdl(), want, 'the merge ran exactly the DDL the preview showed');
        assert.deepEqual((await columnsOf(db().url, table)).map((c) => [c.name, c.type]), [
          ['id', 'bigint'], ['quantity', 'bigint'], ['price', 'numeric(10,2)'], ['day', 'date'], ['note', 'text'],
        ]);
        await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 4, { key: ['id'] });
      } finally {
        await r.close();
      }
    });
  }

  for (const added of ['add', 'ignore', 'fail'] as const) {
    it(`a first merge load into a table the user made without one of the columns, under added "${added}"`, async () => {
      const table = `merge_added_${added}`;
      const w = await DeltaTableWriter.create(path.join(dir, table), { columns: V1 });
      await w.append(rows(1, 10)); // v1
      await log.sql(`CREATE TABLE public.${table} (id bigint PRIMARY KEY, qty integer, price numeric(10,2), day date); INSERT INTO public.${table} VALUES (1, 10, 1.25, '2022-01-09'), (99, 1, 1, '2022-01-01')`);
      await log.take();
      const m = buildMapping({ name: table.replace(/_/g, '-'), source: w.path, target: { table }, key: ['id'], schemaDrift: { added }, initialLoad: { mode: 'merge' } });
      const r = await openRunner(m, db().url);
      try {
        if (added === 'fail') {
          await expectSyncError(r.runner.preview({}), { kind: 'schema-drift', column: 'note', version: 1, setting: 'schemaDrift', message: /"note" \(text\) are not in/ });
          await expectSyncError(r.runner.run({ maxAttempts: 1 }), { kind: 'schema-drift', column: 'note', version: 1, setting: 'schemaDrift', hint: /schemaDrift\.added/ });
          assert.deepEqual(await columnDdl(), []);
          assert.equal((await r.runner.status()).checkpoint ?? null, null);
          return;
        }
        const want = added === 'add' ? [`ALTER TABLE "public"."${table}" ADD COLUMN "note" text`] : [];
        const preview = await r.runner.preview({});
        assert.deepEqual(preview.alterations ?? [], want);
        assert.equal(preview.totals.insert, 9);
        assert.equal(preview.totals.update, added === 'add' ? 1 : 0, 'row 1 gets its note (add); without the column it is unchanged (ignore)');
        const res = await r.runner.run({});
        assert.equal(res.inserted, 9);
        assert.equal(res.deleted, 1, 'the merge deletes the row the snapshot lacks');
        assert.deepEqual(await columnDdl(), want);
        assert.equal((await columnsOf(db().url, table)).some((c) => c.name === 'note'), added === 'add');
        await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 1, {
          key: ['id'], ...(added === 'ignore' ? { columns: V1.filter((x) => x.name !== 'note').map((x) => ({ source: x.name, target: x.name, type: x.type })) } : {}),
        });
      } finally {
        await r.close();
      }
    });
  }
});

/**
 * A copy of a shared Spark table (read-only in the shared folder) that a test may add
 * commits to.
 */
async function copyTable(src: string, dst: string): Promise<string> {
  await fs.cp(src, dst, { recursive: true });
  const walk = async (p: string): Promise<void> => {
    await fs.chmod(p, 0o755);
    for (const e of await fs.readdir(p, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(path.join(p, e.name));
      else await fs.chmod(path.join(p, e.name), 0o644);
    }
  };
  await walk(dst);
  return dst;
}

/**
 * Appends the commit Spark's `ALTER TABLE ... RENAME COLUMN from TO to` writes under column
 * mapping: a metaData action with the same schema, the field's logical name changed and
 * its metadata (column mapping id and physical name) kept; no data files.
 */
async function renameColumnCommit(table: string, from: string, to: string): Promise<number> {
  const logDir = path.join(table, '_delta_log');
  const commits = (await fs.readdir(logDir)).filter((n) => /^\d{20}\.json$/.test(n)).sort();
  let metaData: { schemaString: string } & Record<string, unknown> | undefined;
  for (const n of commits) {
    for (const line of (await fs.readFile(path.join(logDir, n), 'utf8')).split('\n')) {
      if (!line.trim()) continue;
      const a = JSON.parse(line) as { metaData?: typeof metaData };
      if (a.metaData) metaData = a.metaData;
    }
  }
  if (!metaData) throw new Error(`no metaData in ${table}`);
  const schema = JSON.parse(metaData.schemaString) as { fields: Array<{ name: string }> };
  const field = schema.fields.find((f) => f.name === from);
  if (!field) throw new Error(`no column ${from}`);
  field.name = to;
  const version = commits.length;
  const commitInfo = { timestamp: Date.now(), operation: 'RENAME COLUMN', operationParameters: { oldColumnPath: from, newColumnPath: to }, readVersion: version - 1, isolationLevel: 'Serializable', isBlindAppend: true };
  const lines = [JSON.stringify({ commitInfo }), JSON.stringify({ metaData: { ...metaData, schemaString: JSON.stringify(schema) } })];
  await fs.writeFile(path.join(logDir, `${String(version).padStart(20, '0')}.json`), `${lines.join('\n')}\n`, { flag: 'wx' });
  return version;
}

/** The rows of a pretty-printed expected table (`| a | b |`), as column -> text. */
async function expectedRows(file: string): Promise<Array<Record<string, string>>> {
  const lines = (await fs.readFile(file, 'utf8')).split('\n').filter((l) => l.startsWith('|'));
  const cells = (l: string): string[] => l.split('|').slice(1, -1).map((c) => c.trim());
  const [head, ...body] = lines;
  const names = cells(head ?? '');
  return body.map((l) => Object.fromEntries(cells(l).map((v, i) => [names[i] ?? String(i), v])));
}

/** Rows of a query with every value as Postgres prints it (no parsing into JS values). */
/** The DDL of a sync over the source's dropped `note` column: kept (nullable, no longer written) or dropped. */
function droppedNoteDdl(table: string, dropped: string): string[] {
  return dropped === 'keep'
    ? [`ALTER TABLE "public"."${table}" ALTER COLUMN "note" DROP NOT NULL`]
    : [`ALTER TABLE "public"."${table}" DROP COLUMN "note"`];
}

/**
 * After a sync over the dropped `note` column at version 3: kept, it is nullable and no
 * longer written (old rows keep their value, the new row 31 has none); dropped, it is gone;
 * either way the other columns equal the snapshot.
 */
async function assertDroppedNote(url: string, table: string, dropped: string, deltaPath: string): Promise<void> {
  const cols = await columnsOf(url, table);
  if (dropped === 'keep') {
    assert.deepEqual(cols.find((x) => x.name === 'note'), { name: 'note', type: 'text', notNull: false });
    const notes = await queryOnce<{ id: string; note: string | null }>(url, `SELECT id::text, note FROM public.${table} WHERE id IN (1, 31) ORDER BY id`);
    assert.deepEqual(notes, [{ id: '1', note: 'note 1' }, { id: '31', note: null }]);
  } else {
    assert.equal(cols.some((x) => x.name === 'note'), false);
  }
  await assertTargetEquals(url, { schema: 'public', name: table }, deltaPath, 3, {
    key: ['id'], columns: V1.filter((x) => x.name !== 'note').map((x) => ({ source: x.name, target: x.name, type: x.type })),
  });
}

async function selectText(url: string, sql: string): Promise<Array<Record<string, string | null>>> {
  const c = new pg.Client({ connectionString: url, types: { getTypeParser: () => (v: string) => v } });
  await c.connect();
  try {
    return (await c.query<Record<string, string | null>>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('schema changes on real Spark tables: a rename under column mapping, type widening (shared tables, real server)', function () {
  this.timeout(180_000);
  const { db, dir, log } = ddlSuite('schema_evolution_spark');

  /**
   * A copy of delta-kernel-rs/cdf-column-mapping-name-mode synced up to v1 into `table`
   * (mapping `table` with `-` for `_`, key id, `overrides` over it), then the commit of a
   * rename name -> full_name (v5); the DDL log emptied, the runner open.
   */
  async function renamedAfterLoad(ctx: Mocha.Context, table: string, overrides: MappingOverrides = {}) {
    const source = await copyTable(requireSharedTable(ctx, 'delta-kernel-rs/cdf-column-mapping-name-mode'), path.join(dir(), table));
    const r = await openRunner(buildMapping({ name: table.replace(/_/g, '-'), source, target: { table }, key: ['id'], ...overrides }), db().url);
    try {
      await r.runner.run({ toVersion: 1 });
      assert.equal(await renameColumnCommit(source, 'name', 'full_name'), 5);
      await log().take();
    } catch (e) {
      await r.close();
      throw e;
    }
    return { source, r };
  }

  it('cdf-column-mapping-name-mode + a RENAME COLUMN commit: the incremental renames the Postgres column in its transaction and writes the changes of v2..v4 (read by physical name) into it', async function () {
    const { source: table, r } = await renamedAfterLoad(this, 'cm_rename', { schemaDrift: { renamed: 'rename' } });
    try {
      const want = ['ALTER TABLE "public"."cm_rename" RENAME COLUMN "name" TO "full_name"'];
      const preview = await r.runner.preview({});
      assert.deepEqual(preview.alterations, want);
      // v2 update of Bob, v3 insert of David, v4 delete of Alice: classified against the renamed table.
      assert.deepEqual({ insert: preview.totals.insert, update: preview.totals.update, delete: preview.totals.delete }, { insert: 1, update: 1, delete: 1 });
      assert.deepEqual((await r.runner.dryRun({})).alterations, want);
      const res = await r.runner.run({});
      assert.equal(res.status, 'succeeded');
      assert.deepEqual(await log().take(), want, 'the sync ran exactly the DDL the preview showed');
      assert.equal((await r.runner.status()).checkpoint?.version, 5n);
      assert.deepEqual((await columnsOf(db().url, 'cm_rename')).map((c) => c.name), ['id', 'full_name', 'value']);
      await assertTargetEquals(db().url, { schema: 'public', name: 'cm_rename' }, table, 5, { key: ['id'] });
      // The reference reader's CDF (expected/): Bob updated to 250, David inserted, Alice deleted.
      const rows = await selectText(db().url, 'SELECT id::text, full_name, value::text FROM public.cm_rename ORDER BY id');
      const cdf = await expectedRows(requireSharedTable(this, 'expected/cdf-column-mapping-name-mode.cdf.from-v1.txt'));
      const post = cdf.find((x) => x._change_type === 'update_postimage');
      assert.deepEqual(rows.find((x) => x.id === post?.id), { id: post?.id, full_name: post?.name, value: String(Number(post?.value)) });
      const ins = cdf.find((x) => x._change_type === 'insert');
      assert.equal(rows.find((x) => x.id === ins?.id)?.full_name, ins?.name);
      const del = cdf.find((x) => x._change_type === 'delete');
      assert.equal(rows.some((x) => x.id === del?.id), false);
    } finally {
      await r.close();
    }
  });

  it('the same rename under the default policy is refused naming the column and version; nothing applied, the column keeps its name', async function () {
    const { r } = await renamedAfterLoad(this, 'cm_fail');
    try {
      await expectSyncError(r.runner.run({}), { kind: 'schema-drift', column: 'name', version: 5, setting: 'schemaDrift', message: /renamed "name" -> "full_name"/, hint: /schemaDrift\.renamed "rename"/ });
      assert.deepEqual(await log().take(), []);
      assert.equal((await r.runner.status()).checkpoint?.version, 1n);
      assert.deepEqual((await columnsOf(db().url, 'cm_fail')).map((c) => c.name), ['id', 'name', 'value']);
    } finally {
      await r.close();
    }
  });

  it("the mapping's own rename: an entry under the old Delta name is refused naming it; written under the new name, the Postgres column stays and gets the values (no DDL)", async function () {
    const { source: table, r: before } = await renamedAfterLoad(this, 'cm_mapped', { schemaDrift: { renamed: 'rename' }, columns: { rename: { name: 'customer_name' } } });
    try {
      await expectSyncError(before.runner.run({}), { kind: 'schema-drift', column: 'name', version: 5, setting: 'columns.rename.name', message: /renamed to "full_name".*still names it "name"/, hint: /Write "full_name" instead of "name" in columns\.rename/ });
    } finally {
      await before.close();
    }
    const after = await openRunner(
      buildMapping({ name: 'cm-mapped', source: table, target: { table: 'cm_mapped' }, key: ['id'], schemaDrift: { renamed: 'rename' }, columns: { rename: { full_name: 'customer_name' } } }),
      db().url,
    );
    try {
      assert.equal((await after.runner.preview({})).alterations, undefined);
      await after.runner.run({});
      assert.deepEqual(await log().take(), []);
      assert.deepEqual((await columnsOf(db().url, 'cm_mapped')).map((c) => c.name), ['id', 'customer_name', 'value']);
      await assertTargetEquals(db().url, { schema: 'public', name: 'cm_mapped' }, table, 5, {
        key: ['id'],
        columns: [
          { source: 'id', target: 'id', type: { kind: 'primitive', name: 'long' } },
          { source: 'full_name', target: 'customer_name', type: { kind: 'primitive', name: 'string' } },
          { source: 'value', target: 'value', type: { kind: 'primitive', name: 'double' } },
        ],
      });
    } finally {
      await after.close();
    }
  });

  it('initial load of the renamed table: the column under its new name, values read by physical name', async function () {
    const table = await copyTable(requireSharedTable(this, 'delta-kernel-rs/cdf-column-mapping-name-mode'), path.join(dir(), 'cm_initial'));
    await renameColumnCommit(table, 'name', 'full_name'); // v5
    const r = await openRunner(buildMapping({ name: 'cm-initial', source: table, target: { table: 'cm_initial' }, key: ['id'] }), db().url);
    try {
      assert.match((await r.runner.preview({})).ddl ?? '', /"full_name" text/);
      await r.runner.run({});
      assert.deepEqual((await columnsOf(db().url, 'cm_initial')).map((c) => c.name), ['id', 'full_name', 'value']);
      await assertTargetEquals(db().url, { schema: 'public', name: 'cm_initial' }, table, 5, { key: ['id'] });
      const names = await selectText(db().url, 'SELECT count(*)::text AS n FROM public.cm_initial WHERE full_name IS NULL');
      assert.equal(names[0]?.n, '0');
    } finally {
      await r.close();
    }
  });

  it('type-widening (Spark, typeWidening-preview): the initial load reads the narrow files into the wide types and equals the reference reader', async function () {
    const table = requireSharedTable(this, 'delta-kernel-rs/type-widening');
    const r = await openRunner(buildMapping({ name: 'tw-initial', source: table, target: { table: 'tw_initial' }, key: ['byte_long'] }), db().url);
    try {
      const ddl = (await r.runner.preview({})).ddl ?? '';
      for (const [col, type] of [['byte_long', 'bigint'], ['float_double', 'double precision'], ['decimal_decimal_greater_scale', 'numeric(20,5)'], ['date_timestamp_ntz', 'timestamp']]) {
        assert.match(ddl, new RegExp(`"${col}" ${type.replace(/[()]/g, '\\$&')}`));
      }
      await r.runner.run({});
      const got = await selectText(db().url, 'SELECT * FROM (SELECT *, byte_long AS k FROM public.tw_initial) t ORDER BY k');
      for (const file of ['widened-ints-floats-date', 'widened-decimals']) {
        const want = await expectedRows(requireSharedTable(this, `expected/type-widening.snapshot.latest.${file}.txt`));
        assert.equal(want.length, got.length);
        want.forEach((row, i) => {
          for (const [col, text] of Object.entries(row)) {
            const actual = got[i]?.[col] ?? null;
            if (/double/.test(col)) assert.equal(Number(actual), Number(text), col);
            else if (col === 'date_timestamp_ntz') assert.equal(actual?.replace(' ', 'T'), text, col);
            else assert.equal(actual, text, col);
          }
        });
      }
    } finally {
      await r.close();
    }
  });

  it('type-widening: its key column widened (byte -> long) since the checkpoint is refused under every rule, naming table, version and column', async function () {
    const table = requireSharedTable(this, 'delta-kernel-rs/type-widening');
    const r = await openRunner(
      buildMapping({ name: 'tw-key', source: table, target: { table: 'tw_key' }, key: ['byte_long'], schemaDrift: { renamed: 'rename', widened: 'alter', dropped: 'drop', added: 'add' } }),
      db().url,
    );
    try {
      await r.runner.run({ toVersion: 0 });
      const err = await expectSyncError(r.runner.run({}), { kind: 'schema-drift', column: 'byte_long', version: 2, setting: 'key', message: /key column "byte_long" changed from byte to long/ });
      assert.match(err.message, /type-widening/);
      assert.equal((await r.runner.status()).checkpoint?.version, 0n);
    } finally {
      await r.close();
    }
  });
});
