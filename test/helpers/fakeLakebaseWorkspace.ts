import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DatabaseCredential } from '@databricks/lakebase';
import type { WorkspaceClient, iam } from '@databricks/sdk-experimental';
import pg from 'pg';
import type {
  ListPostgresBranchesResponse,
  ListPostgresDatabasesResponse,
  ListPostgresEndpointsResponse,
  ListPostgresProjectsResponse,
  PostgresBranch,
  PostgresDatabase,
  PostgresEndpoint,
  PostgresProject,
} from '../../src/sync/lakebase/postgresApiTypes';
import { startLakebaseGateway, type LakebaseGateway } from './lakebaseGateway';

/** The answers of the Lakebase Provisioned calls, as the SDK's own `database` service types them. */
type InstanceCredential = Awaited<ReturnType<WorkspaceClient['database']['generateDatabaseCredential']>>;
type DatabaseInstance = Awaited<ReturnType<WorkspaceClient['database']['getDatabaseInstance']>>;

/**
 * A local Databricks workspace for Lakebase targets, over plain HTTP on 127.0.0.1: the
 * calls the Databricks SDK and @databricks/lakebase make, answered the way the real
 * workspace does, with database credentials that are real on a local PostgreSQL.
 *
 * - GET  /oidc/.well-known/oauth-authorization-server (OIDC discovery for OAuth M2M)
 * - POST /oidc/v1/token: client_credentials with HTTP Basic client id/secret; a bad pair
 *   is a 401 `invalid_client`, as the workspace answers.
 * - POST /api/2.0/postgres/credentials `{ endpoint }` (the exact call of
 *   @databricks/lakebase's generateDatabaseCredential): a Bearer token (an access token from
 *   /oidc/v1/token or a PAT) is required; the answer `{ token, expire_time }` is a fresh
 *   random token, valid `tokenTtlMs` as the principal's Postgres password at the
 *   workspace's Postgres endpoint (`pgPort`, test/helpers/lakebaseGateway.ts). As on
 *   Lakebase, every token logs in until it expires, however many were issued after it;
 *   an expired or unknown one is refused (28P01), while connections already open carry on.
 *   (Setting each token as the role's password, as this fake once did, made earlier tokens
 *   fail at once: connections opening together could race a refresh.)
 * - POST /api/2.0/database/credentials `{ instance_names, request_id }` (Lakebase
 *   Provisioned, the SDK's database.generateDatabaseCredential): the same, answered
 *   `{ token, expiration_time }`; GET /api/2.0/database/instances/<name>: `read_write_dns`.
 * - GET  /api/2.0/preview/scim/v2/Me: the signed-in principal's userName.
 * - GET  /api/2.0/postgres/projects[/<p>/branches[/<b>/endpoints|databases]] and
 *   /projects/<p>: the Postgres API's lists (paged by page_size/page_token) and the project,
 *   read off `endpoints` (see postgresList); 403 for a principal without access.
 *
 * Every answer is typed with the clients' own types where they export them
 * (@databricks/lakebase's DatabaseCredential, the SDK's `database` and `iam` models), else
 * with src/sync/lakebase/postgresApiTypes.ts (the Postgres API as Databricks' SDK models it),
 * so the fake cannot answer in a shape the real workspace does not have.
 *
 * Clients connect to `pgPort`, never to the PostgreSQL itself: the gateway there checks the
 * token and logs in to PostgreSQL with the role's backend secret (random, known only to
 * this fake). The roles must log in by password on the server: start it with an hba line
 * for LAKEBASE_PASSWORD_GROUP (startThrowawayServer({ hba })).
 */

export interface FakeLakebasePrincipal {
  /** The Postgres role (a service principal's client id, or a user's name). */
  role: string;
  /** OAuth M2M client secret (the client id is `role`). */
  clientSecret?: string;
  /** A personal access token that signs in as this principal. */
  pat?: string;
  /** false: no access to the workspace's Lakebase projects (the Postgres API's list calls answer 403). */
  projectAccess?: boolean;
}

export interface FakeLakebaseWorkspaceOptions {
  /** Admin URL of the PostgreSQL whose roles get the tokens as passwords. */
  adminUrl: string;
  /** The endpoint resource names this workspace knows (projects/.../endpoints/...). */
  endpoints: string[];
  /** Lakebase Provisioned database instances: name and the host they answer on. */
  instances?: { name: string; host: string }[];
  principals: FakeLakebasePrincipal[];
  /** Lifetime of a database credential; default 2000 ms. */
  tokenTtlMs?: number;
  /** The host every endpoint's status.hosts.host names; default 127.0.0.1 (the gateway, whose port is `pgPort`). */
  endpointHost?: string;
  /** The Postgres databases of each branch (projects/<p>/branches/<b>); default: databricks_postgres only. */
  databases?: Record<string, string[]>;
  /** The most items one page of a list answers, whatever page_size asks (default 100, the API's maximum). */
  maxPageSize?: number;
  /** Databases of a branch still being created: listed with their resource id, without status.postgres_database yet. */
  creatingDatabases?: Record<string, string[]>;
  /** Branches answered without status.default (the flag is optional in the API): only the project's status.default_branch tells. */
  omitBranchDefault?: boolean;
}

/** The role group whose members must log in by password (`host all +<group> ... scram-sha-256`). */
export const LAKEBASE_PASSWORD_GROUP = 'lakebase_token_login';

interface Sent {
  status: number;
  body: unknown;
}

export class FakeLakebaseWorkspace {
  private server: http.Server | undefined;
  private port = 0;
  private readonly accessTokens = new Map<string, string>();
  private readonly admin: pg.Pool;
  private gateway: LakebaseGateway | undefined;
  /** Each principal's password on the real server (the gateway logs in with it). */
  private readonly backendSecrets = new Map<string, string>();
  /** Every database credential issued: role and expiry (for tests' preconditions). */
  readonly issued: { role: string; token: string; expiresAt: Date }[] = [];
  /** Requests to /api/2.0/postgres/credentials, answered or refused. */
  credentialRequests = 0;
  /** The Postgres API's GET requests (path and query), in order. */
  readonly postgresGets: string[] = [];
  tokenTtlMs: number;

  private constructor(private readonly opts: FakeLakebaseWorkspaceOptions) {
    this.tokenTtlMs = opts.tokenTtlMs ?? 2000;
    this.admin = new pg.Pool({ connectionString: opts.adminUrl, max: 2 });
  }

  /** Creates the principals' roles (LOGIN, members of LAKEBASE_PASSWORD_GROUP, no password yet) and starts listening. */
  static async start(opts: FakeLakebaseWorkspaceOptions): Promise<FakeLakebaseWorkspace> {
    const w = new FakeLakebaseWorkspace(opts);
    await w.admin.query(`DO $$ BEGIN CREATE ROLE ${LAKEBASE_PASSWORD_GROUP} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    for (const p of opts.principals) {
      const role = pg.escapeIdentifier(p.role);
      await w.admin.query(`DO $$ BEGIN CREATE ROLE ${role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
      await w.admin.query(`GRANT ${LAKEBASE_PASSWORD_GROUP} TO ${role}`);
      const secret = `backend-${randomBytes(24).toString('hex')}`;
      await w.admin.query(`ALTER ROLE ${role} PASSWORD ${pg.escapeLiteral(secret)}`);
      w.backendSecrets.set(p.role, secret);
    }
    const admin = new URL(opts.adminUrl);
    w.gateway = await startLakebaseGateway({
      backend: { host: admin.hostname, port: Number(admin.port || 5432) },
      check: (role, password) => w.tokenValid(role, password),
      backendSecret: (role) => w.backendSecrets.get(role),
    });
    const server = http.createServer((req, res) => {
      void w.handle(req).then(
        (s) => res.writeHead(s.status, { 'content-type': 'application/json' }).end(JSON.stringify(s.body)),
        (e: unknown) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error_code: 'INTERNAL_ERROR', message: String(e) })),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    w.server = server;
    w.port = (server.address() as AddressInfo).port;
    return w;
  }

  /** The workspace URL (http://127.0.0.1:<port>), as DATABRICKS_HOST or a profile's host. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The port of the workspace's Postgres endpoint on 127.0.0.1 (the token-checking gateway). */
  get pgPort(): number {
    if (!this.gateway) throw new Error('the workspace is not started');
    return this.gateway.port;
  }

  /** Logins the endpoint refused (unknown or expired token) so far. */
  get refusedLogins(): number {
    return this.gateway?.refused ?? 0;
  }

  /** Whether `token` is a credential issued to `role` that has not expired (at login time). */
  tokenValid(role: string, token: string): boolean {
    const now = Date.now();
    return this.issued.some((i) => i.role === role && i.token === token && now < i.expiresAt.getTime());
  }

  async stop(): Promise<void> {
    await this.gateway?.close();
    this.gateway = undefined;
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    await this.admin.end();
  }

  private async body(req: http.IncomingMessage): Promise<string> {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    return text;
  }

  private async handle(req: http.IncomingMessage): Promise<Sent> {
    const url = new URL(req.url ?? '/', this.url);
    const body = await this.body(req);
    if (req.method === 'GET' && url.pathname === '/oidc/.well-known/oauth-authorization-server') {
      return { status: 200, body: { issuer: `${this.url}/oidc`, authorization_endpoint: `${this.url}/oidc/v1/authorize`, token_endpoint: `${this.url}/oidc/v1/token` } };
    }
    if (req.method === 'POST' && url.pathname === '/oidc/v1/token') return this.oauthToken(req, body);
    const principal = this.bearer(req);
    if (!principal) return { status: 401, body: { error_code: 'UNAUTHENTICATED', message: 'Invalid access token.' } };
    if (req.method === 'GET' && url.pathname === '/api/2.0/preview/scim/v2/Me') return { status: 200, body: { userName: principal.role, active: true } satisfies iam.User };
    if (req.method === 'POST' && url.pathname === '/api/2.0/postgres/credentials') {
      this.credentialRequests++;
      return this.credential(principal, body);
    }
    if (req.method === 'POST' && url.pathname === '/api/2.0/database/credentials') {
      this.credentialRequests++;
      return this.instanceCredential(principal, body);
    }
    if (req.method === 'GET' && url.pathname.startsWith('/api/2.0/postgres/projects')) {
      this.postgresGets.push(`${url.pathname}${url.search}`);
      return this.postgresList(principal, url);
    }
    const instance = /^\/api\/2\.0\/database\/instances\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && instance) {
      const found = this.opts.instances?.find((i) => i.name === decodeURIComponent(instance[1] as string));
      if (!found) return { status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Database instance '${instance[1]}' does not exist.` } };
      return { status: 200, body: { name: found.name, state: 'AVAILABLE', read_write_dns: found.host, capacity: 'CU_1' } satisfies DatabaseInstance };
    }
    return { status: 404, body: { error_code: 'ENDPOINT_NOT_FOUND', message: `No API found for '${req.method} ${url.pathname}'` } };
  }

  /**
   * The Postgres API's list calls (Lakebase Autoscaling), with the projects, branches and
   * endpoints read off the endpoint resource names this workspace knows: GET
   * /api/2.0/postgres/projects, /projects/<p>, /projects/<p>/branches,
   * /projects/<p>/branches/<b>/endpoints and /databases, in the API's shapes (snake_case,
   * output in `status`, no `spec`). Lists are paged as the API pages them: at most page_size
   * items (and at most maxPageSize), then next_page_token until the last page; a token this
   * server did not issue is a 400. A branch's first endpoint is its read-write one; a
   * project's first branch is its default. A database's resource id is its Postgres name as
   * an RFC 1123 label (databricks_postgres is databases/databricks-postgres), as on Lakebase.
   */
  private postgresList(principal: FakeLakebasePrincipal, url: URL): Sent {
    if (principal.projectAccess === false) {
      return { status: 403, body: { error_code: 'PERMISSION_DENIED', message: `User ${principal.role} does not have permission to access Lakebase projects in this workspace.` } };
    }
    const parts = this.opts.endpoints.map((e) => e.split('/')).filter((x) => x.length === 6);
    const rest = url.pathname.slice('/api/2.0/postgres/'.length).split('/');
    const created = '2026-11-30T09:00:00Z';
    const projectIds = [...new Set(parts.map((x) => x[1] as string))];
    const branchesOf = (p: string): string[] => [...new Set(parts.filter((x) => x[1] === p).map((x) => x[3] as string))];
    const notFound = (what: string): Sent => ({ status: 404, body: { error_code: 'NOT_FOUND', message: `${what} does not exist.` } });
    const project = (p: string): PostgresProject => ({
      name: `projects/${p}`, uid: `uid-${p}`, project_id: p, create_time: created,
      status: { display_name: p, default_branch: `projects/${p}/branches/${branchesOf(p)[0] ?? ''}`, pg_version: 17 },
    });
    if (rest.length === 1) {
      const page = this.page(url, projectIds.map(project));
      return 'status' in page ? page : { status: 200, body: { projects: page.items, ...page.next } satisfies ListPostgresProjectsResponse };
    }
    const projectId = rest[1] as string;
    if (!projectIds.includes(projectId)) return notFound(`Project projects/${projectId}`);
    if (rest.length === 2) return { status: 200, body: project(projectId) };
    if (rest.length === 3 && rest[2] === 'branches') {
      const branches = branchesOf(projectId).map((b, i): PostgresBranch => ({
        name: `projects/${projectId}/branches/${b}`, uid: `uid-${projectId}-${b}`, branch_id: b, parent: `projects/${projectId}`, create_time: created,
        status: { branch_id: b, ...(this.opts.omitBranchDefault ? {} : { default: i === 0 }), current_state: 'READY', is_protected: false },
      }));
      const page = this.page(url, branches);
      return 'status' in page ? page : { status: 200, body: { branches: page.items, ...page.next } satisfies ListPostgresBranchesResponse };
    }
    const branch = rest[3] as string;
    const branchName = `projects/${projectId}/branches/${branch}`;
    if (rest[2] !== 'branches' || !branchesOf(projectId).includes(branch)) return notFound(`Branch ${branchName}`);
    if (rest.length === 5 && rest[4] === 'endpoints') {
      const endpoints = parts.filter((x) => x[1] === projectId && x[3] === branch).map((x, i): PostgresEndpoint => ({
        name: x.join('/'), uid: `uid-${x[5] as string}`, endpoint_id: x[5] as string, parent: branchName, create_time: created,
        status: {
          endpoint_id: x[5] as string, endpoint_type: i === 0 ? 'ENDPOINT_TYPE_READ_WRITE' : 'ENDPOINT_TYPE_READ_ONLY', current_state: 'ACTIVE',
          hosts: { host: this.opts.endpointHost ?? '127.0.0.1' }, autoscaling_limit_min_cu: 0.5, autoscaling_limit_max_cu: 2,
        },
      }));
      const page = this.page(url, endpoints);
      return 'status' in page ? page : { status: 200, body: { endpoints: page.items, ...page.next } satisfies ListPostgresEndpointsResponse };
    }
    if (rest.length === 5 && rest[4] === 'databases') {
      const names = this.opts.databases?.[branchName] ?? ['databricks_postgres'];
      const databases = names.map((d): PostgresDatabase => {
        const id = d.toLowerCase().replace(/[^a-z0-9-]/g, '-');
        return { name: `${branchName}/databases/${id}`, database_id: id, parent: branchName, create_time: created, status: { database_id: id, postgres_database: d, role: `${branchName}/roles/owner` } };
      });
      for (const id of this.opts.creatingDatabases?.[branchName] ?? []) databases.push({ name: `${branchName}/databases/${id}`, database_id: id, parent: branchName, create_time: created, status: { database_id: id } });
      const page = this.page(url, databases);
      return 'status' in page ? page : { status: 200, body: { databases: page.items, ...page.next } satisfies ListPostgresDatabasesResponse };
    }
    return { status: 404, body: { error_code: 'ENDPOINT_NOT_FOUND', message: `No API found for 'GET ${url.pathname}'` } };
  }

  /** One page of `all` for the request's page_size and page_token (the token is the offset, as text this server made). */
  private page<T>(url: URL, all: T[]): { items: T[]; next: { next_page_token?: string } } | Sent {
    const sizeText = url.searchParams.get('page_size');
    const size = sizeText === null ? 100 : Number(sizeText);
    if (!Number.isInteger(size) || size < 0) return { status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE', message: `page_size must be a non-negative integer, got ${sizeText}.` } };
    const token = url.searchParams.get('page_token');
    const from = token ? /^offset-(\d+)$/.exec(token) : null;
    if (token && !from) return { status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE', message: `Invalid page_token ${token}.` } };
    const start = from ? Number(from[1]) : 0;
    const end = start + Math.min(size || 100, this.opts.maxPageSize ?? 100);
    return { items: all.slice(start, end), next: end < all.length ? { next_page_token: `offset-${end}` } : {} };
  }

  private oauthToken(req: http.IncomingMessage, body: string): Sent {
    const form = new URLSearchParams(body);
    let id = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
    }
    const p = this.opts.principals.find((x) => x.role === id && x.clientSecret !== undefined && x.clientSecret === secret);
    if (form.get('grant_type') !== 'client_credentials' || !p) {
      return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } };
    }
    const token = `dapi-oauth-${randomBytes(12).toString('hex')}`;
    this.accessTokens.set(token, p.role);
    return { status: 200, body: { access_token: token, token_type: 'Bearer', expires_in: 3600, scope: 'all-apis' } };
  }

  private bearer(req: http.IncomingMessage): FakeLakebasePrincipal | undefined {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!m) return undefined;
    const token = m[1] as string;
    const role = this.accessTokens.get(token);
    return this.opts.principals.find((p) => (role !== undefined ? p.role === role : p.pat !== undefined && p.pat === token));
  }

  private async credential(principal: FakeLakebasePrincipal, body: string): Promise<Sent> {
    let endpoint: unknown;
    try {
      endpoint = (JSON.parse(body) as { endpoint?: unknown }).endpoint;
    } catch {
      return { status: 400, body: { error_code: 'MALFORMED_REQUEST', message: 'Request body is not JSON.' } };
    }
    if (typeof endpoint !== 'string' || endpoint === '') return { status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE', message: 'Field endpoint is required.' } };
    if (!this.opts.endpoints.includes(endpoint)) return { status: 404, body: { error_code: 'NOT_FOUND', message: `Endpoint ${endpoint} does not exist.` } };
    const { token, expiresAt } = await this.issue(principal);
    return { status: 200, body: { token, expire_time: expiresAt.toISOString() } satisfies DatabaseCredential };
  }

  private async instanceCredential(principal: FakeLakebasePrincipal, body: string): Promise<Sent> {
    let names: unknown;
    try {
      names = (JSON.parse(body) as { instance_names?: unknown }).instance_names;
    } catch {
      return { status: 400, body: { error_code: 'MALFORMED_REQUEST', message: 'Request body is not JSON.' } };
    }
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) return { status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE', message: 'instance_names must be a list of names.' } };
    const unknown = (names as string[]).find((n) => !this.opts.instances?.some((i) => i.name === n));
    if (unknown !== undefined) return { status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Database instance '${unknown}' does not exist.` } };
    const { token, expiresAt } = await this.issue(principal);
    return { status: 200, body: { token, expiration_time: expiresAt.toISOString() } satisfies InstanceCredential };
  }

  /** A fresh token: the role's login at `pgPort` until it expires (earlier tokens stay valid until theirs). */
  private async issue(principal: FakeLakebasePrincipal): Promise<{ token: string; expiresAt: Date }> {
    const token = `lbt-${randomBytes(24).toString('hex')}`;
    const expiresAt = new Date(Date.now() + this.tokenTtlMs);
    this.issued.push({ role: principal.role, token, expiresAt });
    return { token, expiresAt };
  }
}
