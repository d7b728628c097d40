import type { ChangeReadOptions, ChangeRow, DeltaField, Row } from '../delta/types';
import type { DatabricksConnectionConfig } from './databricksConnection';

/**
 * What the runner needs from a source: the local Delta reader and the Databricks source
 * implement it, so mappings, preview and sync work the same on both.
 */
export interface SourceSnapshot {
  version: number;
  /** Commit timestamp, ms since epoch. */
  timestamp: number;
  schema: DeltaField[];
  cdfEnabled: boolean;
  rows(opts?: { batchSize?: number; signal?: AbortSignal; invalidUtf8?: ChangeReadOptions['invalidUtf8'] }): AsyncIterable<Row[]>;
  /** Live rows known without reading any data (the local reader: the log's file stats); null or absent when unknown. */
  rowCount?: number | null;
  /**
   * rows() without its first `skip` rows, reading as little before them as it can, and
   * with `limit` at most that many rows, reading nothing past them; absent when the
   * source cannot skip.
   */
  rowsFrom?(skip: number, opts?: { batchSize?: number; limit?: number; signal?: AbortSignal; invalidUtf8?: ChangeReadOptions['invalidUtf8'] }): AsyncIterable<Row[]>;
}

export interface ChangeSource {
  /** How errors and checkpoints name the source (table path or catalog.schema.table). */
  readonly name: string;
  latestVersion(): Promise<number>;
  snapshot(version?: number): Promise<SourceSnapshot>;
  /** Commit timestamp of a version, ms since epoch. */
  commitTimestamp(version: number): Promise<number>;
  /** Change rows of [start, end] in commit-version order, in batches. */
  changes(start: number, end: number, opts?: ChangeReadOptions): AsyncIterable<ChangeRow[]>;
  /**
   * The operation of each commit in [from, to] (commitInfo.operation, with its parameters
   * when the source has them), oldest first; for error messages, so it may stop at a few
   * dozen. Optional: a source without it names versions only.
   */
  operations?(from: number, to: number): Promise<CommitOperation[]>;
  /** Releases connections the source holds (Databricks); local tables hold none. */
  close?(): Promise<void>;
  /**
   * How a worker thread can open this same source to read changes there (see
   * worker/changePlanWorker.ts); undefined: read on the calling thread. The local Delta
   * reader answers its table path.
   */
  workerSource?(): WorkerSource | undefined;
  /**
   * Bytes of the data files a read of the changes in [start, end] opens (change files, or
   * the added and removed files of commits without them), from the log alone. Lets a small
   * read skip the worker thread, whose start costs more than the read (continuous sync lag).
   */
  changeBytes?(start: number, end: number): Promise<number>;
  /**
   * About how many rows the changes in [start, end] change (an update once, not as its pre-
   * and post-image), counted from the log and the change files' footers without reading
   * their data. Lets a sync with mapping `mode: "auto"` load the snapshot instead when they
   * are many (run/autoMode.ts). Absent: the source cannot count them cheaply.
   */
  changeCount?(start: number, end: number): Promise<number>;
  /**
   * How a continuous sync (run/watch.ts) should poll this source, when it differs from
   * "call latestVersion() every interval" (a local table: cheap, woken by its log folder).
   */
  readonly polling?: SourcePolling;
}

/**
 * Polling a source whose latestVersion() runs on compute that costs money while it runs
 * (a Databricks SQL warehouse): a longer default floor, what one poll costs (for the
 * watch's start line and the docs), and a check that needs no compute, asked before each
 * poll so that a poll does not wake stopped compute unless the user said it may.
 */
export interface SourcePolling {
  /** The poll interval when the user sets none, in ms. */
  readonly defaultIntervalMs: number;
  /** One poll, in words: "one DESCRIBE HISTORY ... LIMIT 1 on SQL warehouse 1234 while it runs". */
  readonly cost: string;
  /** Whether latestVersion() can run now without starting stopped compute; never throws. */
  readiness(): Promise<PollReadiness>;
}

/**
 * `ready: false`: a poll now would start the compute (`reason` says what is stopped, naming
 * it; `short` says it in a few words for a tree row: "warehouse stopped"). `ready: true` with
 * a `warning`: the check itself failed, so the poll runs as if it were ready; with `state`:
 * what the check saw ("SQL warehouse "Shared" (1234abcd) is RUNNING").
 */
export type PollReadiness = { ready: true; warning?: string; state?: string } | { ready: false; reason: string; short: string };

/** One commit's operation as its log records it (e.g. WRITE with mode Overwrite, DELETE, TRUNCATE). */
export interface CommitOperation {
  version: number;
  operation: string | null;
  parameters?: Record<string, unknown>;
}

/**
 * A source a worker thread can open by itself: plain data, passed by structured clone. A
 * Databricks source carries its connection, secrets included (in memory only: the worker
 * thread shares the process).
 */
export type WorkerSource =
  | { type: 'delta'; path: string }
  | { type: 'databricks'; table: string; connection: DatabricksConnectionConfig };

/** How a worker source is named in messages: the table path or catalog.schema.table. */
export function workerSourceName(ws: WorkerSource): string {
  return ws.type === 'delta' ? ws.path : ws.table;
}

/** [version, commit timestamp ms] of each version in a batch of change rows (which come ordered by version). */
export function commitTimestamps(batch: readonly ChangeRow[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let last = -1;
  for (const ch of batch) {
    if (ch.commitVersion !== last) {
      last = ch.commitVersion;
      out.push([last, ch.commitTimestamp]);
    }
  }
  return out;
}
