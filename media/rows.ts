// Show Rows: a target table in the grid, paged and sorted by the host's SQL (so sorting
// covers the whole table, and numbers sort as numbers because Postgres compares the typed
// column). Built once; page loads update the grid and the status in place.
import type { PanelState, ResponseResult, TableRowsPage, WebviewToHost } from '../src/protocol/messages';
import { Grid } from './grid';
import type { GridColumn } from './grid';

export interface RowsHost {
  request(make: (id: string) => WebviewToHost): Promise<ResponseResult>;
  setState(state: PanelState): void;
}

const nf = new Intl.NumberFormat('en-US');
const NUMERIC = /^(smallint|integer|bigint|numeric|real|double precision|decimal)/;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

export class RowsView {
  private offset = 0;
  private pageSize = 200;
  private total: number | null = null;
  private sort: { column: string; dir: 'asc' | 'desc' } | undefined;
  private seq = 0;
  private readonly grid: Grid;
  private readonly title = el('h1');
  private readonly status = el('div', { class: 'sr-status muted', role: 'status', 'aria-live': 'polite', 'data-testid': 'rows-status' });
  private readonly errorBox = el('div', { class: 'error', role: 'alert', hidden: '' });
  private readonly range = el('span', { class: 'muted', 'data-testid': 'page-range' });
  private readonly prevBtn = el('button', { 'aria-label': 'Previous page' }, '‹ Previous');
  private readonly nextBtn = el('button', { 'aria-label': 'Next page' }, 'Next ›');
  private readonly pageBox = el('input', { type: 'number', min: '1', 'aria-label': 'Page number', class: 'goto', 'data-testid': 'goto-page' });
  private readonly pages = el('span', { class: 'muted' });

  constructor(private readonly root: HTMLElement, private readonly host: RowsHost) {
    this.grid = new Grid({
      label: 'Table rows',
      onStatus: (t) => (this.status.textContent = t),
      onColumnsChange: (hidden) => this.state && this.host.setState({ ...this.state, ...(hidden.length ? { hidden } : {}) }),
      onSort: (column, dir) => {
        this.sort = dir ? { column, dir } : undefined;
        this.offset = 0;
        this.load();
      },
    });
    this.grid.element.setAttribute('data-testid', 'rows-table');
    this.prevBtn.addEventListener('click', () => {
      if (this.offset === 0) return;
      this.offset = Math.max(0, this.offset - this.pageSize);
      this.load();
    });
    this.nextBtn.addEventListener('click', () => {
      if (this.total !== null && this.offset + this.pageSize >= this.total) return;
      this.offset += this.pageSize;
      this.load();
    });
    this.pageBox.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      const n = Math.floor(Number(this.pageBox.value));
      const last = this.total === null ? null : Math.max(1, Math.ceil(this.total / this.pageSize));
      if (!Number.isFinite(n) || n < 1 || (last !== null && n > last)) {
        this.status.textContent = last === null ? 'No such page.' : `Pages go from 1 to ${nf.format(last)}.`;
        return;
      }
      this.offset = (n - 1) * this.pageSize;
      this.load();
    });
  }

  private state: Extract<PanelState, { panel: 'rows' }> | undefined;

  init(state: Extract<PanelState, { panel: 'rows' }>, pageSize: number | undefined, hidden: readonly string[] = []): void {
    this.pageSize = pageSize ?? this.pageSize;
    this.state = { panel: 'rows', connection: state.connection, schema: state.schema, table: state.table };
    this.grid.setHidden(hidden);
    this.host.setState({ ...this.state, ...(hidden.length ? { hidden: [...hidden] } : {}) });
    document.body.classList.add('preview-layout');
    this.root.removeAttribute('aria-live');
    this.title.textContent = `${state.schema}.${state.table}`;
    this.root.replaceChildren(
      el('header', {}, this.title, el('span', { class: 'muted' }, `${state.connection} · values as Postgres text (timestamps in UTC); click a column to sort the whole table`), el('span', { class: 'spacer' }), this.grid.columnsButton),
      this.errorBox,
      this.status,
      this.grid.element,
      el('footer', {}, this.prevBtn, this.range, this.nextBtn, el('span', { class: 'spacer' }), el('label', { class: 'muted' }, 'Page ', this.pageBox), this.pages),
    );
    this.load();
  }

  private load(): void {
    const seq = ++this.seq;
    const { offset, sort } = this;
    this.grid.element.setAttribute('aria-busy', 'true');
    this.status.textContent = 'Loading…';
    this.host
      .request((id) => ({ type: 'rows/page', id, offset, limit: this.pageSize, ...(sort ? { sort } : {}) }))
      .then((r) => {
        if (seq !== this.seq || r.type !== 'rowsPage') return;
        this.show(r.page);
      })
      .catch((e: Error) => {
        if (seq !== this.seq) return;
        this.errorBox.textContent = e.message;
        this.errorBox.hidden = false;
      })
      .finally(() => {
        if (seq === this.seq) this.grid.element.removeAttribute('aria-busy');
      });
  }

  private show(page: TableRowsPage): void {
    this.errorBox.hidden = true;
    this.total = page.total;
    const columns: GridColumn[] = page.columns.map((c) => ({ key: c.name, label: c.name, title: c.type, numeric: NUMERIC.test(c.type), ...(c.key ? { frozen: true, badge: 'key' } : {}) }));
    this.grid.setData(columns, page.rows.map((r) => ({ cells: r.map((text) => ({ text })) })), { resetScroll: true });
    const n = page.rows.length;
    this.range.textContent = `${nf.format(n === 0 ? 0 : page.offset + 1)}–${nf.format(page.offset + n)} of ${nf.format(page.total)}`;
    this.pageBox.value = String(Math.floor(page.offset / this.pageSize) + 1);
    this.pages.textContent = `of ${nf.format(Math.max(1, Math.ceil(page.total / this.pageSize)))}`;
    this.prevBtn.setAttribute('aria-disabled', String(page.offset === 0));
    this.nextBtn.setAttribute('aria-disabled', String(page.offset + n >= page.total));
    this.status.textContent = `Rows ${this.range.textContent}${this.sort ? `, sorted by ${this.sort.column} ${this.sort.dir === 'asc' ? 'ascending' : 'descending'}` : ''}.`;
  }
}
