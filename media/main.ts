// The webview app for the Preview and Progress panels. No framework: the host owns the
// state and sends whole snapshots. The Progress panel lives in progress.ts (it updates its
// DOM in place); the Preview renders here. Every inbound message is validated with the protocol's zod schemas; text is
// only ever set through textContent (never innerHTML), so table data cannot inject markup.
import {
  parseHostToWebview,
  PanelKind,
  PanelState,
  type HostToWebview,
  type PreviewFilter,
  type PreviewPage,
  type PreviewSummary,
  type ResponseResult,
  type WebviewToHost,
} from '../src/protocol/messages';
import { ProgressView } from './progress';

interface VsCodeApi {
  postMessage(message: unknown): void;
  setState(state: unknown): void;
  getState(): unknown;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const root = document.getElementById('root') as HTMLElement;
const kindParse = PanelKind.safeParse(document.body.dataset.panel);
const REQUEST_TIMEOUT_MS = 60_000;

type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}

function render(...children: Child[]): void {
  root.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false && c !== ''));
}

// ---------------------------------------------------------------- requests

let nextId = 1;
const pending = new Map<string, { resolve: (r: ResponseResult) => void; reject: (e: Error) => void; timer: number }>();

function send(message: WebviewToHost): void {
  vscode.postMessage(message);
}

function request(make: (id: string) => WebviewToHost): Promise<ResponseResult> {
  const id = `r${nextId++}`;
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(() => {
      pending.delete(id);
      reject(new Error('The extension did not answer.'));
    }, REQUEST_TIMEOUT_MS);
    pending.set(id, { resolve, reject, timer });
    send(make(id));
  });
}

// ---------------------------------------------------------------- formatting

const nf = new Intl.NumberFormat('en-US');
function fmtNum(n: number | null): string {
  return n === null ? '–' : nf.format(Math.round(n));
}
function versions(from: number | null, to: number | null): string {
  if (to === null) return '–';
  if (from === null) return `snapshot v${to}`;
  // An up-to-date preview covers the empty range checkpoint+1..latest.
  return from > to ? `up to date at v${to}` : `v${from} → v${to}`;
}

// ---------------------------------------------------------------- preview panel

let preview: PreviewSummary | null = null;
let previewMapping = '';
let page: PreviewPage | null = null;
let filter: PreviewFilter = 'all';
let offset = 0;
let previewError: string | null = null;
let applied = false;
let busy = false;
const PAGE_SIZE = 100;

/** Remembers the table position: the serializer and a re-shown panel get it back. */
function savePreviewState(): void {
  vscode.setState({ panel: 'preview', mapping: previewMapping, filter, offset } satisfies PanelState);
}

function loadPage(): void {
  busy = true;
  savePreviewState();
  renderPreview();
  request((id) => ({ type: 'preview/page', id, filter, offset, limit: PAGE_SIZE }))
    .then((r) => {
      if (r.type === 'previewPage') { page = r.page; previewError = null; }
    })
    .catch((e: Error) => { previewError = e.message; })
    .finally(() => { busy = false; renderPreview(); });
}

/** One table cell; update rows show `old → new` for changed columns and "·" for columns they leave alone. */
function previewCell(r: PreviewPage['rows'][number], i: number, column: PreviewPage['columns'][number]): HTMLElement {
  const cell = r.cells[i] ?? null;
  if (r.op === 'update' && r.changed) {
    if (r.changed.includes(column.name)) {
      const before = r.before?.[i] ?? null;
      return h('td', { class: 'changed', title: `${column.name}: ${before ?? 'NULL'} → ${cell ?? 'NULL'}` },
        h('span', { class: 'old' }, before ?? 'NULL'), ' → ', h('span', { class: 'new' }, cell ?? 'NULL'));
    }
    if (!column.isKey) return h('td', { class: 'same', title: 'unchanged' }, '·');
  }
  return h('td', { class: cell === null ? 'null' : '' }, cell ?? 'NULL');
}

function renderPreview(): void {
  const s = preview;
  if (!s) {
    render(
      h('section', { class: 'empty', 'data-testid': 'preview-empty' },
        h('h1', {}, previewMapping ? `Preview: ${previewMapping}` : 'Preview'),
        h('p', { class: 'muted' }, 'This preview is no longer available. Run "Delta Sync: Preview Changes" again.')),
    );
    return;
  }
  const tab = (f: PreviewFilter, label: string, n: number | null): HTMLElement => {
    const b = h('button', { class: f === filter ? 'tab selected' : 'tab', 'aria-pressed': String(f === filter), 'data-testid': `filter-${f}` }, n === null ? label : `${label} (${fmtNum(n)})`);
    b.addEventListener('click', () => { filter = f; offset = 0; loadPage(); });
    return b;
  };
  const action = (label: string, type: 'preview/apply' | 'preview/cancel' | 'preview/onBranch', cls: string, testid: string): HTMLElement => {
    const b = h('button', { class: cls, 'data-testid': testid }, label);
    if (busy || applied) b.setAttribute('disabled', '');
    b.addEventListener('click', () => {
      busy = true;
      renderPreview();
      request((id) => ({ type, id }))
        .then(() => { if (type === 'preview/apply') applied = true; })
        .catch((e: Error) => { previewError = e.message; })
        .finally(() => { busy = false; renderPreview(); });
    });
    return b;
  };
  const count = (label: string, n: number | undefined, cls: string, testid: string): HTMLElement =>
    h('div', { class: `count ${cls}` }, h('span', { class: 'value', 'data-testid': testid }, n === undefined ? '–' : fmtNum(n)), h('span', { class: 'label' }, label));
  const total = page?.total ?? null;
  const prev = h('button', { 'aria-label': 'Previous page' }, '‹ Previous');
  const next = h('button', { 'aria-label': 'Next page' }, 'Next ›');
  if (busy || offset === 0) prev.setAttribute('disabled', '');
  if (busy || !page || (total !== null ? offset + PAGE_SIZE >= total : page.rows.length < PAGE_SIZE)) next.setAttribute('disabled', '');
  prev.addEventListener('click', () => { offset = Math.max(0, offset - PAGE_SIZE); loadPage(); });
  next.addEventListener('click', () => { offset += PAGE_SIZE; loadPage(); });

  let table: HTMLElement = h('p', { class: 'muted' }, busy ? 'Loading…' : 'No rows.');
  if (page && page.rows.length > 0) {
    table = h('table', { 'data-testid': 'preview-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'op'), ...page.columns.map((c) => h('th', { scope: 'col', title: `${c.sourceType} → ${c.targetType ?? '?'}${c.isKey ? ' (key)' : ''}` }, c.name, c.isKey ? h('span', { class: 'key-badge' }, 'key') : null)))),
      h('tbody', {}, ...page.rows.map((r) => h('tr', { class: r.op },
        h('td', { class: 'op' }, r.op),
        ...page!.columns.map((c, i) => previewCell(r, i, c))))));
  }
  const mode = s.mode === 'initial' ? `initial load of snapshot v${s.toVersion}` : s.mode === 'incremental' ? `incremental: ${versions(s.fromVersion, s.toVersion)}` : versions(s.fromVersion, s.toVersion);
  render(
    h('header', {},
      h('h1', {}, `Preview: ${s.mapping}`),
      h('span', { class: 'muted', 'data-testid': 'preview-mode' }, `${s.sourceTable} → ${s.targetTable} · ${mode}`),
      h('span', { class: 'spacer' }),
      action('Apply', 'preview/apply', 'primary', 'apply'),
      s.onBranch ? action('Preview on Neon Branch', 'preview/onBranch', '', 'preview-on-branch') : null,
      action('Cancel', 'preview/cancel', '', 'cancel')),
    h('div', { class: 'counts', role: 'group', 'aria-label': 'Summary' },
      count('inserts', s.inserts, 'insert', 'count-insert'),
      count('updates', s.updates, 'update', 'count-update'),
      count('deletes', s.deletes, 'delete', 'count-delete'),
      count('unchanged', s.unchanged, 'unchanged', 'count-unchanged')),
    applied && h('div', { class: 'note', role: 'status', 'data-testid': 'applied' }, 'Applying: the Progress panel shows the run.'),
    s.targetMissing && h('details', { class: 'ddl' }, h('summary', {}, 'The target table does not exist yet: Apply creates it'), h('pre', {}, s.ddl ?? '')),
    h('nav', { class: 'tabs', 'aria-label': 'Filter rows' }, tab('all', 'All', s.inserts + s.updates + s.deletes), tab('insert', 'Inserts', s.inserts), tab('update', 'Updates', s.updates), tab('delete', 'Deletes', s.deletes)),
    previewError && h('div', { class: 'error', role: 'alert' }, previewError),
    h('div', { class: 'table-wrap' }, table),
    h('footer', {}, prev, h('span', { class: 'muted', 'data-testid': 'page-range' }, page ? `${fmtNum(page.rows.length === 0 ? 0 : offset + 1)}–${fmtNum(offset + page.rows.length)}${total !== null ? ` of ${fmtNum(total)}` : ''}` : ''), next),
  );
}

// ---------------------------------------------------------------- messages

let progress: ProgressView | undefined;
/** The Progress panel's view, built on its first message (it owns the page from then on). */
function progressView(): ProgressView {
  progress ??= new ProgressView(root, { request });
  return progress;
}

function onMessage(msg: HostToWebview): void {
  switch (msg.type) {
    case 'init': {
      const state: PanelState = msg.state;
      const savedRaw: unknown = vscode.getState();
      vscode.setState(state); // what the host's serializer receives after a reload
      if (state.panel === 'progress') {
        progressView().init(msg.progress, msg.history);
      } else {
        // A re-shown or restored panel goes back to where the user was in the same mapping.
        const saved = PanelState.safeParse(savedRaw);
        const same = saved.success && saved.data.panel === 'preview' && saved.data.mapping === state.mapping ? saved.data : undefined;
        previewMapping = state.mapping;
        preview = msg.preview;
        page = null;
        filter = same?.filter ?? 'all';
        offset = same?.offset ?? 0;
        if (preview) loadPage();
        else renderPreview();
      }
      return;
    }
    case 'history':
      progressView().setHistory(msg.history);
      return;
    case 'progress':
      progressView().setProgress(msg.snapshot);
      return;
    case 'response': {
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      window.clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(msg.error.hint ? `${msg.error.message} ${msg.error.hint}` : msg.error.message));
      return;
    }
  }
}

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const msg = parseHostToWebview(event.data);
  if (!msg) {
    console.warn('Delta Sync: dropped an off-protocol message');
    return;
  }
  onMessage(msg);
});

if (kindParse.success) {
  render(h('p', { class: 'muted' }, 'Loading…'));
  send({ type: 'ready', panel: kindParse.data });
} else {
  render(h('p', { class: 'error' }, 'Unknown panel.'));
}
