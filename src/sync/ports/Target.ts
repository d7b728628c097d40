import type { SyncError } from '../errors';
import type { ApplyPart, ApplyResult, StagedChanges } from './targetTypes';
import type { RowBatches } from './targetTypes';
import type { EncodedRows } from './targetTypes';
import type { InitialLoadResult } from './targetTypes';
import type { PreviewAction, PreviewResult } from './targetTypes';
import type { TableRef } from './targetTypes';
import type { TargetColumn } from './targetTypes';
import type { LineageColumns, SoftDeleteMarker } from './targetTypes';
import type { SwapBlocker } from './targetTypes';
import type { TableAlteration } from './targetTypes';
import type { Checkpoint, CheckpointInput, RunMode, RunStatus } from './targetTypes';
import type { RunError, RunRecord } from './runLog';
import type { AutoSaid } from './events';
import type { BucketSum, TargetBucketRow } from './targetTypes';
import type { RightsOptions, RightsPurpose, RightsReport } from './rights';

/**
 * What the engine needs from the database it syncs into: one table of it, the engine's
 * own state (checkpoint, run log, run lease) and the transactions that change them
 * together. The runner and its phases talk to this port only; every line of SQL lives in
 * the implementation (postgres/PostgresTarget, over a server's pool or the embedded
 * PGlite sandbox's).
 *
 * Contract shared by the methods: each takes a connection of its own and gives it back
 * before it returns (none is held between calls, so a target whose pool hands out one
 * connection at a time works); failures are SyncErrors classified where they enter (kind,
 * retry, hint), naming the table; nothing a failed call started stays half done.
 */
export interface Target {
  /** The table the mapping writes. */
  readonly table: TableRef;
  /** How messages name the table (`schema.table`). */
  readonly tableLabel: string;

  /**
   * Whether statements on two of its connections can be in flight at once (a server's pool;
   * not the sandbox, which hands out one connection at a time): then the runner overlaps
   * independent target work with reading the source, so their round trips cost no time.
   */
  readonly concurrent?: boolean;
  /** Creates the engine's state schema and tables when missing. */
  prepare(): Promise<void>;
  /** The table's columns and primary key, or undefined when it does not exist. */
  describe(): Promise<TargetTableInfo | undefined>;
  /** The DDL an initial load runs to create the table. */
  createTableSql(columns: readonly TargetColumn[], key: readonly string[], marker: SoftDeleteMarker | undefined, fillfactor: number | undefined): string;

  readCheckpoint(pipeline: string): Promise<Checkpoint | undefined>;
  /**
   * Cuts off the statements in flight on the target's connections (the run was stopped):
   * they fail soon after, and the server rolls back their transactions. Optional: a
   * target without it lets them finish.
   */
  interrupt?(reason: string): void;
  /**
   * Makes sure no other run of the pipeline is live and takes the right to run until
   * release(); runs a dead process left 'running' are marked abandoned. Fails at once
   * (retry 'manual') when a live run holds it.
   */
  acquireRun(pipeline: string, opts?: AcquireRunOptions): Promise<RunGuard>;
  /** Marks runs a dead process left 'running' as abandoned, when it can tell no run is live. */
  reapAbandoned(pipeline: string): Promise<void>;
  /** Whether a live run of the pipeline holds its run lease now (status, not a reservation). */
  isRunning(pipeline: string): Promise<boolean>;
  readonly runLog: RunLog;

  /** Drops staging tables an interrupted initial load left behind; returns their names. */
  dropStagingLeftovers(): Promise<string[]>;
  /**
   * The DDL of a change of the table's columns, as beginApply, preview and dryRun run it
   * for their `alterations` (one renderer, so a preview shows what runs).
   */
  alterationSql(alteration: TableAlteration): string;
  /**
   * Adds the soft-delete marker column when missing (returns the warning, and sets it in
   * `existing`), refuses one of another type.
   */
  ensureMarkerColumn(marker: SoftDeleteMarker, existing: Map<string, string>): Promise<string | undefined>;

  /** The statement that adds the soft-delete marker column (for hints). */
  markerColumnSql(marker: SoftDeleteMarker): string;

  /**
   * The lineage columns missing from `existing`, as alterations for the run's one list
   * (an incremental sync runs them in its first transaction, the preview and the dry run
   * show and run them as the sync does); empty when the table has them all. Refuses a column
   * of that name and another type.
   */
  lineageAlterations(lineage: LineageColumns | undefined, existing: ReadonlyMap<string, string>): TableAlteration[];

  /**
   * What keeps a swap load of the existing table from being faithful (its row triggers and
   * rules would not fire) or from replacing it (views, materialized views, other tables'
   * foreign keys on it); empty when the table is missing. Read-only; cheap.
   */
  swapBlockers(): Promise<SwapBlocker[]>;
  /** Loads a snapshot: staged, indexed, then swapped or merged in with its checkpoint in one transaction. */
  initialLoad(opts: InitialLoadRequest): Promise<InitialLoadResult & { runEnded?: boolean }>;
  /**
   * Opens one apply transaction (checks the stored checkpoint is `expectVersion`, else
   * nothing is applied); parts are applied in order, then commit() writes the checkpoint
   * in the same transaction. With `deadLetter`, rows a constraint refuses are set aside.
   */
  beginApply(opts: ApplyRequest): Promise<ApplyTransaction>;
  /** What a batch would do, row by row, against the rows in the table (read-only). */
  preview(opts: PreviewRequest): Promise<PreviewResult>;
  /** Applies the changes in a transaction that is rolled back; reports the rows a constraint would refuse. */
  dryRun(opts: DryRunRequest): Promise<ApplyResult>;
  /** An error this target's driver raised, as a SyncError (kind, retry, hint), naming the table. */
  classifyError(e: unknown): SyncError;
  /**
   * Checksums of the table's rows by key bucket (postgres/rangeChecksums: count and sum of
   * row hashes per bucket at `bits`, only rows of `within`'s buckets when given), computed
   * by the server; `bytes` is what was read from it. Read-only.
   */
  bucketChecksums(request: BucketChecksumRequest): Promise<{ sums: Map<number, BucketSum>; bytes: number }>;
  /** The key and row hash of every row in `buckets` at `bits` (read-only); `bytes` as above. */
  bucketRows(request: BucketRowsRequest): Promise<{ rows: TargetBucketRow[]; bytes: number }>;
  /** Rows in the table; with a marker, only live ones. */
  countRows(marker?: SoftDeleteMarker): Promise<number>;
  /**
   * About how many rows the table holds, without reading it all: exact (with a marker,
   * live rows only) up to `exactUpTo` rows, else the catalog's estimate; 0 when the table
   * is missing.
   */
  estimateRows(marker?: SoftDeleteMarker, exactUpTo?: number): Promise<number>;
  /**
   * The rights `role` (default: the connection's own) needs on the target for `purposes`,
   * which of them it holds, and the SQL that grants them (read-only, from the catalogs).
   */
  rights(request: { purposes: readonly RightsPurpose[]; options: RightsOptions; role?: string }): Promise<RightsReport>;
}

export interface BucketChecksumRequest {
  /** The columns hashed, in order (the key among them). */
  columns: readonly TargetColumn[];
  key: readonly string[];
  bits: number;
  within?: { bits: number; buckets: readonly number[] };
}

export interface BucketRowsRequest {
  columns: readonly TargetColumn[];
  key: readonly string[];
  bits: number;
  buckets: readonly number[];
}

export interface TargetTableInfo {
  /** Column name -> type as Postgres spells it (format_type). */
  columns: Map<string, string>;
  primaryKey: string[];
}

/** What a run checks as it takes its lease (Target.acquireRun). */
export interface AcquireRunOptions {
  /**
   * The rights check the run starts with: the report for `request` is read (on a server, in
   * the lease's round trip) and handed to `check`, which throws to refuse the run (the
   * missing rights named). A refused run holds no lease: it was not taken, or was given
   * back before the refusal, and nothing else was written. The report comes back as
   * RunGuard.rights.
   */
  rights?: { request: { purposes: readonly RightsPurpose[]; options: RightsOptions; role?: string }; check(report: RightsReport): void };
  /**
   * The run may load the snapshot (its mode is not known to be incremental): what an
   * initial load asks first (swapBlockers, dropStagingLeftovers' lookup) may be read in the
   * same round trip, and answered from it by their next call.
   */
  initialLoad?: boolean;
}

/** Holds a run's right to run (see Target.acquireRun). */
export interface RunGuard {
  /** Runs found 'running' without a live process, marked 'abandoned'. */
  abandoned: bigint[];
  /** Said to the user when the run took the pipeline over from a holder that stopped (killed, stalled). */
  notice?: string;
  /**
   * The pipeline's checkpoint, read in the round trip that took the lease (null: it has
   * none); absent when it was not read with it (readCheckpoint then).
   */
  checkpoint?: Checkpoint | null;
  /**
   * Once another run has taken this run's lease over (the heartbeat found it, or the release
   * found the lease no longer this run's): the error the run stops with, whatever failed in
   * it afterwards (its connections are cut off when the take-over is seen). Undefined while
   * the run holds its lease, and on targets without a lease.
   */
  lost?(): SyncError | undefined;
  /** The rights report AcquireRunOptions.rights asked for (it passed its check). */
  rights?: RightsReport;
  release(): Promise<void>;
}

/** The run log (`runs`): written outside the data transactions, so failures are kept. */
export interface RunLog {
  /** `auto`: mapping mode "auto"'s choice (path and reason), recorded with the run whichever path it took. */
  start(run: { pipeline: string; mode: RunMode; fromVersion?: number | null; toVersion?: number | null; auto?: AutoSaid }): Promise<bigint>;
  /**
   * Records how a run ended. A run that `succeeded` ends with it: the run lease it holds is
   * given back in the same round trip (its guard's release() then has nothing left to do).
   */
  finish(runId: bigint, result: { status: RunStatus; rows?: number; error?: RunError; toVersion?: number | null }): Promise<void>;
  /** Newest first. */
  history(pipeline: string, limit: number): Promise<RunRecord[]>;
}

export interface InitialLoadRequest {
  /** Data columns (without the soft-delete marker, which `softDelete` adds). */
  columns: readonly TargetColumn[];
  key: readonly string[];
  /** `parallel`: more streams of encoded rows, each COPYed on a connection of its own at the same time as `encoded`. */
  rows: RowBatches | { encoded: AsyncIterable<EncodedRows>; parallel?: Array<AsyncIterable<EncodedRows>> };
  mode: 'swap' | 'merge';
  checkpoint: CheckpointInput;
  softDelete?: SoftDeleteMarker;
  fillfactor?: number;
  /**
   * Lineage columns: every loaded row gets the snapshot's version and commit timestamp and
   * the load's time; a merge adds missing ones to the table in its transaction, and with
   * `version` keeps (neither updates nor deletes) rows newer than the snapshot.
   */
  lineage?: LineageColumns;
  /**
   * Set rows the target refuses (a constraint, a trigger raising, a value it cannot hold, a
   * null key) aside in the dead-letter table and load the rest. Needs `rows`, not `encoded`
   * (encoded rows are not at hand to set aside).
   */
  deadLetter?: boolean;
  /**
   * A merge into an existing table whose columns differ from the snapshot's: the schema
   * changes (schemaDrift, as an incremental sync plans them) run first in the merge's
   * transaction, rendered by alterationSql as the preview shows them. Not for a swap (the
   * swapped-in table has the snapshot's columns).
   */
  alterations?: readonly TableAlteration[];
  /** Called as the load passes its steps: stage (COPY), index (primary key), swap or merge (the transaction). */
  onPhase?: (phase: 'stage' | 'index' | 'swap', detail: string) => void;
  /**
   * Safe deletes for a load over a table with rows (mapping `mode: "auto"` loading a
   * snapshot in place of an incremental sync): when the swap would delete (live rows whose
   * key the snapshot lacks) or the merge deleted or marked more than `max` rows, the load's
   * transaction is rolled back with `refuse`'s error, before the swap or the commit.
   */
  deleteLimit?: { max: number; refuse(deletes: number): Promise<Error> };
  /**
   * A rehearsal (the dry run of mapping mode "auto"'s snapshot path): everything the load
   * does (stage, index, the checks, the swap or merge) except that its transaction is
   * rolled back instead of committing with the checkpoint, and the staging table is
   * dropped. A swap's result counts what it would change: inserted (keys the table lacks),
   * updated (keys whose row differs), deleted (live keys the snapshot lacks), unchanged.
   */
  rehearse?: boolean;
  /**
   * The run's end may be recorded as succeeded (with the rows the load applied) and its
   * lease given back in the load's transaction (one round trip less); the result's
   * `runEnded` then says so, and RunLog.finish must not be called for it.
   */
  endRun?: { runId: bigint; toVersion: number };
}

export interface ApplyRequest {
  /**
   * Read the target's size for the delete guard (as estimateRows does, live rows with the
   * marker) in the transaction's opening, before anything is written: then
   * ApplyTransaction.estimatedRows holds it (when the target could read it there).
   */
  estimateRows?: { marker?: SoftDeleteMarker };
  columns: readonly TargetColumn[];
  key: readonly string[];
  softDelete?: SoftDeleteMarker;
  /** Lineage columns (the table has them, or `alterations` add them): staged values, now(), and the out-of-order guard with `version`. */
  lineage?: LineageColumns;
  pipeline: string;
  source: string;
  /** The checkpoint version the transaction starts from (null: none yet). */
  expectVersion: number | null;
  /** Set rows that violate constraints aside in the dead-letter table and apply the rest. */
  deadLetter?: boolean;
  /**
   * Refuse the transaction when an insert that must add a new key (marked by the plan,
   * MUST_BE_NEW) meets a key the table already holds (mapping duplicateKeys: fail);
   * `source` names the Delta table in the error.
   */
  refuseExistingKeys?: { source: string };
  /**
   * Changes of the table's columns run first in the transaction, right after its
   * checkpoint check and before any part (the run's one list, run/schemaDriftPlan.ts
   * `tableChanges`: schema drift, then lineage columns); they commit or roll back with the
   * rows and the checkpoint.
   */
  alterations?: readonly TableAlteration[];
}

/** One open apply transaction (Target.beginApply). Parts run one at a time. */
export interface ApplyTransaction {
  /** ApplyRequest.estimateRows's answer, when the opening read it; else undefined (estimateRows then). */
  readonly estimatedRows?: number;
  apply(part: ApplyPart): Promise<void>;
  /**
   * What the parts applied so far did to the target's rows (rows actually deleted or
   * marked, not deletes planned for keys it lacks); not committed yet. Safe deletes check it
   * before the commit.
   */
  totals(): Readonly<ApplyResult>;
  /**
   * Writes the checkpoint (and dead letters) and commits; returns the totals of all parts.
   * With `endRun` (the run's last transaction): the run's end may be recorded as succeeded,
   * with `rowsBefore` plus this transaction's rows, and its lease given back, in the same
   * transaction (one round trip less); `runEnded` then says so, and RunLog.finish must not
   * be called for it. A commit that fails records nothing of the run's end.
   */
  commit(checkpoint: { version: number; commitTimestamp: number | null; endRun?: { runId: bigint; rowsBefore: number; toVersion: number } }): Promise<ApplyResult & { runEnded?: boolean }>;
  /** Abandons the transaction: nothing of it stays. Never throws. */
  rollback(): Promise<void>;
}

export interface PreviewRequest {
  columns: readonly TargetColumn[];
  key: readonly string[];
  first: StagedChanges;
  later?: AsyncIterable<StagedChanges>;
  limit: number;
  offset?: number;
  include?: readonly PreviewAction[];
  /** List only rows whose key or values contain this text (case-insensitive); `matching` counts them. */
  search?: string;
  softDelete?: SoftDeleteMarker;
  targetLacks?: readonly string[];
  /** The lineage version column (among `columns`, present in the table): changes the out-of-order guard refuses are classified 'kept'. */
  guardVersion?: string;
  liveOnly?: boolean;
  /** The sync's changes of the table's columns, run (and rolled back) before the rows are classified. */
  alterations?: readonly TableAlteration[];
  /** Count inserts of keys the target already holds (the sync's refuseExistingKeys check): PreviewResult.existingKeys. */
  refuseExistingKeys?: boolean;
}

export interface DryRunRequest {
  columns: readonly TargetColumn[];
  key: readonly string[];
  first: StagedChanges;
  later?: AsyncIterable<StagedChanges>;
  softDelete?: SoftDeleteMarker;
  lineage?: LineageColumns;
  pipeline: string;
  source: string;
  version: number;
  /** As the sync's (ApplyRequest.refuseExistingKeys): an insert of a key the target holds is refused. */
  refuseExistingKeys?: { source: string };
  /** As the sync's (ApplyRequest.alterations): run first, rolled back with the rest. */
  alterations?: readonly TableAlteration[];
}
