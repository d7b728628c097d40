import type { DeltaField, Row } from '../delta/types';

/**
 * The vocabulary of the Target port: what the engine hands a target and gets back. Plain
 * types, shared by the runner's phases and the Postgres implementation.
 */

/** A table reference; `schema` undefined means "resolved through search_path". */
export interface TableRef {
  schema?: string;
  name: string;
}

/**
 * One target column: its Postgres name, the Delta field its values come from, and its
 * Postgres type. Renames and type overrides come from the mapping; `defaultTargetColumns`
 * gives the identity mapping.
 */
export interface TargetColumn {
  /** Target (Postgres) column name. */
  name: string;
  /** Source Delta field; row values are read as `row[source.name]`. */
  source: DeltaField;
  /** Postgres type as SQL text, e.g. `numeric(10,2)`, `timestamptz`, `jsonb`. */
  pgType: string;
  /** Overrides the NOT NULL derived from `source.nullable`. */
  notNull?: boolean;
}

/**
 * The column a soft-delete policy keeps in the target: `boolean NOT NULL DEFAULT false`
 * (true = deleted) or `timestamptz NULL` (the delete's commit time; NULL = live).
 */
export interface SoftDeleteMarker {
  /** Target (Postgres) column name. */
  column: string;
  kind: 'boolean' | 'timestamp';
  /**
   * Key under which rows carry the marker value (default: `column`). Rows are keyed by
   * Delta names, so when a Delta column has the marker's name (excluded or renamed away),
   * the runner picks another key to keep the two apart.
   */
  rowKey?: string;
}

/**
 * Lineage columns of the target (mapping `lineage`; Postgres names, each optional): the
 * Delta commit version of the row's last change (snapshot loads: the snapshot's version),
 * that commit's timestamp, and `now()` of the transaction that wrote the row. With
 * `version`, upserts and deletes change a row only when the incoming version is >= the
 * row's (the out-of-order guard).
 */
export interface LineageColumns {
  version?: string;
  commitTimestamp?: string;
  syncedAt?: string;
}

/** Where a pipeline stands; written in the same transaction as the data it describes. */
export interface CheckpointInput {
  pipeline: string;
  /** Source description (table path or catalog name). */
  source: string;
  /** Delta version whose changes (or snapshot) are now in the target. */
  version: number | bigint;
  /** Commit timestamp of that version: ms since epoch, or timestamptz text; null if unknown. */
  commitTimestamp: number | string | null;
  /**
   * The run lease this run holds (set by the target, not the runner): the checkpoint is
   * written only while the lease is still this run's, so a run that stalled past its lease
   * and was taken over commits nothing.
   */
  leaseToken?: string;
  /** The target was rebuilt from the snapshot at `version` (initial load): versions applied before no longer count (applied_through). */
  reload?: boolean;
}

export interface Checkpoint {
  pipeline: string;
  source: string;
  version: bigint;
  /** timestamptz as the server prints it. */
  commitTimestamp: string | null;
  /** Rows written by the transaction that stored this checkpoint. */
  appliedRows: bigint;
  finishedAt: string;
}

/** auto-swap / auto-merge: a snapshot loaded in place of an incremental sync (mapping mode "auto", run/autoMode). */
export type RunMode = 'initial-swap' | 'initial-merge' | 'auto-swap' | 'auto-merge' | 'incremental' | 'dry-run' | 'repair';

/** A key bucket's row count and the sum of its rows' hashes (mod 2^64, unsigned); see postgres/rangeChecksums. */
export interface BucketSum {
  rows: number;
  sum: bigint;
}

/** A target row in a bucket being repaired: its key's canonical text, its row hash, its key as Postgres prints it. */
export interface TargetBucketRow {
  keyText: string;
  hash: bigint;
  key: Record<string, string | null>;
}

/** 'abandoned': was 'running' when its process died (see markAbandonedRuns). */
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'abandoned';

/** 'kept': a change the out-of-order guard refuses (lineage version column): the target row is newer. */
export type PreviewAction = 'insert' | 'update' | 'delete' | 'unchanged' | 'delete-missing' | 'kept';

export interface ColumnChange {
  column: string;
  /** Values as Postgres text (`::text`), null for SQL NULL. */
  old: string | null;
  new: string | null;
}

export interface PreviewRow {
  action: PreviewAction;
  /** Key column -> value as text. */
  key: Record<string, string | null>;
  /** update (and soft delete): the columns that change. */
  changes?: ColumnChange[];
  /** insert: the new row (as text). */
  newRow?: Record<string, string | null>;
  /** delete: the row that would be removed, or (soft delete) marked (as text). */
  oldRow?: Record<string, string | null>;
}

export interface PreviewResult {
  rows: PreviewRow[];
  /** `kept` only with a lineage version column (the guard). */
  totals: Record<Exclude<PreviewAction, 'kept'>, number> & { kept?: number };
  /** Rows matching `include` (for paging). */
  matching: number;
  /**
   * With `refuseExistingKeys`: upserts the sync marks as inserts of new keys (MUST_BE_NEW)
   * whose key the target already holds; the sync refuses such a transaction. Up to 10 samples.
   */
  existingKeys?: { count: number; samples: Array<{ version: number; key: Record<string, string | null> }> };
}

export interface InitialLoadResult {
  mode: 'swap' | 'merge';
  /** Rows read from the source and staged. */
  rows: number;
  /** True when the target did not exist and was created. */
  createdTable: boolean;
  /** merge only (swap replaces everything). */
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
  /** merge with softDelete: live rows not in the snapshot that were marked deleted. */
  softDeleted?: number;
  /**
   * merge with a lineage version column: target rows the out-of-order guard kept because
   * they hold a newer version than the snapshot (neither updated nor deleted).
   */
  keptByGuard?: number;
  /** Rows a constraint, trigger or the encoder refused, set aside as dead letters (with `deadLetter`). */
  deadLettered: number;
  /** Things of the old table that were not carried over (swap), for the user to check. */
  warnings: string[];
  timings: { copyMs: number; indexMs: number; commitMs: number };
}

/**
 * Something of an existing table that a swap load would bypass (row triggers, rules) or
 * that keeps it from being replaced (views, materialized views, other tables' foreign keys).
 * `name`: the trigger or rule, the view's qualified name, `constraint of table`, or for any
 * other dependent Postgres' description of it (`function f(t)`).
 */
export interface SwapBlocker {
  kind: 'trigger' | 'rule' | 'view' | 'materialized view' | 'foreign key' | 'dependent';
  name: string;
}

/** Rows arrive in batches; memory use is bounded by one batch plus one COPY chunk. */
export type RowBatches = AsyncIterable<Row[]> | Iterable<Row[]>;

/** COPY text of some rows, already encoded (e.g. on a worker thread), as chunks to send. */
export interface EncodedRows {
  chunks: Uint8Array[];
  count: number;
}

/**
 * Row isolation for the `isolating` apply strategy (dead letters, dry runs): rows that
 * Postgres or the COPY encoder refuses are set aside as RejectedRow one by one, and every
 * other row is staged and applied. Only row-level errors (SQLSTATE classes 22 and 23, and
 * the encoder's ValueEncodeError) are isolated; anything else is thrown. All of it runs
 * inside the caller's transaction, under savepoints.
 */

/** A row that Postgres (or the encoder) refused. */
export interface RejectedRow {
  op: 'upsert' | 'delete';
  /** Exact JSON of the key columns (target names). */
  keyJson: string | null;
  /** Exact JSON of the row (target names). */
  rowJson: string | null;
  sqlstate: string | null;
  message: string;
  /** staging: refused while encoding/COPYing (never staged); apply: refused by the target's constraints. */
  phase: 'staging' | 'apply';
}

export interface ApplyResult {
  inserted: number;
  updated: number;
  /** Upserts whose row was already identical. */
  unchanged: number;
  deleted: number;
  /** Deletes (and soft deletes) whose key was not in the target. */
  deleteMissing: number;
  /**
   * Soft deletes that changed the marker. A soft delete whose row already had that marker
   * counts as `unchanged`; one whose key the target lacks, as `deleteMissing`.
   */
  softDeleted?: number;
  /**
   * With a lineage version column: upserts and deletes (soft deletes) the out-of-order guard
   * refused because the target row holds a newer version (counted in neither `unchanged` nor
   * `deleteMissing`). Undefined without the version column.
   */
  keptByGuard?: number;
  /** Rows set aside (dead letters, or the errors a dry run found). */
  rejected: RejectedRow[];
  staged: { upserts: number; deletes: number; softDeletes?: number };
  /** Wall-clock milliseconds per step (for benchmarks and logs). */
  timings?: ApplyTimings;
}

/** Milliseconds spent in each step of one applyChanges call. */
export interface ApplyTimings {
  /** BEGIN, advisory lock, checkpoint check, creating the temp staging tables. */
  prepareMs: number;
  /** Encoding the rows and COPYing them into the staging tables. */
  stageMs: number;
  /** Deletes and soft deletes. */
  deleteMs: number;
  upsertMs: number;
  /** Dead letters, checkpoint and COMMIT (ROLLBACK for a dry run). */
  commitMs: number;
}

/** One part of a streamed batch: net changes of its own, whose keys may recur in later parts. */
export type ApplyPart = (
  | {
      upserts: RowBatches;
      deletes: RowBatches;
      /** With a soft-delete marker: key rows plus the marker value (see ApplyChangesOptions.softDeletes). */
      softDeletes?: RowBatches;
      /** Key rows whose earlier insert marked MUST_BE_NEW is excused (ChangesToApply.excused); staged like deletes. */
      excused?: RowBatches;
    }
  | {
      /** The same, already encoded by encodeRows for the columns of stagingColumns() (excused: the delete columns). */
      encoded: { upserts: EncodedRows; deletes: EncodedRows; softDeletes?: EncodedRows; excused?: EncodedRows };
    }
) & {
  /**
   * Not the last part of a version applied in parts: inserts marked MUST_BE_NEW that find
   * their key are noted, not refused, until a part that is not provisional (a later part may
   * excuse them).
   */
  provisional?: boolean;
};

/** The net changes of one transaction: what ApplyChangesOptions carries, and each of `later`. */
export interface StagedChanges {
  upserts: RowBatches;
  deletes: RowBatches;
  /** With a soft-delete marker (see ApplyChangesOptions.softDeletes). */
  softDeletes?: RowBatches;
}

/**
 * One change of the target table's columns that a run makes before its rows, in the same
 * transaction. ONE ordered list per run (run/schemaDriftPlan.ts `tableChanges`): the
 * schema drift's (mapping/detectDrift), then the lineage columns the table lacks
 * (Target.lineageAlterations); a feature that changes the table's columns adds its own
 * there. The target renders each as DDL (Target.alterationSql): the preview and the dry run
 * show and run that same text, so what is shown is what runs.
 */
export type TableAlteration =
  /** `ifNotExists`: a column the run adds of its own (lineage), which another run may have added meanwhile. */
  | { alter: 'add-column'; column: string; pgType: string; ifNotExists?: boolean }
  | { alter: 'rename-column'; column: string; to: string }
  | { alter: 'retype-column'; column: string; pgType: string; from: string }
  | { alter: 'drop-not-null'; column: string }
  | { alter: 'drop-column'; column: string };
