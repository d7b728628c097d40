import assert from 'node:assert/strict';
import { applyDeletePolicy, markerTargetColumn } from '../../src/sync/plan/applyDeletePolicy';
import { CopyRowEncoder } from '../../src/sync/postgres/copyEncoder';
import { isLiveSql, renderCreateTableWithMarker } from '../../src/sync/postgres/softDeleteMarker';
import type { TargetColumn } from '../../src/sync/ports/targetTypes';
import { field, long, string } from '../builders/deltaFields';

const COLUMNS: TargetColumn[] = [
  { name: 'id', source: field('id', long(), { nullable: false }), pgType: 'bigint' },
  { name: 'name', source: field('name', string()), pgType: 'text' },
];

describe('soft-delete marker column', () => {
  it('a boolean marker is rendered NOT NULL DEFAULT false, before the primary key', () => {
    const sql = renderCreateTableWithMarker({ schema: 'public', name: 't' }, COLUMNS, ['id'], { column: 'is_deleted', kind: 'boolean' });
    const lines = sql.split('\n');
    const i = lines.indexOf('  "is_deleted" boolean NOT NULL DEFAULT false,');
    assert.ok(i > 0, sql);
    assert.match(lines[i + 1] ?? '', /^\s+PRIMARY KEY \("id"\)$/);
    assert.match(sql, /"name" text,/);
  });

  it('a timestamp marker is a nullable timestamptz; without a primary key it is the last line, without a comma', () => {
    const sql = renderCreateTableWithMarker({ name: 't' }, COLUMNS, ['id'], { column: 'deleted_at', kind: 'timestamp' }, { withoutPrimaryKey: true });
    const lines = sql.split('\n');
    assert.equal(lines[lines.length - 2], '  "deleted_at" timestamptz');
    assert.equal(lines[lines.length - 1], ');');
    assert.doesNotMatch(sql, /PRIMARY KEY/);
  });

  it('the marker column reads its value under the row key and COPY-encodes it as boolean / timestamptz', () => {
    const b = markerTargetColumn({ column: 'is_deleted', kind: 'boolean', rowKey: '\u0000k' });
    assert.equal(b.name, 'is_deleted');
    assert.equal(b.source.name, '\u0000k');
    const enc = new CopyRowEncoder([COLUMNS[0] as TargetColumn, b]);
    assert.equal(enc.encode({ id: 1n, '\u0000k': true }), '1\tt\n');
    const ts = markerTargetColumn({ column: 'deleted_at', kind: 'timestamp' });
    const enc2 = new CopyRowEncoder([COLUMNS[0] as TargetColumn, ts]);
    // 2023-11-14T22:13:20.123Z
    assert.match(enc2.encode({ id: 2n, deleted_at: 1_700_000_000_123_000n }), /^2\t2023-11-14 22:13:20\.123(000)?\+00(:00)?\n$/);
    assert.equal(enc2.encode({ id: 3n, deleted_at: null }), '3\t\\N\n');
  });

  it('live conditions: a boolean marker that is not true (NULL counts as live), a timestamp that is null', () => {
    assert.equal(isLiveSql('t', { column: 'd', kind: 'boolean' }), 't."d" IS NOT TRUE');
    assert.equal(isLiveSql('', { column: 'd', kind: 'timestamp' }), '"d" IS NULL');
  });

  it('applyDeletePolicy puts the marker under markerKey when given, leaving a Delta column of the marker\'s name alone', () => {
    const changes = { upserts: [{ id: 1n, is_deleted: 'delta value' }], deletes: [{ id: 2n }], deleteTimestamps: [5] };
    const p = applyDeletePolicy(changes, { mode: 'soft-delete', column: 'is_deleted', kind: 'timestamp' }, { markerKey: '\u0000m' });
    assert.deepEqual(p.upserts, [{ id: 1n, is_deleted: 'delta value', '\u0000m': null }]);
    assert.deepEqual(p.softDeletes, [{ id: 2n, '\u0000m': 5000n }]);
    const col = markerTargetColumn({ column: 'is_deleted', kind: 'timestamp', rowKey: '\u0000m' });
    assert.deepEqual({ column: col.name, pgType: col.pgType, rowKey: col.source.name }, { column: 'is_deleted', pgType: 'timestamptz', rowKey: '\u0000m' });
  });
});
