/**
 * "Test Connection": open one connection, run `select version()`, close. Failures become a
 * short headline the user can act on ("Nothing is listening on 127.0.0.1:1 — is Postgres
 * running?") plus the field of the connection at fault, built on the engine's own
 * classification (classifyConnectError / classifyPgError), so the CLI and the extension
 * say the same thing. No vscode here.
 */
import { isSyncError, SyncError } from '../errors';
import { classifyConnectError, classifyPgError, type ServerAddress } from './classifyPgError';
import pg from 'pg';
import { parsePostgresUrl, poolConfigFromUrl } from './createPool';

/** The part of a connection a problem points at (what an Edit should re-ask). */
export type ConnectionField = 'host' | 'port' | 'database' | 'user' | 'password' | 'sslmode';

export interface ConnectionProblem {
  /** One sentence, no driver jargon, naming host:port, user or database. */
  headline: string;
  /** The field to edit, when the problem points at one. */
  field?: ConnectionField;
  /** The classified error (message and hint) for logs and details. */
  error: SyncError;
}

export type ConnectionTestResult =
  | { ok: true; serverVersion: string; server: string }
  | { ok: false; problem: ConnectionProblem };

function label(s: ServerAddress): string {
  return `${s.host}${s.port !== undefined ? `:${s.port}` : ''}`;
}

function fields(e: unknown): { code: string; message: string } {
  const x = (isSyncError(e) && e.cause !== undefined ? e.cause : e) as { code?: unknown; message?: unknown } | undefined;
  return { code: typeof x?.code === 'string' ? x.code : '', message: typeof x?.message === 'string' ? x.message : String(e) };
}

/**
 * Whether `e` is node-postgres failing a login because the server asked for a (SCRAM)
 * password and the connection has none.
 */
export function isMissingPassword(e: unknown): boolean {
  return /client password must be a string/.test(fields(e).message);
}

/** Where a postgres:// URL points (never the password); defaults as libpq has them. */
export function serverAddressOf(url: string): ServerAddress {
  const p = parsePostgresUrl(url);
  const sslMode = p.params.get('sslmode');
  return {
    host: p.host ?? 'localhost',
    port: p.port ?? 5432,
    ...(p.database !== undefined ? { database: p.database } : {}),
    ...(p.user !== undefined ? { user: p.user } : {}),
    ...(sslMode !== undefined ? { sslMode } : {}),
    ...(p.params.get('channel_binding') !== undefined ? { channelBinding: p.params.get('channel_binding') } : {}),
  };
}

/**
 * What went wrong opening a connection to `server`, for a person: a headline and the field
 * to fix. Pure; `e` is what pg threw (or a SyncError the engine made of it).
 */
export function describeConnectionProblem(e: unknown, server: ServerAddress): ConnectionProblem {
  const at = label(server);
  const user = server.user ?? '(default user)';
  const error = classifyConnectError(e, server) ?? classifyPgError(e, { action: `connecting to ${at}` });
  const { code, message } = fields(e);
  const p = (headline: string, field?: ConnectionField): ConnectionProblem => ({ headline, ...(field ? { field } : {}), error });
  if (code === 'ECONNREFUSED') return p(`Nothing is listening on ${at} — is Postgres running?`, 'port');
  if (code === 'ENOTFOUND') return p(`Unknown host "${server.host}": check the host name.`, 'host');
  if (code === 'EAI_AGAIN') return p(`Could not look up "${server.host}" (DNS did not answer): check the network, then Retry.`, 'host');
  if (code === '57P03') return p(`The server at ${at} is starting up: Retry in a few seconds.`);
  if (error.setting === 'connect_timeout') return p(`No answer from ${at}: check the host and port, a VPN, firewall or IP allow list.`, 'host');
  if (code === '28P01') return p(`Password authentication failed for user "${user}".`, 'password');
  if (isMissingPassword(e)) return p(`The server asks for a password for user "${user}", but none was given.`, 'password');
  if (code === '3D000') return p(`Database "${server.database ?? user}" does not exist on ${at}.`, 'database');
  if (error.setting === 'sslmode' && /only TLS/.test(error.message)) return p(`The server at ${at} requires TLS: use sslmode=require (or verify-full).`, 'sslmode');
  if (/does not support SSL/i.test(message)) return p(`The server at ${at} does not accept TLS: use sslmode=disable (local or trusted networks only).`, 'sslmode');
  if (error.setting === 'sslrootcert' || error.setting === 'sslmode' || error.setting === 'channel_binding') return p(error.message.replace(/ No connection was made\.$/, ''), 'sslmode');
  if (code === '28000') return p(`The server at ${at} refuses user "${user}" from this machine (${message}).`, 'user');
  if (code === '53300') return p(`The server at ${at} has too many connections: Retry later.`);
  if (error.kind === 'connection') return p(error.message.replace(/ No connection was made\.$/, ''));
  return p(`Could not connect to ${at}: ${message}`);
}

/** Connects to `url` once (one connection, short timeout), runs select version(), closes. */
export async function testPostgresConnection(url: string, opts: { connectionTimeoutMillis?: number } = {}): Promise<ConnectionTestResult> {
  let server: ServerAddress;
  try {
    server = serverAddressOf(url);
  } catch (e) {
    const error = isSyncError(e) ? e : new SyncError('usage', String(e));
    return { ok: false, problem: { headline: error.message, error } };
  }
  // One client, ended whatever happens, not a pool: when the login fails half-way (the server
  // asked for a SCRAM password and there is none) node-postgres reports the error but leaves
  // the socket open, and a pool never closes it, so the server kept that backend until
  // authentication_timeout (the integration test's DROP DATABASE hung on it).
  const config = poolConfigFromUrl(url, { connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 10_000, applicationName: 'delta-neon-sync test' });
  const ClientClass = (config.Client ?? pg.Client) as typeof pg.Client;
  const client = new ClientClass(config);
  client.on('error', () => undefined); // the connection dropping after the test: nothing to do
  try {
    await client.connect();
    const r = await client.query<{ version: string }>('select version() as version');
    const full = r.rows[0]?.version ?? '';
    return { ok: true, serverVersion: full.split(/ on | \(|,/)[0]?.trim() || full, server: `${label(server)}${server.database ? `/${server.database}` : ''}` };
  } catch (e) {
    return { ok: false, problem: describeConnectionProblem(e, server) };
  } finally {
    await client.end().catch(() => undefined);
  }
}