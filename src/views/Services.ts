import type * as vscode from 'vscode';
import type { Settings } from '../platform/Settings';
import type { DatabricksConnections } from './DatabricksConnections';
import type { DatabricksModel } from './DatabricksModel';
import type { DeltaTableInspector } from './DeltaTableInspector';
import type { MappingsModel } from './MappingsModel';
import type { MappingsTreeDataProvider } from './MappingsTreeDataProvider';
import type { NeonModel } from './NeonModel';
import type { RunController } from './RunController';
import type { SourcesTreeDataProvider } from './SourcesTreeDataProvider';
import type { ContinuousSyncs } from '../engine/ContinuousSyncs';
import type { SyncEngine, TargetHandle } from '../engine/SyncEngine';
import type { ReadOnlyDocuments } from './ReadOnlyDocuments';
import type { TargetsModel } from './TargetsModel';
import type { TargetsTreeDataProvider } from './TargetsTreeDataProvider';

/** What command modules receive: built once in `activate`, passed by constructor/argument. */
export interface Services {
  readonly extensionUri: vscode.Uri;
  readonly log: vscode.LogOutputChannel;
  readonly settings: Settings;
  readonly inspector: DeltaTableInspector;
  readonly sources: SourcesTreeDataProvider;
  /** Saved Databricks connections and their shared warehouse clients. */
  readonly databricks: DatabricksConnections;
  /** The Databricks rows of the Sources view. */
  readonly databricksModel: DatabricksModel;
  readonly targetsModel: TargetsModel;
  readonly targets: TargetsTreeDataProvider;
  /** The Neon account (API key in SecretStorage) of the Targets view. */
  readonly neon: NeonModel;
  readonly mappingsModel: MappingsModel;
  readonly mappings: MappingsTreeDataProvider;
  readonly runs: RunController;
  /** Opens targets and runners; owns the one sandbox instance. */
  readonly engine: SyncEngine;
  /** Continuous and scheduled syncs of mappings (stopped on deactivate). */
  readonly watches: ContinuousSyncs<TargetHandle>;
  /** Generated read-only documents (DDL, history, rows). */
  readonly docs: ReadOnlyDocuments;
}
