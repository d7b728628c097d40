import { randomUUID } from 'node:crypto';
import type { Row } from '../delta/types';
import { isSyncError, SyncError } from '../errors';
import { compileRowFilter } from '../mapping/compileRowFilter';
import type { SourceSnapshot } from '../ports/ChangeSource';
import type { RepairReport, RepairOptions } from '../ports/reports';
import type { Checkpoint, TargetColumn } from '../ports/targetTypes';
import { addHash, bucketAt, duplicateSnapshotKeyError, RowHasher } from '../postgres/rangeChecksums';
import { checkRights } from './mappingRights';
import { allowedDeletes, deleteGuard, guardedShare, massDeleteError } from './deleteGuard';
import { planColumns } from './columnPlan';
import type { ColumnPlan } from './columnPlan';
import type { EncodedRows } from '../ports/targetTypes';
import type { TargetBucketRow } from '../ports/targetTypes';
import { changePlanWorkerScript, repairReadInWorker } from '../worker/changePlanWorker';
import type { RepairReadInput } from '../worker/changePlanWorker';
import type { RunContext } from './RunContext';
import { throwIfAborted } from './RunContext';

/**
 * Verify and repair by checksums: the target against the Delta snapshot at a version,
 * compared by key buckets (postgres/rangeChecksums), narrowed into the buckets that differ,
 * and only their rows read back from Postgres. The differences become a change plan
 * (upserts of the snapshot's rows, deletes of keys the snapshot lacks) that the existing
 * preview classifies (insert, update old -> new, delete) and the existing apply path
 * (COPY into staging, one transaction, the checkpoint set to the version) applies.
 *
 * Buckets are hash buckets of the key, not key ranges in key order: any key type works
 * (composite, text, bytea), the snapshot needs no sort, and the engine keeps one counter
 * per bucket (a fixed array, at most 2^20) whatever the table's size, reading the snapshot
 * in batches. Leaf buckets hold about two rows each, so a few differences are repaired by
 * reading a few rows; each narrowing level is one aggregate query over the target.
 */

/** Bucket bits at which the comparison starts (4096 buckets), and bits added per level. */
const FIRST_BITS = 12;
const STEP_BITS = 4;
/** The finest level: 2^20 buckets (16 MB of counters), whatever the table's size. */
const MAX_LEAF_BITS = 20;
const MIN_LEAF_BITS = 4;
const READ_BATCH = 10_000;
/** Differing rows per part of the apply (memory is bounded by a part, not by the differences). */
const PART_ROWS = 5_000;

/** What the comparison found, and the plan that repairs it. */
export interface RepairPlan {
  version: number;
  columns: TargetColumn[];
  key: string[];
  sourceRows: number;
  targetRows: number;
  /** The leaf buckets that differ, and the target's rows in them (keys and row hashes). */
  leaves: number[];
  targetInLeaves: TargetBucketRow[];
  leafBits: number;
  levels: { bits: number; compared: number; differing: number }[];
  /** Bytes read from Postgres by the comparison (aggregates and the differing buckets' keys and hashes). */
  bytesRead: number;
  /** Rows read back from Postgres (those of the differing leaf buckets). */
  rowsReadBack: number;
  /** The engine's leaf sums, to check the target afterwards without reading the snapshot again. */
  leaf: LeafSums;
  /** Milliseconds: the snapshot's pass (read and hash), the checksum queries, the read-back of the target's rows. */
  timings: { snapshotMs: number; checksumsMs: number; readBackMs: number };
  /** How to read the snapshot again (the second pass: differingRows). */
  snap: SourceSnapshot;
  columnPlan: ColumnPlan;
  hasher: RowHasher;
}

interface LeafSums {
  bits: number;
  rows: Uint32Array;
  sums: BigUint64Array;
}

/**
 * Plans the repair of the target to the snapshot at `version` (read-only). The mapping's
 * delete policy must be `delete`: with `ignore` or `soft-delete` the target keeps rows the
 * snapshot lacks on purpose, which a repair cannot tell from damage.
 */
export async function planRepair(ctx: RunContext, version: number): Promise<RepairPlan> {
  const { mapping, source, target } = ctx;
  if (mapping.deletes.mode !== 'delete') {
    throw new SyncError('mapping', `Pipeline "${ctx.pipeline}" keeps deleted rows (deletes: ${mapping.deletes.mode}), so a repair cannot tell them from damage; repair supports deletes: delete only.`, {
      setting: 'deletes',
      hint: 'Reload the table instead: {action}', action: { id: 'initial-load' },
    });
  }
  ctx.phase('plan', `checksums of ${target.tableLabel} against ${source.name} at version ${version}`);
  const existing = await target.describe();
  if (!existing) {
    throw new SyncError('target', `Target table ${target.tableLabel} does not exist: there is nothing to repair.`, {
      table: target.tableLabel,
      hint: 'Run an initial load: {action}', action: { id: 'initial-load' },
    });
  }
  const snap = await source.snapshot(version);
  const plan = planColumns(mapping, source.name, snap.schema, existing.primaryKey, snap.version, target.tableLabel);
  const missing = plan.columns.filter((c) => !existing.columns.has(c.name)).map((c) => c.name);
  if (missing.length > 0) {
    throw new SyncError('target', `${target.tableLabel} lacks the column(s) ${missing.join(', ')} of ${source.name} at version ${snap.version}, so its rows cannot be compared.`, {
      table: target.tableLabel, column: missing[0], version: snap.version, setting: 'schemaDrift',
      hint: 'Add the columns (schemaDrift: add-columns and a sync), or reload: {action}', action: { id: 'initial-load' },
    });
  }
  const hasher = new RowHasher(plan.columns, plan.key);
  const estimate = snap.rowCount ?? (await target.estimateRows());
  const leafBits = Math.max(MIN_LEAF_BITS, Math.min(MAX_LEAF_BITS, Math.ceil(Math.log2(Math.max(2, estimate))) - 1));
  ctx.phase('read', `snapshot of ${source.name} at version ${snap.version}: row checksums in ${2 ** leafBits} buckets`);
  let t = Date.now();
  const leaf = await snapshotLeafSums(ctx, snap, plan, hasher, leafBits);
  const snapshotMs = Date.now() - t;
  t = Date.now();
  // Narrowing: each level compares only the children of the buckets that differed above.
  const levels: RepairPlan['levels'] = [];
  let bytesRead = 0;
  let targetRows = 0;
  let within: { bits: number; buckets: number[] } | undefined;
  for (let bits = Math.min(FIRST_BITS, leafBits); ; bits = Math.min(bits + STEP_BITS, leafBits)) {
    throwIfAborted(ctx.signal);
    const r = await target.bucketChecksums({ columns: plan.columns, key: plan.key, bits, ...(within ? { within } : {}) });
    bytesRead += r.bytes;
    if (!within) for (const s of r.sums.values()) targetRows += s.rows;
    const candidates = within ? childrenOf(within.buckets, within.bits, bits) : range(2 ** bits);
    const differing: number[] = [];
    for (const b of candidates) {
      const mine = sumAt(leaf, b, bits);
      const theirs = r.sums.get(b);
      if ((theirs?.rows ?? 0) !== mine.rows || (theirs?.sum ?? 0n) !== mine.sum) differing.push(b);
    }
    levels.push({ bits, compared: candidates.length, differing: differing.length });
    within = { bits, buckets: differing };
    if (differing.length === 0 || bits >= leafBits) break;
  }
  const checksumsMs = Date.now() - t;
  t = Date.now();
  const leaves = within?.bits === leafBits ? within.buckets : [];
  let targetInLeaves: TargetBucketRow[] = [];
  if (leaves.length > 0) {
    ctx.phase('read', `${leaves.length} differing bucket(s): their rows in ${target.tableLabel}`);
    const theirs = await target.bucketRows({ columns: plan.columns, key: plan.key, bits: leafBits, buckets: leaves });
    bytesRead += theirs.bytes;
    targetInLeaves = theirs.rows;
  }
  const timings = { snapshotMs, checksumsMs, readBackMs: Date.now() - t };
  return {
    version: snap.version, columns: plan.columns, key: plan.key, sourceRows: leafTotal(leaf), targetRows, leaves, targetInLeaves, leafBits, levels, bytesRead,
    rowsReadBack: targetInLeaves.length, leaf, timings, snap, columnPlan: plan, hasher,
  };
}

/** A part of the differing rows: the snapshot's rows to write, as rows or as COPY text. */
interface DiffPart {
  rows?: Row[];
  encoded?: EncodedRows;
  insert: number;
  update: number;
}

/**
 * The second pass over the snapshot: the rows of the differing leaves that the target lacks
 * (insert) or holds otherwise (update), in parts of at most PART_ROWS; once it is done,
 * `absent` holds the key rows (Delta names, values as Postgres prints them) of the target's
 * rows there that the snapshot lacks (delete). On the worker thread when the source can be
 * read there (parts then come encoded when `encode`), else here (parts as rows).
 */
async function* differingRows(ctx: RunContext, plan: RepairPlan, encode: boolean, absent: Row[], partRows = PART_ROWS): AsyncGenerator<DiffPart> {
  if (plan.leaves.length === 0) return;
  const keyColumns = plan.key.map((k) => plan.columns.find((c) => c.name === k) as TargetColumn);
  const input = workerInput(ctx, plan.snap, plan.columnPlan, plan.leafBits);
  if (input) {
    const target: Array<[string, bigint]> = plan.targetInLeaves.map((r) => [r.keyText, r.hash]);
    const byKey = new Map(plan.targetInLeaves.map((r) => [r.keyText, r]));
    for await (const m of repairReadInWorker({ ...input, diff: { leaves: plan.leaves, target, partRows, encode } }, ctx.signal)) {
      if (m.type === 'repair-read') ctx.progress.read(m.rows);
      else if (m.type === 'repair-part') yield { ...(m.rows ? { rows: m.rows } : {}), ...(m.encoded ? { encoded: m.encoded } : {}), insert: m.insert, update: m.update };
      else if (m.type === 'repair-absent') for (const k of m.keys) absent.push(keyRow((byKey.get(k) as TargetBucketRow).key, keyColumns));
    }
    return;
  }
  const { hasher, leafBits } = plan;
  const inTarget = new Map(plan.targetInLeaves.map((r) => [r.keyText, r.hash]));
  const wanted = new Set(plan.leaves);
  const seen = new Set<string>();
  let part: DiffPart = { rows: [], insert: 0, update: 0 };
  for await (const batch of snapshotRows(ctx, plan.snap, plan.columnPlan)) {
    for (const row of batch) {
      const kt = hasher.keyText(row);
      if (!wanted.has(bucketAt(hasher.keyHash(kt), leafBits))) continue;
      if (seen.has(kt)) throw duplicateSnapshotKeyError(ctx.source.name, plan.version, plan.columnPlan.keySource, hasher.keyLabel(row));
      seen.add(kt);
      const h = inTarget.get(kt);
      if (h === undefined) part.insert++;
      else if (h !== hasher.rowHash(row)) part.update++;
      else continue;
      part.rows?.push(row);
      if ((part.rows?.length ?? 0) >= partRows) {
        yield part;
        part = { rows: [], insert: 0, update: 0 };
      }
    }
  }
  if ((part.rows?.length ?? 0) > 0) yield part;
  for (const r of plan.targetInLeaves) if (!seen.has(r.keyText)) absent.push(keyRow(r.key, keyColumns));
}

/** The worker's input for a pass over the snapshot, or undefined when it is read here. */
function workerInput(ctx: RunContext, snap: SourceSnapshot, plan: ColumnPlan, leafBits: number): RepairReadInput | undefined {
  const ws = process.env.DELTA_NEON_SYNC_READ_THREAD === 'main' ? undefined : ctx.source.workerSource?.();
  if (!ws || !changePlanWorkerScript()) return undefined;
  return {
    source: ws, version: snap.version, columns: plan.columns, key: plan.key, keySource: plan.keySource,
    ...(ctx.mapping.filter ? { filter: ctx.mapping.filter } : {}), batchSize: READ_BATCH, invalidUtf8: ctx.mapping.invalidUtf8, leafBits,
  };
}

/** Error kinds that mean the Change Data Feed a sync needs cannot be read (vacuumed, log cleaned up, CDF off for some versions). */
const MISSING_CHANGES_KINDS: readonly string[] = ['cdf-range', 'cdf-not-enabled'];

/** Whether `e` says the Change Data Feed a sync needs is missing (what onMissingChanges is about). */
export function isMissingChanges(e: unknown): e is SyncError {
  return isSyncError(e) && MISSING_CHANGES_KINDS.includes(e.kind);
}

/**
 * A missing-changes error with the repair offered in its hint (onMissingChanges: fail);
 * any other error as it is.
 */
export function offerRepair(e: unknown): unknown {
  if (!isMissingChanges(e) || e.action?.id === 'repair') return e;
  const before = e.hintTemplate ? `${e.hintTemplate} ` : '';
  const setting = 'set "onMissingChanges": "repair" in the mapping';
  // One action per error: the repair takes the {action} slot unless the hint already uses it.
  const offered = e.action
    ? e.withContext(undefined, { hint: `${before}Or bring the target to the latest version by checksums, reading back only the rows that differ: ${setting}.` })
    : e.withContext(undefined, {
      hint: `${before}Or bring the target to the latest version by checksums, reading back only the rows that differ: {action} (or ${setting}).`,
      action: { id: 'repair' },
    });
  // The same message: keep where it was raised (e.g. the reader thread), not this line.
  if (e.stack) offered.stack = e.stack;
  return offered;
}

/** Whether the target's checksums at the first level equal the snapshot's (one aggregate query). */
export async function targetMatches(ctx: RunContext, plan: RepairPlan): Promise<boolean> {
  const bits = Math.min(FIRST_BITS, plan.leafBits);
  const r = await ctx.target.bucketChecksums({ columns: plan.columns, key: plan.key, bits });
  for (let b = 0; b < 2 ** bits; b++) {
    const mine = sumAt(plan.leaf, b, bits);
    const theirs = r.sums.get(b);
    if ((theirs?.rows ?? 0) !== mine.rows || (theirs?.sum ?? 0n) !== mine.sum) return false;
  }
  return true;
}

/**
 * Repairs the target to the snapshot at `opts.toVersion` (default: the latest): plans,
 * then (unless a dry run) applies the plan in ONE transaction with the checkpoint set to
 * that version, through the sync's apply path, and checks the target afterwards. The
 * caller holds the pipeline's run lease.
 */
export async function runRepair(ctx: RunContext, checkpoint: Checkpoint | undefined, opts: RepairOptions): Promise<RepairReport> {
  const { source, target, mapping } = ctx;
  await checkRights(target, mapping, opts.dryRun ? ['state', 'preview'] : ['state', 'incremental']);
  const started = Date.now();
  const latest = await source.latestVersion();
  const version = Math.min(opts.toVersion ?? latest, latest);
  const plan = await planRepair(ctx, version);
  const base = {
    version: plan.version, fromVersion: checkpoint ? Number(checkpoint.version) : null, sourceRows: plan.sourceRows, targetRows: plan.targetRows,
    levels: plan.levels, leafBits: plan.leafBits, bytesRead: plan.bytesRead, rowsReadBack: plan.rowsReadBack,
    readThread: workerInput(ctx, plan.snap, plan.columnPlan, plan.leafBits) ? ('worker' as const) : ('main' as const),
  };
  const partRows = Math.max(1, opts.partRows ?? PART_ROWS);
  if (opts.dryRun) {
    // A preview classifies every planned row against the target: the rows are kept (a dry run of a large difference costs its memory).
    let t = Date.now();
    const upserts: Row[] = [];
    const deletes: Row[] = [];
    const planned = { insert: 0, update: 0, delete: 0 };
    for await (const p of differingRows(ctx, plan, false, deletes, partRows)) {
      if (p.rows) for (const r of p.rows) upserts.push(r);
      planned.insert += p.insert;
      planned.update += p.update;
    }
    planned.delete = deletes.length;
    const timings = { ...plan.timings, readBackMs: plan.timings.readBackMs + Date.now() - t };
    t = Date.now();
    const preview = await target.preview({ columns: plan.columns, key: plan.key, first: { upserts: [upserts], deletes: [deletes] }, limit: opts.limit ?? 100, ...(opts.include ? { include: opts.include } : {}) });
    return { ...base, planned, timings, applied: false, equal: upserts.length + deletes.length === 0, preview, ms: Date.now() - started };
  }
  const runId = randomUUID();
  ctx.emit({ type: 'run-started', runId, pipeline: ctx.pipeline, mode: 'repair', fromVersion: base.fromVersion, toVersion: plan.version });
  const dbRunId = await target.runLog.start({ pipeline: ctx.pipeline, mode: 'repair', fromVersion: base.fromVersion, toVersion: plan.version });
  const planned = { insert: 0, update: 0, delete: 0 };
  let parts = 0;
  try {
    ctx.phase('apply', `repair to version ${plan.version}: the rows of ${plan.leaves.length} differing bucket(s)`);
    const applyStarted = Date.now();
    let readBackMs = 0;
    const tx = await target.beginApply({ columns: plan.columns, key: plan.key, pipeline: ctx.pipeline, source: source.name, expectVersion: base.fromVersion });
    let applied;
    try {
      // The snapshot's differing rows, a part at a time (read on the worker as COPY text),
      // each staged and applied in the one transaction: memory is bounded by a part.
      const deletes: Row[] = [];
      const empty: EncodedRows = { chunks: [], count: 0 };
      let t = Date.now();
      for await (const p of differingRows(ctx, plan, true, deletes, partRows)) {
        readBackMs += Date.now() - t;
        parts++;
        planned.insert += p.insert;
        planned.update += p.update;
        await tx.apply(p.encoded ? { encoded: { upserts: p.encoded, deletes: empty } } : { upserts: [p.rows ?? []], deletes: [] });
        t = Date.now();
      }
      readBackMs += Date.now() - t;
      planned.delete = deletes.length;
      // Safe deletes: a repair deleting most of the target (a source truncated or overwritten
      // by mistake) is refused before anything of it is committed, as a sync's would be.
      const share = guardedShare(mapping.safety.maxDeleteShare, opts.allowMassDelete);
      if (share !== undefined) {
        const guard = deleteGuard(share, plan.targetRows);
        if (planned.delete > allowedDeletes(guard, planned.insert)) {
          throw await massDeleteError({
            source, table: target.tableLabel, pipeline: ctx.pipeline, guard, deletes: planned.delete,
            from: (base.fromVersion ?? plan.version - 1) + 1, to: plan.version, committed: 0, inserted: planned.insert,
          });
        }
      }
      if (deletes.length > 0) await tx.apply({ upserts: [], deletes: [deletes] });
      ctx.phase('checkpoint', `version ${plan.version}: ${planned.insert} insert, ${planned.update} update, ${planned.delete} delete`);
      applied = await tx.commit({ version: plan.version, commitTimestamp: await source.commitTimestamp(plan.version) });
    } catch (e) {
      await tx.rollback();
      throw e;
    }
    const applyMs = Date.now() - applyStarted - readBackMs;
    // Nothing differed at the first level: the comparison itself showed the target equal.
    const equal = plan.levels[0]?.differing === 0 ? true : await targetMatches(ctx, plan);
    const rows = applied.inserted + applied.updated + applied.deleted;
    await target.runLog.finish(dbRunId, { status: 'succeeded', rows, toVersion: plan.version });
    ctx.emit({ type: 'batch-committed', fromVersion: plan.version, toVersion: plan.version, inserted: applied.inserted, updated: applied.updated, deleted: applied.deleted, unchanged: applied.unchanged, deadLettered: 0 });
    ctx.emit({ type: 'run-finished', runId, status: 'succeeded', checkpointVersion: plan.version, rowsApplied: rows });
    return {
      ...base, planned, timings: { ...plan.timings, readBackMs: plan.timings.readBackMs + readBackMs, applyMs }, applied: true, equal, parts,
      result: { inserted: applied.inserted, updated: applied.updated, deleted: applied.deleted, unchanged: applied.unchanged }, ms: Date.now() - started,
    };
  } catch (e) {
    throw await ctx.fail(runId, dbRunId, e, base.fromVersion);
  }
}

/** One pass over the snapshot: per leaf bucket, the row count and the sum of row hashes. */
async function snapshotLeafSums(ctx: RunContext, snap: SourceSnapshot, plan: ColumnPlan, hasher: RowHasher, bits: number): Promise<LeafSums> {
  const input = workerInput(ctx, snap, plan, bits);
  if (input) {
    for await (const m of repairReadInWorker(input, ctx.signal)) {
      if (m.type === 'repair-read') ctx.progress.read(m.rows);
      else if (m.type === 'repair-sums') return { bits, rows: m.rows, sums: m.sums };
    }
    throw new Error('internal: the Delta reader thread finished without the snapshot\'s checksums');
  }
  const rows = new Uint32Array(2 ** bits);
  const sums = new BigUint64Array(2 ** bits);
  for await (const batch of snapshotRows(ctx, snap, plan)) {
    for (const row of batch) {
      const b = bucketAt(hasher.keyHash(hasher.keyText(row)), bits);
      rows[b] = (rows[b] as number) + 1;
      // BigUint64Array stores modulo 2^64.
      sums[b] = (sums[b] as bigint) + hasher.rowHash(row);
    }
    ctx.progress.read(batch.length);
  }
  return { bits, rows, sums };
}

/** The snapshot's rows as a load writes them: filtered, rows with a NULL key left out (the target cannot hold them). */
async function* snapshotRows(ctx: RunContext, snap: SourceSnapshot, plan: ColumnPlan): AsyncGenerator<Row[]> {
  const filter = ctx.mapping.filter ? compileRowFilter(ctx.mapping.filter, snap.schema) : undefined;
  const keyed = (r: Row): boolean => plan.keySource.every((k) => r[k] !== null && r[k] !== undefined);
  for await (const b of snap.rows({ batchSize: READ_BATCH, signal: ctx.signal, invalidUtf8: ctx.mapping.invalidUtf8 })) {
    throwIfAborted(ctx.signal);
    yield b.filter((r) => (!filter || filter(r)) && keyed(r));
  }
}

/** The count and hash sum of bucket `b` at `bits`, from the leaf sums. */
function sumAt(leaf: LeafSums, b: number, bits: number): { rows: number; sum: bigint } {
  const shift = leaf.bits - bits;
  const from = b * 2 ** shift;
  const to = from + 2 ** shift;
  let rows = 0;
  let sum = 0n;
  for (let i = from; i < to; i++) {
    const n = leaf.rows[i] as number;
    if (n === 0) continue;
    rows += n;
    sum = addHash(sum, leaf.sums[i] as bigint);
  }
  return { rows, sum };
}

function leafTotal(leaf: LeafSums): number {
  let n = 0;
  for (const x of leaf.rows) n += x;
  return n;
}

function childrenOf(parents: readonly number[], parentBits: number, bits: number): number[] {
  const k = 2 ** (bits - parentBits);
  const out: number[] = [];
  for (const p of parents) for (let i = 0; i < k; i++) out.push(p * k + i);
  return out;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * A delete's key row: Delta names, the values as Postgres printed them (COPY text input
 * reads them back as the same values); booleans as booleans (the encoder writes t/f).
 */
function keyRow(key: Record<string, string | null>, keyColumns: readonly TargetColumn[]): Row {
  const row: Row = {};
  for (const c of keyColumns) {
    const v = key[c.name] ?? null;
    row[c.source.name] = v !== null && c.source.type.kind === 'primitive' && c.source.type.name === 'boolean' ? v === 'true' || v === 't' : v;
  }
  return row;
}
