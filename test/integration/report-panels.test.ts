import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import type { Row } from '../../src/sync/delta/types';
import { openSource } from '../../src/sync/open/openSource';
import { previewColumns, toPreviewRow } from '../../src/views/RunnerPreviewSource';
import { mappingsReading } from '../../src/views/MappingsModel';
import type { MappingNode } from '../../src/views/MappingsModel';
import { deltaHistoryReport, describeReport, dryRunReport } from '../../src/views/reports';
import type { ReportGrid } from '../../src/protocol/messages';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * The Describe, History and Dry Run panels' reports, built from real Delta tables written
 * by the fixture writer and (for the dry run) a real Postgres: what each grid lists.
 */

const INT: WriterColumn['type'] = { kind: 'primitive', name: 'integer' };
const STRING: WriterColumn['type'] = { kind: 'primitive', name: 'string' };
const COLS: WriterColumn[] = [
  { name: 'id', type: INT, nullable: false },
  { name: 'name', type: STRING },
  { name: 'city', type: STRING },
];

function items(a: number, b: number): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: i, name: `item ${i}`, city: i % 2 ? 'Oslo' : 'Lyon' });
  return out;
}

/** The grid's rows as objects keyed by column name. */
function records(g: ReportGrid | undefined): Array<Record<string, string | null>> {
  assert.ok(g, 'grid missing');
  return g.rows.map((r) => Object.fromEntries(g.columns.map((c, i) => [c.name, r[i] ?? null])));
}

describe('report panels: Describe, History and Dry Run grids (real Delta tables, real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('report_panels');
  let dir: string;

  before(async () => {
    dir = await tempDir('dns-reports-');
  });

  it('History lists each version with its operation, row counts from operationMetrics and whether CDF is readable there', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'hist'), { columns: COLS }); // v0, CDF off
    await w.append(items(1, 1200)); // v1
    await w.setProperties({ 'delta.enableChangeDataFeed': 'true' }); // v2
    await w.merge('id', [{ id: 1, name: 'one', city: 'Rome' }, { id: 5000, name: 'new', city: 'Kyiv' }], { deleteKeys: [2, 3] }); // v3
    const report = deltaHistoryReport(w.path, await (await DeltaTable.open(w.path)).history());
    const rows = records(report.grids[0]);
    assert.deepEqual(rows.map((r) => r.version), ['3', '2', '1', '0']);
    assert.deepEqual(rows.map((r) => r.CDF), ['yes', 'yes', 'no', 'no']);
    assert.equal(rows[2]?.operation, 'WRITE');
    assert.equal(rows[2]?.['rows added'], '1,200');
    assert.equal(rows[0]?.operation, 'MERGE');
    assert.deepEqual([rows[0]?.['rows added'], rows[0]?.['rows updated'], rows[0]?.['rows removed']], ['1', '1', '2']);
    assert.match(rows[0]?.parameters ?? '', /predicate=/);
    assert.ok(report.facts.some((f) => f.label === 'Change Data Feed at the latest version' && f.value === 'on'));
  });

  it('Describe lists every column with its Postgres type, the key and renames of the mapping that reads the table', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'desc'), { columns: COLS });
    await w.append(items(1, 10));
    const d = await (await DeltaTable.open(w.path)).snapshot();
    const m = buildMapping({ name: 'desc', source: w.path, target: 'desc_t', key: ['item_id'], columns: { rename: { id: 'item_id' }, exclude: ['city'], types: { name: 'varchar(40)' } } });
    const rows = records(describeReport(d.describe(), [m]).grids[0]);
    assert.deepEqual(rows, [
      { column: 'id', 'Delta type': 'integer', 'Postgres type': 'integer', nullable: 'no', key: 'key', 'renamed to': 'item_id', partition: '' },
      { column: 'name', 'Delta type': 'string', 'Postgres type': 'varchar(40)', nullable: 'yes', key: '', 'renamed to': '', partition: '' },
      { column: 'city', 'Delta type': 'string', 'Postgres type': 'not synced', nullable: 'yes', key: '', 'renamed to': '', partition: '' },
    ]);
    const plain = records(describeReport(d.describe()).grids[0]);
    assert.deepEqual(plain.map((r) => r['Postgres type']), ['integer', 'text', 'text']);
  });

  it('Describe shows the key of each mapping that reads the table (two mappings, two keys), and no key when none reads it', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'desc_two'), { columns: COLS });
    await w.append(items(1, 3));
    const d = (await (await DeltaTable.open(w.path)).snapshot()).describe();
    const byId = buildMapping({ name: 'by-id', source: w.path, target: 'by_id', key: ['id'] });
    const byName = buildMapping({ name: 'by-name', source: w.path, target: 'by_name', key: ['label'], columns: { rename: { name: 'label' } } });
    const other = buildMapping({ name: 'other', source: path.join(dir, 'elsewhere'), target: 'other', key: ['city'] });
    // The Mappings tree's nodes: a file elsewhere whose source path is relative to its folder reads the same table.
    const relative = buildMapping({ name: 'by-city', source: w.path, target: 'by_city', key: ['city'] });
    const nodes: MappingNode[] = [
      { kind: 'mapping', file: path.join(dir, 'm', 'by-id.json'), mapping: byId },
      { kind: 'invalid', file: path.join(dir, 'm', 'broken.json'), error: 'not JSON' },
      { kind: 'mapping', file: path.join(dir, 'm', 'other.json'), mapping: other },
      { kind: 'mapping', file: path.join(dir, 'm', 'by-name.json'), mapping: byName },
      { kind: 'mapping', file: path.join(dir, 'm', 'sub', 'by-city.json'), mapping: { ...relative, source: { type: 'delta', path: path.relative(path.join(dir, 'm', 'sub'), w.path) } } },
    ];
    const reading = mappingsReading(nodes, w.path);
    assert.deepEqual(reading.map((m) => m.name), ['by-id', 'by-name', 'by-city']);

    const report = describeReport(d, reading);
    const rows = records(report.grids[0]);
    assert.deepEqual(rows.map((r) => [r.column, r.key, r['renamed to']]), [
      ['id', 'key (by-id)', ''],
      ['name', 'key (by-name)', 'label (by-name)'],
      ['city', 'key (by-city)', ''],
    ]);
    assert.deepEqual(rows.map((r) => r['Postgres type']), ['integer', 'text', 'text'], 'a type all mappings agree on is said once');
    assert.match(report.grids[0]?.columns.find((c) => c.name === 'key')?.title ?? '', /by-id: id; by-name: label; by-city: city/);
    assert.equal(report.facts.find((f) => f.label === 'Mappings')?.value, 'by-id → public.by_id; by-name → public.by_name; by-city → public.by_city');
    // Types that differ are named per mapping; a key two of three mappings share names both.
    const typed = buildMapping({ name: 'typed', source: w.path, target: 'typed', key: ['id'], columns: { types: { name: 'varchar(40)' } } });
    const mixed = records(describeReport(d, [byId, byName, typed]).grids[0]);
    assert.deepEqual(mixed.map((r) => [r.column, r['Postgres type'], r.key]), [
      ['id', 'integer', 'key (by-id, typed)'],
      ['name', 'text (by-id); text (by-name); varchar(40) (typed)', 'key (by-name)'],
      ['city', 'text', ''],
    ]);

    // No mapping: no column is a key.
    const none = records(describeReport(d, mappingsReading(nodes.slice(1, 3), w.path)).grids[0]);
    assert.deepEqual(none.map((r) => r.key), ['', '', '']);
    // A mapping without a key (the target's primary key): no column marked, the title says why.
    const noKey = describeReport(d, [buildMapping({ name: 'pk', source: w.path, target: 'pk_t' })]);
    assert.deepEqual(records(noKey.grids[0]).map((r) => r.key), ['', '', '']);
    assert.match(noKey.grids[0]?.columns.find((c) => c.name === 'key')?.title ?? '', /pk: none named, the primary key of public\.pk_t/);
  });

  it('Dry Run shows the counts the rolled-back transaction found and the plan rows with old → new values', async () => {
    const w = await DeltaTableWriter.create(path.join(dir, 'dry'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(items(1, 1500)); // v1
    const m = buildMapping({ name: 'dry', source: w.path, target: 'dry_t', key: ['id'] });
    const r = await openRunner(m, db().url);
    const source = await openSource(m.source);
    try {
      await r.runner.run({});
      await w.merge('id', [{ id: 7, name: 'seven', city: 'Oslo' }, { id: 2000, name: 'new', city: 'Kyiv' }], { deleteKeys: [9] }); // v2
      const dry = await r.runner.dryRun({});
      const p = await r.runner.preview({ limit: 1000, offset: 0, toVersion: dry.toVersion });
      const columns = await previewColumns(m, source, p.toVersion, ['id']);
      const report = dryRunReport('dry', dry, { columns, rows: p.rows.map((x) => toPreviewRow(x, columns)), total: p.matching });
      const facts = Object.fromEntries(report.facts.map((f) => [f.label, f.value]));
      assert.deepEqual([facts.Inserted, facts.Updated, facts.Deleted, facts.Rejected], ['1', '1', '1', '0']);
      assert.equal(report.subtitle, 'incremental: checkpoint v1 → v2');
      const plan = records(report.grids.find((g) => g.id === 'plan'));
      const byOp = Object.fromEntries(plan.map((x) => [x.op, x]));
      assert.equal(byOp.update?.name, 'item 7 → seven');
      assert.equal(byOp.update?.city, '·');
      assert.equal(byOp.insert?.id, '2000');
      assert.equal(byOp.delete?.id, '9');
      assert.equal((await r.pool.query('SELECT count(*)::int AS n FROM dry_t')).rows[0].n, 1500, 'a dry run writes nothing');
    } finally {
      await r.close();
    }
  });
});
