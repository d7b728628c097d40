import * as assert from 'node:assert/strict';
import { double } from '../builders/deltaFields';
import { parseExpectedFileName, parsePrettyTable } from '../helpers/expectedTables';
import { canonicalCell, normalizeDecimal, parseIsoMicros } from '../helpers/rowMultiset';

describe('expected-table helpers', function () {
  it('reads versions and colon-less timestamps from CDF file names', function () {
    assert.deepEqual(parseExpectedFileName('cdf-table.cdf.from-v0.to-ts-2023-12-22T17-10-21.675.txt'), {
      kind: 'cdf',
      table: 'cdf-table',
      range: { startingVersion: 0, endingTimestamp: '2023-12-22T17:10:21.675Z' },
      file: 'cdf-table.cdf.from-v0.to-ts-2023-12-22T17-10-21.675.txt',
    });
    assert.deepEqual(parseExpectedFileName('checkpoint-cdf-table.cdf.from-ts-2024-01-06T15-44-59.570.txt')?.kind, 'cdf');
    const r = parseExpectedFileName('checkpoint-cdf-table.cdf.from-ts-2024-01-06T15-44-59.570.txt');
    assert.ok(r?.kind === 'cdf');
    assert.deepEqual(r.range, { startingTimestamp: '2024-01-06T15:44:59.570Z' });
    const s = parseExpectedFileName('cdf-table-simple.cdf.from-v1.to-v1.txt');
    assert.ok(s?.kind === 'cdf');
    assert.deepEqual(s.range, { startingVersion: 1, endingVersion: 1 });
  });

  it('classifies snapshot folders and column-subset text files', function () {
    assert.deepEqual(parseExpectedFileName('data-reader-map.snapshot.latest'), {
      kind: 'snapshot-parquet',
      table: 'data-reader-map',
      file: 'data-reader-map.snapshot.latest',
    });
    assert.deepEqual(parseExpectedFileName('type-widening.snapshot.latest.widened-decimals.txt'), {
      kind: 'snapshot-text',
      table: 'type-widening',
      subset: 'widened-decimals',
      file: 'type-widening.snapshot.latest.widened-decimals.txt',
    });
    assert.equal(parseExpectedFileName('README.md'), undefined);
  });

  it('parses a pretty-printed table with comments, borders and empty cells as null', function () {
    const t = parsePrettyTable(['# a comment', '+----+------+', '| id | name |', '+----+------+', '| 1  | Al   |', '| 2  |      |', '+----+------+'].join('\n'));
    assert.deepEqual(t, { comments: ['a comment'], columns: ['id', 'name'], rows: [['1', 'Al'], ['2', null]] });
    assert.throws(() => parsePrettyTable('| a |\n| 1 | 2 |'), /2 cells, header has 1/);
  });

  it('compares printed numbers by value: 100.0 is 100, 1.50 is 1.5, timestamps to the microsecond', function () {
    assert.equal(canonicalCell('100.0', double()), canonicalCell('100', double()));
    assert.equal(normalizeDecimal('001.500'), '1.5');
    assert.equal(normalizeDecimal('-0.00'), '0');
    assert.equal(parseIsoMicros('2024-09-09T12:34:56.123456'), 1725885296123456n);
    assert.equal(parseIsoMicros('1970-01-01T00:00:00.5Z'), 500000n);
  });
});
