import assert from 'node:assert/strict';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import { DEFAULT_FILLFACTOR, renderCreateTable } from '../../src/sync/postgres/renderCreateTable';
import type { TargetColumn } from '../../src/sync/ports/targetTypes';
import { field, long, string } from '../builders/deltaFields';
import { buildMapping, mappingJson } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';

const COLUMNS: TargetColumn[] = [
  { name: 'id', source: field('id', long(), { nullable: false }), pgType: 'bigint' },
  { name: 'note', source: field('note', string()), pgType: 'text' },
];

describe('fillfactor: renderCreateTable', () => {
  it('the default fillfactor of created tables is 85', () => {
    assert.equal(DEFAULT_FILLFACTOR, 85);
  });

  it('writes WITH (fillfactor = N) after the closing parenthesis, before the semicolon', () => {
    const sql = renderCreateTable({ schema: 'public', name: 't' }, COLUMNS, ['id'], { fillfactor: 70 });
    const lines = sql.split('\n');
    assert.equal(lines[lines.length - 1], ') WITH (fillfactor = 70);');
    assert.match(lines[lines.length - 2] ?? '', /^\s+PRIMARY KEY \("id"\)$/);
  });

  it('also writes it for an UNLOGGED table without a primary key, and for the lower bound 10', () => {
    const sql = renderCreateTable({ name: 't' }, COLUMNS, ['id'], { fillfactor: 10, unlogged: true, withoutPrimaryKey: true });
    assert.match(sql, /^CREATE UNLOGGED TABLE "t" \(/);
    assert.match(sql, /\n  "note" text\n\) WITH \(fillfactor = 10\);$/);
  });

  it('omits the WITH clause for 100 (Postgres\' own default) and when no fillfactor is given', () => {
    const full = renderCreateTable({ name: 't' }, COLUMNS, ['id'], { fillfactor: 100 });
    const none = renderCreateTable({ name: 't' }, COLUMNS, ['id']);
    assert.doesNotMatch(full, /WITH|fillfactor/);
    assert.equal(full, none);
    assert.match(none, /\n\);$/);
  });

  it('refuses fillfactors outside 10..100 and non-integers, naming the value', () => {
    for (const ff of [9, 101, 0, -5, 85.5, Number.NaN]) {
      assert.throws(() => renderCreateTable({ name: 't' }, COLUMNS, ['id'], { fillfactor: ff }), new RegExp(`fillfactor must be an integer from 10 to 100, not ${ff}`), String(ff));
    }
  });
});

describe('fillfactor: mapping initialLoad.fillfactor', () => {
  it('is optional: absent, the parsed mapping has no fillfactor (the load decides)', () => {
    assert.equal(buildMapping({ initialLoad: { mode: 'swap' } }).initialLoad.fillfactor, undefined);
  });

  it('accepts integers from 10 to 100 with either load mode', () => {
    for (const ff of [10, 50, 85, 100]) {
      assert.deepEqual(buildMapping({ initialLoad: { fillfactor: ff } }).initialLoad, { mode: 'swap', onSwapBlocked: 'fail', copyStreams: 1, fillfactor: ff });
    }
    assert.deepEqual(buildMapping({ initialLoad: { mode: 'merge', fillfactor: 70 } }).initialLoad, { mode: 'merge', onSwapBlocked: 'fail', copyStreams: 1, fillfactor: 70 });
  });

  it('refuses 5, 101, 85.5 and "85" with an error naming initialLoad.fillfactor', () => {
    const cases: Array<[unknown, RegExp]> = [
      [5, />=\s*10/],
      [101, /<=\s*100/],
      [85.5, /int/],
      ['85', /number/],
    ];
    for (const [ff, why] of cases) {
      const e = expectSyncError(() => parseMapping(mappingJson({ initialLoad: { fillfactor: ff } })), {
        kind: 'mapping',
        setting: 'initialLoad.fillfactor',
        message: /  - initialLoad\.fillfactor: /,
      });
      assert.match(e.message, why, e.message);
    }
  });
});
