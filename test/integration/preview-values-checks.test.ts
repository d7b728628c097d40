import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { PreviewWarning } from '../../src/sync/ports/reports';
import { binary, boolean, date, decimal, double, long, string, timestamp, timestampNtz } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { includeFor, toPreviewRow } from '../../src/views/RunnerPreviewSource';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * Issue 13, a preview you can trust: the initial-load preview shows values as the target
 * will print them (not epoch microseconds, day numbers or raw bytes), and the pre-apply
 * checks find null keys, duplicate keys and values that do not fit the target column.
 */

const ALL = ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] as const;

async function targetText(url: string, sql: string): Promise<Array<Record<string, string | null>>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`SET TimeZone TO 'UTC'`);
    return (await c.query(sql)).rows as Array<Record<string, string | null>>;
  } finally {
    await c.end();
  }
}

describe('preview values and pre-apply checks (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('preview_checks');
  let dir: string;

  before(async () => {
    dir = await tempDir();
  });

  it('an initial-load preview into a missing table shows each value as the loaded target prints it', async () => {
    const cols: WriterColumn[] = [
      { name: 'id', type: long(), nullable: false },
      { name: 'ts', type: timestamp() },
      { name: 'ntz', type: timestampNtz() },
      { name: 'd', type: date() },
      { name: 'b', type: binary() },
      { name: 'amount', type: decimal(10, 2) },
      { name: 'score', type: double() },
      { name: 'flag', type: boolean() },
    ];
    const w = await DeltaTableWriter.create(path.join(dir, 'values'), { columns: cols });
    const rows: Row[] = [
      { id: 1n, ts: 1664307886618568n, ntz: 1664307886500000n, d: 19713, b: new Uint8Array([0x31, 0xff]), amount: '12.50', score: 0.1, flag: true },
      { id: 2n, ts: 0n, ntz: -1n, d: 0, b: new Uint8Array([]), amount: '-0.01', score: 1e20, flag: false },
      { id: 3n, ts: null, ntz: null, d: -719528, b: null, amount: null, score: 1.5e-7, flag: null },
    ];
    await w.append(rows);
    const m = buildMapping({ name: 'values', source: w.path, target: 'preview_values', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      const pv = await r.runner.preview({ limit: 100, include: [...ALL] });
      assert.equal(pv.targetMissing, true);
      await r.runner.run({ mode: 'initial' });
      const names = cols.map((c) => c.name);
      const loaded = await targetText(db().url, `SELECT ${names.map((n) => `${n}::text AS ${n}`).join(', ')} FROM preview_values ORDER BY id`);
      const shown = pv.rows.map((x) => x.newRow).sort((a, b) => Number(a?.id) - Number(b?.id));
      assert.deepEqual(shown, loaded);
    } finally {
      await r.close();
    }
  });

  it('checks of an initial load find null and duplicate keys, with counts and the first rows', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'dirty_keys'), { columns: [{ name: 'id', type: long() }, { name: 'name', type: string() }] });
    await w.append([
      { id: null, name: 'no key' },
      { id: 1n, name: 'a' },
      { id: 2n, name: 'b' },
      { id: 1n, name: 'a again' },
      { id: 1n, name: 'a thrice' },
      { id: null, name: 'no key either' },
    ]);
    const m = buildMapping({ name: 'dirty-keys', source: w.path, target: 'dirty_keys', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      const pv = await r.runner.preview({ limit: 2, checks: true });
      const by = (c: PreviewWarning['check']): PreviewWarning | undefined => pv.warnings?.find((x) => x.check === c);
      assert.equal(by('null-key')?.count, 2);
      assert.equal(by('null-key')?.column, 'id');
      assert.deepEqual(by('null-key')?.samples, [{ id: null }, { id: null }]);
      assert.equal(by('duplicate-key')?.count, 2);
      assert.deepEqual(by('duplicate-key')?.samples, [{ id: '1' }, { id: '1' }]);
      assert.deepEqual(pv.warnings?.map((x) => x.check), ['null-key', 'duplicate-key']);
      // Without checks (later pages) nothing is scanned.
      const page2 = await r.runner.preview({ limit: 2, offset: 2 });
      assert.equal(page2.warnings, undefined);
    } finally {
      await r.close();
    }
  });

  it('checks of an initial load over an existing target find null keys instead of failing in staging', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'null_keys_existing'), { columns: [{ name: 'id', type: long() }, { name: 'name', type: string() }] });
    await w.append([{ id: 1n, name: 'a' }, { id: null, name: 'no key' }]);
    await targetText(db().url, 'CREATE TABLE null_keys_existing (id bigint PRIMARY KEY, name text)');
    const m = buildMapping({ name: 'null-keys-existing', source: w.path, target: 'null_keys_existing', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      const pv = await r.runner.preview({ limit: 10, checks: true });
      assert.equal(pv.targetMissing, false);
      assert.deepEqual(pv.warnings?.map((x) => [x.check, x.count]), [['null-key', 1]]);
    } finally {
      await r.close();
    }
  });

  it('checks against an existing target use its column types: too long for varchar(n), numeric out of range', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'fit'), { columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }, { name: 'amount', type: decimal(10, 2) }] });
    await w.append([
      { id: 1n, name: 'short', amount: '12.34' },
      { id: 2n, name: 'much too long', amount: '123.45' },
      { id: 3n, name: 'ok', amount: '-99999.00' },
    ]);
    await targetText(db().url, 'CREATE TABLE fit_target (id bigint PRIMARY KEY, name varchar(5), amount numeric(4,2))');
    const m = buildMapping({ name: 'fit', source: w.path, target: 'fit_target', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      const pv = await r.runner.preview({ limit: 10, checks: true });
      assert.equal(pv.targetMissing, false);
      const tooLong = pv.warnings?.find((x) => x.check === 'too-long');
      assert.equal(tooLong?.column, 'name');
      assert.equal(tooLong?.count, 1);
      assert.deepEqual(tooLong?.samples, [{ id: '2', name: 'much too long' }]);
      assert.match(tooLong?.message ?? '', /character varying\(5\)/);
      const range = pv.warnings?.find((x) => x.check === 'numeric-range');
      assert.equal(range?.count, 2);
      assert.deepEqual(range?.samples.map((s) => s.amount), ['123.45', '-99999.00']);
    } finally {
      await r.close();
    }
  });

  it('search lists only rows whose key or values contain the text, case-insensitive, whether the target exists or not', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'search'), { columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }] });
    await w.append([{ id: 1n, name: 'Alice' }, { id: 2n, name: 'bob' }, { id: 3n, name: 'ALICIA 100%' }, { id: 4n, name: 'carol' }]);
    const m = buildMapping({ name: 'search', source: w.path, target: 'search_target', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      const missing = await r.runner.preview({ limit: 10, search: 'alic' });
      assert.equal(missing.targetMissing, true);
      assert.equal(missing.matching, 2);
      assert.deepEqual(missing.rows.map((x) => x.key.id), ['1', '3']);
      assert.equal(missing.totals.insert, 4);
      await targetText(db().url, 'CREATE TABLE search_target (id bigint PRIMARY KEY, name text)');
      await targetText(db().url, `INSERT INTO search_target VALUES (4, 'carol'), (2, 'Bobby')`);
      const existing = await r.runner.preview({ limit: 10, search: 'BOB' });
      assert.equal(existing.targetMissing, false);
      assert.equal(existing.matching, 1);
      assert.deepEqual(existing.rows.map((x) => [x.action, x.key.id]), [['update', '2']]);
      // Unchanged rows are listable on their own tab: key known, the other cells not shown.
      const same = await r.runner.preview({ limit: 10, include: includeFor('unchanged') });
      const cols = [{ name: 'id', sourceType: 'long', targetType: 'bigint', isKey: true }, { name: 'name', sourceType: 'string', targetType: 'text', isKey: false }];
      assert.deepEqual(same.rows.map((x) => toPreviewRow(x, cols)), [{ op: 'unchanged', cells: ['4', null], before: null, changed: [] }]);
      // Column names are not searched; LIKE wildcards in the search text are plain characters.
      assert.equal((await r.runner.preview({ limit: 10, search: 'name' })).matching, 0);
      const percent = await r.runner.preview({ limit: 10, search: '0%' });
      assert.deepEqual(percent.rows.map((x) => x.key.id), ['3']);
    } finally {
      await r.close();
    }
  });
});
