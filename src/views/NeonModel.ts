/**
 * The Neon account of the Targets view: the API key in SecretStorage only, and the tree
 * below it (account -> projects -> branches -> databases) read through the Neon API; a
 * database's schemas and tables are read from the database itself (`schemasOf`).
 * Plain TS over `SecretStore` so tests drive it against the local Neon API server.
 * Errors and empty lists become message rows (the tree never throws).
 */
import type { SecretStore } from '../platform/KeyValueStore';
import { NEON_API_KEY_SECRET } from '../platform/StateKeys';
import { SyncError } from '../sync/errors';
import { NeonClient } from '../sync/neon/NeonClient';
import { formatNeonReference } from '../sync/mapping/neonReference';
import { neonApiUrl } from '../sync/neon/resolveNeonConnection';
import type { NeonResolveOptions } from '../sync/neon/resolveNeonConnection';
import { PREVIEW_ANNOTATION } from '../sync/open/neonBranchPreview';
import type { Logger } from '../sync/ports/Logger';
import { groupBySchema } from './targetTables';
import type { TargetTable } from './targetTables';
import { errorText } from './toProtocolError';

export type NeonNode =
  | { kind: 'neon-account'; label: string; apiUrl: string }
  | { kind: 'neon-project'; projectId: string; name: string; region: string }
  | { kind: 'neon-branch'; projectId: string; branchId: string; name: string; isDefault: boolean; parent?: string; createdAt: string; previewOf?: string }
  /** `reference` is the mapping's `target.connection` for this database. */
  | { kind: 'neon-database'; projectId: string; branchId: string; branch: string; name: string; owner: string; reference: string }
  /** A schema of a Neon database with the tables listed under it (one catalog read per database). */
  | { kind: 'neon-schema'; projectId: string; branchId: string; database: string; reference: string; schema: string; tables: TargetTable[] }
  | { kind: 'message'; severity: 'info' | 'error'; label: string; id: string };

export interface NeonModelOptions {
  /** The deltaSync.neon.apiUrl setting (empty: NEON_API_HOST, else the public API). */
  apiUrl: () => string | undefined;
  env?: Record<string, string | undefined>;
  logger?: Logger;
}

export class NeonModel {
  constructor(
    private readonly secrets: SecretStore,
    private readonly opts: NeonModelOptions,
  ) {}

  /** The API base URL in use. */
  apiUrl(): string {
    const set = this.opts.apiUrl()?.trim();
    return neonApiUrl(set ? set : (this.opts.env ?? process.env).NEON_API_HOST);
  }

  async apiKey(): Promise<string | undefined> {
    return this.secrets.get(NEON_API_KEY_SECRET);
  }

  /** What resolving a `neon:` reference needs: the stored key and the URL setting. */
  resolveOptions(): NeonResolveOptions {
    return { apiKey: () => this.apiKey(), apiUrl: this.apiUrl(), ...(this.opts.env ? { env: this.opts.env } : {}), ...(this.opts.logger ? { logger: this.opts.logger } : {}) };
  }

  private client(apiKey: string): NeonClient {
    return new NeonClient({ apiKey, apiUrl: this.apiUrl(), retryForMs: 15_000, ...(this.opts.logger ? { logger: this.opts.logger } : {}) });
  }

  /**
   * Checks the key against the API (it must list projects) and only then stores it;
   * resolves to the number of projects it sees. A rejected key is never stored.
   */
  async setApiKey(raw: string): Promise<number> {
    const key = raw.trim();
    if (!key) throw new SyncError('usage', 'The API key is empty.', { hint: 'Create one in the Neon Console: Account settings > API keys.' });
    const projects = await this.client(key).listProjects();
    await this.secrets.store(NEON_API_KEY_SECRET, key);
    return projects.length;
  }

  async removeApiKey(): Promise<void> {
    await this.secrets.delete(NEON_API_KEY_SECRET);
  }

  /** The account row when a key is stored, else nothing (the view's welcome offers to add one). */
  async roots(): Promise<NeonNode[]> {
    if (!(await this.apiKey())) return [];
    const url = this.apiUrl();
    let host = url;
    try {
      host = new URL(url).host;
    } catch {
      // keep the raw setting in the label
    }
    return [{ kind: 'neon-account', label: `Neon (${host})`, apiUrl: url }];
  }

  async children(node: NeonNode): Promise<NeonNode[]> {
    const key = await this.apiKey();
    if (!key) return [{ kind: 'message', severity: 'info', id: 'neon:nokey', label: 'No Neon API key: use Add Neon Account' }];
    const client = this.client(key);
    const id = `${node.kind}:${'projectId' in node ? node.projectId : ''}:${'branchId' in node ? node.branchId : ''}`;
    try {
      switch (node.kind) {
        case 'neon-account': {
          const projects = await client.listProjects();
          if (!projects.length) return [{ kind: 'message', severity: 'info', id: `${id}:empty`, label: 'No projects visible to this API key' }];
          return projects.map((p): NeonNode => ({ kind: 'neon-project', projectId: p.id, name: p.name, region: p.region_id }));
        }
        case 'neon-project': {
          const branches = await client.listBranches(node.projectId);
          const names = new Map(branches.map((b) => [b.branch.id, b.branch.name]));
          // The default branch first, then by creation.
          const sorted = [...branches].sort((a, b) => Number(b.branch.default) - Number(a.branch.default) || a.branch.created_at.localeCompare(b.branch.created_at));
          return sorted.map(({ branch: b, annotations }): NeonNode => ({
            kind: 'neon-branch', projectId: node.projectId, branchId: b.id, name: b.name, isDefault: b.default, createdAt: b.created_at,
            ...(b.parent_id ? { parent: names.get(b.parent_id) ?? b.parent_id } : {}),
            ...(annotations[PREVIEW_ANNOTATION.mapping] ? { previewOf: annotations[PREVIEW_ANNOTATION.mapping] } : {}),
          }));
        }
        case 'neon-branch': {
          const dbs = await client.listDatabases(node.projectId, node.branchId);
          if (!dbs.length) return [{ kind: 'message', severity: 'info', id: `${id}:empty`, label: 'No databases on this branch' }];
          return dbs.map((d): NeonNode => ({
            kind: 'neon-database', projectId: node.projectId, branchId: node.branchId, branch: node.name, name: d.name, owner: d.owner_name,
            reference: formatNeonReference({ project: node.projectId, branch: node.name, database: d.name, pooled: false }),
          }));
        }
        default:
          return [];
      }
    } catch (e) {
      return [{ kind: 'message', severity: 'error', id: `${id}:error`, label: `Cannot list: ${errorText(e)}` }];
    }
  }

  /**
   * The schema rows under a Neon database: its tables (as listed by `listTargetTables`)
   * grouped by schema, schemas in name order, each carrying its tables in name order.
   */
  static schemasOf(db: Extract<NeonNode, { kind: 'neon-database' }>, tables: TargetTable[]): NeonNode[] {
    return groupBySchema(tables).map(({ schema, tables: inSchema }): NeonNode => ({
      kind: 'neon-schema', projectId: db.projectId, branchId: db.branchId, database: db.name, reference: db.reference, schema, tables: inSchema,
    }));
  }
}
