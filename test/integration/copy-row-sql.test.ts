import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { openSource } from '../../src/sync/open/openSource';
import { previewColumns, rowSqlFor, toPreviewRow } from '../../src/views/RunnerPreviewSource';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * "Copy as SQL" in the Preview: the statement of each previewed row, run by hand against the
 * real target, does what applying the plan does. After running the copied statements of
 * every row, a new preview of the same versions finds nothing left to insert, update or delete.
 */

const t = (kind: WriterColumn['type']): WriterColumn['type'] => kind;
const COLS: WriterColumn[] = [
  { name: 'id', type: t({ kind: 'primitive', name: 'integer' }), nullable: false },
  { name: 'Name "quoted"', type: t({ kind: 'primitive', name: 'string' }) },
  { name: 'at', type: t({ kind: 'primitive', name: 'timestamp' }) },
  { name: 'day', type: t({ kind: 'primitive', name: 'date' }) },
  { name: 'raw', type: t({ kind: 'primitive', name: 'binary' }) },
  { name: 'amount', type: t({ kind: 'decimal', precision: 12, scale: 2 }) },
  { name: 'big', type: t({ kind: 'primitive', name: 'long' }) },
];

function row(id: number, name: string | null, extra = 0): Row {
  return {
    id,
    'Name "quoted"': name,
    at: 1664307886618568n + BigInt(id + extra),
    day: 19713 + id,
    raw: new Uint8Array([0x31, 0x5c, id % 256, extra]),
    amount: `${id}.5${extra}`,
    big: 9223372036854775807n - BigInt(id),
  };
}

describe('Copy as SQL: previewed rows as statements (real Delta table, real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('copy_row_sql');

  it('the copied INSERT ... ON CONFLICT, UPDATE and DELETE statements, run by hand, leave nothing for the plan to do', async () => {
    const dir = await tempDir('dns-copysql-');
    const w = await DeltaTableWriter.create(path.join(dir, 'rows'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    const v1: Row[] = [];
    for (let i = 1; i <= 40; i++) v1.push(row(i, `name ${i}`));
    await w.append(v1); // v1
    const m = buildMapping({ name: 'rows', source: w.path, target: { table: 'copy_rows', schema: 'public' }, key: ['id'] });
    const r = await openRunner(m, db().url);
    const source = await openSource(m.source);
    try {
      await r.runner.run({});
      // v2: updates with a quote, a backslash and a NULL, inserts, deletes.
      await w.merge('id', [row(3, "O'Brien \\ back", 1), row(4, null, 2), row(100, 'new \'one\'', 3), row(101, 'x', 4)], { deleteKeys: [7, 8] });
      const p = await r.runner.preview({ limit: 1000, offset: 0 });
      assert.deepEqual([p.totals.insert, p.totals.update, p.totals.delete], [2, 2, 2]);
      const columns = await previewColumns(m, source, p.toVersion, ['id']);
      const statements = p.rows.map((x) => rowSqlFor(m, columns, toPreviewRow(x, columns)));
      assert.ok(statements.some((s) => s.startsWith('INSERT INTO "public"."copy_rows"') && s.includes('ON CONFLICT ("id") DO UPDATE SET')));
      assert.ok(statements.some((s) => s.startsWith('UPDATE "public"."copy_rows" SET') && s.includes(`E'O''Brien \\\\ back'::text`)));
      assert.ok(statements.some((s) => s.startsWith('DELETE FROM "public"."copy_rows" WHERE "id" = E\'7\'::integer')));
      for (const sql of statements) await r.pool.query(sql);
      const again = await r.runner.preview({ limit: 1000, offset: 0, toVersion: p.toVersion });
      assert.deepEqual([again.totals.insert, again.totals.update, again.totals.delete], [0, 0, 0], 'the statements did what the plan would');
      assert.equal(again.totals.unchanged, 4);
      const back = await r.pool.query(`SELECT "Name ""quoted""" AS name, raw, amount::text, big::text FROM "public"."copy_rows" WHERE id = 3`);
      assert.equal(back.rows[0].name, "O'Brien \\ back");
      assert.deepEqual([...back.rows[0].raw], [0x31, 0x5c, 3, 1]);
    } finally {
      await r.close();
    }
  });
});
