import { readFile } from 'node:fs/promises';
import * as vscode from 'vscode';
import { SyncEngine } from './engine/SyncEngine';
import { Settings } from './platform/Settings';
import { MementoStateStore, VsCodeSecretStore } from './platform/VsCodeStores';
import { PanelState } from './protocol/messages';
import { DatabricksConnections } from './views/DatabricksConnections';
import { registerDatabricksCommands } from './views/DatabricksCommands';
import { DatabricksModel } from './views/DatabricksModel';
import { DeltaTableInspector } from './views/DeltaTableInspector';
import { MappingsModel } from './views/MappingsModel';
import { MappingsTreeDataProvider } from './views/MappingsTreeDataProvider';
import { registerMappingsCommands } from './views/MappingsCommands';
import { PREVIEW_VIEW_TYPE, PreviewPanel } from './views/PreviewPanel';
import { PROGRESS_VIEW_TYPE, ProgressPanel } from './views/ProgressPanel';
import { RunController } from './views/RunController';
import type { Services } from './views/Services';
import { registerSourcesCommands } from './views/SourcesCommands';
import { SourcesModel } from './views/SourcesModel';
import { SourcesTreeDataProvider } from './views/SourcesTreeDataProvider';
import { registerTargetsCommands } from './views/TargetsCommands';
import { TargetsModel } from './views/TargetsModel';
import { TargetsTreeDataProvider } from './views/TargetsTreeDataProvider';
import { READONLY_SCHEME, ReadOnlyDocuments } from './views/ReadOnlyDocuments';
import { listTargetTables } from './views/targetTables';
import { SyncError } from './sync/errors';
import type { Logger } from './sync/ports/Logger';

/** Released in `deactivate`: the sandbox must close so its data directory is consistent. */
let engine: SyncEngine | undefined;
/** Closed in `deactivate`: one open warehouse session per Databricks connection. */
let databricks: DatabricksConnections | undefined;

/** Activation only: builds services, registers views, commands and serializers. */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Delta Sync', { log: true });
  const settings = new Settings();
  const inspector = new DeltaTableInspector();
  const targetsModel = new TargetsModel(new MementoStateStore(context.globalState), new VsCodeSecretStore(context.secrets));
  const workspacePaths = (): string[] => (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const logger: Logger = {
    debug: (m) => log.debug(m),
    info: (m) => log.info(m),
    warn: (m) => log.warn(m),
    error: (m) => log.error(m),
  };
  const caFile = (): string | undefined => settings.databricksCaCertificateFile();
  databricks = new DatabricksConnections(new MementoStateStore(context.globalState), new VsCodeSecretStore(context.secrets), {
    logger,
    extras: async () => {
      const file = caFile();
      if (!file) return {};
      const pem = await readFile(file).catch((e: unknown) => {
        throw new SyncError('usage', `Cannot read the CA certificate file ${file}: ${e instanceof Error ? e.message : String(e)}`, { setting: 'deltaSync.databricks.caCertificateFile' });
      });
      return { customCaCert: pem };
    },
  });
  const dbx = databricks;
  const databricksModel = new DatabricksModel(dbx);
  const sources = new SourcesTreeDataProvider(new SourcesModel(() => settings.deltaFolders(), inspector), databricksModel);
  const sandboxDir = (): string => settings.sandboxDirectory() ?? vscode.Uri.joinPath(context.globalStorageUri, 'sandbox').fsPath;
  engine = new SyncEngine({
    sandboxDir,
    lookup: (name) => targetsModel.connectionString(name).catch(() => undefined),
    logger,
    databricks: { lookup: dbx.lookup, openShared: (c, t) => dbx.openSharedSource(c, t) },
  });
  const eng = engine;
  // Status of every mapping on each refresh: Databricks sources share the connection's client.
  const mappingsModel = new MappingsModel(workspacePaths, () => settings.mappingsFolder(), (m) => eng.withRunner(m, (h) => h.runner.status(), { shareSource: true }));
  const runs = new RunController();
  const listTables = (connection: string) => eng.withTarget(connection, (t) => listTargetTables(t.pool, t.kind === 'sandbox'));
  const s: Services = {
    extensionUri: context.extensionUri,
    log,
    settings,
    inspector,
    sources,
    databricks: dbx,
    databricksModel,
    targetsModel,
    targets: new TargetsTreeDataProvider(targetsModel, listTables),
    mappingsModel,
    mappings: new MappingsTreeDataProvider(mappingsModel),
    runs,
    engine: eng,
    docs: new ReadOnlyDocuments(),
  };

  const mappingWatcher = vscode.workspace.createFileSystemWatcher(`**/${settings.mappingsFolder()}/*.json`);
  const refreshMappings = (): void => s.mappings.refresh();
  context.subscriptions.push(
    log,
    s.docs,
    vscode.workspace.registerTextDocumentContentProvider(READONLY_SCHEME, s.docs),
    settings,
    s.sources,
    s.targets,
    s.mappings,
    vscode.window.registerTreeDataProvider('deltaSync.sources', s.sources),
    vscode.window.registerTreeDataProvider('deltaSync.targets', s.targets),
    vscode.window.registerTreeDataProvider('deltaSync.mappings', s.mappings),
    settings.onDidChange(() => s.sources.refresh()),
    mappingWatcher,
    mappingWatcher.onDidCreate(refreshMappings),
    mappingWatcher.onDidChange(refreshMappings),
    mappingWatcher.onDidDelete(refreshMappings),
    runs.onSnapshot((snap) => void vscode.commands.executeCommand('setContext', 'deltaSync.running', snap.status === 'running' || snap.status === 'stopping')),
    vscode.window.registerWebviewPanelSerializer(PROGRESS_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => void ProgressPanel.adopt(panel, context.extensionUri, log, runs),
    }),
    vscode.window.registerWebviewPanelSerializer(PREVIEW_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, raw: unknown) => {
        const state = PanelState.safeParse(raw);
        if (state.success && state.data.panel === 'preview') PreviewPanel.adopt(panel, context.extensionUri, log, state.data.mapping);
        else panel.dispose();
      },
    }),
    ...registerSourcesCommands(s),
    ...registerDatabricksCommands(s),
    ...registerTargetsCommands(s),
    ...registerMappingsCommands(s),
  );
  log.info('Delta Sync activated');
}

/** Registrations go with context.subscriptions; the sandbox database is closed here. */
export async function deactivate(): Promise<void> {
  const e = engine;
  const d = databricks;
  engine = undefined;
  databricks = undefined;
  await Promise.all([e?.dispose(), d?.dispose()]);
}
