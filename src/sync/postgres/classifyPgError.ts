import { SyncError, isSyncError } from '../errors';
import { CHANNEL_BINDING_REFUSED } from './channelBinding';

/** The fields node-postgres puts on a server error (DatabaseError). */
export interface PgErrorFields {
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
  where?: string;
}

/** Narrowing for server errors (they carry a 5-character SQLSTATE `code`). */
export function pgErrorFields(e: unknown): PgErrorFields | undefined {
  if (typeof e !== 'object' || e === null || !(e instanceof Error)) return undefined;
  const r = e as Error & Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof r[k] === 'string' ? (r[k] as string) : undefined);
  const code = str('code');
  return {
    code,
    message: e.message,
    detail: str('detail'),
    hint: str('hint'),
    schema: str('schema'),
    table: str('table'),
    column: str('column'),
    constraint: str('constraint'),
    where: str('where'),
  };
}

const TRANSIENT_NODE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
const TRANSIENT_MESSAGES = [
  'Connection terminated',
  'connection terminated',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
  'timeout exceeded when trying to connect',
  'Connection ended unexpectedly',
  'terminating connection',
];

/** True for errors worth retrying automatically: dropped connections, shutdowns, serialization failures, deadlocks. */
export function isTransientPgError(e: unknown): boolean {
  const f = pgErrorFields(e);
  if (!f) return false;
  const code = f.code ?? '';
  if (TRANSIENT_NODE_CODES.has(code)) return true;
  if (code.startsWith('08')) return true; // connection exception class
  if (code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true; // shutdowns, cannot connect now, too many connections
  if (code === '40001' || code === '40P01') return true; // serialization failure, deadlock
  if (code.length === 5 && /^[0-9A-Z]{5}$/.test(code)) return false;
  return TRANSIENT_MESSAGES.some((m) => f.message.includes(m));
}

export interface PgErrorContext {
  /** Table being written, named in the message when the server did not name one. */
  table?: string;
  version?: number;
  /** What was being done, e.g. "applying changes". */
  action?: string;
}

/**
 * Turns anything thrown by pg into a SyncError: transient -> kind 'connection' with retry
 * 'auto'; authentication -> 'auth'; anything else -> 'target', naming the table, column and
 * constraint from the server's error fields. SyncErrors pass through unchanged.
 */
export function classifyPgError(e: unknown, ctx: PgErrorContext = {}): SyncError {
  if (isSyncError(e)) return e;
  const what = ctx.action ? ` while ${ctx.action}` : '';
  // An abort (the run's AbortSignal) reaching a target operation, e.g. from the rows fed
  // to COPY, is the user's Stop, not a Postgres error.
  if (e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR')) {
    return new SyncError('cancelled', `Cancelled${what}${ctx.table ? ` on ${ctx.table}` : ''}.`, {
      table: ctx.table,
      version: ctx.version,
      retry: 'manual',
      cause: e,
      hint: 'Nothing from the interrupted transaction was applied; run it again to resume from the last checkpoint.',
    });
  }
  const f = pgErrorFields(e) ?? { message: String(e) };
  const table = f.table ? (f.schema ? `${f.schema}.${f.table}` : f.table) : ctx.table;
  if (isTransientPgError(e)) {
    return new SyncError('connection', `Lost the connection to Postgres${what}: ${f.message}`, {
      table,
      version: ctx.version,
      retry: 'auto',
      cause: e,
      hint: 'Nothing from the interrupted transaction was applied; the run can be retried.',
    });
  }
  const code = f.code ?? '';
  if (code === '55P03') {
    return new SyncError('target', `Postgres gave up waiting for a lock${what}${table ? ` on ${table}` : ''}: ${f.message}`, {
      table, version: ctx.version, setting: 'lock_timeout', retry: 'manual', cause: e, hint: hintFor(code),
    });
  }
  if (code === '57014') {
    return new SyncError('target', `Postgres cancelled a statement${what}${table ? ` on ${table}` : ''}: ${f.message}`, {
      table, version: ctx.version, setting: 'statement_timeout', retry: 'manual', cause: e, hint: hintFor(code),
    });
  }
  if (/client password must be a string/.test(f.message)) {
    // node-postgres' words when the server asks for a (SCRAM) password and the connection has none.
    return new SyncError('auth', 'The server asks for a password, but the connection has none.', {
      setting: 'target.connection',
      retry: 'manual',
      cause: e,
      hint: 'Give it one without writing it into a file: PGPASSWORD, a ~/.pgpass entry, or a connection string kept in an environment variable ("connection": "${env:DATABASE_URL}").',
    });
  }
  if ((code === '28000' || code === '08P01') && /no encryption|insecure|SSL (connection is )?required|requires? (SSL|TLS)/i.test(f.message)) {
    // pg_hba.conf has only hostssl lines for this client (Neon: "connection is insecure").
    return new SyncError('auth', `Postgres refused the login: ${f.message}. The server accepts only TLS connections.`, {
      setting: 'sslmode', retry: 'manual', cause: e,
      hint: 'Use sslmode=verify-full (or sslmode=require) in the connection string instead of sslmode=disable.',
    });
  }
  if (code === '28P01' || code === '28000') {
    return new SyncError('auth', `Postgres refused the login: ${f.message}`, {
      setting: 'target.connection', retry: 'manual', cause: e,
      hint: 'Check the user and password of the connection string in target.connection of the mapping (or the environment variable it names).',
    });
  }
  const parts = [`Postgres error${code ? ` ${code}` : ''}${what}${table ? ` on ${table}` : ''}: ${f.message}`];
  if (f.column) parts.push(`column "${f.column}"`);
  if (f.constraint) parts.push(`constraint "${f.constraint}"`);
  if (f.detail) parts.push(f.detail);
  return new SyncError('target', parts.join('; '), {
    table,
    version: ctx.version,
    column: f.column,
    // The hint of a refused row offers dead letters: the setting the editor opens.
    ...(code.startsWith('23') || code.startsWith('P0') ? { setting: 'deadLetter' } : {}),
    retry: code.startsWith('23') || code.startsWith('22') ? 'manual' : 'never',
    cause: e,
    hint: f.hint ?? hintFor(code),
  });
}

function hintFor(code: string): string | undefined {
  if (code === '55P03') {
    return 'Another session holds a lock the sync needs (see pg_locks / pg_stat_activity); end or wait for that session, or give the sync longer with lock_timeout=<ms> in the connection string (default 60000).';
  }
  if (code === '57014') {
    return 'The statement ran longer than statement_timeout (or was cancelled by an administrator); raise it with statement_timeout=<ms> in the connection string (default 3600000, 0 turns it off).';
  }
  if (code === '21000') return 'The batch has the same key twice; net the changes per key before applying.';
  if (code.startsWith('23')) return 'A row violates a constraint on the target; fix the data, or set "deadLetter": true in the mapping to set such rows aside (delta_neon_sync.dead_letters) and apply the rest.';
  if (code.startsWith('P0')) return 'A trigger on the target raised an error for a row; fix the data or the trigger, or set "deadLetter": true in the mapping to set such rows aside (delta_neon_sync.dead_letters) and apply the rest.';
  if (code.startsWith('22')) return 'A value does not fit the target column type; check the column type mapping.';
  if (code === '42P01') return 'The target table does not exist; run the initial load first.';
  if (code === '42501') return 'The Postgres user lacks a privilege on the target; grant it or use another role.';
  return undefined;
}

/** Where a connection was going: for messages, never the password. */
export interface ServerAddress {
  host: string;
  port?: number | string;
  database?: string;
  user?: string;
  sslMode?: string;
  /** The CA file the certificate was checked against (sslrootcert); none: Node's built-in CAs. */
  sslRootCert?: string;
  /** 'require' when the connection string asks for channel binding. */
  channelBinding?: string;
}

function addressLabel(s: ServerAddress): string {
  return `${s.host}${s.port !== undefined ? `:${s.port}` : ''}`;
}

/**
 * Errors from opening a connection (before any statement ran), as SyncErrors that say the
 * connection was never made and name host:port, database or sslmode: never blamed on a
 * table. Returns undefined for errors that are not about connecting (the caller then
 * classifies them as usual).
 */
export function classifyConnectError(e: unknown, server: ServerAddress): SyncError | undefined {
  if (isSyncError(e)) return e;
  const f = pgErrorFields(e);
  if (!f) return undefined;
  const at = addressLabel(server);
  const code = f.code ?? '';
  const never = `Could not connect to Postgres at ${at}`;
  // Said on each retry of a connection that was never made: a suspended Neon compute wakes
  // on the first connection, which is slow or refused for a few seconds meanwhile.
  const waiting = (why: string): string => `Waiting for the database at ${at} to accept connections (${why}; a suspended Neon compute takes a few seconds to start)`;
  if (code === 'ECONNREFUSED') {
    return new SyncError('connection', `${never}: connection refused (nothing listens on that port, or a firewall refuses it). No connection was made.`, {
      setting: 'target.connection', retry: 'auto', cause: e, progress: waiting('connection refused'),
      hint: `Check the host and port in the connection string and that the server is running and accepts TCP connections on ${at}.`,
    });
  }
  if (code === '57P03') {
    return new SyncError('connection', `${never}: the server is starting up and does not accept connections yet (${f.message}). No connection was made.`, {
      setting: 'target.connection', retry: 'auto', cause: e, progress: waiting('the server is starting up'),
      hint: `The server at ${at} is starting (a Neon compute waking from suspend, or a restart); the run retries within its budget.`,
    });
  }
  if (code === 'ENOTFOUND') {
    return new SyncError('connection', `${never}: the host name ${server.host} is unknown (DNS lookup failed). No connection was made.`, {
      setting: 'target.connection', retry: 'manual', cause: e,
      hint: 'Check the host name in the connection string (for Neon, copy it from the console: ep-...region.aws.neon.tech).',
    });
  }
  if (code === 'EAI_AGAIN') {
    return new SyncError('connection', `${never}: the DNS lookup of ${server.host} failed for now. No connection was made.`, {
      setting: 'target.connection', retry: 'auto', cause: e, hint: 'Check the network and DNS; the run can be retried.',
    });
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || /timeout expired|due to connection timeout|timeout exceeded when trying to connect/i.test(f.message)) {
    return new SyncError('connection', `${never}: no answer (${f.message}). No connection was made.`, {
      setting: 'connect_timeout', retry: 'auto', cause: e, progress: waiting(`no answer within connect_timeout (${f.message})`),
      hint: `Check that ${at} is reachable from here (VPN, firewall, IP allow list); a server that is starting may need longer: connect_timeout=<seconds> in the connection string (default 15).`,
    });
  }
  if (code === '3D000') {
    return new SyncError('target', `The database ${server.database ? `"${server.database}" ` : ''}does not exist on ${at}: ${f.message}`, {
      setting: 'target.connection', retry: 'manual', cause: e,
      hint: 'Check the database name at the end of the connection string (postgresql://user@host/<database>), or create it.',
    });
  }
  if (/does not support SSL|server does not support ssl/i.test(f.message)) {
    const asks = [server.sslMode ? `sslmode=${server.sslMode}` : undefined, server.channelBinding === 'require' ? 'channel_binding=require' : undefined].filter((x) => x !== undefined);
    return new SyncError('connection', `The server at ${at} does not accept TLS, but the connection asks for TLS (${asks.length ? asks.join(', ') : 'sslmode'}). No connection was made.`, {
      setting: server.sslMode || server.channelBinding !== 'require' ? 'sslmode' : 'channel_binding', retry: 'never', cause: e,
      hint: 'Enable TLS on the server (Neon always has it), or, only for a local or trusted network, set sslmode=disable in the connection string (and drop channel_binding=require).',
    });
  }
  const tls = classifyTlsError(e, code, f.message, server, at);
  if (tls) return tls;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || /^Connection terminated( unexpectedly)?$/.test(f.message)) {
    return new SyncError('connection', `${never}: the connection was closed while it was being opened (${f.message}). No connection was made.`, {
      setting: 'target.connection', retry: 'auto', cause: e, progress: waiting(`the connection was closed while opening (${f.message})`),
      hint: `A compute that is starting, or a proxy in front of ${at}, may close new connections for a moment; the run retries within its budget. If it persists, check the host and port in the connection string and the server's log.`,
    });
  }
  return undefined;
}

/** Certificate chains that do not lead to a trusted CA (Node's / OpenSSL's codes). */
const UNTRUSTED_CHAIN = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_SIGNATURE_FAILURE']);

/** TLS verification and channel binding failures of a connection that was never made. */
function classifyTlsError(e: unknown, code: string, message: string, server: ServerAddress, at: string): SyncError | undefined {
  const mode = server.sslMode ? `sslmode=${server.sslMode}` : 'the sslmode';
  const cas = server.sslRootCert && server.sslRootCert !== 'system' ? `the CA file ${server.sslRootCert} (sslrootcert)` : 'Node\'s built-in list of public CAs (no sslrootcert in the connection string)';
  if (UNTRUSTED_CHAIN.has(code)) {
    return new SyncError('connection', `The TLS certificate of ${at} is not signed by a CA this connection trusts: ${mode} checked it against ${cas} (${code}: ${message}). No connection was made.`, {
      setting: 'sslrootcert', retry: 'never', cause: e,
      hint: server.sslRootCert && server.sslRootCert !== 'system'
        ? `Point sslrootcert at the PEM file of the CA that signed ${server.host}'s certificate (${server.sslRootCert} holds another CA), or use sslmode=require to encrypt without checking the certificate.`
        : `Give the CA that signed ${server.host}'s certificate with sslrootcert=<path to its PEM file> in the connection string (a Neon host needs none: its certificates are signed by a public CA), or use sslmode=require to encrypt without checking the certificate.`,
    });
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = certNames(e);
    return new SyncError('connection', `The TLS certificate of ${at} is for ${names ?? 'another host name'}, not for ${server.host}: ${mode} checks the host name (${message}). No connection was made.`, {
      setting: 'sslmode', retry: 'never', cause: e,
      hint: `Connect with a host name the certificate names${names ? ` (${names})` : ''} in the connection string, or use sslmode=verify-ca to check the CA but not the host name.`,
    });
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return new SyncError('connection', `The TLS certificate of ${at} ${code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not valid yet'} (${mode}; ${message}). No connection was made.`, {
      setting: 'sslmode', retry: 'never', cause: e,
      hint: 'Renew the server\'s certificate (or check this machine\'s clock); sslmode=require encrypts without checking the certificate.',
    });
  }
  if (code === CHANNEL_BINDING_REFUSED) {
    return new SyncError('auth', `Refused to log in to ${at}: ${message}. No password was sent.`, {
      setting: 'channel_binding', retry: 'never', cause: e,
      hint: 'Connect over TLS to a server that offers SCRAM-SHA-256-PLUS (Neon does, on its direct and pooled hosts; PgBouncer does not), or set channel_binding=prefer to bind only when the server offers it.',
    });
  }
  return undefined;
}

/** The names a certificate holds (from Node's host-name error), for messages. */
function certNames(e: unknown): string | undefined {
  const cert = (e as { cert?: { subjectaltname?: unknown; subject?: { CN?: unknown } } }).cert;
  if (typeof cert?.subjectaltname === 'string' && cert.subjectaltname !== '') return cert.subjectaltname;
  if (typeof cert?.subject?.CN === 'string') return `CN=${cert.subject.CN}`;
  return undefined;
}
