import { promises as fs } from 'node:fs';
import { SyncError } from '../errors';
import { loadDeletionVector } from './deletionVector';
import type { RowIndexSet } from './deletionVector';
import { replayTo } from './DeltaLog';
import { dvUniqueId, readCommit } from './logActions';
import type { LogListing } from './logListing';
import { Batcher, DEFAULT_BATCH_SIZE, checkAborted, partitionFiller, splitFields } from './DeltaSnapshot';
import { readParquetRows, readTaggedParquetRows } from './parquetFile';
import { assertReadable, isCdfEnabled } from './protocolSupport';
import { columnMappingModeOf, parseSchemaString } from './schema';
import { decodeRelativePath, resolveActionPath } from './tablePaths';
import { isChangeType } from './types';
import type {
  AddAction,
  ChangeReadOptions,
  ChangeRow,
  ChangeType,
  ColumnMappingMode,
  DeletionVectorDescriptor,
  DeltaField,
  LogActions,
  MetadataAction,
  RemoveAction,
  Row,
} from './types';

/**
 * The Change Data Feed of a version range, computed from the log:
 *  - a commit with `cdc` actions: exactly the rows of its `_change_data` files;
 *  - otherwise `add`/`remove` with dataChange=true: inserts / deletes of the whole file
 *    (minus rows already deleted by the action's deletion vector);
 *  - an `add` and a `remove` of the same path with different deletion vectors: only the
 *    rows whose deleted-state changed (newly deleted -> delete, un-deleted -> insert).
 * Output is streamed file by file and batch by batch; a version's rows are never collected.
 */

const VACUUM_HINT =
  'The files of this version range were removed (VACUUM or log cleanup). Run a new initial load (full reload) and continue incremental syncs from its version.';

/** A validated range plus the schema the rows are produced with (the one at `end`). */
export interface ValidatedCdfRange {
  start: number;
  end: number;
  metadata: MetadataAction;
  schema: DeltaField[];
  columnMappingMode: ColumnMappingMode;
}

/**
 * Checks a version range for CDF reading: every commit file present (else 'cdf-range'
 * naming the first missing version), the protocol readable and CDF enabled by the metadata
 * in effect at every version (else 'delta-protocol' / 'cdf-not-enabled' naming it).
 * With `checkFiles`, also checks that every data, cdc and DV file the range needs is still
 * on disk (else 'cdf-range' naming the file), so that a read fails before its first batch.
 */
export async function validateCdfRange(
  listing: LogListing,
  start: number,
  end: number,
  checkFiles: boolean,
): Promise<ValidatedCdfRange> {
  const table = listing.tableRoot;
  for (let v = start; v <= end; v++) {
    if (!listing.commits.has(v)) {
      throw new SyncError(
        'cdf-range',
        `The Change Data Feed of ${table} cannot be read from version ${start}: the commit file of version ${v} is gone (log cleaned up).`,
        { table, version: v, hint: `${VACUUM_HINT} The oldest commit still present is ${listing.commitVersions[0] ?? 'none'}.` },
      );
    }
  }
  let state;
  try {
    state = await replayTo(listing, start, { files: false });
  } catch (e) {
    if (e instanceof SyncError && e.kind === 'time-travel') {
      throw new SyncError('cdf-range', `The Change Data Feed of ${table} cannot be read from version ${start}: ${e.message}`, {
        table,
        version: start,
        cause: e,
        hint: VACUUM_HINT,
      });
    }
    throw e;
  }
  let metadata = state.metadata;
  let protocol = state.protocol;
  const checkVersion = (v: number): void => {
    assertReadable(protocol, table, v);
    if (!isCdfEnabled(metadata.configuration)) {
      throw new SyncError('cdf-not-enabled', `The Change Data Feed is not enabled for ${table} at version ${v}.`, {
        table,
        version: v,
        setting: 'delta.enableChangeDataFeed',
        hint: `Set the table property delta.enableChangeDataFeed = true; changes can only be read from the version where it was enabled. Run an initial load from a later version.`,
      });
    }
  };
  checkVersion(start);
  const needsCommits = checkFiles || end > start;
  if (needsCommits) {
    for (let v = start; v <= end; v++) {
      const c = await readCommit(listing, v);
      if (v > start) {
        if (c.protocol) protocol = c.protocol;
        if (c.metadata) metadata = c.metadata;
        if (c.protocol || c.metadata) checkVersion(v);
      }
      if (checkFiles) await checkFilesPresent(listing, c);
    }
  }
  const columnMappingMode = columnMappingModeOf(metadata.configuration);
  return { start, end, metadata, schema: parseSchemaString(metadata.schemaString, columnMappingMode, table), columnMappingMode };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of a DV file (storage types 'u' and 'p'); undefined for inline DVs. */
function dvFilePath(tableRoot: string, dv: DeletionVectorDescriptor): string | undefined {
  if (dv.storageType === 'p') return resolveActionPath(tableRoot, dv.pathOrInlineDv, tableRoot);
  return undefined; // 'u' paths are derived by the DV loader; it reports a missing file itself
}

async function checkFilesPresent(listing: LogListing, c: LogActions): Promise<void> {
  const table = listing.tableRoot;
  const need: string[] = [];
  if (c.cdcs.length) for (const x of c.cdcs) need.push(x.path);
  else {
    for (const a of c.adds) if (a.dataChange) need.push(a.path);
    for (const r of c.removes) if (r.dataChange) need.push(r.path);
  }
  for (const p of need) {
    const abs = resolveActionPath(table, p, table);
    if (!(await exists(abs))) {
      throw new SyncError('cdf-range', `File ${abs} needed for the Change Data Feed of ${table} at version ${c.version} is missing (probably removed by VACUUM).`, {
        table,
        version: c.version,
        hint: VACUUM_HINT,
      });
    }
  }
  if (!c.cdcs.length) {
    for (const x of [...c.adds, ...c.removes]) {
      if (!x.dataChange || !x.deletionVector) continue;
      const abs = dvFilePath(table, x.deletionVector);
      if (abs && !(await exists(abs))) {
        throw new SyncError('cdf-range', `Deletion vector file ${abs} needed for the Change Data Feed of ${table} at version ${c.version} is missing.`, {
          table,
          version: c.version,
          hint: VACUUM_HINT,
        });
      }
    }
  }
}

/** Hive-style partition values from a path (`col=value/`), for removes written without partitionValues. */
function partitionValuesFromPath(actionPath: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const segments = decodeRelativePath(actionPath).split('/').slice(0, -1);
  for (const seg of segments) {
    const eq = seg.indexOf('=');
    if (eq <= 0) continue;
    const value = decodeRelativePath(seg.slice(eq + 1));
    out[decodeRelativePath(seg.slice(0, eq))] = value === '__HIVE_DEFAULT_PARTITION__' ? null : value;
  }
  return out;
}

interface FileRead {
  path: string;
  partitionValues: Record<string, string | null>;
  changeType: ChangeType | 'from-column';
  keepRow?: (i: number) => boolean;
}

/** Plans the file reads of one commit (see the module comment). */
async function planCommit(listing: LogListing, c: LogActions, partitioned: boolean): Promise<FileRead[]> {
  const table = listing.tableRoot;
  if (c.cdcs.length) {
    return c.cdcs.map((x) => ({ path: x.path, partitionValues: x.partitionValues, changeType: 'from-column' as const }));
  }
  const loadDv = async (dv: DeletionVectorDescriptor | null | undefined): Promise<RowIndexSet | undefined> =>
    dv ? loadDeletionVector(table, dv, table) : undefined;
  const removePv = (r: RemoveAction): Record<string, string | null> =>
    r.partitionValues ?? (partitioned ? partitionValuesFromPath(r.path) : {});

  const removes = new Map<string, RemoveAction>();
  for (const r of c.removes) if (r.dataChange) removes.set(decodeRelativePath(r.path), r);
  const deletes: FileRead[] = [];
  const inserts: FileRead[] = [];
  const adds: AddAction[] = c.adds.filter((a) => a.dataChange);
  for (const a of adds) {
    const key = decodeRelativePath(a.path);
    const r = removes.get(key);
    if (r) {
      removes.delete(key);
      if (dvUniqueId(r.deletionVector) === dvUniqueId(a.deletionVector)) continue; // same logical file
      const before = await loadDv(r.deletionVector);
      const after = await loadDv(a.deletionVector);
      const newlyDeleted = difference(after, before);
      const undeleted = difference(before, after);
      if (newlyDeleted) deletes.push({ path: a.path, partitionValues: a.partitionValues, changeType: 'delete', keepRow: newlyDeleted });
      if (undeleted) inserts.push({ path: a.path, partitionValues: a.partitionValues, changeType: 'insert', keepRow: undeleted });
      continue;
    }
    const dv = await loadDv(a.deletionVector);
    inserts.push({ path: a.path, partitionValues: a.partitionValues, changeType: 'insert', keepRow: dv && dv.size > 0 ? (i) => !dv.has(i) : undefined });
  }
  for (const r of removes.values()) {
    const dv = await loadDv(r.deletionVector);
    deletes.push({ path: r.path, partitionValues: removePv(r), changeType: 'delete', keepRow: dv && dv.size > 0 ? (i) => !dv.has(i) : undefined });
  }
  // Deletes first: a consumer applying in order then never deletes a row it just inserted.
  return [...deletes, ...inserts];
}

/** Row filter for the indexes in `a` but not in `b`; undefined when there are none. */
function difference(a: RowIndexSet | undefined, b: RowIndexSet | undefined): ((i: number) => boolean) | undefined {
  if (!a || a.size === 0) return undefined;
  let any = false;
  for (const i of a.values()) {
    if (!b || !b.has(i)) {
      any = true;
      break;
    }
  }
  if (!any) return undefined;
  return (i) => a.has(i) && !(b?.has(i) ?? false);
}

const CHANGE_TYPE_COLUMN = '_change_type';
const PREIMAGE_TAGS: ReadonlySet<string> = new Set(['update_preimage']);

/**
 * Streams the CDF of a validated range in commit-version order, in batches of at most
 * `batchSize` rows (batches may span versions; each row carries its version). Every row's
 * `values` holds the schema's columns in schema order, except slim preimages (see
 * ChangeReadOptions.preimageColumns; names not in the schema at the range's end are ignored).
 */
export async function* streamChanges(listing: LogListing, range: ValidatedCdfRange, opts: ChangeReadOptions = {}): AsyncGenerator<ChangeRow[]> {
  const table = listing.tableRoot;
  const batchSize = Math.max(1, opts.batchSize ?? DEFAULT_BATCH_SIZE);
  const { schema, columnMappingMode } = range;
  const { data, partition } = splitFields(schema, range.metadata.partitionColumns);
  const slimWanted = opts.preimageColumns ? new Set(opts.preimageColumns) : undefined;
  const slimNames = slimWanted ? schema.filter((f) => slimWanted.has(f.name)).map((f) => f.name) : [];
  const partitionNames = new Set(partition.map((f) => f.name));
  // A slim row from the reader lacks only partition columns; when none is wanted it is complete.
  const slimNeedsPartition = slimNames.some((n) => partitionNames.has(n));
  const batcher = new Batcher<ChangeRow>(batchSize);
  for (let v = range.start; v <= range.end; v++) {
    checkAborted(opts.signal, table);
    const commit = await readCommit(listing, v);
    const reads = await planCommit(listing, commit, partition.length > 0);
    for (const fr of reads) {
      checkAborted(opts.signal, table);
      // Defined only for a partitioned table. Rows from the reader hold the data columns in
      // schema order and nothing else (the _change_type comes separately as a tag), so on an
      // unpartitioned table they are used as the change rows' values without a copy, and on
      // a partitioned one the filler's object is the only copy.
      const fill = partitionFiller(schema, partition, fr.partitionValues);
      const filePath = resolveActionPath(table, fr.path, table);
      const readOpts = { fields: data, columnMappingMode, batchSize, keepRow: fr.keepRow, signal: opts.signal, table, version: v, invalidUtf8: opts.invalidUtf8, keyFields: opts.preimageColumns };
      if (fr.changeType !== 'from-column') {
        const changeType = fr.changeType;
        for await (const rows of readParquetRows(filePath, readOpts)) {
          const out: ChangeRow[] = new Array<ChangeRow>(rows.length);
          for (let i = 0; i < rows.length; i++) {
            out[i] = { changeType, commitVersion: v, commitTimestamp: commit.timestamp, values: fill ? fill(rows[i]) : rows[i] };
          }
          for (const b of batcher.push(out)) yield b;
        }
        continue;
      }
      // Partition values of this file, for slim rows that want a partition column.
      const partitionRow = fill && slimNeedsPartition ? fill({}) : undefined;
      const tagOpts = { column: CHANGE_TYPE_COLUMN, slimTags: slimWanted ? PREIMAGE_TAGS : undefined, slimFields: slimNames };
      for await (const { rows, tags } of readTaggedParquetRows(filePath, readOpts, tagOpts)) {
        const out: ChangeRow[] = new Array<ChangeRow>(rows.length);
        for (let i = 0; i < rows.length; i++) {
          const ct = tags[i];
          if (!isChangeType(ct)) {
            throw new SyncError('delta-file', `Change data file ${filePath} (version ${v}) has an invalid _change_type ${JSON.stringify(String(ct))}.`, {
              table,
              version: v,
            });
          }
          const changeType = ct;
          const raw = rows[i];
          let values: Row;
          if (slimWanted && changeType === 'update_preimage') {
            if (partitionRow) {
              values = {};
              for (const n of slimNames) values[n] = partitionNames.has(n) ? partitionRow[n] : raw[n];
            } else values = raw;
          } else values = fill ? fill(raw) : raw;
          out[i] = { changeType, commitVersion: v, commitTimestamp: commit.timestamp, values };
        }
        for (const b of batcher.push(out)) yield b;
      }
    }
  }
  const last = batcher.flush();
  if (last) yield last;
}
