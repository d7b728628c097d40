import { randomUUID } from 'node:crypto';
import { SyncError } from '../errors';
import type { Mapping } from '../mapping/mappingSchema';
import type { ChangeSource } from '../ports/ChangeSource';
import type { SyncMode } from '../ports/events';
import type { Logger } from '../ports/Logger';
import { silentLogger } from '../ports/Logger';
import type { PipelineState } from '../ports/pipelineState';
import type { ConnectWaitOptions, DryRunReport, PipelineStatus, PreviewOptions, PreviewReport, RepairOptions, RepairReport, RunOptions, RunResult, StatusOptions, VerifyReport } from '../ports/reports';
import type { RunRecord } from '../ports/runLog';
import type { Target } from '../ports/Target';
import type { Checkpoint } from '../ports/targetTypes';
import { createdColumns, dataColumns, planColumns } from './columnPlan';
import { runIncremental } from './incrementalPhase';
import { runInitialLoad } from './initialPhase';
import { chooseAutoPath } from './autoMode';
import type { AutoChoice } from './autoMode';
import { dryRunSync, previewSync, verifyTarget } from './inspectPhases';
import { isMissingChanges, runRepair } from './repairPhase';
import { checkRights, requiredGrants, runRights } from './mappingRights';
import type { GrantsMode, RightsReport } from '../ports/rights';
import { sleep } from './RateLimit';
import { createRunContext } from './RunContext';
import type { RunContext } from './RunContext';

/**
 * Runs one mapping: the front door of the engine. It keeps one run per pipeline at a time
 * (Target.acquireRun), picks the phase (initial load when there is no checkpoint, else an
 * incremental sync), retries transient failures (each attempt resumes from the
 * checkpoint, so nothing is applied twice), and reports status. The phases live in their
 * own modules (initialPhase, incrementalPhase, inspectPhases) and get a RunContext; the
 * runner talks to the source and the target through their ports only.
 */
export class SyncRunner {
  private readonly logger: Logger;

  constructor(
    private readonly mapping: Mapping,
    private readonly source: ChangeSource,
    private readonly target: Target,
    logger?: Logger,
  ) {
    this.logger = logger ?? silentLogger;
  }

  get pipeline(): string {
    return this.mapping.name;
  }

  /** Where the pipeline stands: checkpoint, lag, recent runs, and its state computed here. */
  async status(opts: StatusOptions = {}): Promise<PipelineStatus> {
    // A source on compute that costs money (a Databricks SQL warehouse) is asked first whether
    // a read would start it; then the latest version is not read unless the caller allows it.
    const ready = this.source.polling && !opts.wakeSource ? await this.source.polling.readiness() : undefined;
    const latestVersion = ready?.ready === false ? null : await this.source.latestVersion();
    const notChecked = ready?.ready === false ? { reason: ready.reason, short: ready.short } : undefined;
    const { target, pipeline } = this;
    await checkRights(target, this.mapping, ['state']);
    await target.reapAbandoned(pipeline);
    const checkpoint = (await target.readCheckpoint(pipeline)) ?? null;
    const runs = await target.runLog.history(pipeline, 20);
    const running = runs[0]?.status === 'running' && (await target.isRunning(pipeline));
    return {
      pipeline,
      source: this.source.name,
      target: target.tableLabel,
      latestVersion,
      ...(notChecked ? { sourceNotChecked: notChecked } : {}),
      ...(ready?.ready && ready.state ? { sourceState: ready.state } : {}),
      checkpoint,
      lag: checkpoint && latestVersion !== null ? latestVersion - Number(checkpoint.version) : null,
      targetExists: (await target.describe()) !== undefined,
      runs: runs.map(({ errorDetail: _detail, ...entry }) => entry),
      state: pipelineState(checkpoint, notChecked ?? (latestVersion as number), runs, running),
    };
  }

  /**
   * The SQL an admin runs so that `role` (default: the connection's) can run this mapping
   * in `modes` (default: its initial load mode and incremental), from the target's catalogs.
   */
  requiredGrants(opts: { role?: string; modes?: readonly GrantsMode[] } = {}): Promise<RightsReport> {
    return requiredGrants(this.target, this.mapping, opts);
  }

  /** The CREATE TABLE an initial load would run for the source schema at `version`. */
  async renderDdl(version?: number): Promise<string> {
    const snap = await this.source.snapshot(version);
    const plan = planColumns(this.mapping, this.source.name, snap.schema, undefined, snap.version, this.target.tableLabel);
    return this.target.createTableSql(createdColumns(plan), plan.key, plan.marker, this.mapping.initialLoad.fillfactor);
  }

  /**
   * Syncs: `auto` runs the initial load when the pipeline has no checkpoint, else an
   * incremental sync. Transient connection errors are retried for a time budget
   * (`retryForMs`, default 60 s; `maxAttempts` caps the attempts too), with backoff from
   * `backoffMs` doubling up to 5 s, and one warning per attempt; each attempt resumes from
   * the checkpoint, so nothing is applied twice.
   */
  async run(opts: RunOptions = {}): Promise<RunResult> {
    const budget = opts.retryForMs ?? 60_000;
    const backoff = opts.backoffMs ?? 500;
    const started = Date.now();
    // A Stop cuts off the statement in flight (a lock wait, a long COPY) instead of waiting for it.
    const onAbort = (): void => this.target.interrupt?.(`sync of pipeline "${this.pipeline}" was cancelled`);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.attempts(opts, budget, backoff, started);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async attempts(opts: RunOptions, budget: number, backoff: number, started: number): Promise<RunResult> {
    const progress: AttemptsProgress = {};
    for (let attempt = 1; ; attempt++) {
      const ctx = this.context(opts);
      try {
        return await this.runOnce(ctx, opts, progress);
      } catch (e) {
        // Where the checkpoint stands as far as this run knows: what its attempts committed.
        const mine = ctx.progress.version;
        if (mine !== null && progress.checkpoint !== undefined && mine > (progress.checkpoint ?? -1)) progress.checkpoint = mine;
        const err = ctx.classify(e);
        const left = budget - (Date.now() - started);
        if (err.retry !== 'auto' || opts.signal?.aborted || left <= 0 || (opts.maxAttempts !== undefined && attempt >= opts.maxAttempts)) {
          if (err.retry !== 'auto' || attempt === 1) throw err;
          throw err.withContext(`gave up after ${attempt} attempts in ${Math.round((Date.now() - started) / 1000)} s`, {
            hint: `${err.hint ? `${err.hint} ` : ''}The run retries for ${Math.round(budget / 1000)} s; the CLI's --retry-for SECONDS gives it longer.`,
          });
        }
        const delay = Math.min(backoff * 2 ** (attempt - 1), 5_000, left);
        ctx.warn(`${err.progress ?? err.message} — retrying in ${delay} ms (attempt ${attempt + 1}, retrying for up to ${Math.round(left / 1000)} s more)`);
        this.logger.debug(`retrying after transient error: ${err.message}`);
        await sleep(delay, opts.signal);
      }
    }
  }

  /**
   * Read-only: what a sync would do now, row by row, against the rows in the target. Like
   * verify and dryRun, it waits for a database that does not accept connections yet (see
   * waitForConnection).
   */
  preview(opts: PreviewOptions = {}): Promise<PreviewReport> {
    return this.waitForConnection(opts, () => previewSync(this.context(opts), opts));
  }

  /** The target against the source snapshot at the checkpoint version (read-only). */
  verify(opts: { signal?: AbortSignal; sampleLimit?: number } & ConnectWaitOptions = {}): Promise<VerifyReport> {
    return this.waitForConnection(opts, () => verifyTarget(this.context(opts), opts));
  }

  /**
   * Verify and repair by checksums: compares the target with the snapshot at `toVersion`
   * (default: the latest) by key buckets, reads back only the buckets that differ, and
   * (unless `dryRun`, which previews it) applies the repair in one transaction with the
   * checkpoint set to that version. Holds the pipeline's run lease, as a sync does.
   */
  async repair(opts: RepairOptions & { signal?: AbortSignal; onEvent?: RunOptions['onEvent'] } = {}): Promise<RepairReport> {
    const ctx = this.context(opts);
    const guard = await this.target.acquireRun(this.pipeline, { rights: runRights(this.mapping, ['state']) });
    ctx.holdLease(guard);
    try {
      if (guard.notice) ctx.warn(guard.notice);
      const checkpoint = guard.checkpoint !== undefined ? (guard.checkpoint ?? undefined) : await this.target.readCheckpoint(this.pipeline);
      return await runRepair(ctx, checkpoint, opts);
    } catch (e) {
      throw ctx.classify(e);
    } finally {
      await guard.release();
    }
  }

  /** Applies the pending changes inside a transaction that is rolled back; reports rows a constraint would reject. */
  dryRun(opts: { toVersion?: number; signal?: AbortSignal } & ConnectWaitOptions = {}): Promise<DryRunReport> {
    return this.waitForConnection(opts, () => dryRunSync(this.context(opts), opts));
  }

  /**
   * For the read-only commands: a connection that was never made because the database is
   * not accepting connections yet (a suspended Neon compute starting, a restart) is retried
   * with the run's backoff within `retryForMs` (default 60 s), saying so once per attempt
   * (a warning event with `onEvent`, else a logger warning). Other errors fail at once, as
   * before: nothing was read or written when a connection was never made.
   */
  private async waitForConnection<T>(opts: ConnectWaitOptions & { signal?: AbortSignal }, work: () => Promise<T>): Promise<T> {
    const budget = opts.retryForMs ?? 60_000;
    const backoff = opts.backoffMs ?? 500;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (e) {
        const left = budget - (Date.now() - started);
        if (!(e instanceof SyncError) || e.progress === undefined || e.retry !== 'auto' || opts.signal?.aborted || left <= 0) throw e;
        const delay = Math.min(backoff * 2 ** (attempt - 1), 5_000, left);
        const line = `${e.progress} — retrying in ${delay} ms (attempt ${attempt + 1}, retrying for up to ${Math.round(left / 1000)} s more)`;
        if (opts.onEvent) opts.onEvent({ type: 'warning', message: line, at: Date.now() });
        else this.logger.warn(line);
        await sleep(delay, opts.signal);
      }
    }
  }

  private context(opts: Pick<RunOptions, 'signal' | 'onEvent'>): RunContext {
    return createRunContext({ mapping: this.mapping, source: this.source, target: this.target, logger: this.logger }, opts);
  }

  /**
   * An incremental sync; when the Change Data Feed it needs is missing, the mapping's
   * onMissingChanges decides: fail (the error, its hint offering the repair) or repair (the
   * target brought to the end version by checksums, reported as the run's result).
   */
  private async incremental(ctx: RunContext, checkpoint: Checkpoint, opts: RunOptions, auto?: AutoChoice): Promise<RunResult> {
    try {
      return await runIncremental(ctx, checkpoint, opts.toVersion, opts.allowMassDelete, auto);
    } catch (e) {
      const err = ctx.classify(e);
      if (!isMissingChanges(err) || this.mapping.onMissingChanges !== 'repair') throw err;
      ctx.warn(`${err.message} The mapping's onMissingChanges is "repair": repairing ${this.target.tableLabel} by checksums to ${opts.toVersion === undefined ? 'the latest version' : `version ${opts.toVersion}`}.`);
      // From the checkpoint as the failed run left it (it may have committed versions before the gap).
      const now = (await this.target.readCheckpoint(this.pipeline)) ?? checkpoint;
      const r = await runRepair(ctx, now, { ...(opts.toVersion === undefined ? {} : { toVersion: opts.toVersion }), ...(opts.allowMassDelete ? { allowMassDelete: true } : {}) });
      const applied = r.result ?? { inserted: 0, updated: 0, deleted: 0, unchanged: 0 };
      return {
        runId: randomUUID(), mode: 'incremental', status: 'succeeded', fromVersion: Number(checkpoint.version) + 1, toVersion: r.version,
        rowsRead: r.sourceRows, ...applied, deadLettered: 0, batches: 1, warnings: [`${err.message} Repaired by checksums instead: ${applied.inserted} inserted, ${applied.updated} updated, ${applied.deleted} deleted.`],
      };
    }
  }

  private async runOnce(ctx: RunContext, opts: RunOptions, progress: AttemptsProgress): Promise<RunResult> {
    // Rights first: a role that lacks one is refused naming it, before the state tables are
    // touched or anything is read (the rights of the load or sync once its mode is known).
    // Read in the lease's round trip; a refused run holds no lease (acquireRun).
    const guard = await this.target.acquireRun(this.pipeline, { rights: runRights(this.mapping, ['state']), initialLoad: opts.mode !== 'incremental' });
    ctx.holdLease(guard);
    try {
      const rights = await checkRights(this.target, this.mapping, ['state'], guard.rights);
      if (guard.notice) {
        ctx.warn(guard.notice);
        this.logger.warn(guard.notice);
      }
      if (guard.abandoned.length > 0) {
        const ids = guard.abandoned.map((id) => `#${id}`).join(', ');
        const msg = `Run(s) ${ids} of pipeline "${this.pipeline}" were still marked running, but the process running them had stopped (killed or lost its connection); marked them abandoned.`;
        ctx.warn(msg);
        this.logger.warn(msg);
      }
      // Read with the lease when it was free (one round trip for both).
      const checkpoint = guard.checkpoint !== undefined ? (guard.checkpoint ?? undefined) : await this.target.readCheckpoint(this.pipeline);
      const now = checkpoint ? Number(checkpoint.version) : null;
      // A retry: did another run commit versions while this one waited? Then they are not this run's work.
      const others = progress.checkpoint !== undefined && now !== null && now > (progress.checkpoint ?? -1)
        ? await this.appliedByOthers(progress.checkpoint, now)
        : undefined;
      progress.checkpoint ??= now;
      if (others) {
        progress.checkpoint = now;
        ctx.warn(others.message);
        this.logger.warn(others.message);
      }
      const mode: SyncMode = opts.mode === 'initial' || opts.mode === 'incremental' ? opts.mode : checkpoint ? 'incremental' : 'initial';
      if (mode === 'incremental' && !checkpoint) {
        throw new SyncError('mapping', `Pipeline "${this.pipeline}" has no checkpoint in ${this.target.tableLabel}: run an initial load first.`, {
          hint: 'Run an initial load first: {action}.', action: { id: 'initial-load' },
        });
      }
      if (mode === 'incremental') await checkRights(this.target, this.mapping, ['incremental'], rights);
      // Mapping mode "auto": many changes are loaded as the snapshot at the end version instead.
      const auto = mode === 'incremental' ? await chooseAutoPath(ctx, checkpoint as Checkpoint, opts.toVersion, rights) : undefined;
      const r = mode === 'initial' ? await runInitialLoad(ctx, opts.toVersion, rights, opts.allowMassDelete)
        : auto?.path === 'snapshot' ? await runInitialLoad(ctx, auto.toVersion, rights, opts.allowMassDelete, auto)
        : await this.incremental(ctx, checkpoint as Checkpoint, opts, auto);
      if (guard.abandoned.length > 0) r.abandonedRuns = guard.abandoned.map(String);
      if (others) {
        r.appliedByOthers = others;
        r.warnings.unshift(others.message);
      }
      return r;
    } finally {
      await guard.release();
    }
  }

  /**
   * What another run committed between an attempt of this run (checkpoint `from`, null:
   * none) and its retry (checkpoint `to`), naming the runs the run log shows finishing there.
   */
  private async appliedByOthers(from: number | null, to: number): Promise<NonNullable<RunResult['appliedByOthers']>> {
    const runs = (await this.target.runLog.history(this.pipeline, 20).catch(() => []))
      .filter((r) => r.status === 'succeeded' && r.toVersion !== null && Number(r.toVersion) > (from ?? -1) && Number(r.toVersion) <= to)
      .map((r) => r.runId)
      .reverse();
    const what = from === null ? `The initial load (to version ${to})` : from + 1 === to ? `Version ${to}` : `Versions ${from + 1}..${to}`;
    const by = runs.length === 0 ? 'another run' : `run${runs.length > 1 ? 's' : ''} ${runs.map((id) => `#${id}`).join(', ')}`;
    const message = `${what} of pipeline "${this.pipeline}" ${from !== null && from + 1 !== to ? 'were' : 'was'} applied by ${by} while this run waited to retry; this run did not apply ${from !== null && from + 1 !== to ? 'them' : 'it'}, and goes on from the checkpoint at version ${to}.`;
    return { fromVersion: from === null ? null : from + 1, toVersion: to, runIds: runs, message };
  }
}

/** What a run's attempts know of the checkpoint: as the first found it, moved by what they committed since. */
interface AttemptsProgress {
  /** Undefined before the first attempt read it; null: no checkpoint. */
  checkpoint?: number | null;
}

/**
 * The pipeline's state, from its checkpoint, the source's latest version and its newest
 * runs: running (a live run holds it), errored (the newest run that succeeded or failed
 * failed, with the error's kind, retry and hint), not-loaded, behind or up-to-date.
 */
/**
 * `latest`: the source's latest version, or why it was not read (then a loaded pipeline is
 * `source-not-checked`: never "up to date" from a version nobody read).
 */
export function pipelineState(checkpoint: Checkpoint | null, latest: number | { reason: string; short: string }, runs: readonly RunRecord[], running: boolean): PipelineState {
  const newest = runs[0];
  if (newest && running) return { phase: 'running', runId: newest.runId, mode: newest.mode, startedAt: newest.startedAt };
  const version = checkpoint ? Number(checkpoint.version) : null;
  // A cancelled or abandoned run neither clears an earlier failure nor is one.
  const finished = runs.find((r) => r.status === 'succeeded' || r.status === 'failed');
  if (finished && finished.status === 'failed') {
    const d = finished.errorDetail;
    return {
      phase: 'errored', version, at: finished.finishedAt ?? finished.startedAt,
      error: { message: d?.message ?? finished.error ?? 'failed', kind: d?.kind ?? 'unknown', retry: d?.retry ?? 'manual', ...(d?.hint ? { hint: d.hint } : {}) },
    };
  }
  if (version === null) return { phase: 'not-loaded' };
  if (typeof latest !== 'number') return { phase: 'source-not-checked', version, reason: latest.reason, short: latest.short };
  const latestVersion = latest;
  if (latestVersion > version) return { phase: 'behind', version, latestVersion, versionsBehind: latestVersion - version };
  return { phase: 'up-to-date', version };
}
