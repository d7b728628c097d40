import { randomUUID } from 'node:crypto';
import type { ChangeRow } from '../delta/types';
import { SyncError } from '../errors';
import { ValueEncodeError } from '../postgres/copyEncoder';
import { planTransactions } from '../plan/planTransactions';
import { commitTimestamps } from '../ports/ChangeSource';
import { lineageAddedNotice } from '../plan/lineage';
import type { RunResult } from '../ports/reports';
import type { ApplyRequest, ApplyTransaction } from '../ports/Target';
import type { ApplyPart, ApplyResult } from '../ports/targetTypes';
import type { Checkpoint, TableAlteration } from '../ports/targetTypes';
import { driftBeforePlanning, tableChanges } from './schemaDriftPlan';
import { READ_BATCH_ROWS, planColumns, refuseExistingKeysOption, transactionOptions } from './columnPlan';
import type { ColumnPlan } from './columnPlan';
import { changePlanWorkerScript, planInWorker } from '../worker/changePlanWorker';
import type { ChangePlanInput } from '../worker/changePlanWorker';
import { RateLimit } from './RateLimit';
import type { RunContext } from './RunContext';
import { allowedDeletes, deleteGuard, guardedShare, massDeleteError } from './deleteGuard';
import type { DeleteGuard } from './deleteGuard';
import { throwIfAborted } from './RunContext';
import { offerRepair } from './repairPhase';
import { autoSaid } from './autoMode';
import type { AutoChoice } from './autoMode';

/** A step of the incremental loop: a part ready for the target, or the end of a transaction. */
type RunStep =
  | { type: 'apply'; part: ApplyPart; rows: number; /** Deletes and soft deletes of the part (keys the plan deletes). */ deletes: number }
  | { type: 'commit'; version: number | null; fromVersion: number; parts: number };

/**
 * An incremental sync of the versions after the checkpoint, up to `toVersion` (default:
 * the latest): plan (columns at the end version, drift since the checkpoint), read the
 * Change Data Feed and cut it into transactions (planTransactions, on a worker thread for
 * local tables), and apply each in ONE target transaction with its checkpoint, the next
 * part read while the target applies the last. A failure or an abort rolls back the open
 * transaction; committed ones stay, and the next run resumes after them.
 */
export async function runIncremental(ctx: RunContext, checkpoint: Checkpoint, toVersion: number | undefined, allowMassDelete?: boolean, auto?: AutoChoice): Promise<RunResult> {
  const { mapping, source, target, signal } = ctx;
  const start = Number(checkpoint.version) + 1;
  const latest = await source.latestVersion();
  const end = Math.min(toVersion ?? latest, latest);
  const runId = randomUUID();
  const result: RunResult = {
    runId, mode: 'incremental', status: 'up-to-date', fromVersion: start, toVersion: Math.max(end, start - 1),
    rowsRead: 0, inserted: 0, updated: 0, deleted: 0, unchanged: 0, deadLettered: 0, batches: 0, warnings: [],
    ...(mapping.deletes.mode === 'soft-delete' ? { softDeleted: 0 } : {}),
    ...autoSaid(auto),
  };
  if (end < start) {
    ctx.emit({ type: 'run-finished', runId, status: 'succeeded', checkpointVersion: start - 1, rowsApplied: 0 });
    return result;
  }
  ctx.progress.start();
  ctx.emit({ type: 'run-started', runId, pipeline: ctx.pipeline, mode: 'incremental', fromVersion: start, toVersion: end, ...(result.auto ? { auto: result.auto } : {}) });
  if (auto) ctx.phase('plan', `mode auto: ${auto.reason}`);
  // Its id is needed only at the end: the statement goes while the run plans and reads
  // (overlap: before the apply's opening, on the same connection), awaited before any commit.
  const overlap = target.concurrent === true;
  const starting = target.runLog.start({ pipeline: ctx.pipeline, mode: 'incremental', fromVersion: start, toVersion: end, ...autoSaid(auto) });
  // Handled when awaited; this only keeps a failure from counting as unhandled meanwhile.
  starting.catch(() => undefined);
  const dbRunId = overlap ? undefined : await starting;
  let committed = start - 1;
  // The last commit recorded the run's end (ApplyTransaction.commit endRun).
  let ended = false;
  // Commit timestamps of the versions read so far (also: how far the read got).
  const timestamps = new Map<number, number>();
  try {
    const { plan, alterations, lineageNotice } = await planIncremental(ctx, checkpoint, start, end, result.warnings);
    // The run's one list of schema changes (drift, then lineage columns) runs first in its
    // first transaction, with its rows and checkpoint.
    let pendingAlterations: readonly TableAlteration[] = alterations;
    const alterationsOnce = (): { alterations?: readonly TableAlteration[] } => {
      if (pendingAlterations.length === 0) return {};
      const a = pendingAlterations;
      pendingAlterations = [];
      return { alterations: a };
    };
    // Lineage columns the table lacked: said once the transaction that added them committed.
    let noticePending = lineageNotice;
    const schemaAdded = (): void => {
      if (noticePending) ctx.warn(noticePending, result.warnings);
      noticePending = undefined;
    };
    result.status = 'succeeded';
    const limit = mapping.batch.maxRowsPerSecond ? new RateLimit(mapping.batch.maxRowsPerSecond) : undefined;
    // An insert of a key the target holds means the Delta table holds it twice (refuseExistingKeysOption).
    const refuseExisting = refuseExistingKeysOption(mapping);
    // Safe deletes: the target's size before anything is written (catalog estimate or a
    // bounded count, never a full read), against which each part's deletes are counted.
    const share = guardedShare(mapping.safety.maxDeleteShare, allowMassDelete);
    // On a target with concurrent connections the run log's start, then the opening of the
    // first transaction (BEGIN, the pipeline lock, the checkpoint check, the estimate, the
    // staging tables) go on while the first part is read, one after the other on one
    // connection: over a remote link their round trips then cost nothing, and no second
    // connection is opened for them. The estimate is still read before anything is written:
    // the first part waits for it (checkDeletes).
    const applyRequest = (expectVersion: number, estimateRows?: boolean): ApplyRequest => ({
      columns: plan.columns, key: plan.key, ...(plan.marker ? { softDelete: plan.marker } : {}), ...(plan.lineage ? { lineage: plan.lineage } : {}),
      pipeline: ctx.pipeline, source: source.name, expectVersion, ...(mapping.deadLetter ? { deadLetter: true } : {}),
      ...(refuseExisting ? { refuseExistingKeys: refuseExisting } : {}), ...alterationsOnce(),
      ...(estimateRows ? { estimateRows: plan.marker ? { marker: plan.marker } : {} } : {}),
    });
    let early: Promise<ApplyTransaction> | undefined = overlap ? starting.then(() => target.beginApply(applyRequest(committed, share !== undefined))) : undefined;
    early?.catch(() => undefined);
    // Read in the opening when it could (estimatedRows), else on its own.
    const estimate = share === undefined ? undefined
      : early ? early.then((tx) => tx.estimatedRows ?? target.estimateRows(plan.marker))
      : Promise.resolve(await target.estimateRows(plan.marker));
    // Handled when awaited; this only keeps a failure from counting as unhandled meanwhile.
    estimate?.catch(() => undefined);
    let guard: DeleteGuard | undefined;
    const deleteGuardNow = async (): Promise<DeleteGuard | undefined> => {
      if (share === undefined || estimate === undefined) return undefined;
      guard ??= deleteGuard(share, await estimate);
      return guard;
    };
    // Rows the open transaction's parts actually deleted or marked (not the plan's deletes:
    // a key the batch inserted and deleted again, or one the target never had, removes
    // nothing), with those of committed transactions (result.deleted); rows the run inserted
    // count as target too (allowedDeletes). Checked after each part is applied, before the
    // next one and before the commit: a refusal rolls the open transaction back.
    const checkDeletes = async (tx: ApplyTransaction): Promise<void> => {
      const guard = await deleteGuardNow();
      if (!guard) return;
      const t = tx.totals();
      const deletes = result.deleted + t.deleted + (t.softDeleted ?? 0);
      const inserted = result.inserted + t.inserted;
      if (deletes <= allowedDeletes(guard, inserted)) return;
      throw await massDeleteError({
        source, table: target.tableLabel, pipeline: ctx.pipeline, guard, deletes,
        from: committed + 1, to: lastKey(timestamps, committed + 1), committed: result.deleted, inserted,
      });
    };
    // The open transaction: apply() of a part runs while the next part is read.
    let open: { tx: ApplyTransaction; pending: Promise<void> } | undefined;
    try {
      for await (const step of runSteps(ctx, plan, start, end, result, timestamps)) {
        throwIfAborted(signal);
        if (step.type === 'apply') {
          if (!open) {
            ctx.phase('apply', `versions from ${committed + 1}`);
            const tx = early ? await early : await target.beginApply(applyRequest(committed));
            early = undefined;
            open = { tx, pending: Promise.resolve() };
          }
          const o = open;
          await o.pending;
          await checkDeletes(o.tx);
          // The rate limit holds inside a transaction applied in parts too.
          await limit?.admit(step.rows, signal);
          o.pending = o.tx.apply(step.part);
          // Handled when awaited; this only keeps a failure from counting as unhandled meanwhile.
          o.pending.catch(() => undefined);
          continue;
        }
        if (!open) continue;
        const version = step.version ?? end;
        const ts = timestamps.get(version) ?? (await source.commitTimestamp(version));
        const o = open;
        await o.pending;
        await checkDeletes(o.tx);
        ctx.phase('checkpoint', `version ${version}`);
        // The last transaction also records the run's end and gives its lease back (one round trip less).
        const rowsBefore = result.inserted + result.updated + result.deleted;
        const endRun = version === end ? { runId: await starting, rowsBefore, toVersion: end } : undefined;
        const applied = await o.tx.commit({ version, commitTimestamp: ts, ...(endRun ? { endRun } : {}) });
        if (applied.runEnded) ended = true;
        open = undefined;
        schemaAdded();
        logTimings(ctx, applied, committed + 1, version, step.parts);
        addCommitted(ctx, result, applied, committed + 1, version);
        committed = version;
      }
    } finally {
      if (early) {
        // Opened ahead, never used (no part to apply) or the read failed first.
        const e = early;
        early = undefined;
        await e.then((tx) => tx.rollback(), () => undefined);
        // Its schema changes did not commit: the checkpoint-only transaction below runs them.
        if (committed < start) pendingAlterations = alterations;
      }
      if (open) {
        // A failure or an abort before the commit: nothing of this transaction stays.
        const o = open;
        open = undefined;
        await o.pending.catch(() => undefined);
        await o.tx.rollback();
      }
    }
    if (committed < end) {
      // Versions without change rows (metadata-only commits, OPTIMIZE): advance the checkpoint alone.
      ctx.phase('checkpoint', `version ${end} (no changes since ${committed})`);
      const tx = await target.beginApply({
        columns: plan.columns, key: plan.key, ...(plan.marker ? { softDelete: plan.marker } : {}), ...(plan.lineage ? { lineage: plan.lineage } : {}),
        pipeline: ctx.pipeline, source: source.name, expectVersion: committed, ...alterationsOnce(),
      });
      try {
        const endRun = { runId: await starting, rowsBefore: result.inserted + result.updated + result.deleted, toVersion: end };
        if ((await tx.commit({ version: end, commitTimestamp: await source.commitTimestamp(end), endRun })).runEnded) ended = true;
        schemaAdded();
      } catch (e) {
        await tx.rollback();
        throw e;
      }
      committed = end;
    }
    const rowsApplied = result.inserted + result.updated + result.deleted;
    if (!ended) await target.runLog.finish(dbRunId ?? (await starting), { status: 'succeeded', rows: rowsApplied, toVersion: end });
    ctx.emit({ type: 'run-finished', runId, status: 'succeeded', checkpointVersion: committed, rowsApplied });
    return result;
  } catch (e) {
    // Never recorded (its start failed): nothing to finish; the first failure is the run's.
    const id = dbRunId ?? (await starting.catch(() => undefined));
    if (id === undefined) throw ctx.classify(e);
    // A Change Data Feed that cannot be read: the hint offers the repair by checksums.
    throw await ctx.fail(runId, id, offerRepair(withValueContext(e, source.name, committed + 1, lastKey(timestamps, committed + 1))), committed);
  }
}

/** The highest version in `read`, at least `min`. */
function lastKey(read: Map<number, number>, min: number): number {
  let last = min;
  for (const v of read.keys()) if (v > last) last = v;
  return last;
}

/**
 * A value the target cannot store (ValueEncodeError: it names the column, value and key)
 * with the table and the versions of the transaction it was in: the versions after the
 * checkpoint, up to `last`.
 */
function withValueContext(e: unknown, table: string, first: number, last: number): unknown {
  if (!(e instanceof ValueEncodeError) || e.table !== undefined) return e;
  const one = first >= last;
  return e.withContext(`table ${table}, ${one ? `version ${first}` : `versions ${first}..${last}`}`, { table, ...(one ? { version: first } : {}) });
}

/**
 * The plan phase: columns for the end version, the soft-delete marker column (added
 * whatever the drift policy says, since the mapping asks for it), and the drift check
 * (run/schemaDriftPlan over mapping/detectDrift: the key first, then the schema at the
 * checkpoint, then the target's columns), whose alterations, with the lineage columns the
 * table lacks (tableChanges: one list), the first transaction runs.
 */
async function planIncremental(ctx: RunContext, checkpoint: Checkpoint, start: number, end: number, warnings: string[]): Promise<{ plan: ColumnPlan; alterations: TableAlteration[]; lineageNotice?: string }> {
  const { mapping, source, target } = ctx;
  ctx.phase('plan', `columns of ${source.name} at version ${end}, drift since version ${checkpoint.version}`);
  const snap = await source.snapshot(end);
  const existing = await target.describe();
  if (!existing) {
    throw new SyncError('target', `Target table ${target.tableLabel} does not exist, but pipeline "${ctx.pipeline}" has a checkpoint at version ${checkpoint.version}.`, {
      table: target.tableLabel,
      hint: 'Run a new initial load: {action}', action: { id: 'initial-load' },
    });
  }
  // The key and stale mapping names first: a key column gone from the end version would
  // otherwise fail below as a mapping error without the version or the reason.
  const drift = await driftBeforePlanning(ctx, Number(checkpoint.version), snap.schema, mapping.key ?? existing.primaryKey, end, warnings);
  const plan = planColumns(mapping, source.name, snap.schema, existing.primaryKey, end, target.tableLabel);
  if (plan.marker) {
    const added = await target.ensureMarkerColumn(plan.marker, existing.columns);
    if (added) ctx.warn(added, warnings);
  }
  // Lineage asked for by the mapping: its columns added whatever the drift policy says, as
  // the marker is, but by the first transaction, in the run's one list (tableChanges).
  const changes = tableChanges(ctx, drift, plan, existing, warnings);
  const lineageNotice = lineageAddedNotice(target.tableLabel, changes.lineage, changes.lineage.map((a) => target.alterationSql(a)));
  return { plan: changes.plan, alterations: changes.alterations, ...(lineageNotice ? { lineageNotice } : {}) };
}

/** Change files under this size are read on the calling thread (auto; see runSteps). */
const SMALL_READ_BYTES = 1 << 20;

/**
 * The transactions of an incremental run as apply/commit steps (planTransactions). Read
 * on a worker thread when the source can be opened there (the local Delta reader) and no
 * dead letters are wanted: parts then arrive as COPY bytes. Otherwise read here.
 */
async function* runSteps(ctx: RunContext, plan: ColumnPlan, start: number, end: number, result: RunResult, timestamps: Map<number, number>): AsyncGenerator<RunStep> {
  const { mapping, source, signal } = ctx;
  const options = transactionOptions(mapping, plan);
  const thread = process.env.DELTA_NEON_SYNC_READ_THREAD;
  let workerSource = mapping.deadLetter || thread === 'main' ? undefined : source.workerSource?.();
  const read = (rows: number): void => {
    result.rowsRead += rows;
    ctx.progress.read(rows);
  };
  ctx.phase('read', `changes of ${source.name}, versions ${start}..${end}`);
  // A small read (one commit of a continuous sync) is done here: starting the thread costs
  // more than the read (about a second on a busy machine, most of a watch's lag: bench/lagBench.ts).
  // DELTA_NEON_SYNC_READ_THREAD=worker keeps the thread for every read.
  if (workerSource && thread !== 'worker' && source.changeBytes && (await source.changeBytes(start, end)) < SMALL_READ_BYTES) workerSource = undefined;
  if (workerSource && changePlanWorkerScript()) {
    const input: ChangePlanInput = {
      source: workerSource, start, end, columns: plan.columns, key: plan.key, ...(plan.marker ? { marker: plan.marker } : {}), ...(plan.lineage ? { lineage: plan.lineage } : {}), plan: options, batchSize: READ_BATCH_ROWS, invalidUtf8: mapping.invalidUtf8,
    };
    for await (const m of planInWorker(input, signal)) {
      if (m.type === 'read') {
        for (const [v, ts] of m.timestamps) timestamps.set(v, ts);
        read(m.rows);
      } else if (m.type === 'apply') {
        yield { type: 'apply', part: { encoded: m.part, ...(m.provisional ? { provisional: true } : {}) }, rows: m.rows, deletes: m.part.deletes.count + (m.part.softDeletes?.count ?? 0) };
      }
      else yield m;
    }
    return;
  }
  async function* changeRows(): AsyncGenerator<ChangeRow[]> {
    for await (const batch of source.changes(start, end, { batchSize: READ_BATCH_ROWS, signal, preimageColumns: plan.keySource, invalidUtf8: mapping.invalidUtf8 })) {
      throwIfAborted(signal);
      read(batch.length);
      for (const [v, ts] of commitTimestamps(batch)) timestamps.set(v, ts);
      yield batch;
      // A macrotask turn: lets the pg client take the server's replies and send the next
      // statement of a part being applied while this thread goes on reading.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  for await (const step of planTransactions(changeRows(), options)) {
    if (step.type === 'commit') yield step;
    else {
      const c = step.changes;
      yield {
        type: 'apply',
        part: {
          upserts: [c.upserts], deletes: [c.deletes], ...(plan.marker ? { softDeletes: [c.softDeletes] } : {}),
          ...(c.excused ? { excused: [c.excused] } : {}), ...(step.provisional ? { provisional: true } : {}),
        },
        rows: step.rows,
        deletes: c.deletes.length + (plan.marker ? c.softDeletes.length : 0),
      };
    }
  }
}

function logTimings(ctx: RunContext, applied: ApplyResult, from: number, to: number, parts: number): void {
  const t = applied.timings;
  if (t) ctx.logger.debug(`pipeline ${ctx.pipeline}: versions ${from}..${to} applied in ${parts} part(s) (prepare ${t.prepareMs} ms, stage ${t.stageMs} ms, delete ${t.deleteMs} ms, upsert ${t.upsertMs} ms, commit ${t.commitMs} ms)`);
}

/** Adds a committed transaction to the result and reports it. */
function addCommitted(ctx: RunContext, result: RunResult, applied: ApplyResult, from: number, to: number): void {
  const softDeleted = applied.softDeleted ?? 0;
  ctx.emit({
    type: 'batch-committed', fromVersion: from, toVersion: to, inserted: applied.inserted, updated: applied.updated,
    deleted: applied.deleted + softDeleted, unchanged: applied.unchanged, deadLettered: applied.rejected.length,
  });
  if (applied.keptByGuard) ctx.logger.info(`pipeline ${ctx.pipeline}: versions ${from}..${to}: ${applied.keptByGuard} row(s) kept by the out-of-order guard (the target row holds a newer version)`);
  result.batches++;
  result.inserted += applied.inserted;
  result.updated += applied.updated;
  result.deleted += applied.deleted + softDeleted;
  if (result.softDeleted !== undefined) result.softDeleted += softDeleted;
  result.unchanged += applied.unchanged;
  result.deadLettered += applied.rejected.length;
  const p = ctx.progress;
  p.rowsApplied = result.inserted + result.updated + result.deleted;
  p.batches = result.batches;
  p.version = to;
  p.report();
}
