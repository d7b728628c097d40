import { CUSTOMER_PROFILE_COLUMNS, customerProfilesPlan } from '../../src/fixtures/customerProfiles';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeltaTableInspector } from '../../src/views/DeltaTableInspector';
import { SourcesModel, tableSummary, type SourceNode } from '../../src/views/SourcesModel';
import { writeSampleTable } from '../../src/views/writeSampleTable';
import { requireSharedTable } from '../helpers/sharedTables';

type TableNode = Extract<SourceNode, { kind: 'table' }>;

/** Newest commit version, read from the file names in _delta_log (independent of the reader). */
function newestCommit(table: string): number {
  const versions = fs
    .readdirSync(path.join(table, '_delta_log'))
    .map((n) => /^(\d{20})\.json$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
  return Math.max(...versions);
}

/** Column names from the first metaData action's schemaString. */
function schemaNames(table: string): string[] {
  const first = fs.readFileSync(path.join(table, '_delta_log', '00000000000000000000.json'), 'utf8');
  for (const line of first.split('\n')) {
    if (!line.includes('"metaData"')) continue;
    const meta = JSON.parse(line) as { metaData: { schemaString: string } };
    return (JSON.parse(meta.metaData.schemaString) as { fields: Array<{ name: string }> }).fields.map((f) => f.name);
  }
  throw new Error('no metaData in commit 0');
}

describe('sources model (Delta folders tree)', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sources-model-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('shows no rows without configured folders, so the welcome view appears', async () => {
    const m = new SourcesModel(() => [], new DeltaTableInspector());
    assert.deepEqual(await m.children(), []);
  });

  it('shows a missing folder as an error row, not an exception', async () => {
    const m = new SourcesModel(() => [path.join(tmp, 'nope')], new DeltaTableInspector());
    const [row] = await m.children();
    assert.equal(row?.kind, 'message');
    assert.equal(row?.kind === 'message' && row.severity, 'error');
  });

  it('shows an empty folder as an info row when expanded', async () => {
    const m = new SourcesModel(() => [tmp], new DeltaTableInspector());
    const [folder] = await m.children();
    assert.equal(folder?.kind, 'folder');
    const rows = await m.children(folder);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.kind === 'message' && rows[0].severity, 'info');
  });

  it('a configured table folder is a table row with version, CDF and row count of the sample writes', async () => {
    const { path: table } = await writeSampleTable(tmp, 40);
    const m = new SourcesModel(() => [table], new DeltaTableInspector());
    const [node] = (await m.children()) as TableNode[];
    assert.equal(node?.kind, 'table');
    assert.equal(node?.error, null);
    // The sample: create (v0), insert, update, delete, insert + checkpoint, DV delete (v5).
    const plan = customerProfilesPlan(40);
    const expectedRows = plan.rows + plan.more - plan.deleted.length - plan.dvDeleted.length;
    assert.equal(node?.description?.version, 5);
    assert.equal(node?.description?.cdfEnabled, true);
    assert.equal(node?.description?.numRows, expectedRows);
    assert.equal(tableSummary(node!.description!), `v5 · CDF on · ${expectedRows} rows`);
    const cols = await m.children(node);
    assert.deepEqual(cols.map((c) => c.kind === 'column' && c.field.name), CUSTOMER_PROFILE_COLUMNS.map((c) => c.name));
  });

  it('a broken _delta_log makes a table row carrying the reader\'s error', async () => {
    fs.mkdirSync(path.join(tmp, 'broken', '_delta_log'), { recursive: true });
    const m = new SourcesModel(() => [tmp], new DeltaTableInspector());
    const [folder] = await m.children();
    const [row] = (await m.children(folder)) as TableNode[];
    assert.equal(row?.kind, 'table');
    assert.ok(row?.error && row.error.length > 0);
    const [child] = await m.children(row);
    assert.equal(child?.kind === 'message' && child.severity, 'error');
  });

  it('browses a folder of real tables: versions from the log, CDF as documented, partition columns marked', async function () {
    const cdfTable = requireSharedTable(this, 'delta-rs/cdf-table');
    const folder = path.dirname(cdfTable);
    const m = new SourcesModel(() => [folder], new DeltaTableInspector());
    const [root] = await m.children();
    assert.equal(root?.kind, 'folder');
    const rows = await m.children(root);
    const byName = new Map(rows.filter((r): r is TableNode => r.kind === 'table').map((r) => [r.label, r]));
    const cdf = byName.get('cdf-table');
    assert.equal(cdf?.error, null);
    assert.equal(cdf?.description?.version, newestCommit(cdfTable));
    assert.equal(cdf?.description?.cdfEnabled, true);
    assert.equal(byName.get('simple_table')?.description?.cdfEnabled, false);
    const cols = await m.children(cdf);
    assert.deepEqual(cols.map((c) => c.kind === 'column' && c.field.name), schemaNames(cdfTable));
    const birthday = cols.find((c) => c.kind === 'column' && c.field.name === 'birthday');
    assert.equal(birthday?.kind === 'column' && birthday.isPartition, true);
  });
});
