import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeltaChangeSource } from '../../src/sync/sources/DeltaChangeSource';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import type { ChangeReadOptions } from '../../src/sync/delta/DeltaTable';
import type { ChangeRow, Row } from '../../src/sync/delta/types';
import { CUSTOMER_KEY, applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { requireSharedTable } from '../helpers/sharedTables';

/**
 * `preimageColumns` slims update_preimage rows only: reading with it must give, row for
 * row, what a read without it gives, except that each preimage keeps just the asked-for
 * columns of the schema (in schema order).
 */

async function readAll(table: DeltaTable, start: number, end: number, opts: ChangeReadOptions = {}): Promise<ChangeRow[]> {
  const out: ChangeRow[] = [];
  for await (const batch of table.changes({ startingVersion: start, endingVersion: end }, opts)) {
    assert.ok(batch.length <= (opts.batchSize ?? 10_000), 'batches respect batchSize');
    out.push(...batch);
  }
  return out;
}

/** The columns of `row` named in `wanted`, in the order of `schemaNames`. */
function pick(row: Row, schemaNames: readonly string[], wanted: readonly string[]): Row {
  const out: Row = {};
  for (const n of schemaNames) if (wanted.includes(n)) out[n] = row[n];
  return out;
}

/** Compares a slim read with a full one; returns the number of preimages seen. */
function assertSlimMatches(full: ChangeRow[], slim: ChangeRow[], schemaNames: readonly string[], wanted: readonly string[]): number {
  assert.equal(slim.length, full.length, 'same number of change rows');
  let preimages = 0;
  for (let i = 0; i < full.length; i++) {
    const f = full[i];
    const s = slim[i];
    assert.equal(s.changeType, f.changeType, `row ${i}: change type`);
    assert.equal(s.commitVersion, f.commitVersion, `row ${i}: version`);
    assert.equal(s.commitTimestamp, f.commitTimestamp, `row ${i}: timestamp`);
    if (f.changeType === 'update_preimage') {
      preimages++;
      const expected = pick(f.values, schemaNames, wanted);
      assert.deepStrictEqual(s.values, expected, `row ${i}: a preimage holds only ${wanted.join(', ')}`);
      assert.deepStrictEqual(Object.keys(s.values), Object.keys(expected), `row ${i}: preimage columns in schema order`);
    } else {
      assert.deepStrictEqual(s.values, f.values, `row ${i}: a ${f.changeType} row is unchanged`);
      assert.deepStrictEqual(Object.keys(s.values), Object.keys(f.values), `row ${i}: column order unchanged`);
    }
  }
  return preimages;
}

/** Every row of a read without the option holds every schema column, in schema order. */
function assertFullRows(rows: ChangeRow[], schemaNames: readonly string[]): void {
  for (const r of rows) assert.deepStrictEqual(Object.keys(r.values), [...schemaNames]);
}

describe('CDF preimage slimming (preimageColumns) on the customer_profiles fixture', function () {
  this.timeout(120_000);
  let tmp: string;
  let table: DeltaTable;
  let latest: number;
  let schemaNames: string[];

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cdf-preimage-slim-'));
    const dir = path.join(tmp, 'customers');
    // Several data files and small row groups, so that reads cross files, groups and batches.
    await createCustomerProfilesTable(dir, { rows: 3000, rowsPerFile: 1000, rowGroupSize: 400 });
    await applySampleChanges(dir); // a MERGE: updates, inserts and deletes in one cdc commit
    table = await DeltaTable.open(dir);
    latest = await table.latestVersion();
    schemaNames = (await table.snapshot()).schema.map((f) => f.name);
  });

  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('gives key-only preimages and leaves every other change row as a full read gives it', async () => {
    const full = await readAll(table, 0, latest, { batchSize: 97 });
    assertFullRows(full, schemaNames);
    const slim = await readAll(table, 0, latest, { batchSize: 97, preimageColumns: [CUSTOMER_KEY] });
    const preimages = assertSlimMatches(full, slim, schemaNames, [CUSTOMER_KEY]);
    assert.ok(preimages > 0, 'the fixture has update preimages (UPDATE and MERGE versions)');
    const types = new Set(full.map((r) => r.changeType));
    assert.deepEqual([...types].sort(), ['delete', 'insert', 'update_postimage', 'update_preimage'], 'every change type is covered');
  });

  it('keeps several preimage columns in schema order whatever order they are asked in, and ignores unknown names', async () => {
    const wanted = ['is_active', 'no_such_column', CUSTOMER_KEY, 'total_spend'];
    const full = await readAll(table, 2, latest);
    const slim = await readAll(table, 2, latest, { preimageColumns: wanted });
    assert.ok(assertSlimMatches(full, slim, schemaNames, wanted) > 0);
    const pre = slim.find((r) => r.changeType === 'update_preimage');
    assert.deepEqual(Object.keys(pre?.values ?? {}), [CUSTOMER_KEY, 'total_spend', 'is_active']);
  });

  it('gives empty preimages for an empty column list', async () => {
    const full = await readAll(table, 2, 2);
    const slim = await readAll(table, 2, 2, { preimageColumns: [] });
    assert.ok(assertSlimMatches(full, slim, schemaNames, []) > 0);
  });

  it('passes the option through the ChangeSource interface', async () => {
    const source = await DeltaChangeSource.open(table.path);
    const slim: ChangeRow[] = [];
    for await (const b of source.changes(2, latest, { preimageColumns: [CUSTOMER_KEY] })) slim.push(...b);
    assertSlimMatches(await readAll(table, 2, latest), slim, schemaNames, [CUSTOMER_KEY]);
  });
});

/** CDF tables of the shared folder (README.md there): every one with cdc files or updates. */
const SHARED_CDF_TABLES = [
  'delta-rs/cdf-table',
  'delta-rs/cdf-table-non-partitioned',
  'delta-rs/checkpoint-cdf-table',
  'delta-rs/simple_table_with_cdc',
  'delta-kernel-rs/cdf-table-simple',
  'delta-kernel-rs/cdf-table-delete-unconditional',
  'delta-kernel-rs/cdf-table-delete-conditional-two-rows',
  'delta-kernel-rs/cdf-table-data-change',
  'delta-kernel-rs/cdf-column-mapping-name-mode',
  'delta-kernel-rs/cdf-table-with-dv',
];

/** The first version from which the whole CDF up to the latest can be read. */
async function firstReadableVersion(table: DeltaTable): Promise<number> {
  const latest = await table.latestVersion();
  for (let v = 0; v <= latest; v++) {
    try {
      await table.resolveCdfRange({ startingVersion: v, endingVersion: latest });
      return v;
    } catch {
      // Cleaned-up commits or CDF not yet enabled at v: try the next version.
    }
  }
  throw new Error(`no readable CDF range in ${table.path}`);
}

describe('CDF preimage slimming on the shared Spark / delta-rs tables', function () {
  this.timeout(60_000);
  const preimagesByTable = new Map<string, number>();

  for (const name of SHARED_CDF_TABLES) {
    it(`${name}: slim preimages, every other row as a full read gives it`, async function () {
      const dir = requireSharedTable(this, name);
      const table = await DeltaTable.open(dir);
      const snapshot = await table.snapshot();
      const schemaNames = snapshot.schema.map((f) => f.name);
      const start = await firstReadableVersion(table);
      const end = await table.latestVersion();
      const full = await readAll(table, start, end, { batchSize: 3 });
      assertFullRows(full, schemaNames);
      // The first column as the key, and for a partitioned table also key + partition columns
      // (partition values of slim rows come from the cdc file's partitionValues).
      const cases: string[][] = [[schemaNames[0]]];
      if (snapshot.partitionColumns.length > 0) cases.push([...snapshot.partitionColumns, schemaNames[0]]);
      for (const wanted of cases) {
        const slim = await readAll(table, start, end, { batchSize: 3, preimageColumns: wanted });
        preimagesByTable.set(name, assertSlimMatches(full, slim, schemaNames, wanted));
      }
    });
  }

  it('the shared tables above include update preimages, in a partitioned table too', function () {
    if (preimagesByTable.size === 0) this.skip();
    assert.ok((preimagesByTable.get('delta-rs/cdf-table') ?? 0) > 0, 'partitioned cdf-table has preimages');
    assert.ok((preimagesByTable.get('delta-rs/cdf-table-non-partitioned') ?? 0) > 0, 'cdf-table-non-partitioned has preimages');
  });
});
