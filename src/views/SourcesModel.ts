/**
 * What the Sources tree shows, computed without VS Code so it runs in plain Node tests.
 *
 * A configured folder that holds `_delta_log` is a table; any other folder is browsed for
 * tables one level at a time. Failures and empty states become `message` nodes: a tree
 * never raises a popup while it renders.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { DeltaField, TableDescription } from '../sync/delta/types';
import { deltaTypeLabel } from './deltaTypeLabel';
import { errorText } from './toProtocolError';

/** Reads a table's description; the extension backs it with `DeltaTable`. */
export interface TableInspector {
  describe(tablePath: string): Promise<TableDescription>;
}

export type Severity = 'info' | 'warning' | 'error';

export type SourceNode =
  | { kind: 'folder'; path: string; label: string; configured: boolean }
  | { kind: 'table'; path: string; label: string; description: TableDescription | null; error: string | null; configured: boolean }
  | { kind: 'column'; table: string; path: string[]; field: DeltaField; isPartition: boolean }
  | { kind: 'message'; severity: Severity; label: string; detail?: string; id: string };

/** A one-line summary of a table for the tree's description column. */
export function tableSummary(d: TableDescription): string {
  const parts = [`v${d.version}`, d.cdfEnabled ? 'CDF on' : 'CDF off'];
  parts.push(d.numRows === null ? 'rows unknown' : `${d.numRows.toLocaleString('en-US')} row${d.numRows === 1 ? '' : 's'}`);
  return parts.join(' · ');
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export function isDeltaTable(p: string): Promise<boolean> {
  return isDir(path.join(p, '_delta_log'));
}

export class SourcesModel {
  /** Descriptions by table path, dropped on `refresh()`; expanding a table reuses it. */
  private readonly cache = new Map<string, Promise<TableDescription>>();

  constructor(
    private readonly folders: () => string[],
    private readonly inspector: TableInspector,
    /** How many tables are described at once when a folder expands. */
    private readonly concurrency = 4,
  ) {}

  refresh(): void {
    this.cache.clear();
  }

  async children(node?: SourceNode): Promise<SourceNode[]> {
    if (!node) return this.roots();
    switch (node.kind) {
      case 'folder':
        return this.folderChildren(node.path);
      case 'table':
        return this.tableChildren(node);
      case 'column':
        return columnChildren(node);
      case 'message':
        return [];
    }
  }

  private async roots(): Promise<SourceNode[]> {
    const folders = this.folders();
    // An empty list returns no rows so the view's `viewsWelcome` content shows instead.
    if (folders.length === 0) return [];
    return mapLimit(folders, this.concurrency, async (p): Promise<SourceNode> => {
      if (!(await isDir(p))) {
        return { kind: 'message', severity: 'error', id: `missing:${p}`, label: `${path.basename(p)}: folder not found`, detail: p };
      }
      if (await isDeltaTable(p)) return this.tableNode(p, true);
      return { kind: 'folder', path: p, label: path.basename(p) || p, configured: true };
    });
  }

  private async folderChildren(dir: string): Promise<SourceNode[]> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (e) {
      return [{ kind: 'message', severity: 'error', id: `unreadable:${dir}`, label: `Cannot read folder: ${errorText(e)}` }];
    }
    // Hidden and `_`-prefixed folders are never tables (Spark's _SUCCESS, _delta_log, .git).
    const subdirs = entries
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !e.name.startsWith('_'))
      .map((e) => e.name)
      .sort((a, b) => a.localeCompare(b));
    const nodes = await mapLimit(subdirs, this.concurrency, async (name): Promise<SourceNode> => {
      const p = path.join(dir, name);
      if (await isDeltaTable(p)) return this.tableNode(p, false);
      return { kind: 'folder', path: p, label: name, configured: false };
    });
    if (nodes.length === 0) {
      return [{ kind: 'message', severity: 'info', id: `empty:${dir}`, label: 'No Delta tables in this folder' }];
    }
    return nodes;
  }

  private async tableNode(p: string, configured: boolean): Promise<SourceNode> {
    const label = path.basename(p) || p;
    try {
      const description = await this.describe(p);
      return { kind: 'table', path: p, label, description, error: null, configured };
    } catch (e) {
      return { kind: 'table', path: p, label, description: null, error: errorText(e), configured };
    }
  }

  /** Cached describe; a failure is not cached so a fixed table shows up on the next expand. */
  describe(p: string): Promise<TableDescription> {
    let d = this.cache.get(p);
    if (!d) {
      d = this.inspector.describe(p);
      this.cache.set(p, d);
      d.catch(() => this.cache.delete(p));
    }
    return d;
  }

  private tableChildren(node: Extract<SourceNode, { kind: 'table' }>): SourceNode[] {
    if (node.error !== null) {
      return [{ kind: 'message', severity: 'error', id: `error:${node.path}`, label: node.error }];
    }
    const d = node.description;
    if (!d || d.schema.length === 0) {
      return [{ kind: 'message', severity: 'info', id: `nocols:${node.path}`, label: 'No columns' }];
    }
    const partitions = new Set(d.partitionColumns);
    return d.schema.map((field) => ({ kind: 'column', table: node.path, path: [field.name], field, isPartition: partitions.has(field.name) }));
  }
}

function columnChildren(node: Extract<SourceNode, { kind: 'column' }>): SourceNode[] {
  const t = node.field.type;
  if (t.kind !== 'struct') return [];
  return t.fields.map((field) => ({ kind: 'column', table: node.table, path: [...node.path, field.name], field, isPartition: false }));
}

/** The column's description in the tree: type, then NOT NULL / partition markers. */
export function columnSummary(node: Extract<SourceNode, { kind: 'column' }>): string {
  const parts = [deltaTypeLabel(node.field.type)];
  if (!node.field.nullable) parts.push('not null');
  if (node.isPartition) parts.push('partition');
  return parts.join(' · ');
}

/** Maps with at most `limit` promises in flight, keeping input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
