import assert from 'node:assert/strict';
import { rowStatementSql } from '../../src/sync/postgres/rowStatementSql';
import { quoteLiteral } from '../../src/sync/postgres/quoteIdent';

const T = { schema: 'sales', name: 'Order Lines' };
const COLS = [
  { name: 'id', pgType: 'bigint', isKey: true },
  { name: 'note', pgType: 'text', isKey: false },
  { name: 'at', pgType: 'timestamptz', isKey: false },
];

describe('Copy as SQL statements', () => {
  it('writes an insert as the upsert the sync runs, every identifier quoted and every value cast to its column type', () => {
    assert.equal(
      rowStatementSql(T, COLS, { op: 'insert', cells: ['9223372036854775807', "it's", null] }),
      `INSERT INTO "sales"."Order Lines" ("id", "note", "at") VALUES (E'9223372036854775807'::bigint, E'it''s'::text, NULL) ON CONFLICT ("id") DO UPDATE SET "note" = EXCLUDED."note", "at" = EXCLUDED."at";`,
    );
  });

  it('sets only the changed columns of an update and finds the row by key', () => {
    assert.equal(
      rowStatementSql(T, COLS, { op: 'update', cells: ['5', null, '2022-09-27 19:44:46.5+00'], changed: ['at'] }),
      `UPDATE "sales"."Order Lines" SET "at" = E'2022-09-27 19:44:46.5+00'::timestamptz WHERE "id" = E'5'::bigint;`,
    );
  });

  it('deletes by key, matching a NULL key with IS NULL', () => {
    assert.equal(rowStatementSql(T, COLS, { op: 'delete', cells: [null, 'x', null] }), `DELETE FROM "sales"."Order Lines" WHERE "id" IS NULL;`);
  });

  it('does nothing on conflict when every column is part of the key, and selects an unchanged row', () => {
    const keys = [{ name: 'a', pgType: 'integer', isKey: true }, { name: 'b', pgType: 'text', isKey: true }];
    assert.equal(rowStatementSql({ name: 'pairs' }, keys, { op: 'insert', cells: ['1', 'x'] }), `INSERT INTO "pairs" ("a", "b") VALUES (E'1'::integer, E'x'::text) ON CONFLICT ("a", "b") DO NOTHING;`);
    assert.match(rowStatementSql({ name: 'pairs' }, keys, { op: 'unchanged', cells: ['1', 'x'] }), /^-- the target already holds this row.*\nSELECT \* FROM "pairs" WHERE "a" = E'1'::integer AND "b" = E'x'::text;$/);
  });

  it('doubles backslashes and quotes in literals (E\'\' form), so bytea text survives', () => {
    assert.equal(quoteLiteral('\\x315c'), `E'\\\\x315c'`);
    assert.equal(quoteLiteral("a'b"), `E'a''b'`);
  });
});
