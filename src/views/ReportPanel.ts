import * as vscode from 'vscode';
import type { HostToWebview, PanelState, Report, ResponseResult, WebviewRequest } from '../protocol/messages';
import { SyncError } from '../sync/errors';
import { WebviewPanelBase } from './WebviewPanelBase';

export const REPORT_VIEW_TYPE = 'deltaSync.report';

/**
 * Describe, History and Dry Run results: facts and grids (media/report.ts) built by
 * src/views/reports.ts. One panel per title: showing the same title again replaces its
 * report and reveals it. Read-only; the only request is copying text.
 */
export class ReportPanel extends WebviewPanelBase {
  private static readonly open = new Map<string, ReportPanel>();

  private constructor(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.LogOutputChannel, private report: Report) {
    super(panel, extensionUri, log, 'report');
  }

  static show(extensionUri: vscode.Uri, log: vscode.LogOutputChannel, report: Report): ReportPanel {
    const id = `${report.kind}:${report.title}:${report.subtitle ?? ''}`;
    const existing = ReportPanel.open.get(id);
    if (existing) {
      existing.report = report;
      existing.post(existing.initMessage());
      existing.reveal();
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(REPORT_VIEW_TYPE, report.title, vscode.ViewColumn.Active, { enableScripts: true });
    const p = new ReportPanel(panel, extensionUri, log, report);
    ReportPanel.open.set(id, p);
    return p;
  }

  /** The open report panels (tests and the e2e read them). */
  static reports(): Report[] {
    return [...ReportPanel.open.values()].map((p) => p.report);
  }

  protected initMessage(): HostToWebview {
    return { type: 'init', state: this.state(), preview: null, progress: null, report: this.report };
  }

  state(): PanelState {
    return { panel: 'report', title: this.report.title };
  }

  protected async handle(request: WebviewRequest): Promise<ResponseResult> {
    if (request.type === 'preview/copy') {
      await vscode.env.clipboard.writeText(request.text);
      return { type: 'accepted' };
    }
    throw new SyncError('usage', 'A report panel answers copy requests only.');
  }

  protected override onDispose(): void {
    for (const [id, p] of ReportPanel.open) if (p === this) ReportPanel.open.delete(id);
  }
}
