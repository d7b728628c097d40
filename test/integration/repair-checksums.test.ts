import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { openSource } from '../../src/sync/open/openSource';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { createPool } from '../../src/sync/postgres/createPool';
import { qualified, quoteIdent } from '../../src/sync/postgres/quoteIdent';
import { addHash, bucketAt, RowHasher } from '../../src/sync/postgres/rangeChecksums';
import { resolveColumns } from '../../src/sync/mapping/resolveColumns';
import { array, binary, boolean, byte, date, decimal, double, float, integer, long, map, short, string, struct, field, timestamp, timestampNtz } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { fieldsOf } from '../builders/deltaFields';
import { copyRows } from '../../src/sync/postgres/copyRows';
import { defaultTargetColumns, renderCreateTable } from '../../src/sync/postgres/renderCreateTable';
import type { Target } from '../../src/sync/ports/Target';
import type { TargetColumn } from '../../src/sync/ports/targetTypes';
import { useTestDatabase } from '../helpers/postgres';
import { buildCli, openRunner, runCli, tempDir } from '../helpers/syncHarness';
import { SyncError } from '../../src/sync/errors';
import { RepairPreviewSource } from '../../src/views/RepairPreviewSource';

/**
 * Issue 15, point 1: verify and repair by checksums. The target's rows are hashed by
 * Postgres and the snapshot's by the engine, compared by key buckets, narrowed into the
 * buckets that differ; the repair is applied through the sync's apply path.
 */

function micros(iso: string, extra = 0n): bigint {
  return BigInt(Date.parse(iso)) * 1000n + extra;
}
function days(isoDate: string): number {
  return Date.parse(`${isoDate}T00:00:00Z`) / 86_400_000;
}

const TYPE_COLUMNS: WriterColumn[] = [
  { name: 'id', type: integer(), nullable: false },
  { name: 's', type: string() },
  { name: 'l', type: long() },
  { name: 'i', type: integer() },
  { name: 'sh', type: short() },
  { name: 'b', type: byte() },
  { name: 'd', type: double() },
  { name: 'f', type: float() },
  { name: 'n', type: decimal(38, 36) },
  { name: 'm', type: decimal(10, 2) },
  { name: 'bo', type: boolean() },
  { name: 'dt', type: date() },
  { name: 'ts', type: timestamp() },
  { name: 'tn', type: timestampNtz() },
  { name: 'bin', type: binary() },
  { name: 'st', type: struct(field('id', long()), field('amount', decimal(38, 10)), field('tags', array(string())), field('ok', boolean())) },
  { name: 'ar', type: array(long()) },
  { name: 'mp', type: map(string(), long()) },
];

const TYPE_ROWS: Row[] = [
  {
    id: 1, s: 'tab\there\nnew line\r\\back\\slash \\N not null ünï 😀', l: 9223372036854775807n, i: 2147483647, sh: 32767, b: 127,
    d: 1.7976931348623157e308, f: 3.4028234663852886e38, n: '1.234567890123456789012345678901234567', m: '-12345678.90',
    bo: true, dt: days('2024-02-29'), ts: micros('2024-02-29T23:59:59.123Z', 456n), tn: micros('1999-12-31T23:59:59Z', 999_999n),
    bin: new Uint8Array([0, 1, 92, 9, 10, 255]),
    st: { id: -9223372036854775808n, amount: '12345678901234567890123456.0123456789', tags: ['a"b', 'c\\d', null], ok: false },
    ar: [9007199254740993n, -1n, null],
    mp: new Map<string | null, bigint | null>([['k\tey', 18446744073709551n], ['z', null]]) as Row['mp'],
  },
  {
    id: 2, s: '', l: -1n, i: -2147483648, sh: -32768, b: -128, d: 0.1, f: 0.1, n: '0.000000000000000000000000000000000001', m: '0.50',
    bo: false, dt: days('1970-01-01'), ts: micros('2000-01-01T00:00:00Z'), tn: micros('2000-01-01T00:00:00Z', 500_000n),
    bin: new Uint8Array([]), st: { id: 0n, amount: '0.0000000000', tags: [], ok: true }, ar: [], mp: new Map() as Row['mp'],
  },
  {
    id: 3, s: null, l: null, i: null, sh: null, b: null, d: null, f: null, n: null, m: null, bo: null, dt: null, ts: null, tn: null,
    bin: null, st: null, ar: null, mp: null,
  },
  {
    id: 4, s: 'N', l: 0n, i: 0, sh: 0, b: 0, d: -0.000012345, f: 1.5e-7, n: '-0.5', m: '99999999.99', bo: true, dt: days('0001-01-01'),
    ts: micros('1900-06-30T12:34:56.000001Z'), tn: micros('2262-04-11T23:47:16.854775Z'), bin: new Uint8Array([0x5c, 0x78]),
    st: { id: 1n, amount: null, tags: null, ok: null }, ar: [null], mp: new Map([['', 1n]]) as Row['mp'],
  },
];

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
  { name: 'amount', type: decimal(12, 2) },
  { name: 'at', type: timestamp() },
];

const row = (id: number, tag = ''): Row => ({ id: BigInt(id), name: `name ${id}${tag}`, amount: `${id}.${String(id % 100).padStart(2, '0')}`, at: micros('2024-01-01T00:00:00Z', BigInt(id) * 1_000_001n) });

/** Columns (each hashed with the key) whose bucket checksums differ between Postgres and the engine. */
async function differingColumns(target: Target, columns: readonly TargetColumn[], rows: readonly Row[]): Promise<string[]> {
  const id = columns.find((c) => c.name === 'id');
  assert.ok(id);
  const differing: string[] = [];
  const text = (m: Map<number, { rows: number; sum: bigint }>): string => JSON.stringify([...m].sort((a, b) => a[0] - b[0]).map(([b, x]) => [b, x.rows, x.sum.toString()]));
  for (const c of columns.filter((x) => x.name !== 'id')) {
    const cols = [id, c];
    const hasher = new RowHasher(cols, ['id']);
    const mine = new Map<number, { rows: number; sum: bigint }>();
    for (const x of rows) {
      const b = bucketAt(hasher.keyHash(hasher.keyText(x)), 2);
      const s = mine.get(b) ?? { rows: 0, sum: 0n };
      mine.set(b, { rows: s.rows + 1, sum: addHash(s.sum, hasher.rowHash(x)) });
    }
    const theirs = await target.bucketChecksums({ columns: cols, key: ['id'], bits: 2 });
    if (text(theirs.sums) !== text(mine)) differing.push(`${c.name} (${c.pgType})`);
  }
  return differing;
}

describe('verify and repair by checksums (real server)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('repair');
  let dir: string;

  before(async () => {
    dir = await tempDir();
  });

  async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const pool = createPool(db().url, { max: 1 });
    try {
      return (await pool.query(sql, params)).rows as T[];
    } finally {
      await pool.end();
    }
  }

  it('every supported type hashes in Postgres exactly as the engine hashes the Delta value (column by column)', async () => {
    // The writer writes primitive and decimal columns; nested ones are covered by the COPY test below.
    const flat = TYPE_COLUMNS.filter((c) => c.type.kind === 'primitive' || c.type.kind === 'decimal');
    const w = await DeltaTableWriter.create(path.join(dir, 'types'), { columns: flat, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(TYPE_ROWS.map((x) => Object.fromEntries(flat.map((c) => [c.name, x[c.name] ?? null]))));
    const m = buildMapping({ name: 'repair-types', source: w.path, target: 'repair_types', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run();
      const source = await openSource(m.source);
      const snap = await source.snapshot();
      const columns = resolveColumns(m, snap.schema);
      const rows: Row[] = [];
      for await (const b of snap.rows()) rows.push(...b);
      assert.deepEqual(await differingColumns(mappingTarget(r.pool, m.target), columns, rows), [], 'columns whose Postgres text differs from the engine encoding');
      const report = await r.runner.repair({ dryRun: true });
      assert.deepEqual(report.planned, { insert: 0, update: 0, delete: 0 });
      assert.equal(report.equal, true);
      assert.equal(report.sourceRows, TYPE_ROWS.length);
      assert.equal(report.targetRows, TYPE_ROWS.length);
    } finally {
      await r.close();
    }
  });

  it('nested values (struct, array, map as jsonb) COPYed by the encoder hash in Postgres as the engine hashes them', async () => {
    // Nested columns only: flat values are covered above as the Delta reader returns them
    // (decimals at their full scale, floats as read from float32).
    const columns = defaultTargetColumns(fieldsOf(TYPE_COLUMNS.filter((c) => c.name === 'id' || !(c.type.kind === 'primitive' || c.type.kind === 'decimal'))));
    const pool = createPool(db().url, { max: 1 });
    try {
      await pool.query(renderCreateTable({ name: 'repair_nested' }, columns, ['id']));
      const c = await pool.connect();
      try {
        await copyRows(c, { name: 'repair_nested' }, columns, [TYPE_ROWS]);
      } finally {
        c.release();
      }
      const m = buildMapping({ name: 'repair-nested', target: 'repair_nested', key: ['id'] });
      assert.deepEqual(await differingColumns(mappingTarget(pool, m.target), columns, TYPE_ROWS), [], 'columns whose Postgres text differs from the engine encoding');
    } finally {
      await pool.end();
    }
  });

  it('a target damaged in several ways (deleted, changed, added rows, a whole range missing) is repaired to the snapshot; a second repair changes nothing', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'damaged'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(Array.from({ length: 3000 }, (_, i) => row(i + 1)));
    await w.update('id', [row(5, ' v2'), row(6, ' v2')]);
    const m = buildMapping({ name: 'repair-damaged', source: w.path, target: 'repair_damaged', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run();
      const before = await query<{ v: string }>(`SELECT md5(string_agg(t::text, '|' ORDER BY id)) AS v FROM repair_damaged t`);
      // Damage: 7 rows deleted, a range of 400 deleted, 5 rows changed (one only in a NULL), 3 rows added.
      await query(`DELETE FROM repair_damaged WHERE id IN (10, 20, 30, 40, 50, 60, 70)`);
      await query(`DELETE FROM repair_damaged WHERE id BETWEEN 1001 AND 1400`);
      await query(`UPDATE repair_damaged SET name = name || '!' WHERE id IN (100, 200)`);
      await query(`UPDATE repair_damaged SET amount = amount + 0.01 WHERE id = 300`);
      await query(`UPDATE repair_damaged SET at = at + interval '1 microsecond' WHERE id = 400`);
      await query(`UPDATE repair_damaged SET name = NULL WHERE id = 5`);
      await query(`INSERT INTO repair_damaged (id, name, amount, at) VALUES (5001, 'extra', 1, now()), (5002, NULL, NULL, NULL), (-1, 'neg', 2, now())`);

      const dry = await r.runner.repair({ dryRun: true, limit: 1000 });
      assert.deepEqual(dry.planned, { insert: 407, update: 5, delete: 3 });
      assert.equal(dry.equal, false);
      assert.ok(dry.preview);
      assert.equal(dry.preview.totals.insert, 407);
      assert.equal(dry.preview.totals.update, 5);
      assert.equal(dry.preview.totals.delete, 3);
      const upd = dry.preview.rows.find((x) => x.action === 'update' && x.key.id === '5');
      assert.deepEqual(upd?.changes, [{ column: 'name', old: null, new: 'name 5 v2' }]);
      // Only the differing buckets' rows were read back, not the table.
      assert.ok(dry.rowsReadBack < 3000, `read back ${dry.rowsReadBack} rows`);

      const fixed = await r.runner.repair();
      assert.equal(fixed.applied, true);
      assert.equal(fixed.equal, true);
      assert.deepEqual(fixed.result, { inserted: 407, updated: 5, deleted: 3, unchanged: 0 });
      const after = await query<{ v: string }>(`SELECT md5(string_agg(t::text, '|' ORDER BY id)) AS v FROM repair_damaged t`);
      assert.equal(after[0]?.v, before[0]?.v);
      const cp = await query<{ version: string }>(`SELECT version::text FROM delta_neon_sync.checkpoints WHERE pipeline = 'repair-damaged'`);
      assert.equal(cp[0]?.version, '2');

      const again = await r.runner.repair();
      assert.deepEqual(again.planned, { insert: 0, update: 0, delete: 0 });
      assert.deepEqual(again.result, { inserted: 0, updated: 0, deleted: 0, unchanged: 0 });
      assert.equal(again.rowsReadBack, 0);
      assert.equal(again.equal, true);
    } finally {
      await r.close();
    }
  });

  it('the snapshot is hashed and its differing rows read on the worker thread, applied in parts of partRows; the run is a "repair"; the calling thread gives the same', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'parts'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(Array.from({ length: 600 }, (_, i) => row(i + 1)));
    const m = buildMapping({ name: 'repair-parts', source: w.path, target: 'repair_parts', key: ['id'] });
    const r = await openRunner(m, db().url);
    const saved = process.env.DELTA_NEON_SYNC_READ_THREAD;
    try {
      await r.runner.run();
      const digest = async (): Promise<string | undefined> => (await query<{ v: string }>(`SELECT md5(string_agg(t::text, '|' ORDER BY id)) AS v FROM repair_parts t`))[0]?.v;
      const before = await digest();
      const damage = async (): Promise<void> => {
        await query(`DELETE FROM repair_parts WHERE id BETWEEN 101 AND 140`);
        await query(`UPDATE repair_parts SET name = name || '~' WHERE id BETWEEN 201 AND 230`);
        await query(`INSERT INTO repair_parts (id, name) SELECT 1000 + g, 'stray' FROM generate_series(1, 5) g`);
      };
      for (const thread of ['worker', 'main'] as const) {
        if (thread === 'main') process.env.DELTA_NEON_SYNC_READ_THREAD = 'main';
        else delete process.env.DELTA_NEON_SYNC_READ_THREAD;
        await damage();
        const modes: string[] = [];
        const fixed = await r.runner.repair({ partRows: 16, onEvent: (e) => { if (e.type === 'run-started') modes.push(e.mode); } });
        assert.equal(fixed.readThread, thread);
        assert.deepEqual(fixed.planned, { insert: 40, update: 30, delete: 5 });
        assert.deepEqual(fixed.result, { inserted: 40, updated: 30, deleted: 5, unchanged: 0 });
        // 70 rows of the snapshot at most 16 a part.
        assert.equal(fixed.parts, 5);
        assert.equal(fixed.equal, true);
        assert.deepEqual(modes, ['repair']);
        assert.equal(await digest(), before);
      }
      const log = await query<{ mode: string; n: number }>(`SELECT mode, count(*)::int AS n FROM delta_neon_sync.runs WHERE pipeline = 'repair-parts' AND mode = 'repair' GROUP BY mode`);
      assert.deepEqual(log, [{ mode: 'repair', n: 2 }]);
    } finally {
      if (saved === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
      else process.env.DELTA_NEON_SYNC_READ_THREAD = saved;
      await r.close();
    }
  });

  it('Verify & Repair in the Preview panel: the dry run as a preview source (mode repair, the counts, pages by action and search); Apply gets the compared version', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'panel'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(Array.from({ length: 200 }, (_, i) => row(i + 1)));
    const m = buildMapping({ name: 'repair-panel', source: w.path, target: 'repair_panel', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run();
      await query(`DELETE FROM repair_panel WHERE id IN (11, 12, 13)`);
      await query(`UPDATE repair_panel SET name = 'broken' WHERE id IN (21, 22)`);
      await query(`INSERT INTO repair_panel (id, name) VALUES (900, 'stray')`);
      const dry = await r.runner.repair({ dryRun: true, limit: 1000 });
      const columns = ['id', 'name', 'amount', 'at'].map((name) => ({ name, sourceType: 'x', targetType: 'x', isKey: name === 'id' }));
      const applied: number[] = [];
      const src = new RepairPreviewSource(m, dry, columns, async (x) => { applied.push(x.version); });
      assert.equal(src.summary.mode, 'repair');
      assert.deepEqual([src.summary.inserts, src.summary.updates, src.summary.deletes, src.summary.toVersion], [3, 2, 1, dry.version]);
      const all = await src.page('all', 0, 100);
      assert.equal(all.total, 6);
      const upd = await src.page('update', 0, 100);
      assert.deepEqual(upd.rows.map((x) => [x.cells[0], x.before?.[1], x.cells[1]]).sort(), [['21', 'broken', 'name 21'], ['22', 'broken', 'name 22']]);
      const del = await src.page('delete', 0, 100);
      assert.deepEqual(del.rows.map((x) => [x.op, x.cells[0], x.cells[1]]), [['delete', '900', 'stray']]);
      const found = await src.page('all', 0, 100, 'NAME 12');
      assert.deepEqual(found.rows.map((x) => [x.op, x.cells[0]]), [['insert', '12']]);
      assert.deepEqual((await src.page('insert', 1, 1)).rows.length, 1);
      await src.apply();
      assert.deepEqual(applied, [dry.version]);
    } finally {
      await r.close();
    }
  });

  it('hostile identifiers: reserved words and mixed case for schema and table, quotes and semicolons in column names', async () => {
    const cols: WriterColumn[] = [
      { name: 'Select', type: long(), nullable: false },
      { name: 'we"ird col', type: string() },
      { name: 'x;DROP TABLE y', type: integer() },
    ];
    const w = await DeltaTableWriter.create(path.join(dir, 'hostile'), { columns: cols, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(Array.from({ length: 200 }, (_, i) => ({ Select: BigInt(i), 'we"ird col': `v'${i}"`, 'x;DROP TABLE y': i })));
    const m = buildMapping({ name: 'repair-hostile', source: w.path, target: { schema: 'Group', table: 'Order$T' }, key: ['Select'] });
    await query(`CREATE SCHEMA ${quoteIdent('Group')}`);
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run();
      const t = qualified('Group', 'Order$T');
      await query(`DELETE FROM ${t} WHERE ${quoteIdent('Select')} < 5`);
      await query(`UPDATE ${t} SET ${quoteIdent('we"ird col')} = 'x' WHERE ${quoteIdent('Select')} = 50`);
      const fixed = await r.runner.repair();
      assert.deepEqual(fixed.planned, { insert: 5, update: 1, delete: 0 });
      assert.equal(fixed.equal, true);
      const n = await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`);
      assert.equal(n[0]?.n, 200);
    } finally {
      await r.close();
    }
  });

  async function vacuumedTable(name: string): Promise<{ w: DeltaTableWriter }> {
    const w = await DeltaTableWriter.create(path.join(dir, name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(Array.from({ length: 500 }, (_, i) => row(i + 1))); // v1
    return { w };
  }

  /** After the initial load at v1: an update (v2), a delete (v3) and an append (v4), then VACUUM removes the files their Change Data Feed needs. */
  async function changeAndVacuum(w: DeltaTableWriter): Promise<void> {
    await w.update('id', [row(7, ' v2'), row(8, ' v2')]);
    await w.delete('id', [10n, 11n, 12n]);
    await w.append([row(600), row(601)]);
    const removed = await w.vacuum();
    assert.ok(removed.length > 0, 'vacuum removed files');
  }

  it('after a vacuumed CDF range, onMissingChanges "fail" stops with the error and its hint offers the repair; the repair brings the target to the latest version', async () => {
    const { w } = await vacuumedTable('vacuum_fail');
    const m = buildMapping({ name: 'repair-vacuum-fail', source: w.path, target: 'repair_vacuum_fail', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run();
      await changeAndVacuum(w);
      const err = await r.runner.run().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof SyncError, `expected a SyncError, got ${String(err)}`);
      assert.equal(err.kind, 'cdf-range');
      assert.match(err.hint ?? '', /delta-neon-sync repair --mapping/);
      assert.match(err.hint ?? '', /onMissingChanges/);
      const fixed = await r.runner.repair();
      assert.equal(fixed.version, 4);
      assert.deepEqual(fixed.planned, { insert: 2, update: 2, delete: 3 });
      assert.equal(fixed.equal, true);
      // The checkpoint is at the latest version: the next sync has nothing to do.
      const next = await r.runner.run();
      assert.equal(next.status, 'up-to-date');
    } finally {
      await r.close();
    }
  });

  it('after a vacuumed CDF range, onMissingChanges "repair" makes the sync repair the target to the latest version by checksums', async () => {
    const { w } = await vacuumedTable('vacuum_repair');
    const m = buildMapping({ name: 'repair-vacuum-repair', source: w.path, target: 'repair_vacuum_repair', key: ['id'], onMissingChanges: 'repair' });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run();
      await changeAndVacuum(w);
      const res = await r.runner.run();
      assert.equal(res.status, 'succeeded');
      assert.equal(res.toVersion, 4);
      assert.deepEqual([res.inserted, res.updated, res.deleted], [2, 2, 3]);
      assert.match(res.warnings.join('\n'), /Repaired by checksums/);
      const rows = await query<{ id: string; name: string }>(`SELECT id::text, name FROM repair_vacuum_repair WHERE id IN (7, 10, 600) ORDER BY repair_vacuum_repair.id`);
      assert.deepEqual(rows, [{ id: '7', name: 'name 7 v2' }, { id: '600', name: 'name 600' }]);
      const check = await r.runner.repair({ dryRun: true });
      assert.equal(check.equal, true);
      assert.equal(check.fromVersion, 4);
    } finally {
      await r.close();
    }
  });

  it('the repair CLI (quick form): --dry-run prints the counts and the preview and exits 1 on a difference; repair exits 0 with the target equal', async () => {
    await buildCli();
    const w = await DeltaTableWriter.create(path.join(dir, 'cli'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(Array.from({ length: 300 }, (_, i) => row(i + 1)));
    const quick = ['--source', w.path, '--target', db().url, '--table', 'public.repair_cli', '--key', 'id'];
    const load = await runCli(['sync', ...quick]);
    assert.equal(load.code, 0, load.stderr);
    await query(`UPDATE repair_cli SET name = 'broken' WHERE id = 42`);
    await query(`DELETE FROM repair_cli WHERE id = 43`);
    const dry = await runCli(['repair', ...quick, '--dry-run']);
    assert.equal(dry.code, 1, dry.stderr);
    assert.match(dry.stdout, /1 missing, 1 differing, 0 extra/);
    assert.match(dry.stdout, /name: broken -> name 42/);
    assert.match(dry.stdout, /insert\s+id=43/);
    const fix = await runCli(['repair', ...quick]);
    assert.equal(fix.code, 0, fix.stderr);
    assert.match(fix.stdout, /Applied: 1 inserted, 1 updated, 0 deleted; checkpoint at version 1\. The target equals the snapshot\./);
    const again = await runCli(['repair', ...quick, '--dry-run']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /0 missing, 0 differing, 0 extra/);
  });

  it('a repair that would delete most of the target is refused before it commits, nothing of it kept (safety.maxDeleteShare); allowed once it deletes them', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'mass'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(Array.from({ length: 100 }, (_, i) => row(i + 1)));
    const m = buildMapping({ name: 'repair-mass', source: w.path, target: 'repair_mass', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run();
      await query(`INSERT INTO repair_mass (id, name) SELECT 1000 + g, 'stray' FROM generate_series(1, 300) g`);
      const err = await r.runner.repair().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof SyncError, `expected a SyncError, got ${String(err)}`);
      assert.equal(err.setting, 'safety.maxDeleteShare');
      assert.match(err.message, /Refused to delete 300 of about 400 row\(s\) of public\.repair_mass/);
      assert.equal((await query<{ n: number }>(`SELECT count(*)::int AS n FROM repair_mass`))[0]?.n, 400);
      const fixed = await r.runner.repair({ allowMassDelete: true });
      assert.equal(fixed.result?.deleted, 300);
      assert.equal(fixed.equal, true);
    } finally {
      await r.close();
    }
  });
});
