import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import type { DeltaValue, Row } from '../../src/sync/delta/types';
import { expectSyncError } from '../helpers/expectSyncError';
import { requireSharedTable, sharedTable } from '../helpers/sharedTables';
import { copyTableToTemp } from '../helpers/tempTableCopy';
import type * as HyparquetModule from 'hyparquet' with { 'resolution-mode': 'import' };

type Hyparquet = typeof HyparquetModule;

function norm(v: DeltaValue | unknown): unknown {
  if (typeof v === 'bigint') return `${v}`;
  return v;
}

function key(r: Record<string, unknown>): string {
  return JSON.stringify(Object.keys(r).sort().map((k) => [k, norm(r[k])]));
}

async function readAll(root: string, spec: { version?: number; timestamp?: string | Date } = {}, batchSize = 1000): Promise<{ rows: Row[]; version: number; batches: number[] }> {
  const s = await (await DeltaTable.open(root)).snapshot(spec);
  const rows: Row[] = [];
  const batches: number[] = [];
  for await (const b of s.rows({ batchSize })) {
    batches.push(b.length);
    rows.push(...b);
  }
  return { rows, version: s.version, batches };
}

/** The Spark-written expected snapshot, read with hyparquet directly (not through the reader under test). */
async function expectedSnapshot(name: string): Promise<string[] | undefined> {
  const dir = sharedTable(`expected/${name}.snapshot.latest`);
  if (!dir) return undefined;
  const hp: Hyparquet = await import('hyparquet');
  const { compressors } = await import('hyparquet-compressors');
  const out: string[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.parquet') && !n.startsWith('.')).sort()) {
    const rows = await hp.parquetReadObjects({ file: await hp.asyncBufferFromFile(path.join(dir, f)), compressors });
    for (const r of rows) out.push(key(r as Record<string, unknown>));
  }
  return out.sort();
}

function ids(rows: Row[], col = 'id'): string[] {
  return rows.map((r) => String(r[col])).sort((a, b) => Number(a) - Number(b));
}

describe('Delta snapshots', function () {
  it('simple_table: latest is ids 5, 7, 9 in 5 live files; version 0 is ids 0..4 (delta-rs test values)', async function () {
    const root = requireSharedTable(this, 'delta-rs/simple_table');
    const latest = await readAll(root);
    assert.equal(latest.version, 4);
    assert.deepEqual(ids(latest.rows), ['5', '7', '9']);
    assert.equal(typeof latest.rows[0].id, 'bigint');
    assert.equal((await (await DeltaTable.open(root)).snapshot()).files.length, 5);
    assert.deepEqual(ids((await readAll(root, { version: 0 })).rows), ['0', '1', '2', '3', '4']);
  });

  it('simple_table_with_checkpoint: the checkpoint replay equals the commit-only replay', async function () {
    const root = requireSharedTable(this, 'delta-rs/simple_table_with_checkpoint');
    const viaCheckpoint = await readAll(root);
    assert.equal(viaCheckpoint.version, 10);
    const c = copyTableToTemp(root);
    try {
      fs.rmSync(path.join(c.root, '_delta_log', '00000000000000000010.checkpoint.parquet'));
      fs.rmSync(path.join(c.root, '_delta_log', '_last_checkpoint'));
      const viaCommits = await readAll(c.root);
      assert.deepEqual(viaCheckpoint.rows.map(key).sort(), viaCommits.rows.map(key).sort());
    } finally {
      c.cleanup();
    }
  });

  it('checkpoint-v2-table: reads ids 1..44 (identity high-water mark 44) through a v2 checkpoint', async function () {
    const root = requireSharedTable(this, 'delta-rs/checkpoint-v2-table');
    const r = await readAll(root);
    assert.equal(r.version, 9);
    const expected = Array.from({ length: 44 }, (_, i) => String(i + 1));
    assert.deepEqual(ids(r.rows), expected);
    assert.equal(typeof r.rows[0].created_at, 'bigint');
  });

  it('multi-part-checkpoint: equals the Spark-written expected snapshot', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/multi-part-checkpoint');
    const exp = await expectedSnapshot('multi-part-checkpoint');
    if (!exp) this.skip();
    assert.deepEqual((await readAll(root)).rows.map(key).sort(), exp);
  });

  it('basic-with-inserts-overwrite-restore: time travel to each version (100, 200, 500 rows; RESTORE to v1)', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/basic-with-inserts-overwrite-restore');
    // Expected counts from the writer's commitInfo.operationMetrics.numOutputRows:
    // v0 writes 100, v1 appends 100, v2 overwrites with 500, v3 restores version 1.
    const metrics = [0, 1, 2].map((v) => {
      const line = fs
        .readFileSync(path.join(root, '_delta_log', `${String(v).padStart(20, '0')}.json`), 'utf8')
        .split('\n')
        .find((l) => l.includes('"commitInfo"'));
      return Number((JSON.parse(line ?? '{}') as { commitInfo: { operationMetrics: { numOutputRows: string } } }).commitInfo.operationMetrics.numOutputRows);
    });
    const v0 = await readAll(root, { version: 0 });
    const v1 = await readAll(root, { version: 1 });
    const v2 = await readAll(root, { version: 2 });
    const v3 = await readAll(root, { version: 3 });
    assert.equal(v0.rows.length, metrics[0]);
    assert.equal(v1.rows.length, metrics[0] + metrics[1]);
    assert.equal(v2.rows.length, metrics[2]);
    assert.deepEqual(v3.rows.map(key).sort(), v1.rows.map(key).sort());
    const exp = await expectedSnapshot('basic-with-inserts-overwrite-restore');
    if (exp) assert.deepEqual(v3.rows.map(key).sort(), exp);
  });

  it('time travels by timestamp: the latest version committed at or before it, UTC when no zone', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/basic-with-inserts-overwrite-restore');
    const t = await DeltaTable.open(root);
    const h = (await t.history()).reverse();
    const ts = h.map((e) => e.timestamp);
    assert.equal((await t.snapshot({ timestamp: new Date(ts[1]) })).version, 1);
    assert.equal((await t.snapshot({ timestamp: new Date(ts[1] - 1) })).version, 0);
    assert.equal((await t.snapshot({ timestamp: new Date(ts[2] + 1).toISOString().replace('Z', '') })).version, 2);
    assert.equal((await t.snapshot({ timestamp: '2999-01-01T00:00:00Z' })).version, 3);
    const s = await t.snapshot({ timestamp: new Date(ts[0]).toISOString() });
    assert.equal(s.version, 0);
    assert.equal(s.timestamp, ts[0]);
    await expectSyncError(t.snapshot({ timestamp: new Date(ts[0] - 1) }), { kind: 'time-travel', message: /at or before/ });
    await expectSyncError(t.snapshot({ version: 4 }), { kind: 'time-travel', message: /latest version is 3/ });
  });

  it('table-with-dv-small: values 1..8 at the latest version, the 10 rows 0..9 at version 0', async function () {
    const root = requireSharedTable(this, 'delta-rs/table-with-dv-small');
    const latest = await readAll(root, {}, 3);
    assert.deepEqual(ids(latest.rows, 'value'), ['1', '2', '3', '4', '5', '6', '7', '8']);
    assert.ok(latest.batches.every((n) => n <= 3));
    assert.deepEqual(ids((await readAll(root, { version: 0 })).rows, 'value'), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const d = (await (await DeltaTable.open(root)).snapshot()).describe();
    assert.equal(d.numRows, 8);
    assert.ok(d.readerFeatures.includes('deletionVectors'));
  });

  it('delta-0.8.0-null-partition: a null partition value (__HIVE_DEFAULT_PARTITION__ folder) reads as null', async function () {
    const root = requireSharedTable(this, 'delta-rs/delta-0.8.0-null-partition');
    const r = await readAll(root);
    assert.deepEqual(r.rows.map(key).sort(), [key({ k: 'A', v: 1n }), key({ k: null, v: 2n })].sort());
  });

  it('delta-0.8.0-special-partition: URL-encoded partition folders decode once to "A/A" and "B B"', async function () {
    const root = requireSharedTable(this, 'delta-rs/delta-0.8.0-special-partition');
    const r = await readAll(root);
    assert.deepEqual(r.rows.map((x) => x.x).sort(), ['A/A', 'B B']);
  });

  it('table_with_column_mapping: logical names, a partition column with spaces keyed by physical name', async function () {
    const root = requireSharedTable(this, 'delta-rs/table_with_column_mapping');
    const s = await (await DeltaTable.open(root)).snapshot();
    assert.equal(s.columnMappingMode, 'name');
    const r = await readAll(root);
    assert.deepEqual(Object.keys(r.rows[0]), ['Company Very Short', 'Super Name']);
    const byCompany = new Map<string, number>();
    for (const row of r.rows) byCompany.set(String(row['Company Very Short']), (byCompany.get(String(row['Company Very Short'])) ?? 0) + 1);
    // stats.numRecords in the log: 4 rows in partition BMS, 1 in BME.
    assert.deepEqual([...byCompany.entries()].sort(), [['BME', 1], ['BMS', 4]]);
    assert.ok(r.rows.some((x) => x['Super Name'] === 'Timothy Lamb' && x['Company Very Short'] === 'BME'));
  });

  it('puts partition columns where the schema has them', async function () {
    const root = requireSharedTable(this, 'delta-rs/cdf-table');
    const s = await (await DeltaTable.open(root)).snapshot();
    const r = await readAll(root);
    assert.deepEqual(Object.keys(r.rows[0]), s.schema.map((f) => f.name));
  });

  it('reports a missing data file as delta-file naming the file and the version', async function () {
    const c = copyTableToTemp(requireSharedTable(this, 'delta-rs/table-without-dv-small'));
    try {
      const s = await (await DeltaTable.open(c.root)).snapshot();
      const victim = s.files[0].path;
      fs.rmSync(path.join(c.root, victim));
      const e = await expectSyncError(readAll(c.root), { kind: 'delta-file', version: s.version });
      assert.ok(e.message.includes(victim), e.message);
    } finally {
      c.cleanup();
    }
  });

  it('stops with a cancelled error when the signal is aborted', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/basic-with-inserts-overwrite-restore');
    const ac = new AbortController();
    const s = await (await DeltaTable.open(root)).snapshot();
    await expectSyncError(
      (async () => {
        for await (const b of s.rows({ batchSize: 10, signal: ac.signal })) {
          assert.ok(b.length <= 10);
          ac.abort();
        }
      })(),
      { kind: 'cancelled' },
    );
  });
});
