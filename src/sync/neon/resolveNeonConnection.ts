import type { Branch, Endpoint } from '@neondatabase/api-client';
import { SyncError } from '../errors';
import type { Logger } from '../ports/Logger';
import { NEON_API_KEY_HINT } from './classifyNeonError';
import { DEFAULT_NEON_API_URL, NeonClient } from './NeonClient';
import type { NeonClientOptions } from './NeonClient';
import { parseNeonReference } from '../mapping/neonReference';
import type { NeonReference } from '../mapping/neonReference';

/** Where the API key and URL come from, and how long to wait for a compute. */
export interface NeonResolveOptions {
  env?: Record<string, string | undefined>;
  /** The key (the extension passes the one in SecretStorage); else NEON_API_KEY. */
  apiKey?: () => Promise<string | undefined>;
  /** The API's base URL (the extension's deltaSync.neon.apiUrl); else NEON_API_HOST, else the public API. */
  apiUrl?: string;
  logger?: Logger;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
  retryForMs?: number;
  backoffMs?: number;
  /** How long to wait for a starting compute (default 60 s). */
  computeWaitMs?: number;
}

export interface ResolvedNeonTarget {
  /** The full connection URI, with the password: keep in memory only. */
  url: string;
  /** For messages: the reference and host, never the password. */
  label: string;
  ref: NeonReference;
  projectId: string;
  branch: Branch;
  database: string;
  role: string;
  endpoint: Endpoint;
}

/** NEON_API_HOST as a base URL: a bare host gets https:// and /api/v2. */
export function neonApiUrl(raw: string | undefined): string {
  const v = raw?.trim();
  if (!v) return DEFAULT_NEON_API_URL;
  const withScheme = /^https?:\/\//i.test(v) ? v : `https://${v}`;
  const u = new URL(withScheme);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/api/v2';
  return u.toString().replace(/\/$/, '');
}

/** The API key: the injected one (extension), else NEON_API_KEY; missing is an 'auth' error with how to get one. */
export async function neonApiKey(opts: Pick<NeonResolveOptions, 'env' | 'apiKey'>): Promise<string> {
  const key = (await opts.apiKey?.()) ?? (opts.env ?? process.env).NEON_API_KEY?.trim();
  if (key) return key;
  throw new SyncError('auth', 'No Neon API key: the Neon API is needed to list projects and branches and to fetch the connection string of a neon: target.', {
    setting: 'NEON_API_KEY',
    hint: `${NEON_API_KEY_HINT} For example: export NEON_API_KEY=napi_...`,
  });
}

/** A NeonClient with the key and URL from the options (CLI: NEON_API_KEY, NEON_API_HOST). */
export async function neonClientFor(opts: NeonResolveOptions, extra: Partial<NeonClientOptions> = {}): Promise<NeonClient> {
  const apiKey = await neonApiKey(opts);
  const apiUrl = opts.apiUrl ?? neonApiUrl((opts.env ?? process.env).NEON_API_HOST);
  return new NeonClient({
    apiKey, apiUrl,
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.retryForMs !== undefined ? { retryForMs: opts.retryForMs } : {}),
    ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
    ...extra,
  });
}

function hostLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'neon';
  }
}

function isStarting(ep: Endpoint): boolean {
  return ep.current_state === 'init' || (ep.pending_state === 'active' && ep.current_state !== 'active');
}

/**
 * The branch's read-write compute, ready to take a connection: a disabled one is an error
 * (connections would be refused), a starting one is waited for (bounded, with progress
 * lines), a suspended (idle) one is fine: the first connection wakes it, and the runner
 * retries a connection refused while it starts.
 */
export async function readyCompute(client: NeonClient, projectId: string, branch: Branch, opts: Pick<NeonResolveOptions, 'computeWaitMs' | 'onProgress' | 'logger' | 'signal'> = {}): Promise<Endpoint> {
  const limit = opts.computeWaitMs ?? 60_000;
  const deadline = Date.now() + limit;
  let delay = 250;
  let said = false;
  for (;;) {
    const endpoints = await client.listEndpoints(projectId, branch.id);
    const rw = endpoints.find((e) => e.type === 'read_write');
    if (!rw) {
      throw new SyncError('target', `Branch "${branch.name}" (${branch.id}) of project "${projectId}" has no read-write compute, so nothing can connect to it.`, {
        setting: 'target.connection', retry: 'manual',
        hint: `Add a read-write compute to the branch in the Neon Console (Branches > ${branch.name} > Add compute), or point target.connection at another branch.`,
      });
    }
    if (rw.disabled) {
      throw new SyncError('connection', `The compute ${rw.id} of branch "${branch.name}" is disabled: Neon refuses connections to it.`, {
        setting: 'target.connection', retry: 'manual',
        hint: 'Enable the compute in the Neon Console (Branches > the branch > Computes > Edit), or ask the project admin; a project over its compute quota has its computes suspended until the quota resets.',
      });
    }
    if (!isStarting(rw)) {
      if (rw.current_state === 'idle') {
        const msg = `Neon compute ${rw.id} is suspended (scale to zero); the first connection wakes it, which can take a few seconds.`;
        opts.logger?.info(msg);
        opts.onProgress?.(msg);
      }
      return rw;
    }
    if (Date.now() > deadline) {
      throw new SyncError('connection', `The Neon compute ${rw.id} of branch "${branch.name}" was still starting after ${Math.round(limit / 1000)} s.`, {
        setting: 'target.connection', retry: 'auto',
        hint: 'Neon computes usually start within seconds; check the branch\'s compute in the Neon Console (and the project\'s Operations) and run again.',
      });
    }
    if (!said) {
      const msg = `Neon compute ${rw.id} of branch "${branch.name}" is starting; waiting up to ${Math.round(limit / 1000)} s...`;
      opts.logger?.info(msg);
      opts.onProgress?.(msg);
      said = true;
    }
    await new Promise<void>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new SyncError('cancelled', 'Cancelled while waiting for the Neon compute to start.'));
      const t = setTimeout(resolve, delay);
      opts.signal?.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new SyncError('cancelled', 'Cancelled while waiting for the Neon compute to start.'));
      }, { once: true });
    });
    delay = Math.min(delay * 2, 2_000);
  }
}

/** Roles Neon manages itself; never a default. */
const SYSTEM_ROLES = new Set(['cloud_admin', 'neon_superuser', 'neon_service', 'web_access', 'neondb_superuser']);

/**
 * The role to connect as: the one given (it must exist on the branch), else the branch's
 * only non-system role; with several, the user must choose (the error lists them).
 */
export async function chooseRole(client: NeonClient, projectId: string, branch: Branch, database: string, wanted: string | undefined): Promise<string> {
  const roles = (await client.listRoles(projectId, branch.id)).filter((r) => !SYSTEM_ROLES.has(r.name));
  const names = roles.map((r) => r.name);
  if (wanted) {
    if (names.includes(wanted)) return wanted;
    throw new SyncError('mapping', `Branch "${branch.name}" of project "${projectId}" has no role "${wanted}".`, {
      setting: 'target.connection',
      hint: `Roles on that branch: ${names.join(', ') || '(none)'}.${names.length === 1 ? ' Leave role= out to connect as that one.' : ''}`,
    });
  }
  const [only] = names;
  if (names.length === 1 && only) return only;
  throw new SyncError('mapping', names.length === 0
    ? `Branch "${branch.name}" of project "${projectId}" has no role to connect as.`
    : `Branch "${branch.name}" of project "${projectId}" has ${names.length} roles; the Neon reference must say which one to connect as.`, {
    setting: 'target.connection',
    hint: names.length === 0
      ? 'Create a role in the Neon Console (Branches > the branch > Roles & Databases), then run again.'
      : `Add ?role=<role> to the reference, e.g. neon:${projectId}/${branch.name}/${database}?role=${names[0] ?? 'app'}. Roles: ${names.join(', ')}.`,
  });
}

/** The connection URI of one database on one branch, as the given (or the only) role. */
export async function branchConnection(client: NeonClient, projectId: string, branch: Branch, database: string, ref: Pick<NeonReference, 'role' | 'pooled'>, opts: NeonResolveOptions = {}): Promise<Omit<ResolvedNeonTarget, 'ref'>> {
  await client.findDatabase(projectId, branch, database);
  const role = await chooseRole(client, projectId, branch, database, ref.role);
  const endpoint = await readyCompute(client, projectId, branch, opts);
  const url = await client.connectionUri({ projectId, branchId: branch.id, database, role, pooled: ref.pooled, endpointId: endpoint.id });
  return { url, label: '', projectId, branch, database, role, endpoint };
}

/**
 * Resolves `neon:<project>/<branch>/<database>[?role=&pooled=true]` through the Neon API to
 * a connection URI with the role's password (in memory only: never written to the
 * workspace or logged). The branch is found by name or id, the role defaults to the
 * branch's only non-system role; a project, branch, database or role that does not exist is a
 * 'mapping' error listing what does.
 */
export async function resolveNeonConnection(connection: string, opts: NeonResolveOptions = {}): Promise<ResolvedNeonTarget> {
  const parsed = parseNeonReference(connection);
  if (!parsed.ok) {
    throw new SyncError('mapping', `target.connection: a Neon reference ${parsed.reason}.`, { setting: 'target.connection', hint: 'For example "neon:polished-fog-123456/main/neondb", or "neon:polished-fog-123456/dev/app?role=app_writer&pooled=true".' });
  }
  const { ref } = parsed;
  const client = await neonClientFor(opts);
  const project = await client.findProject(ref.project);
  const { branch } = await client.findBranch(project.id, ref.branch);
  const resolved = await branchConnection(client, project.id, branch, ref.database, ref, opts);
  return { ...resolved, ref, label: `${connection.split('?')[0]} as ${resolved.role}${ref.pooled ? ', pooled' : ''} (${hostLabel(resolved.url)})` };
}
