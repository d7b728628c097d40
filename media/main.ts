// The webview app for the Preview and Progress panels. No framework: the host owns the
// state and sends whole snapshots. The Progress panel rebuilds a small DOM from the latest
// message; the Preview (media/preview.ts) updates its page in place. Every inbound message is validated with the protocol's zod schemas; text is
// only ever set through textContent (never innerHTML), so table data cannot inject markup.
import {
  parseHostToWebview,
  PanelKind,
  PanelState,
  type HostToWebview,
  type ProgressSnapshot,
  type ResponseResult,
  type RunHistory,
  type WebviewToHost,
} from '../src/protocol/messages';
import { PreviewView } from './preview';
import { RowsView } from './rows';

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

// ---------------------------------------------------------------- preview panel (media/preview.ts)

const previewView = new PreviewView(root, {
  request,
  setState: (state) => vscode.setState(state),
});
const rowsView = new RowsView(root, {
  request,
  setState: (state) => vscode.setState(state),
});

// ---------------------------------------------------------------- messages

function onMessage(msg: HostToWebview): void {
  switch (msg.type) {
    case 'init': {
      const state: PanelState = msg.state;
      const savedRaw: unknown = vscode.getState();
      vscode.setState(state); // what the host's serializer receives after a reload
      if (state.panel === 'rows') {
        rowsView.init(state, msg.pageSize);
      } else if (state.panel === 'progress') {
        progress = msg.progress;
        history = msg.history ?? history;
        renderProgress();
      } else {
        // A re-shown or restored panel goes back to where the user was in the same mapping.
        const saved = PanelState.safeParse(savedRaw);
        const same = saved.success && saved.data.panel === 'preview' && saved.data.mapping === state.mapping ? saved.data : undefined;
        previewView.init(state.mapping, msg.preview, msg.pageSize, same);
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
