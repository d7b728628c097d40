/**
 * Mapping files (`<workspace>/<mappingsFolder>/*.json`) for the Mappings tree. Each file is
 * validated with the engine's loader; an invalid file is a row with its error, not a popup.
 *
 * Each valid mapping also shows its sync status (checkpoint, versions behind, last run),
 * read through `statusOf` (the runner's `status()`). Statuses are fetched in the
 * background and cached: the tree lists mappings at once and `onStatusChange` fires when a
 * status arrives; `invalidate` drops the cache (after a run, on refresh).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseMappingText } from '../sync/mapping/loadMapping';
import type { Mapping } from '../sync/mapping/mappingSchema';
import type { PipelineStatus } from '../sync/run/SyncRunner';
import { errorText } from './toProtocolError';

export type StatusEntry = { state: 'pending' } | { state: 'ok'; status: PipelineStatus } | { state: 'error'; message: string };

export type StatusIcon = 'ok' | 'behind' | 'error' | 'info' | 'history';

export type MappingNode =
  | { kind: 'mapping'; file: string; mapping: Mapping; status?: StatusEntry }
  | { kind: 'invalid'; file: string; error: string }
  | { kind: 'status'; file: string; id: string; label: string; detail: string; icon: StatusIcon; tooltip?: string }
  | { kind: 'message'; severity: 'info' | 'error'; label: string; id: string };

/** "delta: orders → neon:public.orders" */
export function mappingSummary(m: Mapping): string {
  const src = m.source.type === 'delta' ? path.basename(m.source.path) : m.source.table;
  return `${src} → ${m.target.connection}:${m.target.schema}.${m.target.table}`;
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
      const s = entry.status;
      const last = s.runs[0];
      if (last && last.status === 'failed') return 'last run failed';
      if (!s.checkpoint) return 'not loaded yet';
      if (s.lag === 0) return `up to date · v${String(s.checkpoint.version)}`;
      return `${s.lag} version${s.lag === 1 ? '' : 's'} behind`;
    }
  }
}

/** The rows under a mapping: checkpoint, lag, last run and its error. */
export function statusRows(file: string, entry: StatusEntry | undefined): MappingNode[] {
  const row = (key: string, label: string, detail: string, icon: StatusIcon, tooltip?: string): MappingNode => ({ kind: 'status', file, id: `${file}#${key}`, label, detail, icon, tooltip });
  if (!entry || entry.state === 'pending') return [row('pending', 'Status', 'checking…', 'info')];
  if (entry.state === 'error') return [row('error', 'Status unavailable', entry.message, 'error', entry.message)];
  const s = entry.status;
  const out: MappingNode[] = [];
  out.push(
    s.checkpoint
      ? row('checkpoint', 'Checkpoint', `v${String(s.checkpoint.version)}`, 'ok')
      : row('checkpoint', 'Checkpoint', s.targetExists ? 'none (the table exists)' : 'none: run Preview, then Apply', 'info'),
  );
  if (s.lag !== null) {
    out.push(row('lag', 'Source', s.lag === 0 ? `v${s.latestVersion} · up to date` : `v${s.latestVersion} · ${s.lag} version${s.lag === 1 ? '' : 's'} behind`, s.lag === 0 ? 'ok' : 'behind'));
  } else {
    out.push(row('lag', 'Source', `v${s.latestVersion}`, 'info'));
  }
  const last = s.runs[0];
  if (last) {
    const rows = last.rows === null ? '' : ` · ${last.rows} rows`;
    out.push(row('last', 'Last run', `${last.status} · ${last.mode}${rows} · ${last.finishedAt ?? last.startedAt}`, last.status === 'failed' ? 'error' : 'history'));
    if (last.error) out.push(row('lastError', 'Error', last.error, 'error', last.error));
  }
  return out;
}

export class MappingsModel {
  private readonly statuses = new Map<string, StatusEntry>();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly workspaceFolders: () => string[],
    private readonly mappingsFolder: () => string,
    private readonly statusOf?: (mapping: Mapping) => Promise<PipelineStatus>,
  ) {}

  /** Fires when a background status fetch settles. */
  onStatusChange(listener: () => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Forgets cached statuses (all, or one file's): the next listing fetches them again. */
  invalidate(file?: string): void {
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
    (this.statusOf as (m: Mapping) => Promise<PipelineStatus>)(mapping).then(
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
      return { kind: 'invalid', file, error: errorText(e) };
    }
  }
}
