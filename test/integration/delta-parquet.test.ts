import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { field, long, string } from '../builders/deltaFields';
import { expectSyncError } from '../helpers/expectSyncError';
import { SHARED_TABLES_DIR, requireSharedTable } from '../helpers/sharedTables';
import { loadDeletionVector } from '../../src/sync/delta/deletionVector';
import { parquetRowCount, readParquetRows } from '../../src/sync/delta/parquetFile';
import type { ColumnMappingMode } from '../../src/sync/delta/types';
import { columnMappingModeOf, parseSchemaString } from '../../src/sync/delta/schema';
import type { DeletionVectorDescriptor, DeltaField, Row } from '../../src/sync/delta/types';
import { parsePartitionValue, toJsonValue } from '../../src/sync/delta/values';

/**
 * Reads real tables' data files with readParquetRows and compares them with the
 * Spark-written expected snapshot (logical names) read by the same reader in mode 'none'.
 * The log replay here is deliberately minimal (JSON commits only, add minus remove by
 * path): the real one is DeltaLog's job.
 */

interface MiniSnapshot {
  schema: DeltaField[];
  mode: ColumnMappingMode;
  partitionColumns: string[];
  files: Array<{ path: string; partitionValues: Record<string, string | null>; dv?: DeletionVectorDescriptor }>;
}

function miniReplay(root: string): MiniSnapshot {
  const logDir = path.join(root, '_delta_log');
  let schemaString = '';
  let configuration: Record<string, string> = {};
  let partitionColumns: string[] = [];
  const live = new Map<string, MiniSnapshot['files'][number]>();
  for (const f of fs.readdirSync(logDir).filter((n) => /^\d{20}\.json$/.test(n)).sort()) {
    const actions = fs
      .readFileSync(path.join(logDir, f), 'utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as Record<string, Record<string, unknown> | undefined>);
    // A commit that replaces a file's DV removes and re-adds the same path: removes first.
    actions.sort((x, y) => Number(!x.remove) - Number(!y.remove));
    for (const a of actions) {
      if (a.metaData) {
        schemaString = a.metaData.schemaString as string;
        configuration = (a.metaData.configuration as Record<string, string>) ?? {};
        partitionColumns = a.metaData.partitionColumns as string[];
      }
      if (a.remove) live.delete(decodeURIComponent(a.remove.path as string));
      if (a.add) {
        const p = decodeURIComponent(a.add.path as string);
        live.set(p, {
          path: p,
          partitionValues: a.add.partitionValues as Record<string, string | null>,
          dv: (a.add.deletionVector as DeletionVectorDescriptor | null) ?? undefined,
        });
      }
    }
  }
  const mode = columnMappingModeOf(configuration);
  return { schema: parseSchemaString(schemaString, mode, root), mode, partitionColumns, files: [...live.values()] };
}

/** All rows of a table at its latest version, as JSON lines (logical names, schema order). */
async function readTable(root: string): Promise<{ lines: string[]; schema: DeltaField[] }> {
  const snap = miniReplay(root);
  const dataFields = snap.schema.filter((f) => !snap.partitionColumns.includes(f.name));
  const lines: string[] = [];
  for (const file of snap.files) {
    const deleted = file.dv ? await loadDeletionVector(root, file.dv, root) : undefined;
    const partition: Row = {};
    for (const f of snap.schema) {
      if (!snap.partitionColumns.includes(f.name)) continue;
      const physical = snap.mode === 'none' ? f.name : f.physicalName;
      partition[f.name] = parsePartitionValue(file.partitionValues[physical] ?? file.partitionValues[f.name], f.type, f.name);
    }
    for await (const batch of readParquetRows(path.join(root, file.path), {
      fields: dataFields,
      columnMappingMode: snap.mode,
      keepRow: deleted ? (i) => !deleted.has(i) : undefined,
      batchSize: 7,
    })) {
      for (const row of batch) lines.push(jsonLine({ ...row, ...partition }, snap.schema));
    }
  }
  return { lines: lines.sort(), schema: snap.schema };
}

/** Spark-written expected parquet, read with the table's logical schema in mode 'none'. */
async function readExpected(name: string, schema: DeltaField[]): Promise<string[]> {
  const dir = path.join(SHARED_TABLES_DIR as string, 'expected', `${name}.snapshot.latest`);
  const logical = schema.map(stripMapping);
  const lines: string[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.parquet'))) {
    for await (const batch of readParquetRows(path.join(dir, f), { fields: logical, columnMappingMode: 'none' })) {
      for (const row of batch) lines.push(jsonLine(row, schema));
    }
  }
  return lines.sort();
}

function stripMapping(f: DeltaField): DeltaField {
  const type = f.type.kind === 'struct' ? { kind: 'struct' as const, fields: f.type.fields.map(stripMapping) } : f.type;
  return { ...f, type, physicalName: f.name, fieldId: undefined };
}

function jsonLine(row: Row, schema: DeltaField[]): string {
  return JSON.stringify(schema.map((f) => [f.name, toJsonValue(row[f.name] ?? null, f.type)]));
}

const SNAPSHOT_TABLES = [
  // data-reader-partition-values is compared separately below (timestamp caveat).
  'delta-kernel-rs/parquet-all-types',
  'delta-kernel-rs/data-reader-primitives',
  'delta-kernel-rs/decimal-various-scale-precision',
  'delta-kernel-rs/kernel-timestamp-int96',
  'delta-kernel-rs/data-reader-map',
  'delta-kernel-rs/table-with-columnmapping-mode-id',
  'delta-kernel-rs/data-reader-timestamp_ntz',
  'delta-kernel-rs/dv-partitioned-with-checkpoint',
  'delta-kernel-rs/dv-with-columnmapping',
  'delta-kernel-rs/basic-with-inserts-overwrite-restore',
  'delta-kernel-rs/basic-with-vacuum-protocol-check-feature',
];

describe('readParquetRows against Spark-written expected snapshots', () => {
  for (const table of SNAPSHOT_TABLES) {
    const name = path.basename(table);
    it(`reads ${table} to the same rows as expected/${name}.snapshot.latest`, async function () {
      const root = requireSharedTable(this, table);
      const { lines, schema } = await readTable(root);
      const expected = await readExpected(name, schema);
      assert.ok(expected.length > 0, 'expected snapshot has rows');
      assert.deepEqual(lines, expected);
    });
  }
});

describe('partition values (data-reader-partition-values)', () => {
  it('matches the expected snapshot on every column but the zone-less timestamp partition', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/data-reader-partition-values');
    const { lines, schema } = await readTable(root);
    const expected = await readExpected('data-reader-partition-values', schema);
    const drop = (line: string): string =>
      JSON.stringify((JSON.parse(line) as Array<[string, unknown]>).filter(([k]) => k !== 'as_timestamp'));
    assert.equal(lines.length, expected.length);
    assert.deepEqual(lines.map(drop).sort(), expected.map(drop).sort());
  });

  it("reads the zone-less timestamp partition '2021-09-08 11:11:11' as UTC (the protocol), 7 h before the Pacific-time writer's expected value", async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/data-reader-partition-values');
    const { lines, schema } = await readTable(root);
    const expected = await readExpected('data-reader-partition-values', schema);
    const ts = (all: string[]): string[] =>
      all.map((l) => (JSON.parse(l) as Array<[string, unknown]>).find(([k]) => k === 'as_timestamp')?.[1] as string).filter((v) => v !== null).sort();
    assert.deepEqual(ts(lines), ['2021-09-08T11:11:11Z', '2021-09-08T11:11:11Z']);
    const shifted = ts(expected).map((v) => new Date(Date.parse(v) - 7 * 3600_000).toISOString().replace('.000Z', 'Z'));
    assert.deepEqual(ts(lines), shifted);
  });
});

/** Cells of a pretty-printed expected table (`| a | b |` rows), keyed by header. */
function parsePrettyTable(file: string): Array<Record<string, string>> {
  const rows = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
  const [header, ...body] = rows;
  return body.map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i]])));
}

describe('readParquetRows on other real tables', () => {
  it('widens narrow physical types to the table type (type-widening, ints, floats, date)', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/type-widening');
    const { lines, schema } = await readTable(root);
    const expectedFile = path.join(SHARED_TABLES_DIR as string, 'expected', 'type-widening.snapshot.latest.widened-ints-floats-date.txt');
    const expected = parsePrettyTable(expectedFile);
    const cols = Object.keys(expected[0]);
    const actual = lines.map((l) => Object.fromEntries(JSON.parse(l) as Array<[string, unknown]>));
    assert.equal(actual.length, expected.length);
    const sortKey = (r: Record<string, unknown>): string => String(r.date_timestamp_ntz);
    actual.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
    expected.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
    for (let i = 0; i < expected.length; i++) {
      for (const c of cols) {
        const type = schema.find((f) => f.name === c)?.type;
        if (type?.kind === 'primitive' && type.name === 'double') assert.equal(actual[i][c], Number(expected[i][c]), c);
        else if (type?.kind === 'primitive' && type.name === 'long') assert.equal(String(actual[i][c]), expected[i][c], c);
        else assert.equal(actual[i][c], expected[i][c], c);
      }
    }
  });

  it('widens decimals to a larger scale and integers to decimals exactly (type-widening, decimals)', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/type-widening');
    const snap = miniReplay(root);
    const expectedFile = path.join(SHARED_TABLES_DIR as string, 'expected', 'type-widening.snapshot.latest.widened-decimals.txt');
    const expected = parsePrettyTable(expectedFile);
    const cols = Object.keys(expected[0]);
    const fields = snap.schema.filter((f) => cols.includes(f.name));
    const actual: Array<Record<string, unknown>> = [];
    for (const file of snap.files) {
      for await (const batch of readParquetRows(path.join(root, file.path), { fields, columnMappingMode: snap.mode })) actual.push(...batch);
    }
    const key = (r: Record<string, unknown>): string => String(r.int_decimal);
    assert.deepEqual(
      actual.map((r) => Object.fromEntries(cols.map((c) => [c, r[c]]))).sort((a, b) => key(a).localeCompare(key(b))),
      expected.sort((a, b) => key(a).localeCompare(key(b))),
    );
  });

  it('drops the rows of a file deletion vector (table-with-dv-small keeps 1..8)', async function () {
    const root = requireSharedTable(this, 'delta-rs/table-with-dv-small');
    const { lines } = await readTable(root);
    const expected = parsePrettyTable(path.join(SHARED_TABLES_DIR as string, 'expected', 'table-with-dv-small.snapshot.latest.txt'));
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as Array<[string, unknown]>)[0][1]).sort(),
      expected.map((r) => Number(r.value)).sort(),
    );
  });

  it('keeps INT96 timestamps near year 9999 exact (table_with_edge_timestamps)', async function () {
    const root = requireSharedTable(this, 'delta-rs/table_with_edge_timestamps');
    const { lines } = await readTable(root);
    const rows = lines.map((l) => Object.fromEntries(JSON.parse(l) as Array<[string, unknown]>));
    // The add actions' stats (written by the same writer) name the same instants.
    assert.deepEqual(
      rows.map((r) => [r.BIG_DATE, r.NORMAL_DATE, r.SOME_VALUE]).sort(),
      [
        ['9999-12-30T00:00:00Z', '2022-02-01T00:00:00Z', 2],
        ['9999-12-31T00:00:00Z', '2022-01-01T00:00:00Z', 1],
      ].sort(),
    );
  });

  it('reads ZSTD files by physical column name under column mapping name (table_with_column_mapping)', async function () {
    const root = requireSharedTable(this, 'delta-rs/table_with_column_mapping');
    const snap = miniReplay(root);
    assert.equal(snap.mode, 'name');
    const dataFields = snap.schema.filter((f) => !snap.partitionColumns.includes(f.name));
    assert.ok(dataFields.every((f) => f.physicalName !== f.name), 'physical names differ from logical ones');
    let total = 0;
    for (const file of snap.files) {
      const count = await parquetRowCount(path.join(root, file.path));
      let read = 0;
      for await (const batch of readParquetRows(path.join(root, file.path), { fields: dataFields, columnMappingMode: 'name' })) {
        for (const row of batch) {
          for (const f of dataFields) assert.equal(typeof row[f.name], 'string', `${f.name} is read, not null`);
          read++;
        }
      }
      assert.equal(read, count);
      total += read;
    }
    assert.equal(total, 5);
  });

  it('yields nothing for parquet files with zero row groups (simple_table)', async function () {
    const root = requireSharedTable(this, 'delta-rs/simple_table');
    const snap = miniReplay(root);
    const files = fs.readdirSync(root).filter((n) => n.endsWith('.parquet'));
    let empty = 0;
    for (const name of files) {
      if ((await parquetRowCount(path.join(root, name))) !== 0) continue;
      empty++;
      const batches: Row[][] = [];
      for await (const b of readParquetRows(path.join(root, name), { fields: snap.schema, columnMappingMode: 'none' })) batches.push(b);
      assert.deepEqual(batches, []);
    }
    assert.ok(empty > 0, 'the table has empty files');
  });

  it('reads a field missing from the file as null, and an extra column by its parquet name (cdc file)', async function () {
    const root = requireSharedTable(this, 'delta-rs/cdf-table');
    const snap = miniReplay(root);
    const cdcDir = path.join(root, '_change_data');
    const cdcFile = fs.readdirSync(cdcDir, { recursive: true, encoding: 'utf8' }).find((n) => n.endsWith('.parquet'));
    assert.ok(cdcFile);
    const dataFields = snap.schema.filter((f) => !snap.partitionColumns.includes(f.name));
    const added = field('added_later', long());
    const rows: Row[] = [];
    for await (const b of readParquetRows(path.join(cdcDir, cdcFile), {
      fields: [...dataFields, added],
      columnMappingMode: 'none',
      extraColumns: [{ name: '_change_type', type: string() }],
    })) rows.push(...b);
    assert.ok(rows.length > 0);
    for (const r of rows) {
      assert.equal(r.added_later, null);
      assert.ok(['insert', 'delete', 'update_preimage', 'update_postimage'].includes(r._change_type as string), String(r._change_type));
    }
  });

  it('filters by physical row index and batches as asked', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/parquet-all-types');
    const snap = miniReplay(root);
    const file = path.join(root, snap.files[0].path);
    const all: Row[] = [];
    for await (const b of readParquetRows(file, { fields: snap.schema, columnMappingMode: 'none' })) all.push(...b);
    const sizes: number[] = [];
    const odd: Row[] = [];
    for await (const b of readParquetRows(file, { fields: snap.schema, columnMappingMode: 'none', batchSize: 30, keepRow: (i) => i % 2 === 1 })) {
      sizes.push(b.length);
      odd.push(...b);
    }
    assert.equal(all.length, await parquetRowCount(file));
    assert.deepEqual(odd, all.filter((_, i) => i % 2 === 1));
    assert.ok(sizes.slice(0, -1).every((n) => n === 30) && sizes[sizes.length - 1] <= 30, sizes.join(','));
  });

  it('names the table and version when a data file is missing or not parquet', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/parquet-all-types');
    const snap = miniReplay(root);
    const read = async (file: string): Promise<void> => {
      for await (const _ of readParquetRows(file, { fields: snap.schema, columnMappingMode: 'none', table: root, version: 3 })) void _;
    };
    await expectSyncError(read(path.join(root, 'no-such-file.parquet')), { kind: 'delta-file', message: /no-such-file\.parquet.*missing/, table: root, version: 3 });
    await expectSyncError(read(path.join(root, '_delta_log', '00000000000000000000.json')), { kind: 'delta-file', message: /not a valid parquet file/ });
  });

  it('refuses a field whose Delta type cannot come from the file type, naming the column', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/parquet-all-types');
    const snap = miniReplay(root);
    const wrong: DeltaField = { ...(snap.schema.find((f) => f.name === 'StringType') as DeltaField), type: long() };
    await expectSyncError(
      async () => {
        for await (const _ of readParquetRows(path.join(root, snap.files[0].path), { fields: [wrong], columnMappingMode: 'none' })) void _;
      },
      { kind: 'delta-file', column: 'StringType' },
    );
  });
});
