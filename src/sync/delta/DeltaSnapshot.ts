import { SyncError } from '../errors';
import { loadDeletionVector } from './deletionVector';
import { isCdfEnabled } from './protocolSupport';
import { readParquetRows } from './parquetFile';
import { parsePartitionValue } from './values';
import { resolveActionPath } from './tablePaths';
import type {
  AddAction,
  ColumnMappingMode,
  DeltaField,
  DeltaValue,
  MetadataAction,
  ProtocolAction,
  Row,
  TableDescription,
} from './types';

export interface ReadOptions {
  /** Maximum rows per yielded batch (default 10 000). */
  batchSize?: number;
  signal?: AbortSignal;
  /**
   * Leave out the first `skip` rows of the stream (in the order rows() yields them). Files
   * whose live row count the log's stats give (numRecords minus deletion-vector
   * cardinality) and that lie wholly before the skip are not opened.
   */
  skip?: number;
  /**
   * Read at most this many rows (after `skip`): the reader does not decode pages past
   * them, so a preview page costs its own pages, not the rest of its row group.
   */
  limit?: number;
  /** Text that is not valid UTF-8: 'fail' (default) or 'replace' (see ChangeReadOptions.invalidUtf8). */
  invalidUtf8?: 'fail' | 'replace';
  /**
   * Read only share `index` of `of` (0 <= index < of) of the live files: readers of the `of`
   * shares together read every row once (a parallel load). Files go to shares by size,
   * each to the share with the fewest bytes so far; not with `skip` or `limit`.
   */
  share?: { index: number; of: number };
}

/**
 * The files of one share (ReadOptions.share): each file, largest first, to the share with
 * the fewest bytes so far (ties: the lower index), then in the snapshot's order.
 */
export function filesOfShare<F extends { size: number }>(files: readonly F[], share: { index: number; of: number }): F[] {
  const { index, of } = share;
  if (!Number.isInteger(of) || of < 1 || !Number.isInteger(index) || index < 0 || index >= of) throw new RangeError(`share ${index} of ${of} is not a share`);
  if (of === 1) return [...files];
  const bytes = new Array<number>(of).fill(0);
  const mine = new Set<number>();
  const bySize = files.map((f, i) => i).sort((a, b) => (files[b] as F).size - (files[a] as F).size || a - b);
  for (const i of bySize) {
    let to = 0;
    for (let s = 1; s < of; s++) if ((bytes[s] as number) < (bytes[to] as number)) to = s;
    bytes[to] = (bytes[to] as number) + (files[i] as F).size;
    if (to === index) mine.add(i);
  }
  return files.filter((_, i) => mine.has(i));
}

export const DEFAULT_BATCH_SIZE = 10_000;

export function checkAborted(signal: AbortSignal | undefined, table: string): void {
  if (signal?.aborted) throw new SyncError('cancelled', `Reading ${table} was cancelled.`, { table, retry: 'manual' });
}

/** Splits a table schema into the fields stored in parquet and the partition fields. */
export function splitFields(schema: DeltaField[], partitionColumns: string[]): { data: DeltaField[]; partition: DeltaField[] } {
  const parts = new Set(partitionColumns);
  return { data: schema.filter((f) => !parts.has(f.name)), partition: schema.filter((f) => parts.has(f.name)) };
}

/**
 * Builds a function that completes a data row with partition values (keys of
 * `partitionValues` are physical names under column mapping, logical names otherwise) and
 * puts the columns in schema order. Returns undefined when there is nothing to add.
 */
export function partitionFiller(
  schema: DeltaField[],
  partitionFields: DeltaField[],
  partitionValues: Record<string, string | null>,
): ((row: Row) => Row) | undefined {
  if (partitionFields.length === 0) return undefined;
  const parsed = new Map<string, DeltaValue>();
  for (const f of partitionFields) {
    const raw = f.physicalName in partitionValues ? partitionValues[f.physicalName] : partitionValues[f.name];
    parsed.set(f.name, parsePartitionValue(raw, f.type, f.name));
  }
  const names = schema.map((f) => f.name);
  return (row: Row): Row => {
    const out: Row = {};
    for (const n of names) {
      const p = parsed.get(n);
      out[n] = p !== undefined ? p : n in row ? row[n] : null;
    }
    for (const k of Object.keys(row)) if (!(k in out)) out[k] = row[k];
    return out;
  };
}

/**
 * Collects rows into batches of exactly `size` (the last one smaller), so that many small
 * files do not produce many tiny batches. Holds at most one batch.
 */
export class Batcher<T> {
  private buf: T[] = [];
  constructor(private readonly size: number) {}
  /** Adds rows; returns full batches ready to yield. */
  push(rows: T[]): T[][] {
    // The usual case (a full batch from the reader, nothing pending) passes through uncopied.
    if (this.buf.length === 0 && rows.length === this.size) return [rows];
    const out: T[][] = [];
    for (const r of rows) {
      this.buf.push(r);
      if (this.buf.length >= this.size) {
        out.push(this.buf);
        this.buf = [];
      }
    }
    return out;
  }
  flush(): T[] | undefined {
    if (this.buf.length === 0) return undefined;
    const b = this.buf;
    this.buf = [];
    return b;
  }
}

export interface SnapshotInit {
  tablePath: string;
  version: number;
  timestamp: number;
  protocol: ProtocolAction;
  metadata: MetadataAction;
  schema: DeltaField[];
  columnMappingMode: ColumnMappingMode;
  files: AddAction[];
}

/** The table at one version: its metadata, its live files, and a streaming row reader. */
export class DeltaSnapshot {
  readonly tablePath: string;
  readonly version: number;
  /** Commit timestamp of `version`, ms since epoch. */
  readonly timestamp: number;
  readonly protocol: ProtocolAction;
  readonly metadata: MetadataAction;
  readonly schema: DeltaField[];
  readonly partitionColumns: string[];
  readonly columnMappingMode: ColumnMappingMode;
  /** Live files at `version`. */
  readonly files: AddAction[];
  readonly cdfEnabled: boolean;

  constructor(init: SnapshotInit) {
    this.tablePath = init.tablePath;
    this.version = init.version;
    this.timestamp = init.timestamp;
    this.protocol = init.protocol;
    this.metadata = init.metadata;
    this.schema = init.schema;
    this.partitionColumns = [...init.metadata.partitionColumns];
    this.columnMappingMode = init.columnMappingMode;
    this.files = init.files;
    this.cdfEnabled = isCdfEnabled(init.metadata.configuration);
  }

  /**
   * Streams the rows of the live files in batches of at most `batchSize` rows: deletion
   * vectors applied, partition values added, logical column names, schema column order.
   * Memory is bounded by the batch size and one parquet row group, not the table size.
   */
  async *rows(opts: ReadOptions = {}): AsyncGenerator<Row[]> {
    const batchSize = Math.max(1, opts.batchSize ?? DEFAULT_BATCH_SIZE);
    const { data, partition } = splitFields(this.schema, this.partitionColumns);
    const batcher = new Batcher<Row>(batchSize);
    let skip = Math.max(0, opts.skip ?? 0);
    let taken = 0;
    if (opts.share && (skip > 0 || opts.limit !== undefined)) throw new RangeError('rows(): share cannot be combined with skip or limit');
    for (const add of opts.share ? filesOfShare(this.files, opts.share) : this.files) {
      checkAborted(opts.signal, this.tablePath);
      if (skip > 0) {
        const n = liveRowsOf(add);
        if (n !== undefined && n <= skip) {
          skip -= n;
          continue;
        }
      }
      const filePath = resolveActionPath(this.tablePath, add.path, this.tablePath);
      const fill = partitionFiller(this.schema, partition, add.partitionValues);
      let keepRow: ((i: number) => boolean) | undefined;
      if (add.deletionVector) {
        const deleted = await loadDeletionVector(this.tablePath, add.deletionVector, this.tablePath);
        if (deleted.size > 0) keepRow = (i) => !deleted.has(i);
      }
      // Without a deletion vector physical rows are live rows: the reader skips them
      // without decoding the pages before them (a far preview page reads only its own).
      // (Only when the stats give the file's rows: then a file reached here holds more than `skip`.)
      let skipRows = 0;
      if (skip > 0 && !keepRow && liveRowsOf(add) !== undefined) {
        skipRows = skip;
        skip = 0;
      }
      const wanted = opts.limit === undefined ? undefined : opts.limit - taken;
      if (wanted !== undefined && wanted <= 0) break;
      for await (const rows of readParquetRows(filePath, {
        skipRows,
        // maxRows counts physical rows: only without a deletion vector are they the live ones.
        ...(wanted !== undefined && skip === 0 && !keepRow ? { maxRows: wanted } : {}),
        fields: data,
        columnMappingMode: this.columnMappingMode,
        batchSize,
        keepRow,
        signal: opts.signal,
        table: this.tablePath,
        version: this.version,
        invalidUtf8: opts.invalidUtf8,
      })) {
        let kept = rows;
        if (skip > 0) {
          const drop = Math.min(skip, rows.length);
          skip -= drop;
          kept = rows.slice(drop);
          if (kept.length === 0) continue;
        }
        if (opts.limit !== undefined) kept = kept.slice(0, opts.limit - taken);
        taken += kept.length;
        for (const b of batcher.push(fill ? kept.map(fill) : kept)) yield b;
        if (opts.limit !== undefined && taken >= opts.limit) break;
      }
      if (opts.limit !== undefined && taken >= opts.limit) break;
    }
    const last = batcher.flush();
    if (last) yield last;
  }

  /** Summary of the snapshot; numRows comes from file stats minus DV cardinalities. */
  describe(): TableDescription {
    let numRows: number | null = 0;
    let sizeInBytes = 0;
    for (const f of this.files) {
      sizeInBytes += f.size;
      if (numRows === null) continue;
      const n = liveRowsOf(f);
      numRows = n === undefined ? null : numRows + n;
    }
    return {
      path: this.tablePath,
      version: this.version,
      timestamp: this.timestamp,
      protocol: this.protocol,
      readerFeatures: this.protocol.readerFeatures ?? [],
      writerFeatures: this.protocol.writerFeatures ?? [],
      schema: this.schema,
      partitionColumns: this.partitionColumns,
      configuration: this.metadata.configuration,
      cdfEnabled: this.cdfEnabled,
      columnMappingMode: this.columnMappingMode,
      numFiles: this.files.length,
      numRows,
      sizeInBytes,
    };
  }
}

/** Live rows of a file from the log alone: stats numRecords minus its deletion vector's cardinality; undefined without stats. */
function liveRowsOf(f: AddAction): number | undefined {
  const n = numRecordsOf(f.stats);
  return n === undefined ? undefined : n - (f.deletionVector?.cardinality ?? 0);
}

/** numRecords of an action's stats; undefined without stats. */
export function numRecordsOf(stats: string | undefined): number | undefined {
  if (!stats) return undefined;
  try {
    const parsed: unknown = JSON.parse(stats);
    if (typeof parsed === 'object' && parsed !== null && 'numRecords' in parsed) {
      const n = (parsed as { numRecords: unknown }).numRecords;
      return typeof n === 'number' ? n : undefined;
    }
  } catch {
    /* unreadable stats count as missing */
  }
  return undefined;
}
