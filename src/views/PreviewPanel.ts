import * as vscode from 'vscode';
import type { HostToWebview, PanelState, PreviewFilter, PreviewPage, PreviewSummary, ResponseResult, WebviewRequest } from '../protocol/messages';
import { SyncError } from '../sync/errors';
import { WebviewPanelBase } from './WebviewPanelBase';

export const PREVIEW_VIEW_TYPE = 'deltaSync.preview';

/**
 * What a preview needs from the engine: a plan computed read-only, paged rows with
 * display cells (the host formats bigint/decimal values; they never become numbers),
 * and the two actions the user can take.
 */
export interface PreviewSource {
  summary: PreviewSummary;
  page(filter: PreviewFilter, offset: number, limit: number): Promise<PreviewPage>;
  /** Applies exactly the previewed plan (the runner checks the versions still match). */
  apply(): Promise<void>;
  /** Drops the plan's resources (temp files, connections). */
  dispose(): void;
  /** Starts Preview on a Neon Branch for the mapping (only when `summary.onBranch`). */
  previewOnBranch?(): void;
}

/** One Preview panel per mapping; a second preview of the same mapping reveals it. */
export class PreviewPanel extends WebviewPanelBase {
  private static readonly open = new Map<string, PreviewPanel>();

  private constructor(
    panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    log: vscode.LogOutputChannel,
    private readonly mapping: string,
    private source: PreviewSource | undefined,
  ) {
    super(panel, extensionUri, log, 'preview');
  }

  static show(extensionUri: vscode.Uri, log: vscode.LogOutputChannel, mapping: string, source: PreviewSource): PreviewPanel {
    const existing = PreviewPanel.open.get(mapping);
    if (existing) existing.dispose();
    const panel = vscode.window.createWebviewPanel(PREVIEW_VIEW_TYPE, `Preview: ${mapping}`, vscode.ViewColumn.Active, { enableScripts: true });
    return PreviewPanel.adopt(panel, extensionUri, log, mapping, source);
  }

  /** Closes the mapping's preview, if open: its plan is spent once the target moved. */
  static closeFor(mapping: string): void {
    PreviewPanel.open.get(mapping)?.dispose();
  }

  /**
   * After a reload the plan is gone (it was in memory): the restored panel shows the
   * mapping name and an error response until the user runs Preview again.
   */
  static adopt(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.LogOutputChannel, mapping: string, source?: PreviewSource): PreviewPanel {
    const p = new PreviewPanel(panel, extensionUri, log, mapping, source);
    PreviewPanel.open.set(mapping, p);
    return p;
  }

  protected initMessage(): HostToWebview {
    return { type: 'init', state: this.state(), preview: this.source?.summary ?? null, progress: null };
  }

  state(): PanelState {
    return { panel: 'preview', mapping: this.mapping };
  }

  protected async handle(request: WebviewRequest): Promise<ResponseResult> {
    const source = this.source;
    if (!source) {
      throw new SyncError('usage', 'This preview is no longer available.', { hint: 'Run "Delta Sync: Preview Changes" again.' });
    }
    switch (request.type) {
      case 'preview/page':
        return { type: 'previewPage', page: await source.page(request.filter, request.offset, request.limit) };
      case 'preview/apply':
        await source.apply();
        // The run takes over (Progress panel); this plan is spent.
        setTimeout(() => this.dispose(), 0);
        return { type: 'accepted' };
      case 'preview/cancel':
        this.dispose();
        return { type: 'accepted' };
      case 'preview/onBranch':
        if (!source.previewOnBranch) throw new SyncError('usage', 'This mapping does not target a Neon branch.', { setting: 'target.connection' });
        // The branch flow reports through its own notification; this preview stays open.
        source.previewOnBranch();
        return { type: 'accepted' };
      case 'run/stop':
        throw new SyncError('usage', 'Stop is handled by the Progress panel.');
    }
  }

  protected override onDispose(): void {
    this.source?.dispose();
    this.source = undefined;
    if (PreviewPanel.open.get(this.mapping) === this) PreviewPanel.open.delete(this.mapping);
  }
}
