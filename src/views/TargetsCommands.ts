import * as vscode from 'vscode';
import { registerCommand } from './commandRegistry';
import type { Services } from './Services';
import { SyncError } from '../sync/errors';
import { pageRows } from './targetTables';
import { TableRowsPanel } from './TableRowsPanel';
import { summarizeConnectionString, type TargetNode } from './TargetsModel';
import { errorText } from './toProtocolError';

export function registerTargetsCommands(s: Services): vscode.Disposable[] {
  return [
    registerCommand('deltaSync.targets.addPostgresConnection', async () => {
      const name = await vscode.window.showInputBox({
        title: 'Add Postgres Connection (1/2)',
        prompt: 'A name for this connection, used in mapping files as target.connection',
        placeHolder: 'neon-prod',
        validateInput: (v) => s.targetsModel.validateName(v.trim()),
      });
      if (name === undefined) return;
      const url = await vscode.window.showInputBox({
        title: 'Add Postgres Connection (2/2)',
        prompt: 'Connection string; it is stored in VS Code secret storage, never in settings or files',
        placeHolder: 'postgresql://user:password@host/db?sslmode=require',
        password: true,
        ignoreFocusOut: true,
        validateInput: (v) => {
          try {
            summarizeConnectionString(v);
            return undefined;
          } catch (e) {
            return errorText(e);
          }
        },
      });
      if (url === undefined) return;
      const info = await s.targetsModel.add(name.trim(), url);
      s.targets.refresh();
      s.log.info(`Connection ${info.name} added (${info.summary})`);
    }, s.log),
    registerCommand('deltaSync.targets.removeConnection', async (arg) => {
      const node = arg as TargetNode | undefined;
      const name = node?.kind === 'connection' ? node.info.name : await vscode.window.showQuickPick(s.targetsModel.connections().map((c) => c.name), { title: 'Remove Connection' });
      if (!name) return;
      const ok = await vscode.window.showWarningMessage(`Remove connection "${name}" and its stored secret?`, { modal: true }, 'Remove');
      if (ok !== 'Remove') return;
      await s.targetsModel.remove(name);
      s.targets.refresh();
    }, s.log),
    registerCommand('deltaSync.targets.addNeonAccount', async () => {
      const key = await vscode.window.showInputBox({
        title: 'Add Neon Account',
        prompt: `A Neon API key (Neon Console > Account settings > API keys). It is checked against ${s.neon.apiUrl()} and kept in VS Code secret storage only.`,
        placeHolder: 'napi_...',
        password: true,
        ignoreFocusOut: true,
      });
      if (key === undefined) return;
      const projects = await vscode.window.withProgress({ location: { viewId: 'deltaSync.targets' }, title: 'Checking the Neon API key' }, () => s.neon.setApiKey(key));
      s.targets.refresh();
      s.log.info(`Neon account added (${projects} project(s) visible at ${s.neon.apiUrl()})`);
    }, s.log),
    registerCommand('deltaSync.targets.removeNeonAccount', async () => {
      const ok = await vscode.window.showWarningMessage('Remove the Neon account and its stored API key? Mappings that use neon: references then need NEON_API_KEY.', { modal: true }, 'Remove');
      if (ok !== 'Remove') return;
      await s.neon.removeApiKey();
      s.targets.refresh();
    }, s.log),
    registerCommand('deltaSync.targets.copyNeonReference', async (arg) => {
      const node = arg as TargetNode | undefined;
      if (!node || node.kind !== 'neon-database') throw new SyncError('usage', 'Pick a Neon database in the Targets view.');
      await vscode.env.clipboard.writeText(node.reference);
      void vscode.window.showInformationMessage(`Copied ${node.reference}: use it as a mapping's target.connection.`);
    }, s.log),
    registerCommand('deltaSync.targets.refresh', () => s.targets.refresh(), s.log),
    registerCommand('deltaSync.targets.showRows', async (arg) => {
      const node = arg as TargetNode | undefined;
      if (!node || node.kind !== 'table') throw new SyncError('usage', 'Pick a table in the Targets view.');
      // A paged, sortable query of the table in the data grid (each page its own query).
      TableRowsPanel.show(s.extensionUri, s.log, { connection: node.connection, schema: node.schema, table: node.table }, (opts) =>
        s.engine.withTarget(node.connection, (t) => pageRows(t.pool, node.schema, node.table, opts)), s.settings.previewPageSize());
    }, s.log),
  ];
}
