/**
 * The one conversion of a thrown value into what users see. A SyncError keeps its kind and
 * hint (the engine classified it where it entered); anything else is its message. Webview
 * responses and run snapshots carry the `ProtocolError`; trees, toasts, input validation
 * and log lines show its one-line `errorText`; failures logged as such get `logText`.
 */
import { MAX_SETTING_FILE, MAX_SETTING_KEY, type ErrorSetting, type ProtocolError } from '../protocol/messages';
import { isSyncError } from '../sync/errors';
import { openableSetting } from './settingLocation';

export function toProtocolError(e: unknown, file?: string): ProtocolError {
  if (isSyncError(e)) {
    const hint = e.hintFor('vscode');
    return { message: e.message, kind: e.kind, hint: hint === undefined ? undefined : hintForVsCode(hint), ...settingOf(e, file) };
  }
  return { message: e instanceof Error ? e.message : String(e) };
}

/**
 * The setting `e` names, as the protocol carries it, when the editor can open it: the same
 * rule as the failure toast's Open Setting (openableSetting); a mapping key needs `file`,
 * the mapping file (or the one noted for the error).
 */
function settingOf(e: unknown, file: string | undefined): { setting?: ErrorSetting } {
  const opens = openableSetting(e, file);
  if (!opens || opens.setting.key.length > MAX_SETTING_KEY || (opens.file?.length ?? 0) > MAX_SETTING_FILE) return {};
  if (opens.setting.scope === 'vscode') return { setting: { scope: 'vscode', key: opens.setting.key } };
  return opens.file === undefined ? {} : { setting: { scope: 'mapping', key: opens.setting.key, file: opens.file } };
}

/**
 * The engine words actions per surface itself (SyncError.hintFor, src/sync/userActions.ts).
 * These rewrites cover hint text recorded before that (run logs, pipeline states stored by
 * older versions) and the one mapping-file phrase that is not a command.
 */
const VS_CODE_ACTIONS: Array<[RegExp, string]> = [
  [/`?delta-neon-sync sync --mapping <file> --mode initial`?/g, 'the "Delta Sync: Run Initial Load" command on the mapping'],
  [/`?delta-neon-sync sync --mapping <file>`?/g, 'the "Delta Sync: Run Incremental Sync" command on the mapping'],
  [/`?delta-neon-sync preview --mapping <file>`?/g, 'the "Delta Sync: Preview Changes" command on the mapping'],
  [/`?delta-neon-sync neon discard --mapping <file> ([^\s)`]+)`?/g, 'the "Delta Sync: Discard Neon Preview Branch..." command, branch $1'],
  [/`?delta-neon-sync neon (?:previews|projects)(?: <project>)?`? lists/g, 'the Targets view lists'],
  [/`?delta-neon-sync databricks tables <catalog\.schema>`? lists/g, 'the Sources view lists'],
  [/set "deadLetter": true in the mapping/g, 'set "deadLetter": true in the mapping file ("Delta Sync: Open Mapping File")'],
];

export function hintForVsCode(hint: string): string {
  let out = hint;
  for (const [re, to] of VS_CODE_ACTIONS) out = out.replace(re, to);
  return out;
}

/** One line: the message, then the hint in parentheses when there is one. */
export function errorText(e: unknown): string {
  const error = toProtocolError(e);
  return error.hint ? `${error.message} (${error.hint})` : error.message;
}

/**
 * For the log: a SyncError is an expected, classified failure, so its message and hint say
 * it all; anything else is a bug, so its stack goes to the log.
 */
export function logText(e: unknown): string {
  if (isSyncError(e)) {
    // The extension's log is read in VS Code: the hint names the palette command, not the CLI's.
    const hint = e.hintFor('vscode');
    return hint ? `${e.message}\nHint: ${hint}` : e.message;
  }
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}
