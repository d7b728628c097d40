import type { ApplyResult } from './targetTypes';
import type { PreviewAction, PreviewResult } from './targetTypes';
import type { Checkpoint } from './targetTypes';
import type { AutoSaid, SyncEventListener, SyncMode } from './events';
import type { PipelineState } from './pipelineState';
import type { RunHistoryEntry } from './runLog';

/** What the engine's front doors (CLI, extension, tests) ask of a run and get back. */

export interface RunOptions {
  mode?: SyncMode | 'auto';
  /** Stop at this version (default: the source's latest). */
  toVersion?: number;
  signal?: AbortSignal;
  onEvent?: SyncEventListener;
  /** How long transient connection errors are retried, in ms from the start (default 60000). */
  retryForMs?: number;
  /** At most this many attempts (default: as many as fit in retryForMs). */
  maxAttempts?: number;
  /** Base backoff in ms (default 500). */
  backoffMs?: number;
  /**
   * Allows this one run to delete more of the target than the mapping's
   * safety.maxDeleteShare, and an initial load to swap an empty snapshot over a non-empty
   * table (after the user confirmed it).
   */
  allowMassDelete?: boolean;
}

export interface RunResult {
  runId: string;
  mode: SyncMode;
  status: 'succeeded' | 'up-to-date';
  fromVersion: number | null;
  toVersion: number;
  rowsRead: number;
  inserted: number;
  updated: number;
  /** Rows deleted, or with a soft-delete policy marked deleted (see softDeleted). */
  deleted: number;
  unchanged: number;
  deadLettered: number;
  batches: number;
  warnings: string[];
  /** The CREATE TABLE the initial load ran when it created the target. */
  createdTableSql?: string;
  /** Soft-delete policy: how many of `deleted` were marked deleted rather than removed. */
  softDeleted?: number;
  /** Runs of this pipeline found 'running' with no live process, now marked 'abandoned'. */
  abandonedRuns?: string[];
  /**
   * Versions another run committed while this run waited to retry after a failed attempt:
   * this run did not apply them (with status 'up-to-date' that was all there was to do).
   * `message` says so, naming the runs, for front doors to print.
   */
  appliedByOthers?: { fromVersion: number | null; toVersion: number; runIds: string[]; message: string };
  /** Mapping `mode: "auto"`: the path it chose and why (a snapshot: mode initial, fromVersion the checkpoint's next). */
  auto?: AutoSaid;
}

/**
 * How the read-only commands (preview, verify, dry run) wait for a database that does not
 * accept connections yet: for `retryForMs` (default 60000) with backoff from `backoffMs`
 * (default 500); each attempt is announced through `onEvent` (a warning), else the logger.
 */
export interface ConnectWaitOptions {
  retryForMs?: number;
  backoffMs?: number;
  onEvent?: SyncEventListener;
}

export interface PreviewOptions extends ConnectWaitOptions {
  toVersion?: number;
  /**
   * "initial": preview an initial load even when the pipeline has a checkpoint (a reload,
   * as `sync --mode initial` runs it). Default: what a sync would run now.
   */
  mode?: 'initial';
  /**
   * Run the pre-apply checks (PreviewReport.warnings) over every row the sync would write.
   * A front door asks for them with its first page; later pages leave them out.
   */
  checks?: boolean;
  /** List only rows whose key or values contain this text (case-insensitive); `matching` counts them. */
  search?: string;
  limit?: number;
  offset?: number;
  include?: readonly PreviewAction[];
  signal?: AbortSignal;
}

export interface PreviewReport extends PreviewResult {
  mode: SyncMode;
  fromVersion: number | null;
  toVersion: number;
  /** True when the target table does not exist yet (every row is an insert). */
  targetMissing: boolean;
  /** Initial load: the CREATE TABLE a swap load runs. */
  ddl?: string;
  /**
   * Incremental, or an initial load by merge into an existing table: the DDL the sync runs
   * first in its first transaction, in order (schema drift: added, renamed, widened,
   * dropped columns), as the target renders and runs it.
   */
  alterations?: string[];
  /** With `checks`: what would make applying fail or change values, most harmful first (empty: nothing found). */
  warnings?: PreviewWarning[];
  /**
   * Mapping `mode: "auto"`: the path the sync would take and why, on a first page (offset
   * 0). The rows listed are the net changes either path makes (a snapshot load at the end
   * version brings the target to the same rows the change feed would).
   */
  auto?: AutoSaid;
}

export type PreviewWarningCheck = 'existing-key' | 'null-key' | 'duplicate-key' | 'too-long' | 'numeric-range' | 'integer-range' | 'timestamp-range' | 'nul-byte';

/** One pre-apply check that found rows: how many, and the first of them (key and offending value as text). */
export interface PreviewWarning {
  check: PreviewWarningCheck;
  /** The target column at fault (none for duplicate keys). */
  column?: string;
  count: number;
  message: string;
  samples: Array<Record<string, string | null>>;
  /** Applying is refused outright (not a risk to acknowledge): the sync would fail on these rows. */
  blocking?: boolean;
}

export interface DryRunReport {
  fromVersion: number | null;
  toVersion: number;
  result: ApplyResult;
  /** The DDL the dry run ran first (and rolled back), as the sync will (PreviewReport.alterations). */
  alterations?: string[];
  /** Mapping `mode: "auto"`: the path the sync would take and why (the dry run rehearses that path). */
  auto?: AutoSaid;
  /**
   * What the dry run rehearsed, when not the change feed: mode auto's snapshot load (the
   * snapshot staged and indexed, swapped or merged in a transaction rolled back); `result`
   * then counts what the load would change.
   */
  rehearsed?: { path: 'snapshot'; load: 'swap' | 'merge' };
}

export interface VerifyReport {
  version: number;
  sourceRows: number;
  targetRows: number;
  /** Source rows whose key is not in the target. */
  missing: number;
  /** Rows whose key is in both but whose values differ. */
  differing: number;
  /** Target rows whose key the source does not have. */
  extra: number;
  equal: boolean;
  samples: PreviewResult['rows'];
}

export interface PipelineStatus {
  pipeline: string;
  source: string;
  target: string;
  /** The source's latest version; null when it was not read (`sourceNotChecked` says why). */
  latestVersion: number | null;
  /**
   * Why the latest version was not read: reading it would start stopped compute (a Databricks
   * SQL warehouse that is not RUNNING) and the caller did not allow it (`StatusOptions.wakeSource`).
   */
  sourceNotChecked?: { reason: string; short: string };
  /** What the source's compute check saw, when it made one ("SQL warehouse "Shared" (1234abcd) is RUNNING"). */
  sourceState?: string;
  checkpoint: Checkpoint | null;
  /** Versions the target is behind the source; null before the initial load or when the latest version was not read. */
  lag: number | null;
  targetExists: boolean;
  runs: RunHistoryEntry[];
  /** Where the pipeline stands, computed by the engine (views show it as is). */
  state: PipelineState;
}

/** How `SyncRunner.status()` may read the source. */
export interface StatusOptions {
  /**
   * Read the source's latest version even when that starts stopped compute (a Databricks SQL
   * warehouse): the CLI's `status --wake-warehouse`, the extension's explicit Refresh. Without
   * it the source's `polling.readiness()` is asked first and the read skipped while not ready.
   */
  wakeSource?: boolean;
}

/** What `repair` is asked to do (SyncRunner.repair). */
export interface RepairOptions {
  /** Repair to the snapshot at this version (default: the latest). */
  toVersion?: number;
  /** Plan and preview the repair without writing. */
  dryRun?: boolean;
  /** Preview rows to list (dry run); default 100. */
  limit?: number;
  include?: readonly PreviewAction[];
  /** Let this repair delete more of the target than safety.maxDeleteShare allows. */
  allowMassDelete?: boolean;
  /** Differing rows per part of the apply (default 5,000): memory is bounded by a part. */
  partRows?: number;
}

/**
 * A repair by checksums (run/repairPhase): what the comparison found, and what was applied
 * (or, in a dry run, the preview of it, in the format of any sync's preview).
 */
export interface RepairReport {
  /** The snapshot version the target was compared with (and, applied, its checkpoint now). */
  version: number;
  /** The checkpoint before the repair (null: none). */
  fromVersion: number | null;
  sourceRows: number;
  targetRows: number;
  /** What the comparison found: rows to insert, update, delete. */
  planned: { insert: number; update: number; delete: number };
  /** Each narrowing level: bucket bits, buckets compared, buckets that differed. */
  levels: { bits: number; compared: number; differing: number }[];
  leafBits: number;
  /** Bytes read from Postgres by the comparison (aggregates and the differing buckets' keys and hashes). */
  bytesRead: number;
  /** Target rows read back (those of the differing buckets). */
  rowsReadBack: number;
  applied: boolean;
  /** Applied: what the apply did. */
  result?: { inserted: number; updated: number; deleted: number; unchanged: number };
  /** Dry run: the planned changes classified against the target, as a sync's preview. */
  preview?: PreviewResult;
  /** Milliseconds: the snapshot's pass (read and hash), the checksum queries, the read-back, the apply (applied only). */
  timings: { snapshotMs: number; checksumsMs: number; readBackMs: number; applyMs?: number };
  /** Whether the target equals the snapshot (applied: checked afterwards; dry run: no difference found). */
  equal: boolean;
  /** Where the snapshot was read and hashed: a worker thread (local Delta sources), or the calling thread. */
  readThread: 'worker' | 'main';
  /** Applied: the parts the snapshot's differing rows were applied in (at most partRows rows each). */
  parts?: number;
  ms: number;
}
