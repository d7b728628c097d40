import { schemaDriftRules } from '../mapping/mappingSchema';
import type { Mapping } from '../mapping/mappingSchema';
import { grantsPurposes, missingRights, missingRightsError, swapNotOwnedError } from '../ports/rights';
import type { GrantsMode, RightsOptions, RightsPurpose, RightsReport } from '../ports/rights';
import type { AcquireRunOptions, Target } from '../ports/Target';

/** What of a mapping changes the rights its runs need. */
export function rightsOptions(mapping: Mapping): RightsOptions {
  return {
    deletes: mapping.deletes.mode,
    ...(mapping.deletes.mode === 'soft-delete' ? { softDeleteColumn: mapping.deletes.column } : {}),
    addsColumns: altersTable(mapping),
    deadLetter: mapping.deadLetter,
  };
}

/** Whether the mapping's schemaDrift lets a sync change the table's columns (ALTER TABLE: ownership). */
function altersTable(mapping: Mapping): boolean {
  const r = schemaDriftRules(mapping.schemaDrift);
  return r.added === 'add' || r.renamed === 'rename' || r.widened === 'alter' || r.dropped !== 'fail';
}

const ALL_PURPOSES: readonly RightsPurpose[] = ['state', 'initial-swap', 'initial-merge', 'incremental', 'preview'];

/**
 * Checks, from the target's catalogs, that the connection's role holds every right a run
 * for `purposes` needs, before anything is read from the source or written to the target;
 * refuses naming each missing one (with the statements that grant them). A swap the role
 * cannot do (it does not own the table) gets its own error, offering a merge. Returns the
 * report, so a later check (once the run knows its mode) need not read the catalogs again.
 */
export async function checkRights(target: Target, mapping: Mapping, purposes: readonly RightsPurpose[], report?: RightsReport): Promise<RightsReport> {
  return checkReport(report ?? (await target.rights({ purposes: ALL_PURPOSES, options: rightsOptions(mapping) })), purposes);
}

/** checkRights of a report at hand. */
function checkReport(r: RightsReport, purposes: readonly RightsPurpose[]): RightsReport {
  const missing = missingRights(r, purposes);
  const ownership = purposes.includes('initial-swap') ? missing.find((m) => m.ownership === true) : undefined;
  if (ownership) {
    const mergeMissing = missingRights(r, purposes.map((p) => (p === 'initial-swap' ? 'initial-merge' : p)));
    throw swapNotOwnedError(r, ownership, missing.filter((m) => m !== ownership), mergeMissing);
  }
  if (missing.length > 0) throw missingRightsError(r, missing);
  return r;
}

/**
 * The rights check a run starts with, as Target.acquireRun takes it: the report for every
 * purpose (later checks of the run's mode reuse it), refused by checkRights for `purposes`.
 */
export function runRights(mapping: Mapping, purposes: readonly RightsPurpose[]): NonNullable<AcquireRunOptions['rights']> {
  return {
    request: { purposes: ALL_PURPOSES, options: rightsOptions(mapping) },
    check: (report) => void checkReport(report, purposes),
  };
}

/**
 * The modes a mapping runs in, as `grants` prints them by default: its initial load
 * (swap or merge, initialLoad.mode) and incremental syncs (preview goes with every mode).
 */
export function mappingGrantsModes(mapping: Mapping): GrantsMode[] {
  return [mapping.initialLoad.mode === 'swap' ? 'initial-swap' : 'initial-merge', 'incremental'];
}

/**
 * What `grants` prints and "Copy Required GRANTs" copies: the SQL an admin runs so that
 * `role` (default: the connection's own) can run the mapping in `modes` (default: its own,
 * mappingGrantsModes), read from the target's catalogs.
 */
export function requiredGrants(target: Target, mapping: Mapping, opts: { role?: string; modes?: readonly GrantsMode[] } = {}): Promise<RightsReport> {
  return target.rights({
    purposes: grantsPurposes(opts.modes ?? mappingGrantsModes(mapping)),
    options: rightsOptions(mapping),
    ...(opts.role !== undefined ? { role: opts.role } : {}),
  });
}
