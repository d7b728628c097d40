import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { ChangeRow, DeltaField, DeltaType, Row } from '../delta/types';
import { SyncError, isSyncError } from '../errors';
import { compileRowFilter } from '../mapping/compileRowFilter';
import type { Mapping } from '../mapping/mappingSchema';
import { keySourceColumns, resolveColumns } from '../mapping/resolveColumns';
import type { TargetColumn as MappedColumn } from '../mapping/resolveColumns';
import { planSteps } from '../plan/planSteps';
import type { PlanStepsOptions } from '../plan/planSteps';
import type { NetChanges } from '../plan/netChanges';
import { applyDeletePolicy } from '../plan/applyDeletePolicy';
import { ApplyStream, applyChanges, dryRunChanges } from '../postgres/applyChanges';
import type { ApplyPart, ApplyResult, RejectedRow, StagedChanges } from '../postgres/applyChanges';
import type { EncodedRows } from '../postgres/copyRows';
import { classifyPgError } from '../postgres/classifyPgError';
import { initialLoad } from '../postgres/initialLoad';
import { previewChanges } from '../postgres/previewChanges';
import type { PreviewAction, PreviewResult } from '../postgres/previewChanges';
import { derivedName, displayName, qualifiedRef, quoteIdent } from '../postgres/quoteIdent';
import type { TableRef } from '../postgres/quoteIdent';
import type { TargetColumn } from '../postgres/renderCreateTable';
import { DEFAULT_FILLFACTOR } from '../postgres/renderCreateTable';
import {
  ensureMarkerColumn, isLiveSql, liveMarkerValue, markerCatalogType, markerColumnDefinition, markerTargetColumn, renderCreateTableWithMarker,
} from '../postgres/softDeleteMarker';
import type { SoftDeleteMarker } from '../postgres/softDeleteMarker';
import {
  ensureStateTables, finishRun, latestRunningRun, markAbandonedRuns, readCheckpoint, releaseRunLock, startRun, tryRunLock, writeCheckpoint,
} from '../postgres/stateTables';
import type { Checkpoint } from '../postgres/stateTables';
import type { ChangeSource, WorkerSource } from '../ports/ChangeSource';
import { commitTimestamps } from '../ports/ChangeSource';
import { changePlanWorkerScript, planInWorker, snapshotInWorker } from './changePlanWorker';
import { RateLimit, sleep } from './RateLimit';
import type { ChangePlanInput, SnapshotReadInput } from './changePlanWorker';
import type { SyncEvent, SyncEventListener, SyncMode } from '../ports/events';
import type { Logger } from '../ports/Logger';
import { silentLogger } from '../ports/Logger';

export interface RunOptions {
  mode?: SyncMode | 'auto';
  /** Stop at this version (default: the source's latest). */
  toVersion?: number;
  signal?: AbortSignal;
  onEvent?: SyncEventListener;
  /** Attempts for transient connection errors (default 5), with exponential backoff. */
  maxAttempts?: number;
  /** Base backoff in ms (default 500). */
  backoffMs?: number;
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
}

export interface PreviewOptions {
  toVersion?: number;
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
  ddl?: string;
}

export interface DryRunReport {
  fromVersion: number | null;
  toVersion: number;
  result: ApplyResult;
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
  latestVersion: number;
  checkpoint: Checkpoint | null;
  /** Versions the target is behind the source; null before the initial load. */
  lag: number | null;
  targetExists: boolean;
  runs: RunHistoryEntry[];
}

export interface RunHistoryEntry {
  runId: string;
  mode: string;
  fromVersion: string | null;
  toVersion: string | null;
  rows: string | null;
  status: string;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

interface Plan {
  schema: DeltaField[];
  /** Data columns, then (soft-delete policy) the marker column last. */
  columns: TargetColumn[];
  key: string[];
  keySource: string[];
  /** Soft-delete policy: the marker column, with a row key no Delta column uses. */
  marker?: SoftDeleteMarker;
}

/** Holds a run's right to run (see SyncRunner.acquireRunGuard). */
interface RunGuard {
  /** Runs found 'running' without a live process, marked 'abandoned'. */
  abandoned: bigint[];
  release(): Promise<void>;
}

/**
 * Pipelines with a run in progress in this process, for targets where a run lock
 * connection is not possible (the sandbox): pipeline name -> when it started.
 */
const localRuns = new Map<string, { startedAt: Date; runId?: bigint }>();

/**
 * Keys per part when one commit is applied in parts (planSteps): small enough that the
 * first part is read quickly and the server works on one part while the next is read;
 * large enough that the per-statement cost stays small (bench: 100k changes in one commit).
 */
const PART_ROWS = 10_000;

/** Change rows per read batch. */
const READ_BATCH_ROWS = 10_000;

/** A step of the incremental loop: planSteps' steps, with parts ready for ApplyStream. */
type RunStep =
  | { type: 'apply'; part: ApplyPart; rows: number; /** With dead letters: the whole batch, for applyChanges. */ batch?: NetChanges }
  | { type: 'commit'; version: number | null; fromVersion: number; parts: number };

/**
 * Runs one mapping: plan (read-only preview) -> initial load -> incremental syncs.
 * Every batch commits with its checkpoint, so a run that dies leaves the target at the
 * last committed batch and the next run resumes there. One run per pipeline at a time: a
 * run holds the pipeline's run lock (acquireRunGuard), a second one fails at once, and
 * runs whose process died are marked 'abandoned' by the next run or status(). Emits typed events; honours an
 * AbortSignal between batches and while reading.
 */
export class SyncRunner {
  private readonly logger: Logger;
  readonly table: TableRef;

  constructor(
    private readonly mapping: Mapping,
    private readonly source: ChangeSource,
    private readonly pool: Pool,
    logger?: Logger,
  ) {
    this.logger = logger ?? silentLogger;
    this.table = { schema: mapping.target.schema, name: mapping.target.table };
  }

  get pipeline(): string {
    return this.mapping.name;
  }

  async status(): Promise<PipelineStatus> {
    const latestVersion = await this.source.latestVersion();
    return this.withClient(async (c) => {
      await ensureStateTables(c);
      await this.reapAbandoned(c);
      const checkpoint = (await readCheckpoint(c, this.pipeline)) ?? null;
      const runs = await c.query<{
        run_id: unknown; mode: string; from_version: unknown; to_version: unknown; rows: unknown; status: string; error: string | null; started_at: string; finished_at: string | null;
      }>(
        `SELECT run_id, mode, from_version, to_version, rows, status, error, started_at::text AS started_at, finished_at::text AS finished_at
           FROM delta_neon_sync.runs WHERE pipeline = $1 ORDER BY run_id DESC LIMIT 20`,
        [this.pipeline],
      );
      const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
      return {
        pipeline: this.pipeline,
        source: this.source.name,
        target: displayName(this.table),
        latestVersion,
        checkpoint,
        lag: checkpoint ? latestVersion - Number(checkpoint.version) : null,
        targetExists: (await this.targetColumns(c)) !== undefined,
        runs: runs.rows.map((r) => ({
          runId: String(r.run_id),
          mode: r.mode,
          fromVersion: str(r.from_version),
          toVersion: str(r.to_version),
          rows: str(r.rows),
          status: r.status,
          error: r.error,
          startedAt: r.started_at,
          finishedAt: r.finished_at,
        })),
      };
    });
  }

  /** The CREATE TABLE an initial load would run for the source schema at `version`. */
  async renderDdl(version?: number): Promise<string> {
    const snap = await this.source.snapshot(version);
    const plan = this.planColumns(snap.schema, undefined, snap.version);
    return this.createTableSql(plan);
  }

  /** The target's CREATE TABLE: data columns, and the soft-delete marker with its default. */
  private createTableSql(plan: Plan): string {
    return renderCreateTableWithMarker(this.table, dataColumns(plan), plan.key, plan.marker, { fillfactor: this.mapping.initialLoad.fillfactor ?? DEFAULT_FILLFACTOR });
  }

  /**
   * Syncs: `auto` runs the initial load when the pipeline has no checkpoint, else an
   * incremental sync. Transient connection errors are retried with backoff; each attempt
   * resumes from the checkpoint, so nothing is applied twice.
   */
  async run(opts: RunOptions = {}): Promise<RunResult> {
    const maxAttempts = opts.maxAttempts ?? 5;
    const backoff = opts.backoffMs ?? 500;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runOnce(opts);
      } catch (e) {
        const err = this.classify(e);
        if (err.retry !== 'auto' || attempt >= maxAttempts || opts.signal?.aborted) throw err;
        const delay = backoff * 2 ** (attempt - 1);
        this.emit(opts, { type: 'warning', message: `${err.message} — retrying in ${delay} ms (attempt ${attempt + 1} of ${maxAttempts})`, at: Date.now() });
        this.logger.warn(`retrying after transient error: ${err.message}`);
        await sleep(delay, opts.signal);
      }
    }
  }

  private async runOnce(opts: RunOptions): Promise<RunResult> {
    const guard = await this.acquireRunGuard();
    try {
      if (guard.abandoned.length > 0) {
        const ids = guard.abandoned.map((id) => `#${id}`).join(', ');
        const msg = `Run(s) ${ids} of pipeline "${this.pipeline}" were still marked running, but the process running them had stopped (killed or lost its connection); marked them abandoned.`;
        this.emit(opts, { type: 'warning', message: msg, at: Date.now() });
        this.logger.warn(msg);
      }
      const checkpoint = await this.withClient(async (c) => readCheckpoint(c, this.pipeline));
      const mode: SyncMode = opts.mode === 'initial' || opts.mode === 'incremental' ? opts.mode : checkpoint ? 'incremental' : 'initial';
      if (mode === 'incremental' && !checkpoint) {
        throw new SyncError('mapping', `Pipeline "${this.pipeline}" has no checkpoint in ${displayName(this.table)}: run an initial load first.`, {
          hint: `delta-neon-sync sync --mapping <file> --mode initial`,
        });
      }
      const r = mode === 'initial' ? await this.runInitial(opts) : await this.runIncremental(opts, checkpoint as Checkpoint);
      if (guard.abandoned.length > 0) r.abandonedRuns = guard.abandoned.map(String);
      return r;
    } finally {
      await guard.release();
    }
  }

  /** Whether runs hold their run lock on a connection of their own (a real server pool with room for it). */
  private usesRunLockConnection(): boolean {
    // The sandbox's pool (PglitePool) has no `options`; it hands out one client at a time,
    // so a lock connection held for the whole run would starve the run itself.
    const o: unknown = (this.pool as unknown as { options?: unknown }).options;
    if (typeof o !== 'object' || o === null) return false;
    const max = (o as { max?: unknown }).max;
    return typeof max !== 'number' || max >= 2;
  }

  /**
   * Makes sure no other run of this pipeline is live, and marks runs left 'running' by a
   * dead process as 'abandoned'. On a server: takes the pipeline's session-level advisory
   * lock on a connection held until release() (a killed process's session ends and frees
   * it); if a live run holds it, fails at once. On the sandbox (one process owns the
   * database): a per-process registry instead, and any 'running' row is abandoned.
   */
  private async acquireRunGuard(): Promise<RunGuard> {
    if (!this.usesRunLockConnection()) {
      const live = localRuns.get(this.pipeline);
      if (live) throw this.runInProgress(live.startedAt.toISOString(), live.runId);
      const entry = { startedAt: new Date() };
      localRuns.set(this.pipeline, entry);
      try {
        const abandoned = await this.withClient(async (c) => {
          await ensureStateTables(c);
          return markAbandonedRuns(c, this.pipeline);
        });
        return { abandoned, release: async () => void (localRuns.get(this.pipeline) === entry && localRuns.delete(this.pipeline)) };
      } catch (e) {
        localRuns.delete(this.pipeline);
        throw e;
      }
    }
    const c = await this.connect();
    // A checked-out client has no error listener: without one, the session dying while the
    // run works on other connections would crash the process. The run's own connections
    // report such a failure.
    let lost: Error | undefined;
    const onError = (e: Error): void => {
      lost = e;
      this.logger.warn(`pipeline ${this.pipeline}: the run lock connection failed: ${e.message}`);
    };
    c.on('error', onError);
    let given = false;
    const giveBack = (err?: Error): void => {
      if (given) return;
      given = true;
      c.removeListener('error', onError);
      c.release(err);
    };
    try {
      await ensureStateTables(c);
      // A killed run's session ends a moment after its process: give it that moment.
      let locked = false;
      for (let attempt = 0; attempt < 6 && !locked; attempt++) {
        if (attempt > 0) await sleep(250);
        locked = await tryRunLock(c, this.pipeline);
      }
      if (!locked) {
        const running = await latestRunningRun(c, this.pipeline);
        giveBack();
        throw this.runInProgress(running?.startedAt, running?.runId);
      }
      const abandoned = await markAbandonedRuns(c, this.pipeline);
      return {
        abandoned,
        release: async () => {
          if (lost) return giveBack(lost);
          try {
            await releaseRunLock(c, this.pipeline);
            giveBack();
          } catch (e) {
            // Destroying the connection ends the session, which frees the lock too.
            giveBack(e instanceof Error ? e : new Error(String(e)));
          }
        },
      };
    } catch (e) {
      giveBack(lost ?? (e instanceof Error ? e : new Error(String(e))));
      throw e;
    }
  }

  /** Sandbox: remembers the run's id for the message a concurrent run gets. */
  private noteRunId(id: bigint): void {
    const entry = this.usesRunLockConnection() ? undefined : localRuns.get(this.pipeline);
    if (entry) entry.runId = id;
  }

  private runInProgress(startedAt: string | undefined, runId: bigint | undefined): SyncError {
    const detail = [startedAt ? `started at ${startedAt}` : undefined, runId !== undefined ? `run #${runId}` : undefined].filter(Boolean).join(', ');
    return new SyncError('target', `Another run of pipeline "${this.pipeline}" is in progress${detail ? ` (${detail})` : ''}.`, {
      table: displayName(this.table),
      retry: 'manual',
      hint: 'Wait for it to finish (or stop it), then sync again.',
    });
  }

  /**
   * status(): marks runs left 'running' by a dead process as 'abandoned' when it can tell
   * (the run lock is free; on the sandbox, no run of the pipeline in this process).
   */
  private async reapAbandoned(c: PoolClient): Promise<void> {
    if (!this.usesRunLockConnection()) {
      if (!localRuns.has(this.pipeline)) await markAbandonedRuns(c, this.pipeline);
      return;
    }
    if (!(await tryRunLock(c, this.pipeline))) return;
    try {
      await markAbandonedRuns(c, this.pipeline);
    } finally {
      await releaseRunLock(c, this.pipeline);
    }
  }

  private async runInitial(opts: RunOptions): Promise<RunResult> {
    const snap = await this.source.snapshot(opts.toVersion);
    const existing = await this.withClient((c) => this.targetColumns(c));
    const plan = this.planColumns(snap.schema, existing?.primaryKey, snap.version);
    const runId = randomUUID();
    const started = Date.now();
    this.emit(opts, { type: 'run-started', runId, pipeline: this.pipeline, mode: 'initial', fromVersion: null, toVersion: snap.version, at: started });
    const leftovers = await this.withClient((c) => this.dropStagingLeftovers(c));
    if (leftovers.length > 0) {
      this.emit(opts, { type: 'warning', message: `Dropped ${leftovers.length} staging table(s) left by an interrupted initial load: ${leftovers.join(', ')}.`, at: Date.now() });
    }
    const dbRunId = await this.withClient((c) => startRun(c, { pipeline: this.pipeline, mode: `initial-${this.mapping.initialLoad.mode}`, toVersion: snap.version }));
    this.noteRunId(dbRunId);
    let rowsRead = 0;
    let lastEmit = 0;
    const filter = this.mapping.filter ? compileRowFilter(this.mapping.filter, snap.schema) : undefined;
    // The rate limit paces the rows COPY sends to the target, as it paces incremental batches.
    const maxRate = this.mapping.batch.maxRowsPerSecond;
    const limit = maxRate ? new RateLimit(maxRate) : undefined;
    // Paced, rows go in steps of about a tenth of a second's worth, so the pace is even.
    const step = maxRate ? Math.max(1, Math.min(1_000, Math.ceil(maxRate / 10))) : 1_000;
    const self = this;
    async function* rows(): AsyncGenerator<Row[]> {
      // Small batches: a batch's row objects live until COPY has encoded them, across
      // socket waits; with 10 000 rows they outlived the young generation and were promoted,
      // growing the old generation with garbage (peak RSS of a 1M-row load 313-327 MB vs
      // 272-293 MB with 1 000, at the same speed; measured in a plain-node esbuild bundle).
      for await (const batch of snap.rows({ batchSize: Math.min(self.mapping.batch.maxRows, step), signal: opts.signal })) {
        throwIfAborted(opts.signal);
        const kept = filter ? batch.filter(filter) : batch;
        rowsRead += batch.length;
        const now = Date.now();
        if (now - lastEmit > 200) {
          lastEmit = now;
          self.emitProgress(opts, started, rowsRead, 0, 0, null, null);
        }
        if (kept.length > 0) {
          await limit?.admit(kept.length, opts.signal);
          yield kept;
        }
      }
    }
    // Read and encoded on a worker thread when the source can be opened there: the rows
    // then reach this thread as COPY text, so decoding overlaps the COPY.
    const workerSource = process.env.DELTA_NEON_SYNC_READ_THREAD === 'main' ? undefined : this.source.workerSource?.();
    async function* encoded(ws: WorkerSource): AsyncGenerator<EncodedRows> {
      const input: SnapshotReadInput = {
        source: ws, version: snap.version, columns: dataColumns(plan), batchSize: step,
        ...(limit ? { messageRows: step } : {}),
        ...(self.mapping.filter ? { filter: self.mapping.filter } : {}),
      };
      for await (const m of snapshotInWorker(input, opts.signal)) {
        rowsRead += m.read;
        const now = Date.now();
        if (now - lastEmit > 200) {
          lastEmit = now;
          self.emitProgress(opts, started, rowsRead, 0, 0, null, null);
        }
        await limit?.admit(m.encoded.count, opts.signal);
        yield m.encoded;
      }
    }
    try {
      this.emit(opts, { type: 'phase', phase: 'read', detail: `snapshot of ${this.source.name} at version ${snap.version}`, at: Date.now() });
      const result = await initialLoad(this.pool, {
        table: this.table,
        columns: dataColumns(plan),
        key: plan.key,
        rows: workerSource && changePlanWorkerScript() ? { encoded: encoded(workerSource) } : rows(),
        mode: this.mapping.initialLoad.mode,
        checkpoint: { pipeline: this.pipeline, source: this.source.name, version: snap.version, commitTimestamp: snap.timestamp },
        softDelete: plan.marker,
        fillfactor: this.mapping.initialLoad.fillfactor,
      });
      const softDeleted = result.softDeleted ?? 0;
      const deleted = result.deleted + softDeleted;
      const applied = result.mode === 'swap' ? result.rows : result.inserted + result.updated + deleted;
      this.emitProgress(opts, started, rowsRead, applied, 1, snap.version, rowsRead);
      this.emit(opts, {
        type: 'batch-committed', fromVersion: snap.version, toVersion: snap.version,
        inserted: result.mode === 'swap' ? result.rows : result.inserted, updated: result.updated, deleted,
        unchanged: result.unchanged, deadLettered: 0, at: Date.now(),
      });
      for (const w of result.warnings) this.emit(opts, { type: 'warning', message: w, at: Date.now() });
      await this.withClient((c) => finishRun(c, dbRunId, { status: 'succeeded', rows: applied, toVersion: snap.version }));
      this.emit(opts, { type: 'run-finished', runId, status: 'succeeded', checkpointVersion: snap.version, rowsApplied: applied, at: Date.now() });
      return {
        runId, mode: 'initial', status: 'succeeded', fromVersion: null, toVersion: snap.version, rowsRead,
        inserted: result.mode === 'swap' ? result.rows : result.inserted, updated: result.updated, deleted,
        unchanged: result.unchanged, deadLettered: 0, batches: 1, warnings: result.warnings,
        createdTableSql: result.createdTable ? this.createTableSql(plan) : undefined,
        ...(plan.marker ? { softDeleted } : {}),
      };
    } catch (e) {
      await this.recordFailure(opts, runId, dbRunId, e, null);
      throw this.classify(e);
    }
  }

  private async runIncremental(opts: RunOptions, checkpoint: Checkpoint): Promise<RunResult> {
    const start = Number(checkpoint.version) + 1;
    const latest = await this.source.latestVersion();
    const end = Math.min(opts.toVersion ?? latest, latest);
    const runId = randomUUID();
    const base: RunResult = {
      runId, mode: 'incremental', status: 'up-to-date', fromVersion: start, toVersion: Math.max(end, start - 1),
      rowsRead: 0, inserted: 0, updated: 0, deleted: 0, unchanged: 0, deadLettered: 0, batches: 0, warnings: [],
      ...(this.mapping.deletes.mode === 'soft-delete' ? { softDeleted: 0 } : {}),
    };
    if (end < start) {
      this.emit(opts, { type: 'run-finished', runId, status: 'succeeded', checkpointVersion: start - 1, rowsApplied: 0, at: Date.now() });
      return base;
    }
    const started = Date.now();
    this.emit(opts, { type: 'run-started', runId, pipeline: this.pipeline, mode: 'incremental', fromVersion: start, toVersion: end, at: started });
    const dbRunId = await this.withClient((c) => startRun(c, { pipeline: this.pipeline, mode: 'incremental', fromVersion: start, toVersion: end }));
    this.noteRunId(dbRunId);
    let committed = start - 1;
    try {
      const snap = await this.source.snapshot(end);
      const plan = await this.withClient(async (c) => {
        const existing = await this.targetColumns(c);
        if (!existing) {
          throw new SyncError('target', `Target table ${displayName(this.table)} does not exist, but pipeline "${this.pipeline}" has a checkpoint at version ${checkpoint.version}.`, {
            table: displayName(this.table),
            hint: 'Run a new initial load: delta-neon-sync sync --mapping <file> --mode initial',
          });
        }
        const p = this.planColumns(snap.schema, existing.primaryKey, end);
        if (p.marker) {
          // The mapping asks for the marker: add it whatever the schemaDrift policy says.
          const added = await ensureMarkerColumn(c, this.table, p.marker, existing.columns);
          if (added) {
            base.warnings.push(added);
            this.emit(opts, { type: 'warning', message: added, at: Date.now() });
            existing.columns.set(p.marker.column, markerCatalogType(p.marker));
          }
        }
        return this.reconcileDrift(c, p, existing.columns, start, end, base.warnings, opts);
      });
      const result = base;
      result.status = 'succeeded';
      const maxRate = this.mapping.batch.maxRowsPerSecond;
      const limit = maxRate ? new RateLimit(maxRate) : undefined;
      const versionTimestamps = new Map<number, number>();
      const steps = this.applySteps(plan, start, end, opts, result, started, versionTimestamps);
      // The open transaction: parts go to an ApplyStream, whose apply() runs while the
      // next part is read; a transaction of one part with dead letters goes to applyChanges.
      let open: { client: PoolClient; stream: ApplyStream; pending: Promise<void>; rows: number } | undefined;
      let single: NetChanges | undefined;
      try {
        for await (const step of steps) {
          throwIfAborted(opts.signal);
          if (step.type === 'apply') {
            if (step.batch) {
              single = step.batch;
              continue;
            }
            if (!open) {
              const client = await this.connect();
              try {
                const stream = await ApplyStream.begin(client, {
                  table: this.table, columns: plan.columns, key: plan.key,
                  ...(plan.marker ? { softDelete: plan.marker } : {}),
                  checkpoint: { pipeline: this.pipeline, source: this.source.name, version: committed, commitTimestamp: null },
                  expectVersion: committed,
                });
                open = { client, stream, pending: Promise.resolve(), rows: 0 };
              } catch (e) {
                client.release(e instanceof Error ? e : true);
                throw e;
              }
            }
            const o = open;
            await o.pending;
            // The rate limit holds inside a transaction applied in parts too.
            await limit?.admit(step.rows, opts.signal);
            o.rows += step.rows;
            o.pending = o.stream.apply(step.part);
            // Handled when awaited; this only keeps a failure from counting as unhandled meanwhile.
            o.pending.catch(() => undefined);
            continue;
          }
          const version = step.version ?? end;
          const ts = versionTimestamps.get(version) ?? (await this.source.commitTimestamp(version));
          let applied: ApplyResult;
          if (open) {
            const o = open;
            await o.pending;
            applied = await o.stream.commit({ pipeline: this.pipeline, source: this.source.name, version, commitTimestamp: ts });
            open = undefined;
            o.client.release();
          } else {
            const net = single as NetChanges;
            single = undefined;
            await limit?.admit(net.upserts.length + net.deletes.length, opts.signal);
            applied = await this.applyBatch(plan, net, committed, version, ts);
          }
          const t = applied.timings;
          if (t) this.logger.debug(`pipeline ${this.pipeline}: versions ${committed + 1}..${version} applied in ${step.parts} part(s) (prepare ${t.prepareMs} ms, stage ${t.stageMs} ms, delete ${t.deleteMs} ms, upsert ${t.upsertMs} ms, commit ${t.commitMs} ms)`);
          const softDeleted = applied.softDeleted ?? 0;
          this.emit(opts, {
            type: 'batch-committed', fromVersion: committed + 1, toVersion: version, inserted: applied.inserted, updated: applied.updated,
            deleted: applied.deleted + softDeleted, unchanged: applied.unchanged, deadLettered: applied.rejected.length, at: Date.now(),
          });
          committed = version;
          result.batches++;
          result.inserted += applied.inserted;
          result.updated += applied.updated;
          result.deleted += applied.deleted + softDeleted;
          if (result.softDeleted !== undefined) result.softDeleted += softDeleted;
          result.unchanged += applied.unchanged;
          result.deadLettered += applied.rejected.length;
          this.emitProgress(opts, started, result.rowsRead, result.inserted + result.updated + result.deleted, result.batches, committed, null);
        }
      } finally {
        if (open) {
          // A failure or an abort before the commit: nothing of this transaction stays.
          const o = open;
          open = undefined;
          await o.pending.catch(() => undefined);
          await o.stream.rollback();
          o.client.release(true);
        }
      }
      if (committed < end) {
        // Versions without change rows (metadata-only commits, OPTIMIZE): advance the checkpoint alone.
        await this.withClient(async (c) => {
          await c.query('BEGIN');
          try {
            const cur = await readCheckpoint(c, this.pipeline);
            if (Number(cur?.version ?? -1) !== committed) throw staleCheckpoint(this.pipeline, committed, cur);
            await writeCheckpoint(c, { pipeline: this.pipeline, source: this.source.name, version: end, commitTimestamp: await this.source.commitTimestamp(end) }, 0);
            await c.query('COMMIT');
          } catch (e) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw e;
          }
        });
        committed = end;
      }
      const rowsApplied = result.inserted + result.updated + result.deleted;
      await this.withClient((c) => finishRun(c, dbRunId, { status: 'succeeded', rows: rowsApplied, toVersion: end }));
      this.emit(opts, { type: 'run-finished', runId, status: 'succeeded', checkpointVersion: committed, rowsApplied, at: Date.now() });
      return result;
    } catch (e) {
      await this.recordFailure(opts, runId, dbRunId, e, committed);
      throw this.classify(e);
    }
  }

  private async applyBatch(plan: Plan, net: NetChanges, expectVersion: number, version: number, commitTimestamp: number): Promise<ApplyResult> {
    const policy = applyDeletePolicy(net, this.mapping.deletes, { markerKey: plan.marker?.rowKey });
    const client = await this.connect();
    try {
      const r = await applyChanges(client, {
        table: this.table,
        columns: plan.columns,
        key: plan.key,
        upserts: [policy.upserts],
        deletes: [policy.deletes],
        ...(plan.marker ? { softDelete: plan.marker, softDeletes: [policy.softDeletes] } : {}),
        checkpoint: { pipeline: this.pipeline, source: this.source.name, version, commitTimestamp },
        deadLetter: this.mapping.deadLetter,
        expectVersion,
      });
      client.release();
      return r;
    } catch (e) {
      client.release(e instanceof Error ? e : true);
      throw e;
    }
  }

  /** Read-only: what a sync would do now, row by row, against the rows in the target. */
  async preview(opts: PreviewOptions = {}): Promise<PreviewReport> {
    return this.withClient(async (c) => {
      await ensureStateTables(c);
      const checkpoint = await readCheckpoint(c, this.pipeline);
      const existing = await this.targetColumns(c);
      const latest = await this.source.latestVersion();
      const end = Math.min(opts.toVersion ?? latest, latest);
      const snap = await this.source.snapshot(checkpoint ? end : opts.toVersion);
      const plan = this.planColumns(snap.schema, existing?.primaryKey, snap.version);
      const limit = opts.limit ?? 100;
      const offset = opts.offset ?? 0;
      const marker = plan.marker;
      const lacks = marker && existing && !existing.columns.has(marker.column) ? [marker.column] : [];
      const soft = marker ? { softDelete: marker, targetLacks: lacks } : {};
      if (!checkpoint) {
        // Initial load preview: the snapshot's rows against what the target holds (or nothing).
        const filter = this.mapping.filter ? compileRowFilter(this.mapping.filter, snap.schema) : undefined;
        // The load writes every row live.
        const live = (b: Row[]): Row[] => withLiveMarker(b, marker);
        const rows = async function* (): AsyncGenerator<Row[]> {
          for await (const b of snap.rows({ batchSize: 10_000, signal: opts.signal })) yield live(filter ? b.filter(filter) : b);
        };
        const ddl = this.createTableSql(plan);
        if (!existing) {
          const page: Row[] = [];
          let total = 0;
          if (!filter && snap.rowsFrom && typeof snap.rowCount === 'number') {
            // The count from the log's stats, and only the files holding the page are read:
            // paging through a large table's preview does not read the table for every page.
            total = snap.rowCount;
            if (offset < total) {
              for await (const b of snap.rowsFrom(offset, { batchSize: Math.min(10_000, Math.max(1, limit)), signal: opts.signal })) {
                page.push(...live(b.slice(0, limit - page.length)));
                if (page.length >= limit) break;
              }
            }
          } else {
            for await (const b of rows()) {
              for (const r of b) {
                if (total >= offset && page.length < limit) page.push(r);
                total++;
              }
            }
          }
          return {
            mode: 'initial', fromVersion: null, toVersion: snap.version, targetMissing: true, ddl,
            rows: page.map((r) => ({ action: 'insert' as const, key: textRow(r, plan.columns.filter((col) => plan.key.includes(col.name))), newRow: textRow(r, plan.columns) })),
            totals: { insert: total, update: 0, delete: 0, unchanged: 0, 'delete-missing': 0 },
            matching: total,
          };
        }
        const r = await previewChanges(c, { table: this.table, columns: plan.columns, key: plan.key, upserts: rows(), deletes: [], limit, offset, include: opts.include, ...soft });
        return { ...r, mode: 'initial', fromVersion: null, toVersion: snap.version, targetMissing: false, ddl };
      }
      const start = Number(checkpoint.version) + 1;
      if (!existing) {
        throw new SyncError('target', `Target table ${displayName(this.table)} does not exist, but pipeline "${this.pipeline}" has a checkpoint at version ${checkpoint.version}.`, {
          hint: 'Run a new initial load: delta-neon-sync sync --mapping <file> --mode initial',
        });
      }
      // The sync's own transactions (planSteps with the sync's limits): the first is
      // classified against the target, each later one against the target as the earlier
      // ones leave it, so the totals are what the sync will report.
      const { first, later } = await this.transactionsOf(plan, start, end, opts.signal);
      const r = await previewChanges(c, {
        table: this.table, columns: plan.columns, key: plan.key, upserts: first.upserts, deletes: first.deletes, limit, offset, include: opts.include,
        ...soft, ...(marker ? { softDeletes: first.softDeletes ?? [] } : {}),
        ...(later ? { later } : {}),
      });
      return { ...r, mode: 'incremental', fromVersion: start, toVersion: end, targetMissing: false };
    });
  }

  /**
   * Reconciles the target with the source snapshot at the checkpoint version: rows missing
   * from the target, rows whose values differ, and target rows the source does not have.
   * Read-only (the comparison is staged in a rolled-back transaction).
   */
  async verify(opts: { signal?: AbortSignal; sampleLimit?: number } = {}): Promise<VerifyReport> {
    return this.withClient(async (c) => {
      await ensureStateTables(c);
      const checkpoint = await readCheckpoint(c, this.pipeline);
      if (!checkpoint) {
        throw new SyncError('mapping', `Pipeline "${this.pipeline}" has no checkpoint yet: nothing to verify.`, { hint: 'Run a sync first.' });
      }
      const existing = await this.targetColumns(c);
      const version = Number(checkpoint.version);
      const snap = await this.source.snapshot(version);
      const plan = this.planColumns(snap.schema, existing?.primaryKey, version);
      const filter = this.mapping.filter ? compileRowFilter(this.mapping.filter, snap.schema) : undefined;
      const marker = plan.marker;
      const rows = async function* (): AsyncGenerator<Row[]> {
        for await (const b of snap.rows({ batchSize: 10_000, signal: opts.signal })) {
          const kept = filter ? b.filter(filter) : b;
          yield withLiveMarker(kept, marker);
        }
      };
      // Soft delete: the source is compared with the live target rows; rows marked deleted are expected extras.
      const lacks = marker && existing && !existing.columns.has(marker.column) ? [marker.column] : [];
      const r = await previewChanges(c, {
        table: this.table, columns: plan.columns, key: plan.key, upserts: rows(), deletes: [], limit: opts.sampleLimit ?? 20, include: ['insert', 'update'],
        ...(marker ? { softDelete: marker, targetLacks: lacks, liveOnly: true } : {}),
      });
      const live = marker && lacks.length === 0 ? ` WHERE ${isLiveSql('', marker)}` : '';
      const count = await c.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${qualifiedRef(this.table)}${live}`);
      const targetRows = Number(count.rows[0]?.n ?? 0);
      const sourceRows = r.totals.insert + r.totals.update + r.totals.unchanged;
      const extra = targetRows - r.totals.update - r.totals.unchanged;
      return {
        version, sourceRows, targetRows, missing: r.totals.insert, differing: r.totals.update, extra,
        equal: r.totals.insert === 0 && r.totals.update === 0 && extra === 0, samples: r.rows,
      };
    });
  }

  /** Applies the pending changes inside a transaction that is rolled back; reports rows a constraint would reject. */
  async dryRun(opts: { toVersion?: number; signal?: AbortSignal } = {}): Promise<DryRunReport> {
    return this.withClient(async (c) => {
      await ensureStateTables(c);
      const checkpoint = await readCheckpoint(c, this.pipeline);
      if (!checkpoint) {
        throw new SyncError('mapping', `Pipeline "${this.pipeline}" has no checkpoint: a dry run checks incremental changes; preview the initial load instead.`, {
          hint: 'delta-neon-sync preview --mapping <file>',
        });
      }
      const existing = await this.targetColumns(c);
      const latest = await this.source.latestVersion();
      const end = Math.min(opts.toVersion ?? latest, latest);
      const start = Number(checkpoint.version) + 1;
      const snap = await this.source.snapshot(end);
      const plan = this.planColumns(snap.schema, existing?.primaryKey, end);
      if (plan.marker && existing && !existing.columns.has(plan.marker.column)) {
        throw new SyncError('target', `${displayName(this.table)} has no soft-delete column "${plan.marker.column}" yet, so a dry run cannot check the changes.`, {
          table: displayName(this.table),
          column: plan.marker.column,
          hint: `A sync adds it; or add it yourself: ALTER TABLE ${qualifiedRef(this.table)} ADD COLUMN ${markerColumnDefinition(plan.marker)};`,
        });
      }
      // The sync's own transactions, each applied on the state the earlier ones leave.
      const { first, later } = await this.transactionsOf(plan, start, end, opts.signal);
      const result = await dryRunChanges(c, {
        table: this.table, columns: plan.columns, key: plan.key, upserts: first.upserts, deletes: first.deletes,
        ...(plan.marker ? { softDelete: plan.marker, softDeletes: first.softDeletes ?? [] } : {}),
        ...(later ? { later } : {}),
        checkpoint: { pipeline: this.pipeline, source: this.source.name, version: end, commitTimestamp: null },
      });
      return { fromVersion: start, toVersion: end, result };
    });
  }

  /**
   * The net changes of the first transaction a sync of [start, end] would commit (none for
   * an empty range) and the later ones as a stream, read as they are used: the same
   * planSteps cuts (batch limits, commits applied in parts) and delete policy as a sync,
   * for a preview or dry run that counts what the sync will.
   */
  private async transactionsOf(plan: Plan, start: number, end: number, signal?: AbortSignal): Promise<{ first: StagedChanges; later?: AsyncIterable<StagedChanges> }> {
    const it = this.transactionChanges(plan, start, end, signal)[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done) return { first: { upserts: [], deletes: [], softDeletes: [] } };
    return { first: first.value, later: { [Symbol.asyncIterator]: () => it } };
  }

  private async *transactionChanges(plan: Plan, start: number, end: number, signal?: AbortSignal): AsyncGenerator<StagedChanges> {
    if (end < start) return;
    const changes = this.source.changes(start, end, { batchSize: READ_BATCH_ROWS, signal, preimageColumns: plan.keySource });
    const steps = planSteps(changes, plan.keySource, this.planStepsOptions(plan));
    let seg: { upserts: Row[][]; deletes: Row[][]; softDeletes: Row[][] } = { upserts: [], deletes: [], softDeletes: [] };
    for await (const step of steps) {
      if (step.type === 'commit') {
        yield seg;
        seg = { upserts: [], deletes: [], softDeletes: [] };
        continue;
      }
      const policy = applyDeletePolicy(step.changes, this.mapping.deletes, { markerKey: plan.marker?.rowKey });
      seg.upserts.push(policy.upserts);
      seg.deletes.push(policy.deletes);
      seg.softDeletes.push(policy.softDeletes);
    }
  }

  /**
   * The transactions of an incremental run as apply/commit steps (planSteps). Read on a
   * worker thread when the source can be opened there (the local Delta reader) and no
   * dead letters are wanted: parts then arrive as COPY bytes. Otherwise read here; with
   * dead letters every transaction is one batch for applyChanges (`batch`).
   */
  /**
   * How a sync cuts a range into transactions (planSteps): the mapping's batch limits, and
   * parts of big commits except with dead letters, which isolate failing rows by bisecting
   * one staged batch. Preview and dry run use the same, so they count what the sync does.
   */
  private planStepsOptions(plan: Plan): PlanStepsOptions & { keyTypes: ReturnType<typeof keyTypesOf> } {
    return {
      maxRows: this.mapping.batch.maxRows,
      maxBytes: this.mapping.batch.maxBytes,
      partRows: this.mapping.deadLetter ? undefined : Math.min(this.mapping.batch.maxRows, PART_ROWS),
      keyTypes: keyTypesOf(plan),
    };
  }

  private async *applySteps(plan: Plan, start: number, end: number, opts: RunOptions, result: RunResult, started: number, timestamps: Map<number, number>): AsyncGenerator<RunStep> {
    const deadLetter = this.mapping.deadLetter;
    const stepOptions = this.planStepsOptions(plan);
    const workerSource = deadLetter || process.env.DELTA_NEON_SYNC_READ_THREAD === 'main' ? undefined : this.source.workerSource?.();
    // Counts rows read (on either thread) and reports progress at most every 200 ms.
    let lastEmit = 0;
    const read = (rows: number): void => {
      result.rowsRead += rows;
      const now = Date.now();
      if (now - lastEmit > 200) {
        lastEmit = now;
        this.emitProgress(opts, started, result.rowsRead, result.inserted + result.updated + result.deleted, result.batches, null, null);
      }
    };
    if (workerSource && changePlanWorkerScript()) {
      this.emit(opts, { type: 'phase', phase: 'read', detail: `changes of ${this.source.name}, versions ${start}..${end}`, at: Date.now() });
      const input: ChangePlanInput = {
        source: workerSource, start, end, keySource: plan.keySource, keyTypes: stepOptions.keyTypes, columns: plan.columns, key: plan.key,
        ...(plan.marker ? { marker: plan.marker } : {}),
        deletes: this.mapping.deletes, maxRows: stepOptions.maxRows, maxBytes: this.mapping.batch.maxBytes, partRows: stepOptions.partRows, batchSize: READ_BATCH_ROWS,
      };
      for await (const m of planInWorker(input, opts.signal)) {
        if (m.type === 'read') {
          for (const [v, ts] of m.timestamps) timestamps.set(v, ts);
          read(m.rows);
        } else if (m.type === 'apply') yield { type: 'apply', part: { encoded: m.part }, rows: m.rows };
        else yield m;
      }
      return;
    }
    const steps = planSteps(this.changeRows(start, end, plan, opts, read, timestamps), plan.keySource, stepOptions);
    for await (const step of steps) {
      if (step.type === 'commit') {
        yield step;
        continue;
      }
      if (deadLetter) {
        // Without parts every transaction is one apply holding the batch's NetChanges.
        yield { type: 'apply', part: { upserts: [], deletes: [] }, rows: 0, batch: step.changes as NetChanges };
        continue;
      }
      const policy = applyDeletePolicy(step.changes, this.mapping.deletes, { markerKey: plan.marker?.rowKey });
      yield {
        type: 'apply',
        part: { upserts: [policy.upserts], deletes: [policy.deletes], ...(plan.marker ? { softDeletes: [policy.softDeletes] } : {}) },
        rows: policy.upserts.length + policy.deletes.length + policy.softDeletes.length,
      };
    }
  }

  /** Change rows of [start, end] as one stream, read on this thread; records each version's commit timestamp. */
  private async *changeRows(start: number, end: number, plan: Plan, opts: RunOptions, read: (rows: number) => void, timestamps: Map<number, number>): AsyncGenerator<ChangeRow[]> {
    this.emit(opts, { type: 'phase', phase: 'read', detail: `changes of ${this.source.name}, versions ${start}..${end}`, at: Date.now() });
    for await (const batch of this.source.changes(start, end, { batchSize: READ_BATCH_ROWS, signal: opts.signal, preimageColumns: plan.keySource })) {
      throwIfAborted(opts.signal);
      read(batch.length);
      for (const [v, ts] of commitTimestamps(batch)) timestamps.set(v, ts);
      yield batch;
      // A macrotask turn: lets the pg client take the server's replies and send the next
      // statement of a part being applied while this thread goes on reading.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Columns, key and key source names for a Delta schema, with the mapping applied. */
  private planColumns(schema: DeltaField[], targetPk: string[] | undefined, version: number): Plan {
    let mapped: MappedColumn[];
    try {
      mapped = resolveColumns(this.mapping, schema);
    } catch (e) {
      if (isSyncError(e)) throw new SyncError(e.kind, `${e.message} (source ${this.source.name} at version ${version})`, { ...e, hint: e.hint, column: e.column, setting: e.setting, version });
      throw e;
    }
    const byName = new Map(schema.map((f) => [f.name, f]));
    const columns: TargetColumn[] = mapped.map((m) => ({ name: m.target, source: byName.get(m.source) as DeltaField, pgType: m.pgType }));
    const key = this.mapping.key ?? targetPk;
    if (!key || key.length === 0) {
      throw new SyncError('mapping', `Pipeline "${this.pipeline}": no key columns. The mapping has no "key" and ${displayName(this.table)} has no primary key${targetPk ? '' : ' (the table does not exist yet)'}.`, {
        setting: 'key',
        hint: `Add "key": ["<column>"] to the mapping (Postgres column names).`,
      });
    }
    const policy = this.mapping.deletes;
    if (policy.mode !== 'soft-delete') return { schema, columns, key, keySource: keySourceColumns(mapped, key) };
    // Rows are keyed by Delta names: a Delta column named like the marker (excluded or
    // renamed away, since resolveColumns refuses a data column of that name) would share
    // its row key, so the marker then travels under a key no Delta column can have.
    const rowKey = byName.has(policy.column) ? `\u0000soft-delete:${policy.column}` : policy.column;
    const marker: SoftDeleteMarker = { column: policy.column, kind: policy.kind, rowKey };
    return { schema, columns: [...columns, markerTargetColumn(marker)], key, keySource: keySourceColumns(mapped, key), marker };
  }

  /**
   * Compares the mapped columns with the target's: new source columns follow the mapping's
   * schemaDrift policy; a mapped column the target lacks is never silently dropped.
   */
  private async reconcileDrift(c: PoolClient, plan: Plan, targetCols: Map<string, string>, start: number, end: number, warnings: string[], opts: RunOptions): Promise<Plan> {
    const missing = plan.columns.filter((col) => !targetCols.has(col.name));
    if (missing.length === 0) return plan;
    const names = missing.map((m) => `"${m.name}" (${m.pgType})`).join(', ');
    switch (this.mapping.schemaDrift) {
      case 'fail':
        throw new SyncError('schema-drift', `Schema drift in ${this.source.name} between versions ${start} and ${end}: column(s) ${names} are not in ${displayName(this.table)}.`, {
          table: this.source.name,
          version: end,
          column: missing[0]?.name,
          setting: 'schemaDrift',
          hint: 'Set "schemaDrift": "add-columns" to add them, "ignore-new" to skip them, or exclude them in columns.exclude.',
        });
      case 'ignore-new': {
        const msg = `Ignoring new source column(s) ${names} (schemaDrift: ignore-new).`;
        warnings.push(msg);
        this.emit(opts, { type: 'warning', message: msg, at: Date.now() });
        return { ...plan, columns: plan.columns.filter((col) => targetCols.has(col.name)) };
      }
      case 'add-columns': {
        for (const m of missing) {
          await c.query(`ALTER TABLE ${qualifiedRef(this.table)} ADD COLUMN IF NOT EXISTS ${quoteIdent(m.name)} ${m.pgType}`);
        }
        const msg = `Added column(s) ${names} to ${displayName(this.table)} (schemaDrift: add-columns).`;
        warnings.push(msg);
        this.emit(opts, { type: 'warning', message: msg, at: Date.now() });
        return plan;
      }
    }
  }

  /**
   * Drops `<table>__dns_<8 hex>` staging tables that an initial load killed mid-COPY left
   * behind (the staging table is created outside the load's transaction, so a SIGKILL or a
   * lost connection keeps it, at full size). A staging table another live load is writing
   * to is locked by it and skipped (NOWAIT). Returns the dropped names.
   */
  private async dropStagingLeftovers(c: PoolClient): Promise<string[]> {
    const schema = this.table.schema ?? ((await c.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]?.s as string);
    const sample = derivedName(this.table.name, STAGING_SAMPLE_SUFFIX);
    const prefix = sample.slice(0, sample.length - 8);
    const found = await c.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind = 'r' AND left(c.relname, length($2)) = $2 AND length(c.relname) = length($2) + 8`,
      [schema, prefix],
    );
    const dropped: string[] = [];
    for (const { relname } of found.rows) {
      if (!/^[0-9a-f]{8}$/.test(relname.slice(prefix.length))) continue;
      const ref = qualifiedRef({ schema, name: relname });
      await c.query('BEGIN');
      try {
        await c.query(`LOCK TABLE ${ref} IN ACCESS EXCLUSIVE MODE NOWAIT`);
        await c.query(`DROP TABLE ${ref}`);
        await c.query('COMMIT');
        dropped.push(relname);
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        this.logger.warn(`could not drop staging table ${relname} (in use?): ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return dropped;
  }

  /** The target table's columns (name -> type) and primary key, or undefined when it does not exist. */
  private async targetColumns(c: PoolClient): Promise<{ columns: Map<string, string>; primaryKey: string[] } | undefined> {
    const cols = await c.query<{ attname: string; type: string }>(
      `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = $1 AND t.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [this.table.schema ?? 'public', this.table.name],
    );
    if (cols.rows.length === 0) return undefined;
    const pk = await c.query<{ attname: string }>(
      `SELECT a.attname FROM pg_index i
         JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
         JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE n.nspname = $1 AND t.relname = $2 AND i.indisprimary ORDER BY k.ord`,
      [this.table.schema ?? 'public', this.table.name],
    );
    return { columns: new Map(cols.rows.map((r) => [r.attname, r.type])), primaryKey: pk.rows.map((r) => r.attname) };
  }

  private async connect(): Promise<PoolClient> {
    try {
      return await this.pool.connect();
    } catch (e) {
      const err = classifyPgError(e, { table: displayName(this.table) });
      const where = this.serverLabel();
      if (!where || (err.kind !== 'auth' && err.kind !== 'connection')) throw err;
      // Say which server and login failed (never the password): the driver's message alone
      // ("password authentication failed for user x", "ECONNREFUSED") does not.
      throw new SyncError(err.kind, `${err.message} (${where})`, {
        table: err.table, version: err.version, column: err.column, setting: err.setting, hint: err.hint, retry: err.retry, cause: e,
      });
    }
  }

  /** `server host:port, database d, user u` from the pool's settings, when it has them. */
  private serverLabel(): string | undefined {
    const o: unknown = (this.pool as unknown as { options?: unknown }).options;
    if (typeof o !== 'object' || o === null) return undefined;
    const { host, port, database, user } = o as Record<string, unknown>;
    if (typeof host !== 'string') return undefined;
    const parts = [`server ${host}${typeof port === 'number' || typeof port === 'string' ? `:${port}` : ''}`];
    if (typeof database === 'string') parts.push(`database ${database}`);
    if (typeof user === 'string') parts.push(`user ${user}`);
    return parts.join(', ');
  }

  private async withClient<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.connect();
    try {
      const r = await fn(c);
      c.release();
      return r;
    } catch (e) {
      c.release(e instanceof Error && this.classify(e).kind === 'connection' ? e : undefined);
      throw e;
    }
  }

  private classify(e: unknown): SyncError {
    if (isSyncError(e)) return e;
    if (isAbort(e)) return new SyncError('cancelled', `Sync of pipeline "${this.pipeline}" was cancelled.`, { retry: 'manual', hint: 'Run it again to resume from the last checkpoint.' });
    return classifyPgError(e, { table: displayName(this.table) });
  }

  private async recordFailure(opts: RunOptions, runId: string, dbRunId: bigint, e: unknown, committed: number | null): Promise<void> {
    const err = this.classify(e);
    const status = err.kind === 'cancelled' ? 'cancelled' : 'failed';
    this.logger.error(`pipeline ${this.pipeline}: ${err.message}`);
    await this.withClient((c) => finishRun(c, dbRunId, { status, error: err.message })).catch(() => undefined);
    this.emit(opts, { type: 'run-finished', runId, status, checkpointVersion: committed, rowsApplied: 0, error: err.message, at: Date.now() });
  }

  private emit(opts: RunOptions, event: SyncEvent): void {
    opts.onEvent?.(event);
  }

  private emitProgress(opts: RunOptions, started: number, rowsRead: number, rowsApplied: number, batches: number, version: number | null, totalRows: number | null): void {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = rowsRead / secs;
    this.emit(opts, {
      type: 'progress', rowsRead, rowsApplied, bytesRead: 0, batches, version, rowsPerSecond: Math.round(rate),
      etaSeconds: totalRows !== null && rate > 0 ? Math.max(0, (totalRows - rowsRead) / rate) : null, totalRows, at: Date.now(),
    });
  }
}

/** Snapshot rows as a load writes them: with a soft-delete marker, each carries the live value. */
function withLiveMarker(rows: Row[], marker: SoftDeleteMarker | undefined): Row[] {
  return marker ? rows.map((r) => ({ ...r, [marker.rowKey ?? marker.column]: liveMarkerValue(marker) })) : rows;
}

/** The plan's data columns (without the soft-delete marker). */
function dataColumns(plan: Plan): TargetColumn[] {
  return plan.marker ? plan.columns.filter((c) => c.name !== plan.marker?.column) : plan.columns;
}

/** Same length as initialLoad's `__dns_<8 hex>` staging suffix; only its length matters here. */
const STAGING_SAMPLE_SUFFIX = '__dns_00000000';

function staleCheckpoint(pipeline: string, expected: number, cur: Checkpoint | undefined): SyncError {
  return new SyncError('target', `Checkpoint of pipeline "${pipeline}" moved (expected version ${expected}, found ${cur ? String(cur.version) : 'none'}): another run is syncing it.`, {
    retry: 'manual',
    hint: 'Wait for the other run to finish, then sync again.',
  });
}

/** Target columns' values as text, for previews of rows not yet in Postgres. */
function textRow(r: Row, columns: readonly TargetColumn[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const c of columns) {
    const v = r[c.source.name];
    out[c.name] = v === null || v === undefined ? null : previewText(v);
  }
  return out;
}

/** Delta types of the key columns by source name (NetChangeBuffer folds decimal -0 keys with them). */
function keyTypesOf(plan: Plan): Record<string, DeltaType> {
  return Object.fromEntries(plan.columns.filter((c) => plan.keySource.includes(c.source.name)).map((c) => [c.source.name, c.source.type]));
}

function previewText(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return `\\x${Buffer.from(v).toString('hex')}`;
  if (typeof v === 'object') return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof Map ? Object.fromEntries(x) : x));
  return String(v);
}


function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const e = new Error('The operation was aborted');
    e.name = 'AbortError';
    throw e;
  }
}

