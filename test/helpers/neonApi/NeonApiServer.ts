import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import type {
  AnnotationsMapResponse, BranchCreateRequest, AnnotationCreateValueRequest, BranchesResponse, BranchOperations, BranchResponse,
  ConnectionURIResponse, ConnectionURIsOptionalResponse, CursorPaginationResponse, DatabasesResponse, EndpointsResponse, GeneralError,
  OperationResponse, OperationsResponse, PaginationResponse, ProjectResponse, ProjectsApplicationsMapResponse, ProjectsIntegrationsMapResponse,
  ProjectsResponse, RolePasswordResponse, RolesResponse, AnnotationResponse, Project,
} from '@neondatabase/api-client';
import {
  EndpointState, OperationAction, OperationStatus, buildBranch, buildDatabase, buildEndpoint, buildOperation, buildProject, buildRole, neonId,
} from './neonModel';
import type { ModelBranch, ModelDatabase, ModelProject } from './neonModel';

/**
 * A local stand-in for the Neon API v2 (the subset the product calls), driven in tests
 * through the real @neondatabase/api-client. Plain node:http on a free port, bearer API
 * key. Every response body is typed by the client package's own types, so the shapes
 * cannot drift from the real API's. A branch's databases are real databases on the test
 * PostgreSQL: a child branch is `CREATE DATABASE child TEMPLATE parent` (copy of the
 * parent's data, as a Neon branch is), made while its create_branch operation runs.
 *
 * Errors are the API's GeneralError `{code, message, request_id}`: 401 for a bad key, 404
 * for an unknown project/branch/database/role/operation, 423 while an operation of the
 * project runs (for writes), 429 with Retry-After (fault), 422 for deleting the default
 * branch or a branch with children. Connection URIs are `postgresql://role:password@127.0.0.1:<port>/<real db>`
 * (the test server has no TLS: sslmode=disable; `pooledPort` stands in for the -pooler host).
 */
export interface NeonApiServerOptions {
  /** Admin URL of the test PostgreSQL (createTestDatabase's server). */
  adminUrl: string;
  apiKey?: string;
  /** How long operations stay running (default 150 ms) after their work is done. */
  operationMs?: number;
  /** Port that pooled URIs point at (default: the server's own port). */
  pooledPort?: number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

type Json = object;

const ROLE_PASSWORDS = new Map<string, string>();

export class NeonApiServer {
  readonly apiKey: string;
  apiUrl = '';
  readonly requests: RequestLogEntry[] = [];
  private readonly projects = new Map<string, ModelProject>();
  private server: http.Server | undefined;
  private readonly pgHost: string;
  private readonly pgPort: number;
  private dbSeq = 1000;
  private realSeq = 0;
  private readonly pending = new Set<Promise<void>>();
  private rateLimited = { count: 0, retryAfterSec: 1 };
  private failures: { status: number; message: string; match: RegExp }[] = [];
  private gate: Promise<void> | undefined;

  private constructor(private readonly opts: NeonApiServerOptions) {
    this.apiKey = opts.apiKey ?? `napi_test_${Math.random().toString(36).slice(2)}`;
    const u = new URL(opts.adminUrl);
    this.pgHost = u.hostname;
    this.pgPort = Number(u.port || 5432);
  }

  static async start(opts: NeonApiServerOptions): Promise<NeonApiServer> {
    const s = new NeonApiServer(opts);
    s.server = http.createServer((req, res) => void s.handle(req, res));
    await new Promise<void>((resolve) => s.server?.listen(0, '127.0.0.1', resolve));
    const { port } = s.server.address() as AddressInfo;
    s.apiUrl = `http://127.0.0.1:${port}/api/v2`;
    return s;
  }

  // ---------------------------------------------------------------- test controls

  /** A project with a default branch `main` holding one database owned by one role. */
  async addProject(o: { name?: string; branch?: string; database?: string; role?: string } = {}): Promise<{ projectId: string; branchId: string; database: string; role: string }> {
    const id = neonId('');
    const project: ModelProject = { project: buildProject(id, o.name ?? id, this.pgPort), branches: new Map(), operations: new Map() };
    const branchId = neonId('br');
    const mb: ModelBranch = {
      branch: buildBranch(id, branchId, o.branch ?? 'main', undefined, true, 'ready'),
      annotations: {}, databases: new Map(), roles: new Map(), endpoints: [buildEndpoint(id, branchId, EndpointState.Active)], startingPolls: 0,
    };
    const role = o.role ?? 'neondb_owner';
    const database = o.database ?? 'neondb';
    const password = await this.loginRole(role);
    mb.roles.set(role, { role: buildRole(branchId, role), password });
    const realName = this.realName(database);
    await this.admin((c) => c.query(`CREATE DATABASE "${realName}" OWNER "${role}"`));
    mb.databases.set(database, { db: buildDatabase(branchId, database, role, this.dbSeq++), realName });
    project.branches.set(branchId, mb);
    this.projects.set(id, project);
    return { projectId: id, branchId, database, role };
  }

  /** A second login role on a branch (a real role on the test server, with its own password). */
  async addRole(projectId: string, branchRef: string, name: string): Promise<void> {
    const b = this.branchByRef(projectId, branchRef);
    const password = await this.loginRole(name);
    b.roles.set(name, { role: buildRole(b.branch.id, name), password });
  }

  /** The admin URL of the real database behind a branch's database (for assertions). */
  realUrl(projectId: string, branchRef: string, database: string): string {
    const b = this.branchByRef(projectId, branchRef);
    const d = b.databases.get(database);
    if (!d) throw new Error(`no database ${database}`);
    const u = new URL(this.opts.adminUrl);
    u.pathname = `/${d.realName}`;
    return u.toString();
  }

  /** The branches as the model holds them (for assertions). */
  branches(projectId: string): ModelBranch[] {
    return [...(this.projects.get(projectId)?.branches.values() ?? [])];
  }

  /** Fault: the next `count` requests answer 429 with Retry-After. */
  rateLimit(count: number, retryAfterSec = 0.05): void {
    this.rateLimited = { count, retryAfterSec };
  }

  /** Fault: the next request whose "METHOD path" matches answers `status` with `message`. */
  failNext(match: RegExp, status: number, message: string): void {
    this.failures.push({ match, status, message });
  }

  /** Fault: the branch's compute reports "starting" for the next `polls` endpoint listings. */
  computeStarting(projectId: string, branchRef: string, polls: number): void {
    this.branchByRef(projectId, branchRef).startingPolls = polls;
  }

  /** Fault: the compute is suspended (idle), or disabled. */
  setCompute(projectId: string, branchRef: string, state: { idle?: boolean; disabled?: boolean }): void {
    for (const ep of this.branchByRef(projectId, branchRef).endpoints) {
      if (state.idle !== undefined) ep.current_state = state.idle ? EndpointState.Idle : EndpointState.Active;
      if (state.disabled !== undefined) ep.disabled = state.disabled;
    }
  }

  /**
   * Fault: branch creations stay `running` (their copy done) until the returned function
   * is called, so a test can act while a client waits for the operation.
   */
  holdOperations(): () => void {
    let release: () => void = () => undefined;
    this.gate = new Promise<void>((r) => (release = r));
    return () => {
      this.gate = undefined;
      release();
    };
  }

  /** Waits for background branch work (copies, drops) to end. */
  async settle(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  async close(): Promise<void> {
    await this.settle();
    await new Promise<void>((resolve) => {
      this.server?.closeAllConnections();
      this.server?.close(() => resolve());
    });
    const reals = [...this.projects.values()].flatMap((p) => [...p.branches.values()]).flatMap((b) => [...b.databases.values()]).map((d) => d.realName);
    await this.admin(async (c) => {
      for (const r of reals) await c.query(`DROP DATABASE IF EXISTS "${r}" WITH (FORCE)`);
    }).catch(() => undefined);
  }

  // ---------------------------------------------------------------- plumbing

  private realName(database: string): string {
    return `neon_${process.pid}_${++this.realSeq}_${database}`.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);
  }

  /**
   * A login role on the test server with a password. Roles are cluster-wide and shared by
   * every project and server in this process, so the password is made once per role name.
   */
  private async loginRole(name: string): Promise<string> {
    let password = ROLE_PASSWORDS.get(name);
    if (!password) {
      password = `npg_${Math.random().toString(36).slice(2, 14)}`;
      ROLE_PASSWORDS.set(name, password);
    }
    const lit = name.replace(/'/g, "''");
    await this.admin(async (c) => {
      await c.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${lit}') THEN CREATE ROLE "${name}" LOGIN CREATEDB; END IF; END $$`);
      await c.query(`ALTER ROLE "${name}" PASSWORD '${password}'`);
    });
    return password;
  }

  private async admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.opts.adminUrl });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  private branchByRef(projectId: string, ref: string): ModelBranch {
    const p = this.projects.get(projectId);
    const b = p && ([...p.branches.values()].find((x) => x.branch.id === ref) ?? [...p.branches.values()].find((x) => x.branch.name === ref));
    if (!b) throw new Error(`no branch ${ref} in ${projectId}`);
    return b;
  }

  private project(id: string): ModelProject {
    const p = this.projects.get(id);
    if (!p) throw new HttpError(404, 'project not found');
    return p;
  }

  private branch(p: ModelProject, id: string): ModelBranch {
    const b = p.branches.get(id);
    if (!b) throw new HttpError(404, 'branch not found');
    return b;
  }

  private running(p: ModelProject): boolean {
    return [...p.operations.values()].some((o) => o.status === OperationStatus.Running || o.status === OperationStatus.Scheduling);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const method = req.method ?? 'GET';
    let status = 200;
    let body: Json;
    let headers: Record<string, string> = {};
    try {
      const raw = await new Promise<string>((resolve, reject) => {
        let s = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => (s += d));
        req.on('end', () => resolve(s));
        req.on('error', reject);
      });
      if (req.headers.authorization !== `Bearer ${this.apiKey}`) throw new HttpError(401, 'authentication required');
      if (this.rateLimited.count > 0) {
        this.rateLimited.count--;
        throw new HttpError(429, 'rate limit exceeded', { 'retry-after': String(this.rateLimited.retryAfterSec) });
      }
      const fault = this.failures.findIndex((f) => f.match.test(`${method} ${url.pathname}`));
      if (fault !== -1) {
        const [f] = this.failures.splice(fault, 1);
        throw new HttpError(f?.status ?? 500, f?.message ?? 'internal error');
      }
      const r = await this.route(method, url, raw ? (JSON.parse(raw) as unknown) : undefined);
      status = r.status ?? 200;
      body = r.body;
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, e instanceof Error ? e.message : String(e));
      status = err.status;
      headers = err.headers;
      body = { request_id: neonId('req'), code: '', message: err.message } satisfies GeneralError;
    }
    this.requests.push({ method, path: url.pathname + url.search, status });
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  private async route(method: string, url: URL, body: unknown): Promise<{ status?: number; body: Json }> {
    const path = url.pathname.replace(/^\/api\/v2/, '');
    const q = url.searchParams;
    const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (method === 'GET' && path === '/projects') return { body: this.listProjects(q) };
    if (seg[0] !== 'projects' || !seg[1]) throw new HttpError(404, 'not found');
    const p = this.project(seg[1]);
    if (seg.length === 2 && method === 'GET') return { body: { project: this.fullProject(p) } satisfies ProjectResponse };
    if (seg[2] === 'operations' && method === 'GET') {
      if (seg[3]) {
        const op = p.operations.get(seg[3]);
        if (!op) throw new HttpError(404, 'operation not found');
        return { body: { operation: op } satisfies OperationResponse };
      }
      return { body: { operations: [...p.operations.values()] } satisfies OperationsResponse & PaginationResponse };
    }
    if (seg[2] === 'connection_uri' && method === 'GET') return { body: this.connectionUri(p, q) };
    if (seg[2] !== 'branches') throw new HttpError(404, 'not found');
    if (seg.length === 3 && method === 'GET') {
      const branches = [...p.branches.values()];
      const annotations: AnnotationsMapResponse['annotations'] = {};
      for (const b of branches) {
        if (Object.keys(b.annotations).length) annotations[b.branch.id] = { object: { type: 'console/branch', id: b.branch.id }, value: b.annotations };
      }
      return { body: { branches: branches.map((b) => b.branch), annotations } satisfies BranchesResponse & AnnotationsMapResponse & CursorPaginationResponse };
    }
    if (seg.length === 3 && method === 'POST') return { status: 201, body: this.createBranch(p, (body ?? {}) as BranchCreateRequest & AnnotationCreateValueRequest) };
    const b = this.branch(p, seg[3] as string);
    if (seg.length === 4 && method === 'GET') {
      return { body: { branch: b.branch, annotation: { object: { type: 'console/branch', id: b.branch.id }, value: b.annotations } } satisfies BranchResponse & AnnotationResponse };
    }
    if (seg.length === 4 && method === 'DELETE') return { body: this.deleteBranch(p, b) };
    if (seg[4] === 'databases' && method === 'GET') return { body: { databases: [...b.databases.values()].map((d) => d.db) } satisfies DatabasesResponse };
    if (seg[4] === 'roles' && method === 'GET' && seg.length === 5) return { body: { roles: [...b.roles.values()].map((r) => r.role) } satisfies RolesResponse };
    if (seg[4] === 'roles' && seg[6] === 'reveal_password' && method === 'GET') {
      const r = b.roles.get(seg[5] as string);
      if (!r) throw new HttpError(404, 'role not found');
      return { body: { password: r.password } satisfies RolePasswordResponse };
    }
    if (seg[4] === 'endpoints' && method === 'GET') {
      if (b.startingPolls > 0) {
        b.startingPolls--;
        return { body: { endpoints: b.endpoints.map((e) => ({ ...e, current_state: EndpointState.Init, pending_state: EndpointState.Active })) } satisfies EndpointsResponse };
      }
      return { body: { endpoints: b.endpoints } satisfies EndpointsResponse };
    }
    throw new HttpError(404, 'not found');
  }

  private listProjects(q: URLSearchParams): ProjectsResponse & PaginationResponse & ProjectsApplicationsMapResponse & ProjectsIntegrationsMapResponse {
    const limit = Math.min(Number(q.get('limit') ?? 10), 400);
    const cursor = q.get('cursor');
    const all = [...this.projects.values()].map((p) => p.project).sort((a, b) => a.id.localeCompare(b.id));
    const page = all.filter((p) => !cursor || p.id > cursor).slice(0, limit);
    const last = page[page.length - 1];
    return { projects: page, applications: {}, integrations: {}, ...(last ? { pagination: { cursor: last.id } } : cursor ? { pagination: { cursor } } : {}) };
  }

  private fullProject(p: ModelProject): Project {
    const { active_time: _a, ...rest } = p.project;
    return {
      ...rest, data_storage_bytes_hour: 0, data_transfer_bytes: 0, written_data_bytes: 0, compute_time_seconds: 0, active_time_seconds: 0,
      history_retention_seconds: 86400, consumption_period_start: p.project.created_at, consumption_period_end: p.project.created_at,
    };
  }

  private connectionUri(p: ModelProject, q: URLSearchParams): ConnectionURIResponse {
    const branchId = q.get('branch_id') ?? [...p.branches.values()].find((b) => b.branch.default)?.branch.id ?? '';
    const b = this.branch(p, branchId);
    const d = b.databases.get(q.get('database_name') ?? '');
    if (!d) throw new HttpError(404, 'database not found');
    const r = b.roles.get(q.get('role_name') ?? '');
    if (!r) throw new HttpError(404, 'role not found');
    const endpointId = q.get('endpoint_id');
    if (endpointId && !b.endpoints.some((e) => e.id === endpointId)) throw new HttpError(404, 'endpoint not found');
    if (!b.endpoints.length) throw new HttpError(404, 'read-write endpoint not found');
    const port = q.get('pooled') === 'true' ? (this.opts.pooledPort ?? this.pgPort) : this.pgPort;
    return { uri: `postgresql://${encodeURIComponent(r.role.name)}:${encodeURIComponent(r.password)}@${this.pgHost}:${port}/${d.realName}?sslmode=disable` };
  }

  private createBranch(p: ModelProject, req: BranchCreateRequest & AnnotationCreateValueRequest): BranchResponse & EndpointsResponse & OperationsResponse & ConnectionURIsOptionalResponse {
    if (this.running(p)) throw new HttpError(423, 'project already has running operations, scheduling of new ones is prohibited');
    const parent = req.branch?.parent_id ? this.branch(p, req.branch.parent_id) : [...p.branches.values()].find((b) => b.branch.default);
    if (!parent) throw new HttpError(404, 'branch not found');
    const id = neonId('br');
    const mb: ModelBranch = {
      branch: buildBranch(p.project.id, id, req.branch?.name ?? id, parent.branch, false, 'init'),
      annotations: { ...(req.annotation_value ?? {}) }, databases: new Map(), roles: new Map(), endpoints: [], startingPolls: 0,
    };
    for (const [name, r] of parent.roles) mb.roles.set(name, { role: buildRole(id, name), password: r.password });
    const copies: [ModelDatabase, string][] = [];
    for (const [name, d] of parent.databases) {
      const realName = this.realName(name);
      mb.databases.set(name, { db: buildDatabase(id, name, d.db.owner_name, this.dbSeq++), realName });
      copies.push([d, realName]);
    }
    const ops = [buildOperation(p.project.id, id, OperationAction.CreateBranch, OperationStatus.Running)];
    for (const e of req.endpoints ?? []) {
      const ep = buildEndpoint(p.project.id, id, EndpointState.Init, EndpointState.Active);
      ep.type = e.type;
      mb.endpoints.push(ep);
      ops.push(buildOperation(p.project.id, id, OperationAction.StartCompute, OperationStatus.Scheduling, ep.id));
    }
    for (const o of ops) p.operations.set(o.id, o);
    p.branches.set(id, mb);
    this.background(async () => {
      const started = Date.now();
      try {
        for (const [from, to] of copies) await this.copyDatabase(from, to, mb.branch.name);
        if (this.gate) await this.gate;
        await new Promise((r) => setTimeout(r, Math.max(0, (this.opts.operationMs ?? 150) - (Date.now() - started))));
        for (const o of ops) Object.assign(o, { status: OperationStatus.Finished, updated_at: new Date().toISOString(), total_duration_ms: Date.now() - started });
        Object.assign(mb.branch, { current_state: 'ready', pending_state: undefined });
        for (const ep of mb.endpoints) Object.assign(ep, { current_state: EndpointState.Active, pending_state: undefined });
      } catch (e) {
        for (const o of ops) Object.assign(o, { status: OperationStatus.Failed, error: e instanceof Error ? e.message : String(e), failures_count: 1 });
      }
    });
    return { branch: mb.branch, endpoints: mb.endpoints, operations: ops };
  }

  /**
   * `CREATE DATABASE to TEMPLATE from`, which needs the parent without other connections:
   * wait for them to go (bounded, 2 s), then terminate what is left, as Neon's copy-on-write
   * does not need but the stand-in does.
   */
  private async copyDatabase(from: ModelDatabase, to: string, _branch: string): Promise<void> {
    await this.admin(async (c) => {
      for (let attempt = 0; ; attempt++) {
        try {
          await c.query(`CREATE DATABASE "${to}" TEMPLATE "${from.realName}" OWNER "${from.db.owner_name}"`);
          return;
        } catch (e) {
          if ((e as { code?: string }).code !== '55006' || attempt >= 40) throw e;
          if (attempt >= 20) await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [from.realName]);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    });
  }

  private deleteBranch(p: ModelProject, b: ModelBranch): BranchOperations {
    if (b.branch.default) throw new HttpError(422, 'cannot delete the default branch');
    if ([...p.branches.values()].some((x) => x.branch.parent_id === b.branch.id)) throw new HttpError(422, 'branch has children');
    if (this.running(p)) throw new HttpError(423, 'project already has running operations, scheduling of new ones is prohibited');
    p.branches.delete(b.branch.id);
    const op = buildOperation(p.project.id, b.branch.id, OperationAction.DeleteTimeline, OperationStatus.Running);
    p.operations.set(op.id, op);
    const reals = [...b.databases.values()].map((d) => d.realName);
    this.background(async () => {
      try {
        await this.admin(async (c) => {
          for (const r of reals) await c.query(`DROP DATABASE IF EXISTS "${r}" WITH (FORCE)`);
        });
        Object.assign(op, { status: OperationStatus.Finished, updated_at: new Date().toISOString() });
      } catch (e) {
        Object.assign(op, { status: OperationStatus.Failed, error: e instanceof Error ? e.message : String(e) });
      }
    });
    return { branch: b.branch, operations: [op] };
  }

  private background(fn: () => Promise<void>): void {
    const p = fn().finally(() => this.pending.delete(p));
    this.pending.add(p);
  }
}
