import { SyncError } from '../errors';
import type { ChangeRow } from '../delta/types';
import { NetChangeBuffer } from './netChanges';
import type { NetChangeBufferOptions, NetChanges } from './netChanges';

export interface PlanBatchesOptions extends NetChangeBufferOptions {
  /** Drain once this many distinct keys are held (batch.maxRows). */
  maxRows: number;
  /** Drain once the held rows are about this many bytes (batch.maxBytes). */
  maxBytes?: number;
}

/**
 * Cuts a change stream into net-change batches, one transaction each. Input must come in
 * non-decreasing commitVersion order (the CDF reader's order; rows inside a version may
 * come in any order). A batch is cut only where the version changes, so every batch holds
 * whole versions and its `maxVersion` is safe to checkpoint with it. Trade-off: a single
 * version with more than `maxRows` keys (or `maxBytes`) is not split and gives one
 * oversized batch; splitting it would let a reader see half a commit in the target.
 * Versions with no change rows yield nothing: the caller checkpoints the range end itself.
 */
export async function* planBatches(
  changes: AsyncIterable<ChangeRow> | Iterable<ChangeRow>,
  keyColumns: readonly string[],
  options: PlanBatchesOptions,
): AsyncGenerator<NetChanges> {
  const buffer = new NetChangeBuffer(keyColumns, options);
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  let current: number | null = null;
  for await (const change of changes) {
    const v = change.commitVersion;
    if (current !== null && v < current) {
      throw new SyncError('cdf-range', `Change rows out of order: version ${v} came after version ${current}`, {
        version: v,
        hint: 'This is a bug in the change reader; please report it.',
      });
    }
    if (current !== null && v !== current && (buffer.size >= options.maxRows || buffer.bytes >= maxBytes)) {
      yield buffer.drain();
    }
    current = v;
    buffer.add(change);
  }
  if (buffer.size > 0) yield buffer.drain();
}
