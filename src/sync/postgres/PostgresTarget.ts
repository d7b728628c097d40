import { beginTransaction, inlineParameters, inTransaction } from './transaction';
import type { Pool, PoolClient } from 'pg';
import { isSyncError } from '../errors';
import type { SyncError } from '../errors';
import type { Logger } from '../ports/Logger';
import { silentLogger } from '../ports/Logger';
import type {
  AcquireRunOptions, ApplyRequest, ApplyTransaction, BucketChecksumRequest, BucketRowsRequest, DryRunRequest, InitialLoadRequest, PreviewRequest, RunGuard, RunLog, Target, TargetTableInfo,
} from '../ports/Target';
import { ActiveClients } from './activeClients';
import { ApplyStream, dryRunChanges, withLockHolders, withStateLockHolders } from './applyChanges';
import type { ApplyResult } from '../ports/targetTypes';
import { classifyConnectError, classifyPgError } from './classifyPgError';
import type { ServerAddress } from './classifyPgError';
import { initialLoad } from './initialLoad';
import type { InitialLoadResult } from '../ports/targetTypes';
import { previewChanges } from './previewChanges';
import { bytesReceived, targetBucketRows, targetBucketSums } from './rangeChecksums';
import type { PreviewResult } from '../ports/targetTypes';
import type { BucketSum, TargetBucketRow } from '../ports/targetTypes';
import { derivedName, displayName, qualifiedRef, quoteIdent } from './quoteIdent';
import type { TableRef } from '../ports/targetTypes';
import { DEFAULT_FILLFACTOR } from './renderCreateTable';
import type { TargetColumn } from '../ports/targetTypes';
import { acquireRunGuard, LEASE_DEFAULTS, noteLocalRunId, reapAbandonedRuns, runIsLive } from './runGuard';
import type { LeaseCompany } from './runGuard';
import { deleteLease, finishRunReleasing, finishRunReleasingQuery } from './runLease';
import type { LeaseTiming } from './runGuard';
import { ensureMarkerColumn, isLiveSql, markerCatalogType, markerColumnDefinition, renderCreateTableWithMarker } from './softDeleteMarker';
import type { LineageColumns, SoftDeleteMarker } from '../ports/targetTypes';
import { lineageAlterations } from './lineageColumns';
import type { SwapBlocker } from '../ports/targetTypes';
import type { TableAlteration } from '../ports/targetTypes';
import { alterTableSql } from './alterTableSql';
import { ESTIMATE_EXACT_UP_TO, estimateFromRow, estimateRowsSql } from './estimateRows';
import { swapBlockersByNameQuery, swapBlockersFromRows } from './swapBlockers';
import { requiredRights, rightsFactsQuery, rightsFromFacts } from './requiredGrants';
import type { RightsRequest } from './requiredGrants';
import type { RightsOptions, RightsPurpose, RightsReport } from '../ports/rights';
import { ensureStateTables, finishRun, readCheckpoint, recentRuns, startRun } from './stateTables';
import type { Checkpoint, CheckpointInput } from '../ports/targetTypes';

/**
 * The Target port over a Postgres pool: a server's (pg.Pool) or the embedded sandbox's
 * (PglitePool, which hands out one connection at a time and has no `options`). Owns every
 * statement the engine sends outside the apply, load and preview modules it calls.
 */
export class PostgresTarget implements Target {
  readonly tableLabel: string;
  readonly runLog: RunLog;
  private readonly logger: Logger;
  private readonly active: ActiveClients;
  /** Pipeline -> the lease token of this target's run of it (runLog.start names the run in the lease). */
  private readonly leaseTokens = new Map<string, string>();
  /** Lease token -> its guard's handOver (runLog.finish of a run that succeeded gives the lease back itself). */
  private readonly handOvers = new Map<string, () => boolean>();
  /** Run id -> the lease its run holds (runLog.start), for runLog.finish. */
  private readonly runLeases = new Map<bigint, { pipeline: string; token: string; handOver: () => boolean }>();
  /** When rights() last found the state schema and tables complete (ms), for acquireRun. */
  private stateSeenComplete: number | undefined;
  /** The table's description read with the run lease (acquireRun), for the next describe(). */
  private described: { at: number; info: TargetTableInfo | undefined } | undefined;
  /** What an initial load asks first, read with the run lease (acquireRun with initialLoad), each for its next call. */
  private prefetched: { swapBlockers?: { at: number; blockers: SwapBlocker[] }; leftovers?: { at: number; rows: LeftoverRow[] } } | undefined;

  constructor(
    private readonly pool: Pool,
    readonly table: TableRef,
    opts: { logger?: Logger } = {},
  ) {
    this.tableLabel = displayName(table);
    this.logger = opts.logger ?? silentLogger;
    this.active = new ActiveClients(pool);
    this.runLog = {
      start: async (run) => {
        const token = this.leaseTokens.get(run.pipeline);
        const id = await this.withClient((c) => startRun(c, run, token));
        if (!this.usesLease()) noteLocalRunId(run.pipeline, id);
        const handOver = token === undefined ? undefined : this.handOvers.get(token);
        if (token !== undefined && handOver) this.runLeases.set(id, { pipeline: run.pipeline, token, handOver });
        return id;
      },
      finish: (runId, result) => {
        // A run that succeeded ends here: its lease goes back in the same statement.
        const held = result.status === 'succeeded' ? this.runLeases.get(runId) : undefined;
        if (held && this.leaseTokens.get(held.pipeline) === held.token && held.handOver()) {
          this.leaseTokens.delete(held.pipeline);
          this.runLeases.delete(runId);
          return this.withClient((c) => finishRunReleasing(c, runId, result, held.pipeline, held.token));
        }
        return this.withClient((c) => finishRun(c, runId, result));
      },
      history: (pipeline, limit) => this.withClient((c) => recentRuns(c, pipeline, limit)),
    };
  }

  get concurrent(): boolean {
    return this.usesLease();
  }

  async prepare(): Promise<void> {
    await this.withClient((c) => ensureStateTables(c));
  }

  describe(): Promise<TargetTableInfo | undefined> {
    // Read moments ago in the lease's round trip (acquireRun): used once, by the run's plan.
    const d = this.described;
    this.described = undefined;
    if (d && Date.now() - d.at < STATE_SEEN_FOR_MS) return Promise.resolve(d.info);
    return this.withClient((c) => describeTable(c, this.table));
  }

  createTableSql(columns: readonly TargetColumn[], key: readonly string[], marker: SoftDeleteMarker | undefined, fillfactor: number | undefined): string {
    return renderCreateTableWithMarker(this.table, columns, key, marker, { fillfactor: fillfactor ?? DEFAULT_FILLFACTOR });
  }

  readCheckpoint(pipeline: string): Promise<Checkpoint | undefined> {
    return this.withClient((c) => readCheckpoint(c, pipeline));
  }

  interrupt(reason: string): void {
    this.active.interrupt(reason);
  }

  async acquireRun(pipeline: string, opts: AcquireRunOptions = {}): Promise<RunGuard> {
    const wanted = opts.rights;
    let rights: RightsReport | undefined;
    // The sandbox (no lease): the rights check on its own first.
    if (wanted && !this.usesLease()) {
      rights = await this.rights(wanted.request);
      wanted.check(rights);
    }
    const request = wanted ? this.rightsRequest(wanted.request) : undefined;
    // On a server: the rights check's facts and the table's description ride in the lease's round trip.
    const company: LeaseCompany | undefined = wanted && request && this.usesLease()
      ? {
          statements: [
            rightsFactsQuery(this.table, request.role), describeTableQuery(this.table),
            // A run that may load the snapshot asks these next (swap blockers, staging leftovers).
            ...(opts.initialLoad ? [swapBlockersByNameQuery(this.table.schema ?? null, this.table.name), this.stagingLeftoversQuery()] : []),
          ],
          take: async (c, [facts, description, blockers, leftovers]) => {
            rights = await rightsFromFacts(c, this.table, request, facts?.rows[0]);
            wanted.check(rights);
            const at = Date.now();
            this.described = { at, info: describedFrom(description?.rows[0]) };
            this.prefetched = blockers && leftovers
              ? { swapBlockers: { at, blockers: swapBlockersFromRows(blockers.rows as SwapBlockerRow[]) }, leftovers: { at, rows: leftovers.rows as LeftoverRow[] } }
              : undefined;
          },
          alone: async (c) => {
            rights = await requiredRights(c, this.table, request);
            wanted.check(rights);
          },
        }
      : undefined;
    const guard = await acquireRunGuard(
      {
        ...(company ? { company } : {}),
        lease: this.usesLease(),
        timing: this.leaseTiming(),
        withClient: (fn) => this.withClient(fn),
        // The heartbeat found another run holding the pipeline: stop this one where it is
        // (its batches would fail the checkpoint check anyway).
        onLost: (err) => this.active.cutOff(err),
        tableLabel: this.tableLabel,
        logger: this.logger,
        // The rights check a run starts with read the state tables' shape moments ago.
        stateKnownComplete: () => this.stateSeenComplete !== undefined && Date.now() - this.stateSeenComplete < STATE_SEEN_FOR_MS,
      },
      pipeline,
    );
    // Every way of taking it left the state tables complete (created or brought up to date when not).
    this.stateSeenComplete = Date.now();
    const { token } = guard;
    if (rights) guard.rights = rights;
    if (token === undefined) return guard;
    this.leaseTokens.set(pipeline, token);
    if (guard.handOver) this.handOvers.set(token, guard.handOver);
    return {
      ...guard,
      release: async () => {
        if (this.leaseTokens.get(pipeline) === token) this.leaseTokens.delete(pipeline);
        this.handOvers.delete(token);
        for (const [id, l] of this.runLeases) if (l.token === token) this.runLeases.delete(id);
        await guard.release();
      },
    };
  }

  reapAbandoned(pipeline: string): Promise<void> {
    return this.withClient(async (c) => {
      await ensureStateTables(c);
      await reapAbandonedRuns(c, this.usesLease(), pipeline);
    });
  }

  isRunning(pipeline: string): Promise<boolean> {
    return this.withClient((c) => runIsLive(c, this.usesLease(), pipeline));
  }

  /**
   * Drops `<table>__dns_<8 hex>` staging tables that an initial load killed mid-COPY left
   * behind (the staging table is created outside the load's transaction, so a SIGKILL or a
   * lost connection keeps it, at full size). A staging table another live load is writing
   * to is locked by it and skipped (NOWAIT).
   */
  dropStagingLeftovers(): Promise<string[]> {
    // Found moments ago in the lease's round trip (acquireRun with initialLoad): used once.
    const seen = this.prefetched?.leftovers;
    if (this.prefetched) this.prefetched.leftovers = undefined;
    const fresh = seen && Date.now() - seen.at < STATE_SEEN_FOR_MS ? seen.rows : undefined;
    if (fresh && fresh.length === 0) return Promise.resolve([]);
    return this.withClient(async (c) => {
      const q = this.stagingLeftoversQuery();
      const found = fresh ?? (await c.query<LeftoverRow>(q.text, q.values)).rows;
      const dropped: string[] = [];
      for (const { relname, schema } of found) {
        if (!/^[0-9a-f]{8}$/.test(relname.slice(relname.length - 8))) continue;
        const ref = qualifiedRef({ schema, name: relname });
        await beginTransaction(c);
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
    });
  }

  /** The `<table>__dns_<8 characters>` tables beside the table (dropStagingLeftovers checks the 8 are hex). */
  private stagingLeftoversQuery(): { text: string; values: unknown[] } {
    const sample = derivedName(this.table.name, STAGING_SAMPLE_SUFFIX);
    const prefix = sample.slice(0, sample.length - 8);
    return {
      text: `SELECT c.relname::text AS relname, n.nspname::text AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = COALESCE($1::text, current_schema()) AND c.relkind = 'r' AND left(c.relname, length($2::text)) = $2::text AND length(c.relname) = length($2::text) + 8`,
      values: [this.table.schema ?? null, prefix],
    };
  }

  alterationSql(alteration: TableAlteration): string {
    return alterTableSql(this.table, alteration);
  }

  private ddlOf(alterations: readonly TableAlteration[] | undefined): { ddl?: string[] } {
    return alterations && alterations.length > 0 ? { ddl: alterations.map((a) => this.alterationSql(a)) } : {};
  }

  async ensureMarkerColumn(marker: SoftDeleteMarker, existing: Map<string, string>): Promise<string | undefined> {
    const added = await this.withClient((c) => ensureMarkerColumn(c, this.table, marker, existing));
    if (added) existing.set(marker.column, markerCatalogType(marker));
    return added;
  }

  lineageAlterations(lineage: LineageColumns | undefined, existing: ReadonlyMap<string, string>): TableAlteration[] {
    return lineageAlterations(this.table, lineage, existing);
  }

  markerColumnSql(marker: SoftDeleteMarker): string {
    return `ALTER TABLE ${qualifiedRef(this.table)} ADD COLUMN ${markerColumnDefinition(marker)};`;
  }

  swapBlockers(): Promise<SwapBlocker[]> {
    // Read moments ago in the lease's round trip (acquireRun with initialLoad): used once.
    const seen = this.prefetched?.swapBlockers;
    if (this.prefetched) this.prefetched.swapBlockers = undefined;
    if (seen && Date.now() - seen.at < STATE_SEEN_FOR_MS) return Promise.resolve(seen.blockers);
    const q = swapBlockersByNameQuery(this.table.schema ?? null, this.table.name);
    return this.withClient(async (c) => swapBlockersFromRows((await c.query<SwapBlockerRow>(q.text, q.values)).rows));
  }

  async initialLoad(opts: InitialLoadRequest): Promise<InitialLoadResult & { runEnded?: boolean }> {
    const { alterations, endRun, ...rest } = opts;
    const stateReady = this.stateSeenComplete !== undefined && Date.now() - this.stateSeenComplete < STATE_SEEN_FOR_MS;
    const ending = this.runEnding(endRun?.runId);
    try {
      const r = await initialLoad(this.pool, {
        ...rest, table: this.table, checkpoint: this.withLease(opts.checkpoint), ...this.ddlOf(alterations), ...(stateReady ? { stateReady } : {}),
        ...(ending && endRun ? { after: (l: InitialLoadResult) => ending.statements(l.mode === 'swap' ? l.inserted : l.inserted + l.updated + l.deleted + (l.softDeleted ?? 0), endRun.toVersion) } : {}),
      });
      return ending?.ended() ? { ...r, runEnded: true } : r;
    } catch (e) {
      await ending?.failed();
      throw e;
    }
  }

  /**
   * The end of run `runId` (with the lease it holds) as statements of its last data
   * transaction (runLog.finish's, of a run that succeeded): statements() hands the lease
   * over (its heartbeat stops) and returns them; once that transaction committed, ended()
   * forgets the lease; when it failed, failed() gives the lease back on its own.
   * Undefined when the run holds no lease of this target (the sandbox).
   */
  private runEnding(runId: bigint | undefined): { statements(rows: number, toVersion: number): string[]; ended(): boolean; failed(): Promise<void> } | undefined {
    const held = runId === undefined ? undefined : this.runLeases.get(runId);
    if (runId === undefined || !held || this.leaseTokens.get(held.pipeline) !== held.token) return undefined;
    let handed = false;
    const forget = (): void => {
      if (this.leaseTokens.get(held.pipeline) === held.token) this.leaseTokens.delete(held.pipeline);
      this.runLeases.delete(runId);
    };
    return {
      statements: (rows, toVersion) => {
        if (!held.handOver()) return [];
        handed = true;
        const q = finishRunReleasingQuery(runId, { status: 'succeeded', rows, toVersion }, held.pipeline, held.token);
        const sql = inlineParameters(q.text, q.values);
        if (sql === undefined) throw new Error('the run end statement could not be inlined');
        return [sql];
      },
      ended: () => {
        if (handed) forget();
        return handed;
      },
      failed: async () => {
        if (!handed) return;
        // Nothing of the run's end committed: the lease the hand-over stopped renewing is given back here.
        forget();
        await this.withClient((c) => deleteLease(c, held.pipeline, held.token)).catch(() => undefined);
      },
    };
  }

  async beginApply(opts: ApplyRequest): Promise<ApplyTransaction> {
    const checkpoint = (version: number, commitTimestamp: number | null): CheckpointInput => this.withLease({
      pipeline: opts.pipeline, source: opts.source, version, commitTimestamp,
    });
    const base = {
      table: this.table, columns: opts.columns, key: opts.key, ...(opts.softDelete ? { softDelete: opts.softDelete } : {}), ...(opts.lineage ? { lineage: opts.lineage } : {}),
      expectVersion: opts.expectVersion,
    };
    const client = await this.connect();
    let stream: ApplyStream;
    try {
      // With dead letters, rows a constraint refuses are isolated under savepoints (the
      // isolating strategy); otherwise the plain one, which is the fast path.
      stream = await ApplyStream.begin(client, {
        ...base, checkpoint: checkpoint(opts.expectVersion ?? -1, null), ...(opts.deadLetter ? { deadLetter: true } : {}),
        ...(opts.refuseExistingKeys ? { refuseExistingKeys: opts.refuseExistingKeys } : {}), onLockWait: (m) => this.logger.warn(m),
        ...(opts.estimateRows ? { estimateRows: opts.estimateRows } : {}),
        ...this.ddlOf(opts.alterations),
      });
    } catch (e) {
      client.release(e instanceof Error ? e : true);
      throw e;
    }
    let open = true;
    return {
      ...(stream.estimatedRows !== undefined ? { estimatedRows: stream.estimatedRows } : {}),
      apply: (part) => stream.apply(part),
      totals: () => stream.totals(),
      commit: async ({ version, commitTimestamp, endRun }) => {
        const cp = checkpoint(version, commitTimestamp);
        // The run's last transaction: its end and the lease's release commit with it (see runLog.finish).
        const ending = endRun ? this.runEnding(endRun.runId) : undefined;
        try {
          const r = await stream.commit(cp, ending && endRun
            ? (applied) => ending.statements(endRun.rowsBefore + applied.inserted + applied.updated + applied.deleted + (applied.softDeleted ?? 0), endRun.toVersion)
            : undefined);
          open = false;
          client.release();
          return ending?.ended() ? { ...r, runEnded: true } : r;
        } catch (e) {
          open = false;
          client.release(e instanceof Error ? e : true);
          await ending?.failed();
          throw e;
        }
      },
      rollback: async () => {
        if (!open) return;
        open = false;
        await stream.rollback();
        // The connection may be mid-statement after an abort: never hand it back to the pool.
        client.release(true);
      },
    };
  }

  preview(opts: PreviewRequest): Promise<PreviewResult> {
    return this.withClient((c) => previewChanges(c, {
      table: this.table, columns: opts.columns, key: opts.key,
      upserts: opts.first.upserts, deletes: opts.first.deletes,
      limit: opts.limit, offset: opts.offset, include: opts.include,
      ...(opts.search ? { search: opts.search } : {}),
      ...(opts.softDelete ? { softDelete: opts.softDelete, softDeletes: opts.first.softDeletes ?? [] } : {}),
      ...(opts.targetLacks ? { targetLacks: opts.targetLacks } : {}),
      ...(opts.guardVersion ? { guardVersion: opts.guardVersion } : {}),
      ...(opts.liveOnly ? { liveOnly: true } : {}),
      ...(opts.later ? { later: opts.later } : {}),
      ...this.ddlOf(opts.alterations),
      ...(opts.refuseExistingKeys ? { refuseExistingKeys: true } : {}),
    }));
  }

  dryRun(opts: DryRunRequest): Promise<ApplyResult> {
    return this.withClient((c) => dryRunChanges(c, {
      table: this.table, columns: opts.columns, key: opts.key, upserts: opts.first.upserts, deletes: opts.first.deletes,
      ...(opts.softDelete ? { softDelete: opts.softDelete, softDeletes: opts.first.softDeletes ?? [] } : {}),
      ...(opts.lineage ? { lineage: opts.lineage } : {}),
      ...(opts.later ? { later: opts.later } : {}),
      ...(opts.refuseExistingKeys ? { refuseExistingKeys: opts.refuseExistingKeys } : {}),
      checkpoint: { pipeline: opts.pipeline, source: opts.source, version: opts.version, commitTimestamp: null },
      ...this.ddlOf(opts.alterations),
    }));
  }

  bucketChecksums(request: BucketChecksumRequest): Promise<{ sums: Map<number, BucketSum>; bytes: number }> {
    return this.withClient(async (c) => {
      const before = bytesReceived(c);
      const sums = await targetBucketSums(c, { ...request, table: this.table });
      return { sums, bytes: bytesReceived(c) - before };
    });
  }

  bucketRows(request: BucketRowsRequest): Promise<{ rows: TargetBucketRow[]; bytes: number }> {
    return this.withClient(async (c) => {
      const before = bytesReceived(c);
      const rows = await targetBucketRows(c, { ...request, table: this.table });
      return { rows, bytes: bytesReceived(c) - before };
    });
  }

  countRows(marker?: SoftDeleteMarker): Promise<number> {
    // In a transaction, for the limits (SET LOCAL): a lock another session holds on the table ends in lock_timeout, not a silent wait.
    return this.withClient((c) => inTransaction(c, async () => {
      const live = marker ? ` WHERE ${isLiveSql('', marker)}` : '';
      const r = await c.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${qualifiedRef(this.table)}${live}`);
      return Number(r.rows[0]?.n ?? 0);
    }));
  }

  estimateRows(marker?: SoftDeleteMarker, exactUpTo = ESTIMATE_EXACT_UP_TO): Promise<number> {
    // One statement, so one round trip with the limits (limitStatementsOutsideTransactions
    // sends it inside BEGIN; SET LOCAL ...; COMMIT): a lock another session holds on the
    // table ends in lock_timeout, not a silent wait.
    const sql = estimateRowsSql(this.table, marker, exactUpTo);
    return this.withClient((c) => (async () => {
      const r = await c.query<{ estimate: number; counted: unknown }>(sql, [qualifiedRef(this.table)]).catch((e: unknown) => {
        // The table does not exist: nothing to delete from.
        if ((e as { code?: unknown }).code === '42P01') return undefined;
        throw e;
      });
      return estimateFromRow(r?.rows[0], exactUpTo);
    })().catch(async (e: unknown) => {
      throw await withLockHolders(c, this.table, this.classifyError(e));
    }));
  }

  rights(request: { purposes: readonly RightsPurpose[]; options: RightsOptions; role?: string }): Promise<RightsReport> {
    return this.withClient((c) => requiredRights(c, this.table, this.rightsRequest(request)));
  }

  /** `request` noting what it finds of the state tables (acquireRun then skips their check). */
  private rightsRequest(request: { purposes: readonly RightsPurpose[]; options: RightsOptions; role?: string }): RightsRequest {
    return { ...request, onStateShape: (complete) => void (this.stateSeenComplete = complete ? Date.now() : undefined) };
  }

  classifyError(e: unknown): SyncError {
    return isSyncError(e) ? e : classifyPgError(e, { table: this.tableLabel });
  }

  /** `cp` with the lease token of this target's run of its pipeline, when it holds one (see writeCheckpoint). */
  private withLease(cp: CheckpointInput): CheckpointInput {
    const token = this.leaseTokens.get(cp.pipeline);
    return token === undefined ? cp : { ...cp, leaseToken: token };
  }

  /** Whether runs hold a lease in the database (a real server pool with room for its heartbeat). */
  private usesLease(): boolean {
    // The sandbox's pool (PglitePool) has no `options`; it hands out one client at a time,
    // so the heartbeat would wait behind the run itself.
    const o: unknown = (this.pool as unknown as { options?: unknown }).options;
    if (typeof o !== 'object' || o === null) return false;
    const max = (o as { max?: unknown }).max;
    return typeof max !== 'number' || max >= 2;
  }

  /** The lease's length and heartbeat: run_lease_timeout / run_lease_renew in the URL (see createPool), else the defaults. */
  private leaseTiming(): LeaseTiming {
    const o = (this.pool as unknown as { options?: { runLeaseMillis?: unknown; runLeaseRenewMillis?: unknown } }).options;
    const leaseMs = typeof o?.runLeaseMillis === 'number' ? o.runLeaseMillis : LEASE_DEFAULTS.leaseMs;
    const renew = typeof o?.runLeaseRenewMillis === 'number' ? o.runLeaseRenewMillis : Math.min(LEASE_DEFAULTS.renewMs, leaseMs / 6);
    return { leaseMs, renewMs: Math.max(100, Math.min(renew, leaseMs / 2)) };
  }

  private async connect(): Promise<PoolClient> {
    try {
      return await this.pool.connect();
    } catch (e) {
      const server = this.serverAddress();
      // Never connected: say so, name host:port (and database, sslmode), not the table.
      const never = server ? classifyConnectError(e, server) : undefined;
      if (never) throw never;
      const err = classifyPgError(e);
      const where = this.serverLabel();
      if (!where || (err.kind !== 'auth' && err.kind !== 'connection')) throw err;
      // Say which server and login failed (never the password): the driver's message alone
      // ("password authentication failed for user x") does not.
      throw err.withContext(where, { cause: e });
    }
  }

  /** host, port, database, user and sslmode from the pool's settings, when it has them. */
  private serverAddress(): ServerAddress | undefined {
    const o: unknown = (this.pool as unknown as { options?: unknown }).options;
    if (typeof o !== 'object' || o === null) return undefined;
    const { host, port, database, user, sslmode, sslrootcert, channel_binding: channelBinding } = o as Record<string, unknown>;
    if (typeof host !== 'string') return undefined;
    return {
      host,
      ...(typeof port === 'number' || typeof port === 'string' ? { port } : {}),
      ...(typeof database === 'string' ? { database } : {}),
      ...(typeof user === 'string' ? { user } : {}),
      ...(typeof sslmode === 'string' ? { sslMode: sslmode } : {}),
      ...(typeof sslrootcert === 'string' ? { sslRootCert: sslrootcert } : {}),
      ...(typeof channelBinding === 'string' ? { channelBinding } : {}),
    };
  }

  /** `server host:port, database d, user u` from the pool's settings, when it has them. */
  private serverLabel(): string | undefined {
    const s = this.serverAddress();
    if (!s) return undefined;
    const parts = [`server ${s.host}${s.port !== undefined ? `:${s.port}` : ''}`];
    if (s.database !== undefined) parts.push(`database ${s.database}`);
    if (s.user !== undefined) parts.push(`user ${s.user}`);
    return parts.join(', ');
  }

  private async withClient<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.connect();
    try {
      const r = await fn(c);
      c.release();
      return r;
    } catch (e) {
      // A connection that failed is destroyed, not handed to the next user.
      const broken = e instanceof Error && (isSyncError(e) ? e : classifyPgError(e, { table: this.tableLabel })).kind === 'connection';
      // A lock wait that ended in lock_timeout (every statement here has the pool's limits,
      // see limitStatementsOutsideTransactions): say who holds the lock it waited for.
      const named = !broken && !isSyncError(e) && (e as { code?: unknown }).code === '55P03'
        ? await withStateLockHolders(c, this.table, classifyPgError(e)).catch(() => e)
        : e;
      c.release(broken ? (e as Error) : undefined);
      throw named;
    }
  }

}

/** The table's columns (name -> type) and primary key, or undefined when it does not exist (one round trip). */
async function describeTable(c: PoolClient, table: TableRef): Promise<TargetTableInfo | undefined> {
  const q = describeTableQuery(table);
  const r = await c.query(q.text, q.values);
  return describedFrom(r.rows[0]);
}

/** describeTable's statement. */
function describeTableQuery(table: TableRef): { text: string; values: unknown[] } {
  return {
    text: `WITH t AS (SELECT t.oid FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1 AND t.relname = $2)
     SELECT (SELECT json_agg(json_build_object('attname', a.attname::text, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
               FROM pg_attribute a WHERE a.attrelid IN (SELECT oid FROM t) AND a.attnum > 0 AND NOT a.attisdropped) AS cols,
            ARRAY(SELECT a.attname::text FROM pg_index i
                    JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                   WHERE i.indrelid IN (SELECT oid FROM t) AND i.indisprimary ORDER BY k.ord) AS pk`,
    values: [table.schema ?? 'public', table.name],
  };
}

/** describeTableQuery's row, read. */
function describedFrom(r: unknown): TargetTableInfo | undefined {
  const row = r as { cols: Array<{ attname: string; type: string }> | null; pk: string[] } | undefined;
  if (!row?.cols || row.cols.length === 0) return undefined;
  return { columns: new Map(row.cols.map((x) => [x.attname, x.type])), primaryKey: row.pk };
}

/** A staging table found beside the table (dropStagingLeftovers). */
interface LeftoverRow {
  relname: string;
  schema: string;
}

type SwapBlockerRow = Parameters<typeof swapBlockersFromRows>[0][number];

/** How long a rights check's view of the state tables stands in for acquireRun's own check. */
const STATE_SEEN_FOR_MS = 5_000;

/** Same length as initialLoad's `__dns_<8 hex>` staging suffix; only its length matters here. */
const STAGING_SAMPLE_SUFFIX = '__dns_00000000';
