import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { DeltaChangeSource } from '../sources/DeltaChangeSource';
import { DeltaTable } from '../delta/DeltaTable';
import type { ChangeRow, Row } from '../delta/types';
import { SyncError } from '../errors';
import type { SyncErrorDetails, SyncErrorKind } from '../errors';
import { compileRowFilter } from '../mapping/compileRowFilter';
import type { FilterCondition } from '../mapping/mappingSchema';
import { planTransactions } from '../plan/planTransactions';
import { sortByKey } from '../plan/keyOrder';
import type { TransactionPlanOptions } from '../plan/planTransactions';
import { stagingColumns } from '../postgres/applyChanges';
import { ValueEncodeError } from '../postgres/copyEncoder';
import { RowChunkEncoder, encodeRows } from '../postgres/copyRows';
import { bucketAt, duplicateSnapshotKeyError, RowHasher } from '../postgres/rangeChecksums';
import type { EncodedRows } from '../ports/targetTypes';
import type { TargetColumn } from '../ports/targetTypes';
import type { LineageColumns, SoftDeleteMarker } from '../ports/targetTypes';
import type { WorkerSource } from '../ports/ChangeSource';
import type { DatabricksChangeSource as DatabricksSource } from '../sources/DatabricksChangeSource';
import type { ChangeSource } from '../ports/ChangeSource';
import { commitTimestamps, workerSourceName } from '../ports/ChangeSource';
import { HeapPacer, fullGc } from './HeapPacer';

/**
 * Reading a Change Data Feed on a worker thread. Decoding parquet is CPU work in long
 * synchronous stretches (a whole row group at a time); on the thread that talks to
 * Postgres it kept the server waiting for the next statement, and in VS Code it would
 * block the extension host. The worker reads, nets (planSteps), applies the delete policy
 * and encodes the COPY text of each part; the calling thread only sends bytes and SQL, so
 * the server applies one part while the worker reads the next. Rows never cross threads as
 * objects (a structured clone of 10k rows cost 25-150 ms): parts cross as encoded bytes.
 */

/** Everything the worker needs, plain data (structured clone). */
export interface ChangePlanInput {
  source: WorkerSource;
  start: number;
  end: number;
  /** Target columns (data, plus the marker under a soft-delete policy), as the runner plans them. */
  columns: TargetColumn[];
  key: string[];
  marker?: SoftDeleteMarker;
  /** Lineage columns: staged after the data (the plan stamps rows with them, TransactionPlanOptions.lineage). */
  lineage?: LineageColumns;
  /** The sync's transaction plan (the calling thread plans with the same). */
  plan: TransactionPlanOptions;
  /** Change rows per read batch. */
  batchSize: number;
  /** The mapping's invalidUtf8 policy. */
  invalidUtf8: 'fail' | 'replace';
}

/** What the calling thread gets, in order: the PlanStep sequence, encoded, with read progress. */
export type WorkerStep =
  | { type: 'read'; rows: number; /** [version, commit timestamp ms] of versions seen in this batch. */ timestamps: Array<[number, number]> }
  | {
    type: 'apply'; part: { upserts: EncodedRows; deletes: EncodedRows; softDeletes?: EncodedRows; excused?: EncodedRows }; /** Rows of the part (for rate limits). */ rows: number;
    /** See ApplyPart.provisional. */ provisional?: boolean;
  }
  | { type: 'commit'; version: number | null; fromVersion: number; parts: number };

/** Input of a snapshot read (initial load): the rows of `version`, filtered, as COPY text for `columns`. */
export interface SnapshotReadInput {
  source: WorkerSource;
  version: number;
  columns: TargetColumn[];
  filter?: FilterCondition[];
  /** Rows per read batch (small: a batch's objects then die young). */
  batchSize: number;
  /** The mapping's invalidUtf8 policy. */
  invalidUtf8: 'fail' | 'replace';
  /** Also send a message once this many rows are pending (a paced load wants small steps); otherwise only by bytes. */
  messageRows?: number;
  /** Read only this share of the snapshot's files (a parallel load: one reader thread per COPY stream; DeltaSnapshot ReadOptions.share). */
  share?: { index: number; of: number };
}

/** A run of encoded snapshot rows; `read` counts rows read, including rows the filter dropped. */
export interface SnapshotChunk {
  type: 'rows';
  encoded: EncodedRows;
  read: number;
}

/**
 * Input of a repair's pass over the snapshot (run/repairPhase): the rows of `version` as a
 * load writes them (filtered, rows with a NULL key left out), hashed by RowHasher. Without
 * `diff`: the leaf sums (row count and hash sum per bucket at `leafBits`). With `diff`: the
 * snapshot's rows of the differing leaves that the target lacks or holds otherwise, in parts
 * of at most `partRows`, and the target's keys there that the snapshot lacks.
 */
export interface RepairReadInput {
  source: WorkerSource;
  version: number;
  /** Target columns hashed (and encoded), in order; `key` among them (target names). */
  columns: TargetColumn[];
  key: string[];
  /** The key's Delta names (a row with a NULL key is left out). */
  keySource: string[];
  filter?: FilterCondition[];
  batchSize: number;
  invalidUtf8: 'fail' | 'replace';
  leafBits: number;
  diff?: {
    leaves: number[];
    /** The target's rows in those leaves: [canonical key text, row hash]. */
    target: Array<[string, bigint]>;
    partRows: number;
    /** Parts as COPY text for the staging upsert columns (an apply), or as rows (a preview). */
    encode: boolean;
  };
}

/** A repair's messages (see RepairReadInput). */
export type RepairMessage =
  | { type: 'repair-read'; rows: number }
  | { type: 'repair-sums'; rows: Uint32Array; sums: BigUint64Array }
  | { type: 'repair-part'; rows?: Row[]; encoded?: EncodedRows; insert: number; update: number }
  | { type: 'repair-absent'; keys: string[] };

type ToMain = WorkerStep | SnapshotChunk | RepairMessage | { type: 'done' } | { type: 'error'; error: SerializedError };

/** An error as it crosses the thread boundary (a SyncError's details survive it). */
interface SerializedError extends Omit<SyncErrorDetails, 'cause'> {
  name: string;
  message: string;
  stack?: string;
  kind?: SyncErrorKind;
  /** Set for a ValueEncodeError, which comes back as one. */
  sqlstate?: string;
}

/** Parts (or snapshot chunks) the worker may have encoded ahead of the one being used: bounds memory. */
const PARTS_AHEAD = 2;
const WORKER_DATA_TAG = 'delta-neon-sync/change-plan';
/** COPY text per snapshot message. */
const SNAPSHOT_MESSAGE_BYTES = 1 << 20;
/**
 * The worker's young generation: decoding a row group makes short-lived garbage in bulk;
 * a small nursery collects it sooner, which kept the process's peak RSS lower (bench).
 */
const WORKER_YOUNG_GENERATION_MB = 8;

/**
 * The worker script next to this code: the built `changePlanWorker.js` beside the bundle
 * (dist/ of the CLI and the extension), or, when running from TypeScript sources (tests,
 * tsx), the .ts entry with tsx as loader. Undefined when neither is there.
 */
export function changePlanWorkerScript(): { file: string; eval: boolean } | undefined {
  const built = path.join(__dirname, 'changePlanWorker.js');
  if (fs.existsSync(built)) return { file: built, eval: false };
  const source = path.join(__dirname, 'changePlanWorkerMain.ts');
  // tsx's require hook, registered inside the worker (execArgv loaders do not reach a .ts worker entry).
  if (fs.existsSync(source)) return { file: `require('tsx/cjs'); require(${JSON.stringify(source)});`, eval: true };
  return undefined;
}

/**
 * Runs the plan on a worker thread and yields its steps. Aborting the signal stops the
 * worker; so does leaving the loop early. A failure in the worker is rethrown here (a
 * SyncError keeps its kind, table, version and hint).
 */
export async function* planInWorker(input: ChangePlanInput, signal?: AbortSignal): AsyncGenerator<WorkerStep> {
  for await (const m of workerMessages('changes', input, signal)) {
    if (m.type === 'read' || m.type === 'apply' || m.type === 'commit') yield m;
  }
}

/** Reads a snapshot on a worker thread: its rows as COPY text, in order. Same failure rules as planInWorker. */
export async function* snapshotInWorker(input: SnapshotReadInput, signal?: AbortSignal): AsyncGenerator<SnapshotChunk> {
  for await (const m of workerMessages('snapshot', input, signal)) {
    if (m.type === 'rows') yield m;
  }
}

/**
 * A repair's pass over the snapshot on a worker thread (hashing a large snapshot is minutes
 * of CPU work: off the thread of the extension host and of the Postgres client). Same
 * failure rules as planInWorker; parts wait for the caller (bounded memory).
 */
export async function* repairReadInWorker(input: RepairReadInput, signal?: AbortSignal): AsyncGenerator<RepairMessage> {
  for await (const m of workerMessages('repair', input, signal)) {
    if (m.type === 'repair-read' || m.type === 'repair-sums' || m.type === 'repair-part' || m.type === 'repair-absent') yield m;
  }
}

async function* workerMessages(mode: 'changes' | 'snapshot' | 'repair', input: ChangePlanInput | SnapshotReadInput | RepairReadInput, signal?: AbortSignal): AsyncGenerator<Exclude<ToMain, { type: 'done' } | { type: 'error' }>> {
  const script = changePlanWorkerScript();
  if (!script) throw new Error('internal: the change reader worker script is missing next to the engine');
  const worker = new Worker(script.file, {
    eval: script.eval,
    workerData: { tag: WORKER_DATA_TAG, mode, input },
    resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
  });
  const queue: ToMain[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let exited = false;
  worker.on('message', (m: ToMain) => {
    queue.push(m);
    wake?.();
  });
  worker.on('error', (e: Error) => {
    failure ??= e;
    wake?.();
  });
  worker.on('exit', (code) => {
    exited = true;
    if (code !== 0) failure ??= new Error(`The Delta reader thread stopped (exit code ${code}).`);
    wake?.();
  });
  const onAbort = (): void => {
    wake?.();
  };
  signal?.addEventListener('abort', onAbort);
  try {
    for (;;) {
      while (queue.length === 0) {
        // The same error the reader gives when it is cancelled on the calling thread.
        if (signal?.aborted) throw new SyncError('cancelled', `Reading ${workerSourceName(input.source)} was cancelled`, { table: workerSourceName(input.source) });
        if (failure) throw failure;
        if (exited) throw new Error('The Delta reader thread stopped before it finished.');
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      const m = queue.shift() as ToMain;
      if (m.type === 'done') return;
      if (m.type === 'error') throw deserializeError(m.error);
      // Taken by the caller: the worker may encode one more.
      if (m.type === 'apply' || m.type === 'rows' || m.type === 'repair-part') worker.postMessage('ack');
      yield m;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await worker.terminate();
  }
}

/** The worker's side (changePlanWorkerMain.ts calls it). */
export async function runChangePlanWorker(port: MessagePort, data: unknown): Promise<void> {
  const d = data as { tag?: unknown; mode?: unknown; input?: unknown } | null;
  if (d?.tag !== WORKER_DATA_TAG || !d.input) throw new Error('changePlanWorker: started without its input');
  let credits = PARTS_AHEAD;
  let waiting: (() => void) | undefined;
  port.on('message', (m: unknown) => {
    if (m === 'ack') {
      credits++;
      waiting?.();
    }
  });
  const send = (m: ToMain): void => port.postMessage(m);
  const credit = async (): Promise<void> => {
    while (credits <= 0) await new Promise<void>((resolve) => (waiting = resolve));
    waiting = undefined;
    credits--;
  };
  try {
    if (d.mode === 'snapshot') await readSnapshot(d.input as SnapshotReadInput, send, credit);
    else if (d.mode === 'repair') await repairRead(d.input as RepairReadInput, send, credit);
    else await planChanges(d.input as ChangePlanInput, send, credit);
    send({ type: 'done' });
  } catch (e) {
    send({ type: 'error', error: serializeError(e) });
  } finally {
    port.close();
  }
}

/**
 * Opens the source on this thread: the local Delta reader, or a Databricks source with its
 * own warehouse session (closed by `close`). Reading here keeps the driver's Arrow decoding
 * and value conversion off the thread that runs COPY.
 */
async function openWorkerSource(ws: WorkerSource): Promise<ChangeSource> {
  if (ws.type === 'delta') return DeltaChangeSource.open(ws.path);
  // Loaded only when a Databricks source is read: the driver (Thrift, Arrow, LZ4) would add
  // about 40 MB to every reader thread of a local table (bench/pgBench.ts: 244 -> 288 MB).
  // (require, not import(): the worker of the tests runs under tsx's CommonJS hook, which a
  // dynamic import() bypasses; esbuild bundles a require lazily, run at the first call.)
  const { DatabricksChangeSource } = require('../sources/DatabricksChangeSource') as { DatabricksChangeSource: typeof DatabricksSource };
  return DatabricksChangeSource.open(ws.connection, ws.table);
}

/** Runs `body` with the input's source open, then closes it. */
async function withSource<T>(ws: WorkerSource, body: (source: ChangeSource) => Promise<T>): Promise<T> {
  const source = await openWorkerSource(ws);
  try {
    return await body(source);
  } finally {
    await source.close?.();
  }
}

async function readSnapshot(input: SnapshotReadInput, send: (m: ToMain) => void, credit: () => Promise<void>): Promise<void> {
  const { share } = input;
  // A parallel load's reader reads its share of a local table's files (DeltaSnapshot ReadOptions.share).
  if (share && input.source.type === 'delta') {
    const snap = await (await DeltaTable.open(input.source.path)).snapshot({ version: input.version });
    return readSnapshotFrom(snap.schema, (o) => snap.rows({ ...o, share }), input, send, credit);
  }
  return withSource(input.source, async (source) => {
    const snap = await source.snapshot(input.version);
    return readSnapshotFrom(snap.schema, (o) => snap.rows(o), input, send, credit);
  });
}

type SnapshotRows = (o: { batchSize: number; invalidUtf8: 'fail' | 'replace' }) => AsyncIterable<Row[]>;

async function readSnapshotFrom(schema: Parameters<typeof compileRowFilter>[1], rows: SnapshotRows, input: SnapshotReadInput, send: (m: ToMain) => void, credit: () => Promise<void>): Promise<void> {
  const filter = input.filter ? compileRowFilter(input.filter, schema) : undefined;
  const encoder = new RowChunkEncoder(input.columns);
  let read = 0;
  let pending = 0;
  for await (const batch of rows({ batchSize: input.batchSize, invalidUtf8: input.invalidUtf8 })) {
    read += batch.length;
    const kept = filter ? batch.filter(filter) : batch;
    encoder.push(kept);
    pending += kept.length;
    if (encoder.pendingBytes >= SNAPSHOT_MESSAGE_BYTES || (input.messageRows !== undefined && pending >= input.messageRows)) {
      await credit();
      // take(true): with messageRows the pending rows go whole, or the pacing would see them late.
      send({ type: 'rows', encoded: encoder.take(input.messageRows !== undefined), read });
      read = 0;
      pending = 0;
    }
  }
  await credit();
  send({ type: 'rows', encoded: encoder.take(true), read });
}

function repairRead(input: RepairReadInput, send: (m: ToMain) => void, credit: () => Promise<void>): Promise<void> {
  return withSource(input.source, (source) => repairReadFrom(source, input, send, credit));
}

async function repairReadFrom(source: ChangeSource, input: RepairReadInput, send: (m: ToMain) => void, credit: () => Promise<void>): Promise<void> {
  const snap = await source.snapshot(input.version);
  const filter = input.filter ? compileRowFilter(input.filter, snap.schema) : undefined;
  const keyed = (r: Row): boolean => input.keySource.every((k) => r[k] !== null && r[k] !== undefined);
  const hasher = new RowHasher(input.columns, input.key);
  const bits = input.leafBits;
  const rows = async function* (): AsyncGenerator<Row[]> {
    for await (const b of snap.rows({ batchSize: input.batchSize, invalidUtf8: input.invalidUtf8 })) {
      send({ type: 'repair-read', rows: b.length });
      yield b.filter((r) => (!filter || filter(r)) && keyed(r));
    }
  };
  const diff = input.diff;
  if (!diff) {
    const counts = new Uint32Array(2 ** bits);
    const sums = new BigUint64Array(2 ** bits);
    for await (const batch of rows()) {
      for (const row of batch) {
        const b = bucketAt(hasher.keyHash(hasher.keyText(row)), bits);
        counts[b] = (counts[b] as number) + 1;
        // BigUint64Array stores modulo 2^64.
        sums[b] = (sums[b] as bigint) + hasher.rowHash(row);
      }
    }
    send({ type: 'repair-sums', rows: counts, sums });
    return;
  }
  const inTarget = new Map(diff.target);
  const wanted = new Set(diff.leaves);
  const seen = new Set<string>();
  const staging = diff.encode ? stagingColumns(input.columns, input.key, undefined) : undefined;
  let part: Row[] = [];
  let insert = 0;
  let update = 0;
  const flush = async (): Promise<void> => {
    await credit();
    if (staging) send({ type: 'repair-part', encoded: encodeRows(staging.upserts, part, undefined, input.key), insert, update });
    else send({ type: 'repair-part', rows: part, insert, update });
    part = [];
    insert = 0;
    update = 0;
  };
  for await (const batch of rows()) {
    for (const row of batch) {
      const kt = hasher.keyText(row);
      if (!wanted.has(bucketAt(hasher.keyHash(kt), bits))) continue;
      if (seen.has(kt)) throw duplicateSnapshotKeyError(source.name, input.version, input.keySource, hasher.keyLabel(row));
      seen.add(kt);
      const h = inTarget.get(kt);
      if (h === undefined) insert++;
      else if (h !== hasher.rowHash(row)) update++;
      else continue;
      part.push(row);
      if (part.length >= diff.partRows) await flush();
    }
  }
  if (part.length > 0) await flush();
  send({ type: 'repair-absent', keys: diff.target.map(([k]) => k).filter((k) => !seen.has(k)) });
}

function planChanges(input: ChangePlanInput, send: (m: ToMain) => void, credit: () => Promise<void>): Promise<void> {
  return withSource(input.source, (source) => planChangesFrom(source, input, send, credit));
}

async function planChangesFrom(source: ChangeSource, input: ChangePlanInput, send: (m: ToMain) => void, credit: () => Promise<void>): Promise<void> {
  const staging = stagingColumns(input.columns, input.key, input.marker, input.lineage);
  const gc = fullGc();
  const pacer = new HeapPacer();
  const rows = async function* (): AsyncGenerator<ChangeRow[]> {
    for await (const batch of source.changes(input.start, input.end, { batchSize: input.batchSize, preimageColumns: input.plan.keySource, invalidUtf8: input.invalidUtf8 })) {
      send({ type: 'read', rows: batch.length, timestamps: commitTimestamps(batch) });
      yield batch;
    }
  };
  for await (const step of planTransactions(rows(), input.plan)) {
    if (step.type === 'commit') {
      send(step);
      continue;
    }
    // Staged in key order: the statements probe the target's primary key in index order (keyOrder.ts).
    const inKeyOrder = (rows: Row[]): Row[] => sortByKey([...rows], input.plan.keySource);
    const part = {
      upserts: encodeRows(staging.upserts, inKeyOrder(step.changes.upserts), undefined, input.key),
      deletes: encodeRows(staging.deletes, inKeyOrder(step.changes.deletes), undefined, input.key),
      ...(staging.softDeletes ? { softDeletes: encodeRows(staging.softDeletes, inKeyOrder(step.changes.softDeletes), undefined, input.key) } : {}),
      ...(step.changes.excused ? { excused: encodeRows(staging.deletes, step.changes.excused, undefined, input.key) } : {}),
    };
    await credit();
    send({ type: 'apply', part, rows: step.rows, ...(step.provisional ? { provisional: true } : {}) });
    // A commit applied in parts grows the live heap to its end: collect before V8 lets the heap balloon.
    if (gc && pacer.due(v8.getHeapStatistics().used_heap_size)) {
      gc();
      pacer.collected(v8.getHeapStatistics().used_heap_size);
    }
  }
}

function serializeError(e: unknown): SerializedError {
  if (e instanceof SyncError) {
    return {
      name: e.name, message: e.message, stack: e.stack, kind: e.kind, table: e.table, version: e.version, column: e.column, setting: e.setting, hint: e.hintTemplate, ...(e.action ? { action: e.action } : {}), retry: e.retry,
      ...(e instanceof ValueEncodeError ? { sqlstate: e.sqlstate } : {}),
    };
  }
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

function deserializeError(s: SerializedError): Error {
  if (s.sqlstate !== undefined) {
    const e = new ValueEncodeError(s.message, s.column, s.sqlstate, s.hint);
    if (s.stack) e.stack = s.stack;
    return e;
  }
  if (s.kind) {
    const e = new SyncError(s.kind, s.message, { table: s.table, version: s.version, column: s.column, setting: s.setting, hint: s.hint, ...(s.action ? { action: s.action } : {}), retry: s.retry });
    if (s.stack) e.stack = s.stack;
    return e;
  }
  const e = new Error(s.message);
  e.name = s.name;
  if (s.stack) e.stack = s.stack;
  return e;
}
