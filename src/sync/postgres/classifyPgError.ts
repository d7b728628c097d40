import { SyncError, isSyncError } from '../errors';

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
  if (code === '28P01' || code === '28000') {
    return new SyncError('auth', `Postgres refused the login: ${f.message}`, { retry: 'manual', cause: e, hint: 'Check the user and password in the connection string.' });
  }
  const parts = [`Postgres error${code ? ` ${code}` : ''}${what}${table ? ` on ${table}` : ''}: ${f.message}`];
  if (f.column) parts.push(`column "${f.column}"`);
  if (f.constraint) parts.push(`constraint "${f.constraint}"`);
  if (f.detail) parts.push(f.detail);
  return new SyncError('target', parts.join('; '), {
    table,
    version: ctx.version,
    column: f.column,
    retry: code.startsWith('23') || code.startsWith('22') ? 'manual' : 'never',
    cause: e,
    hint: f.hint ?? hintFor(code),
  });
}

function hintFor(code: string): string | undefined {
  if (code === '21000') return 'The batch has the same key twice; net the changes per key before applying.';
  if (code.startsWith('23')) return 'A row violates a constraint on the target; fix the data or enable the dead-letter option.';
  if (code.startsWith('22')) return 'A value does not fit the target column type; check the column type mapping.';
  if (code === '42P01') return 'The target table does not exist; run the initial load first.';
  if (code === '42501') return 'The Postgres user lacks a privilege on the target; grant it or use another role.';
  return undefined;
}
