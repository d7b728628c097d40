import assert from 'node:assert/strict';
import { createPool } from '../../src/sync/postgres/createPool';
import { pageRows } from '../../src/views/targetTables';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { queryOnce } from '../helpers/pgQuery';

/** Show Rows: a paged, sorted query of the whole target table (not the first 100 rows as text). */
describe('Show Rows pages and sorts the target table (real server)', function () {
  this.timeout(60_000);
  const db = useTestDatabase('show_rows');

  before(async () => {
    await queryOnce(db().url, `CREATE TABLE items (id bigint PRIMARY KEY, amount numeric(12,2), seen timestamptz, note text)`);
    await queryOnce(db().url, `INSERT INTO items SELECT g, (g * 37 % 1000) + 0.5, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', CASE WHEN g % 10 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, 450) g`);
  });

  it('pages in key order with the total, every value as Postgres text in UTC', async () => {
    const pool = createPool(db().url, { max: 1 });
    try {
      const p = await pageRows(pool, 'public', 'items', { offset: 400, limit: 100 });
      assert.equal(p.total, 450);
      assert.deepEqual(p.columns, [{ name: 'id', type: 'bigint', key: true }, { name: 'amount', type: 'numeric(12,2)' }, { name: 'seen', type: 'timestamp with time zone' }, { name: 'note', type: 'text' }]);
      assert.equal(p.rows.length, 50);
      assert.deepEqual(p.rows[0], ['401', '837.50', '2024-01-17 17:00:00+00', 'n401']);
      assert.deepEqual(p.rows[9], ['410', '170.50', '2024-01-18 02:00:00+00', null]);
    } finally {
      await pool.end();
    }
  });

  it('sorts the whole table by a column, numbers as numbers and NULLs last, the key breaking ties', async () => {
    const pool = createPool(db().url, { max: 1 });
    try {
      const asc = await pageRows(pool, 'public', 'items', { offset: 0, limit: 1000, sort: { column: 'amount', dir: 'asc' } });
      const amounts = asc.rows.map((r) => Number(r[1]));
      assert.deepEqual(amounts, [...amounts].sort((a, b) => a - b));
      const desc = await pageRows(pool, 'public', 'items', { offset: 0, limit: 5, sort: { column: 'note', dir: 'desc' } });
      assert.ok(desc.rows.every((r) => r[3] !== null));
      const nullsLast = await pageRows(pool, 'public', 'items', { offset: 440, limit: 10, sort: { column: 'note', dir: 'asc' } });
      assert.deepEqual(nullsLast.rows.map((r) => r[3]), Array(10).fill(null));
      assert.deepEqual(nullsLast.rows.map((r) => r[0]), ['360', '370', '380', '390', '400', '410', '420', '430', '440', '450']);
    } finally {
      await pool.end();
    }
  });

  it('refuses to sort by a column the table does not have (the name is never put into SQL)', async () => {
    const pool = createPool(db().url, { max: 1 });
    try {
      await expectSyncError(pageRows(pool, 'public', 'items', { offset: 0, limit: 5, sort: { column: 'id; DROP TABLE items', dir: 'asc' } }), { kind: 'usage', message: /no column "id; DROP TABLE items"/ });
    } finally {
      await pool.end();
    }
  });
});
