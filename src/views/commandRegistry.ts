import * as vscode from 'vscode';
import { isSyncError } from '../sync/errors';

/** Every command id the extension contributes; package.json must declare exactly these. */
export type CommandId = `deltaSync.${string}.${string}`;

export type CommandHandler = (...args: unknown[]) => unknown;

/**
 * The only way commands are registered. The wrapper logs every failure to the
 * extension's log channel and shows it once, with the engine's hint and a "Show Log"
 * action; a cancelled SyncError is logged but shown to nobody (the user asked for it).
 */
export function registerCommand(id: CommandId, handler: CommandHandler, log: vscode.LogOutputChannel): vscode.Disposable {
  return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
    try {
      return await handler(...args);
    } catch (e) {
      if (isSyncError(e) && e.kind === 'cancelled') {
        log.info(`${id}: cancelled`);
        return undefined;
      }
      // A SyncError is an expected, classified failure: its message and hint say it all.
      // Anything else is a bug, so its stack goes to the log.
      log.error(`${id} failed: ${isSyncError(e) ? e.describe() : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      void showError(e, log);
      return undefined;
    }
  });
}

/** One line for the toast: the message, then the hint when the engine gave one. */
export function userMessage(e: unknown): string {
  if (isSyncError(e)) return e.hint ? `${e.message} ${e.hint}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

async function showError(e: unknown, log: vscode.LogOutputChannel): Promise<void> {
  const choice = await vscode.window.showErrorMessage(`Delta Sync: ${userMessage(e)}`, 'Show Log');
  if (choice === 'Show Log') log.show(true);
}
