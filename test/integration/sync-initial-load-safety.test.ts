import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Pool } from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { SyncEvent } from '../../src/sync/ports/events';
import { decimal, long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import type { MappingOverrides } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import type { OpenedRunner } from '../helpers/syncHarness';

/**
 * Issue 11 (initial loads: swap, merge and dead letters): a swap never bypasses the
 * target's triggers or rules nor breaks its dependents, and refuses before reading the
 * snapshot, naming them; dead letters apply to initial loads and to trigger exceptions;
 * the NUL and null-key errors say what works.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
  { name: 'amount', type: decimal(12, 3) },
];

function item(i: number, over: Partial<Row> = {}): Row {
  return { id: BigInt(i), name: `item ${i}`, amount: `${i}.500`, ...over };
}
function items(a: number, b: number): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push(item(i));
  return out;
}

describe('initial loads: swap safety and dead letters (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('load_safety');
  let dir: string;
  const open: OpenedRunner[] = [];

  before(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    for (const r of open.splice(0)) await r.close();
  });

  /** A Delta table (v1: items 1..20, plus `extra`) and a runner for it into public.<name>. */
  async function setup(name: string, extra: Row[] = [], over: MappingOverrides = {}, cols = COLS): Promise<{ w: DeltaTableWriter; r: OpenedRunner; pool: Pool; mapping: (o: MappingOverrides) => Promise<OpenedRunner> }> {
    const w = await DeltaTableWriter.create(path.join(dir, name), { columns: cols, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append([...items(1, 20), ...extra]);
    const mapping = async (o: MappingOverrides): Promise<OpenedRunner> => {
      const r = await openRunner(buildMapping({ name: name.replace(/_/g, '-'), source: w.path, target: name, key: ['id'], ...over, ...o }), db().url);
      open.push(r);
      return r;
    };
    const r = await mapping({});
    return { w, r, pool: r.pool, mapping };
  }

  const ids = async (pool: Pool, table: string): Promise<number[]> =>
    (await pool.query<{ id: string }>(`SELECT id::text AS id FROM public."${table}" ORDER BY id::bigint`)).rows.map((x) => Number(x.id));
  const deadLetters = async (pool: Pool, pipeline: string): Promise<Array<{ k: string; sqlstate: string; message: string; version: string }>> =>
    (await pool.query(`SELECT key->>'id' AS k, sqlstate, message, version::text FROM delta_neon_sync.dead_letters WHERE pipeline = $1 ORDER BY (key->>'id')::bigint`, [pipeline])).rows;

  describe('a swap refuses, before reading the snapshot, a table it would bypass or break', () => {
    it('a row trigger: names it and the setting; nothing is read or changed; with onSwapBlocked "merge" the load merges and the trigger rejects the bad row', async () => {
      const { w, r, pool, mapping } = await setup('trig');
      await r.runner.run({ mode: 'initial' });
      await pool.query(`CREATE FUNCTION public.trig_check() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.amount < 0 THEN RAISE EXCEPTION 'amount of % must not be negative', NEW.id; END IF; RETURN NEW; END $$`);
      await pool.query(`CREATE TRIGGER no_negative BEFORE INSERT OR UPDATE ON public.trig FOR EACH ROW EXECUTE FUNCTION public.trig_check()`);
      await w.append([item(21, { amount: '-1.000' }), item(22)]); // v2
      const events: SyncEvent[] = [];
      const err = await expectSyncError(r.runner.run({ mode: 'initial', onEvent: (e) => events.push(e) }), {
        kind: 'target', table: 'public.trig', setting: 'initialLoad.onSwapBlocked', message: /trigger "no_negative"/, hint: /"onSwapBlocked": "merge"/,
      });
      assert.doesNotMatch(`${err.message} ${err.hint ?? ''}`, /CASCADE/i);
      assert.ok(!events.some((e) => e.type === 'phase' && e.phase === 'read'), 'refused before the snapshot is read');
      assert.deepEqual(await ids(pool, 'trig'), items(1, 20).map((x) => Number(x.id)));
      assert.equal((await r.runner.status()).checkpoint?.version, 1n);

      // The hint works: merge fires the trigger (which refuses row 21 and so the load) ...
      const merged = await mapping({ initialLoad: { onSwapBlocked: 'merge' } });
      await expectSyncError(merged.runner.run({ mode: 'initial' }), { kind: 'target', message: /must not be negative/ });
      // ... and with dead letters, row 21 is set aside and the rest is loaded.
      const withDl = await mapping({ initialLoad: { onSwapBlocked: 'merge' }, deadLetter: true });
      const res = await withDl.runner.run({ mode: 'initial' });
      assert.equal(res.deadLettered, 1);
      assert.ok(res.warnings.some((x) => /merge instead of swap/.test(x) && /no_negative/.test(x)), res.warnings.join('\n'));
      assert.deepEqual(await ids(pool, 'trig'), [...items(1, 20), item(22)].map((x) => Number(x.id)));
      const dl = await deadLetters(pool, 'trig');
      assert.deepEqual(dl.map((x) => [x.k, x.sqlstate, x.version]), [['21', 'P0001', '2']]);
      assert.match(dl[0]?.message ?? '', /must not be negative/);
      assert.equal((await withDl.runner.status()).checkpoint?.version, 2n);
    });

    it('a rule: names it', async () => {
      const { r, pool } = await setup('ruled');
      await r.runner.run({ mode: 'initial' });
      await pool.query(`CREATE TABLE public.ruled_log (id bigint)`);
      await pool.query(`CREATE RULE log_insert AS ON INSERT TO public.ruled DO ALSO INSERT INTO public.ruled_log VALUES (NEW.id)`);
      await expectSyncError(r.runner.run({ mode: 'initial' }), { kind: 'target', setting: 'initialLoad.onSwapBlocked', message: /rule "log_insert"/ });
    });

    it('a view and a materialized view on it: names both, never suggests CASCADE; merge keeps them', async () => {
      const { w, r, pool, mapping } = await setup('viewed');
      await r.runner.run({ mode: 'initial' });
      await pool.query(`CREATE VIEW public.viewed_names AS SELECT id, name FROM public.viewed`);
      await pool.query(`CREATE MATERIALIZED VIEW public.viewed_total AS SELECT sum(amount) AS s FROM public.viewed`);
      await w.append([item(21)]);
      const err = await expectSyncError(r.runner.run({ mode: 'initial' }), {
        kind: 'target', setting: 'initialLoad.onSwapBlocked', message: /view public\.viewed_names.*materialized view public\.viewed_total/,
      });
      assert.doesNotMatch(`${err.message} ${err.hint ?? ''}`, /CASCADE/i);
      const merged = await mapping({ initialLoad: { onSwapBlocked: 'merge' } });
      await merged.runner.run({ mode: 'initial' });
      assert.equal((await pool.query(`SELECT count(*)::int AS n FROM public.viewed_names`)).rows[0].n, 21);
    });

    it('a foreign key of another table pointing at it: names the constraint and table; merge keeps the referencing rows', async () => {
      const { r, pool, mapping } = await setup('referenced');
      await r.runner.run({ mode: 'initial' });
      await pool.query(`CREATE TABLE public.referencing (rid int PRIMARY KEY, item bigint CONSTRAINT referencing_item_fk REFERENCES public.referenced (id))`);
      await pool.query(`INSERT INTO public.referencing VALUES (1, 5)`);
      await expectSyncError(r.runner.run({ mode: 'initial' }), {
        kind: 'target', setting: 'initialLoad.onSwapBlocked', message: /foreign key referencing_item_fk of public\.referencing/,
      });
      const merged = await mapping({ initialLoad: { onSwapBlocked: 'merge' } });
      await merged.runner.run({ mode: 'initial' });
      assert.equal((await pool.query(`SELECT count(*)::int AS n FROM public.referencing`)).rows[0].n, 1);
    });
  });

  describe('dead letters in initial loads', () => {
    async function constrained(name: string, over: MappingOverrides): Promise<{ r: OpenedRunner; pool: Pool; mapping: (o: MappingOverrides) => Promise<OpenedRunner> }> {
      // v1: row 21 has a negative amount, row 22 repeats row 3's name.
      const s = await setup(name, [item(21, { amount: '-2.000' }), item(22, { name: 'item 3' })], over);
      await s.pool.query(`CREATE TABLE public."${name}" (id bigint PRIMARY KEY, name text CONSTRAINT "${name}_name_key" UNIQUE, amount numeric(12,3) CONSTRAINT "${name}_amount_check" CHECK (amount >= 0))`);
      return s;
    }

    for (const mode of ['swap', 'merge'] as const) {
      it(`(${mode}) CHECK and UNIQUE violations fail the load without dead letters, naming the constraint; with them the rows are set aside and the rest loaded`, async () => {
        const name = `dl_${mode}`;
        const { r, pool, mapping } = await constrained(name, { initialLoad: { mode } });
        const err = await expectSyncError(r.runner.run({ mode: 'initial' }), { kind: 'target', message: new RegExp(`${name}_(amount_check|name_key)`), hint: /"deadLetter": true/ });
        assert.doesNotMatch(err.message, /__dns_/);
        assert.deepEqual(await ids(pool, name), []);

        const withDl = await mapping({ deadLetter: true });
        const res = await withDl.runner.run({ mode: 'initial' });
        assert.equal(res.deadLettered, 2);
        assert.equal(res.inserted, 20);
        assert.ok(res.warnings.some((x) => /2 row\(s\).*dead_letters/.test(x)), res.warnings.join('\n'));
        assert.deepEqual(await ids(pool, name), items(1, 20).map((x) => Number(x.id)));
        const dl = await deadLetters(pool, name.replace(/_/g, '-'));
        assert.deepEqual(dl.map((x) => [x.k, x.sqlstate, x.version]), [['21', '23514', '1'], ['22', '23505', '1']]);
        assert.match(dl[0]?.message ?? '', new RegExp(`${name}_amount_check`));
        assert.match(dl[1]?.message ?? '', new RegExp(`${name}_name_key`));
        const cons = await pool.query(`SELECT conname FROM pg_constraint WHERE conrelid = 'public.${name}'::regclass ORDER BY 1`);
        assert.deepEqual(cons.rows.map((x) => x.conname), [`${name}_amount_check`, `${name}_name_key`, `${name}_pkey`]);
        assert.equal((await withDl.runner.status()).checkpoint?.version, 1n);
      });
    }

    it('(swap) a row whose foreign key has no referenced row is set aside with dead letters (23503); the constraint is recreated', async () => {
      const { r, pool } = await setup('dl_fk', [item(21, { name: 'nobody' })], { deadLetter: true });
      await pool.query(`CREATE TABLE public.dl_fk_names (name text PRIMARY KEY)`);
      await pool.query(`INSERT INTO public.dl_fk_names SELECT 'item ' || g FROM generate_series(1, 20) g`);
      await pool.query(`CREATE TABLE public.dl_fk (id bigint PRIMARY KEY, name text CONSTRAINT dl_fk_name_fk REFERENCES public.dl_fk_names (name), amount numeric(12,3))`);
      const res = await r.runner.run({ mode: 'initial' });
      assert.equal(res.deadLettered, 1);
      assert.deepEqual(await ids(pool, 'dl_fk'), items(1, 20).map((x) => Number(x.id)));
      assert.deepEqual((await deadLetters(pool, 'dl-fk')).map((x) => [x.k, x.sqlstate]), [['21', '23503']]);
      const con = await pool.query(`SELECT conname FROM pg_constraint WHERE conrelid = 'public.dl_fk'::regclass AND contype = 'f'`);
      assert.deepEqual(con.rows, [{ conname: 'dl_fk_name_fk' }]);
    });

    it('a null key names the target table, the key column and the version (not the staging table); the hint (deadLetter) works', async () => {
      const cols: WriterColumn[] = [{ name: 'id', type: long() }, { name: 'name', type: string() }, { name: 'amount', type: decimal(12, 3) }];
      const { pool, r, mapping } = await setup('nullkey', [item(0, { id: null })], {}, cols);
      const err = await expectSyncError(r.runner.run({ mode: 'initial' }), { kind: 'target', table: 'public.nullkey', column: 'id', version: 1, message: /key column "id" is null/, hint: /"deadLetter": true/ });
      assert.doesNotMatch(`${err.message} ${err.hint ?? ''}`, /__dns_/);
      assert.match(err.hint ?? '', /"filter"/);
      // Both remedies the hint names work: the filter it suggests ...
      const filtered = await mapping({ filter: [{ column: 'id', op: 'is not null' }] });
      await filtered.runner.run({ mode: 'initial' });
      assert.deepEqual(await ids(pool, 'nullkey'), items(1, 20).map((x) => Number(x.id)));
      // ... and dead letters.
      const withDl = await mapping({ deadLetter: true });
      const res = await withDl.runner.run({ mode: 'initial' });
      assert.equal(res.deadLettered, 1);
      assert.deepEqual(await ids(pool, 'nullkey'), items(1, 20).map((x) => Number(x.id)));
      const dl = await pool.query(`SELECT sqlstate, "row"->>'name' AS name FROM delta_neon_sync.dead_letters WHERE pipeline = 'nullkey'`);
      assert.deepEqual(dl.rows, [{ sqlstate: '23502', name: 'item 0' }]);
    });

    it('a NUL character: the hint says to strip it or set deadLetter (not bytea), and deadLetter works for initial and incremental syncs', async () => {
      const { w, pool, r, mapping } = await setup('nul', [item(21, { name: 'bad\u0000name' })]);
      const err = await expectSyncError(r.runner.run({ mode: 'initial' }), { kind: 'target', table: 'public.nul', version: 1, column: 'name', message: /NUL.*version 1 into public\.nul/, hint: /"deadLetter": true/ });
      assert.doesNotMatch(err.hint ?? '', /bytea/);
      const withDl = await mapping({ deadLetter: true });
      const res = await withDl.runner.run({ mode: 'initial' });
      assert.equal(res.deadLettered, 1);
      assert.deepEqual(await ids(pool, 'nul'), items(1, 20).map((x) => Number(x.id)));
      await w.append([item(23, { name: 'also\u0000bad' }), item(24)]); // v2
      const inc = await withDl.runner.run({});
      assert.equal(inc.mode, 'incremental');
      assert.equal(inc.deadLettered, 1);
      assert.deepEqual(await ids(pool, 'nul'), [...items(1, 20), item(24)].map((x) => Number(x.id)));
      const dl = await deadLetters(pool, 'nul');
      assert.deepEqual(dl.map((x) => [x.k, x.sqlstate, x.version]), [['21', '22021', '1'], ['23', '22021', '2']]);
    });
  });

  it('a merge with dead letters keeps the target row of a key whose new row was refused before staging (NUL), and deletes the keys the snapshot lacks', async () => {
    const { w, pool, mapping } = await setup('nul_merge');
    const r = await mapping({ deadLetter: true, initialLoad: { mode: 'merge' } });
    await r.runner.run({ mode: 'initial' });
    await w.update('id', [item(7, { name: 'seven\u0000' })]); // v2
    await w.delete('id', [20n]); // v3
    const res = await r.runner.run({ mode: 'initial' });
    assert.equal(res.deadLettered, 1);
    assert.deepEqual(await ids(pool, 'nul_merge'), items(1, 19).map((x) => Number(x.id)));
    const seven = await pool.query(`SELECT name FROM public.nul_merge WHERE id = 7`);
    assert.deepEqual(seven.rows, [{ name: 'item 7' }]);
  });

  it('a swap over a table something else depends on (a function taking its row type) is refused before reading, naming it, without suggesting CASCADE; onSwapBlocked "merge" loads it', async () => {
    const { w, pool, r, mapping } = await setup('typed');
    await r.runner.run({ mode: 'initial' });
    await pool.query(`CREATE FUNCTION public.typed_name(t public.typed) RETURNS text LANGUAGE sql AS 'SELECT t.name'`);
    await w.append([item(21)]);
    const err = await expectSyncError(r.runner.run({ mode: 'initial' }), { kind: 'target', table: 'public.typed', setting: 'initialLoad.onSwapBlocked', message: /function typed_name\(typed\)/, hint: /"onSwapBlocked": "merge"/ });
    assert.doesNotMatch(`${err.message} ${err.hint ?? ''}`, /CASCADE/i);
    assert.equal((await pool.query(`SELECT count(*)::int AS n FROM public.typed`)).rows[0].n, 20);
    // The hint works: a merge keeps the function and loads the new row.
    const merged = await mapping({ initialLoad: { onSwapBlocked: 'merge' } });
    await merged.runner.run({ mode: 'initial' });
    assert.equal((await pool.query(`SELECT count(*)::int AS n FROM public.typed WHERE public.typed_name(typed) IS NOT NULL`)).rows[0].n, 21);
  });

  it('an incremental sync with dead letters sets aside the rows a user trigger refuses (RAISE EXCEPTION, SQLSTATE P0001) and applies the rest', async () => {
    const { w, pool, mapping } = await setup('inc_trig');
    const r = await mapping({ deadLetter: true });
    await r.runner.run({ mode: 'initial' });
    await pool.query(`CREATE FUNCTION public.inc_trig_check() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.amount < 0 THEN RAISE EXCEPTION 'amount of % must not be negative', NEW.id; END IF; RETURN NEW; END $$`);
    await pool.query(`CREATE TRIGGER no_negative BEFORE INSERT OR UPDATE ON public.inc_trig FOR EACH ROW EXECUTE FUNCTION public.inc_trig_check()`);
    await w.append([item(21, { amount: '-1.000' }), item(22)]); // v2
    await w.update('id', [item(5, { amount: '-5.000' }), item(6, { name: 'six' })]); // v3
    const res = await r.runner.run({});
    assert.equal(res.status, 'succeeded');
    assert.equal(res.deadLettered, 2);
    assert.deepEqual(await ids(pool, 'inc_trig'), [...items(1, 20), item(22)].map((x) => Number(x.id)));
    const kept = await pool.query(`SELECT id::int, name, amount::text FROM public.inc_trig WHERE id IN (5, 6) ORDER BY id`);
    assert.deepEqual(kept.rows, [{ id: 5, name: 'item 5', amount: '5.500' }, { id: 6, name: 'six', amount: '6.500' }]);
    const dl = await deadLetters(pool, 'inc-trig');
    assert.deepEqual(dl.map((x) => [x.k, x.sqlstate]), [['5', 'P0001'], ['21', 'P0001']]);
    assert.equal((await r.runner.status()).checkpoint?.version, 3n);
  });
});
