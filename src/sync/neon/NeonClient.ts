import { createApiClient, EndpointType } from '@neondatabase/api-client';
import type { Api, Branch, Database, Endpoint, Operation, ProjectListItem, Role } from '@neondatabase/api-client';
import { SyncError } from '../errors';
import type { Logger } from '../ports/Logger';
import { silentLogger } from '../ports/Logger';
import { classifyNeonError, neonHttpStatus, neonRetryAfterMs } from './classifyNeonError';

/** The public Neon API v2. */
export const DEFAULT_NEON_API_URL = 'https://console.neon.tech/api/v2';

export interface NeonClientOptions {
  apiKey: string;
  /** Base URL of the API v2 (tests: the local server); default the public API. */
  apiUrl?: string;
  logger?: Logger;
  /** Progress lines for the user (retries, waits for operations and computes). */
  onProgress?: (message: string) => void;
  /** How long a call retries rate limits, locks and transient failures (default 60 s). */
  retryForMs?: number;
  /** First backoff (doubles up to 5 s) when the API gives no Retry-After (default 500 ms). */
  backoffMs?: number;
  /** Per request (default 30 s). */
  requestTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface NeonBranchInfo {
  branch: Branch;
  /** The branch's annotation (tags), if it has one. */
  annotations: Record<string, string>;
}

export interface CreatedBranch {
  branch: Branch;
  endpoints: Endpoint[];
  operations: Operation[];
}

const FINISHED = new Set(['finished', 'skipped']);
const FAILED = new Set(['failed', 'error', 'cancelled', 'cancelling']);

/** `...` for long lists in messages. */
function listed(names: string[], max = 20): string {
  if (names.length === 0) return '(none)';
  return names.length > max ? `${names.slice(0, max).join(', ')}, ... (${names.length} in all)` : names.join(', ');
}

function abortError(): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The Neon API v2 as this product uses it, over @neondatabase/api-client. Every call is
 * bounded (a request timeout, a retry budget, a deadline for operations) and its errors
 * are SyncErrors (classifyNeonError): rate limits (429, after Retry-After), locks while an
 * operation runs (423) and transient failures are retried with backoff within the budget,
 * for GETs always and for writes only when the API answered (so nothing is done twice).
 * Lookups by name say what exists when nothing matches.
 */
export class NeonClient {
  readonly apiUrl: string;
  private readonly api: Api<unknown>;
  private readonly logger: Logger;

  constructor(private readonly opts: NeonClientOptions) {
    this.apiUrl = opts.apiUrl ?? DEFAULT_NEON_API_URL;
    this.logger = opts.logger ?? silentLogger;
    this.api = createApiClient({ apiKey: opts.apiKey, baseURL: this.apiUrl, timeout: opts.requestTimeoutMs ?? 30_000 });
  }

  /** Runs one API call with classification and the bounded retry described above. */
  private async call<T>(what: string, fn: () => Promise<{ data: T }>, idempotent = true): Promise<T> {
    const budget = this.opts.retryForMs ?? 60_000;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (this.opts.signal?.aborted) throw new SyncError('cancelled', `Cancelled while ${what}.`);
      try {
        return (await fn()).data;
      } catch (e) {
        const err = classifyNeonError(e, { what, apiUrl: this.apiUrl });
        const status = neonHttpStatus(e);
        const answered = status === 423 || status === 429 || status === 503;
        const left = budget - (Date.now() - started);
        if (err.retry !== 'auto' || (!idempotent && !answered) || left <= 0) {
          if (attempt === 1 || err.retry !== 'auto') throw err;
          throw err.withContext(`gave up after ${attempt} attempts in ${Math.round((Date.now() - started) / 1000)} s`);
        }
        const backoff = Math.min((this.opts.backoffMs ?? 500) * 2 ** (attempt - 1), 5_000);
        const delay = Math.min(neonRetryAfterMs(e) ?? backoff, left);
        this.progress(`${err.message} Retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 1}).`);
        try {
          await wait(delay, this.opts.signal);
        } catch {
          throw new SyncError('cancelled', `Cancelled while ${what}.`);
        }
      }
    }
  }

  private progress(message: string): void {
    this.logger.info(message);
    this.opts.onProgress?.(message);
  }

  /** Every project the key can see (all pages). */
  async listProjects(): Promise<ProjectListItem[]> {
    const out: ProjectListItem[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await this.call('listing projects', () => this.api.listProjects({ limit: 400, ...(cursor ? { cursor } : {}) }));
      out.push(...r.projects);
      const next = r.pagination?.cursor;
      if (!next || r.projects.length === 0 || next === cursor) break;
      cursor = next;
    }
    return out;
  }

  /** A project by id, else by exact name; not found lists the projects the key sees. */
  async findProject(ref: string): Promise<ProjectListItem> {
    const projects = await this.listProjects();
    const found = projects.find((p) => p.id === ref) ?? projects.find((p) => p.name === ref);
    if (found) return found;
    throw new SyncError('mapping', `No Neon project "${ref}" is visible to this API key.`, {
      setting: 'target.connection',
      hint: `Projects (id: name): ${listed(projects.map((p) => `${p.id}: ${p.name}`))}. Use the project id in neon:<project>/<branch>/<database>; an organization's projects need that organization's API key.`,
    });
  }

  /** Branches of a project with their annotations (all pages). */
  async listBranches(projectId: string): Promise<NeonBranchInfo[]> {
    const out: NeonBranchInfo[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await this.call(`listing the branches of project "${projectId}"`, () => this.api.listProjectBranches({ projectId, ...(cursor ? { cursor } : {}) }));
      for (const b of r.branches) out.push({ branch: b, annotations: r.annotations?.[b.id]?.value ?? {} });
      const next = r.pagination?.next;
      if (!next || r.branches.length === 0 || next === cursor) break;
      cursor = next;
    }
    return out;
  }

  /** A branch by id or name; not found lists the branches. */
  async findBranch(projectId: string, ref: string): Promise<NeonBranchInfo> {
    const branches = await this.listBranches(projectId);
    const found = branches.find((b) => b.branch.id === ref) ?? branches.find((b) => b.branch.name === ref);
    if (found) return found;
    throw new SyncError('mapping', `Project "${projectId}" has no branch "${ref}".`, {
      setting: 'target.connection',
      hint: `Branches (name = id): ${listed(branches.map((b) => `${b.branch.name}${b.branch.default ? ' (default)' : ''} = ${b.branch.id}`))}.`,
    });
  }

  async getBranch(projectId: string, branchId: string): Promise<Branch> {
    return (await this.call(`reading branch "${branchId}" of project "${projectId}"`, () => this.api.getProjectBranch(projectId, branchId))).branch;
  }

  async listDatabases(projectId: string, branchId: string): Promise<Database[]> {
    return (await this.call(`listing the databases of branch "${branchId}"`, () => this.api.listProjectBranchDatabases(projectId, branchId))).databases;
  }

  /** A database of a branch by name; not found lists the databases. */
  async findDatabase(projectId: string, branch: Branch, name: string): Promise<Database> {
    const dbs = await this.listDatabases(projectId, branch.id);
    const found = dbs.find((d) => d.name === name);
    if (found) return found;
    throw new SyncError('mapping', `Branch "${branch.name}" of project "${projectId}" has no database "${name}".`, {
      setting: 'target.connection',
      hint: `Databases on that branch: ${listed(dbs.map((d) => `${d.name} (owner ${d.owner_name})`))}.`,
    });
  }

  async listRoles(projectId: string, branchId: string): Promise<Role[]> {
    return (await this.call(`listing the roles of branch "${branchId}"`, () => this.api.listProjectBranchRoles(projectId, branchId))).roles;
  }

  async listEndpoints(projectId: string, branchId: string): Promise<Endpoint[]> {
    return (await this.call(`listing the computes of branch "${branchId}"`, () => this.api.listProjectBranchEndpoints(projectId, branchId))).endpoints;
  }

  /** The connection URI (with the role's password) for a branch's read-write compute. */
  async connectionUri(q: { projectId: string; branchId: string; database: string; role: string; pooled: boolean; endpointId?: string }): Promise<string> {
    const r = await this.call(`getting the connection URI of database "${q.database}" as role "${q.role}" on branch "${q.branchId}"`, () =>
      this.api.getConnectionUri({ projectId: q.projectId, branch_id: q.branchId, database_name: q.database, role_name: q.role, pooled: q.pooled, ...(q.endpointId ? { endpoint_id: q.endpointId } : {}) }),
    );
    return r.uri;
  }

  /** A child branch of `parentId` with a read-write compute; its operations still run. */
  async createBranch(projectId: string, req: { parentId: string; name: string; annotations?: Record<string, string> }): Promise<CreatedBranch> {
    const r = await this.call(
      `creating branch "${req.name}" in project "${projectId}"`,
      () =>
        this.api.createProjectBranch(projectId, {
          branch: { parent_id: req.parentId, name: req.name },
          endpoints: [{ type: EndpointType.ReadWrite }],
          ...(req.annotations ? { annotation_value: req.annotations } : {}),
        }),
      false,
    );
    return { branch: r.branch, endpoints: r.endpoints, operations: r.operations };
  }

  /** Deletes a branch; resolves to its operations (wait for them to know it is gone). */
  async deleteBranch(projectId: string, branchId: string): Promise<Operation[]> {
    const r = await this.call(`deleting branch "${branchId}" of project "${projectId}"`, () => this.api.deleteProjectBranch({ projectId, branchId }), false);
    return r.operations;
  }

  /**
   * Waits until every operation finished (polling each, 200 ms growing to 2 s), at most
   * `timeoutMs` (default 5 min). A failed operation is a SyncError naming its action.
   */
  async waitForOperations(projectId: string, operations: readonly Operation[], opts: { timeoutMs?: number; what?: string } = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
    let pending = operations.filter((o) => !FINISHED.has(o.status));
    let delay = 200;
    let said = false;
    while (pending.length > 0) {
      for (const o of pending) {
        if (FAILED.has(o.status)) {
          throw new SyncError('connection', `Neon operation ${o.action} (${o.id}) ${o.status}${o.error ? `: ${o.error}` : ''}${opts.what ? ` while ${opts.what}` : ''}.`, {
            retry: 'manual', hint: 'See the project\'s Operations in the Neon Console; run the command again once the project is healthy.',
          });
        }
      }
      if (Date.now() > deadline) {
        throw new SyncError('connection', `Neon operations ${pending.map((o) => `${o.action} (${o.status})`).join(', ')} did not finish within ${Math.round((opts.timeoutMs ?? 300_000) / 1000)} s${opts.what ? ` while ${opts.what}` : ''}.`, {
          retry: 'manual', hint: 'The project may be busy or a compute slow to start; check its Operations in the Neon Console and run the command again.',
        });
      }
      if (!said) {
        this.progress(`Waiting for Neon: ${pending.map((o) => o.action).join(', ')}${opts.what ? ` (${opts.what})` : ''}...`);
        said = true;
      }
      try {
        await wait(delay, this.opts.signal);
      } catch {
        throw new SyncError('cancelled', `Cancelled while waiting for Neon operations${opts.what ? ` (${opts.what})` : ''}.`);
      }
      delay = Math.min(delay * 2, 2_000);
      const next: Operation[] = [];
      for (const o of pending) {
        const cur = (await this.call(`reading operation ${o.id}`, () => this.api.getProjectOperation(projectId, o.id))).operation;
        if (!FINISHED.has(cur.status)) next.push(cur);
      }
      pending = next;
    }
  }
}
