import type { UserAction } from '../userActions';
import { SyncError, isSyncError } from '../errors';
import type { SyncErrorKind, RetryPolicy } from '../errors';

/** What was being done when the error happened: decides 'cdf-range' vs 'time-travel' and the wording. */
export interface ErrorContext {
  /** catalog.schema.table, when a table was involved. */
  table?: string;
  version?: number;
  operation: 'connect' | 'browse' | 'snapshot' | 'changes' | 'history' | 'alter';
  /** host, for connection messages. */
  host?: string;
}

function prop(o: unknown, key: string): unknown {
  return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** `[ERROR_CLASS]` or `[ERROR_CLASS.SUB_CLASS]` at the start of a Databricks message. */
export function errorClassOf(message: string): string | undefined {
  const m = /\[([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)?)\]/.exec(message);
  return m?.[1];
}

const NETWORK_TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ESOCKETTIMEDOUT']);

/**
 * Turns anything @databricks/sql throws into a SyncError: a failed statement
 * (OperationStateError: `[ERROR_CLASS] message`, sqlState), HTTP errors (THTTPException with
 * statusCode), network/TLS errors (node-fetch FetchError with code), OAuth failures, the
 * driver's StatusError (not an Error subclass). SyncErrors pass through unchanged.
 */
export function classifyDatabricksError(e: unknown, ctx: ErrorContext): SyncError {
  if (isSyncError(e)) return e;
  const table = ctx.table;
  const mk = (kind: SyncErrorKind, message: string, hint: string, retry: RetryPolicy = 'never', version = ctx.version, action?: UserAction): SyncError =>
    new SyncError(kind, message, { table, version, hint, retry, cause: e, ...(action ? { action } : {}) });

  const response = prop(e, 'response');
  const display = str(prop(response, 'displayMessage')) ?? str(prop(response, 'errorMessage'));
  const message = display ?? str(prop(e, 'message')) ?? String(e);
  const where = table ? ` (${table})` : '';

  // ---- HTTP status (THTTPException and friends)
  const status = prop(e, 'statusCode');
  if (typeof status === 'number') {
    if (status === 401) {
      return mk('auth', `Databricks rejected the credentials (HTTP 401)${hostPart(ctx)}.`, 'The token is missing, wrong or expired: create a new personal access token (User Settings > Developer) or check the OAuth client id/secret, then set DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET).');
    }
    if (status === 403) {
      return mk('auth', `Databricks refused access (HTTP 403)${hostPart(ctx)}.`, 'Either the credentials are not allowed to use this SQL warehouse (grant CAN USE on it), or the HTTP path is wrong: copy it from the warehouse\'s Connection details (DATABRICKS_HTTP_PATH, /sql/1.0/warehouses/<id>).');
    }
    if (status === 404) {
      return mk('connection', `No SQL warehouse at this HTTP path (HTTP 404)${hostPart(ctx)}.`, "Copy the HTTP path from the warehouse's Connection details (DATABRICKS_HTTP_PATH, /sql/1.0/warehouses/<id>).", 'manual');
    }
    if (status === 503 || status === 502 || status === 504) {
      return mk('connection', `The SQL warehouse is not available (HTTP ${status})${hostPart(ctx)}: it is stopped or still starting.`, 'Start the warehouse in the Databricks UI (or wait for it to finish starting); the sync retries on its own.', 'auto');
    }
    if (status === 429) {
      return mk('connection', `Databricks is rate limiting requests (HTTP 429)${hostPart(ctx)}.`, 'Wait a moment; the sync retries on its own.', 'auto');
    }
    return mk('connection', `Databricks answered HTTP ${status}${hostPart(ctx)}.`, 'Check DATABRICKS_HOST and DATABRICKS_HTTP_PATH.', status >= 500 ? 'auto' : 'manual');
  }

  // ---- network / TLS
  const code = str(prop(e, 'code')) ?? str(prop(prop(e, 'cause'), 'code'));
  if (code === 'ENOTFOUND') {
    return mk('connection', `Cannot resolve the Databricks host${hostPart(ctx)}: ${message}`, 'Check DATABRICKS_HOST: the workspace URL, e.g. adb-1234567890123456.7.azuredatabricks.net or dbc-a1b2c3d4-e5f6.cloud.databricks.com.', 'manual');
  }
  if (code && NETWORK_TRANSIENT.has(code)) {
    return mk('connection', `Cannot reach Databricks${hostPart(ctx)}: ${message}`, 'Check the network, VPN or proxy; the sync retries on its own.', 'auto');
  }
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
    return mk('connection', `The TLS certificate of the Databricks host is not trusted${hostPart(ctx)}: ${message}`, 'A TLS-inspecting proxy needs its CA certificate: set NODE_EXTRA_CA_CERTS to its PEM file.', 'manual');
  }
  const name = str(prop(e, 'name'));
  if (name === 'AuthenticationError' || /OAuth|invalid_client|unauthorized_client/i.test(name ?? '')) {
    return mk('auth', `Databricks OAuth sign-in failed${hostPart(ctx)}: ${message}`, 'Check DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (a service principal OAuth secret) and that the principal may use the workspace.');
  }
  if (name === 'FetchError' || name === 'AbortError') {
    return mk('connection', `Cannot reach Databricks${hostPart(ctx)}: ${message}`, 'Check the network, VPN or proxy; the sync retries on its own.', 'auto');
  }

  // ---- statement errors: [ERROR_CLASS] text
  const cls = errorClassOf(message);
  const versionIn = (re: RegExp): number | undefined => {
    const m = re.exec(message);
    return m ? Number(m[1]) : undefined;
  };
  switch (cls) {
    case 'DELTA_MISSING_CHANGE_DATA':
    case 'DELTA_CHANGE_DATA_FEED_NOT_ENABLED':
    case 'DELTA_CHANGE_TABLE_FEED_DISABLED': {
      const v = versionIn(/version \[?(\d+)\]?/i) ?? ctx.version;
      return mk('cdf-not-enabled', `Change data feed is not recorded for ${table ?? 'the table'}${v !== undefined ? ` at version ${v}` : ''}: ${message}`,
        `Enable it with ALTER TABLE ${table ?? '<table>'} SET TBLPROPERTIES (delta.enableChangeDataFeed = true) (only changes after that are recorded), then run an initial load from a version after it.`, 'never', v);
    }
    case 'DELTA_CDC_START_VERSION_AFTER_LATEST':
    case 'DELTA_INVALID_CDC_RANGE':
    case 'DELTA_TIMESTAMP_GREATER_THAN_COMMIT':
    case 'DELTA_CDC_END_VERSION_AFTER_LATEST':
      return mk('cdf-range', `Invalid change data feed range for ${table ?? 'the table'}: ${message}`, 'Read a range within the table history (DESCRIBE HISTORY); the start must not be after the end or the latest version.');
    case 'DELTA_VERSION_NOT_FOUND':
    case 'DELTA_TRUNCATED_TRANSACTION_LOG':
    case 'DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION_DURATION':
    case 'DELTA_FILE_NOT_FOUND':
    case 'DELTA_FILE_NOT_FOUND_DETAILED':
    case 'DELTA_CHANGE_DATA_FILE_NOT_FOUND':
    case 'FAILED_READ_FILE': {
      const v = versionIn(/version (\d+)/i) ?? ctx.version;
      const hint = 'That history was cleaned up (VACUUM / log retention). Run an initial load from the latest version, and sync more often than delta.logRetentionDuration / delta.deletedFileRetentionDuration.';
      return ctx.operation === 'changes'
        ? mk('cdf-range', `Changes of ${table ?? 'the table'} can no longer be read: ${message}`, hint, 'never', v)
        : mk('time-travel', `Version ${v ?? '?'} of ${table ?? 'the table'} can no longer be read: ${message}`, hint, 'never', v);
    }
    case 'PERMISSION_DENIED':
    case 'INSUFFICIENT_PERMISSIONS':
    case 'UNAUTHORIZED_ACCESS':
      return mk('auth', `Not allowed${where}: ${message}`, `The principal needs USE CATALOG, USE SCHEMA and SELECT on ${table ?? 'the table'} (and MODIFY to enable the change data feed).`);
    case 'TABLE_OR_VIEW_NOT_FOUND':
    case 'SCHEMA_NOT_FOUND':
    case 'NO_SUCH_CATALOG_EXCEPTION':
    case 'CATALOG_NOT_FOUND':
      return new SyncError('mapping', `Table not found${where}: ${message}`, { table, setting: 'source.table', hint: 'Check the catalog.schema.table name ({action} lists them) and that you may see it.', action: { id: 'databricks-tables' }, cause: e });
  }
  if (/warehouse.*(stopped|starting|not running)|TEMPORARILY_UNAVAILABLE/i.test(message)) {
    return mk('connection', `The SQL warehouse is not available${hostPart(ctx)}: ${message}`, 'Start the warehouse in the Databricks UI (or wait for it to finish starting); the sync retries on its own.', 'auto');
  }
  // CloudFetch: large results are files on the workspace's cloud storage, downloaded by
  // presigned links that expire. @databricks/sql 2.1.0 does not ask for new links (it
  // checks the expiry against this machine's clock and throws); a new read gets new ones.
  const cloudFetch = /CloudFetch link has expired|CloudFetch HTTP error (\d+)/i.exec(message);
  if (cloudFetch) {
    const at = `${table ?? 'the table'}${ctx.version !== undefined ? ` at version ${ctx.version}` : ''}`;
    const status = cloudFetch[1];
    const again = 'The sync reads again on its own with new links.';
    if (status === undefined) {
      return mk('connection', `Reading ${at} stopped: the SQL warehouse's result file links (CloudFetch) expired before they were downloaded.`,
        `${again} If it keeps happening, check this machine's clock (the driver compares each link's expiry with it) and that downloads from the workspace's cloud storage are not throttled.`, 'auto');
    }
    if (status === '403') {
      return mk('connection', `Reading ${at} stopped: the workspace's cloud storage refused a result file link (CloudFetch, HTTP 403): the link expired before its download began, or a proxy or firewall stands between this machine and the storage.`,
        `${again} If it keeps failing, allow HTTPS downloads from the workspace's cloud storage (its storage account or bucket) through the firewall or proxy, and check this machine's clock.`, 'auto');
    }
    return mk('connection', `Reading ${at} stopped: a result file (CloudFetch) could not be downloaded from the workspace's cloud storage (HTTP ${status}).`,
      `${again} If it keeps failing, allow HTTPS downloads from the workspace's cloud storage (its storage account or bucket) through the firewall or proxy.`, 'auto');
  }
  if (/socket hang up|network|timed? ?out/i.test(message)) {
    return mk('connection', `Lost the connection to Databricks${hostPart(ctx)}: ${message}`, 'The sync retries on its own.', 'auto');
  }
  const what = { connect: 'Connecting to Databricks', browse: 'Listing Databricks objects', snapshot: 'Reading the table', changes: 'Reading the change data feed', history: 'Reading the table history', alter: 'Altering the table' }[ctx.operation];
  return mk('connection', `${what} failed${where}: ${message}`, 'See the log for the Databricks error; {action} checks the connection.', 'manual', ctx.version, { id: 'databricks-test' });
}

function hostPart(ctx: ErrorContext): string {
  return ctx.host ? ` at ${ctx.host}` : '';
}
