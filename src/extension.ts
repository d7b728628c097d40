import * as vscode from 'vscode';
import { ContinuousSyncs } from './engine/ContinuousSyncs';
import { SyncEngine } from './engine/SyncEngine';
import { channelLogger } from './platform/channelLogger';
import { databricksCaCertificate } from './platform/databricksCaCertificate';
import { Settings } from './platform/Settings';
import { MementoStateStore, VsCodeSecretStore } from './platform/VsCodeStores';
import { DatabricksConnections } from './views/DatabricksConnections';
import { registerDatabricksCommands } from './views/DatabricksCommands';
import { DatabricksModel } from './views/DatabricksModel';
import { DeltaTableInspector } from './views/DeltaTableInspector';
import { MappingsModel } from './views/MappingsModel';
import { MappingsTreeDataProvider } from './views/MappingsTreeDataProvider';
import { NeonModel } from './views/NeonModel';
import { registerNeonPreviewCommands } from './views/NeonPreviewCommands';
import { registerMappingsCommands } from './views/MappingsCommands';
import { registerContinuousSyncCommands } from './views/ContinuousSyncCommands';
import { ReadOnlyDocuments } from './views/ReadOnlyDocuments';
import { registerViews } from './views/registerViews';
import { RunController } from './views/RunController';
import type { Services } from './views/Services';
import { registerSourcesCommands } from './views/SourcesCommands';
import { SourcesModel } from './views/SourcesModel';
import { SourcesTreeDataProvider } from './views/SourcesTreeDataProvider';
import { registerTestHooks } from './views/TestHooks';
import { listTargetTables } from './views/targetTables';
import { registerTargetsCommands } from './views/TargetsCommands';
import { TargetsModel } from './views/TargetsModel';
import { TargetsTreeDataProvider } from './views/TargetsTreeDataProvider';

/**
 * What `deactivate` awaits: VS Code awaits the promise it returns but not a disposable's,
 * and the sandbox must close for its data directory to stay consistent. Set per activation.
 */
let closeServices: (() => Promise<void>) | undefined;

/** Activation only: builds services, registers views, commands and serializers. */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Delta Sync', { log: true });
  const logger = channelLogger(log);
  const settings = new Settings();
  const state = new MementoStateStore(context.globalState);
  const secrets = new VsCodeSecretStore(context.secrets);
  const inspector = new DeltaTableInspector();
  const targetsModel = new TargetsModel(state, secrets);
  const neon = new NeonModel(secrets, { apiUrl: () => settings.neonApiUrl(), logger });
  // One open warehouse session per Databricks connection, closed on deactivate.
  const databricks = new DatabricksConnections(state, secrets, { logger, extras: databricksCaCertificate(() => settings.databricksCaCertificateFile()) });
  const databricksModel = new DatabricksModel(databricks);
  const engine = new SyncEngine({
    sandboxDir: () => settings.sandboxDirectory() ?? vscode.Uri.joinPath(context.globalStorageUri, 'sandbox').fsPath,
    lookup: (name) => targetsModel.connectionString(name).catch(() => undefined),
    logger,
    neon: () => neon.resolveOptions(),
    databricks: { lookup: databricks.lookup, openShared: (c, t) => databricks.openSharedSource(c, t) },
  });
  const workspacePaths = (): string[] => (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  // Status of every mapping on each refresh: Databricks sources share the connection's client.
  // One pool per target connection, shared by the mappings watched at once.
  const watches = new ContinuousSyncs({ openTarget: (c) => engine.openTarget(c), openRunner: (m, t) => engine.openRunnerOn(m, t), wakeWarehouse: () => settings.continuousWakeWarehouse() });
  const mappingsModel = new MappingsModel(workspacePaths, () => settings.mappingsFolder(), (m, o) => engine.withRunner(m, (h) => h.runner.status({ wakeSource: o.wakeSource || settings.statusWakeWarehouse() }), { shareSource: true, deferConnect: true }), (file) => watches.get(file));
  const s: Services = {
    extensionUri: context.extensionUri,
    log,
    settings,
    inspector,
    sources: new SourcesTreeDataProvider(new SourcesModel(() => settings.deltaFolders(), inspector), databricksModel),
    databricks,
    databricksModel,
    targetsModel,
    targets: new TargetsTreeDataProvider(targetsModel, (c) => engine.withTarget(c, (t) => listTargetTables(t.pool, t.kind === 'sandbox')), neon),
    neon,
    mappingsModel,
    mappings: new MappingsTreeDataProvider(mappingsModel),
    runs: new RunController(),
    engine,
    watches,
    docs: new ReadOnlyDocuments(),
  };
  // Watches first: their batches roll back and their pools close before the sandbox does.
  closeServices = () => watches.dispose().then(() => Promise.all([engine.dispose(), databricks.dispose()])).then(() => undefined);
  context.subscriptions.push(log, settings, s.docs, s.sources, s.targets, s.mappings, ...registerViews(s));
  context.subscriptions.push(...registerSourcesCommands(s), ...registerDatabricksCommands(s), ...registerTargetsCommands(s), ...registerMappingsCommands(s), ...registerContinuousSyncCommands(s), ...registerNeonPreviewCommands(s));
  // Test-only (e2e): registers nothing unless DELTA_SYNC_E2E_TEST_HOOKS=1.
  context.subscriptions.push(...registerTestHooks(s));
  log.info('Delta Sync activated');
}

/** Registrations go with context.subscriptions; the sandbox and warehouse sessions close here. */
export async function deactivate(): Promise<void> {
  const close = closeServices;
  closeServices = undefined;
  await close?.();
}
