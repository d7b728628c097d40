import { generateDatabaseCredential } from '@databricks/lakebase';
import type { WorkspaceClient } from '@databricks/sdk-experimental';
import { classifyLakebaseError } from './classifyLakebaseError';
import type { LakebaseErrorContext } from './classifyLakebaseError';

/** A token is reused until this long before it expires (never more than half its lifetime). */
const REFRESH_MARGIN_MS = 120_000;

/**
 * Database credentials (OAuth tokens used as the Postgres password) for one Lakebase
 * endpoint, fetched through @databricks/lakebase's generateDatabaseCredential (POST
 * /api/2.0/postgres/credentials) with a Databricks workspace client.
 *
 * Contract: `token()` returns a token with time left on it; concurrent callers share one
 * request; a token is reused while more than min(2 min, half its lifetime) remains, so a
 * one-hour token is refreshed at 58 min and a 2 s test token at 1 s. Tokens are only used
 * to log in: Postgres checks the password when a connection opens, so a connection outlives
 * its token and nothing already running is touched by a refresh. Failures are SyncErrors
 * naming the profile and workspace host (classifyLakebaseError).
 */
export class LakebaseTokenSource {
  private cached: { token: string; refreshAt: number } | undefined;
  private pending: Promise<string> | undefined;
  /** Tokens fetched so far (for logs and tests). */
  fetched = 0;

  constructor(
    private readonly client: WorkspaceClient,
    private readonly endpoint: string,
    private readonly ctx: LakebaseErrorContext,
    private readonly now: () => number = Date.now,
  ) {}

  /** The password provider for createPool: called for every new connection. */
  readonly provider = (): Promise<string> => this.token();

  async token(): Promise<string> {
    const c = this.cached;
    if (c && this.now() < c.refreshAt) return c.token;
    this.pending ??= this.fetch().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async fetch(): Promise<string> {
    const asked = this.now();
    let credential: { token: string; expire_time: string };
    try {
      credential = await generateDatabaseCredential(this.client, { endpoint: this.endpoint });
    } catch (e) {
      throw classifyLakebaseError(e, this.ctx);
    }
    const expiresAt = Date.parse(credential.expire_time);
    const lifetime = Number.isFinite(expiresAt) ? expiresAt - asked : 0;
    this.cached = { token: credential.token, refreshAt: asked + Math.max(0, lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 2)) };
    this.fetched++;
    return credential.token;
  }
}
