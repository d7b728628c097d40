import * as fs from 'node:fs';
import * as path from 'node:path';
import { readParquetRows } from '../../../src/sync/delta/parquetFile';
import type { DeltaField, Row } from '../../../src/sync/delta/types';
import { readPrettyTable } from '../expectedTables';
import { cellValue, parseSchema, readCommits } from './ExpectedCdfTable';
import type { LogCommit } from './ExpectedCdfTable';
import { WarehouseTableError } from './WarehouseTable';
import type { HistoryEntry, WarehouseChange, WarehouseTable } from './WarehouseTable';

/**
 * A warehouse table whose latest snapshot is an expected result written by a reference
 * reader (../shared/delta-tables/expected), not the project's Delta reader:
 * - `<table>.snapshot.latest/`: the Spark-written parquet of the whole table (logical
 *   column names, partition columns included). Its part files are plain parquet, decoded
 *   with the project's parquet decoder (`readParquetRows`, mode 'none') but with no Delta
 *   log replay, deletion vector, partition value, column mapping or type widening of the
 *   project involved: those are what the expected file settles.
 * - `<table>.snapshot.latest[.<subset>].txt`: the pretty-printed rows of a reference
 *   reader's assertion; the table is served with the file's columns only (a subset file
 *   is a narrower table), each cell converted by `cellValue`.
 *
 * Schema, history and properties come from the table folder's JSON commits, read raw (the
 * types at the latest version; logical names). Only `VERSION AS OF <latest>` is answered:
 * earlier versions and `table_changes()` are refused as not served.
 */
export class ExpectedSnapshotTable implements WarehouseTable {
  private constructor(
    readonly label: string,
    private readonly fields: DeltaField[],
    private readonly commits: LogCommit[],
    private readonly snapshotRows: Row[],
  ) {}

  /** The table folder and its expected snapshot (a parquet folder or a pretty-printed file). */
  static async load(tableDir: string, expected: string): Promise<ExpectedSnapshotTable> {
    const commits = readCommits(tableDir);
    const withSchema = [...commits].reverse().find((c) => c.schemaString !== undefined);
    if (!withSchema?.schemaString) throw new Error(`${tableDir}: no metaData in the commit files`);
    const all = parseSchema(withSchema.schemaString, true);
    const label = `${path.basename(tableDir)} from ${path.basename(expected)}`;
    if (fs.statSync(expected).isDirectory()) {
      const fields = all.map((f) => ({ ...f, metadata: {}, physicalName: f.name }));
      const rows: Row[] = [];
      for (const part of fs.readdirSync(expected).filter((f) => f.endsWith('.parquet') && !f.startsWith('.')).sort()) {
        for await (const batch of readParquetRows(path.join(expected, part), { fields, columnMappingMode: 'none', batchSize: 1000 })) rows.push(...batch);
      }
      return new ExpectedSnapshotTable(label, fields, commits, rows);
    }
    const pretty = readPrettyTable(expected);
    const fields = pretty.columns.map((name) => {
      const f = all.find((x) => x.name === name);
      if (!f) throw new Error(`${expected}: column ${name} is not in the table's schema`);
      return { ...f, metadata: {}, physicalName: f.name };
    });
    const rows = pretty.rows.map((cells, i) => {
      const row: Row = {};
      fields.forEach((f, j) => {
        row[f.name] = cellValue(cells[j] ?? null, f.type, `${path.basename(expected)} row ${i + 1}, column ${f.name}`);
      });
      return row;
    });
    return new ExpectedSnapshotTable(label, fields, commits, rows);
  }

  schema(): DeltaField[] {
    return this.fields;
  }

  latestVersion(): number {
    return this.commits[this.commits.length - 1]?.version ?? 0;
  }

  history(): HistoryEntry[] {
    return [...this.commits].reverse().map((c) => ({ version: c.version, timestamp: c.timestamp, operation: c.operation, engineInfo: c.engineInfo }));
  }

  properties(): Record<string, string> {
    const config = [...this.commits].reverse().find((c) => c.configuration !== undefined)?.configuration ?? {};
    const p = [...this.commits].reverse().find((c) => c.protocol !== undefined)?.protocol;
    return { ...config, ...(p ? { 'delta.minReaderVersion': String(p.minReaderVersion), 'delta.minWriterVersion': String(p.minWriterVersion) } : {}) };
  }

  /** The expected files hold no change rows: the change feed is not served. */
  cdfEnabled(): boolean {
    return false;
  }

  rows(version: number): Row[] {
    if (version !== this.latestVersion()) {
      throw new WarehouseTableError('DELTA_TRUNCATED_TRANSACTION_LOG', '42K03', `Only the latest version (${this.latestVersion()}) of ${this.label} is served, not version ${version}.`);
    }
    return this.snapshotRows.map((r) => ({ ...r }));
  }

  changes(start: number, end: number): WarehouseChange[] {
    throw new WarehouseTableError('DELTA_MISSING_CHANGE_DATA', '42K03', `${this.label} serves no change data (asked for versions ${start} to ${end}).`);
  }
}
