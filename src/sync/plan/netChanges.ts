import { SyncError } from '../errors';
import type { ChangeRow, DeltaType, DeltaValue, Row } from '../delta/types';
import { encodeKey, encodeValue } from './encodeKey';
import { LINEAGE_TIMESTAMP_KEY, LINEAGE_VERSION_KEY } from './lineage';

/**
 * What a batch of Change Data Feed rows does to the target, one statement per key.
 * Rows are keyed by Delta (source) column names; project them with projectRow.
 */
export interface NetChanges {
  /** Full rows to upsert; each key at most once. */
  upserts: Row[];
  /** Key-only rows to delete (plus the MUST_BE_NEW mark, if any); each key at most once, never also in `upserts`. */
  deletes: Row[];
  /** Commit timestamp (ms since epoch) of the change behind each delete, parallel to `deletes` (for soft deletes). */
  deleteTimestamps: number[];
  /** The buffer's key of each upsert (parallel to `upserts`): equal exactly for equal keys. */
  upsertKeys: NetKey[];
  /** Commit version of each upsert, parallel to `upserts`. */
  upsertVersions: number[];
  /** The buffer's key of each delete, parallel to `deletes`. */
  deleteKeys: NetKey[];
  /** Lowest and highest `commitVersion` among the rows added; null when none were. */
  minVersion: number | null;
  maxVersion: number | null;
  /** Change rows added since the last drain (all change types). */
  rowsIn: number;
  /**
   * Times a key got two upserts in one version (an insert or postimage each). A well-formed
   * CDF of a table with a unique key never does; a count > 0 means the Delta table has
   * duplicate keys, and the one that arrived last was kept.
   */
  duplicateKeys: number;
  /** The first few of those keys (at most DUPLICATE_EXAMPLES), for the error that refuses them. */
  duplicateExamples: DuplicateKey[];
  /**
   * Parallel to `upserts`: the version whose insert must find the key absent from the
   * target (the key's first change in the batch was an upsert with no removal of it in
   * that version: an insert, or the postimage of an update that changed its key to this
   * one), else -1. See MUST_BE_NEW.
   */
  upsertNewAt: number[];
  /**
   * Times a version inserted a key that an earlier version of the same batch had left in
   * the table (upserted, not removed since): the Delta table then holds the key twice.
   */
  reinsertedKeys: number;
  /** The first few of those (at most DUPLICATE_EXAMPLES). */
  reinsertedExamples: DuplicateKey[];
  /**
   * Parallel to `upserts`, only from drain(false) (the last version not complete yet): the
   * last version upserted the key, which an earlier version of the batch had left in the
   * table, and no removal of it was seen yet: a re-insert unless a removal still comes.
   */
  upsertPending: boolean[];
}

/** A key upserted twice within one version, as the user reads it. */
export interface DuplicateKey {
  version: number;
  /** `col=value` for each key column (source names), comma-separated. */
  key: string;
}

/** Duplicate keys kept as examples for an error message; the rest are only counted. */
export const DUPLICATE_EXAMPLES = 5;

/**
 * Row key (never a Delta column name: it starts with a NUL) under which drain marks an
 * upsert whose key must not be in the target when the transaction starts, with the version
 * of the insert (only with `checkNewKeys`); also a delete of a key the batch inserted first. COPY stages it as one more column (see
 * stagingColumns), and the writer refuses the transaction when the target holds such a key
 * (the Delta table then holds that key twice). Rows without it stage NULL.
 */
export const MUST_BE_NEW = '\u0000dns_new_at';

/** The lineage values of an entry's last change (timestamps in µs, as Delta timestamp values). */
function stampLineage(row: Row, e: { version: number; timestamp: number }): void {
  row[LINEAGE_VERSION_KEY] = e.version;
  row[LINEAGE_TIMESTAMP_KEY] = Math.round(e.timestamp) * 1000;
}

/** A row key as the user reads it: `col=value` per key column (source names). */
export function describeKey(keyColumns: readonly string[], keys: readonly DeltaValue[]): string {
  return keyColumns.map((c, i) => `${c}=${describeValue(keys[i] ?? null)}`).join(', ');
}

function describeValue(v: DeltaValue): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  return encodeValue(v);
}

export interface NetChangeBufferOptions {
  /**
   * Delta types of the key columns (by source name). Optional; when given, decimal keys
   * fold "-0.00" into "0.00" so a negative zero cannot pose as a second key.
   */
  keyTypes?: Record<string, DeltaType>;
  /** Mark upserts that must find their key absent from the target (MUST_BE_NEW). */
  checkNewKeys?: boolean;
  /**
   * Lineage columns are on: every drained row (upsert or key-only delete) carries the
   * version and commit timestamp (µs) of its key's last change under LINEAGE_VERSION_KEY
   * and LINEAGE_TIMESTAMP_KEY (plan/lineage.ts). Off: no per-row work.
   */
  lineage?: boolean;
}

/** How the buffer identifies a row key: the value itself for a one-column primitive key, else encodeKey(). */
export type NetKey = string | number | bigint | boolean;

/** Rank within one version: removals first, then upserts, so delete + re-insert is an upsert. */
const RANK_REMOVE = 0;
const RANK_UPSERT = 1;

/** Whether a key was in the table before the entry's version: not known (first version of the batch), absent, live. */
const BEFORE_UNKNOWN = 0;
const BEFORE_ABSENT = 1;
const BEFORE_LIVE = 2;

interface Entry {
  version: number;
  rank: number;
  timestamp: number;
  /**
   * Full row for an upsert; undefined for a removal, whose key-only row is built by drain
   * from `keys` (most removals are preimages that the postimage replaces at once, so
   * building their row on add would be wasted).
   */
  row: Row | undefined;
  /** A removal's key values, in key column order (for a one-column key, the value itself). */
  keys: DeltaValue[] | DeltaValue;
  bytes: number;
  /** A removal of the key was seen at `version` (an upsert there then replaces a row, it adds none). */
  removedAt: boolean;
  /** The key's state before `version` (BEFORE_*). */
  before: number;
  /** The version of the key's first change in the batch when that was an upsert without a removal, else -1. */
  newAt: number;
}

const NEG_ZERO_DECIMAL = /^-0(\.0*)?$/;

/**
 * Upsert rows measured exactly before the running mean is trusted, and the sampling period
 * after that: every SAMPLE_EVERY-th upsert row is measured, the others are charged the mean
 * of the measured ones. Walking every value of every row cost about as much as the rest of
 * add(); the estimate only bounds a batch by approximate bytes, and rows of one table are
 * alike in size, so a sampled mean is as useful.
 */
const EXACT_FIRST = 64;
const SAMPLE_EVERY = 16;

/** Rough in-memory size of a value: enough to bound a batch by bytes, not an exact count. */
export function estimateValueBytes(v: DeltaValue): number {
  if (v === null) return 1;
  switch (typeof v) {
    case 'boolean':
      return 1;
    case 'number':
    case 'bigint':
      return 8;
    case 'string':
      return v.length + 4;
  }
  if (v instanceof Uint8Array) return v.byteLength + 4;
  if (v instanceof Map) {
    let n = 8;
    for (const [k, x] of v) n += estimateValueBytes(k) + estimateValueBytes(x);
    return n;
  }
  if (Array.isArray(v)) {
    let n = 8;
    for (const x of v) n += estimateValueBytes(x);
    return n;
  }
  let n = 8;
  for (const k in v) n += k.length + estimateValueBytes(v[k]!);
  return n;
}

/** Rough in-memory size of a row (see estimateValueBytes). */
export function estimateRowBytes(row: Row): number {
  let n = 16;
  for (const k in row) n += estimateValueBytes(row[k]!);
  return n;
}

/**
 * Folds change rows into the net change per key (the rules of docs delta-cdf.md):
 *  - order by commitVersion; the last change of a key wins, whatever order rows arrive in;
 *  - within one version a removal (delete, or update_preimage) comes before an upsert
 *    (insert, update_postimage), so a delete + re-insert in one commit is an upsert;
 *  - an update_preimage counts as a removal of its key: when the postimage has the same
 *    key the upsert cancels it, when the key changed the old key stays deleted;
 *  - each key appears once in the output, so ON CONFLICT never touches a row twice.
 * Memory is one entry per distinct key (full row for upserts, key only for removals).
 *
 * Batching (see planSteps): the caller drains at a version boundary, so a version never
 * spans two transactions; a single commit too big to hold is drained in parts of one
 * transaction, whose keys planSteps tracks across parts (upsertKeys, deleteKeys).
 */
export class NetChangeBuffer {
  private readonly keyColumns: readonly string[];
  private readonly decimalKey: readonly boolean[];
  /**
   * Keyed by the encoded key; for a one-column key of a primitive JS type, by the value
   * itself (Map's SameValueZero compares bigint/number/string by value, 0 equals -0 and
   * NaN equals NaN as in Postgres), which saves building a string per change. A column
   * holds one JS type (delta/types.ts), so raw and encoded keys never meet.
   */
  private entries = new Map<NetKey, Entry>();
  private rowsIn = 0;
  private minVersion: number | null = null;
  private maxVersion: number | null = null;
  private duplicateKeys = 0;
  private duplicateExamples: DuplicateKey[] = [];
  private reinsertedKeys = 0;
  private reinsertedExamples: DuplicateKey[] = [];
  private readonly checkNewKeys: boolean;
  private readonly lineage: boolean;
  private approxBytes = 0;
  /** Upserts added over the buffer's life (not reset by drain: the mean carries over). */
  private upsertsSeen = 0;
  private sampledRows = 0;
  private sampledBytes = 0;

  /** `keyColumns`: Delta (source) names of the key, as in ChangeRow.values. */
  constructor(keyColumns: readonly string[], options: NetChangeBufferOptions = {}) {
    if (keyColumns.length === 0) {
      throw new SyncError('mapping', 'No key columns: net changes need a row key', {
        setting: 'key',
        hint: 'Set key in the mapping, or give the Postgres table a primary key.',
      });
    }
    this.keyColumns = [...keyColumns];
    this.decimalKey = keyColumns.map((c) => options.keyTypes?.[c]?.kind === 'decimal');
    this.checkNewKeys = options.checkNewKeys === true;
    this.lineage = options.lineage === true;
  }

  /** Distinct keys held. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Approximate bytes of the rows held: the sum of what each held entry was charged when
   * added (key-only removals measured with estimateRowBytes, upsert rows measured or given
   * the running mean of measured upserts, see SAMPLE_EVERY). A replaced entry's charge is
   * subtracted, drain resets it to 0. Good enough to bound a batch, not an exact count.
   */
  get bytes(): number {
    return this.approxBytes;
  }

  add(change: ChangeRow): void {
    const { values, commitVersion: version } = change;
    const n = this.keyColumns.length;
    // A one-column key (the usual case) is handled without an array of key values.
    let keys: DeltaValue[] | DeltaValue;
    let key: NetKey;
    if (n === 1) {
      const v = this.keyValue(change, 0);
      keys = v;
      key = typeof v === 'object' ? encodeValue(v) : (v as NetKey);
    } else {
      const keyValues: DeltaValue[] = new Array<DeltaValue>(n);
      for (let i = 0; i < n; i++) keyValues[i] = this.keyValue(change, i);
      keys = keyValues;
      key = encodeKey(keyValues);
    }
    const rank = change.changeType === 'insert' || change.changeType === 'update_postimage' ? RANK_UPSERT : RANK_REMOVE;

    this.rowsIn++;
    if (this.minVersion === null || version < this.minVersion) this.minVersion = version;
    if (this.maxVersion === null || version > this.maxVersion) this.maxVersion = version;

    const prev = this.entries.get(key);
    if (prev) {
      if (version < prev.version) return;
      if (version === prev.version) {
        if (rank === RANK_REMOVE) {
          prev.removedAt = true;
          // Removed in the batch's first version of the key: it was there, an upsert replaces it.
          if (prev.before === BEFORE_UNKNOWN) prev.newAt = -1;
          if (prev.rank === RANK_UPSERT) return;
        } else if (prev.rank === RANK_UPSERT) {
          this.duplicateKeys++;
          if (this.duplicateExamples.length < DUPLICATE_EXAMPLES) {
            this.duplicateExamples.push({ version, key: describeKey(this.keyColumns, n === 1 ? [keys as DeltaValue] : (keys as DeltaValue[])) });
          }
        }
      } else {
        // A later version: the entry's version is complete (rows come in version order).
        this.closeVersion(prev);
        prev.before = prev.rank === RANK_UPSERT ? BEFORE_LIVE : BEFORE_ABSENT;
        prev.removedAt = rank === RANK_REMOVE;
      }
      this.approxBytes -= prev.bytes;
    }
    const bytes = rank === RANK_UPSERT ? this.upsertBytes(values) : this.removalBytes(keys);
    this.approxBytes += bytes;
    const row = rank === RANK_UPSERT ? values : undefined;
    if (prev) {
      // Updated in place: saves an allocation and a second hash lookup; the key keeps its
      // first-seen position in the Map either way.
      prev.version = version;
      prev.rank = rank;
      prev.timestamp = change.commitTimestamp;
      prev.row = row;
      prev.keys = keys;
      prev.bytes = bytes;
    } else {
      this.entries.set(key, {
        version, rank, timestamp: change.commitTimestamp, row, keys, bytes,
        removedAt: rank === RANK_REMOVE, before: BEFORE_UNKNOWN, newAt: rank === RANK_UPSERT ? version : -1,
      });
    }
  }

  /**
   * Counts the entry's version as a re-insert when it upserted a key that an earlier version
   * of the batch left in the table, without removing it first (so the Delta table holds the
   * key twice). Called once the version is complete.
   */
  private closeVersion(e: Entry): void {
    if (e.rank !== RANK_UPSERT || e.removedAt || e.before !== BEFORE_LIVE) return;
    this.reinsertedKeys++;
    if (this.reinsertedExamples.length < DUPLICATE_EXAMPLES) {
      this.reinsertedExamples.push({ version: e.version, key: describeKey(this.keyColumns, this.keyColumns.length === 1 ? [e.keys as DeltaValue] : (e.keys as DeltaValue[])) });
    }
  }

  /** Key column `i` of a change, checked present and non-null, a decimal "-0" folded into "0". */
  private keyValue(change: ChangeRow, i: number): DeltaValue {
    const col = this.keyColumns[i]!;
    const v = change.values[col];
    if (v === undefined) {
      throw new SyncError('schema-drift', `Key column "${col}" is missing from a change row at version ${change.commitVersion}`, {
        column: col,
        version: change.commitVersion,
        hint: 'The column is not in the Delta table at that version: check key and the table history.',
      });
    }
    if (v === null) {
      throw new SyncError('mapping', `Key column "${col}" is null in an ${change.changeType} row at version ${change.commitVersion}`, {
        column: col,
        version: change.commitVersion,
        hint: 'Key columns must never be null: pick a non-null key, or filter those rows out in the Delta table.',
      });
    }
    if (this.decimalKey[i] && typeof v === 'string' && NEG_ZERO_DECIMAL.test(v)) return v.slice(1);
    return v;
  }

  /** estimateRowBytes of the key-only row a removal drains to, without building it. */
  private removalBytes(keys: DeltaValue[] | DeltaValue): number {
    if (this.keyColumns.length === 1) return 16 + estimateValueBytes(keys as DeltaValue);
    let n = 16;
    for (const v of keys as DeltaValue[]) n += estimateValueBytes(v);
    return n;
  }

  /** The key-only row of a removal (keyed by the key's source column names). */
  private keyRow(keys: DeltaValue[] | DeltaValue): Row {
    const row: Row = {};
    if (this.keyColumns.length === 1) row[this.keyColumns[0]!] = keys as DeltaValue;
    else for (let i = 0; i < this.keyColumns.length; i++) row[this.keyColumns[i]!] = (keys as DeltaValue[])[i]!;
    return row;
  }

  /** The charge of an upsert row: measured for the first EXACT_FIRST and every SAMPLE_EVERY-th, else the running mean. */
  private upsertBytes(row: Row): number {
    const n = this.upsertsSeen++;
    if (n < EXACT_FIRST || n % SAMPLE_EVERY === 0) {
      const exact = estimateRowBytes(row);
      this.sampledRows++;
      this.sampledBytes += exact;
      return exact;
    }
    return Math.round(this.sampledBytes / this.sampledRows);
  }

  /**
   * Returns the net changes of everything added since the last drain, and empties the
   * buffer. `complete` false: the last version goes on in the next drain (a version applied
   * in parts), so its re-inserts are reported as `upsertPending`, not counted.
   */
  drain(complete = true): NetChanges {
    const upserts: Row[] = [];
    const deletes: Row[] = [];
    const deleteTimestamps: number[] = [];
    const upsertKeys: NetKey[] = [];
    const upsertVersions: number[] = [];
    const deleteKeys: NetKey[] = [];
    const upsertNewAt: number[] = [];
    const upsertPending: boolean[] = [];
    const mark = this.checkNewKeys;
    const lineage = this.lineage;
    const last = this.maxVersion;
    for (const [key, e] of this.entries) {
      const open = !complete && e.version === last;
      if (!open) this.closeVersion(e);
      if (e.rank === RANK_UPSERT) {
        if (!complete) upsertPending.push(open && !e.removedAt && e.before === BEFORE_LIVE);
        const row = e.row as Row;
        if (mark && e.newAt >= 0) row[MUST_BE_NEW] = e.newAt;
        if (lineage) stampLineage(row, e);
        upserts.push(row);
        upsertKeys.push(key);
        upsertVersions.push(e.version);
        upsertNewAt.push(e.newAt);
      } else {
        const row = this.keyRow(e.keys);
        // Inserted in this batch, then removed: the key must not be in the target either.
        if (mark && e.newAt >= 0) row[MUST_BE_NEW] = e.newAt;
        if (lineage) stampLineage(row, e);
        deletes.push(row);
        deleteTimestamps.push(e.timestamp);
        deleteKeys.push(key);
      }
    }
    const out: NetChanges = {
      upserts,
      deletes,
      deleteTimestamps,
      upsertKeys,
      upsertVersions,
      deleteKeys,
      minVersion: this.minVersion,
      maxVersion: this.maxVersion,
      rowsIn: this.rowsIn,
      duplicateKeys: this.duplicateKeys,
      duplicateExamples: this.duplicateExamples,
      upsertNewAt,
      reinsertedKeys: this.reinsertedKeys,
      reinsertedExamples: this.reinsertedExamples,
      upsertPending,
    };
    this.entries = new Map();
    this.rowsIn = 0;
    this.minVersion = null;
    this.maxVersion = null;
    this.duplicateKeys = 0;
    this.duplicateExamples = [];
    this.reinsertedKeys = 0;
    this.reinsertedExamples = [];
    this.approxBytes = 0;
    return out;
  }
}
