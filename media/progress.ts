// The Progress panel's webview code. The page is built once; each snapshot from the host
// updates the existing elements in place (text, attributes, hidden), so focus stays where
// the user left it (Stop can be reached with Tab and pressed with Enter while the numbers
// move) and assistive technology hears only the status line (its own aria-live region),
// not every number. Text is only ever set through textContent (never innerHTML).
import type { ProgressSnapshot, ResponseResult, RunHistory, WebviewToHost } from '../src/protocol/messages';
import { autoRunNote, runLabel } from '../src/protocol/runModeLabel';

/** What the panel needs from main.ts: the request channel to the host. */
export interface ProgressHost {
  request(make: (id: string) => WebviewToHost): Promise<ResponseResult>;
}

type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** Sets text only when it changed: an unchanged node is not a mutation a screen reader reads again. */
function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}
function setAttr(el: Element, name: string, value: string | null): void {
  if (value === null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}
function show(el: HTMLElement, visible: boolean): void {
  if (el.hidden === visible) el.hidden = !visible;
}

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
  // `from` is the first version read; the user counts from the version the target held (the checkpoint).
  return from > to ? `up to date at v${to}` : `checkpoint v${from - 1} → v${to}`;
}

/** The file name of a path (either separator: the host may run on Windows). */
function baseName(file: string): string {
  return file.split(/[\\/]/).pop() || file;
}

const CHART_W = 600;
const CHART_H = 90;

/** The Progress panel: one DOM, updated in place from the host's snapshots. */
export class ProgressView {
  private snapshot: ProgressSnapshot | null = null;
  private history: RunHistory | null = null;
  private historyShown: RunHistory | null | undefined = undefined;
  /** What the last Stop or Open Setting request failed with (shown under the error). */
  private actionError: string | null = null;

  private readonly waiting = h('p', { class: 'muted' }, 'Waiting for the extension…');
  private readonly idle = h('section', { class: 'empty', 'data-testid': 'progress-idle' },
    h('h1', {}, 'No sync is running'),
    h('p', { class: 'muted' }, 'Start one from the Mappings view: Preview Changes, Run Initial Load or Run Incremental Sync.'));
  private readonly title = h('h1', {});
  private readonly badge = h('span', { class: 'badge', 'data-testid': 'status' });
  private readonly phase = h('span', { class: 'muted', 'data-testid': 'phase' });
  /** Mapping mode "auto": which path the run took, and why. */
  private readonly autoMode = h('p', { class: 'muted auto-mode', 'data-testid': 'auto-mode' });
  /** The one live region: status and phase, announced politely when they change. */
  private readonly live = h('span', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true', 'data-testid': 'status-live' });
  private readonly stop = h('button', { class: 'danger', 'data-testid': 'stop', 'aria-label': 'Stop the sync' }, 'Stop');
  private readonly fill = h('div', { class: 'fill' });
  private readonly bar = h('div', { class: 'bar', role: 'progressbar', 'aria-label': 'Sync progress', 'aria-valuemin': '0', 'aria-valuemax': '100' }, this.fill);
  private readonly stats = new Map<string, HTMLElement>();
  private readonly chartCaption = h('figcaption', { class: 'muted' });
  private readonly chart = svg('svg', { viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: 'none', role: 'img' });
  private readonly errorText = h('span', { role: 'alert', 'data-testid': 'run-error-text' });
  /** Shown when the error names a setting the editor can open (the host opens the one its run's error names). */
  private readonly openSetting = h('button', { type: 'button', 'data-testid': 'open-setting' }, 'Open Setting');
  private readonly error = h('div', { class: 'error', 'data-testid': 'run-error' }, this.errorText, h('div', { class: 'error-actions' }, this.openSetting));
  private readonly actionErrorBox = h('div', { class: 'error', role: 'alert', 'data-testid': 'action-error' });
  private readonly warningsSummary = h('summary', {});
  private readonly warningsList = h('ul', {});
  private readonly warnings = h('details', { open: '' }, this.warningsSummary, this.warningsList);
  private readonly run: HTMLElement;
  private readonly historyBox = h('div', {});

  constructor(root: HTMLElement, private readonly host: ProgressHost) {
    // The page's own live region (the panel's <main>) would read every number as it moves.
    root.setAttribute('aria-live', 'off');
    const stat = (label: string, id: string): HTMLElement => {
      const value = h('span', { class: 'value', 'data-testid': id });
      this.stats.set(id, value);
      return h('div', { class: 'stat' }, h('span', { class: 'label' }, label), value);
    };
    this.run = h('section', { class: 'run' },
      h('header', {}, this.title, this.badge, this.phase, h('span', { class: 'spacer' }), this.stop),
      this.live,
      this.autoMode,
      this.bar,
      h('div', { class: 'stats' },
        stat('Versions', 'versions'),
        stat('Committed', 'committed'),
        stat('Done', 'percent'),
        stat('Rows read', 'rows-read'),
        stat('Rows applied', 'rows-applied'),
        stat('Rate', 'rate'),
        stat('ETA', 'eta')),
      h('figure', { class: 'chart', 'data-testid': 'throughput-chart' }, this.chartCaption, this.chart),
      this.error,
      this.actionErrorBox,
      this.warnings);
    this.stop.addEventListener('click', () => this.onStop());
    this.openSetting.addEventListener('click', () => this.onOpenSetting());
    root.replaceChildren(this.waiting, this.idle, this.run, this.historyBox);
    this.update();
  }

  init(progress: ProgressSnapshot | null, history: RunHistory | null | undefined): void {
    this.snapshot = progress;
    if (history !== undefined) this.history = history;
    this.update();
  }

  setProgress(snapshot: ProgressSnapshot): void {
    this.snapshot = snapshot;
    this.update();
  }

  setHistory(history: RunHistory): void {
    this.history = history;
    this.update();
  }

  private onStop(): void {
    if (this.stop.disabled) return;
    this.stop.disabled = true;
    this.host
      .request((id) => ({ type: 'run/stop', id }))
      .then(() => { this.actionError = null; })
      .catch((e: Error) => { this.actionError = e.message; })
      .finally(() => this.update());
  }

  private onOpenSetting(): void {
    this.host
      .request((id) => ({ type: 'run/openSetting', id }))
      .then(() => { this.actionError = null; })
      .catch((e: Error) => { this.actionError = e.message; })
      .finally(() => this.update());
  }

  private update(): void {
    const s = this.snapshot;
    show(this.waiting, s === null);
    show(this.idle, s !== null && s.status === 'idle');
    show(this.run, s !== null && s.status !== 'idle');
    this.updateHistory(s);
    if (!s || s.status === 'idle') return;

    const active = s.status === 'running' || s.status === 'stopping';
    const phase = [s.mode, s.phase].filter((x) => x).join(' · ');
    setText(this.title, s.mapping ?? 'Sync');
    setText(this.badge, s.status);
    setAttr(this.badge, 'class', `badge ${s.status}`);
    setText(this.phase, phase);
    show(this.autoMode, typeof s.auto === 'string');
    setText(this.autoMode, s.auto ? `Mode auto: ${s.auto}.` : '');
    setText(this.live, `${s.mapping ?? 'Sync'}: ${s.status}${phase ? `, ${phase}` : ''}`);

    // Stop stays in the page while the run does (hidden after), so a focused Stop keeps its focus across updates.
    show(this.stop, active);
    setText(this.stop, s.status === 'stopping' ? 'Stopping…' : 'Stop');
    const disable = !active || s.status === 'stopping';
    if (this.stop.disabled !== disable) this.stop.disabled = disable;

    const pct = s.percent ?? null;
    setAttr(this.fill, 'class', pct === null && active ? 'fill indeterminate' : 'fill');
    this.fill.style.width = pct === null ? '' : `${pct.toFixed(1)}%`;
    setAttr(this.bar, 'aria-valuenow', pct === null ? null : pct.toFixed(0));
    setAttr(this.bar, 'aria-valuetext', pct === null ? (active ? 'Total not known yet' : s.status) : `${pct.toFixed(0)} percent`);

    const stat = (id: string, text: string): void => setText(this.stats.get(id) as HTMLElement, text);
    stat('versions', versions(s.fromVersion, s.toVersion));
    stat('committed', s.version === null ? '–' : `v${s.version}`);
    stat('percent', pct === null ? '–' : `${pct.toFixed(0)}%`);
    stat('rows-read', s.totalRows === null ? fmtNum(s.rowsRead) : `${fmtNum(s.rowsRead)} / ${fmtNum(s.totalRows)}`);
    stat('rows-applied', s.totalRows === null ? fmtNum(s.rowsApplied) : `${fmtNum(s.rowsApplied)} / ${fmtNum(s.totalRows)}`);
    stat('rate', `${fmtNum(s.rowsPerSecond)} rows/s`);
    stat('eta', active ? fmtDuration(s.etaSeconds) : '–');

    this.updateChart(s.throughput ?? []);

    const err = s.error ? (s.error.hint ? `${s.error.message} ${s.error.hint}` : s.error.message) : '';
    setText(this.errorText, err);
    show(this.error, err !== '');
    // The button stays in the page (hidden without a setting), so a focused one keeps its focus across updates.
    const setting = s.error?.setting;
    show(this.openSetting, setting !== undefined);
    const where = setting === undefined ? '' : setting.scope === 'vscode' ? `${setting.key} in the Settings editor` : `"${setting.key}" in ${baseName(setting.file)}`;
    setAttr(this.openSetting, 'title', setting === undefined ? null : `Open ${where}`);
    setAttr(this.openSetting, 'aria-label', setting === undefined ? null : `Open Setting: ${where}`);
    setText(this.actionErrorBox, this.actionError ?? '');
    show(this.actionErrorBox, this.actionError !== null);

    show(this.warnings, s.warnings.length > 0);
    setText(this.warningsSummary, `Warnings (${s.warnings.length})`);
    if (this.warningsList.children.length !== s.warnings.length || s.warnings.some((w, i) => this.warningsList.children[i]?.textContent !== w)) {
      this.warningsList.replaceChildren(...s.warnings.map((w) => h('li', {}, w)));
    }
  }

  private updateChart(samples: ReadonlyArray<readonly [number, number]>): void {
    const peak = samples.reduce((m, [, v]) => Math.max(m, v), 0);
    setText(this.chartCaption, samples.length < 2 ? 'Throughput: not enough samples yet' : `Throughput (rows/s), peak ${fmtNum(peak)}`);
    setAttr(this.chart, 'aria-label', `Throughput chart, peak ${fmtNum(peak)} rows per second`);
    const parts: SVGElement[] = [svg('line', { x1: '0', y1: String(CHART_H - 1), x2: String(CHART_W), y2: String(CHART_H - 1), class: 'axis' })];
    if (samples.length >= 2 && peak > 0) {
      const t0 = (samples[0] as readonly [number, number])[0];
      const span = Math.max(1, (samples[samples.length - 1] as readonly [number, number])[0] - t0);
      const pts = samples.map(([t, v]) => `${(((t - t0) / span) * CHART_W).toFixed(1)},${(CHART_H - 2 - (v / peak) * (CHART_H - 8)).toFixed(1)}`);
      parts.push(svg('polygon', { points: `0,${CHART_H - 1} ${pts.join(' ')} ${CHART_W},${CHART_H - 1}`, class: 'area' }));
      parts.push(svg('polyline', { points: pts.join(' '), class: 'line' }));
    }
    // The chart is an image (no focusable parts): replacing its shapes moves no focus.
    this.chart.replaceChildren(...parts);
  }

  /**
   * Under a running run, only its own mapping's history (not the one shown before it
   * started); once it ended, the last history asked for (Show History of any mapping).
   */
  private updateHistory(s: ProgressSnapshot | null): void {
    const running = s !== null && (s.status === 'running' || s.status === 'stopping');
    const hist = this.history && (!running || this.history.mapping === s?.mapping) ? this.history : null;
    if (hist === this.historyShown) return;
    this.historyShown = hist;
    if (!hist) {
      this.historyBox.replaceChildren();
      return;
    }
    const rows = hist.runs;
    this.historyBox.replaceChildren(h('section', { class: 'history', 'data-testid': 'history', 'data-mapping': hist.mapping },
      h('h2', {}, `Past runs of ${hist.mapping}`),
      rows.length === 0
        ? h('p', { class: 'muted' }, 'No runs recorded yet.')
        : h('div', { class: 'table-wrap short' }, h('table', {},
          h('thead', {}, h('tr', {}, ...['Run', 'Mode', 'Status', 'Versions', 'Rows', 'Started', 'Finished'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, ...rows.map((r) => h('tr', { class: r.status, title: r.error ?? '' },
            h('td', {}, r.runId),
            // Mode auto: which path the run took, and why (the change count against the table's rows and the threshold).
            h('td', {}, runLabel(r), ...(r.auto ? [h('div', { class: 'muted run-auto', 'data-testid': 'history-auto' }, autoRunNote(r) ?? '')] : [])),
            h('td', {}, r.status),
            h('td', {}, r.fromVersion === null ? `v${r.toVersion ?? '?'}` : versions(Number(r.fromVersion), r.toVersion === null ? null : Number(r.toVersion))),
            h('td', { class: 'num' }, r.rows === null ? '–' : fmtNum(Number(r.rows))),
            h('td', {}, r.startedAt),
            h('td', {}, r.finishedAt ?? '–'))))))));
  }
}
