import { Context } from '@databricks/sdk-experimental';
import type { SearchParams } from '@databricks/sdk-experimental';
import { z } from 'zod';
import { SyncError } from '../errors';
import { withinTime } from './withinTime';
import { classifyLakebaseError, describeWorkspace } from './classifyLakebaseError';
import type { LakebaseErrorContext } from './classifyLakebaseError';
import { lakebaseWorkspace } from './openLakebasePool';
import type { LakebaseOpenOptions, LakebaseWorkspace } from './openLakebasePool';
import type { PostgresBranch, PostgresDatabase, PostgresEndpoint, PostgresProject, ReadsOnlyWireFields } from './postgresApiTypes';

/**
 * What a Databricks workspace holds of Lakebase Autoscaling, listed through the Postgres
 * API (GET /api/2.0/postgres/projects, .../branches, .../endpoints, .../databases) with the
 * same sign-in a `lakebase:` target uses (a saved Databricks connection or a
 * `~/.databrickscfg` profile), so the Add Lakebase Database form offers them to pick.
 * Names are the API's resource names (projects/<p>/branches/<b>/endpoints/<e>). Failures are
 * SyncErrors naming the profile, the workspace host and what was being listed.
 */
export interface LakebaseCatalog {
  /** The workspace host signed in to, for messages. */
  readonly host: string | undefined;
  projects(): Promise<LakebaseProject[]>;
  branches(project: string): Promise<LakebaseBranch[]>;
  endpoints(branch: string): Promise<LakebaseEndpoint[]>;
  databases(branch: string): Promise<LakebaseDatabase[]>;
}

export interface LakebaseProject {
  /** projects/<id> */
  name: string;
  id: string;
  displayName: string;
  /** The default branch's resource name, when the API says. */
  defaultBranch?: string;
}

export interface LakebaseBranch {
  /** projects/<p>/branches/<id> */
  name: string;
  id: string;
  isDefault: boolean;
  state?: string;
  createdAt?: string;
}

export interface LakebaseEndpoint {
  /** projects/<p>/branches/<b>/endpoints/<id>: what a `lakebase:` reference names. */
  name: string;
  id: string;
  readWrite: boolean;
  /** The Postgres host to connect to (status.hosts.host). */
  host?: string;
  state?: string;
}

export interface LakebaseDatabase {
  name: string;
  /** The Postgres database name (what a `lakebase:` reference's database is). */
  postgresDatabase: string;
  /** The owning role's resource name. */
  owner?: string;
}

const lastSegment = (name: string): string => name.slice(name.lastIndexOf('/') + 1);

// What each list item is read as: the fields below and nothing else, all from `status` (an
// answer's `spec` is input only). The checks under each schema make the build fail if one
// names a field the API's model (postgresApiTypes.ts) does not have.
const Project = z.object({
  name: z.string(),
  status: z.object({ display_name: z.string().optional(), default_branch: z.string().optional() }).partial().optional(),
});
const Branch = z.object({
  name: z.string(),
  create_time: z.string().optional(),
  status: z.object({ default: z.boolean().optional(), current_state: z.string().optional() }).partial().optional(),
});
const Endpoint = z.object({
  name: z.string(),
  status: z.object({ endpoint_type: z.string().optional(), hosts: z.object({ host: z.string().optional() }).partial().optional(), current_state: z.string().optional() }).partial().optional(),
});
const Database = z.object({
  name: z.string(),
  status: z.object({ postgres_database: z.string().optional(), role: z.string().optional() }).partial().optional(),
});
type Checked<T extends true> = T;
export type LakebaseCatalogReadsWireFields = [
  Checked<ReadsOnlyWireFields<z.infer<typeof Project>, PostgresProject>>,
  Checked<ReadsOnlyWireFields<z.infer<typeof Branch>, PostgresBranch>>,
  Checked<ReadsOnlyWireFields<z.infer<typeof Endpoint>, PostgresEndpoint>>,
  Checked<ReadsOnlyWireFields<z.infer<typeof Database>, PostgresDatabase>>,
];

/** Pages of a list call, at most this many (100 items a page): a form lists, it does not crawl. */
const MAX_PAGES = 20;

/**
 * How long one request of the listing may take, the SDK's retries of a busy workspace
 * included: a workspace (or a proxy on the way) that takes the connection and never answers
 * would otherwise keep the form's "Listing ..." progress up for ever.
 */
export const LAKEBASE_LIST_TIMEOUT_MS = 30_000;

export interface LakebaseCatalogOptions extends Pick<LakebaseOpenOptions, 'env' | 'databricks'> {
  /** Bound of one request (sign-in included), default LAKEBASE_LIST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
}

/** Signs in with `profile` (undefined: the default chain) and returns the workspace's Lakebase catalog. */
export async function openLakebaseCatalog(profile: string | undefined, opts: LakebaseCatalogOptions = {}): Promise<LakebaseCatalog> {
  const env = opts.env ?? process.env;
  const ws = await lakebaseWorkspace(profile, { resource: 'projects', action: 'list the Lakebase projects' }, env, opts.databricks);
  return new WorkspaceCatalog(ws, opts.requestTimeoutMs ?? LAKEBASE_LIST_TIMEOUT_MS);
}

class WorkspaceCatalog implements LakebaseCatalog {
  constructor(private readonly ws: LakebaseWorkspace, private readonly timeoutMs: number) {}

  get host(): string | undefined {
    return this.ws.ctx.host;
  }

  async projects(): Promise<LakebaseProject[]> {
    const items = await this.list('projects', 'projects', Project, 'list the Lakebase projects');
    return items.map((p) => ({
      name: p.name, id: lastSegment(p.name), displayName: p.status?.display_name || lastSegment(p.name),
      ...(p.status?.default_branch ? { defaultBranch: p.status.default_branch } : {}),
    }));
  }

  async branches(project: string): Promise<LakebaseBranch[]> {
    const items = await this.list(`${project}/branches`, 'branches', Branch, `list the branches of Lakebase ${project}`);
    // Each branch says whether it is the default; when none does, the project names it.
    const def = items.some((b) => b.status?.default !== undefined) ? undefined : await this.defaultBranch(project);
    return items.map((b) => ({
      name: b.name, id: lastSegment(b.name), isDefault: b.status?.default === true || b.name === def,
      ...(b.status?.current_state ? { state: b.status.current_state } : {}), ...(b.create_time ? { createdAt: b.create_time } : {}),
    }));
  }

  async endpoints(branch: string): Promise<LakebaseEndpoint[]> {
    const items = await this.list(`${branch}/endpoints`, 'endpoints', Endpoint, `list the compute endpoints of Lakebase ${branch}`);
    return items.map((e) => {
      const host = e.status?.hosts?.host;
      return { name: e.name, id: lastSegment(e.name), readWrite: e.status?.endpoint_type === 'ENDPOINT_TYPE_READ_WRITE', ...(host ? { host } : {}), ...(e.status?.current_state ? { state: e.status.current_state } : {}) };
    });
  }

  /**
   * The branch's databases that name their Postgres database (status.postgres_database): the
   * resource id is no Postgres name (databricks-postgres is databricks_postgres), so one
   * without it (not yet created) cannot be connected to and is not offered.
   */
  async databases(branch: string): Promise<LakebaseDatabase[]> {
    const items = await this.list(`${branch}/databases`, 'databases', Database, `list the databases of Lakebase ${branch}`);
    return items.flatMap((d) => {
      const pgName = d.status?.postgres_database;
      if (!pgName) return [];
      const owner = d.status?.role;
      return [{ name: d.name, postgresDatabase: pgName, ...(owner ? { owner } : {}) }];
    });
  }

  /** The project's default branch (GET /api/2.0/postgres/projects/<p>: status.default_branch); undefined when it cannot be read. */
  private async defaultBranch(project: string): Promise<string | undefined> {
    try {
      const body = await this.get(project, undefined, { ...this.ws.ctx, resource: project, action: `read Lakebase ${project}` });
      const parsed = Project.safeParse(body);
      return parsed.success ? parsed.data.status?.default_branch : undefined;
    } catch {
      // Only a label is lost: the branches are listed all the same.
      return undefined;
    }
  }

  /** Every page of GET /api/2.0/postgres/<path>, the items under `key` checked against `item`. */
  private async list<T>(path: string, key: string, item: z.ZodType<T>, action: string): Promise<T[]> {
    const page = z.object({ next_page_token: z.string().optional() }).passthrough();
    const ctx = { ...this.ws.ctx, resource: path, action };
    const out: T[] = [];
    let token: string | undefined;
    for (let n = 0; n < MAX_PAGES; n++) {
      const body = await this.get(path, { page_size: 100, ...(token ? { page_token: token } : {}) }, ctx);
      const parsed = page.safeParse(body ?? {});
      const items = z.array(item).safeParse(parsed.success ? ((parsed.data as Record<string, unknown>)[key] ?? []) : undefined);
      if (!parsed.success || !items.success) {
        throw classifyLakebaseError(new Error(`the workspace answered GET /api/2.0/postgres/${path} without a list of ${key}`), ctx);
      }
      out.push(...items.data);
      token = parsed.data.next_page_token || undefined;
      if (!token) break;
    }
    return out;
  }

  /**
   * GET /api/2.0/postgres/<path>, answered within `timeoutMs` or a SyncError saying the
   * workspace did not answer (and the request is cancelled); other failures classified.
   */
  private async get(path: string, query: SearchParams | undefined, ctx: LakebaseErrorContext): Promise<unknown> {
    const cancel = new AbortController();
    const cancellationToken = {
      get isCancellationRequested(): boolean {
        return cancel.signal.aborted;
      },
      onCancellationRequested: (f: () => unknown): void => cancel.signal.addEventListener('abort', () => f(), { once: true }),
    };
    try {
      const request = this.ws.client.apiClient.request({ path: `/api/2.0/postgres/${path}`, method: 'GET', headers: new Headers({ Accept: 'application/json' }), raw: false, ...(query ? { query } : {}) }, new Context({ cancellationToken }));
      return await withinTime(request, this.timeoutMs, () => {
        cancel.abort();
        return new SyncError('connection', `${describeWorkspace(ctx)} did not answer GET /api/2.0/postgres/${path} within ${Math.round(this.timeoutMs / 100) / 10} s, trying to ${ctx.action ?? 'list Lakebase resources'}.`, {
          setting: 'target.connection',
          retry: 'manual',
          hint: 'Check the workspace host of the profile, the network, VPN or proxy, then Retry (or type the name instead).',
        });
      });
    } catch (e) {
      throw classifyLakebaseError(e, ctx);
    }
  }
}
