import { SyncError } from '../errors';
import type { ChangeSource, CommitOperation } from '../ports/ChangeSource';

/**
 * Safe deletes (mapping `safety.maxDeleteShare`): a run may delete at most that share of
 * the target's rows (soft deletes count), and an initial load may not swap an empty
 * snapshot over a non-empty table. Both are checked before anything is committed (deletes
 * counted as the rows each part actually removed, inside the open transaction); the run
 * option `allowMassDelete` (CLI `--allow-mass-delete`) lets one run through.
 */
export interface DeleteGuard {
  /** The target's rows when the run started (catalog estimate or bounded count). */
  readonly targetRows: number;
  readonly share: number;
}

/**
 * The most rows the run may delete, with `inserted` rows added by its committed
 * transactions (a catch-up run may delete rows it inserted itself: they count as target).
 */
export function allowedDeletes(guard: DeleteGuard, inserted: number): number {
  return Math.floor(guard.share * (guard.targetRows + inserted));
}

/** The share the check enforces, or undefined when it is off (null or 1 in the mapping, or allowed for this run). */
export function guardedShare(maxDeleteShare: number | null, allowMassDelete: boolean | undefined): number | undefined {
  if (allowMassDelete || maxDeleteShare === null || maxDeleteShare >= 1) return undefined;
  return maxDeleteShare;
}

export function deleteGuard(share: number, targetRows: number): DeleteGuard {
  return { share, targetRows };
}

/** "version 5 (DELETE), version 6 (WRITE, mode Overwrite)" from the source's log, or the versions alone. */
export async function describeOperations(source: ChangeSource, from: number, to: number): Promise<string> {
  const range = from >= to ? `version ${to}` : `versions ${from}..${to}`;
  let ops: CommitOperation[] = [];
  try {
    ops = (await source.operations?.(from, to)) ?? [];
  } catch {
    // The log could not be read again: the message names the versions only.
  }
  if (ops.length === 0) return range;
  const named = ops.map((o) => {
    const mode = o.parameters?.mode;
    const op = o.operation ?? 'unknown operation';
    return `version ${o.version}: ${op}${typeof mode === 'string' && mode !== '' ? ` (mode ${mode})` : ''}`;
  });
  return `${range} (${named.join(', ')})`;
}

const ALLOW_ONCE = 'To allow it once: {action}. To allow it always, raise safety.maxDeleteShare in the mapping (1 or null turns the check off).';

/** The refusal of an incremental run that would delete more than its share. */
export async function massDeleteError(opts: {
  source: ChangeSource; table: string; pipeline: string; guard: DeleteGuard; deletes: number; from: number; to: number; committed: number; inserted: number;
}): Promise<SyncError> {
  const { guard } = opts;
  const rows = guard.targetRows + opts.inserted;
  const allowed = allowedDeletes(guard, opts.inserted);
  const versions = await describeOperations(opts.source, opts.from, opts.to);
  const pct = Math.round(guard.share * 100);
  const done = opts.committed > 0 ? ` (${opts.committed} of them by transactions of this run already committed)` : '';
  return new SyncError(
    'target',
    `Refused to delete ${opts.deletes} of about ${rows} row(s) of ${opts.table}${done}: more than safety.maxDeleteShare (${pct}%, at most ${allowed} row(s)) allows for one run. The deletes come from ${opts.source.name} ${versions}. Nothing of the refused transaction was written; the checkpoint of pipeline "${opts.pipeline}" stays at version ${opts.from - 1}.`,
    { table: opts.table, version: opts.to, setting: 'safety.maxDeleteShare', retry: 'manual', hint: `If the source was truncated or overwritten by mistake, restore it (e.g. RESTORE TABLE ... TO VERSION AS OF ${opts.from - 1}). ${ALLOW_ONCE}`, action: { id: 'allow-mass-delete' } },
  );
}

/** The refusal of an initial load that would swap an empty snapshot over a non-empty table. */
export async function emptySwapError(opts: { source: ChangeSource; table: string; version: number; targetRows: number; filtered: boolean }): Promise<SyncError> {
  const versions = await describeOperations(opts.source, opts.version, opts.version);
  const what = opts.filtered ? 'holds no row that passes the mapping\'s filter' : 'is empty';
  return new SyncError(
    'target',
    `Refused to swap an empty snapshot over ${opts.table}: ${opts.source.name} at ${versions} ${what}, and the swap would delete all ${opts.targetRows} row(s) of the table. Nothing was written.`,
    { table: opts.table, version: opts.version, setting: 'safety.maxDeleteShare', retry: 'manual', hint: `If the source was truncated or overwritten by mistake, restore it, or load an earlier version (--to-version). ${ALLOW_ONCE}`, action: { id: 'allow-mass-delete' } },
  );
}
