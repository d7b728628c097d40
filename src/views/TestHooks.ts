import * as vscode from 'vscode';
import { SyncError } from '../sync/errors';
import { SANDBOX_CONNECTION } from '../sync/open/openTarget';
import { registerTestOnlyCommand } from './commandRegistry';
import type { Services } from './Services';

/**
 * TEST-ONLY commands for the end-to-end tests in code-server (test/e2e). The sandbox target
 * (PGlite) lives inside the extension host, so a test cannot reach it from outside to damage
 * it before a Verify & Repair; this command runs SQL on it.
 *
 * Registered only when the extension host's environment has DELTA_SYNC_E2E_TEST_HOOKS=1,
 * which the e2e sets on the code-server it starts; never contributed in package.json, so a
 * user's palette, menus and keybindings never show it. The e2e runs it through a keybinding
 * with the SQL as its argument, written into its own throwaway user settings.
 */
export const TEST_HOOKS_ENV = 'DELTA_SYNC_E2E_TEST_HOOKS';
export const SANDBOX_SQL_COMMAND = 'deltaSyncTest.sandboxSql';

export function registerTestHooks(s: Services, env: NodeJS.ProcessEnv = process.env): vscode.Disposable[] {
  if (env[TEST_HOOKS_ENV] !== '1') return [];
  s.log.warn(`TEST-ONLY: ${TEST_HOOKS_ENV}=1, so the command ${SANDBOX_SQL_COMMAND} (SQL on the sandbox) is registered.`);
  return [
    registerTestOnlyCommand(SANDBOX_SQL_COMMAND, async (arg) => {
      const statements = typeof arg === 'string' ? [arg] : Array.isArray(arg) && arg.every((x) => typeof x === 'string') ? (arg as string[]) : undefined;
      if (!statements) throw new SyncError('usage', `${SANDBOX_SQL_COMMAND} takes the SQL as its argument (a string or an array of strings).`);
      const counts = await s.engine.withTarget(SANDBOX_CONNECTION, async (t) => {
        const out: number[] = [];
        for (const sql of statements) out.push((await t.pool.query(sql)).rowCount ?? 0);
        return out;
      });
      s.log.warn(`TEST-ONLY ${SANDBOX_SQL_COMMAND}: ${statements.map((q, i) => `${q} -> ${counts[i]} row(s)`).join('; ')}`);
      void vscode.window.showInformationMessage(`Test only: ran ${statements.length} statement(s) on the sandbox (${counts.join(', ')} row(s)).`);
    }, s.log),
  ];
}
