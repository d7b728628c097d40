import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabricksClient } from '../../src/sync/databricks/DatabricksClient';
import { createPool } from '../../src/sync/postgres/createPool';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { DatabricksChangeSource } from '../../src/sync/sources/DatabricksChangeSource';
import { buildMapping } from '../builders/mappings';
import { listExpectedFiles, locateTable, readPrettyTable } from '../helpers/expectedTables';
import type { ExpectedFileName } from '../helpers/expectedTables';
import { ExpectedCdfTable, readCommits } from '../helpers/fakeWarehouse/ExpectedCdfTable';
import { ExpectedSnapshotTable } from '../helpers/fakeWarehouse/ExpectedSnapshotTable';
import { FakeWarehouse } from '../helpers/fakeWarehouse/FakeWarehouse';
import { useTestDatabase } from '../helpers/postgres';
import { SHARED_TABLES_DIR } from '../helpers/sharedTables';
import { canonicalCell, canonicalRow, sorted } from '../helpers/rowMultiset';
import { diffRows, expectedText, targetText } from '../helpers/targetEquality';
import type { ComparedColumn, TextRows } from '../helpers/targetEquality';

/**
 * The Databricks path checked against an independent oracle: the local warehouse answers
 * `table_changes()` and `VERSION AS OF` for each shared CDF table from the expected CDF file
 * that delta-rs or delta-kernel-rs produced (ExpectedCdfTable: the file's rows, and for a
 * snapshot the file's changes replayed onto an empty table), never through the project's
 * Delta reader. Each table is synced through DatabricksChangeSource and the real
 * @databricks/sql driver into a real Postgres, and the target is compared, value by value,
 * with the replayed expected rows, turned into Postgres' text by hand (targetEquality).
 */

interface OracleCase {
  id: string;
  name: string;
  file: string;
  table: ExpectedCdfTable;
}

/** Files a snapshot cannot be replayed from, with the reason (each CDF table with a file is either synced or listed here). */
const NOT_REPLAYABLE: Record<string, string> = {
  'cdf-column-mapping-name-mode': 'the file starts at version 1 (CDF enabled at v1 only), so the table before it is unknown to the oracle; and the oracle does not serve column mapping',
  'checkpoint-cdf-table': 'the file starts at a timestamp (version 3; commits 0-2 were cleaned up), so the table before it is unknown to the oracle',
};

function latestCommit(tableDir: string): number {
  const versions = fs
    .readdirSync(path.join(tableDir, '_delta_log'))
    .map((n) => /^(\d{20})\.json$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
  return Math.max(...versions);
}

/** The expected CDF files that cover a table from version 0 to its latest version, one per table. */
function oracleCases(shared: string): { cases: OracleCase[]; skipped: string[] } {
  const cases: OracleCase[] = [];
  const skipped = new Set<string>();
  const files = listExpectedFiles(shared).filter((e): e is Extract<ExpectedFileName, { kind: 'cdf' }> => e.kind === 'cdf');
  for (const e of files) {
    if (cases.some((c) => c.name === e.table)) continue;
    const file = path.join(shared, 'expected', e.file);
    const dir = locateTable(shared, e.table, readPrettyTable(file).comments);
    assert.ok(dir, `no table folder for ${e.file}`);
    const r = e.range;
    const whole = r.startingVersion === 0 && r.startingTimestamp === undefined && r.endingTimestamp === undefined && (r.endingVersion ?? latestCommit(dir)) === latestCommit(dir);
    if (!whole) {
      skipped.add(e.table);
      continue;
    }
    skipped.delete(e.table);
    cases.push({ id: path.relative(shared, dir), name: e.table, file: e.file, table: new ExpectedCdfTable(dir, file, r) });
  }
  return { cases, skipped: [...skipped].filter((t) => !cases.some((c) => c.name === t)).sort() };
}

/** Postgres-safe table and pipeline name. */
function pgName(name: string, suffix: string): string {
  return `${name.replace(/[^a-z0-9]+/gi, '_')}_${suffix}`.toLowerCase();
}

describe('Databricks source against the expected CDF files of delta-rs / delta-kernel-rs (oracle warehouse, real driver, real Postgres)', function () {
  this.timeout(120_000);
  if (!SHARED_TABLES_DIR) {
    it('skips: the shared delta-tables folder is absent', function () {
      this.skip();
    });
    return;
  }
  const shared = SHARED_TABLES_DIR;
  const { cases, skipped } = oracleCases(shared);
  const db = useTestDatabase('dbx_oracle');
  let warehouse: FakeWarehouse;
  let client: DatabricksClient;

  before(async function () {
    this.timeout(60_000);
    warehouse = await FakeWarehouse.start({ catalogs: { oracle: { cdf: Object.fromEntries(cases.map((c) => [c.name, c.table])) } } });
    client = await DatabricksClient.connect(warehouse.config());
  });

  after(async () => {
    await client?.close();
    await warehouse?.stop();
  });

  it('every CDF table with an expected file is synced against it, or listed with the reason it cannot be', () => {
    assert.deepEqual(skipped, Object.keys(NOT_REPLAYABLE).sort());
    assert.ok(cases.length >= 7, `only ${cases.length} tables`);
  });

  function columnsOf(c: OracleCase): ComparedColumn[] {
    return c.table.schema().map((f) => ({ source: f.name, target: f.name, type: f.type }));
  }

  /**
   * The key: `id` where the table has one, else its only column. cdf-table-non-partitioned's
   * v4 WRITE appends ids 1 and 2 again (Alex, Alan next to Steve, Bob), so `id` is not unique
   * there from v4 on and (id, name) is its key.
   */
  function keyOf(c: OracleCase): string[] {
    const names = c.table.schema().map((f) => f.name);
    if (c.name === 'cdf-table-non-partitioned') return ['id', 'name'];
    if (names.includes('id')) return ['id'];
    assert.equal(names.length, 1, `${c.id}: no id column to key on`);
    return names;
  }

  /** The replayed expected rows at `version` as Postgres prints them, keyed like targetText. */
  function expectedRows(c: OracleCase, version: number, key: readonly string[]): TextRows {
    const out: TextRows = new Map();
    for (const r of c.table.rows(version)) {
      const text: Record<string, string | null> = {};
      for (const col of columnsOf(c)) text[col.target] = expectedText(r[col.source], col.type);
      const k = key.map((x) => text[x] ?? '\u2400').join('\u241f');
      assert.ok(!out.has(k), `${c.file}: key ${k} twice at version ${version}`);
      out.set(k, text);
    }
    return out;
  }

  async function assertTargetIsOracle(c: OracleCase, table: string, version: number, key: readonly string[]): Promise<void> {
    const want = expectedRows(c, version, key);
    const got = await targetText(db().url, { schema: 'public', name: table }, columnsOf(c), key);
    const d = diffRows(want, got, columnsOf(c));
    assert.deepEqual(d, { missing: [], extra: [], differing: [] }, `${c.id} at version ${version}: target ${table} against ${c.file}`);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  }

  function runner(c: OracleCase, target: string, key: string[]): { runner: SyncRunner; close: () => Promise<void> } {
    // Safe deletes off: the oracle's tables delete every row on purpose (cdf-table-delete-unconditional), and the
    // point here is that the target follows the source exactly.
    const mapping = buildMapping({ name: target, source: { type: 'databricks', connection: 'default', table: `oracle.cdf.${c.name}` }, target, key, safety: { maxDeleteShare: null } });
    const pool = createPool(db().url, { max: 2 });
    const source = new DatabricksChangeSource(client, { catalog: 'oracle', schema: 'cdf', table: c.name });
    return { runner: new SyncRunner(mapping, source, mappingTarget(pool, mapping.target)), close: () => pool.end() };
  }

  /**
   * Every expected CDF file of a served table (the one it is served from, and the other
   * ranges of the same table): DatabricksChangeSource.changes() over the file's range, through
   * the driver, equals the file's rows. The file side is read here on its own (canonicalCell
   * on the printed cells), not through ExpectedCdfTable; commit times are compared where
   * the file prints them (delta-rs files).
   */
  describe('DatabricksChangeSource.changes() equals each expected CDF file of a served table', () => {
    const files = listExpectedFiles(shared).filter((e): e is Extract<ExpectedFileName, { kind: 'cdf' }> => e.kind === 'cdf');

    it('covers every CDF file whose table is served, and more than one range of some table', () => {
      const covered = files.filter((e) => cases.some((c) => c.name === e.table));
      assert.ok(covered.length > cases.length, `${covered.length} files for ${cases.length} tables`);
      assert.deepEqual(files.filter((e) => !covered.includes(e)).map((e) => e.table).sort(), Object.keys(NOT_REPLAYABLE).sort());
    });

    for (const e of files) {
      const c = cases.find((x) => x.name === e.table);
      if (!c) continue;
      it(`${e.file}`, async () => {
        const history = c.table.history();
        const r = e.range;
        const start = r.startingVersion ?? Math.min(...history.filter((h) => h.timestamp >= Date.parse(r.startingTimestamp as string)).map((h) => h.version));
        const end = r.endingVersion ?? (r.endingTimestamp !== undefined ? Math.max(...history.filter((h) => h.timestamp <= Date.parse(r.endingTimestamp as string)).map((h) => h.version)) : c.table.latestVersion());
        assert.ok(Number.isSafeInteger(start) && Number.isSafeInteger(end), `range of ${e.file}: ${start}..${end}`);
        const pretty = readPrettyTable(path.join(shared, 'expected', e.file));
        const fields = c.table.schema();
        const at = (name: string): number => pretty.columns.indexOf(name);
        const withTime = at('_commit_timestamp') >= 0;
        const want = pretty.rows.map((cells) => {
          const values = fields.map((f) => `${f.name}=${canonicalCell(cells[at(f.name)] ?? null, f.type)}`).join(' | ');
          const time = withTime ? ` t=${new Date(`${cells[at('_commit_timestamp')] as string}Z`).toISOString()}` : '';
          return `${values} || ${cells[at('_change_type')] as string} @${cells[at('_commit_version')] as string}${time}`;
        });
        assert.ok(want.length > 0, `${e.file} holds rows`);
        const source = new DatabricksChangeSource(client, { catalog: 'oracle', schema: 'cdf', table: c.name });
        const got: string[] = [];
        for await (const batch of source.changes(start, end, { batchSize: 3 })) {
          for (const x of batch) got.push(`${canonicalRow(x.values, fields)} || ${x.changeType} @${x.commitVersion}${withTime ? ` t=${new Date(x.commitTimestamp).toISOString()}` : ''}`);
        }
        assert.deepEqual(sorted(got), sorted(want));
      });
    }
  });

  for (const c of cases) {
    it(`${c.id} (${c.file}): initial load at version 0, then one incremental run per version; the target equals the replayed expected CDF at every version`, async () => {
      const key = keyOf(c);
      const target = pgName(c.name, 'steps');
      const r = runner(c, target, key);
      try {
        const first = await r.runner.run({ mode: 'initial', toVersion: 0 });
        assert.equal(first.toVersion, 0);
        await assertTargetIsOracle(c, target, 0, key);
        for (let v = 1; v <= c.table.last; v++) {
          const rep = await r.runner.run({ mode: 'incremental', toVersion: v });
          assert.equal(rep.toVersion, v);
          await assertTargetIsOracle(c, target, v, key);
        }
      } finally {
        await r.close();
      }
    });

    it(`${c.id} (${c.file}): initial load at version 0 and one incremental run to the latest version (net changes across versions) equal the replayed expected CDF; so does an initial load at the latest version`, async () => {
      const key = keyOf(c);
      const across = pgName(c.name, 'across');
      const r = runner(c, across, key);
      try {
        await r.runner.run({ mode: 'initial', toVersion: 0 });
        if (c.table.last > 0) assert.equal((await r.runner.run({ mode: 'incremental' })).toVersion, c.table.last);
        await assertTargetIsOracle(c, across, c.table.last, key);
      } finally {
        await r.close();
      }
      const latest = pgName(c.name, 'latest');
      const l = runner(c, latest, key);
      try {
        assert.equal((await l.runner.run({ mode: 'initial' })).toVersion, c.table.last);
        await assertTargetIsOracle(c, latest, c.table.last, key);
      } finally {
        await l.close();
      }
    });
  }
});

/** Snapshot files a table cannot be served from, with the reason (each expected snapshot is either synced or listed here). */
const SNAPSHOT_NOT_SERVED: Record<string, string> = {
  'data-reader-map.snapshot.latest': 'nested columns (map, array, struct): the oracle warehouse serves flat tables only',
  'data-reader-partition-values.snapshot.latest': 'nested columns (array, struct)',
  'parquet-all-types.snapshot.latest': 'nested columns (array, map, struct)',
  'table-with-columnmapping-mode-id.snapshot.latest': 'nested columns (array, map, struct)',
};

/** Snapshots with no column that is non-null and distinct in every row: no key to load into Postgres by (the source's rows are still compared). */
const SNAPSHOT_NO_KEY: Record<string, string> = {
  'data-reader-primitives.snapshot.latest': 'one row is null in every column',
  'decimal-various-scale-precision.snapshot.latest': 'one row is null in every column',
  'multi-part-checkpoint.snapshot.latest': 'its only column repeats values',
};

/** Whether the table's latest schema (raw JSON of its commit files) has only primitive and decimal columns. */
function flatTable(dir: string): boolean {
  const withSchema = [...readCommits(dir)].reverse().find((c) => c.schemaString !== undefined);
  const schema = JSON.parse(withSchema?.schemaString ?? '{"fields":[]}') as { fields: Array<{ type: unknown }> };
  return schema.fields.every((f) => typeof f.type === 'string');
}

describe('Databricks source against the expected snapshots of Spark / delta-kernel-rs / delta-rs (oracle warehouse, real driver, real Postgres)', function () {
  this.timeout(120_000);
  if (!SHARED_TABLES_DIR) {
    it('skips: the shared delta-tables folder is absent', function () {
      this.skip();
    });
    return;
  }
  const shared = SHARED_TABLES_DIR;
  const files = listExpectedFiles(shared).filter((e) => e.kind === 'snapshot-parquet' || e.kind === 'snapshot-text');
  const served = files.filter((e) => !(e.file in SNAPSHOT_NOT_SERVED));
  /** Catalog table name of each served file: the table, with the subset for a column-subset file. */
  const nameOf = (e: ExpectedFileName): string => (e.kind === 'snapshot-text' && e.subset ? `${e.table}__${e.subset}` : e.table);
  const dirOf = (e: ExpectedFileName): string => {
    const dir = locateTable(shared, e.table, e.kind === 'snapshot-text' ? readPrettyTable(path.join(shared, 'expected', e.file)).comments : []);
    assert.ok(dir, `no table folder for ${e.file}`);
    return dir;
  };
  const db = useTestDatabase('dbx_oracle_snap');
  const tables = new Map<string, ExpectedSnapshotTable>();
  let warehouse: FakeWarehouse;
  let client: DatabricksClient;

  before(async function () {
    this.timeout(60_000);
    for (const e of served) tables.set(nameOf(e), await ExpectedSnapshotTable.load(dirOf(e), path.join(shared, 'expected', e.file)));
    warehouse = await FakeWarehouse.start({ catalogs: { oracle: { snap: Object.fromEntries(tables) } } });
    client = await DatabricksClient.connect(warehouse.config());
  });

  after(async () => {
    await client?.close();
    await warehouse?.stop();
  });

  it('every expected snapshot is served, or listed with the reason it cannot be (nested tables only)', () => {
    assert.deepEqual(files.filter((e) => !served.includes(e)).map((e) => e.file).sort(), Object.keys(SNAPSHOT_NOT_SERVED).sort());
    for (const file of Object.keys(SNAPSHOT_NOT_SERVED)) {
      const e = files.find((x) => x.file === file) as ExpectedFileName;
      assert.equal(flatTable(dirOf(e)), false, `${file} is flat: serve it`);
    }
    assert.ok(served.length >= 10, `only ${served.length} snapshots served`);
  });

  /** Key for the initial load: the first column whose expected values are all non-null and distinct. */
  function keyOf(t: ExpectedSnapshotTable): string[] | undefined {
    const rows = t.rows(t.latestVersion());
    for (const f of t.schema()) {
      const values = rows.map((r) => expectedText(r[f.name], f.type));
      if (values.every((v) => v !== null) && new Set(values).size === values.length) return [f.name];
    }
    return undefined;
  }

  it('the snapshots not loaded into Postgres are exactly those with no key column', () => {
    const noKey = served.filter((e) => keyOf(tables.get(nameOf(e)) as ExpectedSnapshotTable) === undefined).map((e) => e.file);
    assert.deepEqual(noKey.sort(), Object.keys(SNAPSHOT_NO_KEY).sort());
  });

  for (const e of served) {
    it(`${e.file}: DatabricksChangeSource.snapshot() rows, through the driver, equal the expected rows (multiset)`, async () => {
      const t = tables.get(nameOf(e)) as ExpectedSnapshotTable;
      const fields = t.schema();
      const want = t.rows(t.latestVersion()).map((r) => canonicalRow(r, fields));
      assert.ok(want.length > 0, `${e.file} holds rows`);
      const source = new DatabricksChangeSource(client, { catalog: 'oracle', schema: 'snap', table: nameOf(e) });
      const snap = await source.snapshot();
      assert.equal(snap.version, t.latestVersion());
      assert.deepEqual(snap.schema.map((f) => [f.name, f.type, f.nullable]), fields.map((f) => [f.name, f.type, f.nullable]));
      const got: string[] = [];
      for await (const batch of snap.rows({ batchSize: 7 })) for (const r of batch) got.push(canonicalRow(r, fields));
      assert.deepEqual(sorted(got), sorted(want));
    });
    if (e.file in SNAPSHOT_NO_KEY) continue;
    it(`${e.file}: an initial load through the Databricks source equals the expected rows, value for value`, async () => {
      const name = nameOf(e);
      const t = tables.get(name) as ExpectedSnapshotTable;
      const rows = t.rows(t.latestVersion());
      assert.ok(rows.length > 0, `${e.file} holds rows`);
      const key = keyOf(t) as string[];
      const columns: ComparedColumn[] = t.schema().map((f) => ({ source: f.name, target: f.name, type: f.type }));
      const want: TextRows = new Map();
      for (const r of rows) {
        const text: Record<string, string | null> = {};
        for (const col of columns) text[col.target] = expectedText(r[col.source], col.type);
        const k = key.map((x) => text[x] ?? '\u2400').join('\u241f');
        assert.ok(!want.has(k), `${e.file}: row ${k} twice, no key to load it by`);
        want.set(k, text);
      }
      const target = pgName(name, 'snap');
      const mapping = buildMapping({ name: target, source: { type: 'databricks', connection: 'default', table: `oracle.snap.${name}` }, target, key });
      const pool = createPool(db().url, { max: 2 });
      try {
        const source = new DatabricksChangeSource(client, { catalog: 'oracle', schema: 'snap', table: name });
        const report = await new SyncRunner(mapping, source, mappingTarget(pool, mapping.target)).run({ mode: 'initial' });
        assert.equal(report.toVersion, t.latestVersion());
      } finally {
        await pool.end();
      }
      const got = await targetText(db().url, { schema: 'public', name: target }, columns, key);
      assert.deepEqual(diffRows(want, got, columns), { missing: [], extra: [], differing: [] }, `${e.file}: target ${target}`);
      assert.equal(got.size, rows.length);
    });
  }
});
