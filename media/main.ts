// The webview app for the Preview and Progress panels. No framework: the host owns the
// state and sends whole snapshots, so each render rebuilds a small DOM from the latest
// message. Every inbound message is validated with the protocol's zod schemas; text is
// only ever set through textContent (never innerHTML), so table data cannot inject markup.
import {
  parseHostToWebview,
  PanelKind,
  PanelState,
  type HostToWebview,
  type PreviewFilter,
  type PreviewPage,
  type PreviewSummary,
  type ProgressSnapshot,
  type ResponseResult,
  type RunHistory,
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
  if (from === null) return `snapshot v${to}`;
  // An up-to-date preview covers the empty range checkpoint+1..latest.
  return from > to ? `up to date at v${to}` : `v${from} → v${to}`;
}

// ---------------------------------------------------------------- progress panel

let progress: ProgressSnapshot | null = null;
let stopError: string | null = null;
let history: RunHistory | null = null;

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** A small throughput line chart (rows/s over time), drawn with SVG only. */
function throughputChart(samples: ReadonlyArray<readonly [number, number]>): HTMLElement {
  const W = 600;
  const H = 90;
  const wrap = h('figure', { class: 'chart', 'data-testid': 'throughput-chart' });
  const peak = samples.reduce((m, [, v]) => Math.max(m, v), 0);
  wrap.append(h('figcaption', { class: 'muted' }, samples.length < 2 ? 'Throughput: not enough samples yet' : `Throughput (rows/s), peak ${fmtNum(peak)}`));
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `Throughput chart, peak ${fmtNum(peak)} rows per second` });
  chart.append(svg('line', { x1: '0', y1: String(H - 1), x2: String(W), y2: String(H - 1), class: 'axis' }));
  if (samples.length >= 2 && peak > 0) {
    const t0 = (samples[0] as readonly [number, number])[0];
    const span = Math.max(1, (samples[samples.length - 1] as readonly [number, number])[0] - t0);
    const pts = samples.map(([t, v]) => `${(((t - t0) / span) * W).toFixed(1)},${(H - 2 - (v / peak) * (H - 8)).toFixed(1)}`);
    chart.append(svg('polygon', { points: `0,${H - 1} ${pts.join(' ')} ${W},${H - 1}`, class: 'area' }));
    chart.append(svg('polyline', { points: pts.join(' '), class: 'line' }));
  }
  wrap.append(chart);
  return wrap;
}

function historyTable(hist: RunHistory | null): HTMLElement | null {
  if (!hist) return null;
  const rows = hist.runs;
  return h('section', { class: 'history', 'data-testid': 'history' },
    h('h2', {}, `Past runs of ${hist.mapping}`),
    rows.length === 0
      ? h('p', { class: 'muted' }, 'No runs recorded yet.')
      : h('div', { class: 'table-wrap short' }, h('table', {},
        h('thead', {}, h('tr', {}, ...['Run', 'Mode', 'Status', 'Versions', 'Rows', 'Started', 'Finished'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...rows.map((r) => h('tr', { class: r.status === 'failed' ? 'failed' : '', title: r.error ?? '' },
          h('td', {}, r.runId),
          h('td', {}, r.mode),
          h('td', {}, r.status),
          h('td', {}, r.fromVersion === null ? `v${r.toVersion ?? '?'}` : `v${r.fromVersion} → v${r.toVersion ?? '?'}`),
          h('td', { class: 'num' }, r.rows ?? '–'),
          h('td', {}, r.startedAt),
          h('td', {}, r.finishedAt ?? '–'))))))
  );
}

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
      historyTable(history),
    );
    return;
  }
  const active = s.status === 'running' || s.status === 'stopping';
  const pct = s.totalRows ? Math.min(100, (s.rowsApplied / s.totalRows) * 100) : null;
  // Stop exists only while a run does.
  const stop = active ? h('button', { class: 'danger', 'data-testid': 'stop', 'aria-label': 'Stop the sync' }, s.status === 'stopping' ? 'Stopping…' : 'Stop') : null;
  if (stop && s.status === 'stopping') stop.setAttribute('disabled', '');
  stop?.addEventListener('click', () => {
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
  const stat = (label: string, value: string, id: string): HTMLElement => h('div', { class: 'stat' }, h('span', { class: 'label' }, label), h('span', { class: 'value', 'data-testid': id }, value));
  render(
    h('header', {},
      h('h1', {}, s.mapping ?? 'Sync'),
      h('span', { class: `badge ${s.status}`, 'data-testid': 'status' }, s.status),
      h('span', { class: 'muted' }, [s.mode, s.phase].filter((x) => x).join(' · ')),
      h('span', { class: 'spacer' }),
      stop),
    bar,
    h('div', { class: 'stats' },
      stat('Versions', versions(s.fromVersion, s.toVersion), 'versions'),
      stat('Committed', s.version === null ? '–' : `v${s.version}`, 'committed'),
      stat('Rows read', fmtNum(s.rowsRead), 'rows-read'),
      stat('Rows applied', s.totalRows === null ? fmtNum(s.rowsApplied) : `${fmtNum(s.rowsApplied)} / ${fmtNum(s.totalRows)}`, 'rows-applied'),
      stat('Rate', `${fmtNum(s.rowsPerSecond)} rows/s`, 'rate'),
      stat('ETA', active ? fmtDuration(s.etaSeconds) : '–', 'eta')),
    throughputChart(s.throughput ?? []),
    s.error && h('div', { class: 'error', role: 'alert' }, h('strong', {}, s.error.message), s.error.hint ? h('p', {}, s.error.hint) : null),
    stopError && h('div', { class: 'error', role: 'alert' }, stopError),
    s.warnings.length > 0 && h('details', { open: '' }, h('summary', {}, `Warnings (${s.warnings.length})`), h('ul', {}, ...s.warnings.map((w) => h('li', {}, w)))),
    historyTable(history),
  );
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

function onMessage(msg: HostToWebview): void {
  switch (msg.type) {
    case 'init': {
      const state: PanelState = msg.state;
      const savedRaw: unknown = vscode.getState();
      vscode.setState(state); // what the host's serializer receives after a reload
      if (state.panel === 'progress') {
        progress = msg.progress;
        history = msg.history ?? history;
        renderProgress();
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
      history = msg.history;
      renderProgress();
      return;
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
