import * as path from 'node:path';
import * as vscode from 'vscode';
import { SyncError } from '../sync/errors';
import { registerCommand } from './commandRegistry';
import { writeSampleTable } from './writeSampleTable';
import type { Services } from './Services';
import type { SourceNode } from './SourcesModel';
import { describeMarkdown, historyMarkdown } from './tableReports';

/** A table path from a tree node argument, or asked with a folder picker (palette use). */
async function tablePathFrom(arg: unknown): Promise<string | undefined> {
  const node = arg as SourceNode | undefined;
  if (node && typeof node === 'object' && node.kind === 'table') return node.path;
  const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Select Delta Table' });
  return picked?.[0]?.fsPath;
}

async function showMarkdown(content: string): Promise<void> {
  const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content });
  await vscode.window.showTextDocument(doc, { preview: true });
}

export function registerSourcesCommands(s: Services): vscode.Disposable[] {
  return [
    registerCommand('deltaSync.sources.addDeltaFolder', async () => {
      const picked = await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
        canSelectMany: false,
        openLabel: 'Add Delta Folder',
        title: 'A Delta table folder, or a folder of tables',
      });
      const folder = picked?.[0]?.fsPath;
      if (!folder) return;
      await s.settings.addDeltaFolder(folder);
      s.sources.refresh();
    }, s.log),
    registerCommand('deltaSync.sources.refresh', () => s.sources.refresh(), s.log),
    registerCommand('deltaSync.sources.describe', async (arg) => {
      const p = await tablePathFrom(arg);
      if (!p) return;
      await showMarkdown(describeMarkdown(await s.inspector.describe(p)));
    }, s.log),
    registerCommand('deltaSync.sources.showHistory', async (arg) => {
      const p = await tablePathFrom(arg);
      if (!p) return;
      await showMarkdown(historyMarkdown(p, await s.inspector.history(p)));
    }, s.log),
    registerCommand('deltaSync.sources.openSample', async () => {
      const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      if (!ws) throw new SyncError('usage', 'Open a folder first: the sample table is written into the workspace.');
      const dir = path.join(ws, 'delta-sample');
      const table = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Delta Sync: writing the sample table' },
        () => writeSampleTable(dir),
      );
      await s.settings.addDeltaFolder(path.relative(ws, dir) || dir);
      s.sources.refresh();
      s.log.info(`Sample table ready at ${table}`);
      void vscode.window.showInformationMessage(`Delta Sync: sample table "orders" is in ${path.relative(ws, table)}.`);
    }, s.log),
  ];
}
