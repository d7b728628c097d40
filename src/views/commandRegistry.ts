import * as vscode from 'vscode';
import { isSyncError } from '../sync/errors';
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
      void showError(e, log);
      return undefined;
    }
  });
}

async function showError(e: unknown, log: vscode.LogOutputChannel): Promise<void> {
  const choice = await vscode.window.showErrorMessage(`Delta Sync: ${errorText(e)}`, 'Show Log');
  if (choice === 'Show Log') log.show(true);
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
