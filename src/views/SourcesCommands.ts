import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { applySampleChanges, sampleChangeCounts } from '../fixtures/customerProfiles';
import { SyncError } from '../sync/errors';
import { registerCommand } from './commandRegistry';
import { SAMPLE_MAPPING, SAMPLE_TABLE, sampleMapping, writeSampleTable } from './writeSampleTable';
import type { Services } from './Services';
import type { SourceNode } from './SourcesModel';
import { ReportPanel } from './ReportPanel';
import { deltaHistoryReport, describeReport } from './reports';
import type { Mapping } from '../sync/mapping/mappingSchema';
import { mappingsReading } from './MappingsModel';

/** Every valid mapping that reads the Delta table at `tablePath` (Describe shows what each makes of the columns). */
async function mappingsReadingTable(s: Services, tablePath: string): Promise<Mapping[]> {
  try {
    return mappingsReading(await s.mappingsModel.children(), tablePath);
  } catch (e) {
    s.log.warn(`Describe: could not read the mappings: ${String(e)}`);
    return [];
  }
}

/** A table path from a tree node argument, or asked with a folder picker (palette use). */
async function tablePathFrom(arg: unknown): Promise<string | undefined> {
  const node = arg as SourceNode | undefined;
  if (node && typeof node === 'object' && node.kind === 'table') return node.path;
  const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Select Delta Table' });
  return picked?.[0]?.fsPath;
}

function workspaceRoot(): string {
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!ws) throw new SyncError('usage', 'Open a folder first: the sample table is written into the workspace.');
  return ws;
}

const SAMPLE_FOLDER = 'delta-sample';

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
    registerCommand('deltaSync.sources.removeFolder', async (arg) => {
      const node = arg as SourceNode | undefined;
      let folder = node && typeof node === 'object' && (node.kind === 'folder' || node.kind === 'table') && node.configured ? node.path : undefined;
      if (folder === undefined) {
        const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '';
        const configured = s.settings.deltaFolders();
        if (configured.length === 0) throw new SyncError('usage', 'No Delta folder is configured (setting deltaSync.deltaFolders).', { setting: 'deltaSync.deltaFolders' });
        const pick = await vscode.window.showQuickPick(
          configured.map((p) => ({ label: path.basename(p), description: path.relative(ws, p).startsWith('..') ? p : path.relative(ws, p), path: p })),
          { title: 'Remove Folder from Sources', placeHolder: 'The folder is only removed from the view (deltaSync.deltaFolders); no file is deleted' },
        );
        folder = pick?.path;
      }
      if (folder === undefined) return;
      if (!(await s.settings.removeDeltaFolder(folder))) {
        throw new SyncError('usage', `${folder} is not in deltaSync.deltaFolders.`, { setting: 'deltaSync.deltaFolders', hint: 'Only folders added to Sources can be removed; a table inside one goes with its folder.' });
      }
      s.log.info(`Removed ${folder} from Sources (deltaSync.deltaFolders); no file was deleted.`);
      s.sources.refresh();
    }, s.log),
    registerCommand('deltaSync.sources.refresh', () => s.sources.refresh(), s.log),
    registerCommand('deltaSync.sources.describe', async (arg) => {
      const p = await tablePathFrom(arg);
      if (!p) return;
      const d = await s.inspector.describe(p);
      ReportPanel.show(s.extensionUri, s.log, describeReport(d, await mappingsReadingTable(s, p)));
    }, s.log),
    registerCommand('deltaSync.sources.showHistory', async (arg) => {
      const p = await tablePathFrom(arg);
      if (!p) return;
      ReportPanel.show(s.extensionUri, s.log, deltaHistoryReport(p, await s.inspector.history(p)));
    }, s.log),
    registerCommand('deltaSync.sources.openSample', async () => {
      const ws = workspaceRoot();
      const dir = path.join(ws, SAMPLE_FOLDER);
      const table = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Delta Sync: writing the sample ${SAMPLE_TABLE} table` },
        () => writeSampleTable(dir),
      );
      await s.settings.addDeltaFolder(path.relative(ws, dir) || dir);
      // The mapping that syncs it into the sandbox, unless one exists (the user may have edited it).
      const mappingsDir = path.resolve(ws, s.settings.mappingsFolder());
      const file = path.join(mappingsDir, `${SAMPLE_MAPPING}.json`);
      await fs.mkdir(path.join(mappingsDir, 'schema'), { recursive: true });
      await fs.copyFile(vscode.Uri.joinPath(s.extensionUri, 'schemas', 'mapping.schema.json').fsPath, path.join(mappingsDir, 'schema', 'mapping.schema.json'));
      try {
        await fs.writeFile(file, JSON.stringify(sampleMapping(path.relative(mappingsDir, table.path)), null, 2) + '\n', { flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      s.sources.refresh();
      s.mappingsModel.invalidate(file);
      s.mappings.refresh();
      s.log.info(`Sample table ${table.created ? 'written' : 'already present'} at ${table.path}; mapping ${file}`);
      const choice = await vscode.window.showInformationMessage(
        `Delta Sync: sample table "${SAMPLE_TABLE}" is in ${path.relative(ws, table.path)} with the mapping ${path.relative(ws, file)}. Preview what a sync into the sandbox would do?`,
        'Preview Changes',
      );
      if (choice === 'Preview Changes') await vscode.commands.executeCommand('deltaSync.mappings.preview', await s.mappingsModel.load(file));
    }, s.log),
    registerCommand('deltaSync.sources.changeSample', async () => {
      const table = path.join(workspaceRoot(), SAMPLE_FOLDER, SAMPLE_TABLE);
      try {
        await fs.access(path.join(table, '_delta_log'));
      } catch {
        throw new SyncError('usage', 'There is no sample table in this workspace yet.', { hint: 'Run "Delta Sync: Open Sample" first.' });
      }
      const version = await applySampleChanges(table);
      s.sources.refresh();
      s.mappingsModel.invalidate();
      s.mappings.refresh();
      const c = await sampleChangeCounts(table, version);
      const what = `${plural(c.inserted, 'insert')}, ${plural(c.updated, 'update')}, ${plural(c.deleted, 'delete')}`;
      s.log.info(`Sample table changed: version ${version} (a MERGE with ${what})`);
      void vscode.window.showInformationMessage(`Delta Sync: the sample table changed (version ${version}: ${what}). Preview the mapping to see the incremental sync.`);
    }, s.log),
  ];
}

function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}
