import { SyncError, isSyncError } from '../errors';
import type { RetryPolicy, SyncErrorKind } from '../errors';

/** Where a Lakebase credential was being fetched: named in every message. */
export interface LakebaseErrorContext {
  /** The Databricks connection or ~/.databrickscfg profile; undefined: the default chain. */
  profile?: string;
  /** The workspace host, when known. */
  host?: string;
  /** "endpoint projects/<project>/branches/<branch>/endpoints/<endpoint>" or "database instance <name>" (lakebaseResourceLabel). */
  resource: string;
  /** What was being done, as a verb phrase ("list the branches of projects/p"); default: fetching a database token. */
  action?: string;
}

function prop(o: unknown, key: string): unknown {
  return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined;
}

const NETWORK = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH|socket hang up|Can't connect to/;

/** "profile "x" (workspace h)" / "workspace h" / "the default Databricks connection" */
export function describeWorkspace(ctx: Pick<LakebaseErrorContext, 'profile' | 'host'>): string {
  const host = ctx.host ? `workspace ${ctx.host}` : undefined;
  if (ctx.profile !== undefined) return `Databricks profile "${ctx.profile}"${host ? ` (${host})` : ''}`;
  return host ?? 'the default Databricks connection';
}

/**
 * Turns what the Databricks SDK throws while signing in or asking for a Lakebase database
 * credential into a SyncError whose message names the profile and workspace host: a
 * rejected PAT or OAuth secret (HTTP 401, invalid_client), a principal without rights on
 * the endpoint (403), an unknown endpoint (404), an unreachable workspace, a missing or
 * incomplete profile. SyncErrors pass through.
 */
export function classifyLakebaseError(e: unknown, ctx: LakebaseErrorContext): SyncError {
  if (isSyncError(e)) return e;
  const where = describeWorkspace(ctx);
  // The SDK's ConfigError appends a dump of the config to its message; baseMessage is the sentence.
  const base = prop(e, 'baseMessage');
  const message = typeof base === 'string' && base !== '' ? base : e instanceof Error ? e.message : String(e);
  const mk = (kind: SyncErrorKind, text: string, hint: string, retry: RetryPolicy = 'never'): SyncError =>
    new SyncError(kind, text, { setting: 'target.connection', hint, retry, cause: e });
  const credentialsHint =
    ctx.profile !== undefined
      ? `Check the credentials of profile "${ctx.profile}" (its token, or client_id and client_secret of the service principal) in ~/.databrickscfg or DELTA_NEON_SYNC_DATABRICKS_${ctx.profile.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_*; a token or OAuth secret may have expired or been revoked.`
      : 'Check DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET; a token or OAuth secret may have expired or been revoked.';

  const status = prop(e, 'statusCode') ?? prop(e, 'code');
  if (status === 401 || /invalid_client|unauthorized_client|invalid_grant|Failed to retrieve token|HTTP 401|Unauthorized/i.test(message)) {
    return mk('auth', `Databricks rejected the credentials of ${where} while ${ctx.action ? `trying to ${ctx.action}` : 'fetching a Lakebase database token'}: ${message}`, credentialsHint);
  }
  if (status === 403) {
    return mk('auth', ctx.action ? `${where} may not ${ctx.action}: ${message}` : `${where} may not get database credentials for Lakebase ${ctx.resource}: ${message}`, 'Give the user or service principal access to the Lakebase project or database instance (CAN USE or more), and a Postgres role on the database.');
  }
  if (status === 404) {
    const find = ctx.resource.startsWith('endpoint ')
      ? 'Copy the endpoint name from `databricks postgres list-endpoints projects/<project>/branches/<branch>` (the name field)'
      : 'Copy the instance name from `databricks database list-database-instances` (the name field)';
    return mk('mapping', `No Lakebase ${ctx.resource} in ${where}: ${message}`, `${find}, and check the profile points at the workspace that holds it.`);
  }
  if (status === 429 || (typeof status === 'number' && status >= 500)) {
    return mk('connection', `Databricks could not ${ctx.action ?? 'issue a Lakebase database token'} (${where}, HTTP ${String(status)}): ${message}`, 'The workspace is busy or unavailable; the sync retries on its own.', 'auto');
  }
  if (NETWORK.test(message) || NETWORK.test(String(prop(e, 'code') ?? '')) || NETWORK.test(String(prop(prop(e, 'cause'), 'code') ?? ''))) {
    return mk('connection', `Cannot reach ${where} to ${ctx.action ?? 'fetch a Lakebase database token'}: ${message}`, 'Check the workspace host of the profile, the network, VPN or proxy; the sync retries on its own.', 'auto');
  }
  if (/has no .* profile configured|cannot configure default credentials|default auth|host is not set|ConfigError/i.test(`${message} ${String(prop(e, 'name'))}`)) {
    return mk('mapping', `Cannot sign in to Databricks with ${where}: ${message}`, ctx.profile !== undefined
      ? `Add a [${ctx.profile}] profile to ~/.databrickscfg (host and token, or host, client_id and client_secret), or set DELTA_NEON_SYNC_DATABRICKS_${ctx.profile.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_HOST and its TOKEN (or CLIENT_ID and CLIENT_SECRET).`
      : 'Name a profile in the reference (?profile=<name>), or set DATABRICKS_HOST and DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET).');
  }
  return mk('connection', ctx.action ? `Could not ${ctx.action} with ${where}: ${message}` : `Fetching a Lakebase database token from ${where} failed: ${message}`, ctx.profile !== undefined ? `Check the profile with \`databricks auth describe --profile ${ctx.profile}\`.` : 'Check the sign-in with `databricks auth describe`.', 'manual');
}
