/**
 * Postgres targets: saved connections (names and a credential-free summary in globalState,
 * the connection string in SecretStorage only) plus the built-in embedded sandbox.
 * Plain TS over the `StateStore` / `SecretStore` interfaces so tests use in-memory stores.
 */
import { isSyncError, SyncError } from '../sync/errors';
import type { ServerAddress } from '../sync/postgres/classifyPgError';
import { describeConnectionProblem, isMissingPassword, serverAddressOf } from '../sync/postgres/testConnection';
import { isLakebaseReference, parseLakebaseReference } from '../sync/mapping/lakebaseReference';
import type { SecretStore, StateStore } from '../platform/KeyValueStore';
import { connectionSecretKey, type ConnectionInfo } from '../platform/StateKeys';
import { NeonModel } from './NeonModel';
import type { NeonNode } from './NeonModel';
import { groupBySchema } from './targetTables';
import type { TargetTable } from './targetTables';
import { errorText } from './toProtocolError';

/** Same rule as a mapping's `target.connection` name, so any saved name can be used there. */
export const CONNECTION_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
export const SANDBOX_NAME = 'sandbox';

export type TargetNode =
  | { kind: 'sandbox'; name: string; label: string; detail: string }
  | { kind: 'connection'; info: ConnectionInfo }
  /** A schema of a saved connection's database, with the tables listed under it (one catalog read per connection). */
  | { kind: 'schema'; connection: string; schema: string; tables: TargetTable[] }
  /**
   * A table in a target; `connection` is the sandbox name, a saved connection's or a `neon:`
   * reference. `underSchema`: listed under its schema's row, so labelled by its name alone.
   */
  | { kind: 'table'; connection: string; schema: string; table: string; rows: string; estimated: boolean; underSchema?: boolean }
  /** `connection`: the saved connection whose error this row shows (it then offers Edit / Retry). */
  | { kind: 'message'; severity: 'info' | 'error'; label: string; id: string; connection?: string; tooltip?: string }
  /** The Neon account and what is below it (NeonModel). */
  | Exclude<NeonNode, { kind: 'message' }>;

/**
 * `host[:port]/database` of a postgres URL, never the user or password; for a `lakebase:`
 * reference `lakebase host/database (profile P)`.
 * Throws SyncError('usage') for anything that is neither.
 */
export function summarizeConnectionString(s: string): string {
  if (isLakebaseReference(s.trim())) {
    const r = parseLakebaseReference(s.trim());
    if (!r.ok) throw new SyncError('usage', `Not a valid Lakebase target: ${r.problem}`);
    return `lakebase ${r.ref.host ?? '(PGHOST)'}/${r.ref.database}${r.ref.workspace !== undefined ? ` (profile ${r.ref.workspace})` : ''}`;
  }
  let u: URL;
  try {
    u = new URL(s.trim());
  } catch {
    throw new SyncError('usage', 'Not a connection URL.', { hint: 'Use postgresql://user:password@host:5432/database?sslmode=require' });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new SyncError('usage', `Unsupported scheme ${u.protocol}`, { hint: 'Use a postgres:// or postgresql:// URL.' });
  }
  if (!u.hostname) throw new SyncError('usage', 'The connection URL has no host.');
  const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
  return `${u.hostname}${u.port ? `:${u.port}` : ''}/${db}`;
}

/** host, port and database of a summary made by summarizeConnectionString (not for lakebase ones). */
export function serverFromSummary(summary: string): ServerAddress | undefined {
  const m = /^(\[[^\]]+\]|[^:/\s]+)(?::(\d+))?\/(.*)$/.exec(summary);
  if (!m || summary.startsWith('lakebase ')) return undefined;
  const db = m[3] === '(default database)' ? undefined : m[3];
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: m[2] ?? 5432, ...(db ? { database: db } : {}) };
}

/**
 * The row a saved connection shows when its tables cannot be listed: the problem in words
 * (describeConnectionProblem), with the connection named so the row offers Edit and Retry.
 */
export function connectionErrorNode(info: ConnectionInfo, e: unknown, server: ServerAddress | undefined = serverFromSummary(info.summary)): TargetNode {
  const problem = server && !isSyncError(e) ? describeConnectionProblem(e, server) : undefined;
  const error = problem?.error ?? (isSyncError(e) ? e : undefined);
  if (problem?.field === 'password' && isMissingPassword(e)) {
    // The engine's hint speaks of PGPASSWORD and mapping files; a saved connection's password
    // goes into its stored string, through the row's own Edit action.
    const user = server?.user !== undefined ? `user "${server.user}"` : 'the connection\'s user';
    return {
      kind: 'message',
      severity: 'error',
      id: `${info.name}:error`,
      connection: info.name,
      label: `No password for ${user}: the server asks for one. Add it with Edit Connection.`,
      tooltip: `The saved connection string of "${info.name}" has no password. Edit Connection (the pencil on this row) asks for it and keeps it in VS Code's secret storage; then Retry.`,
    };
  }
  return {
    kind: 'message',
    severity: 'error',
    id: `${info.name}:error`,
    connection: info.name,
    label: problem?.headline ?? (e instanceof Error ? e.message : String(e)),
    ...(error?.hint ? { tooltip: error.hint } : {}),
  };
}

/** Lists a target's tables: `connection` is the sandbox's name, a saved connection's or a `neon:` reference. */
export type TableLister = (connection: string) => Promise<TargetTable[]>;

/**
 * Where a saved connection points, user included (read from its stored string; the summary
 * the tree keeps has no user), for the words of its error row; undefined when unknown.
 */
export type ConnectionAddress = (connection: string) => Promise<ServerAddress | undefined>;

/**
 * The rows below a target row that lists tables: under a saved connection (plain Postgres
 * or Lakebase) and a Neon database, its schemas, each holding its tables with their row
 * counts; under the sandbox (one local database, mostly `public`) its tables as
 * `schema.table`; under a schema row, its tables. A database without tables says so; one
 * that cannot be listed shows its error as a row (a saved connection's offers Edit / Retry).
 * Other rows have no tables below them (undefined).
 */
export async function tableRowsBelow(node: TargetNode, listTables: TableLister, addressOf?: ConnectionAddress): Promise<TargetNode[] | undefined> {
  if (node.kind === 'schema' || node.kind === 'neon-schema') {
    const connection = node.kind === 'schema' ? node.connection : node.reference;
    return node.tables.map((t): TargetNode => ({ kind: 'table', connection, schema: t.schema, table: t.table, rows: t.rows, estimated: t.estimated, underSchema: true }));
  }
  if (node.kind !== 'sandbox' && node.kind !== 'connection' && node.kind !== 'neon-database') return undefined;
  const connection = node.kind === 'sandbox' ? SANDBOX_NAME : node.kind === 'neon-database' ? node.reference : node.info.name;
  try {
    const tables = await listTables(connection);
    if (tables.length === 0) return [{ kind: 'message', severity: 'info', id: `${connection}:empty`, label: 'No tables yet' }];
    if (node.kind === 'neon-database') return NeonModel.schemasOf(node, tables) as TargetNode[];
    if (node.kind === 'connection') return groupBySchema(tables).map((g): TargetNode => ({ kind: 'schema', connection, schema: g.schema, tables: g.tables }));
    return tables.map((t): TargetNode => ({ kind: 'table', connection, schema: t.schema, table: t.table, rows: t.rows, estimated: t.estimated }));
  } catch (e) {
    if (node.kind === 'connection') {
      const server = await addressOf?.(node.info.name).catch(() => undefined);
      return [connectionErrorNode(node.info, e, server ?? serverFromSummary(node.info.summary))];
    }
    return [{ kind: 'message', severity: 'error', id: `${connection}:error`, label: `Cannot list tables: ${errorText(e)}` }];
  }
}

export class TargetsModel {
  constructor(
    private readonly state: StateStore,
    private readonly secrets: SecretStore,
    private readonly now: () => number = Date.now,
  ) {}

  connections(): ConnectionInfo[] {
    return [...(this.state.get('deltaSync.connections') ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  }

  children(): TargetNode[] {
    return [
      { kind: 'sandbox', name: SANDBOX_NAME, label: 'Sandbox (embedded Postgres)', detail: 'local, started on demand' },
      ...this.connections().map((info): TargetNode => ({ kind: 'connection', info })),
    ];
  }

  /** Why a name cannot be used, or undefined when it can (for the input box's validation). */
  validateName(name: string): string | undefined {
    if (!CONNECTION_NAME_RE.test(name)) return 'Use letters, digits, ".", "_" or "-", starting with a letter or digit.';
    if (name === SANDBOX_NAME) return `"${SANDBOX_NAME}" is the built-in sandbox.`;
    if (this.connections().some((c) => c.name === name)) return `A connection named "${name}" exists.`;
    return undefined;
  }

  /** Saves the secret first so a listed connection always has its string. */
  async add(name: string, connectionString: string): Promise<ConnectionInfo> {
    const problem = this.validateName(name);
    if (problem) throw new SyncError('usage', problem, { setting: name });
    const summary = summarizeConnectionString(connectionString);
    await this.secrets.store(connectionSecretKey(name), connectionString.trim());
    const info: ConnectionInfo = { name, summary, addedAt: this.now() };
    await this.state.update('deltaSync.connections', [...this.connections(), info]);
    return info;
  }

  /** Adds `name`, or replaces the string and summary of the saved connection of that name. */
  async save(name: string, connectionString: string): Promise<ConnectionInfo> {
    const existing = this.connections().find((c) => c.name === name);
    if (!existing) return this.add(name, connectionString);
    const summary = summarizeConnectionString(connectionString);
    await this.secrets.store(connectionSecretKey(name), connectionString.trim());
    const info: ConnectionInfo = { ...existing, summary };
    await this.state.update('deltaSync.connections', this.connections().map((c) => (c.name === name ? info : c)));
    return info;
  }

  async remove(name: string): Promise<void> {
    await this.state.update('deltaSync.connections', this.connections().filter((c) => c.name !== name));
    await this.secrets.delete(connectionSecretKey(name));
  }

  /** The stored connection string; SyncError('auth') when the secret is gone. */
  /** A saved postgres:// connection's address (user included), undefined for a lakebase: reference. */
  async address(name: string): Promise<ServerAddress | undefined> {
    const url = await this.connectionString(name);
    return isLakebaseReference(url.trim()) ? undefined : serverAddressOf(url);
  }

  async connectionString(name: string): Promise<string> {
    const s = await this.secrets.get(connectionSecretKey(name));
    if (s === undefined) {
      throw new SyncError('auth', `No stored connection string for "${name}".`, {
        setting: name,
        hint: 'Remove the connection and add it again.',
      });
    }
    return s;
  }
}
