import { z } from 'zod';
import { classifyLakebaseError } from './classifyLakebaseError';
import { lakebaseWorkspace } from './openLakebasePool';
import type { LakebaseOpenOptions, LakebaseWorkspace } from './openLakebasePool';

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

const Project = z.object({
  name: z.string(),
  status: z.object({ display_name: z.string().optional(), default_branch: z.string().optional() }).partial().optional(),
  spec: z.object({ display_name: z.string().optional() }).partial().optional(),
});
const Branch = z.object({
  name: z.string(),
  create_time: z.string().optional(),
  status: z.object({ default: z.boolean().optional(), current_state: z.string().optional() }).partial().optional(),
});
const Endpoint = z.object({
  name: z.string(),
  status: z.object({ endpoint_type: z.string().optional(), hosts: z.object({ host: z.string().optional() }).partial().optional(), current_state: z.string().optional() }).partial().optional(),
  spec: z.object({ endpoint_type: z.string().optional() }).partial().optional(),
});
const Database = z.object({
  name: z.string(),
  status: z.object({ postgres_database: z.string().optional(), role: z.string().optional() }).partial().optional(),
  spec: z.object({ postgres_database: z.string().optional(), role: z.string().optional() }).partial().optional(),
});

/** Pages of a list call, at most this many (100 items a page): a form lists, it does not crawl. */
const MAX_PAGES = 20;

/** Signs in with `profile` (undefined: the default chain) and returns the workspace's Lakebase catalog. */
export async function openLakebaseCatalog(profile: string | undefined, opts: Pick<LakebaseOpenOptions, 'env' | 'databricks'> = {}): Promise<LakebaseCatalog> {
  const env = opts.env ?? process.env;
  const ws = await lakebaseWorkspace(profile, { resource: 'projects', action: 'list the Lakebase projects' }, env, opts.databricks);
  return new WorkspaceCatalog(ws);
}

class WorkspaceCatalog implements LakebaseCatalog {
  constructor(private readonly ws: LakebaseWorkspace) {}

  get host(): string | undefined {
    return this.ws.ctx.host;
  }

  async projects(): Promise<LakebaseProject[]> {
    const items = await this.list('projects', 'projects', Project, 'list the Lakebase projects');
    return items.map((p) => ({
      name: p.name, id: lastSegment(p.name), displayName: p.status?.display_name ?? p.spec?.display_name ?? lastSegment(p.name),
      ...(p.status?.default_branch ? { defaultBranch: p.status.default_branch } : {}),
    }));
  }

  async branches(project: string): Promise<LakebaseBranch[]> {
    const items = await this.list(`${project}/branches`, 'branches', Branch, `list the branches of Lakebase ${project}`);
    const def = (await this.projects().catch(() => [])).find((p) => p.name === project)?.defaultBranch;
    return items.map((b) => ({
      name: b.name, id: lastSegment(b.name), isDefault: b.status?.default === true || b.name === def,
      ...(b.status?.current_state ? { state: b.status.current_state } : {}), ...(b.create_time ? { createdAt: b.create_time } : {}),
    }));
  }

  async endpoints(branch: string): Promise<LakebaseEndpoint[]> {
    const items = await this.list(`${branch}/endpoints`, 'endpoints', Endpoint, `list the compute endpoints of Lakebase ${branch}`);
    return items.map((e) => {
      const type = e.status?.endpoint_type ?? e.spec?.endpoint_type ?? '';
      const host = e.status?.hosts?.host;
      return { name: e.name, id: lastSegment(e.name), readWrite: type === 'ENDPOINT_TYPE_READ_WRITE', ...(host ? { host } : {}), ...(e.status?.current_state ? { state: e.status.current_state } : {}) };
    });
  }

  async databases(branch: string): Promise<LakebaseDatabase[]> {
    const items = await this.list(`${branch}/databases`, 'databases', Database, `list the databases of Lakebase ${branch}`);
    return items.map((d) => {
      const owner = d.status?.role ?? d.spec?.role;
      return { name: d.name, postgresDatabase: d.status?.postgres_database ?? d.spec?.postgres_database ?? lastSegment(d.name), ...(owner ? { owner } : {}) };
    });
  }

  /** Every page of GET /api/2.0/postgres/<path>, the items under `key` checked against `item`. */
  private async list<T>(path: string, key: string, item: z.ZodType<T>, action: string): Promise<T[]> {
    const page = z.object({ next_page_token: z.string().optional() }).passthrough();
    const ctx = { ...this.ws.ctx, resource: path, action };
    const out: T[] = [];
    let token: string | undefined;
    for (let n = 0; n < MAX_PAGES; n++) {
      let body: unknown;
      try {
        body = await this.ws.client.apiClient.request({
          path: `/api/2.0/postgres/${path}`,
          method: 'GET',
          headers: new Headers({ Accept: 'application/json' }),
          raw: false,
          query: { page_size: 100, ...(token ? { page_token: token } : {}) },
        });
      } catch (e) {
        throw classifyLakebaseError(e, ctx);
      }
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
}
