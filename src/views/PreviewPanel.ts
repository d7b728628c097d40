import * as vscode from 'vscode';
import type { HostToWebview, PanelState, PreviewFilter, PreviewPage, PreviewRow, PreviewSummary, PreviewWarning, ResponseResult, WebviewRequest } from '../protocol/messages';
import { SyncError } from '../sync/errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planCsv } from './PreviewSource';
import type { PreviewSource } from './PreviewSource';
import { FirstShowingLatch, type FirstShowing } from './previewShowing';
import { WebviewPanelBase } from './WebviewPanelBase';

export const PREVIEW_VIEW_TYPE = 'deltaSync.preview';

/** Apply is refused while a warning says the sync itself would refuse the plan (an insert of a key the target holds). */
function refuseBlocked(warnings: readonly PreviewWarning[]): void {
  const b = warnings.find((w) => w.blocking);
  if (b) throw new SyncError('mapping', b.message, { setting: 'duplicateKeys', hint: 'Fix the Delta table or the mapping, then preview again (Delta Sync: Preview Changes).' });
}

/** One Preview panel per mapping; a second preview of the same mapping reveals it. */
export class PreviewPanel extends WebviewPanelBase {
  private static readonly open = new Map<string, PreviewPanel>();

  /** Rows per page (`deltaSync.preview.pageSize`), told to the webview in `init`. */
  static pageSize = 200;

  private constructor(
    panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    log: vscode.LogOutputChannel,
    private readonly mapping: string,
    private source: PreviewSource | undefined,
  ) {
    super(panel, extensionUri, log, 'preview');
  }

  /** The Preview the palette's Apply Preview / Cancel Preview act on: the active one, else the only one. */
  static current(): PreviewPanel | undefined {
    const all = [...PreviewPanel.open.values()];
    return all.find((p) => p.panel.active) ?? (all.length === 1 ? all[0] : undefined);
  }

  /** "Apply Preview" from the palette: with pre-apply warnings the user confirms them in a modal first. */
  async applyFromCommand(): Promise<boolean> {
    const warnings = this.source?.summary.warnings ?? [];
    refuseBlocked(warnings);
    if (warnings.length > 0) {
      const ok = await vscode.window.showWarningMessage(
        `The preview of ${this.mapping} found problems: ${warnings.map((w) => `${w.message} (${w.count.toLocaleString('en-US')} rows)`).join(' ')}`,
        { modal: true },
        'I Understand, Apply',
      );
      if (ok !== 'I Understand, Apply') return false;
    }
    await this.handle({ type: 'preview/apply', id: 'command', acknowledged: true });
    return true;
  }

  /**
   * "Cancel Preview" from the palette: what the panel's Cancel does, so a preview on a
   * Neon branch deletes its branch first (if that fails the panel stays and the command
   * shows the error). A panel whose plan is gone (restored after a reload) just closes.
   */
  async cancelFromCommand(): Promise<void> {
    if (!this.source) {
      this.dispose();
      return;
    }
    await this.handle({ type: 'preview/cancel', id: 'command' });
  }

  /** `title`: the tab's title (default `Preview: <mapping>`). */
  static show(extensionUri: vscode.Uri, log: vscode.LogOutputChannel, mapping: string, source: PreviewSource, title = `Preview: ${mapping}`): PreviewPanel {
    const existing = PreviewPanel.open.get(mapping);
    if (existing) existing.dispose();
    const panel = vscode.window.createWebviewPanel(PREVIEW_VIEW_TYPE, title, vscode.ViewColumn.Active, { enableScripts: true });
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

  /**
   * After Apply the panel stays as a read-only record of the plan that was applied: the
   * summary marked applied and the page the user was looking at (the plan itself is
   * released; the target has moved on, so other pages could not be computed as they were).
   */
  private record: { summary: PreviewSummary; page: PreviewPage | undefined; rowSql: ((row: PreviewRow) => string) | undefined } | undefined;
  /** The page last sent to the webview (what the record keeps). */
  private lastPage: PreviewPage | undefined;
  private readonly firstShowingLatch = new FirstShowingLatch();

  /**
   * Settles once the webview has the counts (the init) and the answer to its first page
   * request: 'shown', or 'failed' (the panel shows the error), or 'closed' when the panel
   * closed first. The preview's progress notification ends then.
   */
  get firstShowing(): Promise<FirstShowing> {
    return this.firstShowingLatch.settled;
  }

  protected override onResponded(request: WebviewRequest, ok: boolean): void {
    if (request.type === 'preview/page') this.firstShowingLatch.settle(ok ? 'shown' : 'failed');
  }

  protected initMessage(): HostToWebview {
    return { type: 'init', state: this.state(), preview: this.record?.summary ?? this.source?.summary ?? null, progress: null, pageSize: PreviewPanel.pageSize };
  }

  /** Answers a record's requests: its page, copies; everything else is over. */
  private async handleRecord(record: NonNullable<PreviewPanel['record']>, request: WebviewRequest): Promise<ResponseResult> {
    switch (request.type) {
      case 'preview/page':
        if (!record.page) throw new SyncError('usage', 'This preview was applied: its rows are no longer kept.', { hint: 'Show Rows on the target table lists what it holds now.' });
        return { type: 'previewPage', page: record.page };
      case 'preview/copy':
        await vscode.env.clipboard.writeText(request.text);
        return { type: 'accepted' };
      case 'preview/copySql': {
        if (!record.rowSql) throw new SyncError('usage', 'This preview cannot write rows as SQL.');
        const text = record.rowSql(request.row);
        await vscode.env.clipboard.writeText(text);
        return { type: 'copied', text };
      }
      default:
        throw new SyncError('usage', `This preview was applied at ${record.summary.applied?.at ?? 'an earlier time'}; it is kept as a read-only record.`, { hint: 'Run "Delta Sync: Preview Changes" for a new plan.' });
    }
  }

  state(): PanelState {
    return { panel: 'preview', mapping: this.mapping };
  }

  protected async handle(request: WebviewRequest): Promise<ResponseResult> {
    if (this.record) return this.handleRecord(this.record, request);
    const source = this.source;
    if (!source) {
      throw new SyncError('usage', 'This preview is no longer available.', { hint: 'Run "Delta Sync: Preview Changes" again.' });
    }
    switch (request.type) {
      case 'preview/page': {
        const page = await source.page(request.filter, request.offset, request.limit, request.search);
        this.lastPage = page;
        return { type: 'previewPage', page };
      }
      case 'preview/version': {
        if (!source.retarget) throw new SyncError('usage', 'This preview cannot change its version.');
        await source.retarget(request.toVersion);
        this.lastPage = undefined;
        // The whole panel describes the new plan: a fresh init (its rows come by page requests).
        this.post(this.initMessage());
        return { type: 'accepted' };
      }
      case 'preview/apply':
        refuseBlocked(source.summary.warnings ?? []);
        if ((source.summary.warnings ?? []).length > 0 && request.acknowledged !== true) {
          throw new SyncError('usage', 'The preview found rows that would fail or change when applied; Apply waits until you tick "I understand".', { hint: 'Read the warnings above the table, fix the data or the mapping and preview again, or tick "I understand" and apply.' });
        }
        await source.apply();
        // The run takes over (Progress panel). The plan is spent, but the panel stays as a
        // record of what was applied; a new Preview of the mapping opens a panel of its own.
        this.keepAsRecord(source);
        return { type: 'accepted' };
      case 'preview/cancel':
        // A preview branch is deleted first; if that fails the panel stays (the error shows in it).
        if (source.discard) await source.discard();
        this.dispose();
        return { type: 'accepted' };
      case 'preview/copyConnection':
        if (!source.connectionString) throw new SyncError('usage', 'This preview is not on a Neon branch.');
        await vscode.env.clipboard.writeText(source.connectionString());
        return { type: 'accepted' };
      case 'preview/copy':
        await vscode.env.clipboard.writeText(request.text);
        return { type: 'accepted' };
      case 'preview/copySql': {
        if (!source.rowSql) throw new SyncError('usage', 'This preview cannot write rows as SQL.');
        const text = source.rowSql(request.row);
        await vscode.env.clipboard.writeText(text);
        return { type: 'copied', text };
      }
      case 'preview/exportCsv': {
        const target = await vscode.window.showSaveDialog({
          title: `Export the preview of ${this.mapping} as CSV`,
          defaultUri: vscode.Uri.file(path.join(os.homedir(), `${this.mapping}-preview-${request.filter}.csv`)),
          filters: { CSV: ['csv'] },
        });
        if (!target) return { type: 'exported', file: null, rows: 0 };
        let rows = -1; // the header
        const out = fs.createWriteStream(target.fsPath, { encoding: 'utf8' });
        try {
          for await (const line of planCsv(source, request.filter, request.search)) {
            if (!out.write(line)) await new Promise<void>((r) => out.once('drain', () => r()));
            rows++;
          }
        } finally {
          await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
        }
        return { type: 'exported', file: target.fsPath, rows: Math.max(0, rows) };
      }
      case 'preview/onBranch':
        if (!source.previewOnBranch) throw new SyncError('usage', 'This mapping does not target a Neon branch.', { setting: 'target.connection' });
        // The branch flow reports through its own notification; this preview stays open.
        source.previewOnBranch();
        return { type: 'accepted' };
      case 'run/stop':
      case 'run/openSetting':
        throw new SyncError('usage', `${request.type === 'run/stop' ? 'Stop' : 'Open Setting of a run'} is handled by the Progress panel.`);
      case 'rows/page':
        throw new SyncError('usage', 'Table rows are shown by Show Rows.');
    }
  }

  private keepAsRecord(source: PreviewSource): void {
    const at = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    const rowSql = source.rowSql?.bind(source);
    this.record = { summary: { ...source.summary, applied: { at, toVersion: source.summary.toVersion } }, page: this.lastPage, rowSql };
    source.dispose();
    this.source = undefined;
    if (PreviewPanel.open.get(this.mapping) === this) PreviewPanel.open.delete(this.mapping);
    this.panel.title = `Applied: ${this.mapping}`;
    this.post(this.initMessage());
  }

  protected override onDispose(): void {
    this.firstShowingLatch.settle('closed');
    this.source?.dispose();
    this.source = undefined;
    if (PreviewPanel.open.get(this.mapping) === this) PreviewPanel.open.delete(this.mapping);
  }
}
