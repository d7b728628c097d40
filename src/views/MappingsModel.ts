/**
 * Mapping files (`<workspace>/<mappingsFolder>/*.json`) for the Mappings tree. Each file is
 * validated with the engine's loader; an invalid file is a row with its error, not a popup.
 *
 * Each valid mapping also shows its sync status (checkpoint, versions behind, last run),
 * read through `statusOf` (the runner's `status()`), whose `PipelineState` the engine
 * computes: the rows show that state as is, never re-derived here. Statuses are fetched in the
 * background and cached: the tree lists mappings at once and `onStatusChange` fires when a
 * status arrives; `invalidate` drops the cache (after a run, on refresh).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseMappingText } from '../sync/mapping/loadMapping';
import type { Mapping } from '../sync/mapping/mappingSchema';
import type { PipelineState } from '../sync/ports/pipelineState';
import type { PipelineStatus } from '../sync/ports/reports';
import { watchPhrase } from '../engine/ContinuousSyncs';
import type { WatchStatus } from '../engine/ContinuousSyncs';
import { errorText, hintForVsCode } from './toProtocolError';
import { openableSetting, type SettingRef } from './settingLocation';
import { autoRunNote, runLabel } from '../protocol/runModeLabel';

/** What the tree gets per mapping: the runner's status, with the engine's state. */
export type MappingStatus = PipelineStatus;

export type StatusEntry = { state: 'pending' } | { state: 'ok'; status: MappingStatus } | { state: 'error'; message: string };

export type StatusIcon = 'ok' | 'behind' | 'error' | 'info' | 'history' | 'running';

/** How the mapping row itself looks: failed (last run, or the engine's errored state), running, or plain. */
export type MappingLook = 'failed' | 'running' | 'plain';

export type MappingNode =
  | { kind: 'mapping'; file: string; mapping: Mapping; status?: StatusEntry; watch?: WatchStatus }
  /** `setting`: the key of the file the error names (the first issue), which the row's Open Setting opens. */
  | { kind: 'invalid'; file: string; error: string; setting?: SettingRef }
  | { kind: 'status'; file: string; id: string; label: string; detail: string; icon: StatusIcon; tooltip?: string }
  | { kind: 'message'; severity: 'info' | 'error'; label: string; id: string };

/**
 * Every valid mapping that reads the local Delta table at `tablePath` (its source path
 * resolved against the mapping file's folder), in the tree's order: Describe shows what
 * each makes of the columns, since several may read one table with different keys.
 */
export function mappingsReading(nodes: readonly MappingNode[], tablePath: string): Mapping[] {
  const want = path.resolve(tablePath);
  return nodes.flatMap((n) =>
    n.kind === 'mapping' && n.mapping.source.type === 'delta' && path.resolve(path.dirname(n.file), n.mapping.source.path) === want ? [n.mapping] : [],
  );
}

/** "delta: orders → neon:public.orders" */
export function mappingSummary(m: Mapping): string {
  const src = m.source.type === 'delta' ? path.basename(m.source.path) : m.source.table;
  return `${src} → ${m.target.connection}:${m.target.schema}.${m.target.table}`;
}

function versionsBehind(n: number): string {
  return `${n} version${n === 1 ? '' : 's'} behind`;
}

/** One short phrase for the mapping row: where the target stands against the source. */
export function statusPhrase(entry: StatusEntry | undefined): string | undefined {
  if (!entry) return undefined;
  switch (entry.state) {
    case 'pending':
      return 'checking…';
    case 'error':
      return 'status unavailable';
    case 'ok': {
      return statePhrase(entry.status.state);
    }
  }
}

/** The phrase of an engine state; an errored one names the error's kind. */
function statePhrase(state: PipelineState): string {
  switch (state.phase) {
    case 'not-loaded':
      return 'not loaded yet';
    case 'running':
      return `running · ${state.mode}`;
    case 'up-to-date':
      return `up to date · v${state.version}`;
    case 'behind':
      return versionsBehind(state.versionsBehind);
    case 'source-not-checked':
      return `v${state.version} checkpoint · ${state.short}, source version not checked`;
    case 'errored':
      return `failed · ${state.error.kind}`;
  }
}

/** The mapping row's look, from the engine's state. */
export function mappingLook(entry: StatusEntry | undefined): MappingLook {
  if (entry?.state !== 'ok') return 'plain';
  const phase = entry.status.state.phase;
  return phase === 'errored' ? 'failed' : phase === 'running' ? 'running' : 'plain';
}

/** Tooltip lines for an errored state: the error with its kind, the hint, the retry policy. */
function erroredLines(state: Extract<PipelineState, { phase: 'errored' }>): string[] {
  const { message, kind, hint, retry } = state.error;
  return [`${kind}: ${message}`, ...(hint ? [`Hint: ${hintForVsCode(hint)}`] : []), `Retry: ${retry} · since ${state.at}`];
}

/** Tooltip lines for a source whose latest version was not read: why, and how to read it. */
function notCheckedLines(state: Extract<PipelineState, { phase: 'source-not-checked' }>): string[] {
  return [
    `${state.reason}: the status check does not start it, so the source's latest version was not read (the checkpoint is v${state.version}; the source may be ahead).`,
    'Refresh the Mappings view to read it now (that starts the warehouse), or set deltaSync.status.wakeWarehouse to let every status check start it.',
  ];
}

/** The mapping row's description: the status first, as a narrow side bar truncates the end. */
export function mappingDescription(node: MappingNode & { kind: 'mapping' }): string {
  // A continuous sync says more than the last status read: "watching · v12 · lag 0.8 s".
  const phrase = node.watch ? watchPhrase(node.watch) : statusPhrase(node.status);
  return phrase ? `${phrase} · ${mappingSummary(node.mapping)}` : mappingSummary(node.mapping);
}

/** The mapping row's tooltip: file, summary, status; for an errored state its kind, error and hint. */
export function mappingTooltip(node: MappingNode & { kind: 'mapping' }): string {
  const phrase = statusPhrase(node.status);
  const state = node.status?.state === 'ok' ? node.status.status.state : undefined;
  return [node.file, mappingSummary(node.mapping), ...(node.watch ? [`Continuous sync: ${watchPhrase(node.watch)}`] : []), ...(phrase ? [phrase] : []), ...(state?.phase === 'errored' ? erroredLines(state) : []), ...(state?.phase === 'source-not-checked' ? notCheckedLines(state) : [])].join('\n');
}

/** The rows under a mapping: checkpoint, lag or the engine's state, last run and its error. */
export function statusRows(file: string, entry: StatusEntry | undefined): MappingNode[] {
  const row = (key: string, label: string, detail: string, icon: StatusIcon, tooltip?: string): MappingNode => ({ kind: 'status', file, id: `${file}#${key}`, label, detail, icon, tooltip });
  if (!entry || entry.state === 'pending') return [row('pending', 'Status', 'checking…', 'info')];
  if (entry.state === 'error') return [row('error', 'Status unavailable', entry.message, 'error', entry.message)];
  const s = entry.status;
  const checkpoint = (version: bigint | number | null): MappingNode =>
    version !== null
      ? row('checkpoint', 'Checkpoint', `v${String(version)}`, 'ok')
      : row('checkpoint', 'Checkpoint', s.targetExists ? 'none (the table exists)' : 'none: run Preview, then Apply', 'info');
  const source = (latest: number, behind: number): MappingNode =>
    row('lag', 'Source', behind === 0 ? `v${latest} · up to date` : `v${latest} · ${versionsBehind(behind)}`, behind === 0 ? 'ok' : 'behind');
  const out: MappingNode[] = [];
  const state = s.state;
  switch (state.phase) {
    case 'not-loaded':
      out.push(checkpoint(null));
      break;
    case 'running':
      out.push(checkpoint(s.checkpoint?.version ?? null), row('running', 'Running', `${state.mode} · since ${state.startedAt}`, 'running', `run ${state.runId}`));
      break;
    case 'up-to-date':
      out.push(checkpoint(state.version), source(state.version, 0));
      break;
    case 'behind':
      out.push(checkpoint(state.version), source(state.latestVersion, state.versionsBehind));
      break;
    case 'source-not-checked':
      out.push(checkpoint(state.version), row('lag', 'Source', `not checked · ${state.short}`, 'info', notCheckedLines(state).join('\n')));
      break;
    case 'errored': {
      out.push(checkpoint(state.version), row('error', 'Error', `${state.error.kind}: ${state.error.message}`, 'error', erroredLines(state).join('\n')));
      // The state stores the hint as the engine rendered it for the CLI; the tree names VS Code's commands.
      if (state.error.hint) out.push(row('hint', 'Hint', hintForVsCode(state.error.hint), 'info', hintForVsCode(state.error.hint)));
      break;
    }
  }
  const last = s.runs[0];
  if (last) {
    const rows = last.rows === null ? '' : ` · ${Number(last.rows).toLocaleString('en-US')} rows`;
    // Mode auto: the path in the detail ("incremental (auto)", "snapshot load (auto)"), why in the tooltip.
    out.push(row('last', 'Last run', `${last.status} · ${runLabel(last)}${rows} · ${last.finishedAt ?? last.startedAt}`, last.status === 'failed' ? 'error' : 'history', autoRunNote(last)));
    // With a state from the engine, its errored phase shows the error (above).
    if (last.error && !state) out.push(row('lastError', 'Error', last.error, 'error', last.error));
  }
  return out;
}

/**
 * How a status is read: `wakeSource` lets it read a Databricks table's latest version even
 * when that starts the stopped SQL warehouse (an explicit Refresh); without it the warehouse's
 * state is read first and a stopped one is left alone.
 */
export interface StatusReadOptions {
  wakeSource: boolean;
}

export class MappingsModel {
  private readonly statuses = new Map<string, StatusEntry>();
  /** Files whose next status read may start a stopped warehouse (an explicit Refresh asked). */
  private readonly wakeNext = new Set<string>();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly workspaceFolders: () => string[],
    private readonly mappingsFolder: () => string,
    private readonly statusOf?: (mapping: Mapping, opts: StatusReadOptions) => Promise<MappingStatus>,
    /** The continuous sync of a mapping file, when one runs. */
    private readonly watchOf?: (file: string) => WatchStatus | undefined,
  ) {}

  /** Fires when a background status fetch settles. */
  onStatusChange(listener: () => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /**
   * Forgets cached statuses (all, or one file's): the next listing fetches them again. With
   * `wakeSource` (the user's Refresh) that fetch reads a Databricks source's latest version
   * even when it starts the stopped warehouse; the periodic and after-run refreshes do not.
   */
  invalidate(file?: string, opts: { wakeSource?: boolean } = {}): void {
    const files = file === undefined ? [...this.statuses.keys()] : [file];
    if (opts.wakeSource) for (const f of files) this.wakeNext.add(f);
    if (file === undefined) this.statuses.clear();
    else this.statuses.delete(file);
  }

  /** The folders mapping files live in, one per workspace folder. */
  folders(): string[] {
    return this.workspaceFolders().map((w) => path.resolve(w, this.mappingsFolder()));
  }

  async children(node?: MappingNode): Promise<MappingNode[]> {
    if (node) return node.kind === 'mapping' ? statusRows(node.file, this.statuses.get(node.file)) : [];
    const out: MappingNode[] = [];
    for (const dir of this.folders()) {
      let names: string[];
      try {
        names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json')).sort();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // no mappings yet
        out.push({ kind: 'message', severity: 'error', id: `unreadable:${dir}`, label: `Cannot read ${dir}: ${errorText(e)}` });
        continue;
      }
      for (const name of names) {
        const n = await this.load(path.join(dir, name));
        if (n.kind === 'mapping' && this.statusOf) n.status = this.statusFor(n.file, n.mapping);
        const watch = n.kind === 'mapping' ? this.watchOf?.(n.file) : undefined;
        if (n.kind === 'mapping' && watch) n.watch = watch;
        out.push(n);
      }
    }
    // Empty: no rows, so the view's welcome content (Create Mapping) shows.
    return out;
  }

  private statusFor(file: string, mapping: Mapping): StatusEntry {
    const cached = this.statuses.get(file);
    if (cached) return cached;
    const pending: StatusEntry = { state: 'pending' };
    this.statuses.set(file, pending);
    const settle = (entry: StatusEntry): void => {
      if (this.statuses.get(file) !== pending) return; // invalidated meanwhile
      this.statuses.set(file, entry);
      for (const l of this.listeners) l();
    };
    const wakeSource = this.wakeNext.delete(file);
    (this.statusOf as (m: Mapping, o: StatusReadOptions) => Promise<MappingStatus>)(mapping, { wakeSource }).then(
      (status) => settle({ state: 'ok', status }),
      (e: unknown) => settle({ state: 'error', message: errorText(e) }),
    );
    return pending;
  }

  async load(file: string): Promise<MappingNode> {
    try {
      const text = await fs.readFile(file, 'utf8');
      return { kind: 'mapping', file, mapping: parseMappingText(text, file) };
    } catch (e) {
      const opens = openableSetting(e, file);
      return { kind: 'invalid', file, error: errorText(e), ...(opens ? { setting: opens.setting } : {}) };
    }
  }
}
