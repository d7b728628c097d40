import type { DeltaField, Row } from '../delta/types';
import type { SoftDeleteMarker, TargetColumn } from '../ports/targetTypes';
import type { DeletePolicy } from '../mapping/mappingSchema';

/** The part of NetChanges the delete policy looks at. */
export interface ChangesToApply {
  upserts: Row[];
  /** Key-only rows. */
  deletes: Row[];
  /** Commit timestamp (ms) of each delete, parallel to `deletes`. */
  deleteTimestamps: number[];
  /**
   * Key-only rows of inserts marked MUST_BE_NEW in an earlier (provisional) part of the
   * transaction whose removal came later in the same version: they replaced a row, so the
   * writer must not refuse them for finding their key.
   */
  excused?: Row[];
}

/** What the writer runs, after the delete policy. */
export interface DeletePlan {
  /** Rows to upsert (with a soft-delete policy, carrying the cleared marker). */
  upserts: Row[];
  /** Key rows to DELETE. Empty unless the policy is 'delete'. */
  deletes: Row[];
  /**
   * Key rows plus the marker column, to apply with an UPDATE (never an insert: a key the
   * target does not hold stays absent). Empty unless the policy is 'soft-delete'.
   */
  softDeletes: Row[];
  /** Passed through from ChangesToApply.excused (key-only rows). */
  excused?: Row[];
}

/** The marker's value for a live row, as a row value (false / null). */
export function liveMarkerValue(m: Pick<SoftDeleteMarker, 'kind'>): boolean | null {
  return m.kind === 'boolean' ? false : null;
}

/** Postgres type of the marker column. */
export function markerPgType(m: Pick<SoftDeleteMarker, 'kind'>): string {
  return m.kind === 'boolean' ? 'boolean' : 'timestamptz';
}

/**
 * The marker as a TargetColumn, with a synthetic Delta field (boolean / timestamp) named
 * after the row key, so COPY encodes `row[rowKey]` like any other column value.
 */
export function markerTargetColumn(m: SoftDeleteMarker): TargetColumn {
  const source: DeltaField = {
    name: m.rowKey ?? m.column,
    physicalName: m.rowKey ?? m.column,
    type: { kind: 'primitive', name: m.kind === 'boolean' ? 'boolean' : 'timestamp' },
    nullable: m.kind !== 'boolean',
    metadata: {},
  };
  return { name: m.column, source, pgType: markerPgType(m), notNull: m.kind === 'boolean' };
}

/**
 * Applies the mapping's `deletes` policy to net changes. Call it on projected rows
 * (Postgres names), since the marker column is a Postgres name.
 *   delete:      deletes stay deletes;
 *   ignore:      deletes are dropped (the target keeps the row; key changes leave the old key too);
 *   soft-delete: deletes become marker updates (true, or the delete's commit time as a
 *                timestamp in microseconds), and every upsert clears the marker (false / null),
 *                so a re-inserted key is live again.
 * The input rows are not modified. `opts.markerKey` is the row key the marker value goes
 * under (default: the marker column): rows keyed by Delta names need another key when a
 * Delta column has the marker column's name.
 */
export function applyDeletePolicy(changes: ChangesToApply, policy: DeletePolicy, opts: { markerKey?: string } = {}): DeletePlan {
  const plan = applyPolicy(changes, policy, opts);
  return changes.excused ? { ...plan, excused: changes.excused } : plan;
}

function applyPolicy(changes: ChangesToApply, policy: DeletePolicy, opts: { markerKey?: string }): DeletePlan {
  switch (policy.mode) {
    case 'delete':
      return { upserts: changes.upserts, deletes: changes.deletes, softDeletes: [] };
    case 'ignore':
      return { upserts: changes.upserts, deletes: [], softDeletes: [] };
    case 'soft-delete': {
      const col = opts.markerKey ?? policy.column;
      const live = liveMarkerValue(policy);
      const softDeletes = changes.deletes.map((k, i) => ({
        ...k,
        // timestamp values are bigint microseconds (delta/types.ts); ms -> µs is exact.
        [col]: policy.kind === 'boolean' ? true : BigInt(Math.round(changes.deleteTimestamps[i]!)) * 1000n,
      }));
      return {
        upserts: changes.upserts.map((r) => ({ ...r, [col]: live })),
        deletes: [],
        softDeletes,
      };
    }
  }
}
