// Describe, History and Dry Run results: facts and read-only grids (the same Grid as the
// Preview and Show Rows). The host sends the whole report in `init`; a second report of
// the same panel replaces the page.
import type { PanelState, Report, ReportGrid, ResponseResult, WebviewToHost } from '../src/protocol/messages';
import { Grid } from './grid';
import type { GridColumn } from './grid';

export interface ReportHost {
  request(make: (id: string) => WebviewToHost): Promise<ResponseResult>;
  setState(state: PanelState): void;
}

const ROW_HEIGHT = 26;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** A report row as JSON keyed by column name (Ctrl+Shift+C in a report grid). */
export function reportRowJson(g: ReportGrid, index: number): string {
  const r = g.rows[index];
  if (!r) return '{}';
  return JSON.stringify(Object.fromEntries(g.columns.map((c, i) => [c.name, r[i] ?? null])), null, 2);
}

export class ReportView {
  private readonly status = el('div', { class: 'sr-status muted', role: 'status', 'aria-live': 'polite', 'data-testid': 'report-status' });

  constructor(private readonly root: HTMLElement, private readonly host: ReportHost) {}

  init(state: Extract<PanelState, { panel: 'report' }>, report: Report): void {
    this.host.setState(state);
    this.root.removeAttribute('aria-live');
    document.body.classList.remove('preview-layout');
    const facts = el('dl', { class: 'facts', 'data-testid': 'report-facts' });
    for (const f of report.facts) facts.append(el('div', { class: 'fact' }, el('dt', {}, f.label), el('dd', {}, f.value)));
    const parts: Node[] = [
      el('header', {}, el('h1', {}, report.title), ...(report.subtitle ? [el('span', { class: 'muted' }, report.subtitle)] : [])),
      ...(report.note ? [el('p', { class: 'note' }, report.note)] : []),
      facts,
      this.status,
    ];
    for (const g of report.grids) parts.push(this.section(g));
    this.root.replaceChildren(...parts);
  }

  private section(g: ReportGrid): HTMLElement {
    const heading = el('h2', {}, g.title);
    const sec = el('section', { class: 'report-grid', 'data-testid': `report-${g.id}` });
    if (g.rows.length === 0) {
      sec.append(heading, el('p', { class: 'muted' }, g.empty ?? 'No rows.'));
      return sec;
    }
    const grid = new Grid({
      label: g.title,
      onStatus: (t) => (this.status.textContent = t),
      onCopyRow: (i) => {
        this.host
          .request((id) => ({ type: 'preview/copy', id, text: reportRowJson(g, i) }))
          .then(() => (this.status.textContent = `Row ${i + 1} copied as JSON.`))
          .catch((e: Error) => (this.status.textContent = `Copy failed: ${e.message}`));
      },
    });
    const columns: GridColumn[] = g.columns.map((c, i) => ({ key: `${i}:${c.name}`, label: c.name, ...(c.title ? { title: c.title } : {}), ...(c.numeric ? { numeric: true } : {}), ...(c.frozen ? { frozen: true } : {}) }));
    // Tall enough for its rows up to 60% of the window; the grid scrolls past that.
    grid.element.style.height = `min(60vh, ${(g.rows.length + 1) * ROW_HEIGHT + 18}px)`;
    sec.append(el('div', { class: 'report-grid-head' }, heading, el('span', { class: 'spacer' }), grid.columnsButton), grid.element);
    if (g.more) sec.append(el('p', { class: 'muted' }, g.more));
    // After it is in the page, so the grid measures its viewport.
    requestAnimationFrame(() => grid.setData(columns, g.rows.map((r) => ({ cells: r.map((text) => ({ text })) }))));
    return sec;
  }
}
