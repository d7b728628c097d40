import type { ChangeRow } from '../delta/types';
import type { DeletePolicy } from '../mapping/mappingSchema';
import { applyDeletePolicy } from './applyDeletePolicy';
import type { DeletePlan } from './applyDeletePolicy';
import { planSteps } from './planSteps';
import type { PlanStepsOptions } from './planSteps';

/**
 * Everything that decides how a change stream becomes transactions: plain data, so the
 * worker thread that reads local tables gets the very same plan as the calling thread.
 */
export interface TransactionPlanOptions extends PlanStepsOptions {
  /** Source (Delta) names of the key columns, as NetChangeBuffer keys rows. */
  keySource: string[];
  deletes: DeletePolicy;
  /** Row key of the soft-delete marker (see applyDeletePolicy). */
  markerKey?: string;
}

/** planSteps' steps with the delete policy applied: what a target applies, in order. */
export type TransactionStep =
  | { type: 'apply'; changes: DeletePlan; /** Rows the part writes (for rate limits). */ rows: number; /** See PlanStep. */ provisional?: boolean }
  | { type: 'commit'; version: number | null; fromVersion: number; parts: number };

/**
 * The one plan of an incremental sync: net changes cut into transactions at version
 * boundaries (planSteps), each part with the mapping's delete policy applied. The sync on
 * either thread, the preview and the dry run all plan through here.
 */
export async function* planTransactions(
  changes: AsyncIterable<readonly ChangeRow[]> | Iterable<readonly ChangeRow[]>,
  options: TransactionPlanOptions,
): AsyncGenerator<TransactionStep> {
  for await (const step of planSteps(changes, options.keySource, options)) {
    if (step.type === 'commit') {
      yield step;
      continue;
    }
    const changes = applyDeletePolicy(step.changes, options.deletes, options.markerKey === undefined ? {} : { markerKey: options.markerKey });
    yield { type: 'apply', changes, rows: changes.upserts.length + changes.deletes.length + changes.softDeletes.length, ...(step.provisional ? { provisional: true } : {}) };
  }
}
