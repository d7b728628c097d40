import { SyncError } from '../errors';

/**
 * The rights a role needs on the target to run a mapping (least privilege): what each
 * kind of run needs, which of them the role holds, and the errors that name the missing
 * ones before anything is read. The target computes them from its catalogs
 * (Target.rights); the runner checks them up front (run/mappingRights.ts); the CLI's
 * `grants` and the extension's "Copy Required GRANTs" print their SQL.
 */

/**
 * What a right is needed for:
 *  - state: connecting, and the engine's own state (checkpoints, run log, run lock);
 *  - initial-swap / initial-merge: an initial load by swap or merge;
 *  - incremental: incremental syncs and dry runs;
 *  - preview: preview and verify (read-only, staged in temp tables).
 */
export type RightsPurpose = 'state' | 'initial-swap' | 'initial-merge' | 'incremental' | 'preview';

/** `grants --mode`: which runs the printed SQL is for (dry run goes with incremental). */
export type GrantsMode = 'initial-swap' | 'initial-merge' | 'incremental' | 'preview' | 'all';
export const GRANTS_MODES: readonly GrantsMode[] = ['initial-swap', 'initial-merge', 'incremental', 'preview', 'all'];

/** The purposes behind `grants --mode` values (the state and preview go with every mode). */
export function grantsPurposes(modes: readonly GrantsMode[]): RightsPurpose[] {
  const out = new Set<RightsPurpose>(['state', 'preview']);
  for (const m of modes) {
    if (m === 'all') (['initial-swap', 'initial-merge', 'incremental'] as const).forEach((p) => out.add(p));
    else if (m !== 'preview') out.add(m);
  }
  return [...out];
}

/** What of the mapping changes the rights it needs. */
export interface RightsOptions {
  /** The mapping's delete policy: only 'delete' deletes rows in incremental syncs. */
  deletes: 'delete' | 'ignore' | 'soft-delete';
  /** The soft-delete marker column, when the policy is soft-delete (added when missing: ownership). */
  softDeleteColumn?: string;
  /** schemaDrift lets a sync change the columns (add, rename, retype, drop: ALTER TABLE needs ownership). */
  addsColumns: boolean;
  /** Rows the target refuses go to the dead-letter table. */
  deadLetter: boolean;
}

/** One right the role needs. */
export interface RequiredRight {
  /** How messages name it: `TEMP on database neondb`, `ownership of table app.items`. */
  what: string;
  /** What it is needed for: `the staging tables of incremental syncs, ...`. */
  why: string;
  /** The statement(s) an admin runs to give it (identifiers quoted). */
  sql: string;
  /** The runs that need it. */
  purposes: RightsPurpose[];
  /** Whether the role holds it now; undefined when the role does not exist (yet). */
  held: boolean | undefined;
  /**
   * Only needed when something happens during a run (a new column with schemaDrift
   * add-columns): printed, not required up front.
   */
  conditional?: boolean;
  /** Table ownership (a swap's need; a missing one gets its own error and hint). */
  ownership?: boolean;
}

/** The rights a role needs for some purposes, as the target's catalogs say. */
export interface RightsReport {
  role: string;
  roleExists: boolean;
  database: string;
  /** `schema.table` */
  table: string;
  tableExists: boolean;
  rights: RequiredRight[];
  /** The whole script, grouped and commented, for `grants`. */
  sql: string;
}

/** The rights of `report` needed for any of `purposes` that the role lacks (conditional ones left out). */
export function missingRights(report: RightsReport, purposes: readonly RightsPurpose[]): RequiredRight[] {
  return report.rights.filter((r) => r.held === false && !r.conditional && r.purposes.some((p) => purposes.includes(p)));
}

/** `{action}` is the grants action (GRANTS_ACTION): the CLI command or the VS Code command that copies the SQL. */
const GRANTS_HINT = '{action} gives all the SQL this mapping needs';
const GRANTS_ACTION = { id: 'grants' } as const;

/**
 * Refuses a run before it reads anything: names each missing right and what it is for, and
 * gives the statements that grant them.
 */
export function missingRightsError(report: RightsReport, missing: readonly RequiredRight[]): SyncError {
  const list = missing.map((r) => `${r.what} (needed for ${r.why})`).join('; ');
  return new SyncError('target', `Role ${report.role} lacks ${list}. Nothing was read or changed.`, {
    table: report.table,
    retry: 'manual',
    hint: `Have the database owner or an admin run: ${uniqueSql(missing).join(' ')} — ${GRANTS_HINT}.`,
    action: GRANTS_ACTION,
  });
}

/**
 * Refuses a swap load the role cannot do (it does not own the table, and a swap drops it
 * and renames the loaded table into its place) before the snapshot is read, offering a
 * merge, which needs only rights on the rows; `mergeMissing` are the rights a merge would
 * still lack.
 */
export function swapNotOwnedError(report: RightsReport, ownership: RequiredRight, alsoMissing: readonly RequiredRight[], mergeMissing: readonly RequiredRight[]): SyncError {
  const merge = mergeMissing.length === 0
    ? `role ${report.role} has what a merge needs`
    : `a merge also needs ${mergeMissing.map((r) => r.what).join(', ')}: ${uniqueSql(mergeMissing).join(' ')}`;
  const also = alsoMissing.length === 0 ? '' : `; it also lacks ${alsoMissing.map((r) => `${r.what} (needed for ${r.why})`).join('; ')}`;
  return new SyncError('target', `Cannot swap ${report.table} for the initial load: role ${report.role} lacks ${ownership.what} (a swap drops the old table and renames the loaded one into its place)${also}. Nothing was read or changed.`, {
    table: report.table,
    setting: 'initialLoad.mode',
    retry: 'manual',
    hint: `Set "initialLoad": { "mode": "merge" } in the mapping to load into the existing table instead (${merge}); or have its owner run: ${uniqueSql([ownership, ...alsoMissing]).join(' ')} — ${GRANTS_HINT}.`,
    action: GRANTS_ACTION,
  });
}

/** The statements granting `rights`, each once (two rights on a missing schema both create it). */
function uniqueSql(rights: readonly RequiredRight[]): string[] {
  return [...new Set(rights.flatMap((r) => r.sql.split(/(?<=;)\s+/)))];
}
