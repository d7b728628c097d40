import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { AsyncBuffer, FileMetaData } from 'hyparquet' with { 'resolution-mode': 'import' };
import { SyncError, isSyncError } from '../errors';
import { loadParquetModules } from './parquetFile';
import type { Hyparquet } from './parquetFile';
import { resolveActionPath } from './tablePaths';
import type {
  AddAction,
  CdcAction,
  CommitInfo,
  DeletionVectorDescriptor,
  LogActions,
  MetadataAction,
  ProtocolAction,
  RemoveAction,
} from './types';

/**
 * Listing, decoding and replaying a Delta transaction log (`_delta_log/`).
 *
 * The directory is always listed: `_last_checkpoint` is only a hint and may be stale or
 * absent, so it is never trusted. Commits are immutable once written, which is why callers
 * may cache what they decode by version.
 */

const COMMIT_RE = /^(\d{20})\.json$/;
const CLASSIC_CHECKPOINT_RE = /^(\d{20})\.checkpoint\.parquet$/;
const MULTIPART_CHECKPOINT_RE = /^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$/;
const V2_CHECKPOINT_RE = /^(\d{20})\.checkpoint\.([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.(json|parquet)$/;

export type CheckpointKind = 'classic' | 'multi-part' | 'v2';

export interface CheckpointInfo {
  version: number;
  kind: CheckpointKind;
  /** Absolute paths; for multi-part checkpoints in part order. */
  files: string[];
}

/** One listing of `_delta_log/`. */
export interface LogListing {
  tableRoot: string;
  logDir: string;
  /** version -> absolute path of its commit JSON. */
  commits: Map<number, string>;
  /** Commit versions present, ascending. */
  commitVersions: number[];
  /** Complete checkpoints, ascending by version (several may share a version). */
  checkpoints: CheckpointInfo[];
  /** Highest version that exists (commit, or checkpoint when its commit was cleaned up). */
  latestVersion: number;
}

function pad20(version: number): string {
  return String(version).padStart(20, '0');
}

/** Path of the commit file of `version` (whether or not it exists). */
export function commitPath(logDirPath: string, version: number): string {
  return path.join(logDirPath, `${pad20(version)}.json`);
}

/**
 * Lists `_delta_log/`. Throws SyncError('delta-log') when the folder is missing or holds
 * neither a commit nor a complete checkpoint. Incomplete multi-part checkpoints are left out.
 */
export async function listLog(tableRoot: string): Promise<LogListing> {
  const logDirPath = path.join(tableRoot, '_delta_log');
  let names: string[];
  try {
    names = await fs.readdir(logDirPath);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new SyncError(
      'delta-log',
      code === 'ENOENT'
        ? `${tableRoot} is not a Delta table: it has no _delta_log folder.`
        : `Cannot list ${logDirPath}: ${(cause as Error).message}`,
      { table: tableRoot, cause, hint: 'Point to the table root folder, the one that contains _delta_log/.' },
    );
  }
  const commits = new Map<number, string>();
  const multi = new Map<string, { version: number; total: number; parts: Map<number, string> }>();
  const checkpoints: CheckpointInfo[] = [];
  for (const name of names) {
    let m = COMMIT_RE.exec(name);
    if (m) {
      commits.set(Number(m[1]), path.join(logDirPath, name));
      continue;
    }
    m = CLASSIC_CHECKPOINT_RE.exec(name);
    if (m) {
      checkpoints.push({ version: Number(m[1]), kind: 'classic', files: [path.join(logDirPath, name)] });
      continue;
    }
    m = V2_CHECKPOINT_RE.exec(name);
    if (m) {
      checkpoints.push({ version: Number(m[1]), kind: 'v2', files: [path.join(logDirPath, name)] });
      continue;
    }
    m = MULTIPART_CHECKPOINT_RE.exec(name);
    if (m) {
      const version = Number(m[1]);
      const part = Number(m[2]);
      const total = Number(m[3]);
      const key = `${version}/${total}`;
      let group = multi.get(key);
      if (!group) multi.set(key, (group = { version, total, parts: new Map() }));
      group.parts.set(part, path.join(logDirPath, name));
    }
    // .crc, _last_checkpoint, compacted logs, temp files: not needed for reading.
  }
  for (const g of multi.values()) {
    if (g.total < 1 || g.parts.size !== g.total) continue; // incomplete: a writer died mid-way
    const files: string[] = [];
    for (let p = 1; p <= g.total; p++) {
      const f = g.parts.get(p);
      if (!f) break;
      files.push(f);
    }
    if (files.length === g.total) checkpoints.push({ version: g.version, kind: 'multi-part', files });
  }
  checkpoints.sort((a, b) => a.version - b.version);
  const commitVersions = [...commits.keys()].sort((a, b) => a - b);
  if (commitVersions.length === 0 && checkpoints.length === 0) {
    throw new SyncError('delta-log', `${tableRoot} is not a Delta table: ${logDirPath} contains no commit.`, {
      table: tableRoot,
      hint: 'Point to the table root folder of a table that has at least one commit.',
    });
  }
  const latestCommit = commitVersions.length ? commitVersions[commitVersions.length - 1] : -1;
  const latestCheckpoint = checkpoints.length ? checkpoints[checkpoints.length - 1].version : -1;
  return {
    tableRoot,
    logDir: logDirPath,
    commits,
    commitVersions,
    checkpoints,
    latestVersion: Math.max(latestCommit, latestCheckpoint),
  };
}

// ---------------------------------------------------------------------------------------
// Action decoding (shared by JSON commits and checkpoint rows, whose integers are bigint)

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && !(v instanceof Uint8Array);
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return undefined;
}

function toStr(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Partition values: JSON object, or a checkpoint map (object, Map, or key/value pairs). */
function toStringMap(v: unknown): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const put = (k: unknown, val: unknown): void => {
    if (typeof k !== 'string') return;
    out[k] = val === null || val === undefined ? null : typeof val === 'string' ? val : String(val);
  };
  if (v instanceof Map) for (const [k, val] of v) put(k, val);
  else if (Array.isArray(v)) {
    for (const e of v) if (isObject(e)) put(e.key, e.value);
  } else if (isObject(v)) for (const [k, val] of Object.entries(v)) put(k, val);
  return out;
}

function toDv(v: unknown): DeletionVectorDescriptor | null {
  if (!isObject(v)) return null;
  const storageType = toStr(v.storageType);
  const pathOrInlineDv = toStr(v.pathOrInlineDv);
  if ((storageType !== 'u' && storageType !== 'p' && storageType !== 'i') || pathOrInlineDv === undefined) return null;
  const dv: DeletionVectorDescriptor = {
    storageType,
    pathOrInlineDv,
    sizeInBytes: toNumber(v.sizeInBytes) ?? 0,
    cardinality: toNumber(v.cardinality) ?? 0,
  };
  const offset = toNumber(v.offset);
  if (offset !== undefined) dv.offset = offset;
  return dv;
}

/** Unique id of a deletion vector (protocol: storageType + pathOrInlineDv [+ '@' + offset]). */
export function dvUniqueId(dv: DeletionVectorDescriptor | null | undefined): string {
  if (!dv) return '';
  return dv.offset === undefined ? `${dv.storageType}${dv.pathOrInlineDv}` : `${dv.storageType}${dv.pathOrInlineDv}@${dv.offset}`;
}

/** Replay identity of a logical file: its path plus its DV's unique id. */
export function fileKey(actionPath: string, dv: DeletionVectorDescriptor | null | undefined): string {
  // Paths are compared decoded so that differently escaped spellings of one file match.
  let p = actionPath;
  try {
    p = decodeURIComponent(actionPath);
  } catch {
    /* keep as is */
  }
  return `${p}\u0000${dvUniqueId(dv)}`;
}

function decodeAdd(v: unknown): AddAction | undefined {
  if (!isObject(v)) return undefined;
  const p = toStr(v.path);
  if (p === undefined) return undefined;
  const add: AddAction = {
    path: p,
    partitionValues: toStringMap(v.partitionValues),
    size: toNumber(v.size) ?? 0,
    modificationTime: toNumber(v.modificationTime) ?? 0,
    dataChange: v.dataChange !== false,
  };
  const stats = toStr(v.stats);
  if (stats !== undefined) add.stats = stats;
  const dv = toDv(v.deletionVector);
  if (dv) add.deletionVector = dv;
  const baseRowId = toNumber(v.baseRowId);
  if (baseRowId !== undefined) add.baseRowId = baseRowId;
  const drcv = toNumber(v.defaultRowCommitVersion);
  if (drcv !== undefined) add.defaultRowCommitVersion = drcv;
  return add;
}

function decodeRemove(v: unknown): RemoveAction | undefined {
  if (!isObject(v)) return undefined;
  const p = toStr(v.path);
  if (p === undefined) return undefined;
  const rm: RemoveAction = { path: p, dataChange: v.dataChange !== false };
  const ts = toNumber(v.deletionTimestamp);
  if (ts !== undefined) rm.deletionTimestamp = ts;
  if (v.partitionValues !== undefined && v.partitionValues !== null) rm.partitionValues = toStringMap(v.partitionValues);
  const size = toNumber(v.size);
  if (size !== undefined) rm.size = size;
  const dv = toDv(v.deletionVector);
  if (dv) rm.deletionVector = dv;
  return rm;
}

function decodeCdc(v: unknown): CdcAction | undefined {
  if (!isObject(v)) return undefined;
  const p = toStr(v.path);
  if (p === undefined) return undefined;
  const cdc: CdcAction = { path: p, partitionValues: toStringMap(v.partitionValues), size: toNumber(v.size) ?? 0 };
  if (typeof v.dataChange === 'boolean') cdc.dataChange = v.dataChange;
  return cdc;
}

function decodeProtocol(v: unknown): ProtocolAction | undefined {
  if (!isObject(v)) return undefined;
  const minReaderVersion = toNumber(v.minReaderVersion);
  const minWriterVersion = toNumber(v.minWriterVersion);
  if (minReaderVersion === undefined) return undefined;
  const p: ProtocolAction = { minReaderVersion, minWriterVersion: minWriterVersion ?? 0 };
  if (Array.isArray(v.readerFeatures)) p.readerFeatures = v.readerFeatures.filter((f): f is string => typeof f === 'string');
  if (Array.isArray(v.writerFeatures)) p.writerFeatures = v.writerFeatures.filter((f): f is string => typeof f === 'string');
  return p;
}

function decodeMetadata(v: unknown): MetadataAction | undefined {
  if (!isObject(v)) return undefined;
  const schemaString = toStr(v.schemaString);
  if (schemaString === undefined) return undefined;
  const format = isObject(v.format) ? v.format : {};
  const options = toStringMap(format.options);
  const cleanOptions: Record<string, string> = {};
  for (const [k, val] of Object.entries(options)) if (val !== null) cleanOptions[k] = val;
  const configuration: Record<string, string> = {};
  for (const [k, val] of Object.entries(toStringMap(v.configuration))) if (val !== null) configuration[k] = val;
  return {
    id: toStr(v.id) ?? '',
    name: toStr(v.name) ?? null,
    description: toStr(v.description) ?? null,
    format: { provider: toStr(format.provider) ?? 'parquet', options: cleanOptions },
    schemaString,
    partitionColumns: Array.isArray(v.partitionColumns) ? v.partitionColumns.filter((c): c is string => typeof c === 'string') : [],
    createdTime: toNumber(v.createdTime) ?? null,
    configuration,
  };
}

function decodeCommitInfo(v: unknown): CommitInfo | undefined {
  if (!isObject(v)) return undefined;
  const ci: CommitInfo = { ...v };
  const ts = toNumber(v.timestamp);
  if (ts !== undefined) ci.timestamp = ts;
  else delete ci.timestamp;
  const ict = toNumber(v.inCommitTimestamp);
  if (ict !== undefined) ci.inCommitTimestamp = ict;
  else delete ci.inCommitTimestamp;
  if (typeof v.operation !== 'string') delete ci.operation;
  if (!isObject(v.operationParameters)) delete ci.operationParameters;
  if (typeof v.engineInfo !== 'string') delete ci.engineInfo;
  return ci;
}

/** Actions of `version` still to be read; the reader sets `timestamp` once they are. */
function emptyActions(version: number): LogActions {
  return { version, adds: [], removes: [], cdcs: [], timestamp: 0 };
}

/** Adds one action row to `acc`; the paths of `sidecar` actions (v2 checkpoints only) go to `sidecars` when given. */
function absorbAction(acc: LogActions, action: Record<string, unknown>, sidecars: string[] | undefined): void {
  if (action.add != null) {
    const a = decodeAdd(action.add);
    if (a) acc.adds.push(a);
  }
  if (action.remove != null) {
    const r = decodeRemove(action.remove);
    if (r) acc.removes.push(r);
  }
  if (action.cdc != null) {
    const c = decodeCdc(action.cdc);
    if (c) acc.cdcs.push(c);
  }
  if (action.protocol != null) {
    const p = decodeProtocol(action.protocol);
    if (p) acc.protocol = p;
  }
  if (action.metaData != null) {
    const m = decodeMetadata(action.metaData);
    if (m) acc.metadata = m;
  }
  if (action.commitInfo != null) {
    const c = decodeCommitInfo(action.commitInfo);
    if (c) acc.commitInfo = c;
  }
  if (sidecars && action.sidecar != null && isObject(action.sidecar)) {
    const p = toStr(action.sidecar.path);
    if (p !== undefined) sidecars.push(p);
  }
}

/** Parses newline-delimited JSON actions; a bad line is a SyncError naming file and line. */
function decodeJsonLines(text: string, file: string, table: string, version: number, sidecars?: string[]): LogActions {
  const acc = emptyActions(version);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (cause) {
      throw new SyncError('delta-log', `Corrupt Delta log file ${file}, line ${i + 1}: ${(cause as Error).message}`, {
        table,
        version,
        cause,
        hint: 'The transaction log was damaged (partial write or manual edit); restore the file from a backup or re-create the table.',
      });
    }
    if (!isObject(parsed)) {
      throw new SyncError('delta-log', `Corrupt Delta log file ${file}, line ${i + 1}: expected a JSON object with one action.`, {
        table,
        version,
        hint: 'The transaction log was damaged (partial write or manual edit); restore the file from a backup or re-create the table.',
      });
    }
    absorbAction(acc, parsed, sidecars);
  }
  return acc;
}

/**
 * Commit timestamp in ms: the in-commit timestamp when the commit has one (writers only
 * write it while `delta.enableInCommitTimestamps` is on), else commitInfo.timestamp, else
 * the file's modification time.
 */
export function commitTimestampOf(commitInfo: CommitInfo | undefined, mtimeMs: () => number): number {
  if (commitInfo?.inCommitTimestamp !== undefined) return commitInfo.inCommitTimestamp;
  if (commitInfo?.timestamp !== undefined) return commitInfo.timestamp;
  return mtimeMs();
}

/**
 * Reads and decodes commit `version`. Throws SyncError('delta-log') when the file is gone
 * or a line is not valid JSON (naming file and line).
 */
export async function readCommit(listing: LogListing, version: number): Promise<LogActions> {
  const file = listing.commits.get(version) ?? commitPath(listing.logDir, version);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (cause) {
    throw new SyncError('delta-log', `Delta log file ${file} for version ${version} cannot be read: ${(cause as Error).message}`, {
      table: listing.tableRoot,
      version,
      cause,
      hint: 'The log may have been cleaned up (delta.logRetentionDuration) or changed while reading; retry, or start from a newer version.',
    });
  }
  const commit = decodeJsonLines(text, file, listing.tableRoot, version);
  let mtime = 0;
  if (commit.commitInfo?.inCommitTimestamp === undefined && commit.commitInfo?.timestamp === undefined) {
    mtime = (await fs.stat(file)).mtimeMs;
  }
  commit.timestamp = commitTimestampOf(commit.commitInfo, () => Math.floor(mtime));
  return commit;
}

// ---------------------------------------------------------------------------------------
// Checkpoints

const CHECKPOINT_COLUMNS_ALL = ['add', 'remove', 'metaData', 'protocol', 'sidecar', 'checkpointMetadata'];
const CHECKPOINT_COLUMNS_META = ['metaData', 'protocol'];
/** Files above this size are read through ranged reads instead of being loaded whole. */
const WHOLE_FILE_LIMIT = 64 * 1024 * 1024;

async function openParquet(hp: Hyparquet, file: string): Promise<AsyncBuffer> {
  const st = await fs.stat(file);
  if (st.size > WHOLE_FILE_LIMIT) return hp.asyncBufferFromFile(file);
  const buf = await fs.readFile(file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  return { byteLength: ab.byteLength, slice: (start: number, end?: number) => ab.slice(start, end) };
}

/**
 * Reads the action rows of a checkpoint parquet file (one action per row, nested objects),
 * row group by row group so that only one row group's decoded rows are held at a time.
 */
async function absorbParquetActions(file: string, acc: LogActions, wantFiles: boolean, sidecars: string[]): Promise<void> {
  const { hp, compressors } = await loadParquetModules();
  const buffer = await openParquet(hp, file);
  const metadata: FileMetaData = await hp.parquetMetadataAsync(buffer);
  const present = new Set(hp.parquetSchema(metadata).children.map((c) => c.element.name));
  const columns = (wantFiles ? CHECKPOINT_COLUMNS_ALL : CHECKPOINT_COLUMNS_META).filter((c) => present.has(c));
  if (columns.length === 0) return;
  let rowStart = 0;
  for (const rg of metadata.row_groups) {
    const rowEnd = rowStart + Number(rg.num_rows);
    if (rowEnd > rowStart) {
      const rows = await hp.parquetReadObjects({ file: buffer, metadata, columns, rowStart, rowEnd, compressors });
      for (const row of rows) absorbAction(acc, row, sidecars);
    }
    rowStart = rowEnd;
  }
}

/**
 * Reads a complete checkpoint: classic, multi-part (all parts), or v2 (JSON or parquet
 * top-level file plus its `_sidecars/` files). With `wantFiles` false only protocol and
 * metadata are read (sidecars hold only file actions, so they are skipped). The result
 * holds the live files as `adds`, never removes or cdcs (see LogActions).
 */
export async function readCheckpoint(listing: LogListing, cp: CheckpointInfo, wantFiles: boolean): Promise<LogActions> {
  const acc = emptyActions(cp.version);
  const sidecars: string[] = [];
  try {
    for (const file of cp.files) {
      if (file.endsWith('.json')) {
        const text = await fs.readFile(file, 'utf8');
        const decoded = decodeJsonLines(text, file, listing.tableRoot, cp.version, sidecars);
        acc.adds.push(...decoded.adds);
        if (decoded.protocol) acc.protocol = decoded.protocol;
        if (decoded.metadata) acc.metadata = decoded.metadata;
      } else {
        await absorbParquetActions(file, acc, wantFiles, sidecars);
      }
    }
    if (wantFiles) {
      const sidecarDir = path.join(listing.logDir, '_sidecars');
      for (const sc of sidecars) {
        const scPath = resolveActionPath(sidecarDir, sc, listing.tableRoot);
        await absorbParquetActions(scPath, acc, true, sidecars);
      }
    }
    // A checkpoint has no commitInfo: its version's timestamp is the file's modification time.
    acc.timestamp = Math.floor((await fs.stat(cp.files[0])).mtimeMs);
  } catch (cause) {
    if (isSyncError(cause)) throw cause;
    throw new SyncError('delta-log', `Cannot read checkpoint ${cp.files.join(', ')} of version ${cp.version}: ${(cause as Error).message}`, {
      table: listing.tableRoot,
      version: cp.version,
      cause,
      hint: 'The checkpoint file is damaged or missing; delete it so that readers fall back to an older checkpoint or to the commits.',
    });
  }
  acc.removes = []; // tombstones of files already gone: not part of the state
  return acc;
}

// ---------------------------------------------------------------------------------------
// Replay

/** Table state at one version. */
export interface TableState {
  version: number;
  protocol: ProtocolAction;
  metadata: MetadataAction;
  /** Live files keyed by fileKey(path, dv), in the order they became live. Empty if not requested. */
  files: Map<string, AddAction>;
}

/**
 * How `version` can be reconstructed: from the newest complete checkpoint <= version whose
 * following commits are all present, or from commit 0. Returns undefined if impossible.
 */
function planReplay(listing: LogListing, version: number): { checkpoints: CheckpointInfo[]; fromCommit: number } | undefined {
  const commitsUpTo = (from: number): boolean => {
    for (let v = from; v <= version; v++) if (!listing.commits.has(v)) return false;
    return true;
  };
  const candidates = listing.checkpoints.filter((c) => c.version <= version).reverse();
  for (let i = 0; i < candidates.length; i++) {
    if (commitsUpTo(candidates[i].version + 1)) {
      // Keep older usable checkpoints as fallbacks if the newest one is unreadable.
      const usable = candidates.slice(i).filter((c) => commitsUpTo(c.version + 1));
      return { checkpoints: usable, fromCommit: candidates[i].version + 1 };
    }
  }
  if (commitsUpTo(0)) return { checkpoints: [], fromCommit: 0 };
  return undefined;
}

/** Oldest version whose state can be reconstructed from what is in the log, or undefined. */
export function oldestReconstructableVersion(listing: LogListing): number | undefined {
  const starts: number[] = [];
  if (listing.commits.has(0)) starts.push(0);
  for (const c of listing.checkpoints) starts.push(c.version);
  starts.sort((a, b) => a - b);
  return starts.length ? starts[0] : undefined;
}

/**
 * Replays the log to `version`: the newest usable checkpoint, then the commits after it.
 * The newest protocol and metaData win; a file is live when its last add (by path + DV id)
 * is not followed by a remove. Throws SyncError('time-travel') when `version` is outside
 * what the log can reconstruct, SyncError('delta-log') on gaps or a missing protocol/metaData.
 */
export async function replayTo(listing: LogListing, version: number, opts: { files: boolean }): Promise<TableState> {
  const table = listing.tableRoot;
  if (!Number.isInteger(version) || version < 0 || version > listing.latestVersion) {
    throw new SyncError('time-travel', `Version ${version} of ${table} does not exist; the latest version is ${listing.latestVersion}.`, {
      table,
      version,
      hint: `Choose a version between ${oldestReconstructableVersion(listing) ?? 0} and ${listing.latestVersion}.`,
    });
  }
  const plan = planReplay(listing, version);
  if (!plan) {
    const oldest = oldestReconstructableVersion(listing);
    if (oldest === undefined || version < oldest) {
      throw new SyncError(
        'time-travel',
        `Version ${version} of ${table} can no longer be read: its log was cleaned up${oldest === undefined ? '' : `; the oldest readable version is ${oldest}`}.`,
        { table, version, hint: 'Read a newer version (log files older than delta.logRetentionDuration are deleted).' },
      );
    }
    let missing = oldest + 1;
    while (missing <= version && listing.commits.has(missing)) missing++;
    throw new SyncError('delta-log', `The log of ${table} has a gap: commit ${missing} is missing and no checkpoint covers it.`, {
      table,
      version,
      hint: 'The transaction log is incomplete; restore the missing commit files.',
    });
  }

  let protocol: ProtocolAction | undefined;
  let metadata: MetadataAction | undefined;
  const files = new Map<string, AddAction>();
  let fromCommit = plan.fromCommit;
  if (plan.checkpoints.length) {
    let content: LogActions | undefined;
    let lastError: unknown;
    for (const cp of plan.checkpoints) {
      try {
        content = await readCheckpoint(listing, cp, opts.files);
        fromCommit = cp.version + 1;
        break;
      } catch (e) {
        lastError = e;
      }
    }
    if (!content) {
      // Every checkpoint failed: commits from 0 are the last resort.
      let all = true;
      for (let v = 0; v <= version; v++) if (!listing.commits.has(v)) all = false;
      if (!all) throw lastError;
      fromCommit = 0;
    } else {
      protocol = content.protocol;
      metadata = content.metadata;
      if (opts.files) for (const a of content.adds) files.set(fileKey(a.path, a.deletionVector), a);
    }
  }
  for (let v = fromCommit; v <= version; v++) {
    const c = await readCommit(listing, v);
    if (c.protocol) protocol = c.protocol;
    if (c.metadata) metadata = c.metadata;
    if (opts.files) {
      // Within one commit a (path, DV) appears at most once, so removes-then-adds is exact;
      // it also handles a DV update (remove old DV id, add new DV id of the same path).
      for (const r of c.removes) files.delete(fileKey(r.path, r.deletionVector));
      for (const a of c.adds) {
        const k = fileKey(a.path, a.deletionVector);
        files.delete(k); // re-add moves the file to the end, keeping "order became live"
        files.set(k, a);
      }
    }
  }
  if (!protocol || !metadata) {
    throw new SyncError('delta-log', `The log of ${table} up to version ${version} has no ${!protocol ? 'protocol' : 'metaData'} action.`, {
      table,
      version,
      hint: 'The transaction log is incomplete or damaged.',
    });
  }
  return { version, protocol, metadata, files };
}

/**
 * Timestamp (ms) of `version`: from its commit; when the commit was cleaned up but a
 * checkpoint of that version exists, the checkpoint file's modification time.
 */
export async function versionTimestamp(listing: LogListing, version: number): Promise<number> {
  if (listing.commits.has(version)) return (await readCommit(listing, version)).timestamp;
  const cp = listing.checkpoints.find((c) => c.version === version);
  if (cp) return Math.floor((await fs.stat(cp.files[0])).mtimeMs);
  throw new SyncError('time-travel', `Version ${version} of ${listing.tableRoot} has no commit file.`, {
    table: listing.tableRoot,
    version,
  });
}
