// The webview app for the Preview and Progress panels. No framework: the host owns the
// state and sends whole snapshots. The Progress panel (media/progress.ts), the Preview
// (media/preview.ts) and the table rows panel (media/rows.ts) update their DOM in place. Every inbound message is validated with the protocol's zod schemas; text is
// only ever set through textContent (never innerHTML), so table data cannot inject markup.
import {
  parseHostToWebview,
  PanelKind,
  PanelState,
  type HostToWebview,
  type ResponseResult,
  type WebviewToHost,
} from '../src/protocol/messages';
import { ProgressView } from './progress';
import { PreviewView } from './preview';
import { RowsView } from './rows';
import { ReportView } from './report';

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

// ---------------------------------------------------------------- preview panel (media/preview.ts)

const previewView = new PreviewView(root, {
  request,
  setState: (state) => vscode.setState(state),
});
const rowsView = new RowsView(root, {
  request,
  setState: (state) => vscode.setState(state),
});

const reportView = new ReportView(root, {
  request,
  setState: (state) => vscode.setState(state),
});

let progress: ProgressView | undefined;
/** The Progress panel's view, built on its first message (it owns the page from then on). */
function progressView(): ProgressView {
  progress ??= new ProgressView(root, { request });
  return progress;
}

// ---------------------------------------------------------------- messages

function onMessage(msg: HostToWebview): void {
  switch (msg.type) {
    case 'init': {
      const state: PanelState = msg.state;
      const savedRaw: unknown = vscode.getState();
      vscode.setState(state); // what the host's serializer receives after a reload
      if (state.panel === 'rows') {
        const saved = PanelState.safeParse(savedRaw);
        const same = saved.success && saved.data.panel === 'rows' && saved.data.connection === state.connection && saved.data.schema === state.schema && saved.data.table === state.table ? saved.data : undefined;
        rowsView.init(state, msg.pageSize, same?.hidden);
      } else if (state.panel === 'report') {
        if (msg.report) reportView.init(state, msg.report);
        else render(h('p', { class: 'muted' }, 'This report is no longer available: run the command again.'));
      } else if (state.panel === 'progress') {
        progressView().init(msg.progress, msg.history);
      } else {
        // A re-shown or restored panel goes back to where the user was in the same mapping.
        const saved = PanelState.safeParse(savedRaw);
        const same = saved.success && saved.data.panel === 'preview' && saved.data.mapping === state.mapping ? saved.data : undefined;
        previewView.init(state.mapping, msg.preview, msg.pageSize, same);
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
