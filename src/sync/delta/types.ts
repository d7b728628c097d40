/**
 * The contract of the Delta reader: schema types, value representation, actions and
 * change rows. Every other part of the engine speaks these types.
 *
 * Value representation (a value's meaning always comes from its field's DeltaType):
 *   byte, short, integer      -> number
 *   long                      -> bigint (never a JS number)
 *   float, double             -> number (NaN / ±Infinity possible)
 *   decimal(p, s)             -> string, canonical: optional '-', digits, and exactly `s`
 *                                fraction digits when s > 0 ("123.45", "67.89000", "0.00")
 *   string                    -> string
 *   binary                    -> Uint8Array
 *   boolean                   -> boolean
 *   date                      -> number (days since 1970-01-01)
 *   timestamp, timestamp_ntz  -> bigint (microseconds since 1970-01-01T00:00:00, UTC for
 *                                timestamp; wall clock for ntz)
 *   struct                    -> DeltaStruct (plain object keyed by logical field name)
 *   array                     -> DeltaValue[]
 *   map                       -> DeltaMap (a JS Map, insertion order kept)
 *   variant                   -> string: the value's exact JSON text (delta/variant.ts),
 *                                decoded from the unshredded Parquet Variant encoding
 *   null                      -> null
 */

export type PrimitiveTypeName =
  | 'string'
  | 'long'
  | 'integer'
  | 'short'
  | 'byte'
  | 'float'
  | 'double'
  | 'boolean'
  | 'binary'
  | 'date'
  | 'timestamp'
  | 'timestamp_ntz'
  | 'variant';

export type DeltaType =
  | { kind: 'primitive'; name: PrimitiveTypeName }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'struct'; fields: DeltaField[] }
  | { kind: 'array'; elementType: DeltaType; containsNull: boolean }
  | { kind: 'map'; keyType: DeltaType; valueType: DeltaType; valueContainsNull: boolean };

export interface DeltaField {
  /** Logical name, what users see. */
  name: string;
  type: DeltaType;
  nullable: boolean;
  metadata: Record<string, unknown>;
  /** Name of the column in parquet files: `delta.columnMapping.physicalName` or `name`. */
  physicalName: string;
  /** `delta.columnMapping.id` / parquet field_id when column mapping is on. */
  fieldId?: number;
}

export interface DeltaStruct {
  [field: string]: DeltaValue;
}
export type DeltaMap = Map<DeltaValue, DeltaValue>;
export type DeltaValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | DeltaValue[]
  | DeltaStruct
  | DeltaMap;

/** How field names map to parquet columns: `metaData.configuration['delta.columnMapping.mode']`. */
export type ColumnMappingMode = 'none' | 'name' | 'id';

/** One row, keyed by logical column name (top-level columns incl. partition columns). */
export type Row = Record<string, DeltaValue>;

export type ChangeType = 'insert' | 'delete' | 'update_preimage' | 'update_postimage';

const CHANGE_TYPES: ReadonlySet<unknown> = new Set<ChangeType>(['insert', 'delete', 'update_preimage', 'update_postimage']);

/** Whether a `_change_type` value (from a cdc file or table_changes()) is one of the four the feed defines. */
export function isChangeType(v: unknown): v is ChangeType {
  return CHANGE_TYPES.has(v);
}

/** One row of the Change Data Feed. */
export interface ChangeRow {
  changeType: ChangeType;
  commitVersion: number;
  /** Milliseconds since epoch: inCommitTimestamp, else commitInfo.timestamp, else file mtime. */
  commitTimestamp: number;
  values: Row;
}

/** Options of a read of change rows (a source's `changes`, the local Delta reader's CDF). */
export interface ChangeReadOptions {
  /** Maximum rows per yielded batch (default 10 000). */
  batchSize?: number;
  signal?: AbortSignal;
  /**
   * A hint: update_preimage rows need to carry only these columns (source names, typically
   * the key), because the consumer treats a preimage only as the removal of its key. A
   * source may honour it (the local Delta reader does: preimages then hold exactly these
   * columns of the schema, in schema order, and their other values are never converted,
   * which makes the read cheaper) or ignore it (the Databricks source returns full
   * preimages). Rows of every other change type are never affected.
   */
  preimageColumns?: readonly string[];
  /**
   * Text that is not valid UTF-8 in a string column: 'fail' (default) refuses the read with
   * the file, column, row (and key, from preimageColumns) named; 'replace' reads U+FFFD for
   * the bad bytes (mapping setting invalidUtf8). A source whose driver decodes text itself
   * (Databricks) ignores it.
   */
  invalidUtf8?: 'fail' | 'replace';
}

// ---- Log actions (as in the protocol; only what the reader uses is typed) ----

export interface DeletionVectorDescriptor {
  storageType: 'u' | 'p' | 'i';
  pathOrInlineDv: string;
  offset?: number;
  sizeInBytes: number;
  cardinality: number;
}

export interface AddAction {
  path: string; // URL-encoded, relative to the table root or an absolute URI
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string;
  deletionVector?: DeletionVectorDescriptor | null;
  baseRowId?: number;
  defaultRowCommitVersion?: number;
}

export interface RemoveAction {
  path: string;
  deletionTimestamp?: number;
  dataChange: boolean;
  partitionValues?: Record<string, string | null>;
  size?: number;
  deletionVector?: DeletionVectorDescriptor | null;
}

export interface CdcAction {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  dataChange?: boolean;
}

export interface ProtocolAction {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

export interface MetadataAction {
  id: string;
  name?: string | null;
  description?: string | null;
  format: { provider: string; options?: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  createdTime?: number | null;
  configuration: Record<string, string>;
}

export interface CommitInfo {
  timestamp?: number;
  inCommitTimestamp?: number;
  operation?: string;
  operationParameters?: Record<string, unknown>;
  engineInfo?: string;
  [key: string]: unknown;
}

/**
 * The decoded actions of one version of the log: a commit file, or a checkpoint (all its
 * parts and sidecars), which replays like one commit that adds every live file.
 */
export interface LogActions {
  version: number;
  adds: AddAction[];
  /** Empty for a checkpoint: its remove rows are tombstones of files already gone. */
  removes: RemoveAction[];
  /** Empty for a checkpoint. */
  cdcs: CdcAction[];
  protocol?: ProtocolAction;
  metadata?: MetadataAction;
  commitInfo?: CommitInfo;
  /**
   * When the version was committed, ms since epoch: the in-commit timestamp, else
   * commitInfo.timestamp, else the modification time of the file it was read from (for a
   * checkpoint, which has no commitInfo, always that).
   */
  timestamp: number;
}

/** What `describe` reports. */
export interface TableDescription {
  path: string;
  version: number;
  timestamp: number;
  protocol: ProtocolAction;
  readerFeatures: string[];
  writerFeatures: string[];
  schema: DeltaField[];
  partitionColumns: string[];
  configuration: Record<string, string>;
  cdfEnabled: boolean;
  columnMappingMode: ColumnMappingMode;
  numFiles: number;
  /** Sum of numRecords from stats minus DV cardinalities; null when a file has no stats. */
  numRows: number | null;
  sizeInBytes: number;
}
