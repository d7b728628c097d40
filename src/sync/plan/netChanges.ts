import { SyncError } from '../errors';
import type { ChangeRow, DeltaType, DeltaValue, Row } from '../delta/types';
import { encodeKey, encodeValue } from './encodeKey';

/**
 * What a batch of Change Data Feed rows does to the target, one statement per key.
 * Rows are keyed by Delta (source) column names; project them with projectRow.
 */
export interface NetChanges {
  /** Full rows to upsert; each key at most once. */
  upserts: Row[];
  /** Key-only rows to delete; each key at most once, never also in `upserts`. */
  deletes: Row[];
  /** Commit timestamp (ms since epoch) of the change behind each delete, parallel to `deletes` (for soft deletes). */
  deleteTimestamps: number[];
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
}

export interface NetChangeBufferOptions {
  /**
   * Delta types of the key columns (by source name). Optional; when given, decimal keys
   * fold "-0.00" into "0.00" so a negative zero cannot pose as a second key.
   */
  keyTypes?: Record<string, DeltaType>;
}

/** Rank within one version: removals first, then upserts, so delete + re-insert is an upsert. */
const RANK_REMOVE = 0;
const RANK_UPSERT = 1;

interface Entry {
  version: number;
  rank: number;
  timestamp: number;
  /** Full row for an upsert, key-only row for a removal. */
  row: Row;
  bytes: number;
}

const NEG_ZERO_DECIMAL = /^-0(\.0*)?$/;

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
 * Batching (see planBatches): the caller drains at a version boundary only, so a version
 * never spans two transactions; the price is that a single commit bigger than
 * batch.maxRows becomes one oversized batch.
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
  private entries = new Map<string | number | bigint | boolean, Entry>();
  private rowsIn = 0;
  private minVersion: number | null = null;
  private maxVersion: number | null = null;
  private duplicateKeys = 0;
  private approxBytes = 0;

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
  }

  /** Distinct keys held. */
  get size(): number {
    return this.entries.size;
  }

  /** Approximate bytes of the rows held. */
  get bytes(): number {
    return this.approxBytes;
  }

  add(change: ChangeRow): void {
    const { values, commitVersion: version } = change;
    const keyValues: DeltaValue[] = new Array<DeltaValue>(this.keyColumns.length);
    for (let i = 0; i < this.keyColumns.length; i++) {
      const col = this.keyColumns[i]!;
      let v = values[col];
      if (v === undefined) {
        throw new SyncError('schema-drift', `Key column "${col}" is missing from a change row at version ${version}`, {
          column: col,
          version,
          hint: 'The column is not in the Delta table at that version: check key and the table history.',
        });
      }
      if (v === null) {
        throw new SyncError(
          'mapping',
          `Key column "${col}" is null in an ${change.changeType} row at version ${version}`,
          {
            column: col,
            version,
            hint: 'Key columns must never be null: pick a non-null key, or filter those rows out in the Delta table.',
          },
        );
      }
      if (this.decimalKey[i] && typeof v === 'string' && NEG_ZERO_DECIMAL.test(v)) v = v.slice(1);
      keyValues[i] = v;
    }
    let key: string | number | bigint | boolean;
    if (keyValues.length === 1) {
      const v = keyValues[0]!;
      key = typeof v === 'object' ? encodeValue(v) : v;
    } else key = encodeKey(keyValues);
    const rank = change.changeType === 'insert' || change.changeType === 'update_postimage' ? RANK_UPSERT : RANK_REMOVE;

    this.rowsIn++;
    if (this.minVersion === null || version < this.minVersion) this.minVersion = version;
    if (this.maxVersion === null || version > this.maxVersion) this.maxVersion = version;

    const prev = this.entries.get(key);
    if (prev) {
      if (version < prev.version || (version === prev.version && rank < prev.rank)) return;
      if (version === prev.version && rank === RANK_UPSERT && prev.rank === RANK_UPSERT) this.duplicateKeys++;
      this.approxBytes -= prev.bytes;
    }
    let row: Row;
    if (rank === RANK_UPSERT) {
      row = values;
    } else {
      row = {};
      for (let i = 0; i < this.keyColumns.length; i++) row[this.keyColumns[i]!] = keyValues[i]!;
    }
    const bytes = estimateRowBytes(row);
    this.approxBytes += bytes;
    this.entries.set(key, { version, rank, timestamp: change.commitTimestamp, row, bytes });
  }

  /** Returns the net changes of everything added since the last drain, and empties the buffer. */
  drain(): NetChanges {
    const upserts: Row[] = [];
    const deletes: Row[] = [];
    const deleteTimestamps: number[] = [];
    for (const e of this.entries.values()) {
      if (e.rank === RANK_UPSERT) upserts.push(e.row);
      else {
        deletes.push(e.row);
        deleteTimestamps.push(e.timestamp);
      }
    }
    const out: NetChanges = {
      upserts,
      deletes,
      deleteTimestamps,
      minVersion: this.minVersion,
      maxVersion: this.maxVersion,
      rowsIn: this.rowsIn,
      duplicateKeys: this.duplicateKeys,
    };
    this.entries = new Map();
    this.rowsIn = 0;
    this.minVersion = null;
    this.maxVersion = null;
    this.duplicateKeys = 0;
    this.approxBytes = 0;
    return out;
  }
}
