import type { DeltaField } from '../delta/types';
import { checkSyncDrift, mappingAtSchema, refuseBeforePlanning } from '../mapping/detectDrift';
import type { KeyDriftInput } from '../mapping/detectDrift';
import { resolveColumns } from '../mapping/resolveColumns';
import type { TargetTableInfo } from '../ports/Target';
import type { TableAlteration, TargetColumn } from '../ports/targetTypes';
import type { ColumnPlan } from './columnPlan';
import type { RunContext } from './RunContext';

/**
 * Schema drift for a run over the versions after a checkpoint, in the two steps the sync,
 * its preview and its dry run share (so they agree on what runs): `before` planning the
 * end version's columns (the columns synced at the checkpoint; a changed key or a stale
 * mapping name refused), then `after` it (checkSyncDrift: the alterations to run first in
 * the transaction, the columns left out).
 */
export async function driftBeforePlanning(ctx: RunContext, checkpointVersion: number, schema: DeltaField[], key: readonly string[], end: number, warnings?: string[]): Promise<KeyDriftInput | undefined> {
  // Nothing to read (the target is up to date): no drift to act on, as the sync does nothing then.
  if (end <= checkpointVersion) return undefined;
  const synced = await syncedColumns(ctx, checkpointVersion, schema, warnings);
  const input: KeyDriftInput = { mapping: ctx.mapping, ...(synced ? { synced } : {}), schema, key, source: ctx.source.name, fromVersion: checkpointVersion + 1, toVersion: end };
  refuseBeforePlanning(input);
  return input;
}

/**
 * The run's ONE ordered list of changes of the table's columns, which the sync's first
 * transaction runs right after its checkpoint check and which its preview and dry run show
 * and run (then roll back) the same way: the schema drift's alterations (`input`: from
 * driftBeforePlanning; none without it), then the lineage columns the table lacks. With the
 * plan without the columns drift leaves out; `lineage` is the part that adds lineage
 * columns (for the warning once it committed).
 */
export function tableChanges(ctx: RunContext, input: KeyDriftInput | undefined, planned: ColumnPlan, existing: TargetTableInfo, warnings?: string[]): { plan: ColumnPlan; alterations: TableAlteration[]; lineage: TableAlteration[] } {
  const { plan, alterations } = driftAfterPlanning(ctx, input, planned, existing, warnings);
  const lineage = ctx.target.lineageAlterations(plan.lineage, existing.columns);
  return { plan, alterations: [...alterations, ...lineage], lineage };
}

/**
 * The plan without the columns drift leaves out, and the drift's alterations (of an
 * incremental sync's first transaction, or of a merge load: mergeLoadDriftBefore's input).
 */
export function driftAfterPlanning(ctx: RunContext, input: KeyDriftInput | undefined, plan: ColumnPlan, existing: TargetTableInfo, warnings?: string[]): { plan: ColumnPlan; alterations: TableAlteration[] } {
  if (!input) return { plan, alterations: [] };
  const data = plan.marker ? plan.columns.filter((c) => c.name !== plan.marker?.column) : plan.columns;
  const drift = checkSyncDrift({ ...input, key: plan.key, planned: data, targetColumns: existing.columns, targetLabel: ctx.target.tableLabel });
  for (const w of drift.warnings) {
    if (warnings) ctx.warn(w, warnings);
  }
  if (drift.ignore.length === 0) return { plan, alterations: drift.alterations };
  const ignored = new Set(drift.ignore.map((c) => c.name));
  return { plan: { ...plan, columns: plan.columns.filter((col) => !ignored.has(col.name)) }, alterations: drift.alterations };
}

/**
 * The mapped columns at the checkpoint's version (the mapping's names read back to that
 * schema: mappingAtSchema), or undefined when that schema cannot be read or mapped; a sync
 * (`warnings` given) says so, since only missing columns can then be checked.
 */
async function syncedColumns(ctx: RunContext, version: number, endSchema: readonly DeltaField[], warnings?: string[]): Promise<TargetColumn[] | undefined> {
  try {
    const snap = await ctx.source.snapshot(version);
    return resolveColumns(mappingAtSchema(ctx.mapping, snap.schema, endSchema), snap.schema);
  } catch (e) {
    // A checkpoint older than the table's history, or a mapping that did not fit then: the
    // drift check can only compare with the target's columns, which cannot tell a removed
    // column from one of the user's own. Said out loud, not in a debug line.
    if (warnings) {
      ctx.warn(
        `Could not read the schema of ${ctx.source.name} at version ${version} (the checkpoint) to check for removed, renamed or retyped columns: ${e instanceof Error ? e.message : String(e)}. Only columns missing from ${ctx.target.tableLabel} are checked.`,
        warnings,
      );
    }
    return undefined;
  }
}

/**
 * Schema drift for an initial load that merges into an existing table (initialLoad.mode
 * "merge", or a swap turned into a merge), step one, before the snapshot's columns are
 * planned: the same rules and the same DDL as an incremental sync. A swap needs none of
 * this: the swapped-in table has the snapshot's columns.
 *
 * With a checkpoint older than the snapshot (a reload), the Delta schema at the checkpoint
 * is compared with the snapshot's exactly as an incremental run over those versions
 * compares them (driftBeforePlanning: a changed key or a stale mapping name refused; then
 * renamed, widened, removed and added columns, each under its schemaDrift rule). Without
 * one (a first load into a table that exists) there is no synced schema to compare with:
 * as for an incremental run whose checkpoint schema cannot be read, only snapshot columns
 * the table lacks are found (schemaDrift `added`); the table's own other columns and types
 * are left as the user made them.
 */
export async function mergeLoadDriftBefore(ctx: RunContext, checkpointVersion: number | undefined, schema: DeltaField[], key: readonly string[], version: number, warnings?: string[]): Promise<KeyDriftInput> {
  const before = checkpointVersion === undefined ? undefined : await driftBeforePlanning(ctx, checkpointVersion, schema, key, version, warnings);
  // Version 0 to the snapshot's: a first load reads everything the table ever had.
  return before ?? { mapping: ctx.mapping, schema, key, source: ctx.source.name, fromVersion: checkpointVersion === undefined ? 0 : Math.min(checkpointVersion, version), toVersion: version };
}
