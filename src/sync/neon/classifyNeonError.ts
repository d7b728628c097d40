import type { UserAction } from '../userActions';
import { SyncError, isSyncError } from '../errors';
import type { RetryPolicy, SyncErrorKind } from '../errors';

/** What the call was about, for the message: "listing branches of project x". */
export interface NeonErrorContext {
  /** e.g. 'listing the branches of project "polished-fog-123"' */
  what: string;
  /** The API's base URL (host named in network errors). */
  apiUrl: string;
}

function prop(o: unknown, key: string): unknown {
  return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The HTTP status of an axios error from @neondatabase/api-client, if it got an answer. */
export function neonHttpStatus(e: unknown): number | undefined {
  const s = prop(prop(e, 'response'), 'status');
  return typeof s === 'number' ? s : undefined;
}

/** Milliseconds the API asked to wait (Retry-After, seconds or an HTTP date), if it did. */
export function neonRetryAfterMs(e: unknown, now = Date.now()): number | undefined {
  const headers = prop(prop(e, 'response'), 'headers');
  const get = prop(headers, 'get');
  const raw = typeof get === 'function' ? (get as (k: string) => unknown).call(headers, 'retry-after') : prop(headers, 'retry-after');
  const text = typeof raw === 'string' ? raw.trim() : typeof raw === 'number' ? String(raw) : undefined;
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The API's own message (GeneralError.message), else the transport's. */
function apiMessage(e: unknown): string {
  const data = prop(prop(e, 'response'), 'data');
  return str(prop(data, 'message')) ?? str(prop(e, 'message')) ?? String(e);
}

function hostOf(apiUrl: string): string {
  try {
    return new URL(apiUrl).host;
  } catch {
    return apiUrl;
  }
}

export const NEON_API_KEY_HINT =
  'Create an API key in the Neon Console (Account settings > API keys; an organization key under the organization\'s Settings > API keys), then set NEON_API_KEY in the CLI, or in the extension add it again with "Delta Sync: Add Neon Account" (Targets view).';

const NETWORK_TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ECONNABORTED', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ERR_NETWORK', 'ERR_SOCKET_CONNECTION_TIMEOUT']);

/**
 * Turns what the Neon API client throws (axios errors carrying the API's GeneralError body
 * `{code, message, request_id}`) into a SyncError: a bad key is 'auth' with how to create
 * one; not found is 'mapping' (the caller names what exists); rate limits (429), locks
 * while an operation runs (423) and server errors are 'connection' with retry 'auto'; a
 * host that does not resolve names NEON_API_HOST. SyncErrors pass through.
 */
export function classifyNeonError(e: unknown, ctx: NeonErrorContext): SyncError {
  if (isSyncError(e)) return e;
  const host = hostOf(ctx.apiUrl);
  const message = apiMessage(e);
  const mk = (kind: SyncErrorKind, text: string, hint: string, retry: RetryPolicy, setting?: string, action?: UserAction): SyncError =>
    new SyncError(kind, text, { hint, retry, cause: e, ...(setting ? { setting } : {}), ...(action ? { action } : {}) });
  const status = neonHttpStatus(e);
  if (status !== undefined) {
    const requestId = str(prop(prop(prop(e, 'response'), 'data'), 'request_id'));
    const tail = `${message}${requestId ? `; request id ${requestId}` : ''}`;
    if (status === 401) {
      return mk('auth', `The Neon API at ${host} rejected the API key (HTTP 401) while ${ctx.what}: ${tail}.`, NEON_API_KEY_HINT, 'never', 'NEON_API_KEY');
    }
    if (status === 403) {
      return mk('auth', `The Neon API key may not do this (HTTP 403) while ${ctx.what}: ${tail}.`, 'Use a key of the account or organization that owns the project (a project-scoped key only sees its own project), or ask an admin of the project for access.', 'never', 'NEON_API_KEY');
    }
    if (status === 404) {
      return mk('mapping', `Not found (HTTP 404) while ${ctx.what}: ${tail}.`, 'Check the project, branch and database names in target.connection (neon:<project>/<branch>/<database>); {action} lists what the key can see.', 'never', 'target.connection', { id: 'neon-projects' });
    }
    if (status === 423) {
      return mk('connection', `The Neon project is locked by an operation in progress (HTTP 423) while ${ctx.what}: ${tail}.`, 'Another operation on the project (a branch being created or deleted, a compute starting) has not finished; the call is retried on its own. If it persists, check the project\'s Operations in the Neon Console.', 'auto');
    }
    if (status === 429) {
      return mk('connection', `The Neon API is rate limiting requests (HTTP 429) while ${ctx.what}: ${tail}.`, 'Too many API calls with this key in a short time (other tools or runs may share it); the call is retried after the wait the API asks for.', 'auto');
    }
    if (status >= 500) {
      return mk('connection', `The Neon API answered HTTP ${status} while ${ctx.what}: ${tail}.`, 'A temporary problem at Neon; the call is retried on its own. See https://neonstatus.com if it persists.', 'auto');
    }
    return mk('connection', `The Neon API answered HTTP ${status} while ${ctx.what}: ${tail}.`, `Check NEON_API_HOST (now ${ctx.apiUrl}) and the names in target.connection.`, 'manual');
  }
  const code = str(prop(e, 'code')) ?? str(prop(prop(e, 'cause'), 'code'));
  if (code === 'ENOTFOUND') {
    return mk('connection', `Cannot resolve the Neon API host ${host} while ${ctx.what}: ${message}.`, `Check NEON_API_HOST (now ${ctx.apiUrl}; unset, it is https://console.neon.tech/api/v2) and the network or proxy.`, 'manual', 'NEON_API_HOST');
  }
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
    return mk('connection', `The TLS certificate of the Neon API host ${host} is not trusted while ${ctx.what}: ${message}.`, 'A TLS-inspecting proxy needs its CA certificate: set NODE_EXTRA_CA_CERTS to its PEM file.', 'manual');
  }
  if ((code && NETWORK_TRANSIENT.has(code)) || /timeout|socket hang up|network/i.test(message)) {
    return mk('connection', `Cannot reach the Neon API at ${host} while ${ctx.what}: ${message}.`, `Check the network, VPN or proxy (and NEON_API_HOST, now ${ctx.apiUrl}); the call is retried on its own.`, 'auto', 'NEON_API_HOST');
  }
  return mk('connection', `The Neon API call failed while ${ctx.what}: ${message}.`, 'See the log for the error; {action} checks the key and the API host.', 'manual', undefined, { id: 'neon-projects' });
}
