import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { readParquetRows } from '../../src/sync/delta/parquetFile';
import { isSyncError } from '../../src/sync/errors';
import type { SyncErrorKind } from '../../src/sync/errors';
import type { ChangeRow, DeltaField, Row } from '../../src/sync/delta/types';
import { expectSyncError } from '../helpers/expectSyncError';
import { SHARED_TABLES_DIR } from '../helpers/sharedTables';
import {
  listExpectedFiles,
  locateTable,
  readPrettyTable,
  readmeIndex,
  readmeTables,
} from '../helpers/expectedTables';
import type { ExpectedCdfRange } from '../helpers/expectedTables';
import {
  Multiset,
  canonicalCell,
  canonicalChange,
  canonicalRow,
  canonicalValue,
  logicalFields,
  parseIsoMicros,
  sorted,
} from '../helpers/rowMultiset';

/**
 * Conformance of the Delta reader with what Spark, delta-rs and delta-kernel-rs return for
 * the same real tables (../shared/delta-tables, see its README). Test cases are generated
 * from the folder's contents, so a new expected file is a new test.
 */

const SHARED = SHARED_TABLES_DIR;
const META_COLUMNS = ['_change_type', '_commit_version', '_commit_timestamp'];

async function allRows(table: DeltaTable, version?: number): Promise<{ rows: Row[]; fields: DeltaField[] }> {
  const snapshot = await table.snapshot(version === undefined ? {} : { version });
  const rows: Row[] = [];
  for await (const batch of snapshot.rows({ batchSize: 1000 })) rows.push(...batch);
  return { rows, fields: snapshot.schema };
}

async function allChanges(table: DeltaTable, spec: ExpectedCdfRange): Promise<ChangeRow[]> {
  const out: ChangeRow[] = [];
  for await (const batch of table.changes(spec, { batchSize: 1000 })) out.push(...batch);
  return out;
}

async function readExpectedParquet(dir: string, fields: DeltaField[]): Promise<Row[]> {
  const rows: Row[] = [];
  const parts = fs.readdirSync(dir).filter((f) => f.endsWith('.parquet') && !f.startsWith('.'));
  for (const part of parts.sort()) {
    for await (const batch of readParquetRows(path.join(dir, part), { fields, columnMappingMode: 'none', batchSize: 1000 })) {
      rows.push(...batch);
    }
  }
  return rows;
}

describe('Delta reader conformance with Spark / delta-rs / delta-kernel-rs results', function () {
  if (!SHARED) {
    it('skips: the shared delta-tables folder is absent', function () {
      this.skip();
    });
    return;
  }
  const shared = SHARED;
  const expectedDir = path.join(shared, 'expected');
  const expected = listExpectedFiles(shared);

  describe('CDF equals the expected file, row for row (multiset)', function () {
    for (const e of expected) {
      if (e.kind !== 'cdf') continue;
      it(`${e.file}`, async function () {
        const pretty = readPrettyTable(path.join(expectedDir, e.file));
        const tablePath = locateTable(shared, e.table, pretty.comments);
        assert.ok(tablePath, `no table folder for ${e.table}`);
        const table = await DeltaTable.open(tablePath);
        const changes = await allChanges(table, e.range);
        const fields = (await table.snapshot({})).schema;

        // Same columns as the file: every table column, then the CDF metadata columns
        // (the kernel-rs files leave out _commit_timestamp).
        const dataColumns = pretty.columns.filter((c) => !META_COLUMNS.includes(c));
        assert.deepEqual(dataColumns, fields.map((f) => f.name), 'table columns');
        assert.deepEqual(
          pretty.columns.slice(dataColumns.length),
          META_COLUMNS.filter((c) => pretty.columns.includes(c)),
          'CDF columns follow the table columns',
        );

        const byName = new Map(fields.map((f) => [f.name, f]));
        const expectedRows = pretty.rows.map((cells) =>
          pretty.columns
            .map((c, i) => {
              const cell = cells[i];
              if (c === '_change_type') return `ct:${cell}`;
              if (c === '_commit_version') return `v:${cell}`;
              // Printed in UTC at millisecond precision, without a zone.
              if (c === '_commit_timestamp') return `t:${cell === null ? 'null' : Date.parse(`${cell}Z`)}`;
              return canonicalCell(cell, (byName.get(c) as DeltaField).type);
            })
            .join(' | '),
        );
        const actualRows = changes.map((ch) =>
          pretty.columns
            .map((c) => {
              if (c === '_change_type') return `ct:${ch.changeType}`;
              if (c === '_commit_version') return `v:${ch.commitVersion}`;
              if (c === '_commit_timestamp') return `t:${ch.commitTimestamp}`;
              return canonicalValue(ch.values[c], (byName.get(c) as DeltaField).type);
            })
            .join(' | '),
        );
        assert.deepEqual(sorted(actualRows), sorted(expectedRows));
      });
    }
  });

  describe('latest snapshot equals the Spark-written expected parquet (multiset)', function () {
    // data-reader-partition-values: the log holds the zone-less partition value
    // `2021-09-08 11:11:11`, and Spark (session zone UTC-7, PDT) wrote 2021-09-08T18:11:11Z in
    // the expected parquet. We follow the protocol and delta-kernel-rs: a zone-less partition
    // timestamp is UTC, so the reader must give 11:11:11Z. The test checks that both sides
    // hold exactly those two instants and compares everything else value for value.
    const PDT_SHIFT_MICROS = 7n * 3600n * 1_000_000n;

    for (const e of expected) {
      if (e.kind !== 'snapshot-parquet') continue;
      it(`${e.file}/`, async function () {
        const tablePath = locateTable(shared, e.table);
        assert.ok(tablePath, `no table folder for ${e.table}`);
        const table = await DeltaTable.open(tablePath);
        const { rows, fields } = await allRows(table);
        const expectedRows = await readExpectedParquet(path.join(expectedDir, e.file), logicalFields(fields));

        if (e.table === 'data-reader-partition-values') {
          const readerTs = new Set(rows.map((r) => String(r.as_timestamp)));
          const sparkTs = new Set(expectedRows.map((r) => String(r.as_timestamp)));
          const utc = parseIsoMicros('2021-09-08T11:11:11Z');
          assert.deepEqual(readerTs, new Set([String(utc), 'null']), 'reader: zone-less partition timestamp read as UTC');
          assert.deepEqual(sparkTs, new Set([String(utc + PDT_SHIFT_MICROS), 'null']), 'Spark wrote it shifted by 7 h');
          for (const r of expectedRows) {
            if (typeof r.as_timestamp === 'bigint') r.as_timestamp = r.as_timestamp - PDT_SHIFT_MICROS;
          }
        }
        assert.ok(expectedRows.length > 0, 'expected parquet holds rows');
        assert.deepEqual(
          sorted(rows.map((r) => canonicalRow(r, fields))),
          sorted(expectedRows.map((r) => canonicalRow(r, fields))),
        );
      });
    }
  });

  describe('latest snapshot equals the pretty-printed expected columns (multiset)', function () {
    for (const e of expected) {
      if (e.kind !== 'snapshot-text') continue;
      it(`${e.file}`, async function () {
        const pretty = readPrettyTable(path.join(expectedDir, e.file));
        const tablePath = locateTable(shared, e.table, pretty.comments);
        assert.ok(tablePath, `no table folder for ${e.table}`);
        const { rows, fields } = await allRows(await DeltaTable.open(tablePath));
        const byName = new Map(fields.map((f) => [f.name, f]));
        const columns = pretty.columns.map((c) => {
          const f = byName.get(c);
          assert.ok(f, `column ${c} of ${e.file} is in the table schema`);
          return f;
        });
        const actual = rows.map((r) => columns.map((f) => canonicalValue(r[f.name], f.type)).join(' | '));
        const wanted = pretty.rows.map((cells) => columns.map((f, i) => canonicalCell(cells[i], f.type)).join(' | '));
        assert.deepEqual(sorted(actual), sorted(wanted));
      });
    }
  });

  describe('every table of the README index reads at its latest version', function () {
    /** Whether the folder holds any parquet file outside `_delta_log/`. */
    function hasDataFiles(dir: string): boolean {
      return fs.readdirSync(dir, { withFileTypes: true }).some((entry) => {
        if (entry.name === '_delta_log') return false;
        if (entry.isDirectory()) return hasDataFiles(path.join(dir, entry.name));
        return entry.name.endsWith('.parquet');
      });
    }

    for (const id of readmeIndex(shared)) {
      it(`${id}`, async function () {
        const tablePath = path.join(shared, id);
        const table = await DeltaTable.open(tablePath);
        const snapshot = await table.snapshot({});
        if (!hasDataFiles(tablePath)) {
          // delta-rs ships checkpoint_with_partitions and checkpoints_vacuumed as logs only
          // (no data files in its repository either): the log replays, and reading rows
          // fails on the first missing file with a 'delta-file' error naming it.
          assert.ok(snapshot.files.length > 0, 'the log lists live files');
          await expectSyncError(
            async () => {
              for await (const batch of snapshot.rows({ batchSize: 500 })) void batch;
            },
            { kind: 'delta-file', message: /missing/ },
          );
          return;
        }
        let n = 0;
        for await (const batch of snapshot.rows({ batchSize: 500 })) {
          for (const row of batch) assert.deepEqual(Object.keys(row).sort(), snapshot.schema.map((f) => f.name).sort());
          n += batch.length;
        }
        const numRows = snapshot.describe().numRows;
        if (numRows !== null) assert.equal(n, numRows, 'rows read = numRecords from stats minus DV cardinalities');
      });
    }
  });

  describe('CDF is refused clearly where the README says it must fail', function () {
    const tables = readmeTables(shared);

    async function assertCdfFails(id: string, startingVersion: number, kinds: SyncErrorKind[]): Promise<void> {
      const name = path.basename(id);
      const table = await DeltaTable.open(path.join(shared, id));
      const e = await expectSyncError(allChanges(table, { startingVersion }), { kind: kinds });
      assert.ok(e.describe().includes(name), `message names the table: ${e.describe()}`);
      assert.match(e.describe(), /version \d+/i, 'message names the version');
    }

    it('cdf-column-mapping-name-mode from version 0 (CDF enabled at v1 only)', async function () {
      await assertCdfFails('delta-kernel-rs/cdf-column-mapping-name-mode', 0, ['cdf-not-enabled', 'cdf-range']);
    });
    it('checkpoint-cdf-table from version 0 (commits 0-2 cleaned up)', async function () {
      await assertCdfFails('delta-rs/checkpoint-cdf-table', 0, ['cdf-range', 'delta-log', 'time-travel']);
    });
    for (const t of tables.filter((x) => x.fields['Change Data Feed']?.startsWith('not enabled'))) {
      it(`${t.id} (CDF not enabled), from its latest version`, async function () {
        const latest = await (await DeltaTable.open(path.join(shared, t.id))).latestVersion();
        await assertCdfFails(t.id, latest, ['cdf-not-enabled']);
      });
    }
  });

  describe('CDF properties hold for every CDF table of the README', function () {
    const cdfTables = readmeTables(shared).filter((t) => t.fields['Change Data Feed']?.startsWith('enabled'));

    /**
     * The first version k from which the CDF can be replayed: CDF [k, latest] reads and, when
     * k > 0, the snapshot at k-1 exists (checkpoint-cdf-table: commits 0-2 are gone, so its
     * replay starts at 4 on top of the checkpointed version 3).
     */
    async function replayStart(table: DeltaTable, latest: number): Promise<number> {
      for (let k = 0; k <= latest; k++) {
        try {
          if (k > 0) await allRows(table, k - 1);
          await allChanges(table, { startingVersion: k, endingVersion: latest });
          return k;
        } catch (e) {
          if (!isSyncError(e)) throw e;
        }
      }
      throw new Error('no version from which the CDF can be read');
    }

    /**
     * Commits whose CDF does not describe a data change, so replay cannot reach the snapshot:
     * cdf-table-simple v2 is a "Manual Update" written through Delta Spark's test API with
     * only `cdc` actions (inserts of ids 20-24) and no `add`, so the table content does not
     * change while its CDF reports five inserts (README, cdf-table-simple notes).
     */
    const CDC_ONLY_COMMITS: Record<string, number[]> = { 'delta-kernel-rs/cdf-table-simple': [2] };

    for (const t of cdfTables) {
      it(`${t.id}: replaying the CDF onto the snapshot before it gives the snapshot at every later version`, async function () {
        const table = await DeltaTable.open(path.join(shared, t.id));
        const latest = await table.latestVersion();
        const k = await replayStart(table, latest);
        const fields = (await table.snapshot({})).schema;
        const state = new Multiset();
        if (k > 0) for (const r of (await allRows(table, k - 1)).rows) state.add(canonicalRow(r, fields));

        const changes = await allChanges(table, { startingVersion: k, endingVersion: latest });
        const cdcOnly = CDC_ONLY_COMMITS[t.id] ?? [];
        // As a multiset of whole rows (no key): a pre-image leaves like a delete and a
        // post-image arrives like an insert; within a version, removals come first.
        for (let v = k; v <= latest; v++) {
          const inV = changes.filter((c) => c.commitVersion === v);
          const snapshotRows = sorted((await allRows(table, v)).rows.map((r) => canonicalRow(r, fields)));
          if (cdcOnly.includes(v)) {
            // The documented exception: the table content stays as it was and the CDF holds inserts only.
            assert.deepEqual(snapshotRows, state.toSortedArray(), `v${v} changes no data`);
            assert.ok(inV.length > 0 && inV.every((c) => c.changeType === 'insert'), `v${v}: CDF from cdc actions only`);
            continue;
          }
          const missing: string[] = [];
          for (const c of inV) {
            if (c.changeType === 'delete' || c.changeType === 'update_preimage') {
              const row = canonicalRow(c.values, fields);
              if (!state.remove(row)) missing.push(`v${v} ${c.changeType} of a row not in the table: ${row}`);
            }
          }
          for (const c of inV) {
            if (c.changeType === 'insert' || c.changeType === 'update_postimage') state.add(canonicalRow(c.values, fields));
          }
          assert.deepEqual(missing, []);
          assert.deepEqual(state.toSortedArray(), snapshotRows, `replayed CDF [${k}, ${v}] = snapshot at ${v}`);
        }
      });

      it(`${t.id}: CDF[a,c] is CDF[a,b] followed by CDF[b+1,c] for every b`, async function () {
        const table = await DeltaTable.open(path.join(shared, t.id));
        const c = await table.latestVersion();
        const a = await replayStart(table, c);
        const fields = (await table.snapshot({})).schema;
        const whole = (await allChanges(table, { startingVersion: a, endingVersion: c })).map((x) => canonicalChange(x, fields));
        for (let b = a; b < c; b++) {
          const first = await allChanges(table, { startingVersion: a, endingVersion: b });
          const second = await allChanges(table, { startingVersion: b + 1, endingVersion: c });
          assert.ok(first.every((x) => x.commitVersion >= a && x.commitVersion <= b), `CDF[${a},${b}] stays in range`);
          assert.ok(second.every((x) => x.commitVersion > b && x.commitVersion <= c), `CDF[${b + 1},${c}] stays in range`);
          assert.deepEqual(
            sorted([...first, ...second].map((x) => canonicalChange(x, fields))),
            sorted(whole),
            `split at b=${b}`,
          );
        }
      });
    }
  });
});
