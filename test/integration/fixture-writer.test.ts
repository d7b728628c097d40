import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChangeRow, ChangeType, DeltaField, DeltaType, DeltaValue, Row } from '../../src/sync/delta/types';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { DeltaTableWriter, type WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import {
  CUSTOMER_PROFILE_COLUMNS,
  applySampleChanges,
  createCustomerProfilesTable,
  customerAt,
  customerId,
  upgradedCustomer,
} from '../../src/fixtures/customerProfiles';
import { binary, boolean, byte, date, decimal, double, float, integer, long, short, string, timestamp, timestampNtz } from '../builders/deltaFields';

/**
 * The fixture writer must write REAL Delta tables. Checked three ways, none of them
 * through the writer's own internals: the raw log lines, the parquet files read with
 * hyparquet directly, and the engine's reader (snapshots and CDF) against a model of the
 * operations kept by the test itself.
 */

type Json = Record<string, unknown>;

async function hyparquet(): Promise<typeof import('hyparquet', { with: { 'resolution-mode': 'import' } })> {
  return import('hyparquet');
}

async function readLog(dir: string): Promise<Json[][]> {
  const logDir = path.join(dir, '_delta_log');
  const names = (await fs.readdir(logDir)).filter((n) => /^\d{20}\.json$/.test(n)).sort();
  const out: Json[][] = [];
  for (const name of names) {
    assert.equal(Number(name.slice(0, 20)), out.length, 'commit files are consecutive from 0');
    const text = await fs.readFile(path.join(logDir, name), 'utf8');
    out.push(text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Json));
  }
  return out;
}

function actionsOf(commit: Json[], kind: string): Json[] {
  return commit.filter((a) => a[kind] !== undefined).map((a) => a[kind] as Json);
}

async function readParquetRaw(file: string): Promise<{ rows: Record<string, unknown>[]; schema: import('hyparquet', { with: { 'resolution-mode': 'import' } }).SchemaElement[] }> {
  const hp = await hyparquet();
  const bytes = await fs.readFile(file);
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const metadata = hp.parquetMetadata(buf);
  const rows = await hp.parquetReadObjects({
    file: buf,
    parsers: { timestampFromMicroseconds: (v: bigint) => v, dateFromDays: (d: number) => d },
  });
  return { rows, schema: metadata.schema };
}

/** Exact text of a value, tagged with its JS type, so representation errors show. */
function canon(v: DeltaValue | undefined): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `0x${Buffer.from(v).toString('hex')}`;
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  return JSON.stringify(v);
}

function canonRow(row: Row, columns: readonly WriterColumn[]): string {
  return columns.map((c) => `${c.name}=${canon(row[c.name])}`).join(' ');
}

function sortedRows(rows: Row[], columns: readonly WriterColumn[]): string[] {
  return rows.map((r) => canonRow(r, columns)).sort();
}

async function snapshotRows(dir: string, version: number): Promise<Row[]> {
  const table = await DeltaTable.open(dir);
  const snap = await table.snapshot({ version });
  const out: Row[] = [];
  for await (const batch of snap.rows({ batchSize: 7 })) out.push(...batch);
  return out;
}

async function changeRows(dir: string, startingVersion: number, endingVersion: number): Promise<ChangeRow[]> {
  const table = await DeltaTable.open(dir);
  const out: ChangeRow[] = [];
  for await (const batch of table.changes({ startingVersion, endingVersion })) out.push(...batch);
  return out;
}

/** The test's own model of the table: content per version and the CDF each version must yield. */
class Model {
  readonly rows = new Map<string, Row>();
  readonly snapshots: Row[][] = [];
  readonly changes: { version: number; changeType: ChangeType; row: Row }[] = [];
  constructor(private readonly key: string) {}
  private k(v: DeltaValue | undefined): string {
    return canon(v);
  }
  insert(version: number, rows: Row[]): void {
    for (const r of rows) {
      this.rows.set(this.k(r[this.key]), r);
      this.changes.push({ version, changeType: 'insert', row: r });
    }
  }
  update(version: number, rows: Row[]): void {
    for (const r of rows) {
      const old = this.rows.get(this.k(r[this.key]));
      assert.ok(old, 'model: updated key exists');
      const next = { ...old, ...r };
      this.rows.set(this.k(r[this.key]), next);
      this.changes.push({ version, changeType: 'update_preimage', row: old }, { version, changeType: 'update_postimage', row: next });
    }
  }
  delete(version: number, keys: DeltaValue[]): void {
    for (const key of keys) {
      const old = this.rows.get(this.k(key));
      if (!old) continue;
      this.rows.delete(this.k(key));
      this.changes.push({ version, changeType: 'delete', row: old });
    }
  }
  commit(version: number): void {
    assert.equal(this.snapshots.length, version, 'model versions are consecutive');
    this.snapshots.push([...this.rows.values()]);
  }
  changesIn(from: number, to: number): { version: number; changeType: ChangeType; row: Row }[] {
    return this.changes.filter((c) => c.version >= from && c.version <= to);
  }
}

function canonChanges(changes: { version: number; changeType: string; row: Row }[], columns: readonly WriterColumn[]): string[] {
  return changes.map((c) => `v${c.version} ${c.changeType} ${canonRow(c.row, columns)}`).sort();
}

describe('DeltaTableWriter (fixture writer)', function () {
  this.timeout(120_000);
  let tmp: string;

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'fixture-writer-'));
  });
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  describe('log and files', () => {
    it('version 0 holds commitInfo, a protocol and a metaData whose schemaString describes the columns', async () => {
      const dir = path.join(tmp, 'v0');
      await DeltaTableWriter.create(dir, {
        columns: [
          { name: 'id', type: long(), nullable: false },
          { name: 'amount', type: decimal(10, 2), metadata: { comment: 'money' } },
          { name: 'p', type: string() },
        ],
        partitionColumns: ['p'],
        configuration: { 'delta.enableChangeDataFeed': 'true' },
        timestamp: 1_700_000_000_000,
      });
      const [commit] = await readLog(dir);
      assert.ok(commit[0].commitInfo, 'commitInfo is the first action');
      const info = commit[0].commitInfo as Json;
      assert.equal(info.timestamp, 1_700_000_000_000);
      assert.equal(info.operation, 'CREATE TABLE');
      assert.deepEqual(actionsOf(commit, 'protocol'), [{ minReaderVersion: 1, minWriterVersion: 4 }]);
      const [meta] = actionsOf(commit, 'metaData');
      assert.deepEqual(meta.partitionColumns, ['p']);
      assert.deepEqual(meta.configuration, { 'delta.enableChangeDataFeed': 'true' });
      assert.deepEqual(meta.format, { provider: 'parquet', options: {} });
      assert.match(String(meta.id), /^[0-9a-f-]{36}$/);
      assert.deepEqual(JSON.parse(String(meta.schemaString)), {
        type: 'struct',
        fields: [
          { name: 'id', type: 'long', nullable: false, metadata: {} },
          { name: 'amount', type: 'decimal(10,2)', nullable: true, metadata: { comment: 'money' } },
          { name: 'p', type: 'string', nullable: true, metadata: {} },
        ],
      });
      const stat = await fs.stat(path.join(dir, '_delta_log', '00000000000000000000.json'));
      assert.equal(Math.round(stat.mtimeMs), 1_700_000_000_000, 'file mtime = commit timestamp');
    });

    it('deletion vectors and timestamp_ntz make the protocol 3/7 with their table features', async () => {
      const dir = path.join(tmp, 'features');
      await DeltaTableWriter.create(dir, {
        columns: [{ name: 'id', type: long() }, { name: 't', type: timestampNtz() }],
        configuration: { 'delta.enableDeletionVectors': 'true', 'delta.enableChangeDataFeed': 'true' },
      });
      const [protocol] = actionsOf((await readLog(dir))[0], 'protocol');
      assert.equal(protocol.minReaderVersion, 3);
      assert.equal(protocol.minWriterVersion, 7);
      assert.deepEqual([...(protocol.readerFeatures as string[])].sort(), ['deletionVectors', 'timestampNtz']);
      for (const f of ['deletionVectors', 'timestampNtz', 'changeDataFeed']) {
        assert.ok((protocol.writerFeatures as string[]).includes(f), `writer feature ${f}`);
      }
    });

    it('setProperties enabling deletion vectors upgrades a legacy protocol in the same commit', async () => {
      const dir = path.join(tmp, 'upgrade');
      const w = await DeltaTableWriter.create(dir, { columns: [{ name: 'id', type: long() }] });
      const v = await w.setProperties({ 'delta.enableDeletionVectors': 'true' });
      const commit = (await readLog(dir))[v];
      assert.equal((commit[0].commitInfo as Json).operation, 'SET TBLPROPERTIES');
      const [protocol] = actionsOf(commit, 'protocol');
      assert.equal(protocol.minReaderVersion, 3);
      assert.deepEqual(protocol.readerFeatures, ['deletionVectors']);
      assert.deepEqual(actionsOf(commit, 'metaData')[0].configuration, { 'delta.enableDeletionVectors': 'true' });
    });

    it('append writes parquet files with Spark encodings that hyparquet reads back as the rows given', async () => {
      const dir = path.join(tmp, 'types');
      const columns: WriterColumn[] = [
        { name: 'id', type: long(), nullable: false },
        { name: 'i', type: integer() },
        { name: 'b', type: byte() },
        { name: 'sh', type: short() },
        { name: 'f', type: float() },
        { name: 'd', type: double() },
        { name: 'flag', type: boolean() },
        { name: 's', type: string() },
        { name: 'bin', type: binary() },
        { name: 'day', type: date() },
        { name: 'ts', type: timestamp() },
        { name: 'ntz', type: timestampNtz() },
        { name: 'd9', type: decimal(9, 3) },
        { name: 'd18', type: decimal(18, 2) },
        { name: 'd38', type: decimal(38, 6) },
      ];
      const rows: Row[] = [
        {
          id: 9_007_199_254_740_993n, i: -2147483648, b: -128, sh: 32767, f: 1.5, d: -0.1, flag: true, s: 'héllo',
          bin: new Uint8Array([0, 255]), day: 19_723, ts: 1_704_067_200_123_456n, ntz: -1n,
          d9: '-999999.999', d18: '9999999999999999.99', d38: '-12345678901234567890123456789012.123456',
        },
        { id: 2n, i: null, b: null, sh: null, f: null, d: null, flag: null, s: null, bin: null, day: null, ts: null, ntz: null, d9: null, d18: null, d38: null },
      ];
      const w = await DeltaTableWriter.create(dir, { columns });
      const v = await w.append(rows, { timestamp: 1_700_000_000_500 });
      const [add] = actionsOf((await readLog(dir))[v], 'add');
      assert.equal(add.dataChange, true);
      assert.equal(add.modificationTime, 1_700_000_000_500);
      assert.deepEqual(add.partitionValues, {});
      const file = path.join(dir, decodeURIComponent(String(add.path)));
      assert.equal(add.size, (await fs.stat(file)).size, 'add.size is the file size');
      const stats = JSON.parse(String(add.stats)) as Json;
      assert.equal(stats.numRecords, 2);
      assert.equal((stats.nullCount as Json).s, 1);

      const { rows: raw, schema } = await readParquetRaw(file);
      const el = (name: string): Json => schema.find((e) => e.name === name) as unknown as Json;
      assert.equal(el('id').type, 'INT64');
      assert.equal(el('id').repetition_type, 'REQUIRED');
      assert.equal(el('ts').type, 'INT64');
      assert.deepEqual(el('ts').logical_type, { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' });
      assert.deepEqual(el('ntz').logical_type, { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' });
      assert.equal(el('day').converted_type, 'DATE');
      assert.equal(el('d9').type, 'INT32');
      assert.equal(el('d18').type, 'INT64');
      assert.equal(el('d38').type, 'FIXED_LEN_BYTE_ARRAY');
      assert.equal(el('d38').type_length, 16);
      assert.equal(el('b').converted_type, 'INT_8');
      assert.equal(el('bin').converted_type, undefined);
      assert.equal(raw.length, 2);
      assert.equal(raw[0].id, 9_007_199_254_740_993n);
      assert.equal(raw[0].ts, 1_704_067_200_123_456n);
      assert.equal(raw[0].ntz, -1n);
      assert.equal(raw[0].day, 19_723);
      assert.equal(raw[0].s, 'héllo');
      assert.ok(Math.abs(Number(raw[0].d9) + 999999.999) < 1e-6, 'hyparquet scales decimals to (inexact) numbers');
      assert.equal(raw[1].s, null);

      // The engine's reader returns every value exactly, in the contract's representation.
      assert.deepEqual(sortedRows(await snapshotRows(dir, v), columns), sortedRows(rows, columns));
    });

    it('partitioned appends use Hive directories, URL-encoded paths and keep partition columns out of the files', async () => {
      const dir = path.join(tmp, 'parts');
      const columns: WriterColumn[] = [{ name: 'id', type: long() }, { name: 'p', type: string() }, { name: 'day', type: date() }];
      const w = await DeltaTableWriter.create(dir, { columns, partitionColumns: ['p', 'day'] });
      const rows: Row[] = [
        { id: 1n, p: 'a/b c%', day: 0 },
        { id: 2n, p: null, day: 19_000 },
        { id: 3n, p: 'a/b c%', day: 0 },
      ];
      const v = await w.append(rows);
      const adds = actionsOf((await readLog(dir))[v], 'add');
      assert.equal(adds.length, 2, 'one file per partition');
      const special = adds.find((a) => (a.partitionValues as Json).p === 'a/b c%');
      assert.ok(special);
      assert.deepEqual(special.partitionValues, { p: 'a/b c%', day: '1970-01-01' });
      assert.match(String(special.path), /^p=a%252Fb%20c%2525\/day=1970-01-01\/part-/);
      const onDisk = path.join(dir, decodeURIComponent(String(special.path)));
      assert.ok(onDisk.includes(`${path.sep}p=a%2Fb c%25${path.sep}`));
      const { rows: raw, schema } = await readParquetRaw(onDisk);
      assert.deepEqual(schema.slice(1).map((e) => e.name), ['id']);
      assert.deepEqual(raw.map((r) => r.id).sort(), [1n, 3n]);
      const nullPart = adds.find((a) => (a.partitionValues as Json).p === null);
      assert.ok(nullPart && String(nullPart.path).startsWith('p=__HIVE_DEFAULT_PARTITION__/day=2022-01-08/'));
      assert.deepEqual(sortedRows(await snapshotRows(dir, v), columns), sortedRows(rows, columns));
    });

    it('partition columns of every partitionable type round-trip through the reader', async () => {
      const dir = path.join(tmp, 'part-types');
      const columns: WriterColumn[] = [
        { name: 'id', type: long(), nullable: false },
        { name: 'pl', type: long() },
        { name: 'pi', type: integer() },
        { name: 'pb', type: boolean() },
        { name: 'pd', type: date() },
        { name: 'pts', type: timestamp() },
        { name: 'pntz', type: timestampNtz() },
        { name: 'pdec', type: decimal(20, 4) },
        { name: 'pdbl', type: double() },
      ];
      const parts = columns.slice(1).map((c) => c.name);
      const rows: Row[] = [
        { id: 1n, pl: -9_007_199_254_740_993n, pi: -7, pb: true, pd: -1, pts: 1_704_067_200_000_001n, pntz: 86_400_000_000n, pdec: '-1234567890123456.0001', pdbl: 0.5 },
        { id: 2n, pl: null, pi: null, pb: null, pd: null, pts: null, pntz: null, pdec: null, pdbl: null },
      ];
      const w = await DeltaTableWriter.create(dir, { columns, partitionColumns: parts });
      const v = await w.append(rows);
      const adds = actionsOf((await readLog(dir))[v], 'add');
      const first = adds.find((a) => (a.partitionValues as Json).pl !== null);
      assert.deepEqual(first?.partitionValues, {
        pl: '-9007199254740993', pi: '-7', pb: 'true', pd: '1969-12-31', pts: '2024-01-01T00:00:00.000001Z',
        pntz: '1970-01-02 00:00:00.000000', pdec: '-1234567890123456.0001', pdbl: '0.5',
      });
      assert.deepEqual(sortedRows(await snapshotRows(dir, v), columns), sortedRows(rows, columns));
    });

    it('an update writes remove + add and _change_data files with update_preimage/update_postimage rows', async () => {
      const dir = path.join(tmp, 'update-cdc');
      const columns: WriterColumn[] = [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }];
      const w = await DeltaTableWriter.create(dir, { columns, configuration: { 'delta.enableChangeDataFeed': 'true' } });
      await w.append([{ id: 1n, name: 'one' }, { id: 2n, name: 'two' }, { id: 3n, name: 'three' }], { rowsPerFile: 2 });
      const v = await w.update('id', [{ id: 3n, name: 'THREE' }]);
      const commit = (await readLog(dir))[v];
      assert.equal((commit[0].commitInfo as Json).operation, 'UPDATE');
      const removes = actionsOf(commit, 'remove');
      assert.equal(removes.length, 1, 'only the file holding id 3 is rewritten');
      assert.equal(removes[0].dataChange, true);
      assert.equal(typeof removes[0].deletionTimestamp, 'number');
      const cdcs = actionsOf(commit, 'cdc');
      assert.equal(cdcs.length, 1);
      assert.equal(cdcs[0].dataChange, false);
      assert.match(String(cdcs[0].path), /^_change_data\/cdc-/);
      const { rows: cdcRows, schema } = await readParquetRaw(path.join(dir, decodeURIComponent(String(cdcs[0].path))));
      assert.deepEqual(schema.slice(1).map((e) => e.name), ['id', 'name', '_change_type']);
      assert.deepEqual(
        cdcRows.map((r) => `${String(r.id)} ${String(r.name)} ${String(r._change_type)}`).sort(),
        ['3 THREE update_postimage', '3 three update_preimage'],
      );
      const added = actionsOf(commit, 'add');
      assert.equal(added.length, 1);
      const { rows: rewritten } = await readParquetRaw(path.join(dir, decodeURIComponent(String(added[0].path))));
      assert.deepEqual(rewritten.map((r) => r.name), ['THREE']);
    });

    it('writeCdc: false writes no cdc files, and a table without CDF never gets any', async () => {
      const dir = path.join(tmp, 'no-cdc');
      const w = await DeltaTableWriter.create(dir, { columns: [{ name: 'id', type: long() }] });
      await w.append([{ id: 1n }, { id: 2n }]);
      const v1 = await w.delete('id', [1n]);
      const dir2 = path.join(tmp, 'no-cdc-2');
      const w2 = await DeltaTableWriter.create(dir2, { columns: [{ name: 'id', type: long() }], configuration: { 'delta.enableChangeDataFeed': 'true' } });
      await w2.append([{ id: 1n }, { id: 2n }]);
      const v2 = await w2.delete('id', [1n], { writeCdc: false });
      assert.equal(actionsOf((await readLog(dir))[v1], 'cdc').length, 0);
      assert.equal(actionsOf((await readLog(dir2))[v2], 'cdc').length, 0);
      assert.equal(actionsOf((await readLog(dir2))[v2], 'remove').length, 1);
      await assert.rejects(fs.access(path.join(dir2, '_change_data')));
    });

    it('rejects values outside the reader contract and unknown columns', async () => {
      const dir = path.join(tmp, 'reject');
      const w = await DeltaTableWriter.create(dir, {
        columns: [{ name: 'id', type: long(), nullable: false }, { name: 'amt', type: decimal(4, 2) }],
      });
      await assert.rejects(w.append([{ id: 1, amt: null }]), /cannot hold the number 1/);
      await assert.rejects(w.append([{ id: 1n, amt: 1.5 }]), /cannot hold/);
      await assert.rejects(w.append([{ id: 1n, amt: '123.45' }]), /does not fit decimal\(4,2\)/);
      await assert.rejects(w.append([{ id: null, amt: '1.00' }]), /not nullable/);
      await assert.rejects(w.append([{ id: 1n, nope: 1 }]), /unknown column 'nope'/);
      assert.equal(w.version, 0, 'nothing was committed');
    });

    it('addColumns adds struct, array and map columns to the schema the reader sees (older rows read null); no rows are written after', async () => {
      const dir = path.join(tmp, 'nested-added');
      const w = await DeltaTableWriter.create(dir, { columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }] });
      await w.append([{ id: 1n, name: 'a' }, { id: 2n, name: 'b' }]);
      const fields: DeltaField[] = [
        { name: 'color', type: string(), nullable: true, metadata: {}, physicalName: 'color' },
        { name: 'size', type: integer(), nullable: true, metadata: {}, physicalName: 'size' },
      ];
      const attrs: DeltaType = { kind: 'struct', fields };
      const tags: DeltaType = { kind: 'array', elementType: string(), containsNull: true };
      const props: DeltaType = { kind: 'map', keyType: string(), valueType: long(), valueContainsNull: true };
      const v = await w.addColumns([{ name: 'attrs', type: attrs }, { name: 'tags', type: tags }, { name: 'props', type: props }]);
      const snap = await (await DeltaTable.open(dir)).snapshot({ version: v });
      assert.deepEqual(
        snap.schema.map((f) => [f.name, f.type]),
        [['id', long()], ['name', string()], ['attrs', attrs], ['tags', tags], ['props', props]],
      );
      const rows = (await snapshotRows(dir, v)).sort((a, b) => Number(a.id) - Number(b.id));
      assert.deepEqual(rows.map((r) => [r.id, r.name, r.attrs, r.tags, r.props]), [[1n, 'a', null, null, null], [2n, 'b', null, null, null]]);
      // The writer reopens it (the reader's parser reads its schema back) but writes no rows into it.
      const again = await DeltaTableWriter.open(dir);
      await assert.rejects(again.append([{ id: 3n, name: 'c' }]), /nested column 'attrs' \(struct<color: string, size: integer>\)/);
      assert.equal(again.version, v, 'nothing was committed');
    });
  });

  describe('checkpoint', () => {
    it('writes N.checkpoint.parquet with the protocol struct schema and one row per live action, and _last_checkpoint', async () => {
      const dir = path.join(tmp, 'checkpoint');
      const w = await DeltaTableWriter.create(dir, {
        columns: [{ name: 'id', type: long(), nullable: false }, { name: 'p', type: string() }],
        partitionColumns: ['p'],
        configuration: { 'delta.enableChangeDataFeed': 'true', 'delta.enableDeletionVectors': 'true' },
      });
      await w.append([1n, 2n, 3n, 4n].map((id) => ({ id, p: id % 2n ? 'odd' : 'even' })));
      await w.delete('id', [1n]);
      await w.deleteWithDeletionVector('id', [2n]);
      await w.checkpoint();
      const version = w.version;

      // Live files and tombstones replayed from the JSON log by the test itself.
      const live = new Map<string, Json>();
      const removed = new Set<string>();
      for (const commit of await readLog(dir)) {
        for (const r of actionsOf(commit, 'remove')) {
          live.delete(`${String(r.path)}|${JSON.stringify(r.deletionVector ?? null)}`);
          removed.add(String(r.path));
        }
        for (const a of actionsOf(commit, 'add')) live.set(`${String(a.path)}|${JSON.stringify(a.deletionVector ?? null)}`, a);
      }

      const last = JSON.parse(await fs.readFile(path.join(dir, '_delta_log', '_last_checkpoint'), 'utf8')) as Json;
      assert.equal(last.version, version);
      const cpFile = path.join(dir, '_delta_log', `${String(version).padStart(20, '0')}.checkpoint.parquet`);
      const { rows, schema } = await readParquetRaw(cpFile);
      assert.equal(last.size, rows.length);
      assert.equal(last.sizeInBytes, (await fs.stat(cpFile)).size);

      const hp = await hyparquet();
      const tree = hp.parquetSchema({ schema });
      const childNames = (name: string): string[] =>
        (tree.children.find((c) => c.element.name === name)?.children ?? []).map((c) => c.element.name);
      for (const f of ['add', 'remove', 'metaData', 'protocol']) assert.ok(childNames(f).length > 0, `${f} struct`);
      for (const f of ['path', 'partitionValues', 'size', 'modificationTime', 'dataChange', 'stats', 'deletionVector']) {
        assert.ok(childNames('add').includes(f), `add.${f}`);
      }
      for (const f of ['path', 'deletionTimestamp', 'dataChange']) assert.ok(childNames('remove').includes(f), `remove.${f}`);
      for (const f of ['id', 'format', 'schemaString', 'partitionColumns', 'configuration']) assert.ok(childNames('metaData').includes(f), `metaData.${f}`);
      for (const f of ['minReaderVersion', 'minWriterVersion', 'readerFeatures', 'writerFeatures']) {
        assert.ok(childNames('protocol').includes(f), `protocol.${f}`);
      }
      const partitionValuesEl = schema.find((e) => e.name === 'partitionValues');
      assert.equal(partitionValuesEl?.converted_type, 'MAP');

      const adds = rows.filter((r) => r.add).map((r) => r.add as Json);
      const protocols = rows.filter((r) => r.protocol).map((r) => r.protocol as Json);
      const metas = rows.filter((r) => r.metaData).map((r) => r.metaData as Json);
      assert.equal(protocols.length, 1);
      assert.equal(protocols[0].minReaderVersion, 3);
      assert.deepEqual(protocols[0].readerFeatures, ['deletionVectors']);
      assert.equal(metas.length, 1);
      assert.deepEqual(metas[0].partitionColumns, ['p']);
      assert.deepEqual(metas[0].configuration, { 'delta.enableChangeDataFeed': 'true', 'delta.enableDeletionVectors': 'true' });
      assert.deepEqual(adds.map((a) => String(a.path)).sort(), [...live.values()].map((a) => String(a.path)).sort());
      const withDv = adds.filter((a) => a.deletionVector);
      assert.equal(withDv.length, 1, 'the DV of the live file is in the checkpoint');
      assert.equal((withDv[0].deletionVector as Json).cardinality, 1n);
      const oddAdd = adds.find((a) => (a.partitionValues as Json).p === 'odd');
      assert.ok(oddAdd);
      assert.equal(typeof oddAdd.size, 'bigint');
      const tombstones = rows.filter((r) => r.remove).map((r) => String((r.remove as Json).path));
      assert.ok(tombstones.length > 0 && tombstones.every((t) => removed.has(t)));
      assert.ok(rows.every((r) => [r.add, r.remove, r.metaData, r.protocol].filter((x) => x !== undefined && x !== null).length === 1), 'one action per row');

      // A reader that starts from the checkpoint sees the same table as the JSON log.
      const cpRows = await snapshotRows(dir, version);
      assert.deepEqual(cpRows.map((r) => r.id).sort(), [3n, 4n]);
    });
  });

  describe('log cleanup and vacuum', () => {
    it('expireLog deletes commits before the latest checkpoint; the latest snapshot still reads from it', async () => {
      const dir = path.join(tmp, 'expire');
      const w = await DeltaTableWriter.create(dir, { columns: [{ name: 'id', type: long() }], configuration: { 'delta.enableChangeDataFeed': 'true' } });
      await w.append([{ id: 1n }]);
      await w.append([{ id: 2n }]);
      await w.checkpoint(); // at v2
      await w.append([{ id: 3n }]);
      assert.deepEqual(await w.expireLog(), ['00000000000000000000.json', '00000000000000000001.json']);
      assert.deepEqual((await snapshotRows(dir, 3)).map((r) => r.id).sort(), [1n, 2n, 3n]);
      await assert.rejects(snapshotRows(dir, 0));
      await assert.rejects(changeRows(dir, 0, 3));
      assert.deepEqual((await changeRows(dir, 3, 3)).map((c) => `${c.changeType} ${String(c.values.id)}`), ['insert 3']);
    });

    it('vacuum deletes unreferenced data, cdc and DV files, keeping the current snapshot readable', async () => {
      const dir = path.join(tmp, 'vacuum');
      const w = await DeltaTableWriter.create(dir, {
        columns: [{ name: 'id', type: long() }],
        configuration: { 'delta.enableChangeDataFeed': 'true', 'delta.enableDeletionVectors': 'true' },
      });
      await w.append([{ id: 1n }, { id: 2n }, { id: 3n }]);
      await w.deleteWithDeletionVector('id', [1n]);
      await w.deleteWithDeletionVector('id', [2n]); // the first DV file is now unreferenced
      await w.append([{ id: 4n }]);
      await w.delete('id', [4n]); // its file and a cdc file
      const deleted = await w.vacuum();
      assert.equal(deleted.filter((p) => p.startsWith('deletion_vector_')).length, 1);
      assert.equal(deleted.filter((p) => p.startsWith('_change_data')).length, 1);
      assert.equal(deleted.filter((p) => p.startsWith('part-')).length, 1);
      assert.deepEqual((await snapshotRows(dir, w.version)).map((r) => r.id), [3n]);
      await assert.rejects(changeRows(dir, 4, 5), 'the CDF of vacuumed versions fails');
    });
  });

  describe('deletion vectors', () => {
    it('a DV delete writes remove + add of the same path with a u-DV file (version byte, size, magic) and no cdc', async () => {
      const dir = path.join(tmp, 'dv');
      const w = await DeltaTableWriter.create(dir, {
        columns: [{ name: 'id', type: long(), nullable: false }],
        configuration: { 'delta.enableChangeDataFeed': 'true', 'delta.enableDeletionVectors': 'true' },
      });
      await w.append([1n, 2n, 3n, 4n, 5n].map((id) => ({ id })));
      const v = await w.deleteWithDeletionVector('id', [2n, 4n], { prefix: 'ab' });
      const commit = (await readLog(dir))[v];
      const [add] = actionsOf(commit, 'add');
      const [remove] = actionsOf(commit, 'remove');
      assert.equal(actionsOf(commit, 'cdc').length, 0);
      assert.equal(add.path, remove.path);
      assert.equal(remove.deletionVector, undefined);
      const dv = add.deletionVector as Json;
      assert.equal(dv.storageType, 'u');
      assert.equal(dv.cardinality, 2);
      assert.match(String(dv.pathOrInlineDv), /^ab.{20}$/);
      assert.equal(JSON.parse(String(add.stats)).tightBounds, false);
      const [bin] = (await fs.readdir(path.join(dir, 'ab'))).filter((n) => /^deletion_vector_[0-9a-f-]{36}\.bin$/.test(n));
      assert.ok(bin, 'DV file under the prefix folder');
      const bytes = await fs.readFile(path.join(dir, 'ab', bin));
      const offset = Number(dv.offset);
      assert.equal(bytes[0], 1, 'DV file format version 1');
      assert.equal(bytes.readInt32BE(offset), dv.sizeInBytes, 'size prefix at offset');
      assert.equal(bytes.readUInt32LE(offset + 4), 1681511377, 'RoaringBitmapArray magic number');
      assert.deepEqual((await snapshotRows(dir, v)).map((r) => r.id).sort(), [1n, 3n, 5n]);
      const cdf = await changeRows(dir, v, v);
      assert.deepEqual(cdf.map((c) => `${c.changeType} ${String(c.values.id)}`).sort(), ['delete 2', 'delete 4']);
    });

    it('requires the deletionVectors feature', async () => {
      const w = await DeltaTableWriter.create(path.join(tmp, 'no-dv'), { columns: [{ name: 'id', type: long() }] });
      await w.append([{ id: 1n }]);
      await assert.rejects(w.deleteWithDeletionVector('id', [1n]), /enableDeletionVectors/);
    });
  });

  describe('snapshots and CDF through the engine reader equal the operations', () => {
    const columns: WriterColumn[] = [
      { name: 'id', type: long(), nullable: false },
      { name: 'name', type: string() },
      { name: 'score', type: double() },
      { name: 'amount', type: decimal(12, 3) },
      { name: 'ts', type: timestamp() },
      { name: 'part', type: string() },
    ];
    const row = (id: number): Row => ({
      id: BigInt(id),
      name: id % 7 === 0 ? null : `name-${id}`,
      score: id / 8,
      amount: `${id * 3}.${String(id % 1000).padStart(3, '0')}`,
      ts: 1_700_000_000_000_000n + BigInt(id) * 1_000_001n,
      part: ['a', 'b', 'c'][id % 3],
    });
    let dir: string;
    const model = new Model('id');

    before(async () => {
      dir = path.join(tmp, 'model');
      const w = await DeltaTableWriter.create(dir, {
        columns,
        partitionColumns: ['part'],
        configuration: { 'delta.enableChangeDataFeed': 'true', 'delta.enableDeletionVectors': 'true' },
      });
      model.commit(0);
      const initial = Array.from({ length: 30 }, (_, i) => row(i + 1));
      model.insert(await w.append(initial, { rowsPerFile: 8, rowGroupSize: 3 }), initial);
      model.commit(1);
      // v2: a plain update and one that moves a row to another partition.
      const v2changes: Row[] = [{ id: 3n, name: 'three', amount: '-1.500' }, { id: 4n, part: 'c', score: -0 }];
      model.update(await w.update('id', v2changes), v2changes);
      model.commit(2);
      model.delete(await w.delete('id', [5n, 6n, 999n]), [5n, 6n, 999n]);
      model.commit(3);
      // v4: MERGE = update 7, delete 8, insert 100.
      const merged = [{ ...row(7), name: 'seven' }, row(100)];
      const v4 = await w.merge('id', merged, { deleteKeys: [8n] });
      model.update(v4, [merged[0]]);
      model.delete(v4, [8n]);
      model.insert(v4, [merged[1]]);
      model.commit(4);
      // v5: a whole partition deleted without cdc files (readers must use the removes).
      const partC = [...model.rows.values()].filter((r) => r.part === 'c').map((r) => r.id);
      model.delete(await w.deleteWhere((r) => r.part === 'c', { writeCdc: false }), partC);
      model.commit(5);
      model.delete(await w.deleteWithDeletionVector('id', [10n]), [10n]); // v6 file DV
      model.commit(6);
      model.delete(await w.deleteWithDeletionVector('id', [11n], { inline: true }), [11n]); // v7 inline DV
      model.commit(7);
      model.delete(await w.deleteWithDeletionVector('id', [13n]), [13n]); // v8 DV on a file that already has one
      model.commit(8);
      await w.checkpoint();
      assert.equal(await w.setProperties({ 'delta.logRetentionDuration': 'interval 30 days' }), 9);
      model.commit(9);
      // v10: copy-on-write of a file with a DV must not bring deleted rows back.
      const reopened = await DeltaTableWriter.open(dir);
      model.update(await reopened.update('id', [{ id: 16n, name: 'sixteen' }]), [{ id: 16n, name: 'sixteen' }]);
      model.commit(10);
      model.insert(await reopened.append([row(200), row(201)]), [row(200), row(201)]);
      model.commit(11);
    });

    it('v8 updated an existing DV: a remove carrying the old DV and an add with the larger one', async () => {
      const commit = (await readLog(dir))[8];
      const [remove] = actionsOf(commit, 'remove');
      const [add] = actionsOf(commit, 'add');
      assert.ok(remove.deletionVector, 'the remove names the previous DV');
      assert.equal(add.path, remove.path);
      assert.equal((add.deletionVector as Json).cardinality, 2);
    });

    it('the snapshot at every version equals the model', async () => {
      for (let v = 0; v < model.snapshots.length; v++) {
        assert.deepEqual(sortedRows(await snapshotRows(dir, v), columns), sortedRows(model.snapshots[v], columns), `version ${v}`);
      }
    });

    it('the CDF of each version equals the changes the operations made', async () => {
      for (let v = 1; v < model.snapshots.length; v++) {
        const got = (await changeRows(dir, v, v)).map((c) => ({ version: c.commitVersion, changeType: c.changeType, row: c.values }));
        assert.deepEqual(canonChanges(got, columns), canonChanges(model.changesIn(v, v), columns), `version ${v}`);
      }
    });

    it('the CDF of the whole range equals the model, with commit timestamps from commitInfo', async () => {
      const last = model.snapshots.length - 1;
      const changes = await changeRows(dir, 0, last);
      const got = changes.map((c) => ({ version: c.commitVersion, changeType: c.changeType, row: c.values }));
      assert.deepEqual(canonChanges(got, columns), canonChanges(model.changesIn(0, last), columns));
      const log = await readLog(dir);
      for (const c of changes) assert.equal(c.commitTimestamp, (log[c.commitVersion][0].commitInfo as Json).timestamp);
      const stamps = log.map((commit) => Number((commit[0].commitInfo as Json).timestamp));
      assert.ok(stamps.every((t, i) => i === 0 || t > stamps[i - 1]), 'commit timestamps increase strictly');
    });
  });

  describe('customer_profiles sample', () => {
    const rows = 200;
    let dir: string;
    let result: Awaited<ReturnType<typeof createCustomerProfilesTable>>;

    before(async () => {
      dir = path.join(tmp, 'customers');
      result = await createCustomerProfilesTable(dir, { rows });
    });

    it('has the seed article shape: 8 columns, customer_id not null, decimal(10,2) spend, CDF and DVs on', async () => {
      const [meta] = actionsOf((await readLog(dir))[0], 'metaData');
      const fields = (JSON.parse(String(meta.schemaString)) as { fields: Json[] }).fields;
      assert.deepEqual(
        fields.map((f) => `${String(f.name)}:${String(f.type)}:${String(f.nullable)}`),
        [
          'customer_id:string:false', 'full_name:string:true', 'email:string:true', 'segment:string:true',
          'last_purchase_date:timestamp:true', 'total_spend:decimal(10,2):true', 'propensity_score:double:true', 'is_active:boolean:true',
        ],
      );
      assert.equal((meta.configuration as Json)['delta.enableChangeDataFeed'], 'true');
      assert.equal(result.version, 5);
      assert.deepEqual(result.versions.map((v) => v.operation), ['CREATE TABLE', 'WRITE', 'UPDATE', 'DELETE', 'WRITE', 'DELETE']);
      await fs.access(path.join(dir, '_delta_log', '00000000000000000004.checkpoint.parquet'));
    });

    it('generates the same customers for the same seed and different ones for another seed', () => {
      assert.deepEqual(customerAt(17, 42), customerAt(17, 42));
      assert.notDeepEqual(customerAt(17, 42), customerAt(17, 43));
      assert.equal(customerAt(17).customer_id, 'cust_0000017');
    });

    it('every version of the sample reads back as its documented operations', async () => {
      // Written from createCustomerProfilesTable's documentation, not its code: v2 upgrades
      // every 50th customer from 1, v3 deletes every 50th from 2, v4 adds rows/10 more,
      // v5 deletes every 50th from 3 and the first new one.
      const every = (offset: number): number[] => Array.from({ length: rows }, (_, i) => i + 1).filter((i) => (i - offset) % 50 === 0);
      const model = new Model('customer_id');
      model.commit(0);
      model.insert(1, Array.from({ length: rows }, (_, i) => customerAt(i + 1)));
      model.commit(1);
      model.update(2, every(1).map((i) => upgradedCustomer(customerAt(i))));
      model.commit(2);
      model.delete(3, every(2).map(customerId));
      model.commit(3);
      model.insert(4, Array.from({ length: rows / 10 }, (_, i) => customerAt(rows + i + 1)));
      model.commit(4);
      model.delete(5, [...every(3), rows + 1].map(customerId));
      model.commit(5);
      for (let v = 0; v <= 5; v++) {
        assert.deepEqual(sortedRows(await snapshotRows(dir, v), CUSTOMER_PROFILE_COLUMNS), sortedRows(model.snapshots[v], CUSTOMER_PROFILE_COLUMNS), `version ${v}`);
      }
      const got = (await changeRows(dir, 0, 5)).map((c) => ({ version: c.commitVersion, changeType: c.changeType, row: c.values }));
      assert.deepEqual(canonChanges(got, CUSTOMER_PROFILE_COLUMNS), canonChanges(model.changesIn(0, 5), CUSTOMER_PROFILE_COLUMNS));
    });

    it('applySampleChanges adds one MERGE version with updates, inserts and deletes', async () => {
      const before = new Map((await snapshotRows(dir, 5)).map((r) => [String(r.customer_id), r]));
      const v = await applySampleChanges(dir);
      assert.equal(v, 6);
      const changes = await changeRows(dir, 6, 6);
      const types = changes.map((c) => c.changeType);
      assert.equal(types.filter((t) => t === 'update_postimage').length, 3);
      assert.equal(types.filter((t) => t === 'insert').length, 3);
      assert.equal(types.filter((t) => t === 'delete').length, 2);
      for (const c of changes.filter((x) => x.changeType === 'delete' || x.changeType === 'update_preimage')) {
        assert.ok(before.has(String(c.values.customer_id)), 'deleted/updated customers existed');
      }
      const after = await snapshotRows(dir, 6);
      assert.equal(after.length, before.size + 3 - 2);
      assert.equal(await applySampleChanges(dir), 7, 'a second round works too');
    });
  });
});
