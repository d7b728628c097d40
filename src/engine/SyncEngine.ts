/**
 * The extension's one door to the engine: opens sources and targets for a mapping and
 * builds SyncRunners. Plain TS (no vscode) so it runs in unit tests.
 *
 * The sandbox (embedded PGlite) is opened once, lazily, and kept open until `dispose`:
 * PGlite allows one process per data directory and a cold open costs seconds, so every
 * preview, run and tree query shares the one instance (its pool serializes sessions).
 * Other connections get a pool per use, closed by `release`.
 */
import * as fs from 'node:fs/promises';
import type { Pool } from 'pg';
import { SyncError } from '../sync/errors';
import { resolveDatabricksConnection } from '../sync/databricks/resolveDatabricksConnection';
import type { DatabricksResolveOptions } from '../sync/databricks/resolveDatabricksConnection';
import { DatabricksChangeSource } from '../sync/sources/DatabricksChangeSource';
import type { Mapping, MappingSource } from '../sync/mapping/mappingSchema';
import type { ChangeSource } from '../sync/ports/ChangeSource';
import type { SandboxDatabase } from '../sync/postgres/PglitePool';
import { openSandbox } from '../sync/postgres/PglitePool';
import type { Logger } from '../sync/ports/Logger';
import type { NeonResolveOptions } from '../sync/neon/resolveNeonConnection';
import { openSource } from '../sync/open/openSource';
import { SANDBOX_CONNECTION, openTarget, resolveConnection, mappingTarget } from '../sync/open/openTarget';
import { SyncRunner } from '../sync/run/SyncRunner';

export interface TargetHandle {
  pool: Pool;
  label: string;
  kind: 'postgres' | 'sandbox';
  /** Closes a per-use pool; a no-op for the shared sandbox. */
  release(): Promise<void>;
}

export interface RunnerHandle {
  runner: SyncRunner;
  /** The runner's source (released with the handle). */
  source: ChangeSource;
  target: TargetHandle;
  release(): Promise<void>;
}

export interface SyncEngineOptions {
  /** Data directory of the sandbox (created when missing); undefined keeps it in memory (tests). */
  sandboxDir: () => string | undefined;
  /** Saved connection name -> connection string (SecretStorage in the extension). */
  lookup: (name: string) => Promise<string | undefined>;
  logger: Logger;
  env?: Record<string, string | undefined>;
  /** `neon:` targets: the API key (SecretStorage) and URL (setting), read at each open. */
  neon?: () => Omit<NeonResolveOptions, 'env'>;
  /** Databricks sources: saved connections (SecretStorage) and the per-connection shared client. */
  databricks?: {
    lookup?: DatabricksResolveOptions['lookup'];
    /** A source on a connection's kept client; its close() leaves that client open. */
    openShared?: (connection: string, table: string) => Promise<ChangeSource>;
  };
}

export interface OpenSourceOptions {
  /**
   * Use the connection's shared client for a Databricks source (tree status, preview
   * columns) instead of opening a connection of its own (runs, previews).
   */
  shareSource?: boolean;
  /**
   * A Databricks source connects at its first read only (status reads: the runner asks the
   * warehouse's state over REST first, so a stopped warehouse is not started by a session).
   */
  deferConnect?: boolean;
}

/** Sources holding a connection (Databricks) have `close()`; local Delta sources do not. */
export async function closeIfClosable(source: unknown): Promise<void> {
  const close = (source as { close?: unknown } | null)?.close;
  if (typeof close === 'function') await (close as () => Promise<void>).call(source);
}

/** Whether a process id is alive (signal 0 checks without signalling). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<dir>.lock` for this process. PGlite corrupts a data directory two processes
 * open (two VS Code windows share the extension's global storage), so a second window gets
 * a clear error instead. A lock left by a dead process is taken over.
 */
export async function lockSandbox(dir: string, pid = process.pid): Promise<() => Promise<void>> {
  const lock = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(lock, String(pid), { flag: 'wx' });
      return async () => {
        const owner = await fs.readFile(lock, 'utf8').catch(() => '');
        if (owner.trim() === String(pid)) await fs.rm(lock, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number((await fs.readFile(lock, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== pid && alive(owner)) {
        throw new SyncError('target', `The sandbox database is in use by another VS Code window (process ${owner}).`, {
          hint: 'Close the other window, or give this one its own folder with the setting deltaSync.sandbox.dataDirectory.',
        });
      }
      await fs.rm(lock, { force: true }); // stale: its process is gone (or it is ours)
    }
  }
  throw new SyncError('target', `Cannot lock the sandbox database ${dir}: another process took its lock file first.`, {
    setting: 'deltaSync.sandbox.dataDirectory',
    retry: 'manual',
    hint: 'Try again; if it keeps failing, close the other VS Code windows that use the sandbox, or give this one its own folder with the setting deltaSync.sandbox.dataDirectory.',
  });
}

export class SyncEngine {
  private sandbox: Promise<SandboxDatabase> | undefined;
  private unlock: (() => Promise<void>) | undefined;
  private disposed = false;

  constructor(private readonly opts: SyncEngineOptions) {}

  /** True once the sandbox has been opened (trees only query it then, or when asked). */
  get sandboxOpen(): boolean {
    return this.sandbox !== undefined;
  }

  /** The shared sandbox, opened on first use; a failed open is retried on the next call. */
  openSandbox(): Promise<SandboxDatabase> {
    if (this.disposed) return Promise.reject(new Error('Delta Sync is shutting down.'));
    if (!this.sandbox) {
      const dir = this.opts.sandboxDir();
      const started = Date.now();
      this.opts.logger.info(`opening the sandbox database ${dir === undefined ? 'in memory' : `in ${dir}`}`);
      const prepare = async (): Promise<void> => {
        if (dir === undefined) return;
        await fs.mkdir(dir, { recursive: true });
        this.unlock ??= await lockSandbox(dir);
      };
      this.sandbox = prepare()
        .then(() => openSandbox(dir))
        .then((db) => {
          this.opts.logger.info(`sandbox ready in ${Date.now() - started} ms`);
          return db;
        });
      this.sandbox.catch(() => {
        this.sandbox = undefined;
      });
    }
    return this.sandbox;
  }

  async openTarget(connection: string): Promise<TargetHandle> {
    const url = await resolveConnection(connection, { lookup: this.opts.lookup, env: this.opts.env, ...(this.opts.neon ? { neon: this.opts.neon() } : {}) });
    if (url === SANDBOX_CONNECTION) {
      const db = await this.openSandbox();
      return { pool: db.pool, label: 'sandbox (embedded Postgres)', kind: 'sandbox', release: async () => undefined };
    }
    const t = await openTarget(url, { env: this.opts.env, databricks: { lookup: this.opts.databricks?.lookup } });
    return { pool: t.pool, label: t.label, kind: t.kind, release: () => t.close() };
  }

  /** Runs `fn` with a target and always releases it. */
  async withTarget<T>(connection: string, fn: (t: TargetHandle) => Promise<T>): Promise<T> {
    const t = await this.openTarget(connection);
    try {
      return await fn(t);
    } finally {
      await t.release();
    }
  }

  /** Opens a mapping's source; call `closeIfClosable` on it when done. */
  async openSource(source: MappingSource, opts: OpenSourceOptions = {}): Promise<ChangeSource> {
    const dbx = this.opts.databricks;
    const openShared = dbx?.openShared;
    if (source.type === 'databricks' && opts.shareSource && openShared) {
      if (!opts.deferConnect) return openShared(source.connection, source.table);
      const config = await resolveDatabricksConnection(source.connection, { lookup: dbx.lookup, env: this.opts.env });
      return DatabricksChangeSource.deferred(config, source.table, () => openShared(source.connection, source.table));
    }
    return openSource(source, { logger: this.opts.logger, databricks: { lookup: dbx?.lookup, env: this.opts.env }, ...(opts.deferConnect ? { deferConnect: true } : {}) });
  }

  async openRunner(mapping: Mapping, opts: OpenSourceOptions = {}): Promise<RunnerHandle> {
    const source = await this.openSource(mapping.source, opts);
    const closeSource = (): Promise<void> => closeIfClosable(source);
    let target: TargetHandle;
    try {
      target = await this.openTarget(mapping.target.connection);
    } catch (e) {
      await closeSource();
      throw e;
    }
    try {
      const runner = new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target, this.opts.logger), this.opts.logger);
      return { runner, source, target, release: () => Promise.all([target.release(), closeSource()]).then(() => undefined) };
    } catch (e) {
      await target.release();
      await closeSource();
      throw e;
    }
  }

  /**
   * A runner writing through a target the caller opened and keeps (continuous syncs share one
   * pool per target connection); `release` closes only the source.
   */
  async openRunnerOn(mapping: Mapping, target: TargetHandle): Promise<RunnerHandle> {
    const source = await this.openSource(mapping.source);
    try {
      const runner = new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target, this.opts.logger), this.opts.logger);
      return { runner, source, target, release: () => closeIfClosable(source) };
    } catch (e) {
      await closeIfClosable(source);
      throw e;
    }
  }

  /** Runs `fn` with a runner and always releases its target. */
  async withRunner<T>(mapping: Mapping, fn: (h: RunnerHandle) => Promise<T>, opts: OpenSourceOptions = {}): Promise<T> {
    const h = await this.openRunner(mapping, opts);
    try {
      return await fn(h);
    } finally {
      await h.release();
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const s = this.sandbox;
    this.sandbox = undefined;
    if (s) await (await s.catch(() => undefined))?.close();
    const unlock = this.unlock;
    this.unlock = undefined;
    await unlock?.();
  }
}
