import type { Row } from '../delta/types';
import { SyncError } from '../errors';
import { compileRowFilter } from '../mapping/compileRowFilter';
import { planTransactions } from '../plan/planTransactions';
import type { SourceSnapshot } from '../ports/ChangeSource';
import type { DryRunReport, PreviewOptions, PreviewReport, PreviewWarning, VerifyReport } from '../ports/reports';
import type { PreviewResult } from '../ports/targetTypes';
import type { StagedChanges } from '../ports/targetTypes';
import type { TargetColumn } from '../ports/targetTypes';
import { LINEAGE_TIMESTAMP_KEY, LINEAGE_VERSION_KEY, lineageStaged, lineageTargetColumns } from '../plan/lineage';
import { READ_BATCH_ROWS, createdColumns, dataColumns, planColumns, refuseExistingKeysOption, transactionOptions, withLiveMarker } from './columnPlan';
import type { ColumnPlan } from './columnPlan';
import type { RunContext } from './RunContext';
import { driftAfterPlanning, driftBeforePlanning, mergeLoadDriftBefore, tableChanges } from './schemaDriftPlan';
import { autoSaid, chooseAutoPath } from './autoMode';
import type { AutoChoice } from './autoMode';
import { runInitialLoad } from './initialPhase';
import type { RightsReport } from '../ports/rights';
import type { ApplyResult } from '../ports/targetTypes';
import { checkRights } from './mappingRights';
import { formatValue } from '../postgres/formatValue';
import { PreviewChecker } from '../postgres/previewChecks';

/**
 * The read-only phases: preview (what a sync would do now, row by row, against the rows in
 * the target), verify (the target against the snapshot at the checkpoint) and dry run (the
 * sync's transactions applied in one transaction that is rolled back). They plan exactly
 * as the sync does (planColumns, transactionOptions, planTransactions), so their counts
 * are the sync's.
 */

/** Read-only: what a sync would do now, row by row, against the rows in the target. */
export async function previewSync(ctx: RunContext, opts: PreviewOptions): Promise<PreviewReport> {
  const { mapping, source, target, signal } = ctx;
  const rights = await checkRights(target, mapping, ['state', 'preview']);
  await target.prepare();
  const checkpoint = await target.readCheckpoint(ctx.pipeline);
  const existing = await target.describe();
  const latest = await source.latestVersion();
  const end = Math.min(opts.toVersion ?? latest, latest);
  // An initial load: none yet, or a reload asked for (mode "initial").
  const initial = !checkpoint || opts.mode === 'initial';
  const snap = await source.snapshot(checkpoint ? end : opts.toVersion);
  // The sync's drift check: an incremental's, or a merge load's into the existing table (a swap replaces the table).
  const drift = !existing
    ? undefined
    : !initial && checkpoint
      ? await driftBeforePlanning(ctx, Number(checkpoint.version), snap.schema, mapping.key ?? existing.primaryKey, end)
      : mapping.initialLoad.mode === 'merge'
        ? await mergeLoadDriftBefore(ctx, checkpoint ? Number(checkpoint.version) : undefined, snap.schema, mapping.key ?? existing.primaryKey, snap.version)
        : undefined;
  const planned = planColumns(mapping, source.name, snap.schema, existing?.primaryKey, snap.version, target.tableLabel);
  // The sync's schema changes, shown as DDL and run (then rolled back) before the rows are
  // classified: an incremental's one list (drift, then lineage columns), or a merge load's
  // drift (as initialPhase runs it).
  const none = { plan: planned, alterations: [] };
  const { plan, alterations } = !existing
    ? none
    : !initial && checkpoint
      ? tableChanges(ctx, drift, planned, existing)
      : drift
        ? driftAfterPlanning(ctx, drift, planned, existing)
        : none;
  const limit = opts.limit ?? 100;
  const offset = opts.offset ?? 0;
  const marker = plan.marker;
  const lacks = marker && existing && !existing.columns.has(marker.column) ? [marker.column] : [];
  const lineage = lineageView(plan, existing?.columns);
  // Lineage columns the table lacks: an incremental preview adds them first (among
  // `alterations`, as the sync does); an initial load's reads them as NULL.
  const lineageLacks = checkpoint ? [] : lineage.lacks;
  const soft = marker || lineage.columns.length > 0
    ? { ...(marker ? { softDelete: marker } : {}), targetLacks: [...lacks, ...lineageLacks] }
    : {};
  const columns = [...plan.columns, ...lineage.columns];
  const guard = lineage.guardVersion ? { guardVersion: lineage.guardVersion } : {};
  // The pre-apply checks see every row the sync would write, as the preview stages it (or
  // in a scan of their own when nothing is staged); the existing table's types win.
  const checker = opts.checks ? new PreviewChecker(dataColumns(plan), plan.key, { duplicates: initial, ...(existing ? { targetTypes: existing.columns } : {}) }) : undefined;
  if (initial) {
    // Initial load preview: the snapshot's rows against what the target holds (or nothing).
    const ddl = target.createTableSql(createdColumns(plan), plan.key, marker, mapping.initialLoad.fillfactor);
    if (!existing) {
      const page = await insertsPage(ctx, snap, plan, limit, offset, opts.search);
      if (checker) for await (const b of snapshotRows(ctx, snap, plan)) checker.add(b);
      return { ...page, mode: 'initial', fromVersion: null, toVersion: snap.version, targetMissing: true, ddl, ...(checker ? { warnings: checker.warnings() } : {}) };
    }
    const rows = snapshotRows(ctx, snap, plan);
    // A swap replaces the table (no guard); a merge load keeps rows newer than the snapshot.
    const loadGuard = mapping.initialLoad.mode === 'merge' ? guard : {};
    // A merge load's schema changes: run (then rolled back) before the rows are classified, and shown.
    const r = await target.preview({
      columns, key: plan.key, first: { upserts: withoutNullKeys(checker ? checker.tap(rows) : rows, plan.keySource), deletes: [] }, limit, offset, include: opts.include,
      ...(opts.search ? { search: opts.search } : {}), ...soft, ...loadGuard, ...(alterations.length ? { alterations } : {}),
    });
    return {
      ...r, mode: 'initial', fromVersion: null, toVersion: snap.version, targetMissing: false, ddl, ...(checker ? { warnings: checker.warnings() } : {}),
      ...(alterations.length ? { alterations: alterations.map((a) => target.alterationSql(a)) } : {}),
    };
  }
  const start = Number(checkpoint.version) + 1;
  if (!existing) {
    throw new SyncError('target', `Target table ${target.tableLabel} does not exist, but pipeline "${ctx.pipeline}" has a checkpoint at version ${checkpoint.version}.`, {
      table: target.tableLabel,
      hint: 'Run a new initial load: {action}', action: { id: 'initial-load' },
    });
  }
  // Mapping mode "auto": which path the sync takes, and why. Either brings the target to the
  // same rows, so the rows listed are the change feed's net changes. Said on a first page
  // (offset 0): later pages of the same preview need only their rows, not a new count.
  const auto = (opts.offset ?? 0) === 0 ? await chooseAutoPath(ctx, checkpoint, end, rights) : undefined;
  // The sync's own transactions: the first is classified against the target, each later
  // one against the target as the earlier ones leave it, so the totals are what the sync
  // will report.
  const { first, later } = await transactionsOf(ctx, plan, start, end, signal);
  const tapped = (seg: StagedChanges): StagedChanges => ({ ...seg, upserts: withoutNullKeys(checker ? checker.tap(seg.upserts) : seg.upserts, plan.keySource) });
  const laterTapped = later ? mapAsync(later, tapped) : later;
  // With the checks, also the sync's refusal of inserts of keys the target already holds (duplicateKeys "fail").
  const refuse = checker !== undefined && refuseExistingKeysOption(mapping) !== undefined;
  const { existingKeys, ...r } = await target.preview({
    columns, key: plan.key, first: tapped(first), ...(laterTapped ? { later: laterTapped } : {}), limit, offset, include: opts.include,
    ...(opts.search ? { search: opts.search } : {}), ...soft, ...guard, ...(alterations.length ? { alterations } : {}), ...(refuse ? { refuseExistingKeys: true } : {}),
  });
  const warnings = checker ? [...(existingKeys ? [existingKeyWarning(source.name, target.tableLabel, plan.key, existingKeys)] : []), ...checker.warnings()] : undefined;
  return {
    ...r, mode: 'incremental', fromVersion: start, toVersion: end, targetMissing: false, ...(warnings ? { warnings } : {}),
    ...(alterations.length ? { alterations: alterations.map((a) => target.alterationSql(a)) } : {}),
    ...autoSaid(auto),
  };
}

/** The preview's form of the sync's refusal of an insert whose key the target holds (applyChanges' refuseExistingKeys). */
export function existingKeyWarning(source: string, table: string, key: readonly string[], found: NonNullable<PreviewResult['existingKeys']>): PreviewWarning {
  const versions = [...new Set(found.samples.map((s) => s.version))].sort((a, b) => a - b);
  const keys = found.samples.map((s) => key.map((k) => `${k}=${s.key[k] ?? 'NULL'}`).join(', ')).join('; ');
  return {
    check: 'existing-key',
    count: found.count,
    blocking: true,
    message:
      `Applying fails: the Delta table ${source} holds duplicate keys: version${versions.length === 1 ? '' : 's'} ${versions.join(', ')} insert${versions.length === 1 ? 's' : ''} keys that ${table} already holds ` +
      `(${keys}${found.count > found.samples.length ? ' and more' : ''}); the target holds one row per key. Remove the extra rows from the Delta table, or set "duplicateKeys": "last-wins" in the mapping to apply such an insert as an update.`,
    samples: found.samples.map((s) => ({ version: String(s.version), ...s.key })),
  };
}

/**
 * Reconciles the target with the source snapshot at the checkpoint version: rows missing
 * from the target, rows whose values differ, and target rows the source does not have.
 * Read-only (the comparison is staged in a rolled-back transaction).
 */
export async function verifyTarget(ctx: RunContext, opts: { sampleLimit?: number }): Promise<VerifyReport> {
  const { mapping, source, target } = ctx;
  await checkRights(target, mapping, ['state', 'preview']);
  await target.prepare();
  const checkpoint = await target.readCheckpoint(ctx.pipeline);
  if (!checkpoint) {
    throw new SyncError('mapping', `Pipeline "${ctx.pipeline}" has no checkpoint yet: nothing to verify against ${target.tableLabel}.`, {
      table: target.tableLabel,
      hint: 'Load the table first: {action}', action: { id: 'initial-load' },
    });
  }
  const existing = await target.describe();
  const version = Number(checkpoint.version);
  const snap = await source.snapshot(version);
  const plan = planColumns(mapping, source.name, snap.schema, existing?.primaryKey, version, target.tableLabel);
  const marker = plan.marker;
  // Soft delete: the source is compared with the live target rows; rows marked deleted are expected extras.
  const lacks = marker && existing && !existing.columns.has(marker.column) ? [marker.column] : [];
  const r = await target.preview({
    columns: plan.columns, key: plan.key, first: { upserts: snapshotRows(ctx, snap, plan), deletes: [] }, limit: opts.sampleLimit ?? 20, include: ['insert', 'update'],
    ...(marker ? { softDelete: marker, targetLacks: lacks, liveOnly: true } : {}),
  });
  const targetRows = await target.countRows(marker && lacks.length === 0 ? marker : undefined);
  const sourceRows = r.totals.insert + r.totals.update + r.totals.unchanged;
  const extra = targetRows - r.totals.update - r.totals.unchanged;
  if (extra < 0) {
    // The target holds each key once, so more source rows matched it than it has rows: the
    // snapshot repeats keys. A count of "extra" rows below zero would say nothing true.
    throw new SyncError(
      'mapping',
      `The snapshot of ${source.name} at version ${version} repeats keys that ${target.tableLabel} holds once (${-extra} row${extra === -1 ? '' : 's'} more than those keys): the key (${plan.keySource.join(', ')}) is not unique, so the target (one row per key) cannot equal it.`,
      { table: source.name, version, hint: 'Choose key columns that are unique in the Delta table (key of the mapping), or remove the duplicate rows from it.' },
    );
  }
  return {
    version, sourceRows, targetRows, missing: r.totals.insert, differing: r.totals.update, extra,
    equal: r.totals.insert === 0 && r.totals.update === 0 && extra === 0, samples: r.rows,
  };
}

/** Applies the pending changes inside a transaction that is rolled back; reports rows a constraint would reject. */
export async function dryRunSync(ctx: RunContext, opts: { toVersion?: number }): Promise<DryRunReport> {
  const { mapping, source, target, signal } = ctx;
  const rights = await checkRights(target, mapping, ['state', 'incremental']);
  await target.prepare();
  const checkpoint = await target.readCheckpoint(ctx.pipeline);
  if (!checkpoint) {
    throw new SyncError('mapping', `Pipeline "${ctx.pipeline}" has no checkpoint: a dry run checks incremental changes; preview the initial load instead.`, {
      hint: 'Preview the initial load instead: {action}.', action: { id: 'preview' },
    });
  }
  const existing = await target.describe();
  const latest = await source.latestVersion();
  const end = Math.min(opts.toVersion ?? latest, latest);
  const start = Number(checkpoint.version) + 1;
  const snap = await source.snapshot(end);
  const drift = existing ? await driftBeforePlanning(ctx, Number(checkpoint.version), snap.schema, mapping.key ?? existing.primaryKey, end) : undefined;
  const planned = planColumns(mapping, source.name, snap.schema, existing?.primaryKey, end, target.tableLabel);
  const { plan, alterations } = existing ? tableChanges(ctx, drift, planned, existing) : { plan: planned, alterations: [] };
  // Mapping mode "auto": which path the sync takes, and why. The dry run rehearses that path:
  // the snapshot load (staged, indexed, swapped or merged in a transaction rolled back),
  // or the change feed's transactions below.
  const auto = await chooseAutoPath(ctx, checkpoint, end, rights);
  if (auto?.path === 'snapshot') return rehearseSnapshot(ctx, auto, rights);
  if (plan.marker && existing && !existing.columns.has(plan.marker.column)) {
    throw new SyncError('target', `${target.tableLabel} has no soft-delete column "${plan.marker.column}" yet, so a dry run cannot check the changes.`, {
      table: target.tableLabel,
      column: plan.marker.column,
      hint: `A sync adds it; or add it yourself: ${target.markerColumnSql(plan.marker)}`,
    });
  }
  // The sync's own transactions, each applied on the state the earlier ones leave.
  const { first, later } = await transactionsOf(ctx, plan, start, end, signal);
  const refuseExisting = refuseExistingKeysOption(mapping);
  // Lineage columns the table lacks yet are among the alterations, run first as the sync does.
  const result = await target.dryRun({
    columns: plan.columns, key: plan.key, first, ...(later ? { later } : {}), ...(plan.marker ? { softDelete: plan.marker } : {}), ...(plan.lineage ? { lineage: plan.lineage } : {}),
    pipeline: ctx.pipeline, source: source.name, version: end,
    // The sync's duplicate-key check, so the dry run fails where the sync would.
    ...(refuseExisting ? { refuseExistingKeys: refuseExisting } : {}),
    // The sync's schema changes, run first and rolled back with the rest.
    ...(alterations.length ? { alterations } : {}),
  });
  return {
    fromVersion: start, toVersion: end, result, ...(alterations.length ? { alterations: alterations.map((a) => target.alterationSql(a)) } : {}),
    ...autoSaid(auto),
  };
}

/**
 * The dry run of mode auto's snapshot path: the load the sync would run (runInitialLoad
 * with the same choice), its swap or merge transaction rolled back, so the target's
 * constraints, the safe-delete limit and the swap's checks run as they would. Its counts
 * are what the load would change (ApplyResult's shape: deleteMissing 0, no rejected rows:
 * a load fails on the first row the target refuses).
 */
async function rehearseSnapshot(ctx: RunContext, auto: AutoChoice, rights: RightsReport): Promise<DryRunReport> {
  const r = await runInitialLoad(ctx, auto.toVersion, rights, undefined, auto, { rehearse: true });
  const softDeleted = r.softDeleted ?? 0;
  const result: ApplyResult = {
    inserted: r.inserted, updated: r.updated, deleted: r.deleted - softDeleted, unchanged: r.unchanged, deleteMissing: 0, rejected: [],
    staged: { upserts: r.rowsRead, deletes: 0 }, ...(r.softDeleted !== undefined ? { softDeleted } : {}),
  };
  return { fromVersion: auto.fromVersion, toVersion: r.toVersion, result, rehearsed: { path: 'snapshot', load: auto.load ?? 'swap' }, ...autoSaid(auto) };
}

/** The snapshot's rows as a load writes them (filtered, the marker live, the snapshot's lineage values). */
async function* snapshotRows(ctx: RunContext, snap: SourceSnapshot, plan: ColumnPlan): AsyncGenerator<Row[]> {
  const filter = ctx.mapping.filter ? compileRowFilter(ctx.mapping.filter, snap.schema) : undefined;
  const stamp = lineageStaged(plan.lineage) ? { [LINEAGE_VERSION_KEY]: snap.version, [LINEAGE_TIMESTAMP_KEY]: Math.round(snap.timestamp) * 1000 } : undefined;
  for await (const b of snap.rows({ batchSize: 10_000, signal: ctx.signal, invalidUtf8: ctx.mapping.invalidUtf8 })) {
    const rows = withLiveMarker(filter ? b.filter(filter) : b, plan.marker);
    yield stamp ? rows.map((r) => ({ ...r, ...stamp })) : rows;
  }
}

/**
 * The staged lineage columns as the preview compares them: those the table lacks read as
 * NULL (the sync adds them first), and the guard's version column when the table has it
 * (a column it lacks holds no version to keep a row).
 */
function lineageView(plan: ColumnPlan, existing: ReadonlyMap<string, string> | undefined): { columns: TargetColumn[]; lacks: string[]; guardVersion?: string } {
  const columns = lineageTargetColumns(plan.lineage);
  const lacks = existing ? columns.filter((c) => !existing.has(c.name)).map((c) => c.name) : [];
  const version = plan.lineage?.version;
  return { columns, lacks, ...(version && existing?.has(version) ? { guardVersion: version } : {}) };
}

/** A page of an initial load into a missing table: every row is an insert. */
async function insertsPage(ctx: RunContext, snap: SourceSnapshot, plan: ColumnPlan, limit: number, offset: number, search?: string): Promise<Pick<PreviewReport, 'rows' | 'totals' | 'matching'>> {
  const page: Row[] = [];
  let total = 0;
  if (search) {
    // Search reads the snapshot and matches each row's shown text, as the target's search does.
    const needle = search.toLowerCase();
    let all = 0;
    for await (const b of snapshotRows(ctx, snap, plan)) {
      all += b.length;
      for (const r of b) {
        if (!Object.values(textRow(r, plan.columns)).some((v) => v !== null && v.toLowerCase().includes(needle))) continue;
        if (total >= offset && page.length < limit) page.push(r);
        total++;
      }
    }
    const keyColumns = plan.columns.filter((col) => plan.key.includes(col.name));
    return {
      rows: page.map((r) => ({ action: 'insert' as const, key: textRow(r, keyColumns), newRow: textRow(r, plan.columns) })),
      totals: { insert: all, update: 0, delete: 0, unchanged: 0, 'delete-missing': 0 },
      matching: total,
    };
  }
  if (!ctx.mapping.filter && snap.rowsFrom && typeof snap.rowCount === 'number') {
    // The count from the log's stats, and only the files holding the page are read:
    // paging through a large table's preview does not read the table for every page.
    total = snap.rowCount;
    if (offset < total) {
      for await (const b of snap.rowsFrom(offset, { batchSize: Math.min(10_000, Math.max(1, limit)), limit, signal: ctx.signal, invalidUtf8: ctx.mapping.invalidUtf8 })) {
        page.push(...withLiveMarker(b.slice(0, limit - page.length), plan.marker));
        if (page.length >= limit) break;
      }
    }
  } else {
    for await (const b of snapshotRows(ctx, snap, plan)) {
      for (const r of b) {
        if (total >= offset && page.length < limit) page.push(r);
        total++;
      }
    }
  }
  const keyColumns = plan.columns.filter((col) => plan.key.includes(col.name));
  return {
    rows: page.map((r) => ({ action: 'insert' as const, key: textRow(r, keyColumns), newRow: textRow(r, plan.columns) })),
    totals: { insert: total, update: 0, delete: 0, unchanged: 0, 'delete-missing': 0 },
    matching: total,
  };
}

/**
 * The net changes of the first transaction a sync of [start, end] would commit (none for
 * an empty range) and the later ones as a stream, read as they are used.
 */
async function transactionsOf(ctx: RunContext, plan: ColumnPlan, start: number, end: number, signal?: AbortSignal): Promise<{ first: StagedChanges; later?: AsyncIterable<StagedChanges> }> {
  const it = transactionChanges(ctx, plan, start, end, signal)[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return { first: { upserts: [], deletes: [], softDeletes: [] } };
  return { first: first.value, later: { [Symbol.asyncIterator]: () => it } };
}

async function* transactionChanges(ctx: RunContext, plan: ColumnPlan, start: number, end: number, signal?: AbortSignal): AsyncGenerator<StagedChanges> {
  if (end < start) return;
  const changes = ctx.source.changes(start, end, { batchSize: READ_BATCH_ROWS, signal, preimageColumns: plan.keySource, invalidUtf8: ctx.mapping.invalidUtf8 });
  let seg: { upserts: Row[][]; deletes: Row[][]; softDeletes: Row[][] } = { upserts: [], deletes: [], softDeletes: [] };
  for await (const step of planTransactions(changes, transactionOptions(ctx.mapping, plan))) {
    if (step.type === 'commit') {
      yield seg;
      seg = { upserts: [], deletes: [], softDeletes: [] };
      continue;
    }
    seg.upserts.push(step.changes.upserts);
    seg.deletes.push(step.changes.deletes);
    seg.softDeletes.push(step.changes.softDeletes);
  }
}

/** Target columns' values as Postgres prints them, for previews of rows not yet in Postgres. */
function textRow(r: Row, columns: readonly TargetColumn[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const c of columns) out[c.name] = formatValue(r[c.source.name], c);
  return out;
}

async function* mapAsync<T, U>(it: AsyncIterable<T>, fn: (x: T) => U): AsyncGenerator<U> {
  for await (const x of it) yield fn(x);
}

/**
 * Rows with a NULL key can never be applied (the key is the target's primary key): the
 * preview leaves them out of what it classifies, and its checks (null-key) report them,
 * rather than failing on its own staging table.
 */
async function* withoutNullKeys(batches: AsyncIterable<Row[]> | Iterable<Row[]>, keySource: readonly string[]): AsyncGenerator<Row[]> {
  for await (const b of batches) yield b.some((r) => keySource.some((k) => r[k] === null || r[k] === undefined)) ? b.filter((r) => keySource.every((k) => r[k] !== null && r[k] !== undefined)) : b;
}
