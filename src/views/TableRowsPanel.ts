import * as vscode from 'vscode';
import type { HostToWebview, PanelState, ResponseResult, TableRowsPage, WebviewRequest } from '../protocol/messages';
import { SyncError } from '../sync/errors';
import { WebviewPanelBase } from './WebviewPanelBase';

export const ROWS_VIEW_TYPE = 'deltaSync.tableRows';

/** Reads a page of the table (the host's query: paged, sorted by a column the catalog has). */
export type RowsPager = (opts: { offset: number; limit: number; sort?: { column: string; dir: 'asc' | 'desc' } }) => Promise<Omit<TableRowsPage, 'table' | 'offset'>>;

/** Show Rows: a target table in the data grid, one panel per table; a second Show Rows reveals it. */
export class TableRowsPanel extends WebviewPanelBase {
  private static readonly open = new Map<string, TableRowsPanel>();

  private constructor(
    panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    log: vscode.LogOutputChannel,
    private readonly where: { connection: string; schema: string; table: string },
    private readonly pager: RowsPager,
    private readonly pageSize: number,
  ) {
    super(panel, extensionUri, log, 'rows');
  }

  static show(extensionUri: vscode.Uri, log: vscode.LogOutputChannel, where: { connection: string; schema: string; table: string }, pager: RowsPager, pageSize: number): TableRowsPanel {
    const id = `${where.connection}:${where.schema}.${where.table}`;
    const existing = TableRowsPanel.open.get(id);
    if (existing) {
      existing.reveal();
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(ROWS_VIEW_TYPE, `Rows: ${where.schema}.${where.table}`, vscode.ViewColumn.Active, { enableScripts: true });
    const p = new TableRowsPanel(panel, extensionUri, log, where, pager, pageSize);
    TableRowsPanel.open.set(id, p);
    return p;
  }

  protected initMessage(): HostToWebview {
    return { type: 'init', state: this.state(), preview: null, progress: null, pageSize: this.pageSize };
  }

  state(): PanelState {
    return { panel: 'rows', ...this.where };
  }

  protected async handle(request: WebviewRequest): Promise<ResponseResult> {
    if (request.type !== 'rows/page') throw new SyncError('usage', 'Show Rows answers page requests only.');
    const r = await this.pager({ offset: request.offset, limit: request.limit, ...(request.sort ? { sort: request.sort } : {}) });
    return { type: 'rowsPage', page: { table: `${this.where.schema}.${this.where.table}`, offset: request.offset, ...r } };
  }

  protected override onDispose(): void {
    const id = `${this.where.connection}:${this.where.schema}.${this.where.table}`;
    if (TableRowsPanel.open.get(id) === this) TableRowsPanel.open.delete(id);
  }
}
