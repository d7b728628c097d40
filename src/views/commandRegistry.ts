import * as vscode from 'vscode';
import { isSyncError } from '../sync/errors';
import * as path from 'node:path';
import { locateSetting, openableSetting, type SettingRef } from './settingLocation';
import { errorText, logText } from './toProtocolError';

/** Every command id the extension contributes; package.json must declare exactly these. */
export type CommandId = `deltaSync.${string}.${string}`;

export type CommandHandler = (...args: unknown[]) => unknown;

/**
 * The only way commands are registered. The wrapper logs every failure to the
 * extension's log channel and shows it once, with the engine's hint and a "Show Log"
 * action; a cancelled SyncError is logged but shown to nobody (the user asked for it).
 */
export function registerCommand(id: CommandId, handler: CommandHandler, log: vscode.LogOutputChannel): vscode.Disposable {
  return register(id, handler, log);
}

function register(id: CommandId | TestCommandId, handler: CommandHandler, log: vscode.LogOutputChannel): vscode.Disposable {
  return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
    try {
      return await handler(...args);
    } catch (e) {
      if (isSyncError(e) && e.kind === 'cancelled') {
        log.info(`${id}: cancelled`);
        return undefined;
      }
      log.error(`${id} failed: ${logText(e)}`);
      void showError(e, log, mappingFileOf(args[0]));
      return undefined;
    }
  });
}

/** The mapping file of a command's tree argument (a mapping row), when it has one. */
function mappingFileOf(arg: unknown): string | undefined {
  if (typeof arg !== 'object' || arg === null) return undefined;
  const a = arg as { kind?: unknown; file?: unknown };
  return a.kind === 'mapping' && typeof a.file === 'string' ? a.file : undefined;
}

/** The toast of a failed command: Open Setting when the error names one the editor can open (a mapping key needs the mapping's file). */
async function showError(e: unknown, log: vscode.LogOutputChannel, file: string | undefined): Promise<void> {
  const opens = openableSetting(e, file);
  const choice = await vscode.window.showErrorMessage(`Delta Sync: ${errorText(e)}`, ...(opens ? ['Open Setting'] : []), 'Show Log');
  if (choice === 'Show Log') log.show(true);
  if (choice === 'Open Setting' && opens) await openSettingInEditor(opens.setting, opens.file);
}

/**
 * Opens a setting an error names: a `deltaSync.*` setting in the Settings editor; a mapping
 * key in the mapping file, the cursor on the key, or (the file lacks it) on the nearest
 * enclosing object, saying so. Nothing is inserted.
 */
export async function openSettingInEditor(setting: SettingRef, file: string | undefined): Promise<void> {
  if (setting.scope === 'vscode') {
    await vscode.commands.executeCommand('workbench.action.openSettings', setting.key);
    return;
  }
  if (file === undefined) return;
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  const at = locateSetting(doc.getText(), setting.key);
  const range = new vscode.Range(doc.positionAt(at.offset), doc.positionAt(at.offset + at.length));
  await vscode.window.showTextDocument(doc, { selection: range });
  if (!at.exact) {
    const where = at.found ? `"${at.found}"` : 'the top-level object';
    void vscode.window.showInformationMessage(`Delta Sync: "${setting.key}" is not set in ${path.basename(file)} (its default applies); it goes in ${where}, where the cursor is.`);
  }
}

/** Ids of test-only commands: outside the `deltaSync.` namespace package.json contributes. */
export type TestCommandId = `deltaSyncTest.${string}`;

/**
 * Registers a test-only command (see TestHooks.ts), through the same error handling as the
 * product's commands. Never contributed in package.json, so no palette entry or menu shows
 * it; only a keybinding (written by the end-to-end test into its own user settings) runs it.
 */
export function registerTestOnlyCommand(id: TestCommandId, handler: CommandHandler, log: vscode.LogOutputChannel): vscode.Disposable {
  return register(id, handler, log);
}
