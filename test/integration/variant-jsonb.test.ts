import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Pool } from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { loadHyparquetWriter } from '../../src/fixtures/fixtureParquet';
import { SyncError } from '../../src/sync/errors';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { toExactJson } from '../../src/sync/postgres/copyEncoder';
import type { Row } from '../../src/sync/delta/types';
import { variantToJson } from '../../src/sync/delta/variant';
import { copyRows } from '../../src/sync/postgres/copyRows';
import { createPool } from '../../src/sync/postgres/createPool';
import { formatValue } from '../../src/sync/postgres/formatValue';
import { defaultTargetColumns, renderCreateTable } from '../../src/sync/postgres/renderCreateTable';
import { field } from '../builders/deltaFields';
import { arr, f32, f64, le, meta, obj, prim, shortStr } from '../builders/variantBytes';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * VARIANT columns arrive in Postgres as jsonb, exactly, on tables the project's own writer
 * makes (values hyparquet-writer encodes). Spark-written variant tables (delta-kernel-rs,
 * delta-io/delta, not committed here) are read by variant-kernel.test.ts.
 */

async function mismatches(pool: Pool, table: string, expected: Record<string, string>): Promise<Array<Record<string, unknown>>> {
  const cond = Object.entries(expected)
    .map(([col, sql]) => `${col} IS DISTINCT FROM ${sql}`)
    .join(' OR ');
  const r = await pool.query(`SELECT * FROM ${table} WHERE ${cond} ORDER BY id`);
  return r.rows as Array<Record<string, unknown>>;
}

describe('VARIANT columns as jsonb (real Postgres)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('variant');
  let pool: Pool;
  before(() => {
    pool = createPool(db().url);
  });
  after(async () => {
    await pool.end();
  });

  it('every variant primitive type reaches jsonb exactly (decimal scale, int64, nanos, uuid, NaN), and the preview prints what Postgres prints', async () => {
    const m = meta(['price', 'at', 'b', 'a']);
    // [variant bytes, the jsonb Postgres must hold, as literal JSON text]
    const cases: Array<[number[], string]> = [
      [prim(10, 2, ...le(150n, 16)), '1.50'],
      [prim(8, 4, ...le(-5, 4)), '-0.0005'],
      [prim(10, 38, ...le(10n ** 38n - 1n, 16)), '0.99999999999999999999999999999999999999'],
      [prim(9, 0, ...le(-999999999999999999n, 8)), '-999999999999999999'],
      [prim(6, ...le(-9223372036854775808n, 8)), '-9223372036854775808'],
      [prim(7, ...f64(1e21)), '1000000000000000000000'],
      [prim(7, ...f64(5e-324)), '5e-324'],
      [prim(7, ...f64(NaN)), '"NaN"'],
      [prim(14, ...f32(0.1)), '0.1'],
      [prim(11, ...le(-719162, 4)), '"0001-01-01"'],
      [prim(12, ...le(0n, 8)), '"1970-01-01T00:00:00.000000+00:00"'],
      [prim(19, ...le(1704067200000000001n, 8)), '"2024-01-01T00:00:00.000000001"'],
      [prim(20, ...Array.from({ length: 16 }, (_, i) => i * 17)), '"00112233-4455-6677-8899-aabbccddeeff"'],
      [prim(15, ...le(3, 4), 0xde, 0xad, 0xbe), '"3q2+"'],
      [shortStr('tab\there \\N "q"'), JSON.stringify('tab\there \\N "q"')],
      [obj([[3, prim(0)], [1, prim(13, ...le(1n, 8))], [2, arr([prim(10, 1, ...le(10n, 16))])], [0, prim(8, 2, ...le(1999, 4))]]), '{"a": null, "at": "1970-01-01T00:00:00.000001", "b": [1.0], "price": 19.99}'],
    ];
    const cols = defaultTargetColumns([field('id', { kind: 'primitive', name: 'long' }, { nullable: false }), field('v', { kind: 'primitive', name: 'variant' })]);
    await pool.query(renderCreateTable({ name: 'variant_values' }, cols, ['id']));
    const rows = cases.map(([bytes], i) => ({ id: BigInt(i), v: variantToJson(m, new Uint8Array(bytes)) }));
    const client = await pool.connect();
    try {
      await copyRows(client, { name: 'variant_values' }, cols, (async function* () {
        yield rows;
      })());
    } finally {
      client.release();
    }
    const got = await pool.query<{ id: string; text: string; same: boolean; exact: boolean }>(
      `SELECT t.id::text AS id, t.v::text AS text, t.v = e.want::jsonb AS same, t.v::text = e.want::jsonb::text AS exact
         FROM variant_values t JOIN unnest($1::text[]) WITH ORDINALITY AS e(want, n) ON t.id = e.n - 1 ORDER BY t.id`,
      [cases.map(([, want]) => want)],
    );
    assert.equal(got.rows.length, cases.length);
    const vCol = cols[1]!;
    for (const row of got.rows) {
      const i = Number(row.id);
      assert.ok(row.same && row.exact, `case ${i}: stored ${row.text}, want ${cases[i]?.[1]}`);
      assert.equal(formatValue(rows[i]?.v, vCol), row.text, `preview of case ${i}`);
    }
  });

  it('values the fixture writer encodes: primitives, objects, arrays, nulls, through the initial load, the preview and the Change Data Feed', async () => {
    const dir = path.join(await tempDir('variant-writer-'), 'events');
    await fs.mkdir(dir, { recursive: true });
    const w = await DeltaTableWriter.create(dir, {
      columns: [
        { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
        { name: 'payload', type: { kind: 'primitive', name: 'variant' } },
      ],
      configuration: { 'delta.enableChangeDataFeed': 'true' },
    });
    // What each row's payload must be in jsonb, as literal JSON text.
    const cases: Array<[Row['payload'], string | null]> = [
      [null, null],
      [true, 'true'],
      [-128, '-128'],
      [32767, '32767'],
      [-2147483648, '-2147483648'],
      [9223372036854775807n, '9223372036854775807'],
      [-9223372036854775808n, '-9223372036854775808'],
      [0.1, '0.1'],
      [1e21, '1e21'],
      [-2.5e-8, '-2.5e-8'],
      ['short', '"short"'],
      ['x'.repeat(100) + ' "quoted" \\ tab\t é 🦆', JSON.stringify('x'.repeat(100) + ' "quoted" \\ tab\t é 🦆')],
      [new Uint8Array([0, 1, 254, 255]), '"AAH+/w=="'],
      [{ zeta: 1, alpha: [1, null, 'two', { deep: false }], empty: {}, none: null }, '{"zeta": 1, "alpha": [1, null, "two", {"deep": false}], "empty": {}, "none": null}'],
      [[], '[]'],
      [[null, [null], { a: null }], '[null, [null], {"a": null}]'],
    ];
    await w.append(cases.map(([payload], i) => ({ id: BigInt(i), payload })));
    const mapping = buildMapping({ name: 'writer-variant', source: dir, target: 'writer_variant', key: ['id'] });
    const r = await openRunner(mapping, db().url);
    try {
      const preview = await r.runner.preview({ limit: 100 });
      await r.runner.run({ mode: 'initial' });
      const got = await pool.query<{ id: string; eq: boolean; text: string | null }>(
        `SELECT t.id::text AS id, t.payload IS NOT DISTINCT FROM e.want::jsonb AS eq, t.payload::text AS text
           FROM writer_variant t JOIN unnest($1::text[]) WITH ORDINALITY AS e(want, n) ON t.id = e.n - 1 ORDER BY t.id`,
        [cases.map(([, want]) => want)],
      );
      assert.equal(got.rows.length, cases.length);
      for (const row of got.rows) {
        assert.ok(row.eq, `row ${row.id}: got ${row.text}, want ${cases[Number(row.id)]?.[1]}`);
        const shown = preview.rows.find((p) => p.key.id === row.id)?.newRow?.payload ?? null;
        assert.equal(shown, row.text, `preview of row ${row.id}`);
      }

      // Change Data Feed: an update rewrites the variant (cdc files), the sync applies it.
      await w.update('id', [{ id: 3n, payload: { changed: [1.5, 'x'] } }]);
      const before = (await pool.query<{ p: string }>(`SELECT payload::text AS p FROM writer_variant WHERE id = 3`)).rows[0]?.p;
      const incPreview = await r.runner.preview({ limit: 10 });
      assert.equal(incPreview.totals.update, 1);
      const change = incPreview.rows.find((p) => p.key.id === '3')?.changes?.find((c) => c.column === 'payload');
      assert.deepEqual(change && { old: change.old, new: change.new }, { old: before, new: '{"changed": [1.5, "x"]}' });
      await r.runner.run({ mode: 'incremental' });
      const after = await pool.query<{ p: string }>(`SELECT payload::text AS p FROM writer_variant WHERE id = 3`);
      assert.equal(after.rows[0]?.p, '{"changed": [1.5, "x"]}');
    } finally {
      await r.close();
    }
  });

  it('a shredded variant data file (typed_value, written by hyparquet-writer) is refused naming the file, version and column; nothing is written', async () => {
    const dir = path.join(await tempDir('variant-shredded-'), 'events');
    await fs.mkdir(dir, { recursive: true });
    const w = await DeltaTableWriter.create(dir, {
      columns: [
        { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
        { name: 'payload', type: { kind: 'primitive', name: 'variant' } },
      ],
    });
    await w.append([{ id: 1n, payload: { a: 1 } }, { id: 2n, payload: { a: 2 } }]);
    // Replace the data file by the same rows with payload shredded (field a as INT32).
    const log = await fs.readFile(path.join(dir, '_delta_log', '00000000000000000001.json'), 'utf8');
    const add = log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { add?: { path: string } }).find((a) => a.add)?.add;
    assert.ok(add, 'version 1 adds a file');
    const hw = await loadHyparquetWriter();
    const buffer = hw.parquetWriteBuffer({
      columnData: [
        { name: 'id', data: [1n, 2n], type: 'INT64', nullable: false },
        { name: 'payload', data: [{ a: 1 }, { a: 2 }], type: 'VARIANT', shredding: { a: 'INT32' } },
      ],
    });
    await fs.writeFile(path.join(dir, decodeURIComponent(add.path)), new Uint8Array(buffer));

    const mapping = buildMapping({ name: 'shredded', source: dir, target: 'shredded_variant', key: ['id'] });
    const r = await openRunner(mapping, db().url);
    try {
      await assert.rejects(r.runner.run({ mode: 'initial' }), (e: unknown) => {
        assert.ok(e instanceof SyncError, String(e));
        assert.equal(e.kind, 'delta-file');
        assert.equal(e.column, 'payload');
        assert.equal(e.version, 1);
        assert.match(e.message, /shredded VARIANT \(it has a typed_value field\)/);
        assert.ok(e.message.includes(path.basename(decodeURIComponent(add.path))), e.message);
        return true;
      });
      const exists = await pool.query(`SELECT to_regclass('shredded_variant') AS t`);
      assert.equal(exists.rows[0]?.t, null);
    } finally {
      await r.close();
    }
  });
});
