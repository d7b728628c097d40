import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SyncError } from '../sync/errors';
import { registerCommand } from './commandRegistry';
import type { MappingNode } from './MappingsModel';
import { ProgressPanel } from './ProgressPanel';
import type { Services } from './Services';
import type { SourceNode } from './SourcesModel';
import { slugFor } from './slugFor';
import { SANDBOX_NAME } from './TargetsModel';


async function mappingFrom(arg: unknown, s: Services): Promise<MappingNode & { kind: 'mapping' }> {
  const node = arg as MappingNode | undefined;
  if (node && typeof node === 'object' && node.kind === 'mapping') return node;
  const valid = (await s.mappingsModel.children()).filter((n): n is MappingNode & { kind: 'mapping' } => n.kind === 'mapping');
  if (valid.length === 0) throw new SyncError('usage', 'No valid mapping in this workspace.', { hint: 'Create one with "Delta Sync: Create Mapping".' });
  const pick = await vscode.window.showQuickPick(
    valid.map((n) => ({ label: n.mapping.name, description: n.file, node: n })),
    { title: 'Select a mapping' },
  );
  if (!pick) throw new SyncError('cancelled', 'No mapping selected.');
  return pick.node;
}

/** The runner is the engine's; until it is wired in, runs fail with this error. */
function runnerMissing(what: string): never {
  throw new SyncError('usage', `${what} is not available in this build: the sync runner is not wired into the extension yet.`, {
    hint: 'Use the CLI meanwhile (delta-neon-sync --help).',
  });
}

export function registerMappingsCommands(s: Services): vscode.Disposable[] {
  return [
    registerCommand('deltaSync.mappings.createMapping', async (arg) => {
      const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      if (!ws) throw new SyncError('usage', 'Open a folder first: mappings are files in the workspace.');
      const node = arg as SourceNode | undefined;
      let table = node && typeof node === 'object' && node.kind === 'table' ? node.path : undefined;
      if (!table) {
        const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Select Delta Table' });
        table = picked?.[0]?.fsPath;
      }
      if (!table) return;
      const targets = [SANDBOX_NAME, ...s.targetsModel.connections().map((c) => c.name)];
      const connection = await vscode.window.showQuickPick(targets, { title: 'Target connection' });
      if (!connection) return;
      const name = slugFor(path.basename(table));
      const dir = path.resolve(ws, s.settings.mappingsFolder());
      const file = path.join(dir, `${name}.json`);
      await fs.mkdir(dir, { recursive: true });
      // Relative inside the workspace (the file is committed with the project), else absolute.
      const insideWorkspace = !path.relative(ws, table).startsWith('..');
      const body = {
        name,
        source: { type: 'delta', path: insideWorkspace ? path.relative(dir, table) : table },
        target: { connection, schema: 'public', table: name },
      };
      try {
        await fs.writeFile(file, JSON.stringify(body, null, 2) + '\n', { flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        void vscode.window.showInformationMessage(`Delta Sync: ${path.basename(file)} exists; opening it.`);
      }
      await vscode.window.showTextDocument(vscode.Uri.file(file));
      s.mappings.refresh();
    }, s.log),
    registerCommand('deltaSync.mappings.refresh', () => s.mappings.refresh(), s.log),
    registerCommand('deltaSync.mappings.preview', async (arg) => {
      await mappingFrom(arg, s);
      runnerMissing('Preview');
    }, s.log),
    registerCommand('deltaSync.mappings.dryRun', async (arg) => {
      await mappingFrom(arg, s);
      runnerMissing('Dry run');
    }, s.log),
    registerCommand('deltaSync.mappings.runInitialLoad', async (arg) => {
      await mappingFrom(arg, s);
      runnerMissing('Initial load');
    }, s.log),
    registerCommand('deltaSync.mappings.runIncremental', async (arg) => {
      await mappingFrom(arg, s);
      runnerMissing('Incremental sync');
    }, s.log),
    registerCommand('deltaSync.run.stop', () => {
      if (!s.runs.stop()) void vscode.window.showInformationMessage('Delta Sync: no sync is running.');
    }, s.log),
    registerCommand('deltaSync.run.showProgress', () => {
      ProgressPanel.show(s.extensionUri, s.log, s.runs);
    }, s.log),
    registerCommand('deltaSync.log.show', () => s.log.show(true), s.log),
  ];
}
