/**
 * Saved Databricks connections and the warehouse clients the extension keeps open for them.
 * Plain TS over `StateStore` / `SecretStore` so tests run in Node with in-memory stores.
 *
 * Host and HTTP path are kept in globalState; the credentials (token, or OAuth client id
 * and secret) only in SecretStorage. Browsing and mapping status share ONE client per
 * connection, opened on first use and closed on `remove` / `dispose`, so a tree refresh
 * never opens a warehouse connection per table or per mapping.
 */
import { DatabricksChangeSource } from '../sync/sources/DatabricksChangeSource';
import { DatabricksClient, normalizeHost } from '../sync/databricks/DatabricksClient';
import type { DatabricksConnectionConfig } from '../sync/databricks/DatabricksClient';
import { DatabricksCatalog } from '../sync/databricks/DatabricksCatalog';
import { formatTableName, parseTableName } from '../sync/databricks/databricksTypes';
import type { ChangeRow } from '../sync/delta/types';
import type { ChangeSource } from '../sync/ports/ChangeSource';
import { resolveDatabricksConnection } from '../sync/databricks/resolveDatabricksConnection';
import { SyncError, isSyncError } from '../sync/errors';
import type { Logger } from '../sync/ports/Logger';
import { silentLogger } from '../sync/ports/Logger';
import type { SecretStore, StateStore } from '../platform/KeyValueStore';
import { databricksSecretKey, type DatabricksConnectionInfo } from '../platform/StateKeys';
import { CONNECTION_NAME_RE } from './TargetsModel';
import { errorText } from './toProtocolError';

export type DatabricksAuth = DatabricksConnectionConfig['auth'];

/** What the Add Connection flow collects. */
export interface DatabricksConnectionInput {
  name: string;
  host: string;
  httpPath: string;
  auth: DatabricksAuth;
}

/** Connection settings that are not per connection (extra CA, retries), e.g. from settings. */
export type DatabricksClientExtras = Pick<DatabricksConnectionConfig, 'customCaCert' | 'retryMaxAttempts' | 'socketTimeoutMs'>;

export interface DatabricksConnectionsOptions {
  logger?: Logger;
  /** Environment for connections not saved here (DATABRICKS_*, DELTA_NEON_SYNC_DATABRICKS_<NAME>_*). */
  env?: Record<string, string | undefined>;
  /** Applied to every client this class opens. */
  extras?: () => Promise<DatabricksClientExtras> | DatabricksClientExtras;
  now?: () => number;
}

export type TestResult =
  | { ok: true; name: string; host: string; catalogs: string[]; elapsedMs: number }
  | { ok: false; name: string; error: SyncError; elapsedMs: number };

/** Why an HTTP path is not a warehouse path, or undefined when it looks like one. */
export function validateHttpPath(p: string): string | undefined {
  const v = p.trim();
  if (v === '') return 'Copy the HTTP path from the SQL warehouse\'s Connection details.';
  if (!/^\/?sql\/[\w.]+\/(warehouses|endpoints)\/[\w-]+$/.test(v) && !/^\/?sql\/protocolv1\/o\/\d+\/[\w-]+$/.test(v)) {
    return 'Expected /sql/1.0/warehouses/<id> (the SQL warehouse\'s Connection details).';
  }
  return undefined;
}

/** Why a host is not usable, or undefined. Accepts `https://host[:port][/...]`. */
export function validateHost(h: string): string | undefined {
  const { host } = normalizeHost(h);
  if (!host) return 'Enter the workspace URL, e.g. adb-1234567890123456.7.azuredatabricks.net';
  if (/\s/.test(host)) return 'A host name has no spaces.';
  return undefined;
}

function parseAuth(text: string): DatabricksAuth | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (o.type === 'pat' && typeof o.token === 'string') return { type: 'pat', token: o.token };
  if (o.type === 'oauth-m2m' && typeof o.clientId === 'string' && typeof o.clientSecret === 'string') {
    return { type: 'oauth-m2m', clientId: o.clientId, clientSecret: o.clientSecret };
  }
  return undefined;
}

/** A failure that a fresh connection may fix (expired session, warehouse restarted). */
function reconnectable(e: unknown): boolean {
  return isSyncError(e) && (e.kind === 'connection' || e.kind === 'auth');
}

export class DatabricksConnections {
  private readonly clients = new Map<string, Promise<DatabricksClient>>();
  private readonly log: Logger;
  private disposed = false;

  constructor(
    private readonly state: StateStore,
    private readonly secrets: SecretStore,
    private readonly opts: DatabricksConnectionsOptions = {},
  ) {
    this.log = opts.logger ?? silentLogger;
  }

  list(): DatabricksConnectionInfo[] {
    return [...(this.state.get('deltaSync.databricksConnections') ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): DatabricksConnectionInfo | undefined {
    return this.list().find((c) => c.name === name);
  }

  /** Why a name cannot be used, or undefined (the input box's validation). */
  validateName(name: string): string | undefined {
    if (!CONNECTION_NAME_RE.test(name)) return 'Use letters, digits, ".", "_" or "-", starting with a letter or digit.';
    if (this.get(name)) return `A Databricks connection named "${name}" exists.`;
    return undefined;
  }

  /** Saves the credentials first, so a listed connection always has them. */
  async add(input: DatabricksConnectionInput): Promise<DatabricksConnectionInfo> {
    const name = input.name.trim();
    const problem = this.validateName(name) ?? validateHost(input.host) ?? validateHttpPath(input.httpPath);
    if (problem) throw new SyncError('usage', problem, { setting: name });
    const auth = input.auth;
    if ((auth.type === 'pat' && auth.token.trim() === '') || (auth.type === 'oauth-m2m' && (auth.clientId.trim() === '' || auth.clientSecret.trim() === ''))) {
      throw new SyncError('usage', 'The credentials are empty.', { setting: name });
    }
    await this.secrets.store(databricksSecretKey(name), JSON.stringify(auth));
    const info: DatabricksConnectionInfo = { name, host: input.host.trim(), httpPath: input.httpPath.trim(), authType: auth.type, addedAt: (this.opts.now ?? Date.now)() };
    await this.state.update('deltaSync.databricksConnections', [...this.list(), info]);
    return info;
  }

  /** Forgets the connection and its secret and closes its client. */
  async remove(name: string): Promise<void> {
    await this.drop(name);
    await this.state.update('deltaSync.databricksConnections', this.list().filter((c) => c.name !== name));
    await this.secrets.delete(databricksSecretKey(name));
  }

  /**
   * The SecretStorage resolver (`DatabricksResolveOptions.lookup`): the saved connection's
   * config, or undefined when no connection of that name is saved here (the engine then
   * tries the environment). Throws SyncError('auth') when the secret is gone.
   */
  readonly lookup = async (name: string): Promise<DatabricksConnectionConfig | undefined> => {
    const info = this.get(name);
    if (!info) return undefined;
    const raw = await this.secrets.get(databricksSecretKey(name));
    const auth = raw === undefined ? undefined : parseAuth(raw);
    if (!auth) {
      throw new SyncError('auth', `No stored credentials for the Databricks connection "${name}".`, { setting: name, hint: 'Remove the connection and add it again.' });
    }
    return { host: info.host, httpPath: info.httpPath, auth, ...(await this.extras()) };
  };

  private async extras(): Promise<DatabricksClientExtras> {
    return (await this.opts.extras?.()) ?? {};
  }

  /** A connection's config: saved here, else from the environment (the engine's rules). */
  async config(name: string): Promise<DatabricksConnectionConfig> {
    const c = await resolveDatabricksConnection(name, { lookup: this.lookup, env: this.opts.env });
    return { ...(await this.extras()), ...c };
  }

  /** The shared client of a connection, connected on first use; a failed connect is not kept. */
  client(name: string): Promise<DatabricksClient> {
    if (this.disposed) return Promise.reject(new SyncError('cancelled', 'Delta Sync is shutting down.'));
    let c = this.clients.get(name);
    if (!c) {
      c = this.config(name).then((config) => DatabricksClient.connect(config, { logger: this.log }));
      this.clients.set(name, c);
      c.catch(() => {
        if (this.clients.get(name) === c) this.clients.delete(name);
      });
    }
    return c;
  }

  /**
   * Runs `fn` on the shared client. When a kept client fails with a connection or auth
   * error (sessions expire, warehouses restart), it is dropped and `fn` runs once more on
   * a fresh connection, whose error (classified at connect) is the one reported.
   */
  async withClient<T>(name: string, fn: (client: DatabricksClient) => Promise<T>): Promise<T> {
    const kept = this.clients.get(name);
    const used = kept ?? this.client(name);
    const client = await used;
    try {
      return await fn(client);
    } catch (e) {
      if (kept === undefined || !reconnectable(e)) throw e;
      this.log.debug(`databricks: ${name}: ${errorText(e)}; reconnecting once`);
      // Only the client that failed is dropped: a parallel call may already have replaced it.
      if (this.clients.get(name) === used) {
        this.clients.delete(name);
        await client.close();
      }
      return fn(await this.client(name));
    }
  }

  catalog<T>(name: string, fn: (catalog: DatabricksCatalog) => Promise<T>): Promise<T> {
    return this.withClient(name, (c) => fn(new DatabricksCatalog(c)));
  }

  /** Closes and forgets the shared client of `name` (if any). */
  async drop(name: string): Promise<void> {
    const c = this.clients.get(name);
    this.clients.delete(name);
    if (c) await (await c.catch(() => undefined))?.close();
  }

  /**
   * Connects with a fresh client (not the shared one, and without driver retries so a
   * stopped warehouse answers at once) and lists the catalogs. Never throws: the result
   * carries the classified SyncError.
   */
  async test(name: string): Promise<TestResult> {
    const started = Date.now();
    let client: DatabricksClient | undefined;
    try {
      const config = await this.config(name);
      client = await DatabricksClient.connect({ ...config, retryMaxAttempts: 1 }, { logger: this.log });
      const catalogs = await new DatabricksCatalog(client).catalogs();
      return { ok: true, name, host: normalizeHost(config.host).host, catalogs, elapsedMs: Date.now() - started };
    } catch (e) {
      const error = isSyncError(e) ? e : new SyncError('connection', e instanceof Error ? e.message : String(e), { cause: e });
      return { ok: false, name, error, elapsedMs: Date.now() - started };
    } finally {
      await client?.close();
    }
  }

  /**
   * A ChangeSource of `table` on the shared client (for mapping status and previews).
   * Each call goes through `withClient`, so a kept connection that went stale is replaced
   * once; its `close()` leaves the shared client open.
   */
  async openSharedSource(connection: string, table: string): Promise<ChangeSource> {
    const name = parseTableName(table);
    const on = <T>(fn: (source: DatabricksChangeSource) => Promise<T>): Promise<T> => this.withClient(connection, (client) => fn(new DatabricksChangeSource(client, name)));
    // Fails here, classified, when the table is not visible.
    await on((source) => source.columns());
    const clients = this;
    return {
      name: formatTableName(name),
      latestVersion: () => on((source) => source.latestVersion()),
      snapshot: (version?: number) => on((source) => source.snapshot(version)),
      commitTimestamp: (version: number) => on((source) => source.commitTimestamp(version)),
      // A stream is not replayed: it runs on the client as it is.
      async *changes(start: number, end: number, opts?: { batchSize?: number; signal?: AbortSignal }): AsyncIterable<ChangeRow[]> {
        yield* new DatabricksChangeSource(await clients.client(connection), name).changes(start, end, opts);
      },
      close: async () => undefined,
    };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const names = [...this.clients.keys()];
    await Promise.all(names.map((n) => this.drop(n)));
  }
}

/** One line for the user: the outcome of `test`, with the engine's hint on failure. */
export function testResultMessage(r: TestResult): string {
  if (r.ok) {
    const shown = r.catalogs.slice(0, 5).join(', ');
    const more = r.catalogs.length > 5 ? `, … (${r.catalogs.length - 5} more)` : '';
    return `Connected to ${r.host} as "${r.name}" in ${r.elapsedMs} ms: ${r.catalogs.length} catalog${r.catalogs.length === 1 ? '' : 's'} visible${r.catalogs.length ? ` (${shown}${more})` : ''}.`;
  }
  return `"${r.name}": ${errorText(r.error)}`;
}
