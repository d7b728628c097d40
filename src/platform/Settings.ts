import * as vscode from 'vscode';
import { withoutDeltaFolder } from './deltaFolderList';

export type LogLevelSetting = 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Typed reads of the `deltaSync.*` settings declared in package.json. Defaults live in
 * package.json; the fallbacks here only guard against a hand-edited wrong type.
 */
export class Settings implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when any `deltaSync.*` setting changes. */
  readonly onDidChange = this.changed.event;
  private readonly sub: vscode.Disposable;

  constructor() {
    this.sub = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('deltaSync')) this.changed.fire();
    });
  }

  private get cfg(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration('deltaSync');
  }

  /** Absolute folders; relative entries resolve against the first workspace folder. */
  deltaFolders(): string[] {
    const raw = this.cfg.get<unknown>('deltaFolders');
    if (!Array.isArray(raw)) return [];
    const base = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    return raw
      .filter((p): p is string => typeof p === 'string' && p.trim() !== '')
      .map((p) => (base && !isAbsolute(p) ? joinPath(base, p) : p));
  }

  async addDeltaFolder(folder: string): Promise<void> {
    const current = this.cfg.get<unknown>('deltaFolders');
    const list = Array.isArray(current) ? current.filter((p): p is string => typeof p === 'string') : [];
    if (list.includes(folder)) return;
    // Workspace scope when a folder is open (the tables belong to the project), else user.
    const target = vscode.workspace.workspaceFolders?.length
      ? vscode.ConfigurationTarget.Workspace
      : vscode.ConfigurationTarget.Global;
    await this.cfg.update('deltaFolders', [...list, folder], target);
  }

  /** Removes a configured folder (given as configured or as its absolute path); false when it was not configured. */
  async removeDeltaFolder(folder: string): Promise<boolean> {
    const inspect = this.cfg.inspect<unknown>('deltaFolders');
    const base = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    let removed = false;
    // From each scope that lists it (workspace and user settings are separate lists).
    for (const [value, target] of [[inspect?.workspaceValue, vscode.ConfigurationTarget.Workspace], [inspect?.globalValue, vscode.ConfigurationTarget.Global]] as const) {
      if (!Array.isArray(value)) continue;
      const kept = withoutDeltaFolder(value, folder, base);
      if (kept.length === value.filter((p) => typeof p === 'string').length) continue;
      await this.cfg.update('deltaFolders', kept, target);
      removed = true;
    }
    return removed;
  }

  previewPageSize(): number {
    const v = this.cfg.get<unknown>('preview.pageSize');
    return typeof v === 'number' && Number.isInteger(v) && v > 0 ? Math.min(v, 1000) : 200;
  }

  /** The sandbox data directory the user set, or undefined for the extension's storage. */
  sandboxDirectory(): string | undefined {
    const v = this.cfg.get<unknown>('sandbox.dataDirectory');
    return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
  }

  /** A PEM file of extra trusted CAs for Databricks (TLS-inspecting proxies), or undefined. */
  databricksCaCertificateFile(): string | undefined {
    const v = this.cfg.get<unknown>('databricks.caCertificateFile');
    return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
  }

  /** The Neon API base URL (`deltaSync.neon.apiUrl`), or undefined for NEON_API_HOST / the public API. */
  neonApiUrl(): string | undefined {
    const v = this.cfg.get<unknown>('neon.apiUrl');
    return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
  }

  /** Seconds between status polls of Databricks sources (0: no poll). */
  statusPollSeconds(): number {
    const v = this.cfg.get<unknown>('status.pollSeconds');
    return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.min(v, 86_400) : 60;
  }

  /** Whether the Mappings view's status checks may start a stopped Databricks SQL warehouse (`deltaSync.status.wakeWarehouse`). */
  statusWakeWarehouse(): boolean {
    return this.cfg.get<unknown>('status.wakeWarehouse') === true;
  }

  /** Seconds between a continuous sync's polls of a Databricks table. */
  continuousDatabricksPollSeconds(): number {
    const v = this.cfg.get<unknown>('continuous.databricksPollSeconds');
    return typeof v === 'number' && Number.isFinite(v) && v >= 1 ? Math.min(v, 86_400) : 30;
  }

  /** Whether a continuous sync's polls may start a stopped Databricks SQL warehouse. */
  continuousWakeWarehouse(): boolean {
    return this.cfg.get<unknown>('continuous.wakeWarehouse') === true;
  }

  mappingsFolder(): string {
    const v = this.cfg.get<unknown>('mappingsFolder');
    return typeof v === 'string' && v !== '' ? v : '.delta-sync';
  }

  dispose(): void {
    this.sub.dispose();
    this.changed.dispose();
  }
}

function isAbsolute(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p);
}

function joinPath(base: string, rel: string): string {
  return vscode.Uri.joinPath(vscode.Uri.file(base), rel).fsPath;
}
