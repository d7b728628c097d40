import * as vscode from 'vscode';
import type { HostToWebview, PanelState, ProgressSnapshot, ResponseResult, RunHistory, WebviewRequest } from '../protocol/messages';
import { SyncError } from '../sync/errors';
import { openSettingInEditor } from './commandRegistry';
import { Throttle } from './ProgressModel';
import type { RunController } from './RunController';
import { WebviewPanelBase } from './WebviewPanelBase';

export const PROGRESS_VIEW_TYPE = 'deltaSync.progress';
/** Progress posts at most this often; the terminal snapshot goes at once. */
const POST_INTERVAL_MS = 150;

/** The single Progress panel: renders the RunController's snapshots, offers Stop, and Open Setting when the run's error names one. */
export class ProgressPanel extends WebviewPanelBase {
  private static instance: ProgressPanel | undefined;
  /** The last history shown; a new or restored panel starts with it. */
  private static lastHistory: RunHistory | null = null;
  private readonly throttle = new Throttle(POST_INTERVAL_MS, (snapshot: ProgressSnapshot) =>
    this.post({ type: 'progress', snapshot }),
  );
  private readonly sub: { dispose(): void };

  private constructor(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.LogOutputChannel, private readonly runs: RunController) {
    super(panel, extensionUri, log, 'progress');
    this.sub = runs.onSnapshot((s, terminal) => (terminal ? this.throttle.flushNow(s) : this.throttle.push(s)));
  }

  static show(extensionUri: vscode.Uri, log: vscode.LogOutputChannel, runs: RunController): ProgressPanel {
    if (ProgressPanel.instance) {
      ProgressPanel.instance.reveal();
      return ProgressPanel.instance;
    }
    const panel = vscode.window.createWebviewPanel(PROGRESS_VIEW_TYPE, 'Delta Sync: Progress', vscode.ViewColumn.Active, {
      enableScripts: true,
    });
    return ProgressPanel.adopt(panel, extensionUri, log, runs);
  }

  /** Used by `show` and by the serializer after a window reload. */
  static adopt(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.LogOutputChannel, runs: RunController): ProgressPanel {
    ProgressPanel.instance?.dispose();
    ProgressPanel.instance = new ProgressPanel(panel, extensionUri, log, runs);
    return ProgressPanel.instance;
  }

  /** The open panel, if any. */
  static get current(): ProgressPanel | undefined {
    return ProgressPanel.instance;
  }

  /** Shows a mapping's past runs under the live progress. */
  showHistory(history: RunHistory): void {
    ProgressPanel.lastHistory = history;
    this.post({ type: 'history', history });
  }

  protected initMessage(): HostToWebview {
    return { type: 'init', state: this.state(), preview: null, progress: this.runs.current(), history: ProgressPanel.lastHistory };
  }

  state(): PanelState {
    return { panel: 'progress', runId: this.runs.current().runId };
  }

  protected async handle(request: WebviewRequest): Promise<ResponseResult> {
    if (request.type === 'run/stop') {
      if (!this.runs.stop()) throw new SyncError('usage', 'No sync is running.');
      return { type: 'accepted' };
    }
    if (request.type === 'run/openSetting') {
      // The setting of the error this host holds, never one the webview names.
      const setting = this.runs.current().error?.setting;
      if (!setting) throw new SyncError('usage', 'The error of this run names no setting to open.');
      await openSettingInEditor({ scope: setting.scope, key: setting.key }, setting.scope === 'mapping' ? setting.file : undefined);
      return { type: 'accepted' };
    }
    throw new SyncError('usage', `The Progress panel does not handle ${request.type}.`);
  }

  protected override onDispose(): void {
    this.sub.dispose();
    this.throttle.dispose();
    if (ProgressPanel.instance === this) ProgressPanel.instance = undefined;
  }
}
