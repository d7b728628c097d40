import * as vscode from 'vscode';
import { PanelState } from '../protocol/messages';
import { MappingStatusRefresher } from './MappingStatusRefresher';
import { PREVIEW_VIEW_TYPE, PreviewPanel } from './PreviewPanel';
import { PROGRESS_VIEW_TYPE, ProgressPanel } from './ProgressPanel';
import { READONLY_SCHEME } from './ReadOnlyDocuments';
import { RunStatusBar } from './RunStatusBar';
import type { Services } from './Services';

/**
 * Registers the trees, the read-only documents, the mapping-file watcher and the panel
 * serializers over the services; returns every registration for `context.subscriptions`.
 */
export function registerViews(s: Services): vscode.Disposable[] {
  const mappingWatcher = vscode.workspace.createFileSystemWatcher(`**/${s.settings.mappingsFolder()}/*.json`);
  // New Delta versions of the mappings' sources refresh their status (watch or poll).
  const refresher = new MappingStatusRefresher(s.mappingsModel, {
    pollSeconds: () => s.settings.statusPollSeconds(),
    onRefresh: () => s.mappings.refresh(),
    onWarning: (m) => s.log.warn(m),
  });
  const watchSources = (): void => void refresher.sync().catch((e: unknown) => s.log.warn(`status refresh: ${String(e)}`));
  watchSources();
  const refreshMappings = (): void => {
    s.mappings.refresh();
    watchSources();
  };
  return [
    refresher,
    new RunStatusBar(s.runs),
    s.settings.onDidChange(watchSources),
    vscode.workspace.registerTextDocumentContentProvider(READONLY_SCHEME, s.docs),
    vscode.window.registerTreeDataProvider('deltaSync.sources', s.sources),
    vscode.window.registerTreeDataProvider('deltaSync.targets', s.targets),
    vscode.window.registerTreeDataProvider('deltaSync.mappings', s.mappings),
    s.settings.onDidChange(() => s.sources.refresh()),
    mappingWatcher,
    mappingWatcher.onDidCreate(refreshMappings),
    mappingWatcher.onDidChange(refreshMappings),
    mappingWatcher.onDidDelete(refreshMappings),
    s.runs.onSnapshot((snap) => void vscode.commands.executeCommand('setContext', 'deltaSync.running', snap.status === 'running' || snap.status === 'stopping')),
    vscode.window.registerWebviewPanelSerializer(PROGRESS_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => void ProgressPanel.adopt(panel, s.extensionUri, s.log, s.runs),
    }),
    vscode.window.registerWebviewPanelSerializer(PREVIEW_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, raw: unknown) => {
        const state = PanelState.safeParse(raw);
        if (state.success && state.data.panel === 'preview') PreviewPanel.adopt(panel, s.extensionUri, s.log, state.data.mapping);
        else panel.dispose();
      },
    }),
  ];
}
