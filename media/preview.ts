// The Preview panel: a summary, the pre-apply warnings, and the plan's rows in the grid.
// The page is built once per plan and then updated in place (counts, tabs, status, grid
// rows), so keyboard focus stays where the user left it across page loads.
import type { PanelState, PreviewFilter, PreviewPage, PreviewSummary, ResponseResult, WebviewToHost } from '../src/protocol/messages';
import { Grid } from './grid';
import type { GridColumn, GridRow } from './grid';

export interface PreviewHost {
  request(make: (id: string) => WebviewToHost): Promise<ResponseResult>;
  setState(state: PanelState): void;
}

const nf = new Intl.NumberFormat('en-US');
const fmt = (n: number): string => nf.format(n);
const NUMERIC_TYPES = /^(long|integer|short|byte|float|double|decimal)/;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** The range as the user thinks of it: from the checkpoint (the version the target holds) to the version applied. */
function versions(from: number | null, to: number): string {
  if (from === null) return `snapshot v${to}`;
  return from > to ? `up to date at v${to}` : `checkpoint v${from - 1} → v${to}`;
}

/** The op column's width: "unchanged" (bold, the longest op) reads in full, not "uncha…". */
const OP_WIDTH = 100;

/** The grid's view of a page: op and the key columns frozen at the left. */
export function gridOf(page: PreviewPage): { columns: GridColumn[]; rows: GridRow[] } {
  const order = [...page.columns.keys()].sort((a, b) => Number(page.columns[b]?.isKey) - Number(page.columns[a]?.isKey));
  const columns: GridColumn[] = [
    { key: '__op', label: 'op', frozen: true, width: OP_WIDTH, title: 'What applying does to the row' },
    ...order.map((i) => {
      const c = page.columns[i] as PreviewPage['columns'][number];
      return { key: c.name, label: c.name, frozen: c.isKey, numeric: NUMERIC_TYPES.test(c.sourceType), title: `${c.sourceType} → ${c.targetType ?? '?'}${c.isKey ? ' (key)' : ''}`, ...(c.isKey ? { badge: 'key' } : {}) };
    }),
  ];
  const rows: GridRow[] = page.rows.map((r) => ({
    cls: r.op,
    cells: [
      { text: r.op },
      ...order.map((i) => {
        const c = page.columns[i] as PreviewPage['columns'][number];
        const text = r.cells[i] ?? null;
        if ((r.op === 'update' || r.op === 'unchanged') && r.changed) {
          if (r.changed.includes(c.name)) return { text, before: r.before?.[i] ?? null, changed: true };
          if (!c.isKey) return { text: null, unknown: true };
        }
        return { text };
      }),
    ],
  }));
  return { columns, rows };
}

/** A row as JSON: op, the values, and for updates the values before. */
export function rowJson(page: PreviewPage, index: number): string {
  const r = page.rows[index];
  if (!r) return '{}';
  const values: Record<string, string | null> = {};
  const before: Record<string, string | null> = {};
  page.columns.forEach((c, i) => {
    if (r.op === 'update' && r.changed && !r.changed.includes(c.name) && !c.isKey) return;
    values[c.name] = r.cells[i] ?? null;
    if (r.op === 'update' && r.changed?.includes(c.name)) before[c.name] = r.before?.[i] ?? null;
  });
  return JSON.stringify(r.op === 'update' ? { op: r.op, values, before } : { op: r.op, values }, null, 2);
}

/**
 * User Timing marks (performance.mark, visible in the webview's developer tools): when the
 * counts of a plan were rendered, when its first page of rows was put in the grid, and
 * the frame after that was painted. The end-to-end test reads them to print the 200,000-
 * change preview's "counts -> first page" time without racing the page.
 */
export const PREVIEW_MARKS = {
  counts: 'delta-sync:preview-counts',
  firstPage: 'delta-sync:preview-first-page',
  firstPagePainted: 'delta-sync:preview-first-page-painted',
} as const;

export class PreviewView {
  private summary: PreviewSummary | null = null;
  private mapping = '';
  private page: PreviewPage | null = null;
  private filter: PreviewFilter = 'all';
  private offset = 0;
  private search = '';
  private pageSize = 200;
  private busy = false;
  private applied = false;
  private acknowledged = false;
  /** Row to focus once its page arrives (Go to row). */
  private pendingRow: number | null = null;
  private loadSeq = 0;
  /** The first page after the latest counts has been marked (see PREVIEW_MARKS). */
  private firstPageMarked = false;

  private readonly grid: Grid;
  // Parts updated in place.
  private readonly title = el('h1');
  private readonly mode = el('span', { class: 'muted', 'data-testid': 'preview-mode' });
  private readonly applyBtn = el('button', { class: 'primary', 'data-testid': 'apply' }, 'Apply');
  private readonly branchBtn = el('button', { 'data-testid': 'preview-on-branch' }, 'Preview on Neon Branch');
  private readonly cancelBtn = el('button', { 'data-testid': 'cancel' }, 'Cancel');
  private readonly copyConnBtn = el('button', { 'data-testid': 'copy-connection', title: 'Copy the branch\'s connection string (with its password) to point your app or psql at it' }, 'Copy Connection String');
  private readonly branchInfo = el('section', { class: 'branch-info', 'aria-label': 'Preview branch', 'data-testid': 'branch-info', hidden: '' });
  private readonly versionSelect = el('select', { 'data-testid': 'version-select', 'aria-label': 'Sync up to version', title: 'Preview and apply up to this version of the Delta table' });
  private readonly versionLabel = el('label', { class: 'version-pick' }, 'Up to ', this.versionSelect);
  private readonly counts = el('div', { class: 'counts', role: 'group', 'aria-label': 'Summary' });
  private readonly warnings = el('section', { class: 'warnings', role: 'region', 'aria-label': 'Problems found before applying', 'data-testid': 'preview-warnings' });
  private readonly ackBox = el('input', { type: 'checkbox', id: 'ack', 'data-testid': 'acknowledge' });
  private readonly ddl = el('details', { class: 'ddl' });
  private readonly alterations = el('details', { class: 'ddl alterations' });
  private readonly autoNote = el('p', { class: 'auto-mode muted', 'data-testid': 'preview-auto', hidden: '' });
  private readonly tabs = el('div', { class: 'tabs', role: 'toolbar', 'aria-label': 'Filter rows' });
  private readonly searchBox = el('input', { type: 'search', placeholder: 'Search key or value', 'aria-label': 'Search rows by key or value', 'data-testid': 'search' });
  private readonly gotoBox = el('input', { type: 'number', min: '1', placeholder: 'Row', 'aria-label': 'Go to row number', 'data-testid': 'goto-row', class: 'goto' });
  private readonly copyBtn = el('button', { 'data-testid': 'copy-row', title: 'Copy the focused row as JSON (Ctrl+Shift+C in the grid)' }, 'Copy Row');
  private readonly copySqlBtn = el('button', { 'data-testid': 'copy-sql', title: 'Copy the focused row as the SQL statement that applies it to the target (Ctrl+Alt+C in the grid)' }, 'Copy as SQL');
  private readonly exportBtn = el('button', { 'data-testid': 'export-csv', title: 'Save every row of this filter as CSV' }, 'Export CSV');
  private readonly errorBox = el('div', { class: 'error', role: 'alert', hidden: '' });
  private readonly status = el('div', { class: 'sr-status muted', role: 'status', 'aria-live': 'polite', 'data-testid': 'preview-status' });
  private readonly note = el('div', { class: 'note', role: 'status', hidden: '', 'data-testid': 'applied' }, 'Applying: the Progress panel shows the run.');
  private readonly prevBtn = el('button', { 'aria-label': 'Previous page' }, '‹ Previous');
  private readonly nextBtn = el('button', { 'aria-label': 'Next page' }, 'Next ›');
  private readonly range = el('span', { class: 'muted', 'data-testid': 'page-range' });
  private readonly pageBox = el('input', { type: 'number', min: '1', 'aria-label': 'Page number', 'data-testid': 'goto-page', class: 'goto' });
  private readonly pages = el('span', { class: 'muted' });
  private readonly empty = el('p', { class: 'muted', hidden: '' }, 'No rows.');

  constructor(private readonly root: HTMLElement, private readonly host: PreviewHost) {
    this.grid = new Grid({
      label: 'Planned changes',
      onCopyRow: (i) => this.copyRow(i),
      onCopySql: (i) => this.copySql(i),
      onStatus: (t) => this.say(t),
      onColumnsChange: () => this.savePosition(),
    });
    this.grid.element.setAttribute('data-testid', 'preview-table');
    this.applyBtn.addEventListener('click', () => this.enabled(this.applyBtn) && this.act('preview/apply'));
    this.branchBtn.addEventListener('click', () => this.enabled(this.branchBtn) && this.act('preview/onBranch'));
    this.cancelBtn.addEventListener('click', () => this.enabled(this.cancelBtn) && this.act('preview/cancel'));
    this.copyConnBtn.addEventListener('click', () => {
      this.host
        .request((id) => ({ type: 'preview/copyConnection', id }))
        .then(() => this.say('Copied the branch\'s connection string (it holds the role\'s password).'))
        .catch((e: Error) => this.showError(e.message));
    });
    this.versionSelect.addEventListener('change', () => {
      const v = Number(this.versionSelect.value);
      if (!Number.isInteger(v) || !this.summary || v === this.summary.toVersion || this.busy) return;
      this.busy = true;
      this.updateActions();
      this.say(`Computing the plan up to version ${fmt(v)}…`);
      // The new plan is another list of rows: it opens at the first page of All changes
      // (the init the host sends restores the saved position, which would otherwise be a
      // page, or a filter tab, of the old plan: past the end of a smaller one). The search stays.
      const was = { filter: this.filter, offset: this.offset };
      this.filter = 'all';
      this.offset = 0;
      this.savePosition();
      // The host answers, then sends a fresh init describing the new plan.
      this.host
        .request((id) => ({ type: 'preview/version', id, toVersion: v }))
        .catch((e: Error) => {
          this.showError(e.message);
          if (this.summary) this.versionSelect.value = String(this.summary.toVersion);
          // The old plan stays, on the page it shows.
          this.filter = was.filter;
          this.offset = was.offset;
          this.savePosition();
        })
        .finally(() => {
          this.busy = false;
          this.updateActions();
        });
    });
    this.ackBox.addEventListener('change', () => {
      this.acknowledged = this.ackBox.checked;
      this.updateActions();
    });
    let searchTimer = 0;
    this.searchBox.addEventListener('input', () => {
      window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(() => {
        this.search = this.searchBox.value.trim().slice(0, 200);
        this.offset = 0;
        this.load(true);
      }, 300);
    });
    this.gotoBox.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      const n = Math.floor(Number(this.gotoBox.value));
      const total = this.page?.total ?? null;
      if (!Number.isFinite(n) || n < 1 || (total !== null && n > total)) {
        this.say(total === null ? 'No such row.' : `Rows go from 1 to ${fmt(total)}.`);
        return;
      }
      this.pendingRow = n - 1;
      const pageStart = Math.floor((n - 1) / this.pageSize) * this.pageSize;
      if (this.page && pageStart === this.offset) this.revealPending();
      else {
        this.offset = pageStart;
        this.load(false);
      }
    });
    this.pageBox.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      const n = Math.floor(Number(this.pageBox.value));
      const last = this.lastPage();
      if (!Number.isFinite(n) || n < 1 || (last !== null && n > last)) {
        this.say(last === null ? 'No such page.' : `Pages go from 1 to ${fmt(last)}.`);
        return;
      }
      this.offset = (n - 1) * this.pageSize;
      this.load(true);
    });
    this.prevBtn.addEventListener('click', () => {
      if (!this.enabled(this.prevBtn)) return;
      this.offset = Math.max(0, this.offset - this.pageSize);
      this.load(true);
    });
    this.nextBtn.addEventListener('click', () => {
      if (!this.enabled(this.nextBtn)) return;
      this.offset += this.pageSize;
      this.load(true);
    });
    this.copyBtn.addEventListener('click', () => {
      const i = this.grid.activeRow();
      if (i !== undefined) this.copyRow(i);
    });
    this.copySqlBtn.addEventListener('click', () => {
      const i = this.grid.activeRow();
      if (i !== undefined) this.copySql(i);
    });
    this.exportBtn.addEventListener('click', () => {
      this.host
        .request((id) => ({ type: 'preview/exportCsv', id, filter: this.filter, ...(this.search ? { search: this.search } : {}) }))
        .then((r) => {
          if (r.type === 'exported') this.say(r.file ? `Saved ${fmt(r.rows)} rows to ${r.file}.` : 'Export cancelled.');
        })
        .catch((e: Error) => this.showError(e.message));
    });
  }

  /** A (re)started preview: builds the page once; later updates touch only what changed. */
  init(mapping: string, summary: PreviewSummary | null, pageSize: number | undefined, saved: { filter?: PreviewFilter; offset?: number; search?: string; hidden?: string[] } | undefined): void {
    this.grid.setHidden(saved?.hidden ?? []);
    this.mapping = mapping;
    this.summary = summary;
    this.pageSize = pageSize ?? this.pageSize;
    this.page = null;
    this.filter = saved?.filter ?? 'all';
    this.offset = saved?.offset ?? 0;
    this.search = saved?.search ?? '';
    this.searchBox.value = this.search;
    this.applied = summary?.applied !== undefined;
    this.acknowledged = false;
    this.ackBox.checked = false;
    if (!summary) {
      this.root.replaceChildren(
        el('section', { class: 'empty', 'data-testid': 'preview-empty' },
          el('h1', {}, mapping ? `Preview: ${mapping}` : 'Preview'),
          el('p', { class: 'muted' }, 'This preview is no longer available. Run "Delta Sync: Preview Changes" again.')),
      );
      return;
    }
    document.body.classList.add('preview-layout');
    // The page has its own status line; a live root would read the whole grid out on each page.
    this.root.removeAttribute('aria-live');
    const branch = summary.branch;
    this.title.textContent = branch ? `Preview on branch ${branch.name}: ${summary.mapping}` : `Preview: ${summary.mapping}`;
    this.applyBtn.textContent = branch ? `Apply to ${branch.parent}` : 'Apply';
    this.cancelBtn.textContent = branch ? 'Discard Branch' : 'Cancel';
    this.note.textContent = branch ? `Applying to ${branch.parent}: the notification shows the progress.` : 'Applying: the Progress panel shows the run.';
    this.branchInfo.hidden = !branch;
    this.branchInfo.replaceChildren(...(branch ? [
      el('p', {}, `The sync ran on preview branch `, el('strong', {}, branch.name), ` (a copy of ${branch.parent}): ${branch.ran}. The rows below are what Apply to ${branch.parent} will change.`),
      el('p', { class: 'connection' }, el('code', { 'data-testid': 'branch-connection' }, branch.connection), ' ', this.copyConnBtn),
    ] : []));
    const mode = summary.mode === 'initial' ? `initial load of snapshot v${summary.toVersion}` : summary.mode === 'repair' ? `repair by checksums to snapshot v${summary.toVersion}` : summary.mode === 'incremental' ? `incremental: ${versions(summary.fromVersion, summary.toVersion)}` : versions(summary.fromVersion, summary.toVersion);
    this.mode.textContent = `${summary.sourceTable} → ${summary.targetTable} · ${mode}`;
    this.renderCounts(summary);
    performance.mark(PREVIEW_MARKS.counts);
    this.firstPageMarked = false;
    this.renderWarnings(summary);
    // An applied record: the table exists now (the note was true of the plan, not after Apply).
    this.ddl.hidden = !summary.targetMissing || summary.applied !== undefined;
    this.ddl.replaceChildren(el('summary', {}, 'The target table does not exist yet: Apply creates it'), el('pre', {}, summary.ddl ?? ''));
    const alterations = summary.alterations ?? [];
    this.alterations.hidden = alterations.length === 0;
    this.alterations.replaceChildren(el('summary', {}, `Apply first runs ${alterations.length} schema change(s) on the table, in the same transaction as the rows`), el('pre', {}, alterations.map((s) => `${s};`).join('\n')));
    // Mapping mode "auto": which path Apply takes, and why (the rows are the same either way).
    this.autoNote.hidden = summary.auto === undefined;
    this.autoNote.textContent = summary.auto ? `Mode auto: ${summary.auto.reason}.` : '';
    this.renderTabs(summary);
    this.renderVersions(summary);
    this.note.textContent = summary.applied
      ? `Applied at ${summary.applied.at} up to v${fmt(summary.applied.toVersion)}: this panel is a read-only record of the plan (the Progress panel shows the run).`
      : 'Applying: the Progress panel shows the run.';
    if (summary.applied) this.title.textContent = `Applied: ${summary.mapping}`;
    const actions = el('div', { class: 'actions' }, this.applyBtn, ...(summary.onBranch && !branch ? [this.branchBtn] : []), this.cancelBtn);
    this.root.replaceChildren(
      el('header', {}, this.title, this.mode, ...(summary.versionRange ? [this.versionLabel] : []), el('span', { class: 'spacer' }), actions),
      this.branchInfo,
      this.counts,
      this.autoNote,
      this.warnings,
      this.note,
      this.ddl,
      this.alterations,
      el('div', { class: 'toolbar' }, this.tabs, el('span', { class: 'spacer' }), this.searchBox, this.gotoBox, this.grid.columnsButton, this.copyBtn, this.copySqlBtn, this.exportBtn),
      this.errorBox,
      this.status,
      this.empty,
      this.grid.element,
      el('footer', {}, this.prevBtn, this.range, this.nextBtn, el('span', { class: 'spacer' }), el('label', { class: 'muted' }, 'Page ', this.pageBox), this.pages),
    );
    this.updateActions();
    this.load(true);
  }

  private renderCounts(s: PreviewSummary): void {
    const count = (label: string, n: number | undefined, cls: string, testid: string): HTMLElement =>
      el('div', { class: `count ${cls}` }, el('span', { class: 'value', 'data-testid': testid }, n === undefined ? '–' : fmt(n)), el('span', { class: 'label' }, label));
    this.counts.replaceChildren(
      count('inserts', s.inserts, 'insert', 'count-insert'),
      count('updates', s.updates, 'update', 'count-update'),
      count('deletes', s.deletes, 'delete', 'count-delete'),
      count('unchanged', s.unchanged, 'unchanged', 'count-unchanged'),
      // Lineage guard: changes older than the target row, listed under Unchanged.
      ...(s.keptByGuard === undefined ? [] : [count('kept by guard', s.keptByGuard, 'unchanged', 'count-kept')]),
    );
  }

  private renderWarnings(s: PreviewSummary): void {
    const ws = s.warnings ?? [];
    this.warnings.hidden = ws.length === 0;
    if (ws.length === 0) return;
    const items = ws.map((w) => {
      const cols = [...new Set(w.samples.flatMap((r) => Object.keys(r)))];
      const table = el('table', { class: 'samples' },
        el('thead', {}, el('tr', {}, ...cols.map((c) => el('th', { scope: 'col' }, c)))),
        el('tbody', {}, ...w.samples.map((r) => el('tr', {}, ...cols.map((c) => {
          const v = r[c] ?? null;
          return el('td', v === null ? { class: 'null' } : {}, v ?? 'NULL');
        })))));
      return el('li', { 'data-check': w.check },
        el('strong', {}, `${fmt(w.count)} ${w.count === 1 ? 'row' : 'rows'}: `), w.message,
        w.samples.length > 0 ? el('details', {}, el('summary', {}, `First ${w.samples.length} of them`), table) : '');
    });
    const blocked = ws.some((w) => w.blocking);
    this.warnings.replaceChildren(
      el('h2', {}, blocked ? 'Applying this plan is refused' : 'Applying this plan would fail or change values'),
      el('ul', {}, ...items),
      blocked
        ? el('p', { class: 'muted' }, 'Apply stays off until the Delta table or the mapping is fixed and the preview is run again.')
        : el('label', { class: 'ack' }, this.ackBox, ' I understand: apply anyway'),
    );
  }

  /** The version picker: newest first, the plan's end selected (at most the 500 newest versions). */
  private renderVersions(s: PreviewSummary): void {
    const r = s.versionRange;
    if (!r) {
      this.versionSelect.replaceChildren();
      return;
    }
    const opts: HTMLOptionElement[] = [];
    for (let v = r.max; v >= Math.max(r.min, r.max - 499); v--) {
      const o = el('option', { value: String(v) }, `v${fmt(v)}${v === r.max ? ' (latest)' : ''}`);
      if (v === s.toVersion) o.selected = true;
      opts.push(o);
    }
    this.versionSelect.replaceChildren(...opts);
    this.versionSelect.value = String(s.toVersion);
  }

  private renderTabs(s: PreviewSummary): void {
    const tab = (f: PreviewFilter, label: string, n: number): HTMLElement => {
      const b = el('button', { class: 'tab', 'aria-pressed': String(f === this.filter), 'data-testid': `filter-${f}`, 'data-filter': f }, `${label} (${fmt(n)})`);
      b.addEventListener('click', () => {
        if (this.filter === f) return;
        this.filter = f;
        this.offset = 0;
        for (const t of this.tabs.querySelectorAll('button')) t.setAttribute('aria-pressed', String(t.dataset.filter === f));
        this.load(true);
      });
      return b;
    };
    this.tabs.replaceChildren(
      // Rows kept by the lineage guard are listed under All changes and Unchanged.
      tab('all', 'All changes', s.inserts + s.updates + s.deletes + (s.keptByGuard ?? 0)), tab('insert', 'Inserts', s.inserts), tab('update', 'Updates', s.updates), tab('delete', 'Deletes', s.deletes),
      ...(s.unchanged || s.keptByGuard ? [tab('unchanged', 'Unchanged', (s.unchanged ?? 0) + (s.keptByGuard ?? 0))] : []),
    );
  }

  /**
   * Buttons that may hold focus are never `disabled` (a disabled button drops focus to the
   * body): they get aria-disabled and ignore clicks. Apply under unacknowledged warnings is
   * truly disabled; focus is on the checkbox then.
   */
  private updateActions(): void {
    const blocked = (this.summary?.warnings ?? []).some((w) => w.blocking);
    const needsAck = blocked || ((this.summary?.warnings ?? []).length > 0 && !this.acknowledged);
    const off = (b: HTMLButtonElement, v: boolean): void => {
      if (v) b.setAttribute('aria-disabled', 'true');
      else b.removeAttribute('aria-disabled');
    };
    for (const b of [this.applyBtn, this.branchBtn, this.cancelBtn]) off(b, this.applied || (this.busy && b !== this.cancelBtn));
    // A record (applied) pages, searches and picks nothing: the plan is gone.
    const record = this.summary?.applied !== undefined;
    this.versionSelect.disabled = this.applied || this.busy;
    for (const input of [this.searchBox, this.gotoBox, this.pageBox]) input.disabled = record;
    for (const t of this.tabs.querySelectorAll('button')) t.disabled = record;
    this.applyBtn.disabled = needsAck && !this.applied;
    this.applyBtn.title = blocked ? 'Refused: the sync would fail on the rows listed above' : needsAck ? 'Tick "I understand" under the problems first' : 'Apply exactly this plan to the target';
    const total = this.page?.total ?? null;
    off(this.prevBtn, record || this.busy || this.offset === 0);
    off(this.nextBtn, record || this.busy || !this.page || (total !== null ? this.offset + this.pageSize >= total : this.page.rows.length < this.pageSize));
    this.note.hidden = !this.applied;
  }

  private enabled(b: HTMLButtonElement): boolean {
    return !b.disabled && b.getAttribute('aria-disabled') !== 'true';
  }

  private lastPage(): number | null {
    const total = this.page?.total ?? null;
    return total === null ? null : Math.max(1, Math.ceil(total / this.pageSize));
  }

  private savePosition(): void {
    this.host.setState({ panel: 'preview', mapping: this.mapping, filter: this.filter, offset: this.offset, ...(this.search ? { search: this.search } : {}), ...(this.grid.hiddenColumns().length ? { hidden: this.grid.hiddenColumns() } : {}) });
  }

  /** Takes the served page's filter, offset and search as the view's position (saved when it moved). */
  private showing(p: PreviewPage): { offset: number; search: string } {
    const search = p.search ?? '';
    if (p.offset !== this.offset || p.filter !== this.filter || search !== this.search) {
      this.offset = p.offset;
      this.filter = p.filter;
      this.search = search;
      this.searchBox.value = search;
      for (const t of this.tabs.querySelectorAll('button')) t.setAttribute('aria-pressed', String(t.dataset.filter === p.filter));
      this.savePosition();
    }
    return { offset: p.offset, search };
  }

  /** Asks the host for the page at `offset`; the range label changes only when the rows do. */
  private load(resetScroll: boolean): void {
    const seq = ++this.loadSeq;
    this.busy = true;
    this.savePosition();
    this.grid.element.setAttribute('aria-busy', 'true');
    this.say(`Loading rows ${fmt(this.offset + 1)}–${fmt(this.offset + this.pageSize)}…`);
    this.updateActions();
    const { filter, offset, search } = this;
    this.host
      .request((id) => ({ type: 'preview/page', id, filter, offset, limit: this.pageSize, ...(search ? { search } : {}) }))
      .then((r) => {
        if (seq !== this.loadSeq || r.type !== 'previewPage') return; // a newer request won
        this.page = r.page;
        this.hideError();
        // The position is the page the host served, which is the one asked for, except in an
        // applied record: it serves the one page it kept (PreviewPanel.keepAsRecord) to a view
        // restored at another saved offset. Labels and the saved state follow what is shown.
        const shown = this.showing(r.page);
        const g = gridOf(r.page);
        this.grid.setData(g.columns, g.rows, { resetScroll });
        const n = r.page.rows.length;
        const total = r.page.total;
        this.range.textContent = `${fmt(n === 0 ? 0 : shown.offset + 1)}–${fmt(shown.offset + n)}${total !== null ? ` of ${fmt(total)}` : ''}${shown.search ? ` matching "${shown.search}"` : ''}`;
        this.pageBox.value = String(Math.floor(shown.offset / this.pageSize) + 1);
        const last = this.lastPage();
        this.pages.textContent = last === null ? '' : `of ${fmt(last)}`;
        this.empty.hidden = n > 0;
        this.grid.element.hidden = n === 0;
        this.say(`Showing rows ${this.range.textContent}.`);
        this.revealPending();
        if (!this.firstPageMarked) {
          this.firstPageMarked = true;
          performance.mark(PREVIEW_MARKS.firstPage);
          // After the frame that paints it (a task after the next animation frame).
          requestAnimationFrame(() => setTimeout(() => performance.mark(PREVIEW_MARKS.firstPagePainted), 0));
        }
      })
      .catch((e: Error) => {
        if (seq !== this.loadSeq) return;
        this.showError(e.message);
        // The status line said "Loading rows …": it must not go on saying so.
        this.say(`Rows ${fmt(offset + 1)}–${fmt(offset + this.pageSize)} could not be loaded: ${e.message}`);
      })
      .finally(() => {
        if (seq !== this.loadSeq) return;
        this.busy = false;
        this.grid.element.removeAttribute('aria-busy');
        this.updateActions();
      });
  }

  private revealPending(): void {
    if (this.pendingRow === null || !this.page) return;
    const i = this.pendingRow - this.offset;
    this.pendingRow = null;
    if (i >= 0 && i < this.page.rows.length) this.grid.revealRow(i, true);
  }

  private act(type: 'preview/apply' | 'preview/cancel' | 'preview/onBranch'): void {
    this.busy = true;
    this.updateActions();
    this.host
      .request((id) => (type === 'preview/apply' ? { type, id, acknowledged: this.acknowledged } : { type, id }))
      .then(() => {
        if (type === 'preview/apply') this.applied = true;
      })
      .catch((e: Error) => this.showError(e.message))
      .finally(() => {
        this.busy = false;
        this.updateActions();
      });
  }

  private copyRow(index: number): void {
    if (!this.page) return;
    const text = rowJson(this.page, index);
    this.host
      .request((id) => ({ type: 'preview/copy', id, text }))
      .then(() => this.say(`Copied row ${fmt(this.offset + index + 1)} as JSON.`))
      .catch((e: Error) => this.showError(e.message));
  }

  private copySql(index: number): void {
    const row = this.page?.rows[index];
    if (!row) return;
    const n = this.offset + index + 1;
    this.host
      .request((id) => ({ type: 'preview/copySql', id, row }))
      .then((r) => {
        if (r.type === 'copied') this.say(`Copied row ${fmt(n)} as SQL: ${r.text.length > 300 ? `${r.text.slice(0, 300)}…` : r.text}`);
      })
      .catch((e: Error) => this.showError(e.message));
  }

  private say(text: string): void {
    this.status.textContent = text;
  }

  private showError(message: string): void {
    this.errorBox.textContent = message;
    this.errorBox.hidden = false;
  }

  private hideError(): void {
    this.errorBox.hidden = true;
    this.errorBox.textContent = '';
  }
}
