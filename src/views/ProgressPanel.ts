import * as vscode from 'vscode';
import type { HostToWebview, PanelState, ResponseResult, WebviewRequest } from '../protocol/messages';
import { SyncError } from '../sync/errors';
import { Throttle } from './ProgressModel';
import type { RunController } from './RunController';
import { WebviewPanelBase } from './WebviewPanelBase';

export const PROGRESS_VIEW_TYPE = 'deltaSync.progress';
/** Progress posts at most this often; the terminal snapshot goes at once. */
const POST_INTERVAL_MS = 150;

/** The single Progress panel: renders the RunController's snapshots, offers Stop. */
export class ProgressPanel extends WebviewPanelBase {
  private static current: ProgressPanel | undefined;
  private readonly throttle = new Throttle(POST_INTERVAL_MS, (snapshot: ReturnType<RunController['current']>) =>
    this.post({ type: 'progress', snapshot }),
  );
  private readonly sub: { dispose(): void };

  private constructor(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.LogOutputChannel, private readonly runs: RunController) {
    super(panel, extensionUri, log, 'progress');
    this.sub = runs.onSnapshot((s, terminal) => (terminal ? this.throttle.flushNow(s) : this.throttle.push(s)));
  }

  static show(extensionUri: vscode.Uri, log: vscode.LogOutputChannel, runs: RunController): ProgressPanel {
    if (ProgressPanel.current) {
      ProgressPanel.current.reveal();
      return ProgressPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(PROGRESS_VIEW_TYPE, 'Delta Sync: Progress', vscode.ViewColumn.Active, {
      enableScripts: true,
    });
    return ProgressPanel.adopt(panel, extensionUri, log, runs);
  }

  /** Used by `show` and by the serializer after a window reload. */
  static adopt(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.LogOutputChannel, runs: RunController): ProgressPanel {
    ProgressPanel.current?.dispose();
    ProgressPanel.current = new ProgressPanel(panel, extensionUri, log, runs);
    return ProgressPanel.current;
  }

  protected initMessage(): HostToWebview {
    return { type: 'init', state: this.state(), preview: null, progress: this.runs.current() };
  }

  state(): PanelState {
    return { panel: 'progress', runId: this.runs.current().runId };
  }

  protected async handle(request: WebviewRequest): Promise<ResponseResult> {
    if (request.type === 'run/stop') {
      if (!this.runs.stop()) throw new SyncError('usage', 'No sync is running.');
      return { type: 'accepted' };
    }
    throw new SyncError('usage', `The Progress panel does not handle ${request.type}.`);
  }

  protected override onDispose(): void {
    this.sub.dispose();
    this.throttle.dispose();
    if (ProgressPanel.current === this) ProgressPanel.current = undefined;
  }
}
