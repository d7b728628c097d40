import { SyncError } from '../errors';
import type { DatabricksConnectionConfig } from './DatabricksClient';

export interface DatabricksResolveOptions {
  env?: Record<string, string | undefined>;
  /** Named connections (the extension passes the ones from SecretStorage). */
  lookup?: (name: string) => Promise<DatabricksConnectionConfig | undefined>;
}

/** The connection name whose settings are the plain DATABRICKS_* variables. */
export const DEFAULT_DATABRICKS_CONNECTION = 'default';

/** Prefix of a named connection's variables: DELTA_NEON_SYNC_DATABRICKS_<NAME>_. */
export function databricksEnvPrefix(name: string): string {
  return `DELTA_NEON_SYNC_DATABRICKS_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_`;
}

/** A workspace and how to sign in to it: a Databricks connection without its SQL warehouse. */
export type DatabricksWorkspaceConfig = Pick<DatabricksConnectionConfig, 'host' | 'auth' | 'port'>;

type EnvGet = (k: string) => string | undefined;

function envGetter(env: Record<string, string | undefined>, prefix: string): EnvGet {
  return (k) => {
    const v = env[prefix + k]?.trim();
    return v ? v : undefined;
  };
}

/** TOKEN (personal access token) or CLIENT_ID + CLIENT_SECRET (OAuth machine-to-machine). */
function authFromEnv(get: EnvGet, prefix: string): DatabricksConnectionConfig['auth'] {
  const token = get('TOKEN');
  const clientId = get('CLIENT_ID');
  const clientSecret = get('CLIENT_SECRET');
  if (clientId && clientSecret) return { type: 'oauth-m2m', clientId, clientSecret };
  if (token) return { type: 'pat', token };
  throw new SyncError('usage', `No Databricks credentials: set ${prefix}TOKEN, or ${prefix}CLIENT_ID and ${prefix}CLIENT_SECRET.`, {
    setting: `${prefix}TOKEN`,
    hint: 'A personal access token (User Settings > Developer > Access tokens), or a service principal OAuth secret for machine-to-machine sign-in.',
  });
}

/**
 * Reads one connection from environment variables with `prefix`: HOST, HTTP_PATH, and
 * TOKEN (personal access token) or CLIENT_ID + CLIENT_SECRET (OAuth machine-to-machine).
 * Returns undefined when HOST is not set; throws SyncError('usage') when it is set but the
 * rest is incomplete.
 */
export function databricksConfigFromEnv(env: Record<string, string | undefined>, prefix: string): DatabricksConnectionConfig | undefined {
  const get = envGetter(env, prefix);
  const host = get('HOST');
  if (!host) return undefined;
  const httpPath = get('HTTP_PATH');
  if (!httpPath) {
    throw new SyncError('usage', `${prefix}HOST is set but ${prefix}HTTP_PATH is not.`, {
      setting: `${prefix}HTTP_PATH`,
      hint: `Copy the HTTP path from the SQL warehouse's Connection details: export ${prefix}HTTP_PATH=/sql/1.0/warehouses/<id>`,
    });
  }
  return { host, httpPath, auth: authFromEnv(get, prefix) };
}

/** The workspace part of a connection from environment variables (HOST and credentials; no HTTP_PATH needed). */
export function databricksWorkspaceFromEnv(env: Record<string, string | undefined>, prefix: string): DatabricksWorkspaceConfig | undefined {
  const get = envGetter(env, prefix);
  const host = get('HOST');
  if (!host) return undefined;
  return { host, auth: authFromEnv(get, prefix) };
}

/**
 * The workspace of a Databricks connection by name, for uses that need no SQL warehouse
 * (Lakebase credentials): the same connections as resolveDatabricksConnection, in the same
 * order (injected lookup, DELTA_NEON_SYNC_DATABRICKS_<NAME>_*, and for "default" the plain
 * DATABRICKS_* variables), without requiring HTTP_PATH. Undefined when none is set.
 */
export async function resolveDatabricksWorkspace(name: string, opts: DatabricksResolveOptions = {}): Promise<DatabricksWorkspaceConfig | undefined> {
  const env = opts.env ?? process.env;
  const saved = await opts.lookup?.(name);
  if (saved) return { host: saved.host, auth: saved.auth, ...(saved.port !== undefined ? { port: saved.port } : {}) };
  const named = databricksWorkspaceFromEnv(env, databricksEnvPrefix(name));
  if (named) return named;
  if (name === DEFAULT_DATABRICKS_CONNECTION) return databricksWorkspaceFromEnv(env, 'DATABRICKS_');
  return undefined;
}

/**
 * Resolves a mapping's `source.connection`: the injected lookup first (extension:
 * SecretStorage), then DELTA_NEON_SYNC_DATABRICKS_<NAME>_*, then, for "default" only, the
 * plain DATABRICKS_* variables of the Databricks CLI and SDKs.
 */
export async function resolveDatabricksConnection(name: string, opts: DatabricksResolveOptions = {}): Promise<DatabricksConnectionConfig> {
  const env = opts.env ?? process.env;
  const saved = await opts.lookup?.(name);
  if (saved) return saved;
  const named = databricksConfigFromEnv(env, databricksEnvPrefix(name));
  if (named) return named;
  if (name === DEFAULT_DATABRICKS_CONNECTION) {
    const plain = databricksConfigFromEnv(env, 'DATABRICKS_');
    if (plain) return plain;
  }
  throw new SyncError('usage', `Unknown Databricks connection "${name}".`, {
    setting: 'source.connection',
    hint:
      name === DEFAULT_DATABRICKS_CONNECTION
        ? 'Set DATABRICKS_HOST, DATABRICKS_HTTP_PATH and DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET).'
        : `Set ${databricksEnvPrefix(name)}HOST, ${databricksEnvPrefix(name)}HTTP_PATH and ${databricksEnvPrefix(name)}TOKEN, or add the connection in the extension.`,
  });
}
