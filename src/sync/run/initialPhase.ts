import { randomUUID } from 'node:crypto';
import type { Row } from '../delta/types';
import { compileRowFilter } from '../mapping/compileRowFilter';
import type { WorkerSource } from '../ports/ChangeSource';
import type { RunResult } from '../ports/reports';
import type { EncodedRows } from '../ports/targetTypes';
import { createdColumns, dataColumns, planColumns } from './columnPlan';
import { changePlanWorkerScript, snapshotInWorker } from '../worker/changePlanWorker';
import type { SnapshotReadInput } from '../worker/changePlanWorker';
import { RateLimit } from './RateLimit';
import type { RunContext } from './RunContext';
import { throwIfAborted } from './RunContext';
import { describeBlockers, swapBlockedError } from '../ports/swapBlocked';
import type { RightsReport } from '../ports/rights';
import { checkRights } from './mappingRights';
import { allowedDeletes, deleteGuard, emptySwapError, guardedShare, massDeleteError } from './deleteGuard';
import { autoSaid } from './autoMode';
import type { AutoChoice } from './autoMode';
import type { InitialLoadRequest } from '../ports/Target';
import { driftAfterPlanning, mergeLoadDriftBefore } from './schemaDriftPlan';

/**
 * The initial load: the role's rights for the load's mode checked (`rights`: the report
 * the runner read already, if any), then the snapshot at the wanted version (default: the latest) is read
 * (on a worker thread when the source can be opened there, encoded as COPY text), staged,
 * indexed and swapped or merged into the target with its checkpoint in one transaction
 * (Target.initialLoad). Phases: plan, read + stage, index, swap.
 */
export async function runInitialLoad(
  ctx: RunContext, toVersion: number | undefined, rights?: RightsReport, allowMassDelete?: boolean, auto?: AutoChoice, opts: { rehearse?: boolean } = {},
): Promise<RunResult> {
  const { mapping, source, target, signal } = ctx;
  // mode "auto" (run/autoMode): the snapshot at the end version in place of an incremental
  // sync of auto.fromVersion..auto.toVersion, by the load mode it chose.
  ctx.phase('plan', `columns of ${source.name}${toVersion === undefined ? '' : ` at version ${toVersion}`}`);
  const early: string[] = [];
  const mode = auto?.load ?? (await loadMode(ctx, early));
  // Before the snapshot is read: a swap without ownership of the table is refused offering a merge.
  await checkRights(target, mapping, [mode === 'swap' ? 'initial-swap' : 'initial-merge'], rights);
  const snap = await source.snapshot(toVersion);
  const existing = await target.describe();
  // A merge keeps the table: its columns follow the snapshot's under schemaDrift, as an
  // incremental sync's do (renamed, widened, dropped, added), the DDL run in the merge's
  // transaction. Refused changes stop the load here, before anything is read or staged.
  const drift = mode === 'merge' && existing
    ? await mergeLoadDriftBefore(ctx, await checkpointVersion(ctx), snap.schema, mapping.key ?? existing.primaryKey, snap.version, early)
    : undefined;
  const planned = planColumns(mapping, source.name, snap.schema, existing?.primaryKey, snap.version, target.tableLabel);
  const { plan, alterations } = drift && existing ? driftAfterPlanning(ctx, drift, planned, existing, early) : { plan: planned, alterations: [] };
  const columns = dataColumns(plan);
  const runId = randomUUID();
  ctx.progress.start();
  // The snapshot's live rows as the log's file stats give them (no data read): the read
  // and COPY phases report a percentage and an ETA against it. Unknown (null) without stats.
  ctx.progress.totalRows = typeof snap.rowCount === 'number' ? snap.rowCount : null;
  const said = autoSaid(auto);
  const fromVersion = auto ? auto.fromVersion : null;
  // A rehearsal (the dry run of mode auto's snapshot path: Target.initialLoad's `rehearse`)
  // is no run: no run-started or run-finished, nothing in the run log, and it leaves other
  // loads' staging tables alone (it holds no run lease).
  const rehearse = opts.rehearse === true;
  if (!rehearse) ctx.emit({ type: 'run-started', runId, pipeline: ctx.pipeline, mode: 'initial', fromVersion, toVersion: snap.version, totalRows: ctx.progress.totalRows, ...said });
  if (auto) ctx.phase('plan', `mode auto: ${auto.reason}${rehearse ? ' (dry run: rehearsed, then rolled back)' : ''}`);
  if (!rehearse) {
    const leftovers = await target.dropStagingLeftovers();
    if (leftovers.length > 0) ctx.warn(`Dropped ${leftovers.length} staging table(s) left by an interrupted initial load: ${leftovers.join(', ')}.`);
  }
  const dbRunId = rehearse ? undefined : await target.runLog.start({ pipeline: ctx.pipeline, mode: auto ? `auto-${mode}` : `initial-${mode}`, fromVersion, toVersion: snap.version, ...said });
  return load();

  async function load(): Promise<RunResult> {
    const filter = mapping.filter ? compileRowFilter(mapping.filter, snap.schema) : undefined;
    // The rate limit paces the rows COPY sends to the target, as it paces incremental batches.
    const maxRate = mapping.batch.maxRowsPerSecond;
    const limit = maxRate ? new RateLimit(maxRate) : undefined;
    // Paced, rows go in steps of about a tenth of a second's worth, so the pace is even.
    const step = maxRate ? Math.max(1, Math.min(1_000, Math.ceil(maxRate / 10))) : 1_000;
    async function* rows(): AsyncGenerator<Row[]> {
      // Small batches: a batch's row objects live until COPY has encoded them, across
      // socket waits; with 10 000 rows they outlived the young generation and were promoted,
      // growing the old generation with garbage (peak RSS of a 1M-row load 313-327 MB vs
      // 272-293 MB with 1 000, at the same speed; measured in a plain-node esbuild bundle).
      for await (const batch of snap.rows({ batchSize: Math.min(mapping.batch.maxRows, step), signal, invalidUtf8: mapping.invalidUtf8 })) {
        throwIfAborted(signal);
        const kept = filter ? batch.filter(filter) : batch;
        ctx.progress.read(batch.length);
        if (kept.length > 0) {
          await limit?.admit(kept.length, signal);
          yield kept;
          // COPY has taken the batch (the generator resumes when it asks for the next).
          ctx.progress.applied(kept.length);
        }
      }
    }
    async function* encoded(ws: WorkerSource, share?: { index: number; of: number }): AsyncGenerator<EncodedRows> {
      const input: SnapshotReadInput = {
        source: ws, version: snap.version, columns, batchSize: step, invalidUtf8: mapping.invalidUtf8,
        ...(limit ? { messageRows: step } : {}),
        ...(mapping.filter ? { filter: mapping.filter } : {}),
        ...(share ? { share } : {}),
      };
      for await (const m of snapshotInWorker(input, signal)) {
        ctx.progress.read(m.read);
        await limit?.admit(m.encoded.count, signal);
        yield m.encoded;
        ctx.progress.applied(m.encoded.count);
      }
    }
    // copyStreams > 1: one reader thread per share of the snapshot's files, each COPYed on
    // a connection of its own into the same staging table (Target.initialLoad).
    function encodedStreams(ws: WorkerSource, streams: number): { encoded: AsyncIterable<EncodedRows>; parallel?: Array<AsyncIterable<EncodedRows>> } {
      if (streams <= 1) return { encoded: encoded(ws) };
      const all = Array.from({ length: streams }, (_, index) => encoded(ws, { index, of: streams }));
      return { encoded: all[0] as AsyncIterable<EncodedRows>, parallel: all.slice(1) };
    }
    // Read and encoded on a worker thread when the source can be opened there: the rows
    // then reach this thread as COPY text, so decoding overlaps the COPY.
    // With dead letters, rows must be at hand to be set aside: read on this thread.
    const workerSource = mapping.deadLetter || process.env.DELTA_NEON_SYNC_READ_THREAD === 'main' ? undefined : source.workerSource?.();
    try {
      // Safe deletes: an empty snapshot (the log's file stats say so, before any row is read)
      // swapped over a non-empty table would delete all of it.
      if (mode === 'swap' && existing && snap.rowCount === 0 && guardedShare(mapping.safety.maxDeleteShare, allowMassDelete) !== undefined) {
        const targetRows = await target.estimateRows();
        if (targetRows > 0) throw await emptySwapError({ source, table: target.tableLabel, version: snap.version, targetRows, filtered: false });
      }
      // Safe deletes of a snapshot loaded in place of an incremental sync: what the swap
      // would delete (or the merge deletes) counts as the incremental's deletes would.
      const share = auto && existing ? guardedShare(mapping.safety.maxDeleteShare, allowMassDelete) : undefined;
      let deleteLimit: InitialLoadRequest['deleteLimit'];
      if (auto && share !== undefined) {
        const guard = deleteGuard(share, await target.estimateRows(plan.marker));
        const refuse = (deletes: number): Promise<Error> => massDeleteError({
          source, table: target.tableLabel, pipeline: ctx.pipeline, guard, deletes, from: auto.fromVersion, to: snap.version, committed: 0, inserted: 0,
        });
        deleteLimit = { max: allowedDeletes(guard, 0), refuse };
      }
      ctx.phase('read', `snapshot of ${source.name} at version ${snap.version}`);
      const result = await target.initialLoad({
        columns,
        key: plan.key,
        rows: workerSource && changePlanWorkerScript() ? encodedStreams(workerSource, mapping.initialLoad.copyStreams) : rows(),
        mode,
        ...(mapping.deadLetter ? { deadLetter: true } : {}),
        checkpoint: { pipeline: ctx.pipeline, source: source.name, version: snap.version, commitTimestamp: snap.timestamp },
        softDelete: plan.marker,
        ...(plan.lineage ? { lineage: plan.lineage } : {}),
        ...(alterations.length > 0 ? { alterations } : {}),
        fillfactor: mapping.initialLoad.fillfactor,
        onPhase: (phase, detail) => ctx.phase(phase, detail),
        ...(deleteLimit ? { deleteLimit } : {}),
        ...(rehearse ? { rehearse } : {}),
        // The run's end (and its lease's release) in the load's transaction (one round trip less).
        ...(dbRunId !== undefined ? { endRun: { runId: dbRunId, toVersion: snap.version } } : {}),
      });
      const tm = result.timings;
      ctx.logger.debug(`pipeline ${ctx.pipeline}: snapshot of version ${snap.version} loaded (${result.mode}; stage ${tm.copyMs} ms, index ${tm.indexMs} ms, ${result.mode} ${tm.commitMs} ms)`);
      const softDeleted = result.softDeleted ?? 0;
      const deleted = result.deleted + softDeleted;
      const inserted = result.inserted;
      const applied = result.mode === 'swap' ? result.inserted : result.inserted + result.updated + deleted;
      const p = ctx.progress;
      p.rowsApplied = applied;
      p.batches = 1;
      p.version = snap.version;
      p.totalRows = p.rowsRead;
      p.report();
      if (dbRunId !== undefined) ctx.emit({ type: 'batch-committed', fromVersion: snap.version, toVersion: snap.version, inserted, updated: result.updated, deleted, unchanged: result.unchanged, deadLettered: result.deadLettered });
      if (result.deadLettered > 0) {
        result.warnings.push(`${result.deadLettered} row(s) of the snapshot were refused by ${target.tableLabel} and set aside in delta_neon_sync.dead_letters (pipeline ${ctx.pipeline}, version ${snap.version}).`);
      }
      for (const w of result.warnings) ctx.warn(w);
      result.warnings.unshift(...early);
      if (dbRunId !== undefined) {
        if (!result.runEnded) await target.runLog.finish(dbRunId, { status: 'succeeded', rows: applied, toVersion: snap.version });
        ctx.emit({ type: 'run-finished', runId, status: 'succeeded', checkpointVersion: snap.version, rowsApplied: applied });
      }
      return {
        runId, mode: 'initial', status: 'succeeded', fromVersion, toVersion: snap.version, rowsRead: p.rowsRead, ...said,
        inserted, updated: result.updated, deleted, unchanged: result.unchanged, deadLettered: result.deadLettered, batches: 1, warnings: result.warnings,
        createdTableSql: result.createdTable ? target.createTableSql(createdColumns(plan), plan.key, plan.marker, mapping.initialLoad.fillfactor) : undefined,
        ...(plan.marker ? { softDeleted } : {}),
      };
    } catch (e) {
      throw dbRunId === undefined ? ctx.classify(e) : await ctx.fail(runId, dbRunId, e, null);
    }
  }
}

/** The pipeline's checkpoint version, if any (a reload compares the schema synced then with the snapshot's). */
async function checkpointVersion(ctx: RunContext): Promise<number | undefined> {
  const c = await ctx.target.readCheckpoint(ctx.pipeline);
  return c ? Number(c.version) : undefined;
}

/**
 * The load's mode: a swap over a table with row triggers, rules, dependent views or
 * incoming foreign keys (Target.swapBlockers) is refused before the snapshot is read, or
 * with initialLoad.onSwapBlocked "merge" becomes a merge (with a warning naming them).
 */
async function loadMode(ctx: RunContext, warnings: string[]): Promise<'swap' | 'merge'> {
  const { initialLoad } = ctx.mapping;
  if (initialLoad.mode !== 'swap') return initialLoad.mode;
  const blockers = await ctx.target.swapBlockers();
  if (blockers.length === 0) return 'swap';
  if (initialLoad.onSwapBlocked === 'fail') throw swapBlockedError(ctx.target.tableLabel, blockers);
  ctx.warn(`Loaded ${ctx.target.tableLabel} by merge instead of swap (initialLoad.onSwapBlocked is "merge"): it has ${describeBlockers(blockers)}.`, warnings);
  return 'merge';
}
