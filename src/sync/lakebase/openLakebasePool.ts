import { randomUUID } from 'node:crypto';
import { generateDatabaseCredential } from '@databricks/lakebase';
import { Config, WorkspaceClient } from '@databricks/sdk-experimental';
import type pg from 'pg';
import { SyncError } from '../errors';
import { DEFAULT_DATABRICKS_CONNECTION, resolveDatabricksWorkspace } from '../databricks/resolveDatabricksConnection';
import type { DatabricksResolveOptions, DatabricksWorkspaceConfig } from '../databricks/resolveDatabricksConnection';
import { lakebaseResourceLabel, parseLakebaseReference } from '../mapping/lakebaseReference';
import type { LakebaseReference } from '../mapping/lakebaseReference';
import { createPool } from '../postgres/createPool';
import type { CreatePoolOptions } from '../postgres/createPool';
import { classifyLakebaseError, describeWorkspace } from './classifyLakebaseError';
import type { LakebaseErrorContext } from './classifyLakebaseError';
import { LakebaseTokenSource } from './LakebaseTokenSource';
import type { IssuedCredential } from './LakebaseTokenSource';

export interface LakebaseOpenOptions {
  env?: Record<string, string | undefined>;
  /** Saved Databricks connections (the extension's), as for a Databricks source. */
  databricks?: Pick<DatabricksResolveOptions, 'lookup'>;
  pool?: Omit<CreatePoolOptions, 'password'>;
}

export interface LakebasePool {
  pool: pg.Pool;
  /** For messages: endpoint host/database and the profile, never a token. */
  label: string;
  tokens: LakebaseTokenSource;
  close(): Promise<void>;
}

/** How long the SDK keeps retrying a busy workspace (429/503) before giving up. */
const RETRY_TIMEOUT_SECONDS = 60;

/** `https://host[:port]` for the SDK; an explicit http:// (a local test workspace) is kept. */
function workspaceUrl(ws: DatabricksWorkspaceConfig): string {
  const raw = ws.host.trim().replace(/\/+$/, '');
  const withScheme = /^https?:\/\//i.test(raw) ? raw : `https://${raw}`;
  const u = new URL(withScheme);
  if (ws.port !== undefined && u.port === '') u.port = String(ws.port);
  return `${u.protocol}//${u.host}`;
}

/** The environment for a named ~/.databrickscfg profile: the profile alone decides, not DATABRICKS_HOST/TOKEN... */
function profileEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('DATABRICKS_') || k === 'DATABRICKS_CONFIG_FILE') out[k] = v;
  return out;
}

export interface LakebaseWorkspace {
  client: WorkspaceClient;
  ctx: LakebaseErrorContext;
  /** The service principal's client id, when signing in as one (its Postgres role name). */
  clientId?: string;
}

/**
 * The Databricks workspace client for a reference's profile, with the unified auth the
 * Databricks source uses: first a Databricks connection of that name (saved in the
 * extension, DELTA_NEON_SYNC_DATABRICKS_<NAME>_*, or for "default" the DATABRICKS_*
 * variables: PAT or OAuth M2M), else the `~/.databrickscfg` profile of that name
 * (DATABRICKS_CONFIG_FILE honoured), else, with no profile named, the SDK's default chain.
 */
function workspaceFor(ref: LakebaseReference, env: Record<string, string | undefined>, dbx: LakebaseOpenOptions['databricks']): Promise<LakebaseWorkspace> {
  return lakebaseWorkspace(ref.workspace, { resource: lakebaseResourceLabel(ref) }, env, dbx);
}

/**
 * The workspace client for `profile` (undefined: the default chain), as workspaceFor
 * resolves it; `what` names the resource (and the action) in the errors of its sign-in.
 */
export async function lakebaseWorkspace(profile: string | undefined, what: Omit<LakebaseErrorContext, 'profile' | 'host'>, env: Record<string, string | undefined>, dbx: LakebaseOpenOptions['databricks']): Promise<LakebaseWorkspace> {
  const name = profile ?? DEFAULT_DATABRICKS_CONNECTION;
  const ctx: LakebaseErrorContext = { ...(profile !== undefined ? { profile } : {}), ...what };
  const ws = await resolveDatabricksWorkspace(name, { env, ...(dbx?.lookup ? { lookup: dbx.lookup } : {}) });
  let config: Config;
  if (ws) {
    const host = workspaceUrl(ws);
    ctx.host = new URL(host).host;
    const auth = ws.auth.type === 'pat'
      ? { authType: 'pat' as const, token: ws.auth.token }
      : { authType: 'oauth-m2m' as const, clientId: ws.auth.clientId, clientSecret: ws.auth.clientSecret };
    // env: {} so stray DATABRICKS_* variables cannot mix a second sign-in into this one.
    config = new Config({ host, ...auth, env: {}, retryTimeoutSeconds: RETRY_TIMEOUT_SECONDS });
  } else if (profile !== undefined) {
    config = new Config({ profile, env: profileEnv(env), retryTimeoutSeconds: RETRY_TIMEOUT_SECONDS });
  } else {
    config = new Config({ env, retryTimeoutSeconds: RETRY_TIMEOUT_SECONDS });
  }
  try {
    await config.ensureResolved();
    if (config.host) ctx.host = new URL(config.host).host;
  } catch (e) {
    throw classifyLakebaseError(e, ctx);
  }
  return { client: new WorkspaceClient(config), ctx, ...(config.clientId ? { clientId: config.clientId } : {}) };
}

/**
 * The Postgres role: `user=` in the reference, else PGUSER, else the service principal's
 * client id (OAuth M2M), else the signed-in user's name from the workspace (SCIM Me), the
 * order @databricks/lakebase uses.
 */
async function roleFor(ref: LakebaseReference, env: Record<string, string | undefined>, ws: LakebaseWorkspace): Promise<string> {
  const direct = ref.user ?? env.PGUSER ?? ws.clientId;
  if (direct) return direct;
  try {
    const me = await ws.client.currentUser.me();
    if (me.userName) return me.userName;
  } catch (e) {
    throw classifyLakebaseError(e, ws.ctx);
  }
  throw new SyncError('mapping', `Cannot tell which Postgres role to log in as on Lakebase ${lakebaseResourceLabel(ref)}.`, {
    setting: 'target.connection',
    hint: 'Add &user=<role> to the lakebase: reference (your Databricks user name, or the service principal\'s application id).',
  });
}

/**
 * How to get a credential: an Autoscaling endpoint through @databricks/lakebase (POST
 * /api/2.0/postgres/credentials { endpoint }), a Provisioned instance through the SDK's
 * database API (POST /api/2.0/database/credentials { instance_names, request_id }).
 */
function issuerFor(ref: LakebaseReference, client: WorkspaceClient): () => Promise<IssuedCredential> {
  const endpoint = ref.endpoint;
  if (endpoint !== undefined) {
    return async () => {
      const c = await generateDatabaseCredential(client, { endpoint });
      return { token: c.token, expiresAt: c.expire_time };
    };
  }
  const instance = ref.instance as string;
  return async () => {
    const c = await client.database.generateDatabaseCredential({ instance_names: [instance], request_id: randomUUID() });
    if (typeof c.token !== 'string' || typeof c.expiration_time !== 'string') {
      throw new Error(`the workspace answered without token and expiration_time for database instance ${instance}`);
    }
    return { token: c.token, expiresAt: c.expiration_time };
  };
}

/** A Provisioned instance's host when the reference names none: its read_write_dns. */
async function instanceHost(ref: LakebaseReference, ws: LakebaseWorkspace): Promise<string | undefined> {
  if (ref.instance === undefined) return undefined;
  try {
    const info = await ws.client.database.getDatabaseInstance({ name: ref.instance });
    return info.read_write_dns || undefined;
  } catch (e) {
    throw classifyLakebaseError(e, ws.ctx);
  }
}

/**
 * Postgres refusing a fresh token (28P01, or 28000: no such role) means the token's
 * identity has no role of that name on the branch, or `user=` names someone else: say so,
 * with the profile the token came from, instead of the generic "check the password".
 */
function refusedLogin(e: unknown, login: { role: string; host: string; database: string }, ctx: LakebaseErrorContext): unknown {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  if (code !== '28P01' && code !== '28000') return e;
  const text = e instanceof Error ? e.message : String(e);
  return new SyncError('auth', `Lakebase refused role "${login.role}" on ${login.host}/${login.database} with a database token from ${describeWorkspace(ctx)}: ${text}`, {
    setting: 'target.connection',
    retry: 'never',
    cause: e,
    hint: `A token logs in only as the identity it was issued to (the profile's user name, or its service principal's application id). Check that user=${login.role} is that identity, and that a Postgres role for it exists on the branch (add it under the Lakebase project's roles).`,
  });
}

/**
 * Opens a pool on a Lakebase database named by a `lakebase:` reference: the engine's
 * createPool (TLS, session limits, exact types...) whose password is a LakebaseTokenSource,
 * so every new connection logs in with a token that has time left, fetched with the
 * profile's Databricks credentials. The default sslmode is require (Lakebase only speaks TLS).
 */
export async function openLakebasePool(connection: string, opts: LakebaseOpenOptions = {}): Promise<LakebasePool> {
  const parsed = parseLakebaseReference(connection);
  if (!parsed.ok) {
    throw new SyncError('mapping', `target.connection is not a valid Lakebase target: ${parsed.problem}`, { setting: 'target.connection' });
  }
  const ref = parsed.ref;
  const env = opts.env ?? process.env;
  const ws = await workspaceFor(ref, env, opts.databricks);
  // An instance's own host beats PGHOST, which may point anywhere; an endpoint has no lookup here.
  const host = ref.host ?? (ref.instance !== undefined ? await instanceHost(ref, ws) : env.PGHOST);
  if (!host) {
    throw new SyncError('mapping', `The Lakebase target ${lakebaseResourceLabel(ref)} has no Postgres host.`, {
      setting: 'target.connection',
      hint: ref.endpoint !== undefined
        ? 'Add &host=<endpoint host> to the lakebase: reference (the host in the endpoint\'s connection details, ep-....database.<region>.cloud.databricks.com), or set PGHOST.'
        : 'The workspace gave no host for this instance (is it still starting?); add &host=<instance host> to the lakebase: reference.',
    });
  }
  const user = await roleFor(ref, env, ws);
  const params = new URLSearchParams({ sslmode: 'require', ...ref.params });
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const url = `postgresql://${encodeURIComponent(user)}@${hostPart}:${ref.port ?? 5432}/${encodeURIComponent(ref.database)}?${params.toString()}`;
  const tokens = new LakebaseTokenSource(issuerFor(ref, ws.client), ws.ctx);
  const pool = createPool(url, { ...opts.pool, password: tokens.provider, loginError: (e) => refusedLogin(e, { role: user, host, database: ref.database }, ws.ctx) });
  const label = `lakebase ${host}/${ref.database} (${describeWorkspace(ws.ctx)})`;
  return { pool, label, tokens, close: () => pool.end() };
}
