import { SyncError } from '../errors';
import type { SwapBlocker } from './targetTypes';

/**
 * The refusal of a swap load (Target.swapBlockers found something), shared by the phase
 * that checks before reading the snapshot and the target that checks again under the
 * swap's lock. Its hint names the setting that loads by merge instead; never CASCADE.
 */

/** `trigger "t", view public.v, foreign key fk of public.orders` */
export function describeBlockers(blockers: readonly SwapBlocker[]): string {
  return blockers.map((b) => (b.kind === 'trigger' || b.kind === 'rule' ? `${b.kind} "${b.name}"` : b.kind === 'dependent' ? b.name : `${b.kind} ${b.name}`)).join(', ');
}

/** Why a swap of `table` is refused, with what to do (the setting that loads by merge instead). */
export function swapBlockedError(table: string, blockers: readonly SwapBlocker[], version?: number): SyncError {
  const bypass = blockers.some((b) => b.kind === 'trigger' || b.kind === 'rule');
  const why = bypass
    ? 'a swap loads into a new table without firing the triggers or rules of the old one, and cannot replace a table that views or other tables depend on'
    : 'a swap replaces the table, which views and other tables depend on';
  return new SyncError('target', `Cannot swap ${table} for the initial load: it has ${describeBlockers(blockers)}; ${why}. Nothing was changed.`, {
    table,
    version,
    setting: 'initialLoad.onSwapBlocked',
    retry: 'manual',
    hint: 'Set "initialLoad": { "onSwapBlocked": "merge" } (or "mode": "merge") in the mapping: the load then merges into the existing table, so its triggers and rules fire and its dependents stay.',
  });
}
