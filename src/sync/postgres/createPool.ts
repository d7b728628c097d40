import * as fs from 'node:fs';
import * as net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { CustomTypesConfig, PoolConfig } from 'pg';
import { SyncError } from '../errors';
import { CHANNEL_BINDING_MODES, ChannelBindingRequiredClient } from './channelBinding';
import type { ChannelBinding } from './channelBinding';
import { limitStatementsOutsideTransactions, setBeginSql } from './transaction';

/**
 * The limits the engine sets on each of its transactions (SET LOCAL as it opens one, see
 * transaction.ts; never a session SET, which a transaction pooler would leave on a server
 * connection for other clients), so no wait inside a transaction is unbounded: Postgres's
 * own settings of these names.
 */
export interface SessionLimits {
  /** Longest statement; a snapshot COPY or an index build is one statement. */
  statement_timeout: string;
  /** Longest wait for a table or row lock held by another session. */
  lock_timeout: string;
  /** Longest pause inside an open transaction (the server then ends the session). */
  idle_in_transaction_session_timeout: string;
}

/** Defaults suited to a remote Neon target: generous for big loads, bounded everywhere. */
export const SESSION_DEFAULTS: SessionLimits = {
  statement_timeout: '3600000', // 1 h
  lock_timeout: '60000', // 1 min
  idle_in_transaction_session_timeout: '600000', // 10 min
};

const SESSION_KEYS = Object.keys(SESSION_DEFAULTS) as (keyof SessionLimits)[];
const DURATION_RE = /^\d+\s*(ms|s|min|h|d)?$/;

/** libpq's sslmode values (allow is treated like prefer). */
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface CreatePoolOptions {
  /** Pool size; default 4 (the engine uses one connection per apply, plus reads). */
  max?: number;
  /** ms to open a connection (TCP, TLS, login); default 15000, or connect_timeout (s) in the URL. */
  connectionTimeoutMillis?: number;
  /**
   * Session limits the engine sets on every connection it opens (Postgres settings, in
   * ms, or with a unit like '90s'; 0 turns one off). The URL's parameters of the same names
   * override these; defaults in SESSION_DEFAULTS.
   */
  session?: Partial<SessionLimits>;
  /** Cut off a connection whose statement gets no answer for this many ms (see ActiveClients); default 60000, or watchdog_timeout (s) in the URL; 0 turns it off. */
  watchdogMillis?: number;
  /**
   * How long a run's lease on its pipeline lasts without renewal (see runLease.ts): a run
   * whose process stalled or was killed on another machine blocks the pipeline this long.
   * Default 60000, or run_lease_timeout (s) in the URL.
   */
  runLeaseMillis?: number;
  /** How often a run renews its lease; default 10000 (at most a sixth of the lease), or run_lease_renew (s) in the URL. */
  runLeaseRenewMillis?: number;
  /** TCP keepalive on the client side, first probe after this many ms idle; default 30000, or keepalives_idle (s) in the URL; keepalives=0 turns it off. */
  keepAliveInitialDelayMillis?: number;
  /** ms; default 10000. */
  idleTimeoutMillis?: number;
  /** Sent as application_name unless the URL has one. */
  applicationName?: string;
  /** Overrides sslmode from the URL. */
  sslMode?: SslMode;
  /** Overrides channel_binding from the URL (default prefer). */
  channelBinding?: ChannelBinding;
  /**
   * The password, overriding the URL's. A function is called for every NEW connection
   * (never for one already open), before its socket opens, so it can hand out a short-lived
   * token (a Lakebase OAuth token) fetched when needed: a connection keeps working after the
   * token it logged in with expires, so a long COPY is never cut by a refresh.
   */
  password?: string | (() => Promise<string>);
  /**
   * With a password function: what a failed login becomes (the thrown value replaces the
   * error), so the provider's owner can say where the password came from (a Lakebase
   * token of which profile). Other failures pass through.
   */
  loginError?: (e: unknown) => unknown;
}

// OIDs of the types whose default node-postgres parsing is lossy or timezone-dependent.
const OID = {
  int8: 20,
  int8Array: 1016,
  numeric: 1700,
  numericArray: 1231,
  date: 1082,
  dateArray: 1182,
  timestamp: 1114,
  timestampArray: 1115,
  timestamptz: 1184,
  timestamptzArray: 1185,
} as const;

const identity = (v: string): string => v;

type NestedArray<T> = (T | null | NestedArray<T>)[];

/**
 * Parses Postgres array text output (`{1,NULL,"a b"}`, nested for several dimensions);
 * elements go through `conv`, NULL stays null.
 */
export function parseTextArray<T>(text: string, conv: (e: string) => T): NestedArray<T> {
  let i = 0;
  // Arrays with custom bounds print a "[1:2]=" prefix.
  if (text[0] === '[') i = text.indexOf('=') + 1;
  const parse = (): NestedArray<T> => {
    const out: NestedArray<T> = [];
    i++; // '{'
    while (i < text.length) {
      const ch = text[i];
      if (ch === '}') {
        i++;
        return out;
      }
      if (ch === ',') {
        i++;
        continue;
      }
      if (ch === '{') {
        out.push(parse());
        continue;
      }
      if (ch === '"') {
        let s = '';
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\') i++;
          s += text[i];
          i++;
        }
        i++;
        out.push(conv(s));
        continue;
      }
      let j = i;
      while (j < text.length && text[j] !== ',' && text[j] !== '}') j++;
      const raw = text.slice(i, j);
      out.push(raw === 'NULL' ? null : conv(raw));
      i = j;
    }
    return out;
  };
  return parse();
}

/**
 * Per-connection type parsers (never pg's global ones, which other code in the same
 * process may rely on): int8 -> bigint; numeric, date, timestamp, timestamptz -> the
 * server's text (no float rounding, no lossy JS Date, no local-timezone shifts).
 */
export const exactTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format === undefined || format === 'text') {
      switch (oid) {
        case OID.int8:
          return (v: string) => BigInt(v);
        case OID.int8Array:
          return (v: string) => parseTextArray(v, (e) => BigInt(e));
        case OID.numeric:
        case OID.date:
        case OID.timestamp:
        case OID.timestamptz:
          return identity;
        case OID.numericArray:
        case OID.dateArray:
        case OID.timestampArray:
        case OID.timestamptzArray:
          return (v: string) => parseTextArray(v, (e) => e);
      }
    }
    return pg.types.getTypeParser(oid, format);
  }) as CustomTypesConfig['getTypeParser'],
};

interface ParsedUrl {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  params: Map<string, string>;
}

/** Parses postgres:// and postgresql:// URLs (host may also come from ?host=/socket/dir). */
export function parsePostgresUrl(url: string): ParsedUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SyncError('usage', 'The connection string is not a valid postgres:// URL.', {
      hint: 'Use postgresql://user:password@host:5432/dbname?sslmode=require',
    });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new SyncError('usage', `The connection string must start with postgresql:// (got ${u.protocol}//).`);
  }
  const params = new Map<string, string>();
  for (const [k, v] of u.searchParams) params.set(k, v);
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return {
    host: params.get('host') ?? (hostname === '' ? undefined : decodeURIComponent(hostname)),
    port: params.has('port') ? Number(params.get('port')) : u.port ? Number(u.port) : undefined,
    user: params.get('user') ?? (u.username ? decodeURIComponent(u.username) : undefined),
    password: params.get('password') ?? (u.password ? decodeURIComponent(u.password) : undefined),
    database: params.get('dbname') ?? (db === '' ? undefined : db),
    params,
  };
}

function isLocalHost(host: string | undefined): boolean {
  if (host === undefined || host.startsWith('/')) return true;
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * TLS settings for one sslmode, applied to this pool's connections only.
 * - disable: no TLS. require: TLS, no certificate check (libpq semantics), unless a root
 *   certificate is given, which makes it verify-ca (as libpq does).
 * - verify-ca: chain checked against sslrootcert (or the system CAs), host name not checked.
 * - verify-full: chain and host name checked; SNI is always sent for host names, which
 *   Neon needs to route the connection.
 * - prefer/allow and no sslmode: node-postgres cannot fall back from TLS to plain on one
 *   connection attempt, so this picks up front: plain for loopback and Unix sockets, TLS
 *   without verification elsewhere (and everywhere when `needsTls`: channel_binding=require
 *   cannot work without TLS). That is the one difference from libpq.
 * Without sslrootcert (or with sslrootcert=system) the chain is checked against Node's
 * built-in list of public CAs, which covers Neon's certificates.
 */
export function sslConfigFor(mode: SslMode | undefined, host: string | undefined, params: Map<string, string>, needsTls = false): false | ConnectionOptions {
  const rootCertPath = params.get('sslrootcert');
  const readFile = (p: string | undefined): string | undefined => {
    if (p === undefined || p === 'system') return undefined;
    try {
      return fs.readFileSync(p, 'utf8');
    } catch (e) {
      throw new SyncError('usage', `Cannot read the TLS file ${p}: ${(e as Error).message}`, { setting: 'sslrootcert' });
    }
  };
  const sni = host !== undefined && !host.startsWith('/') && net.isIP(host) === 0 ? { servername: host } : {};
  const clientCert = {
    ...(params.get('sslcert') ? { cert: readFile(params.get('sslcert')) } : {}),
    ...(params.get('sslkey') ? { key: readFile(params.get('sslkey')) } : {}),
  };
  const ca = readFile(rootCertPath);
  switch (mode) {
    case 'disable':
      return false;
    case undefined:
    case 'allow':
    case 'prefer':
      return isLocalHost(host) && !needsTls ? false : { rejectUnauthorized: false, ...sni, ...clientCert };
    case 'require':
      if (rootCertPath !== undefined) {
        return { rejectUnauthorized: true, ...(ca ? { ca } : {}), checkServerIdentity: () => undefined, ...sni, ...clientCert };
      }
      return { rejectUnauthorized: false, ...sni, ...clientCert };
    case 'verify-ca':
      return { rejectUnauthorized: true, ...(ca ? { ca } : {}), checkServerIdentity: () => undefined, ...sni, ...clientCert };
    case 'verify-full':
      return { rejectUnauthorized: true, ...(ca ? { ca } : {}), ...sni, ...clientCert };
    default: {
      const bad: never = mode;
      throw new SyncError('usage', `Unknown sslmode "${String(bad)}".`, {
        setting: 'sslmode',
        hint: 'Use one of disable, prefer, require, verify-ca, verify-full.',
      });
    }
  }
}

const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/**
 * The node-postgres pool configuration for a URL: connection fields are parsed here (the
 * URL is not handed to pg, whose own parser would override our TLS choice), TLS follows
 * the URL's sslmode, and the exact per-connection type parsers are installed.
 */
export function poolConfigFromUrl(url: string, opts: CreatePoolOptions = {}): PoolConfig {
  const p = parsePostgresUrl(url);
  const modeText = opts.sslMode ?? p.params.get('sslmode');
  if (modeText !== undefined && !SSL_MODES.includes(modeText as SslMode)) {
    throw new SyncError('usage', `Unknown sslmode "${modeText}" in the connection string.`, {
      setting: 'sslmode',
      hint: 'Use one of disable, prefer, require, verify-ca, verify-full.',
    });
  }
  const binding = channelBindingFor(opts.channelBinding ?? p.params.get('channel_binding'), modeText);
  const config: PoolConfig = {
    host: p.host,
    port: p.port,
    user: p.user,
    password: opts.password ?? p.password,
    database: p.database,
    ssl: sslConfigFor(modeText as SslMode | undefined, p.host, p.params, binding === 'require'),
    // prefer (libpq's default) binds when the server offers SCRAM-SHA-256-PLUS; require refuses otherwise.
    enableChannelBinding: binding !== 'disable',
    // Every connection that fails its connect closes its socket (see clientClosingFailedConnects).
    Client: (binding === 'require' ? ChannelBindingClosingFailedConnects : ClosingFailedConnects) as unknown as PoolConfig['Client'],
    types: exactTypes,
    max: opts.max ?? 4,
    connectionTimeoutMillis: opts.connectionTimeoutMillis ?? secondsParam(p.params, 'connect_timeout') ?? 15_000,
    ...keepAlive(p.params, opts),
    idleTimeoutMillis: opts.idleTimeoutMillis ?? 10_000,
    application_name: p.params.get('application_name') ?? opts.applicationName ?? 'delta-neon-sync',
  };
  const options = p.params.get('options');
  if (options !== undefined) config.options = options;
  // Over the channel-binding client when channel_binding=require, so both hold.
  if (typeof opts.password === 'function') {
    const base = (config.Client ?? pg.Client) as typeof pg.Client;
    config.Client = clientWithPasswordFrom(opts.password, opts.loginError, base) as unknown as PoolConfig['Client'];
  }
  // For messages about connections that failed (classifyConnectError); pg ignores it.
  if (modeText !== undefined) (config as Record<string, unknown>).sslmode = modeText;
  const rootCert = p.params.get('sslrootcert');
  if (config.ssl !== false && rootCert !== undefined) (config as Record<string, unknown>).sslrootcert = rootCert;
  if (binding === 'require') (config as Record<string, unknown>).channel_binding = binding;
  // For the watchdog (ActiveClients); pg ignores it.
  const watchdog = p.params.get('watchdog_timeout') === '0' ? 0 : (secondsParam(p.params, 'watchdog_timeout') ?? opts.watchdogMillis ?? 60_000);
  (config as Record<string, unknown>).watchdogMillis = watchdog;
  // For the run lease (PostgresTarget); pg ignores them.
  const lease = secondsParam(p.params, 'run_lease_timeout') ?? opts.runLeaseMillis;
  if (lease !== undefined) (config as Record<string, unknown>).runLeaseMillis = lease;
  const renew = secondsParam(p.params, 'run_lease_renew') ?? opts.runLeaseRenewMillis;
  if (renew !== undefined) (config as Record<string, unknown>).runLeaseRenewMillis = renew;
  return config;
}

/** channel_binding from the URL or options (default prefer); usage errors for values that cannot work. */
function channelBindingFor(text: string | undefined, sslMode: string | undefined): ChannelBinding {
  if (text === undefined) return 'prefer';
  if (!CHANNEL_BINDING_MODES.includes(text as ChannelBinding)) {
    throw new SyncError('usage', `Unknown channel_binding "${text}" in the connection string.`, {
      setting: 'channel_binding',
      hint: 'Use one of disable, prefer, require (Neon\'s connection strings carry channel_binding=require).',
    });
  }
  if (text === 'require' && sslMode === 'disable') {
    throw new SyncError('usage', 'The connection string has channel_binding=require and sslmode=disable: channel binding needs TLS.', {
      setting: 'channel_binding',
      hint: 'Use sslmode=require or sslmode=verify-full with channel_binding=require (as Neon\'s connection strings do), or drop channel_binding=require.',
    });
  }
  return text as ChannelBinding;
}

/**
 * A pg Client class whose failed connect closes its socket. node-postgres reports a login
 * that fails on the client side (no password where the server asks for a SCRAM one, a
 * refused channel binding) but leaves the socket open, and pg.Pool drops such a client
 * without ending it: the server then keeps that half-authenticated backend, holding its
 * database, until authentication_timeout (60 s by default), so a DROP DATABASE waited on it.
 */
function clientClosingFailedConnects(base: typeof pg.Client): typeof pg.Client {
  return class ClientClosingFailedConnects extends base {
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error | null, client?: pg.Client) => void): void;
    override connect(callback?: (err: Error | null, client?: pg.Client) => void): Promise<pg.Client> | void {
      const connected = super.connect().then(
        () => this as pg.Client,
        (e: unknown) => {
          (this as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
          throw e;
        },
      );
      if (!callback) return connected;
      connected.then(
        (c) => callback(null, c),
        (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
      );
    }
  };
}

const ClosingFailedConnects = clientClosingFailedConnects(pg.Client);
const ChannelBindingClosingFailedConnects = clientClosingFailedConnects(ChannelBindingRequiredClient);

/**
 * A pg Client class that asks `provider` for the password before it opens its socket (not
 * when the server asks for it, as pg's own password callback does): the server reads the
 * role's password when authentication starts, and the wait for a token (an HTTP call) then
 * does not count against the server's authentication_timeout. A provider failure fails the
 * connect with the provider's error, with no socket left behind.
 */
function clientWithPasswordFrom(provider: () => Promise<string>, loginError: (e: unknown) => unknown = (e) => e, base: typeof pg.Client = pg.Client): typeof pg.Client {
  return class ClientWithFreshPassword extends base {
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error | null, client?: pg.Client) => void): void;
    override connect(callback?: (err: Error | null, client?: pg.Client) => void): Promise<pg.Client> | void {
      const connected = provider().then(async (password) => {
        // Both fields: pg reads connectionParameters.password for SCRAM, password for md5/plain.
        this.password = password;
        (this as unknown as { connectionParameters: { password?: string } }).connectionParameters.password = password;
        try {
          await super.connect();
        } catch (e) {
          throw loginError(e);
        }
        return this as pg.Client;
      });
      if (!callback) return connected;
      connected.then(
        (c) => callback(null, c),
        (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
      );
    }
  };
}

/** A libpq-style parameter in seconds, as ms; usage error when it is not a number. */
function secondsParam(params: Map<string, string>, name: string): number | undefined {
  const v = params.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    throw new SyncError('usage', `${name}=${v} in the connection string is not a number of seconds.`, { setting: name, hint: `For example ${name}=30.` });
  }
  // libpq: 0 means wait forever; here no wait is unbounded, so 0 keeps the default.
  return n === 0 ? undefined : n * 1000;
}

function keepAlive(params: Map<string, string>, opts: CreatePoolOptions): Pick<PoolConfig, 'keepAlive' | 'keepAliveInitialDelayMillis'> {
  if (params.get('keepalives') === '0') return { keepAlive: false };
  return { keepAlive: true, keepAliveInitialDelayMillis: secondsParam(params, 'keepalives_idle') ?? opts.keepAliveInitialDelayMillis ?? 30_000 };
}

/**
 * The session limits for a URL: the URL's statement_timeout, lock_timeout and
 * idle_in_transaction_session_timeout parameters, else `opts.session`, else the defaults.
 */
export function sessionLimits(url: string, opts: CreatePoolOptions = {}): SessionLimits {
  const p = parsePostgresUrl(url);
  const out = { ...SESSION_DEFAULTS };
  for (const k of SESSION_KEYS) {
    const v = (p.params.get(k) ?? opts.session?.[k])?.trim();
    if (v === undefined) continue;
    if (!DURATION_RE.test(v)) {
      throw new SyncError('usage', `${k}=${v} in the connection string is not a duration.`, { setting: k, hint: `Give milliseconds (${k}=60000) or a unit (${k}=90s); 0 turns it off.` });
    }
    out[k] = v;
  }
  return out;
}

/**
 * The statement that opens one of the engine's transactions: BEGIN, then its limits and
 * the server's own TCP keepalive (so the session of a client that vanished mid-transaction
 * ends instead of holding its locks), all SET LOCAL: they end with the transaction, so
 * nothing is left on a server connection that a pooler hands to another client next.
 */
export function beginWithLimitsSql(limits: SessionLimits): string {
  const set = SESSION_KEYS.map((k) => `SET LOCAL ${k} = '${limits[k].replace(/\s+/g, '')}'`);
  return ['BEGIN', ...set, `SET LOCAL tcp_keepalives_idle = 30`, `SET LOCAL tcp_keepalives_interval = 10`, `SET LOCAL tcp_keepalives_count = 3`].join('; ');
}

/**
 * A pg Pool for `url` with sslmode honoured, exact type parsing (see exactTypes), TCP
 * keepalive, a bounded connect, and the limits (sessionLimits) set on every transaction
 * the engine opens (beginTransaction). Nothing is sent at connect and no startup parameter
 * beyond application_name, so it works through PgBouncer in transaction mode.
 * Idle-connection errors (server restart, network drop) are swallowed here so they do not
 * crash the process; the next query on a fresh connection reports them.
 */
export function createPool(url: string, opts: CreatePoolOptions = {}): pg.Pool {
  const pool = new pg.Pool(poolConfigFromUrl(url, opts));
  const begin = beginWithLimitsSql(sessionLimits(url, opts));
  pool.on('error', () => {
    // An idle client died; the pool already removed it.
  });
  // A checked-out client whose server goes away (restart, failover, network drop) emits
  // 'error' as well as failing its pending query. Without a listener that event would crash
  // the process; the failing query already carries the error to the caller (and the runner
  // retries it), so the event itself is only acknowledged here.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    setBeginSql(client, begin);
    limitStatementsOutsideTransactions(client);
    if (traceQueries) traceClient(client);
  });
  return pool;
}

/** DELTA_NEON_SYNC_TRACE_QUERIES=1: every statement (its first 80 characters) on stderr, one round trip a line. */
const traceQueries = process.env.DELTA_NEON_SYNC_TRACE_QUERIES === '1';
let traceSeq = 0;

function traceClient(client: pg.PoolClient): void {
  const id = ++traceSeq;
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  process.stderr.write(`[pg ${id}] connect\n`);
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const a = args[0];
    const text = typeof a === 'string' ? a : typeof a === 'object' && a !== null ? String((a as { text?: unknown }).text ?? (a as { constructor: { name: string } }).constructor.name) : String(a);
    const t0 = performance.now();
    process.stderr.write(`[pg ${id} ${t0.toFixed(0)}] ${text.replace(/\s+/g, ' ').slice(0, 80)}\n`);
    const out = query(...args);
    if (out instanceof Promise) void out.then(() => process.stderr.write(`[pg ${id}]   ${(performance.now() - t0).toFixed(1)} ms\n`), () => undefined);
    return out;
  };
}
