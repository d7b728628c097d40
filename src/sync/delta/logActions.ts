import { promises as fs } from 'node:fs';
import { SyncError } from '../errors';
import { commitPath, permissionError } from './logListing';
import type { LogListing } from './logListing';
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
 * Decoding the actions of the log into LogActions: commit files (newline-delimited JSON)
 * and checkpoint rows (whose integers come as bigint) go through the same decoders. Commits
 * are immutable once written, which is why callers may cache what they decode by version.
 */

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
export function emptyActions(version: number): LogActions {
  return { version, adds: [], removes: [], cdcs: [], timestamp: 0 };
}

/** Adds one action row to `acc`; the paths of `sidecar` actions (v2 checkpoints only) go to `sidecars` when given. */
export function absorbAction(acc: LogActions, action: Record<string, unknown>, sidecars: string[] | undefined): void {
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
export function decodeJsonLines(text: string, file: string, table: string, version: number, sidecars?: string[]): LogActions {
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
    throw permissionError('the Delta log file', file, cause, { table: listing.tableRoot, version }) ?? new SyncError('delta-log', `Delta log file ${file} for version ${version} cannot be read: ${(cause as Error).message}`, {
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
