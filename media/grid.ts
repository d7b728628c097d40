// A small data grid for the webviews (Preview today; Show Rows, Describe, History and Dry
// Run can use it too). Written here rather than taken from a library: the grids that
// virtualise well (AG Grid, Tabulator, SlickGrid) are 150-900 KB, style themselves and
// need CSP exceptions (inline styles through style attributes are fine, eval is not, but
// their themes fight VS Code's variables); this needs one page of rows, VS Code colours and
// the ARIA grid pattern, in about 400 lines.
//
// - Rows are rendered for the visible window only (absolute rows in one scroll area that
//   also scrolls horizontally; the header is sticky), so a page of 1,000 rows costs ~30 DOM rows.
// - Frozen columns (key and op) stay at the left (position: sticky).
// - Cells are truncated; Enter, F2 or a double click opens a detail popover with the whole
//   value, and for a changed value the old and new text with the differing middle marked.
// - Column widths are resizable (drag the header edge; Alt+Left/Right on a header).
// - Sorting a column sorts the rows shown (numbers as numbers); the host pages the data.
// - Keyboard: the ARIA grid pattern with a roving tabindex (one cell is tabbable),
//   arrows, Home/End, Ctrl+Home/End, PageUp/PageDown; Ctrl+Shift+C copies the row.
// - Updates keep the DOM and the focus: setData replaces the rows and keeps the active
//   cell when it still exists; nothing else in the page is rebuilt.
// Text is only ever set through textContent, so data cannot inject markup.

export interface GridColumn {
  key: string;
  label: string;
  /** Tooltip of the header (types, key). */
  title?: string;
  /** Kept at the left when scrolling sideways. */
  frozen?: boolean;
  /** Sorts as numbers, right-aligned. */
  numeric?: boolean;
  /** Initial width in px. */
  width?: number;
  badge?: string;
}

export interface GridCell {
  /** null is SQL NULL. */
  text: string | null;
  /** Changed value: the text before (shown old → new). */
  before?: string | null;
  changed?: boolean;
  /** A value the data does not carry (an update's untouched column). */
  unknown?: boolean;
}

export interface GridRow {
  cls?: string;
  cells: GridCell[];
}

export interface GridOptions {
  label: string;
  rowHeight?: number;
  /** Ctrl+Shift+C or the toolbar: the row at this index of the data given to setData. */
  onCopyRow?(index: number): void;
  /** Ctrl+Alt+C: the row as SQL (views that can write it). */
  onCopySql?(index: number): void;
  /** Text for the page's aria-live status (sorting, copied, ...). */
  onStatus?(text: string): void;
  /**
   * Sorting by the host (Show Rows sorts the whole table with SQL): the grid shows the
   * order asked and calls this instead of sorting the rows it has.
   */
  onSort?(column: string, dir: 'asc' | 'desc' | null): void;
  /** The user hid or showed columns (keys of the hidden ones): the view persists them for the panel's life. */
  onColumnsChange?(hidden: string[]): void;
}

const OVERSCAN = 6;
const MIN_WIDTH = 48;
const MAX_INITIAL_WIDTH = 360;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Numeric comparison for decimal/integer text of any length (no float rounding for big values). */
export function compareNumericText(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  if (Number.isNaN(na) || Number.isNaN(nb)) return Number.isNaN(na) ? (Number.isNaN(nb) ? 0 : 1) : -1;
  // Equal as doubles: compare exactly (sign, integer digits, then text).
  const neg = (s: string): boolean => s.startsWith('-');
  if (neg(a) !== neg(b)) return neg(a) ? -1 : 1;
  const [ia = '', fa = ''] = a.replace('-', '').split('.');
  const [ib = '', fb = ''] = b.replace('-', '').split('.');
  const ai = ia.replace(/^0+/, '');
  const bi = ib.replace(/^0+/, '');
  let c = ai.length - bi.length || (ai < bi ? -1 : ai > bi ? 1 : 0);
  if (c === 0) {
    const len = Math.max(fa.length, fb.length);
    const x = fa.padEnd(len, '0');
    const y = fb.padEnd(len, '0');
    c = x < y ? -1 : x > y ? 1 : 0;
  }
  return neg(a) ? -c : c;
}

/** The common prefix and suffix of two texts, so a popover can mark only what differs. */
export function diffMiddle(a: string, b: string): { prefix: number; suffixA: number; suffixB: number } {
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  let s = 0;
  while (s < a.length - p && s < b.length - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
  return { prefix: p, suffixA: a.length - s, suffixB: b.length - s };
}

/**
 * What a cell shows of a changed value: the differing middle of each side with `context`
 * characters around it, "…" where common text was cut. A long value changed near its end
 * would otherwise fill the cell with its struck-out old text and hide the new one. Short
 * values (both together under `fullUpTo` characters) are shown whole. The cell's label and
 * its popover keep both values whole.
 */
export function diffExcerpt(a: string, b: string, context = 6, fullUpTo = 40): [string, string] {
  if (a.length + b.length <= fullUpTo) return [a, b];
  const d = diffMiddle(a, b);
  const start = Math.max(0, d.prefix - context);
  const endA = Math.min(a.length, d.suffixA + context);
  const endB = Math.min(b.length, d.suffixB + context);
  const lead = start > 0 ? '…' : '';
  return [`${lead}${a.slice(start, endA)}${endA < a.length ? '…' : ''}`, `${lead}${b.slice(start, endB)}${endB < b.length ? '…' : ''}`];
}

/** The old and new text a changed cell shows (NULL whole; two texts as their excerpt). */
function changedTexts(cell: { before?: string | null; text: string | null }): [string, string] {
  return typeof cell.before === 'string' && cell.text !== null ? diffExcerpt(cell.before, cell.text) : [cell.before ?? 'NULL', cell.text ?? 'NULL'];
}

export class Grid {
  readonly element: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly header: HTMLElement;
  private readonly body: HTMLElement;
  private readonly rowHeight: number;
  /** What setData gave; `columns` and `rows` are the visible projection of it. */
  private allColumns: GridColumn[] = [];
  private allRows: GridRow[] = [];
  private readonly hidden = new Set<string>();
  private readonly widthOf = new Map<string, number>();
  /** "Columns" button: opens the picker that hides and shows columns (views put it in their toolbar). */
  readonly columnsButton: HTMLButtonElement;
  private picker: HTMLElement | null = null;
  private columns: GridColumn[] = [];
  private widths: number[] = [];
  private rows: GridRow[] = [];
  /** Display order: indexes into `rows`. */
  private order: number[] = [];
  private sort: { col: number; dir: 1 | -1 } | null = null;
  private readonly rendered = new Map<number, HTMLElement>();
  /** The active cell (display row, column): the one cell with tabindex 0. */
  private active = { row: 0, col: 0 };
  private popover: HTMLElement | null = null;
  private frame = 0;

  constructor(private readonly opts: GridOptions) {
    this.rowHeight = opts.rowHeight ?? 26;
    this.element = el('div', 'grid');
    this.element.setAttribute('role', 'grid');
    this.element.setAttribute('aria-label', opts.label);
    this.scroller = el('div', 'grid-scroll');
    this.header = el('div', 'grid-row grid-header');
    this.header.setAttribute('role', 'row');
    this.header.setAttribute('aria-rowindex', '1');
    this.body = el('div', 'grid-body');
    this.body.setAttribute('role', 'rowgroup');
    this.scroller.append(this.header, this.body);
    this.element.append(this.scroller);
    this.scroller.addEventListener('scroll', () => this.schedule());
    this.scroller.addEventListener('keydown', (e) => this.onKey(e));
    this.scroller.addEventListener('dblclick', (e) => {
      const cell = (e.target as HTMLElement).closest<HTMLElement>('[role=gridcell]');
      if (cell) this.openDetail(Number(cell.dataset.row), Number(cell.dataset.col));
    });
    this.scroller.addEventListener('click', (e) => {
      const cell = (e.target as HTMLElement).closest<HTMLElement>('[role=gridcell]');
      if (cell) this.setActive(Number(cell.dataset.row), Number(cell.dataset.col), true);
    });
    new ResizeObserver(() => this.schedule()).observe(this.scroller);
    this.columnsButton = el('button', 'grid-columns-button', 'Columns');
    this.columnsButton.setAttribute('aria-haspopup', 'dialog');
    this.columnsButton.setAttribute('aria-expanded', 'false');
    this.columnsButton.title = 'Hide or show columns';
    this.columnsButton.setAttribute('data-testid', 'columns-button');
    this.columnsButton.addEventListener('click', () => (this.picker ? this.closePicker(true) : this.openPicker()));
  }

  /** Hides these columns (by key) from now on, e.g. the ones a restored panel had hidden. */
  setHidden(keys: readonly string[]): void {
    this.hidden.clear();
    for (const k of keys) this.hidden.add(k);
    this.project(false);
  }

  /** Keys of the hidden columns. */
  hiddenColumns(): string[] {
    return [...this.hidden];
  }

  /**
   * New data. Columns with the same keys keep their widths; the active cell stays where it
   * was when that row still exists (so a page load does not throw focus away), else row 0.
   */
  setData(columns: GridColumn[], rows: GridRow[], opts: { resetScroll?: boolean } = {}): void {
    this.allColumns = columns;
    this.allRows = rows;
    columns.forEach((c, i) => {
      if (!this.widthOf.has(c.key)) this.widthOf.set(c.key, c.width ?? this.initialWidth(c, rows, i));
    });
    this.project(opts.resetScroll === true);
  }

  /** Puts the visible columns (and their cells) of the data into the grid. */
  private project(resetScroll: boolean): void {
    // Never hide every column: the grid would have no cell to hold focus.
    const keep = this.allColumns.map((c) => !this.hidden.has(c.key));
    if (!keep.some(Boolean) && keep.length > 0) keep[0] = true;
    const columns = this.allColumns.filter((_, i) => keep[i]);
    const rows = keep.every(Boolean) ? this.allRows : this.allRows.map((r) => ({ ...r, cells: r.cells.filter((_, i) => keep[i]) }));
    const opts = { resetScroll };
    const sameColumns = columns.length === this.columns.length && columns.every((c, i) => c.key === this.columns[i]?.key);
    const sortKey = this.sort ? this.columns[this.sort.col]?.key : undefined;
    this.widths = columns.map((c) => this.widthOf.get(c.key) ?? 100);
    if (!sameColumns) {
      // A sort survives hiding other columns; a new column set (another table) drops it.
      const at = sortKey === undefined ? -1 : columns.findIndex((c) => c.key === sortKey);
      this.sort = at >= 0 && this.sort ? { col: at, dir: this.sort.dir } : null;
    }
    this.columns = columns;
    this.rows = rows;
    this.order = rows.map((_, i) => i);
    if (this.sort && !this.opts.onSort) this.applySort();
    this.element.setAttribute('aria-rowcount', String(rows.length + 1));
    this.element.setAttribute('aria-colcount', String(columns.length));
    this.closeDetail(false);
    if (!sameColumns) this.renderHeader();
    this.applyWidths();
    this.body.style.height = `${rows.length * this.rowHeight}px`;
    // Focus in the grid moves back to the active cell; focus in the picker stays there.
    const hadFocus = this.element.contains(document.activeElement) && !this.picker?.contains(document.activeElement);
    this.active = { row: Math.min(this.active.row, Math.max(0, rows.length - 1)), col: Math.min(this.active.col, Math.max(0, columns.length - 1)) };
    if (opts.resetScroll) {
      this.scroller.scrollTop = 0;
      this.active.row = 0;
    }
    for (const r of this.rendered.values()) r.remove();
    this.rendered.clear();
    this.renderWindow();
    if (hadFocus) this.focusActive();
  }

  /** Scrolls to a row (index of the data) and makes it the active one; focuses it when asked. */
  revealRow(dataIndex: number, focus: boolean): void {
    const display = this.order.indexOf(dataIndex);
    if (display < 0) return;
    this.setActive(display, this.active.col, focus);
  }

  /** The data index of the active row, if any. */
  activeRow(): number | undefined {
    return this.order[this.active.row];
  }

  focus(): void {
    this.focusActive();
  }

  // ------------------------------------------------------------ rendering

  private initialWidth(c: GridColumn, rows: GridRow[], i: number): number {
    let chars = c.label.length + (c.badge ? c.badge.length + 3 : 0);
    for (const r of rows.slice(0, 50)) {
      const cell = r.cells[i];
      const t = cell ? (cell.changed ? changedTexts(cell).join(' → ') : (cell.text ?? 'NULL')) : '';
      chars = Math.max(chars, t.length);
    }
    // About 8.5 px a character in the editor font, plus the cell padding.
    return Math.max(MIN_WIDTH, Math.min(MAX_INITIAL_WIDTH, chars * 8.5 + 20));
  }

  private applyWidths(): void {
    this.element.style.setProperty('--grid-columns', this.widths.map((w) => `${w}px`).join(' '));
    this.element.style.setProperty('--grid-width', `${this.widths.reduce((a, b) => a + b, 0)}px`);
    // Frozen columns stick at the sum of the frozen widths before them.
    let left = 0;
    const lefts = this.columns.map((c, i) => {
      const at = left;
      if (c.frozen) left += this.widths[i] ?? 0;
      return at;
    });
    this.columns.forEach((c, i) => {
      if (c.frozen) this.element.style.setProperty(`--grid-left-${i}`, `${lefts[i]}px`);
    });
    // The scroller's scroll-padding: a cell scrolled into view (focus, arrows) stops right of
    // the frozen columns instead of under them.
    this.element.style.setProperty('--grid-frozen-width', `${left}px`);
  }

  private renderHeader(): void {
    this.header.replaceChildren(...this.columns.map((c, i) => {
      const th = el('div', `grid-cell grid-th${c.frozen ? ' frozen' : ''}${c.numeric ? ' num' : ''}`);
      th.setAttribute('role', 'columnheader');
      th.setAttribute('aria-colindex', String(i + 1));
      th.setAttribute('aria-sort', this.sort?.col === i ? (this.sort.dir === 1 ? 'ascending' : 'descending') : 'none');
      if (c.frozen) th.style.left = `var(--grid-left-${i})`;
      const b = el('button', 'grid-sort', c.label);
      b.title = `${c.title ?? c.label}. Sort; Alt+Left/Right resizes.`;
      b.tabIndex = -1;
      if (c.badge) b.append(el('span', 'key-badge', c.badge));
      b.addEventListener('click', () => this.toggleSort(i));
      b.addEventListener('keydown', (e) => {
        if (e.altKey && (e.key === 'ArrowLeft' || e.key === 'ArrowRight')) {
          e.preventDefault();
          e.stopPropagation();
          this.resize(i, (this.widths[i] ?? 100) + (e.key === 'ArrowLeft' ? -20 : 20));
        } else if (e.key === 'ArrowDown') {
          e.preventDefault();
          e.stopPropagation();
          this.setActive(0, i, true);
        }
      });
      const handle = el('div', 'grid-resize');
      handle.setAttribute('aria-hidden', 'true');
      handle.addEventListener('pointerdown', (e) => {
        e.preventDefault();
        const start = e.clientX;
        const w0 = this.widths[i] ?? 100;
        handle.setPointerCapture(e.pointerId);
        const move = (m: PointerEvent): void => this.resize(i, w0 + m.clientX - start);
        const up = (): void => {
          handle.removeEventListener('pointermove', move);
          handle.removeEventListener('pointerup', up);
        };
        handle.addEventListener('pointermove', move);
        handle.addEventListener('pointerup', up);
      });
      th.append(b, handle);
      return th;
    }));
  }

  private resize(col: number, width: number): void {
    this.widths[col] = Math.max(MIN_WIDTH, Math.round(width));
    const c = this.columns[col];
    if (c) this.widthOf.set(c.key, this.widths[col] as number);
    this.applyWidths();
  }

  // ------------------------------------------------------------ column picker

  private openPicker(): void {
    this.closeDetail(false);
    const pop = el('div', 'grid-popover grid-picker');
    pop.setAttribute('role', 'dialog');
    pop.setAttribute('aria-label', 'Columns to show');
    pop.setAttribute('data-testid', 'columns-picker');
    const head = el('div', 'grid-popover-head');
    const all = el('button', undefined, 'Show All');
    all.addEventListener('click', () => {
      this.hidden.clear();
      for (const box of pop.querySelectorAll<HTMLInputElement>('input[type=checkbox]')) box.checked = true;
      this.columnsChanged();
    });
    const close = el('button', undefined, 'Close');
    close.setAttribute('aria-label', 'Close (Escape)');
    close.addEventListener('click', () => this.closePicker(true));
    head.append(el('strong', undefined, 'Columns'), el('span', 'spacer'), all, close);
    const list = el('div', 'grid-picker-list');
    for (const c of this.allColumns) {
      const box = el('input');
      box.type = 'checkbox';
      box.checked = !this.hidden.has(c.key);
      box.setAttribute('data-column', c.label);
      box.addEventListener('change', () => {
        if (box.checked) this.hidden.delete(c.key);
        else if (this.allColumns.filter((x) => !this.hidden.has(x.key)).length > 1) this.hidden.add(c.key);
        else {
          box.checked = true;
          this.opts.onStatus?.('At least one column stays visible.');
          return;
        }
        this.columnsChanged();
      });
      const label = el('label');
      label.append(box, ` ${c.label}`, ...(c.badge ? [el('span', 'key-badge', c.badge)] : []));
      list.append(label);
    }
    pop.append(head, list);
    pop.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.closePicker(true);
      }
    });
    this.element.append(pop);
    this.picker = pop;
    this.columnsButton.setAttribute('aria-expanded', 'true');
    (list.querySelector('input') as HTMLInputElement | null)?.focus();
  }

  private columnsChanged(): void {
    this.project(false);
    const n = this.hidden.size;
    this.opts.onStatus?.(n === 0 ? 'All columns shown.' : `${n} ${n === 1 ? 'column' : 'columns'} hidden.`);
    this.opts.onColumnsChange?.([...this.hidden]);
  }

  private closePicker(refocus: boolean): void {
    if (!this.picker) return;
    this.picker.remove();
    this.picker = null;
    this.columnsButton.setAttribute('aria-expanded', 'false');
    if (refocus) this.columnsButton.focus();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderWindow();
    });
  }

  /** Renders the rows in view (plus a few), removes the others; rows already there stay. */
  private renderWindow(): void {
    const headerH = this.header.offsetHeight || this.rowHeight;
    const top = Math.max(0, this.scroller.scrollTop - headerH);
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - OVERSCAN);
    const last = Math.min(this.order.length - 1, Math.ceil((top + height) / this.rowHeight) + OVERSCAN);
    for (const [i, r] of this.rendered) {
      // The active row stays while it has focus, so a key press is never lost.
      if ((i < first || i > last) && !(i === this.active.row && r.contains(document.activeElement))) {
        r.remove();
        this.rendered.delete(i);
      }
    }
    for (let i = first; i <= last; i++) if (!this.rendered.has(i)) this.body.append(this.renderRow(i));
  }

  private renderRow(display: number): HTMLElement {
    const data = this.rows[this.order[display] as number] as GridRow;
    const row = el('div', `grid-row${data.cls ? ` ${data.cls}` : ''}`);
    row.setAttribute('role', 'row');
    row.setAttribute('aria-rowindex', String(display + 2));
    row.style.transform = `translateY(${display * this.rowHeight}px)`;
    row.style.height = `${this.rowHeight}px`;
    this.columns.forEach((c, i) => {
      const cell = data.cells[i] ?? { text: null };
      const td = el('div', `grid-cell${c.frozen ? ' frozen' : ''}${c.numeric ? ' num' : ''}`);
      td.setAttribute('role', 'gridcell');
      td.setAttribute('aria-colindex', String(i + 1));
      td.dataset.row = String(display);
      td.dataset.col = String(i);
      td.tabIndex = display === this.active.row && i === this.active.col ? 0 : -1;
      if (c.frozen) td.style.left = `var(--grid-left-${i})`;
      if (cell.unknown) {
        td.classList.add('same');
        td.textContent = '·';
        td.title = 'unchanged';
      } else if (cell.changed) {
        td.classList.add('changed');
        const [was, now] = changedTexts(cell);
        td.append(el('span', 'old', was), ' → ', el('span', 'new', now));
        td.setAttribute('aria-label', `${c.label}: ${cell.before ?? 'NULL'} changes to ${cell.text ?? 'NULL'}`);
      } else if (cell.text === null) {
        td.classList.add('null');
        td.textContent = 'NULL';
      } else {
        td.textContent = cell.text;
      }
      row.append(td);
    });
    this.rendered.set(display, row);
    return row;
  }

  // ------------------------------------------------------------ sorting

  private toggleSort(col: number): void {
    this.sort = this.sort?.col === col ? (this.sort.dir === 1 ? { col, dir: -1 } : null) : { col, dir: 1 };
    this.header.querySelectorAll('[role=columnheader]').forEach((th, i) => {
      th.setAttribute('aria-sort', this.sort?.col === i ? (this.sort.dir === 1 ? 'ascending' : 'descending') : 'none');
    });
    if (this.opts.onSort) {
      const c = this.columns[col];
      if (c) this.opts.onSort(c.key, this.sort ? (this.sort.dir === 1 ? 'asc' : 'desc') : null);
      return;
    }
    const activeData = this.order[this.active.row];
    this.order = this.rows.map((_, i) => i);
    if (this.sort) this.applySort();
    for (const r of this.rendered.values()) r.remove();
    this.rendered.clear();
    if (activeData !== undefined) this.active.row = Math.max(0, this.order.indexOf(activeData));
    this.renderWindow();
    const c = this.columns[col];
    this.opts.onStatus?.(this.sort && c ? `Rows of this page sorted by ${c.label}, ${this.sort.dir === 1 ? 'ascending' : 'descending'}` : 'Rows in plan order');
  }

  private applySort(): void {
    const s = this.sort;
    if (!s) return;
    const numeric = this.columns[s.col]?.numeric === true;
    const val = (i: number): string | null => this.rows[i]?.cells[s.col]?.text ?? null;
    this.order.sort((a, b) => {
      const x = val(a);
      const y = val(b);
      if (x === null || y === null) return x === y ? a - b : x === null ? 1 : -1; // NULLs last
      const c = numeric ? compareNumericText(x, y) : x.localeCompare(y);
      return c === 0 ? a - b : c * s.dir;
    });
  }

  // ------------------------------------------------------------ keyboard and focus

  private cellAt(row: number, col: number): HTMLElement | undefined {
    return this.rendered.get(row)?.children[col] as HTMLElement | undefined;
  }

  private setActive(row: number, col: number, focus: boolean): void {
    const r = Math.max(0, Math.min(this.order.length - 1, row));
    const c = Math.max(0, Math.min(this.columns.length - 1, col));
    const old = this.cellAt(this.active.row, this.active.col);
    if (old) old.tabIndex = -1;
    this.active = { row: r, col: c };
    // Into view: vertically by row, sideways unless the column is frozen.
    const headerH = this.header.offsetHeight || this.rowHeight;
    const y = r * this.rowHeight;
    if (y < this.scroller.scrollTop) this.scroller.scrollTop = y;
    else if (y + this.rowHeight + headerH > this.scroller.scrollTop + this.scroller.clientHeight) this.scroller.scrollTop = y + this.rowHeight + headerH - this.scroller.clientHeight;
    this.renderWindow();
    const cell = this.cellAt(r, c);
    if (cell) {
      cell.tabIndex = 0;
      if (focus) cell.focus({ preventScroll: true });
      // Sideways by hand: the browser's own scroll on focus would leave a cell under the
      // sticky frozen columns (it sees the whole scroller as the view).
      if (this.columns[c]?.frozen !== true) {
        const frozen = this.columns.reduce((sum, col, i) => sum + (col.frozen ? (this.widths[i] ?? 0) : 0), 0);
        const x = cell.offsetLeft;
        if (x - frozen < this.scroller.scrollLeft) this.scroller.scrollLeft = Math.max(0, x - frozen);
        else if (x + cell.offsetWidth > this.scroller.scrollLeft + this.scroller.clientWidth) this.scroller.scrollLeft = x + cell.offsetWidth - this.scroller.clientWidth;
      }
    }
  }

  private focusActive(): void {
    if (this.order.length === 0) {
      this.element.tabIndex = 0;
      this.element.focus();
      return;
    }
    this.setActive(this.active.row, this.active.col, true);
  }

  private onKey(e: KeyboardEvent): void {
    const cell = (e.target as HTMLElement).closest<HTMLElement>('[role=gridcell]');
    if (!cell) return;
    const { row, col } = this.active;
    const page = Math.max(1, Math.floor(this.scroller.clientHeight / this.rowHeight) - 1);
    const moves: Record<string, () => void> = {
      ArrowDown: () => this.setActive(row + 1, col, true),
      ArrowUp: () => (row === 0 ? (this.header.children[col]?.querySelector('button') as HTMLElement | null)?.focus() : this.setActive(row - 1, col, true)),
      ArrowRight: () => this.setActive(row, col + 1, true),
      ArrowLeft: () => this.setActive(row, col - 1, true),
      Home: () => this.setActive(e.ctrlKey ? 0 : row, 0, true),
      End: () => this.setActive(e.ctrlKey ? this.order.length - 1 : row, this.columns.length - 1, true),
      PageDown: () => this.setActive(row + page, col, true),
      PageUp: () => this.setActive(row - page, col, true),
      Enter: () => this.openDetail(row, col),
      F2: () => this.openDetail(row, col),
    };
    if (e.ctrlKey && e.altKey && (e.key === 'C' || e.key === 'c') && this.opts.onCopySql) {
      e.preventDefault();
      const data = this.order[row];
      if (data !== undefined) this.opts.onCopySql(data);
      return;
    }
    if (e.ctrlKey && e.shiftKey && (e.key === 'C' || e.key === 'c')) {
      e.preventDefault();
      const data = this.order[row];
      if (data !== undefined) this.opts.onCopyRow?.(data);
      return;
    }
    const m = moves[e.key];
    if (m) {
      e.preventDefault();
      m();
    }
  }

  // ------------------------------------------------------------ detail popover

  private openDetail(display: number, col: number): void {
    const data = this.rows[this.order[display] as number];
    const column = this.columns[col];
    const cell = data?.cells[col];
    if (!data || !column || !cell) return;
    this.closeDetail(false);
    const pop = el('div', 'grid-popover');
    pop.setAttribute('role', 'dialog');
    pop.setAttribute('aria-label', `Value of ${column.label}`);
    const head = el('div', 'grid-popover-head');
    head.append(el('strong', undefined, column.label), el('span', 'muted', column.title ?? ''));
    const close = el('button', undefined, 'Close');
    close.setAttribute('aria-label', 'Close (Escape)');
    close.addEventListener('click', () => this.closeDetail(true));
    head.append(el('span', 'spacer'), close);
    pop.append(head);
    if (cell.changed) {
      const before = cell.before ?? 'NULL';
      const after = cell.text ?? 'NULL';
      const d = diffMiddle(before, after);
      const block = (label: string, text: string, end: number, cls: string): HTMLElement => {
        const pre = el('pre', cls);
        pre.append(text.slice(0, d.prefix), el('mark', undefined, text.slice(d.prefix, end)), text.slice(end));
        const wrap = el('div');
        wrap.append(el('div', 'muted', `${label} (${text.length.toLocaleString('en-US')} characters)`), pre);
        return wrap;
      };
      pop.append(block('Before', before, d.suffixA, 'old'), block('After', after, d.suffixB, 'new'));
    } else {
      const text = cell.unknown ? '(not changed by this update)' : (cell.text ?? 'NULL');
      pop.append(el('div', 'muted', `${text.length.toLocaleString('en-US')} characters`), el('pre', undefined, text));
    }
    pop.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.closeDetail(true);
      }
    });
    this.element.append(pop);
    this.popover = pop;
    close.focus();
  }

  private closeDetail(refocus: boolean): void {
    if (!this.popover) return;
    this.popover.remove();
    this.popover = null;
    if (refocus) this.focusActive();
  }
}
