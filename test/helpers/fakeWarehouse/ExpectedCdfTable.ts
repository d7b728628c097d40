import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChangeType, DeltaField, DeltaType, DeltaValue, PrimitiveTypeName, Row } from '../../../src/sync/delta/types';
import { readPrettyTable } from '../expectedTables';
import type { ExpectedCdfRange } from '../expectedTables';
import { parseIsoDate, parseIsoMicros } from '../rowMultiset';
import { WarehouseTableError } from './WarehouseTable';
import type { HistoryEntry, WarehouseChange, WarehouseTable } from './WarehouseTable';

/**
 * A warehouse table answered from an expected CDF file written by a reference reader
 * (delta-rs or delta-kernel-rs, ../shared/delta-tables/expected), not by the project's
 * reader: `table_changes()` returns the file's rows, and `VERSION AS OF v` returns the file's
 * changes up to v replayed onto an empty table, as a multiset of whole rows (insert and
 * update_postimage add a row, delete and update_preimage take an equal row away; no key is
 * involved). So only a file whose range starts at version 0 can answer snapshots.
 *
 * What comes from the table folder is read here as raw JSON, without src/sync/delta: the
 * schema (`metaData.schemaString`), the configuration and protocol, and the commit times
 * (`commitInfo.timestamp`, else the commit file's modification time, which is what Spark
 * and kernel-rs use when there is no commitInfo).
 *
 * The expected files hold text; each cell is converted to the engine's value
 * representation (src/sync/delta/types.ts) explicitly by the column's Delta type, in
 * `cellValue` below: integers to number, long to bigint, float/double to number (printed
 * shortest, so Number() gives the value back), boolean from 'true'/'false', date from
 * 'YYYY-MM-DD' to days since the epoch, timestamps (UTC text) to microseconds, decimals
 * as text. `_commit_timestamp` is printed in UTC at millisecond precision without a zone
 * and read as UTC; the kernel-rs files have no such column, and their change rows take the
 * commit time above.
 */

const CHANGE_TYPES: readonly ChangeType[] = ['insert', 'delete', 'update_preimage', 'update_postimage'];
const META = new Set(['_change_type', '_commit_version', '_commit_timestamp']);

export interface LogCommit {
  version: number;
  timestamp: number;
  operation?: string;
  engineInfo?: string;
  schemaString?: string;
  configuration?: Record<string, string>;
  protocol?: { minReaderVersion: number; minWriterVersion: number };
}

export function readCommits(tableDir: string): LogCommit[] {
  const logDir = path.join(tableDir, '_delta_log');
  const commits: LogCommit[] = [];
  for (const name of fs.readdirSync(logDir).sort()) {
    const m = /^(\d{20})\.json$/.exec(name);
    if (!m) continue;
    const file = path.join(logDir, name);
    const c: LogCommit = { version: Number(m[1]), timestamp: Math.trunc(fs.statSync(file).mtimeMs) };
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const a = JSON.parse(line) as Record<string, Record<string, unknown> | undefined>;
      if (a.commitInfo) {
        if (typeof a.commitInfo.timestamp === 'number') c.timestamp = a.commitInfo.timestamp;
        if (typeof a.commitInfo.operation === 'string') c.operation = a.commitInfo.operation;
        if (typeof a.commitInfo.engineInfo === 'string') c.engineInfo = a.commitInfo.engineInfo;
      }
      if (a.metaData) {
        c.schemaString = a.metaData.schemaString as string;
        c.configuration = (a.metaData.configuration as Record<string, string> | undefined) ?? {};
      }
      if (a.protocol) c.protocol = a.protocol as LogCommit['protocol'];
    }
    commits.push(c);
  }
  return commits;
}

const PRIMITIVES: readonly PrimitiveTypeName[] = ['string', 'long', 'integer', 'short', 'byte', 'float', 'double', 'boolean', 'binary', 'date', 'timestamp', 'timestamp_ntz'];

/** Flat schemas only: nested columns are not served. */
function parseType(t: unknown, column: string): DeltaType {
  if (typeof t === 'string') {
    const d = /^decimal\((\d+),\s*(\d+)\)$/.exec(t);
    if (d) return { kind: 'decimal', precision: Number(d[1]), scale: Number(d[2]) };
    if ((PRIMITIVES as readonly string[]).includes(t)) return { kind: 'primitive', name: t as PrimitiveTypeName };
  }
  throw new Error(`expected-CDF warehouse table: column ${column} has a type it does not serve: ${JSON.stringify(t)}`);
}

/**
 * The logical columns of a schemaString. Column mapping is refused unless `logicalOnly`
 * (a table whose rows come from a file with logical names, so physical names never matter).
 */
export function parseSchema(schemaString: string, logicalOnly = false): DeltaField[] {
  const s = JSON.parse(schemaString) as { fields: Array<{ name: string; type: unknown; nullable: boolean; metadata?: Record<string, unknown> }> };
  return s.fields.map((f) => {
    if (!logicalOnly && f.metadata?.['delta.columnMapping.physicalName'] !== undefined) {
      throw new Error(`expected-CDF warehouse table: column mapping (column ${f.name}) is not served`);
    }
    return { name: f.name, type: parseType(f.type, f.name), nullable: f.nullable, metadata: f.metadata ?? {}, physicalName: f.name };
  });
}

/** One expected cell as the engine's value of `type` (see the header for each conversion). */
export function cellValue(cell: string | null, type: DeltaType, where: string): DeltaValue {
  if (cell === null) return null;
  if (type.kind === 'decimal') return cell;
  if (type.kind !== 'primitive') throw new Error(`${where}: nested cell`);
  switch (type.name) {
    case 'byte':
    case 'short':
    case 'integer': {
      const n = Number(cell);
      if (!Number.isSafeInteger(n)) throw new Error(`${where}: not an integer: ${cell}`);
      return n;
    }
    case 'long':
      return BigInt(cell);
    case 'float':
    case 'double': {
      const n = Number(cell);
      if (Number.isNaN(n) && cell !== 'NaN') throw new Error(`${where}: not a number: ${cell}`);
      return type.name === 'float' ? Math.fround(n) : n;
    }
    case 'boolean':
      if (cell !== 'true' && cell !== 'false') throw new Error(`${where}: not a boolean: ${cell}`);
      return cell === 'true';
    case 'string':
      return cell;
    case 'date':
      return parseIsoDate(cell);
    case 'timestamp':
    case 'timestamp_ntz':
      return parseIsoMicros(cell);
    case 'binary':
    case 'variant':
      throw new Error(`${where}: ${type.name} cells are not in the expected files`);
  }
}

/** Identity of a whole row for the multiset replay (bigints as text, so JSON can hold them). */
function rowIdentity(row: Row, fields: readonly DeltaField[]): string {
  return JSON.stringify(fields.map((f) => {
    const v = row[f.name] ?? null;
    return typeof v === 'bigint' ? `${v}n` : v;
  }));
}

export class ExpectedCdfTable implements WarehouseTable {
  readonly label: string;
  private readonly fields: DeltaField[];
  private readonly commits: LogCommit[];
  private readonly rowsOfFile: WarehouseChange[];
  /** The versions the file covers, inclusive. */
  readonly first: number;
  readonly last: number;

  constructor(tableDir: string, expectedFile: string, range: ExpectedCdfRange) {
    this.label = `${path.basename(tableDir)} from ${path.basename(expectedFile)}`;
    this.commits = readCommits(tableDir);
    const latest = this.commits[this.commits.length - 1];
    if (!latest) throw new Error(`${tableDir}: no commit files`);
    const withSchema = [...this.commits].reverse().find((c) => c.schemaString !== undefined);
    if (!withSchema?.schemaString) throw new Error(`${tableDir}: no metaData in the commit files`);
    this.fields = parseSchema(withSchema.schemaString);
    if (range.startingVersion === undefined || range.startingTimestamp !== undefined || range.endingTimestamp !== undefined) {
      throw new Error(`${expectedFile}: only version ranges are served`);
    }
    this.first = range.startingVersion;
    this.last = range.endingVersion ?? latest.version;

    const pretty = readPrettyTable(expectedFile);
    const data = pretty.columns.filter((c) => !META.has(c));
    if (JSON.stringify(data) !== JSON.stringify(this.fields.map((f) => f.name))) {
      throw new Error(`${expectedFile}: columns ${data.join(', ')} are not the table's (${this.fields.map((f) => f.name).join(', ')})`);
    }
    const at = (name: string): number => pretty.columns.indexOf(name);
    const byVersion = new Map(this.commits.map((c) => [c.version, c.timestamp]));
    this.rowsOfFile = pretty.rows.map((cells, i) => {
      const where = `${path.basename(expectedFile)} row ${i + 1}`;
      const values: Row = {};
      for (const f of this.fields) values[f.name] = cellValue(cells[at(f.name)] ?? null, f.type, `${where}, column ${f.name}`);
      const ct = cells[at('_change_type')];
      if (!CHANGE_TYPES.includes(ct as ChangeType)) throw new Error(`${where}: _change_type ${String(ct)}`);
      const commitVersion = Number(cells[at('_commit_version')]);
      const tsCell = at('_commit_timestamp') >= 0 ? cells[at('_commit_timestamp')] : null;
      // Printed in UTC without a zone, to the millisecond: read as UTC.
      const commitTimestamp = tsCell ? Date.parse(`${tsCell}Z`) : byVersion.get(commitVersion);
      if (commitTimestamp === undefined || Number.isNaN(commitTimestamp)) throw new Error(`${where}: no commit time for version ${commitVersion}`);
      return { values, changeType: ct as ChangeType, commitVersion, commitTimestamp };
    });
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

  private lastBefore<K extends keyof LogCommit>(version: number, key: K): LogCommit[K] {
    let out: LogCommit[K] = undefined as LogCommit[K];
    for (const c of this.commits) if (c.version <= version && c[key] !== undefined) out = c[key];
    return out;
  }

  properties(): Record<string, string> {
    const v = this.latestVersion();
    const p = this.lastBefore(v, 'protocol');
    return {
      ...(this.lastBefore(v, 'configuration') ?? {}),
      ...(p ? { 'delta.minReaderVersion': String(p.minReaderVersion), 'delta.minWriterVersion': String(p.minWriterVersion) } : {}),
    };
  }

  cdfEnabled(version: number): boolean {
    return this.lastBefore(version, 'configuration')?.['delta.enableChangeDataFeed'] === 'true';
  }

  private outside(what: string, start: number, end: number): WarehouseTableError {
    return new WarehouseTableError(
      'DELTA_TRUNCATED_TRANSACTION_LOG',
      '42K03',
      `${what} [${start}, ${end}] of ${this.label} is outside the versions the expected file covers, [${this.first}, ${this.last}].`,
    );
  }

  rows(version: number): Row[] {
    if (this.first !== 0 || version > this.last) throw this.outside('The snapshot at', version, version);
    const live = new Map<string, { row: Row; count: number }>();
    // Version order; within a version, rows added before rows taken away (the file is sorted
    // by text, and a commit's images have no order of their own).
    const adds = (c: WarehouseChange): number => (c.changeType === 'insert' || c.changeType === 'update_postimage' ? 0 : 1);
    const ordered = this.rowsOfFile.filter((c) => c.commitVersion <= version).sort((a, b) => a.commitVersion - b.commitVersion || adds(a) - adds(b));
    for (const c of ordered) {
      const id = rowIdentity(c.values, this.fields);
      const slot = live.get(id);
      if (c.changeType === 'insert' || c.changeType === 'update_postimage') {
        live.set(id, { row: c.values, count: (slot?.count ?? 0) + 1 });
        continue;
      }
      if (!slot) throw new Error(`${this.label}: the ${c.changeType} at version ${c.commitVersion} takes away ${id}, which is not in the table`);
      if (slot.count === 1) live.delete(id);
      else slot.count -= 1;
    }
    return [...live.values()].flatMap(({ row, count }) => Array.from({ length: count }, () => ({ ...row })));
  }

  changes(start: number, end: number): WarehouseChange[] {
    if (start < this.first || end > this.last) throw this.outside('The change range', start, end);
    return this.rowsOfFile.filter((c) => c.commitVersion >= start && c.commitVersion <= end).map((c) => ({ ...c, values: { ...c.values } }));
  }
}
