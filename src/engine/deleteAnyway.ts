/**
 * "Delete Anyway" (issue 14, point 4, the editor's way to allow a refused mass delete once):
 * a run, a repair or a continuous sync that the delete guard refused (safety.maxDeleteShare:
 * more of the target than the share, or an empty snapshot swapped over a non-empty table)
 * asks the user once; on Delete Anyway the same work runs again with the allowance for that
 * one run, and later runs are checked again. Plain TS (no vscode): the views pass the modal
 * as `ask`, tests a scripted answer.
 */
import type { Mapping } from '../sync/mapping/mappingSchema';
import { SyncError } from '../sync/errors';
import type { ContinuousSyncs, WatchStatus, WatchTarget } from './ContinuousSyncs';

/** The button of the confirmation. */
export const DELETE_ANYWAY = 'Delete Anyway';

/** What the modal says: `text` its title line, `detail` the refusal (rows, versions, operation) and what the button does. */
export interface DeleteAnywayQuestion {
  text: string;
  detail: string;
}

/** Shows the question; true when the user chose Delete Anyway. */
export type AskDeleteAnyway = (q: DeleteAnywayQuestion) => Promise<boolean>;

/** A refusal of the delete guard, which the user may override once. */
export function isMassDeleteRefusal(e: unknown): e is SyncError {
  return e instanceof SyncError && e.setting === 'safety.maxDeleteShare';
}

/** The question for a refused sync run, repair, or continuous sync of `mapping`. */
export function deleteAnywayQuestion(what: 'run' | 'repair' | 'watch', mapping: string, e: SyncError): DeleteAnywayQuestion {
  switch (what) {
    case 'run':
      return { text: `Delta Sync: ${mapping} would delete most of its target.`, detail: `${e.message}\n\nDelete Anyway applies these deletes in this one run; later runs are checked again (safety.maxDeleteShare in the mapping).` };
    case 'repair':
      return { text: `Delta Sync: the repair of ${mapping} would delete most of its target.`, detail: `${e.message}\n\nDelete Anyway applies these deletes in this one repair (safety.maxDeleteShare in the mapping).` };
    case 'watch':
      return {
        text: `Delta Sync: continuous sync of ${mapping} stopped: it would delete most of its target.`,
        detail: `${e.message}\n\nDelete Anyway applies these deletes in one run and resumes the continuous sync; every later version is checked again (safety.maxDeleteShare in the mapping).`,
      };
  }
}

/**
 * Runs `run(false)`; when the delete guard refuses it, asks once and, on Delete Anyway, runs
 * `run(true)` (the one allowed run). A declined question, or any other error, is rethrown.
 */
export async function runAllowingOnce<T>(run: (allowMassDelete: boolean) => Promise<T>, ask: (refusal: SyncError) => Promise<boolean>): Promise<T> {
  try {
    return await run(false);
  } catch (e) {
    if (!isMassDeleteRefusal(e) || !(await ask(e))) throw e;
    return run(true);
  }
}

/**
 * A continuous sync the delete guard stopped: asks once and, on Delete Anyway, starts the
 * watch again with the same mode and interval, its first run allowed to delete (then each
 * later version is checked again). Returns the new watch, or undefined when the error was
 * not the guard's or the user declined.
 */
export async function resumeWatchAllowingOnce<T extends WatchTarget>(
  watches: ContinuousSyncs<T>,
  stopped: WatchStatus,
  error: SyncError | undefined,
  mapping: Mapping,
  ask: AskDeleteAnyway,
): Promise<{ done: Promise<void> } | undefined> {
  if (!isMassDeleteRefusal(error)) return undefined;
  if (!(await ask(deleteAnywayQuestion('watch', stopped.mapping, error)))) return undefined;
  return watches.start(stopped.key, mapping, { mode: stopped.mode, intervalMs: stopped.intervalMs, allowMassDeleteOnce: true });
}
