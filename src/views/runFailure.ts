/**
 * The one notification of a failed run, wherever it was started (the palette, the Mappings
 * tree, the Preview's Apply, a continuous sync that stopped on an error, Sync All): an
 * error toast naming the mapping and the error, with Show Progress (the Progress panel on
 * that mapping's run), Open Setting when the error names a setting the editor can open
 * (settingLocation.ts), and Show Log. Plain TS: the editor's side is the `FailureUi` port.
 */
import type { MappingOutcome } from '../sync/run/syncAll';
import { isSyncError, type SyncError } from '../sync/errors';
import { openableSetting, type SettingRef } from './settingLocation';
import { errorText } from './toProtocolError';

/** Where the run was started; it words the toast ("applying the preview of ...", "continuous sync of ... stopped"). */
export type RunOrigin = 'command' | 'preview' | 'continuous' | 'sync-all';

export interface RunFailure {
  origin: RunOrigin;
  /** The mapping's name, as the Progress panel and the tree show it. */
  mapping: string;
  /** The mapping file, where an Open Setting on a mapping key goes. */
  file?: string;
  /** What ran ("incremental sync", "initial load", "repair"), for origin 'command'. */
  what?: string;
  error: unknown;
  /** For Sync All: the summary line said first. */
  summary?: string;
}

export const SHOW_PROGRESS = 'Show Progress';
export const OPEN_SETTING = 'Open Setting';
export const SHOW_LOG = 'Show Log';

/** What the notification asks the editor to do. */
export interface FailureUi {
  error(text: string, ...actions: string[]): Promise<string | undefined>;
  /** Opens the Progress panel on `mapping`'s runs (its failed run first). */
  showProgress(mapping: string): Promise<void>;
  showLog(): void;
  /** Opens the setting: a key of `file` (the mapping), or a VS Code setting. */
  openSetting(setting: SettingRef, file: string | undefined): Promise<void>;
}

export interface FailureNotice {
  text: string;
  actions: string[];
  setting?: SettingRef;
}

/** The toast's text and buttons (no buttons for a cancel: the user asked for it, and no toast is shown). */
export function failureNotice(f: RunFailure): FailureNotice | undefined {
  if (isSyncError(f.error) && f.error.kind === 'cancelled') return undefined;
  const why = errorText(f.error);
  const text =
    f.origin === 'preview'
      ? `applying the preview of ${f.mapping} failed: ${why}`
      : f.origin === 'continuous'
        ? `continuous sync of ${f.mapping} stopped: ${why}`
        : f.origin === 'sync-all'
          ? `Sync All: ${f.summary ? `${f.summary}. ` : ''}${f.mapping} failed: ${why}`
          : `${f.what ?? 'sync'} of ${f.mapping} failed: ${why}`;
  // A mapping key opens in its file: without the file there is nothing to open.
  const opens = openableSetting(f.error, f.file)?.setting;
  return { text, actions: [SHOW_PROGRESS, ...(opens ? [OPEN_SETTING] : []), SHOW_LOG], ...(opens ? { setting: opens } : {}) };
}

/** Shows the toast and runs the action the user picks; resolves when that is done (or the toast is dismissed). */
export async function notifyRunFailed(ui: FailureUi, f: RunFailure): Promise<void> {
  const notice = failureNotice(f);
  if (!notice) return;
  const choice = await ui.error(notice.text, ...notice.actions);
  if (choice === SHOW_PROGRESS) await ui.showProgress(f.mapping);
  else if (choice === OPEN_SETTING && notice.setting) await ui.openSetting(notice.setting, f.file);
  else if (choice === SHOW_LOG) ui.showLog();
}

/** A continuous sync that stopped on an error (ContinuousSyncs' onStopped), as a run failure. */
export function continuousFailure(stopped: { mapping: string; key: string }, error: SyncError): RunFailure {
  return { origin: 'continuous', mapping: stopped.mapping, file: stopped.key, error };
}

/**
 * Sync All's failure, when a mapping failed: the summary, then the first failed mapping's
 * error (its run and its setting are what the buttons open). `files` maps names to files.
 */
export function syncAllFailure(outcomes: ReadonlyArray<MappingOutcome<unknown>>, summary: string, files: ReadonlyMap<string, string>): RunFailure | undefined {
  // A mapping stopped by the user's Stop is no failure to notify.
  const failed = outcomes.find((o): o is Extract<MappingOutcome<unknown>, { status: 'failed' }> => o.status === 'failed' && o.error.kind !== 'cancelled');
  if (!failed) return undefined;
  const file = files.get(failed.name);
  return { origin: 'sync-all', mapping: failed.name, ...(file === undefined ? {} : { file }), error: failed.error, summary };
}
