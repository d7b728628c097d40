// The webview app for the Preview and Progress panels. No framework: the host owns the
// state and sends whole snapshots, so each render rebuilds a small DOM from the latest
// message. Every inbound message is validated with the protocol's zod schemas; text is
// only ever set through textContent (never innerHTML), so table data cannot inject markup.
import {
  parseHostToWebview,
  PanelKind,
  type HostToWebview,
  type PanelState,
  type PreviewFilter,
  type PreviewPage,
  type PreviewSummary,
  type ProgressSnapshot,
  type ResponseResult,
  type WebviewToHost,
} from '../src/protocol/messages';

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
function fmtDuration(seconds: number | null): string {
  if (seconds === null) return '–';
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
}
function versions(from: number | null, to: number | null): string {
  if (to === null) return '–';
  return from === null ? `snapshot v${to}` : `v${from} → v${to}`;
}

// ---------------------------------------------------------------- progress panel

let progress: ProgressSnapshot | null = null;
let stopError: string | null = null;

function renderProgress(): void {
  const s = progress;
  if (!s) {
    render(h('p', { class: 'muted' }, 'Waiting for the extension…'));
    return;
  }
  if (s.status === 'idle') {
    render(
      h('section', { class: 'empty', 'data-testid': 'progress-idle' },
        h('h1', {}, 'No sync is running'),
        h('p', { class: 'muted' }, 'Start one from the Mappings view: Preview Changes, Run Initial Load or Run Incremental Sync.')),
    );
    return;
  }
  const active = s.status === 'running' || s.status === 'stopping';
  const pct = s.totalRows ? Math.min(100, (s.rowsApplied / s.totalRows) * 100) : null;
  const stop = h('button', { class: 'danger', 'data-testid': 'stop' }, s.status === 'stopping' ? 'Stopping…' : 'Stop');
  if (!active || s.status === 'stopping') stop.setAttribute('disabled', '');
  stop.addEventListener('click', () => {
    stop.setAttribute('disabled', '');
    request((id) => ({ type: 'run/stop', id }))
      .then(() => { stopError = null; })
      .catch((e: Error) => { stopError = e.message; renderProgress(); });
  });
  const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' });
  const fill = h('div', { class: pct === null && active ? 'fill indeterminate' : 'fill' });
  if (pct !== null) {
    fill.style.width = `${pct.toFixed(1)}%`;
    bar.setAttribute('aria-valuenow', pct.toFixed(0));
  }
  bar.append(fill);
  const stat = (label: string, value: string): HTMLElement => h('div', { class: 'stat' }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
  render(
    h('header', {},
      h('h1', {}, s.mapping ?? 'Sync'),
      h('span', { class: `badge ${s.status}`, 'data-testid': 'status' }, s.status),
      h('span', { class: 'muted' }, [s.mode, s.phase].filter((x) => x).join(' · ')),
      h('span', { class: 'spacer' }),
      stop),
    bar,
    h('div', { class: 'stats' },
      stat('Versions', versions(s.fromVersion, s.toVersion)),
      stat('Committed', s.version === null ? '–' : `v${s.version}`),
      stat('Rows read', fmtNum(s.rowsRead)),
      stat('Rows applied', s.totalRows === null ? fmtNum(s.rowsApplied) : `${fmtNum(s.rowsApplied)} / ${fmtNum(s.totalRows)}`),
      stat('Rate', `${fmtNum(s.rowsPerSecond)} rows/s`),
      stat('ETA', fmtDuration(s.etaSeconds))),
    s.error && h('div', { class: 'error', role: 'alert' }, h('strong', {}, s.error.message), s.error.hint ? h('p', {}, s.error.hint) : null),
    stopError && h('div', { class: 'error', role: 'alert' }, stopError),
    s.warnings.length > 0 && h('details', { open: '' }, h('summary', {}, `Warnings (${s.warnings.length})`), h('ul', {}, ...s.warnings.map((w) => h('li', {}, w)))),
  );
}

// ---------------------------------------------------------------- preview panel

let preview: PreviewSummary | null = null;
let previewMapping = '';
let page: PreviewPage | null = null;
let filter: PreviewFilter = 'all';
let offset = 0;
let previewError: string | null = null;
let busy = false;
const PAGE_SIZE = 100;

function loadPage(): void {
  busy = true;
  renderPreview();
  request((id) => ({ type: 'preview/page', id, filter, offset, limit: PAGE_SIZE }))
    .then((r) => {
      if (r.type === 'previewPage') { page = r.page; previewError = null; }
    })
    .catch((e: Error) => { previewError = e.message; })
    .finally(() => { busy = false; renderPreview(); });
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
    const b = h('button', { class: f === filter ? 'tab selected' : 'tab', 'aria-pressed': String(f === filter) }, n === null ? label : `${label} (${fmtNum(n)})`);
    b.addEventListener('click', () => { filter = f; offset = 0; loadPage(); });
    return b;
  };
  const action = (label: string, type: 'preview/apply' | 'preview/cancel', cls: string): HTMLElement => {
    const b = h('button', { class: cls }, label);
    if (busy) b.setAttribute('disabled', '');
    b.addEventListener('click', () => {
      busy = true;
      renderPreview();
      request((id) => ({ type, id }))
        .catch((e: Error) => { previewError = e.message; })
        .finally(() => { busy = false; renderPreview(); });
    });
    return b;
  };
  const total = page?.total ?? null;
  const prev = h('button', {}, '‹ Previous');
  const next = h('button', {}, 'Next ›');
  if (busy || offset === 0) prev.setAttribute('disabled', '');
  if (busy || !page || (total !== null ? offset + PAGE_SIZE >= total : page.rows.length < PAGE_SIZE)) next.setAttribute('disabled', '');
  prev.addEventListener('click', () => { offset = Math.max(0, offset - PAGE_SIZE); loadPage(); });
  next.addEventListener('click', () => { offset += PAGE_SIZE; loadPage(); });

  let table: HTMLElement = h('p', { class: 'muted' }, busy ? 'Loading…' : 'No rows.');
  if (page && page.rows.length > 0) {
    table = h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'op'), ...page.columns.map((c) => h('th', { title: `${c.sourceType} → ${c.targetType ?? '?'}` }, c.isKey ? `🔑 ${c.name}` : c.name)))),
      h('tbody', {}, ...page.rows.map((r) => h('tr', { class: r.op },
        h('td', { class: 'op' }, r.op),
        ...r.cells.map((cell, i) => {
          const before = r.before?.[i];
          const changed = r.op === 'update' && r.before !== null && before !== cell;
          return h('td', { class: cell === null ? 'null' : changed ? 'changed' : '', title: changed ? `was: ${before ?? 'NULL'}` : '' }, cell ?? 'NULL');
        })))));
  }
  render(
    h('header', {},
      h('h1', {}, `Preview: ${s.mapping}`),
      h('span', { class: 'muted' }, `${s.sourceTable} → ${s.targetTable} · ${versions(s.fromVersion, s.toVersion)}`),
      h('span', { class: 'spacer' }),
      action('Apply', 'preview/apply', 'primary'),
      action('Cancel', 'preview/cancel', '')),
    h('nav', { class: 'tabs' }, tab('all', 'All', s.inserts + s.updates + s.deletes), tab('insert', 'Inserts', s.inserts), tab('update', 'Updates', s.updates), tab('delete', 'Deletes', s.deletes)),
    previewError && h('div', { class: 'error', role: 'alert' }, previewError),
    h('div', { class: 'table-wrap' }, table),
    h('footer', {}, prev, h('span', { class: 'muted' }, page ? `${fmtNum(offset + 1)}–${fmtNum(offset + page.rows.length)}${total !== null ? ` of ${fmtNum(total)}` : ''}` : ''), next),
  );
}

// ---------------------------------------------------------------- messages

function onMessage(msg: HostToWebview): void {
  switch (msg.type) {
    case 'init': {
      const state: PanelState = msg.state;
      vscode.setState(state); // what the host's serializer receives after a reload
      if (state.panel === 'progress') {
        progress = msg.progress;
        renderProgress();
      } else {
        previewMapping = state.mapping;
        preview = msg.preview;
        page = null;
        offset = 0;
        if (preview) loadPage();
        else renderPreview();
      }
      return;
    }
    case 'progress':
      progress = msg.snapshot;
      renderProgress();
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
