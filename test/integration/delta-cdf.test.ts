import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import type { CdfRange } from '../../src/sync/delta/DeltaTable';
import type { ChangeRow, DeltaValue } from '../../src/sync/delta/types';
import { expectSyncError } from '../helpers/expectSyncError';
import { requireSharedTable, sharedTable } from '../helpers/sharedTables';
import { copyTableToTemp } from '../helpers/tempTableCopy';

/** Reads an expected/*.txt pretty table: header names and rows of trimmed cells. */
function readPretty(file: string): { header: string[]; rows: string[][] } {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('|'));
  const cells = (l: string): string[] => l.split('|').slice(1, -1).map((c) => c.trim());
  return { header: cells(lines[0]), rows: lines.slice(1).map(cells) };
}

/** Canonical text of a reader value, comparable with the reference's printed cell. */
function cell(v: DeltaValue | undefined, column: string, dateColumns: Set<string>): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' && dateColumns.has(column)) return new Date(v * 86_400_000).toISOString().slice(0, 10);
  if (typeof v === 'number' || typeof v === 'bigint') return String(Number(v));
  return String(v);
}

/** Doubles are printed as "100.0" by the reference: compare numbers numerically. */
function canonicalExpected(s: string): string {
  return /^-?\d+(\.\d+)?$/.test(s) ? String(Number(s)) : s;
}

async function collect(table: DeltaTable, range: CdfRange, batchSize = 1000): Promise<{ rows: ChangeRow[]; batches: number[] }> {
  const rows: ChangeRow[] = [];
  const batches: number[] = [];
  for await (const b of table.changes(range, { batchSize })) {
    batches.push(b.length);
    rows.push(...b);
  }
  return { rows, batches };
}

async function assertMatchesExpected(ctx: Mocha.Context, tableName: string, expectedFile: string, range: CdfRange): Promise<void> {
  const root = requireSharedTable(ctx, tableName);
  const file = sharedTable(`expected/${expectedFile}`);
  if (!file) ctx.skip();
  const exp = readPretty(file as string);
  const t = await DeltaTable.open(root);
  const snap = await t.snapshot();
  const dates = new Set(snap.schema.filter((f) => f.type.kind === 'primitive' && f.type.name === 'date').map((f) => f.name));
  const { rows } = await collect(t, range, 4);
  const actual = rows
    .map((r) =>
      exp.header
        .map((h) => {
          if (h === '_change_type') return r.changeType;
          if (h === '_commit_version') return String(r.commitVersion);
          if (h === '_commit_timestamp') return new Date(r.commitTimestamp).toISOString().slice(0, 23);
          return cell(r.values[h], h, dates);
        })
        .join('|'),
    )
    .sort();
  const expected = exp.rows.map((r) => r.map(canonicalExpected).join('|')).sort();
  assert.deepEqual(actual, expected);
  // Commit-version order across the stream.
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].commitVersion <= rows[i].commitVersion);
}

/** Every CDF error names the table and has a hint. */
const namesTableWithHint = { table: true, hint: true } as const;

describe('Delta Change Data Feed', function () {
  it('cdf-table from v0 equals the delta-rs result (cdc files with update pre/post images, partitioned by date)', async function () {
    await assertMatchesExpected(this, 'delta-rs/cdf-table', 'cdf-table.cdf.from-v0.txt', { startingVersion: 0 });
  });

  it('cdf-table up to an ending timestamp stops at the last version committed at or before it', async function () {
    await assertMatchesExpected(this, 'delta-rs/cdf-table', 'cdf-table.cdf.from-v0.to-ts-2023-12-22T17-10-21.675.txt', {
      startingVersion: 0,
      endingTimestamp: '2023-12-22T17:10:21.675',
    });
  });

  for (const [from, to] of [
    [0, 0],
    [0, 2],
    [1, 1],
    [2, 2],
  ]) {
    it(`cdf-table-simple v${from}..v${to} equals the delta-kernel-rs result (removes without cdc read as deletes)`, async function () {
      await assertMatchesExpected(this, 'delta-kernel-rs/cdf-table-simple', `cdf-table-simple.cdf.from-v${from}.to-v${to}.txt`, {
        startingVersion: from,
        endingVersion: to,
      });
    });
  }

  it('cdf-table-with-dv: deletion vector changes give only the newly deleted / un-deleted rows', async function () {
    await assertMatchesExpected(this, 'delta-kernel-rs/cdf-table-with-dv', 'cdf-table-with-dv.cdf.from-v0.txt', {});
  });

  it('cdf-column-mapping-name-mode from v1 reads cdc files by physical column names', async function () {
    await assertMatchesExpected(this, 'delta-kernel-rs/cdf-column-mapping-name-mode', 'cdf-column-mapping-name-mode.cdf.from-v1.txt', {
      startingVersion: 1,
    });
  });

  it('checkpoint-cdf-table from a starting timestamp starts at the first version committed at or after it', async function () {
    await assertMatchesExpected(this, 'delta-rs/checkpoint-cdf-table', 'checkpoint-cdf-table.cdf.from-ts-2024-01-06T15-44-59.570.txt', {
      startingTimestamp: '2024-01-06T15:44:59.570Z',
    });
    const t = await DeltaTable.open(requireSharedTable(this, 'delta-rs/checkpoint-cdf-table'));
    assert.deepEqual(await t.resolveCdfRange({ startingTimestamp: new Date('2024-01-06T15:44:59.570Z') }), { start: 3, end: 5 });
  });

  it('cdf-column-mapping-name-mode from v0 fails: CDF not enabled at version 0', async function () {
    const t = await DeltaTable.open(requireSharedTable(this, 'delta-kernel-rs/cdf-column-mapping-name-mode'));
    await expectSyncError(t.resolveCdfRange({ startingVersion: 0 }), { kind: 'cdf-not-enabled', version: 0, message: /version 0/, ...namesTableWithHint });
    await expectSyncError(collect(t, { startingVersion: 0 }), { kind: 'cdf-not-enabled', version: 0, ...namesTableWithHint });
  });

  it('checkpoint-cdf-table from v0 fails: the commits were cleaned up (even though a checkpoint covers them)', async function () {
    const t = await DeltaTable.open(requireSharedTable(this, 'delta-rs/checkpoint-cdf-table'));
    await expectSyncError(t.resolveCdfRange({ startingVersion: 0 }), { kind: 'cdf-range', version: 0, message: /version 0/, ...namesTableWithHint });
    await expectSyncError(collect(t, { startingVersion: 0 }), { kind: 'cdf-range', version: 0, ...namesTableWithHint });
  });

  it('refuses tables without CDF, empty ranges and ranges past the latest version', async function () {
    const plain = await DeltaTable.open(requireSharedTable(this, 'delta-rs/simple_table'));
    await expectSyncError(plain.resolveCdfRange({}), { kind: 'cdf-not-enabled', version: 0, ...namesTableWithHint });
    const t = await DeltaTable.open(requireSharedTable(this, 'delta-kernel-rs/cdf-table-simple'));
    const latest = await t.latestVersion();
    await expectSyncError(t.resolveCdfRange({ startingVersion: 2, endingVersion: 1 }), { kind: 'cdf-range', version: 2, message: /after ending version 1/, ...namesTableWithHint });
    await expectSyncError(t.resolveCdfRange({ startingVersion: latest + 1 }), { kind: 'cdf-range', version: latest + 1, message: /latest version/, ...namesTableWithHint });
    assert.deepEqual(await t.resolveCdfRange({ startingVersion: 1, endingVersion: latest + 10 }), { start: 1, end: latest });
  });

  it('the CDF of [a, c] is the CDF of [a, b] followed by the CDF of [b+1, c]', async function () {
    const t = await DeltaTable.open(requireSharedTable(this, 'delta-rs/cdf-table'));
    const text = (rows: ChangeRow[]): string[] =>
      rows.map((r) => JSON.stringify([r.changeType, r.commitVersion, r.commitTimestamp, r.values], (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))).sort();
    const whole = (await collect(t, { startingVersion: 0 })).rows;
    const a = (await collect(t, { startingVersion: 0, endingVersion: 1 })).rows;
    const b = (await collect(t, { startingVersion: 2 })).rows;
    assert.deepEqual(text(whole), text([...a, ...b]));
  });

  it('applying the whole CDF to an empty table gives the latest snapshot', async function () {
    for (const name of ['delta-rs/cdf-table', 'delta-kernel-rs/cdf-table-with-dv', 'delta-rs/cdf-table-non-partitioned']) {
      const root = sharedTable(name);
      if (!root) this.skip();
      const t = await DeltaTable.open(root as string);
      const snap = await t.snapshot();
      const enc = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? [...x] : x));
      // Net multiset: +1 per insert/postimage, -1 per delete/preimage.
      const net = new Map<string, number>();
      for (const r of (await collect(t, {})).rows) {
        const k = enc(snap.schema.map((f) => r.values[f.name]));
        const d = r.changeType === 'insert' || r.changeType === 'update_postimage' ? 1 : -1;
        net.set(k, (net.get(k) ?? 0) + d);
      }
      const fromCdf: string[] = [];
      for (const [k, n] of net) {
        assert.ok(n >= 0, `${name}: more deletes than inserts for ${k}`);
        for (let i = 0; i < n; i++) fromCdf.push(k);
      }
      const live: string[] = [];
      for await (const b of snap.rows()) for (const r of b) live.push(enc(snap.schema.map((f) => r[f.name])));
      assert.deepEqual(fromCdf.sort(), live.sort(), name);
    }
  });

  it('streams batches of at most batchSize rows', async function () {
    const t = await DeltaTable.open(requireSharedTable(this, 'delta-rs/cdf-table-non-partitioned'));
    const { rows, batches } = await collect(t, {}, 3);
    assert.ok(batches.length > 1);
    assert.ok(batches.every((n) => n > 0 && n <= 3));
    assert.equal(rows.length, batches.reduce((a, b) => a + b, 0));
    for (const r of rows.filter((x) => x.values.long_column !== undefined && x.values.long_column !== null)) assert.equal(typeof r.values.long_column, 'bigint');
  });

  it('a vacuumed data file fails the read before the first batch, naming file, table and version', async function () {
    const c = copyTableToTemp(requireSharedTable(this, 'delta-kernel-rs/cdf-table-simple'));
    try {
      const log1 = fs.readFileSync(path.join(c.root, '_delta_log', '00000000000000000001.json'), 'utf8');
      const removed = log1
        .split('\n')
        .filter((l) => l.includes('"remove"'))
        .map((l) => (JSON.parse(l) as { remove: { path: string } }).remove.path)[0];
      assert.ok(removed, 'version 1 removes a file');
      fs.rmSync(path.join(c.root, decodeURIComponent(removed)));
      const t = await DeltaTable.open(c.root);
      let batches = 0;
      const e = await expectSyncError(
        (async () => {
          for await (const _b of t.changes({ startingVersion: 0 })) batches++;
        })(),
        { kind: 'cdf-range', table: true, hint: /initial load/ },
      );
      assert.ok(e.message.includes(path.basename(decodeURIComponent(removed))), e.message);
      assert.equal(batches, 0);
      // Versions after the damage are still readable.
      assert.ok((await collect(t, { startingVersion: 2 })).rows.length > 0);
    } finally {
      c.cleanup();
    }
  });
});
