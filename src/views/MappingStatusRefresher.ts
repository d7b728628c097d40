/**
 * Keeps the Mappings tree's statuses current when a source gets a new Delta version, so
 * the tree never says "up to date" after one: a watch on the `_delta_log` folder of each
 * local source (debounced: a commit writes a temp file and renames it, a checkpoint adds
 * more files), a poll of Databricks sources (their log is not on this machine) every
 * `deltaSync.status.pollSeconds` (0 turns it off). A change invalidates that mapping's
 * cached status and refreshes the tree, which fetches it again. A poll is an ordinary status
 * read (never `wakeSource`): it reads the SQL warehouse's state first and sends no statement
 * while the warehouse is not running (SyncRunner.status), so it starts no stopped warehouse.
 *
 * Plain Node (fs.watch, timers), no `vscode`: tests drive it with real Delta tables.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Mapping } from '../sync/mapping/mappingSchema';
import type { MappingsModel } from './MappingsModel';

export interface MappingStatusRefresherOptions {
  /** Quiet time after the last log event before the status is fetched again. */
  debounceMs?: number;
  /** Seconds between status polls of Databricks sources; 0 or less: no poll. */
  pollSeconds: () => number;
  /** Called after a mapping's status was invalidated (the tree refreshes). */
  onRefresh: (file: string) => void;
  /** Where a watch could not be set up (logged, never thrown). */
  onWarning?: (message: string) => void;
}

interface Watch {
  /** What is watched, so an unchanged mapping keeps its watch across `sync`. */
  key: string;
  close(): void;
}

export class MappingStatusRefresher {
  private readonly watches = new Map<string, Watch>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private disposed = false;

  constructor(
    private readonly model: Pick<MappingsModel, 'folders' | 'load' | 'invalidate'>,
    private readonly opts: MappingStatusRefresherOptions,
  ) {}

  /** Watches the sources of the mapping files there are now (call again when they change). */
  async sync(): Promise<void> {
    const wanted = new Map<string, Mapping>();
    for (const dir of this.model.folders()) {
      let names: string[];
      try {
        names = (await fs.promises.readdir(dir)).filter((n) => n.endsWith('.json'));
      } catch {
        continue; // no mappings folder yet
      }
      for (const name of names) {
        const node = await this.model.load(path.join(dir, name));
        if (node.kind === 'mapping') wanted.set(node.file, node.mapping);
      }
    }
    if (this.disposed) return;
    for (const [file, w] of this.watches) {
      const m = wanted.get(file);
      if (!m || watchKey(m, file, this.opts.pollSeconds()) !== w.key) this.unwatch(file);
    }
    for (const [file, m] of wanted) if (!this.watches.has(file)) this.watch(file, m);
  }

  private watch(file: string, mapping: Mapping): void {
    const key = watchKey(mapping, file, this.opts.pollSeconds());
    if (mapping.source.type === 'delta') {
      const logDir = path.join(path.resolve(path.dirname(file), mapping.source.path), '_delta_log');
      try {
        const watcher = fs.watch(logDir, { persistent: false }, () => this.changed(file));
        watcher.on('error', (e) => this.opts.onWarning?.(`stopped watching ${logDir}: ${e.message}`));
        this.watches.set(file, { key, close: () => watcher.close() });
      } catch (e) {
        this.opts.onWarning?.(`cannot watch ${logDir} for new versions: ${(e as Error).message}`);
      }
      return;
    }
    const seconds = this.opts.pollSeconds();
    if (seconds <= 0) return;
    const timer = setInterval(() => this.refresh(file), seconds * 1000);
    timer.unref?.();
    this.watches.set(file, { key, close: () => clearInterval(timer) });
  }

  private unwatch(file: string): void {
    this.watches.get(file)?.close();
    this.watches.delete(file);
    const t = this.timers.get(file);
    if (t) clearTimeout(t);
    this.timers.delete(file);
  }

  /** A log event: refresh once the log has been quiet for the debounce time. */
  private changed(file: string): void {
    const t = this.timers.get(file);
    if (t) clearTimeout(t);
    const timer = setTimeout(() => {
      this.timers.delete(file);
      this.refresh(file);
    }, this.opts.debounceMs ?? 500);
    timer.unref?.();
    this.timers.set(file, timer);
  }

  private refresh(file: string): void {
    if (this.disposed) return;
    this.model.invalidate(file);
    this.opts.onRefresh(file);
  }

  /** The files watched now (local sources and polled Databricks sources). */
  watched(): string[] {
    return [...this.watches.keys()];
  }

  dispose(): void {
    this.disposed = true;
    for (const file of [...this.watches.keys()]) this.unwatch(file);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

function watchKey(m: Mapping, file: string, pollSeconds: number): string {
  return m.source.type === 'delta' ? `delta:${path.resolve(path.dirname(file), m.source.path)}` : `poll:${m.source.table}:${pollSeconds}`;
}
