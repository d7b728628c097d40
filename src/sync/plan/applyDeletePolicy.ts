import type { Row } from '../delta/types';
import type { DeletePolicy } from '../mapping/mappingSchema';

/** The part of NetChanges the delete policy looks at. */
export interface ChangesToApply {
  upserts: Row[];
  /** Key-only rows. */
  deletes: Row[];
  /** Commit timestamp (ms) of each delete, parallel to `deletes`. */
  deleteTimestamps: number[];
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
  /** The marker column the target table needs, when the policy is 'soft-delete'. */
  markerColumn?: { column: string; pgType: string };
}

/** The Postgres column a soft-delete policy needs, if any. */
export function softDeleteColumn(policy: DeletePolicy): { column: string; pgType: string } | undefined {
  if (policy.mode !== 'soft-delete') return undefined;
  return { column: policy.column, pgType: policy.kind === 'boolean' ? 'boolean' : 'timestamptz' };
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
  switch (policy.mode) {
    case 'delete':
      return { upserts: changes.upserts, deletes: changes.deletes, softDeletes: [] };
    case 'ignore':
      return { upserts: changes.upserts, deletes: [], softDeletes: [] };
    case 'soft-delete': {
      const col = opts.markerKey ?? policy.column;
      const live = policy.kind === 'boolean' ? false : null;
      const softDeletes = changes.deletes.map((k, i) => ({
        ...k,
        // timestamp values are bigint microseconds (delta/types.ts); ms -> µs is exact.
        [col]: policy.kind === 'boolean' ? true : BigInt(Math.round(changes.deleteTimestamps[i]!)) * 1000n,
      }));
      return {
        upserts: changes.upserts.map((r) => ({ ...r, [col]: live })),
        deletes: [],
        softDeletes,
        markerColumn: softDeleteColumn(policy),
      };
    }
  }
}
