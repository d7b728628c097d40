import { promises as fs } from 'node:fs';
import { SyncError } from '../errors';
import { streamChanges, validateCdfRange } from './ChangeDataFeed';
import { oldestReconstructableVersion, replayTo, versionTimestamp } from './DeltaLog';
import { readCommit } from './logActions';
import { listLog } from './logListing';
import type { LogListing } from './logListing';
import { DeltaSnapshot } from './DeltaSnapshot';
import type { ReadOptions } from './DeltaSnapshot';
import { assertReadable, isCdfEnabled } from './protocolSupport';
import { columnMappingModeOf, parseSchemaString } from './schema';
import { decodeRelativePath, normalizeTableRoot, resolveActionPath } from './tablePaths';
import { parquetRowCount } from './parquetFile';
import { numRecordsOf } from './DeltaSnapshot';
import type { ChangeReadOptions, ChangeRow, RemoveAction } from './types';

export { DeltaSnapshot } from './DeltaSnapshot';
export type { ReadOptions } from './DeltaSnapshot';
export type { ChangeReadOptions } from './types';

/**
 * Which version to read. Neither field = latest. `timestamp` = the latest version committed
 * at or before it (Spark semantics); a timestamp before the first commit is a
 * SyncError('time-travel'). Strings without a zone are UTC.
 */
export type SnapshotSpec = { version?: number; timestamp?: string | Date };

/** A Change Data Feed range; every bound is inclusive. Strings without a zone are UTC. */
export interface CdfRange {
  startingVersion?: number;
  startingTimestamp?: string | Date;
  endingVersion?: number;
  endingTimestamp?: string | Date;
}

export interface HistoryEntry {
  version: number;
  /** Commit timestamp, ms since epoch. */
  timestamp: number;
  operation?: string;
  operationParameters?: Record<string, unknown>;
  /** commitInfo.operationMetrics (numOutputRows, numTargetRowsInserted, ...), as written. */
  operationMetrics?: Record<string, unknown>;
  engineInfo?: string;
  /**
   * Whether the Change Data Feed can be read at this version (delta.enableChangeDataFeed
   * was on in the table's metadata as of it); undefined when the metadata before the
   * oldest commit still in the log cannot be reconstructed.
   */
  cdf?: boolean;
}

/**
 * Parses a user timestamp to ms since epoch. ISO-8601 with or without a zone (no zone =
 * UTC, unlike JS Date), a space instead of 'T' is accepted, digits beyond milliseconds are
 * truncated. Throws SyncError('usage') when unreadable.
 */
export function parseTimestampArg(value: string | Date): number {
  if (value instanceof Date) {
    const t = value.getTime();
    if (Number.isNaN(t)) throw new SyncError('usage', 'Invalid Date given as a timestamp.');
    return t;
  }
  let s = value.trim().replace(' ', 'T');
  // Cut sub-millisecond digits: JS Date only parses up to milliseconds reliably.
  s = s.replace(/(\.\d{3})\d+/, '$1');
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(s);
  if (/^\d{4}-\d{2}-\d{2}T/.test(s) && !hasZone) s += 'Z';
  else if (/^\d{4}-\d{2}-\d{2}$/.test(s)) s += 'T00:00:00Z';
  const t = Date.parse(s);
  if (Number.isNaN(t)) {
    throw new SyncError('usage', `"${value}" is not a timestamp.`, { hint: 'Use ISO-8601, e.g. 2024-01-06T15:44:59.570Z (no zone = UTC).' });
  }
  return t;
}

function checkVersionArg(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new SyncError('usage', `${what} must be a non-negative integer, got ${String(v)}.`);
  }
}

/** A local Delta table (a folder with `_delta_log/`). Every call re-lists the log. */
export class DeltaTable {
  /** Absolute path of the table root. */
  readonly path: string;
  /** Commit timestamps by version; commits are immutable, so this never goes stale. */
  private readonly timestamps = new Map<number, number>();

  private constructor(tablePath: string) {
    this.path = tablePath;
  }

  /**
   * Opens a table by folder path or file:// URI. Throws SyncError('delta-log') when the
   * folder or its `_delta_log` is missing or holds no commit.
   */
  static async open(location: string): Promise<DeltaTable> {
    const root = normalizeTableRoot(location);
    let isDir = false;
    try {
      isDir = (await fs.stat(root)).isDirectory();
    } catch (cause) {
      throw new SyncError('delta-log', `Table path ${root} does not exist.`, {
        table: root,
        cause,
        hint: 'Check the path; it must be the table root folder, the one that contains _delta_log/.',
      });
    }
    if (!isDir) {
      throw new SyncError('delta-log', `Table path ${root} is not a folder.`, {
        table: root,
        hint: 'Give the table root folder, the one that contains _delta_log/.',
      });
    }
    await listLog(root); // validates _delta_log
    return new DeltaTable(root);
  }

  async latestVersion(): Promise<number> {
    return (await listLog(this.path)).latestVersion;
  }

  /** The table at a version (see SnapshotSpec); checks the protocol is readable. */
  async snapshot(spec: SnapshotSpec = {}): Promise<DeltaSnapshot> {
    const listing = await listLog(this.path);
    let version: number;
    if (spec.version !== undefined && spec.timestamp !== undefined) {
      throw new SyncError('usage', 'Give either a version or a timestamp to time travel, not both.', { table: this.path });
    }
    if (spec.version !== undefined) {
      checkVersionArg(spec.version, 'The version');
      version = spec.version;
    } else if (spec.timestamp !== undefined) {
      version = await this.versionAtOrBefore(listing, parseTimestampArg(spec.timestamp), spec.timestamp);
    } else version = listing.latestVersion;

    const state = await replayTo(listing, version, { files: true });
    assertReadable(state.protocol, this.path, version);
    const mode = columnMappingModeOf(state.metadata.configuration);
    const schema = parseSchemaString(state.metadata.schemaString, mode, this.path);
    return new DeltaSnapshot({
      tablePath: this.path,
      version,
      timestamp: await this.timestampOf(listing, version),
      protocol: state.protocol,
      metadata: state.metadata,
      schema,
      columnMappingMode: mode,
      files: [...state.files.values()],
    });
  }

  /**
   * Resolves a CDF range to versions. Timestamps: start = first version committed at/after
   * startingTimestamp, end = last version at/before endingTimestamp. An end after the latest
   * version is clamped to it. Errors (SyncError with table, version, hint): start > end or
   * start > latest -> 'cdf-range'; a commit file in the range gone -> 'cdf-range' naming the
   * first missing version; CDF not enabled at a version -> 'cdf-not-enabled' naming it;
   * unsupported protocol at a version -> 'delta-protocol'.
   */
  async resolveCdfRange(range: CdfRange): Promise<{ start: number; end: number }> {
    const listing = await listLog(this.path);
    const { start, end } = await this.rangeVersions(listing, range);
    await validateCdfRange(listing, start, end, false);
    return { start, end };
  }

  /**
   * Streams the CDF in commit-version order, batches of <= batchSize rows. All range
   * errors (see resolveCdfRange), and files of the range that are gone (VACUUM) ->
   * 'cdf-range' naming the file, are thrown before the first batch. With
   * `opts.preimageColumns`, update_preimage rows carry only those columns (ChangeReadOptions).
   */
  async *changes(range: CdfRange, opts: ChangeReadOptions = {}): AsyncGenerator<ChangeRow[]> {
    const listing = await listLog(this.path);
    const { start, end } = await this.rangeVersions(listing, range);
    const validated = await validateCdfRange(listing, start, end, true);
    yield* streamChanges(listing, validated, opts);
  }

  /** Commit timestamp (ms) of one version: reads that commit only (cached), not the whole history. */
  async commitTimestamp(version: number): Promise<number> {
    const cached = this.timestamps.get(version);
    if (cached !== undefined) return cached;
    return this.timestampOf(await listLog(this.path), version);
  }

  /**
   * The commitInfo operation of the commits in [from, to] still in the log, oldest first
   * (reads those commits only, at most the newest `limit`).
   */
  async operations(from: number, to: number, limit = 20): Promise<HistoryEntry[]> {
    const listing = await listLog(this.path);
    const versions = listing.commitVersions.filter((v) => v >= from && v <= to).slice(-limit);
    const out: HistoryEntry[] = [];
    for (const v of versions) {
      const c = await readCommit(listing, v);
      const e: HistoryEntry = { version: v, timestamp: c.timestamp };
      if (c.commitInfo?.operation !== undefined) e.operation = c.commitInfo.operation;
      if (c.commitInfo?.operationParameters !== undefined) e.operationParameters = c.commitInfo.operationParameters;
      out.push(e);
    }
    return out;
  }

  /**
   * Bytes of the data files the change feed of [from, to] reads: each commit's cdc files,
   * or its added and removed files when it has none (reads those commits only).
   */
  async changeBytes(from: number, to: number): Promise<number> {
    const listing = await listLog(this.path);
    let bytes = 0;
    for (const v of listing.commitVersions) {
      if (v < from || v > to) continue;
      const c = await readCommit(listing, v);
      if (c.cdcs.length) for (const f of c.cdcs) bytes += f.size;
      else {
        for (const f of c.adds) bytes += f.size;
        for (const f of c.removes) bytes += f.size ?? 0;
      }
    }
    return bytes;
  }

  /**
   * The changes of [from, to] counted without reading any data: a commit's change files'
   * rows from their parquet footers, less its updates' pre-images (commitInfo
   * operationMetrics numUpdatedRows, or numTargetRowsUpdated of a MERGE; without either an
   * update counts twice); a commit without change files: the rows of its added and removed
   * files (stats numRecords, else the footer: removes carry no stats here), a file rewritten with a new deletion vector
   * as the rows that vector newly deletes. Reads those commits only.
   */
  async changeCount(from: number, to: number): Promise<number> {
    const listing = await listLog(this.path);
    let count = 0;
    const rowsOf = async (p: string, stats: string | undefined): Promise<number> =>
      numRecordsOf(stats) ?? (await parquetRowCount(resolveActionPath(listing.tableRoot, p, this.path)));
    for (const v of listing.commitVersions) {
      if (v < from || v > to) continue;
      const c = await readCommit(listing, v);
      if (c.cdcs.length) {
        let rows = 0;
        for (const f of c.cdcs) rows += await parquetRowCount(resolveActionPath(listing.tableRoot, f.path, this.path));
        const metrics = c.commitInfo?.operationMetrics as Record<string, unknown> | undefined;
        const updated = Number(metrics?.numUpdatedRows ?? metrics?.numTargetRowsUpdated ?? 0);
        count += Math.max(0, rows - (Number.isFinite(updated) ? updated : 0));
        continue;
      }
      const removes = new Map<string, RemoveAction>();
      for (const r of c.removes) if (r.dataChange) removes.set(decodeRelativePath(r.path), r);
      for (const a of c.adds) {
        if (!a.dataChange) continue;
        const r = removes.get(decodeRelativePath(a.path));
        if (r) {
          removes.delete(decodeRelativePath(a.path));
          count += Math.abs((a.deletionVector?.cardinality ?? 0) - (r.deletionVector?.cardinality ?? 0));
          continue;
        }
        count += (await rowsOf(a.path, a.stats)) - (a.deletionVector?.cardinality ?? 0);
      }
      for (const r of removes.values()) count += (await rowsOf(r.path, undefined)) - (r.deletionVector?.cardinality ?? 0);
    }
    return count;
  }

  /** Commits still in the log, newest first (like DESCRIBE HISTORY). */
  async history(): Promise<HistoryEntry[]> {
    const listing = await listLog(this.path);
    const out: HistoryEntry[] = [];
    // The CDF flag is the metadata's as of each version: replay to the oldest commit, then follow its metadata actions.
    let cdf: boolean | undefined;
    const oldest = listing.commitVersions[0];
    if (oldest !== undefined) {
      try {
        cdf = isCdfEnabled((await replayTo(listing, oldest, { files: false })).metadata.configuration);
      } catch {
        cdf = undefined; // log cleaned up before a checkpoint: the flag of the first versions is unknown
      }
    }
    for (const v of listing.commitVersions) {
      const c = await readCommit(listing, v);
      this.timestamps.set(v, c.timestamp);
      if (c.metadata) cdf = isCdfEnabled(c.metadata.configuration);
      const e: HistoryEntry = { version: v, timestamp: c.timestamp };
      if (c.commitInfo?.operation !== undefined) e.operation = c.commitInfo.operation;
      if (c.commitInfo?.operationParameters !== undefined) e.operationParameters = c.commitInfo.operationParameters;
      const metrics = c.commitInfo?.operationMetrics;
      if (metrics && typeof metrics === 'object' && !Array.isArray(metrics)) e.operationMetrics = metrics as Record<string, unknown>;
      if (c.commitInfo?.engineInfo !== undefined) e.engineInfo = c.commitInfo.engineInfo;
      if (cdf !== undefined) e.cdf = cdf;
      out.push(e);
    }
    return out.reverse();
  }

  // ---- internals ----

  private async timestampOf(listing: LogListing, version: number): Promise<number> {
    const cached = this.timestamps.get(version);
    if (cached !== undefined) return cached;
    const t = await versionTimestamp(listing, version);
    if (listing.commits.has(version)) this.timestamps.set(version, t);
    return t;
  }

  /** Commit versions still in the log with their timestamps, ascending. */
  private async timeline(listing: LogListing): Promise<Array<{ version: number; timestamp: number }>> {
    const out: Array<{ version: number; timestamp: number }> = [];
    for (const v of listing.commitVersions) out.push({ version: v, timestamp: await this.timestampOf(listing, v) });
    return out;
  }

  private async versionAtOrBefore(listing: LogListing, ts: number, original: string | Date): Promise<number> {
    const timeline = await this.timeline(listing);
    let found: number | undefined;
    for (const e of timeline) if (e.timestamp <= ts) found = e.version;
    if (found === undefined) {
      const first = timeline[0];
      throw new SyncError(
        'time-travel',
        `No version of ${this.path} was committed at or before ${new Date(ts).toISOString()}` +
          (first ? `; the earliest available commit is version ${first.version} at ${new Date(first.timestamp).toISOString()}.` : '.'),
        { table: this.path, hint: `Choose a timestamp after the earliest available commit (asked: ${String(original instanceof Date ? original.toISOString() : original)}).` },
      );
    }
    const oldest = oldestReconstructableVersion(listing);
    if (oldest !== undefined && found < oldest) {
      throw new SyncError('time-travel', `Version ${found} of ${this.path} (the one at ${new Date(ts).toISOString()}) can no longer be read: its log was cleaned up.`, {
        table: this.path,
        version: found,
        hint: `Read a version from ${oldest} on.`,
      });
    }
    return found;
  }

  private async rangeVersions(listing: LogListing, range: CdfRange): Promise<{ start: number; end: number }> {
    const latest = listing.latestVersion;
    const table = this.path;
    if (range.startingVersion !== undefined && range.startingTimestamp !== undefined) {
      throw new SyncError('usage', 'Give either a starting version or a starting timestamp, not both.', { table });
    }
    if (range.endingVersion !== undefined && range.endingTimestamp !== undefined) {
      throw new SyncError('usage', 'Give either an ending version or an ending timestamp, not both.', { table });
    }
    let start = 0;
    if (range.startingVersion !== undefined) {
      checkVersionArg(range.startingVersion, 'The starting version');
      start = range.startingVersion;
    } else if (range.startingTimestamp !== undefined) {
      const ts = parseTimestampArg(range.startingTimestamp);
      const timeline = await this.timeline(listing);
      const hit = timeline.find((e) => e.timestamp >= ts);
      if (!hit) {
        throw new SyncError('cdf-range', `No version of ${table} was committed at or after ${new Date(ts).toISOString()}; the latest is version ${latest}.`, {
          table,
          version: latest,
          hint: 'There are no changes after that timestamp yet.',
        });
      }
      start = hit.version;
    }
    let end = latest;
    if (range.endingVersion !== undefined) {
      checkVersionArg(range.endingVersion, 'The ending version');
      end = Math.min(range.endingVersion, latest);
    } else if (range.endingTimestamp !== undefined) {
      const ts = parseTimestampArg(range.endingTimestamp);
      const timeline = await this.timeline(listing);
      let hit: number | undefined;
      for (const e of timeline) if (e.timestamp <= ts) hit = e.version;
      if (hit === undefined) {
        throw new SyncError('cdf-range', `No version of ${table} was committed at or before ${new Date(ts).toISOString()}.`, {
          table,
          hint: 'Choose an ending timestamp after the first available commit.',
        });
      }
      end = hit;
    }
    if (start > latest) {
      throw new SyncError('cdf-range', `The starting version ${start} is after the latest version ${latest} of ${table}.`, {
        table,
        version: start,
        hint: 'There are no changes to read yet; start at most at the latest version.',
      });
    }
    if (start > end) {
      throw new SyncError('cdf-range', `The CDF range of ${table} is empty: starting version ${start} is after ending version ${end}.`, {
        table,
        version: start,
        hint: 'Give a starting version/timestamp at or before the ending one.',
      });
    }
    return { start, end };
  }
}
