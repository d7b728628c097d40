import { SyncError } from '../errors';
import { classifyLakebaseError, describeWorkspace } from './classifyLakebaseError';
import type { LakebaseErrorContext } from './classifyLakebaseError';
import { withinTime } from './withinTime';

/** A token is reused until this long before it expires (never more than half its lifetime). */
const REFRESH_MARGIN_MS = 120_000;

/** How long one credential request may take before it fails (and the next login asks anew). */
export const LAKEBASE_CREDENTIAL_TIMEOUT_MS = 30_000;

/** One database credential as the workspace issues it. */
export interface IssuedCredential {
  token: string;
  /** RFC 3339 instant. */
  expiresAt: string;
}

/**
 * Database credentials (OAuth tokens used as the Postgres password) for one Lakebase
 * endpoint or database instance, from `issue` (openLakebasePool: @databricks/lakebase's
 * generateDatabaseCredential, POST /api/2.0/postgres/credentials, for an endpoint; the
 * SDK's database.generateDatabaseCredential, POST /api/2.0/database/credentials, for an
 * instance).
 *
 * Contract: `token()` returns a token with time left on it; concurrent callers share one
 * request; a token is reused while more than min(2 min, half its lifetime) remains, so a
 * one-hour token is refreshed at 58 min and a 2 s test token at 1 s. Tokens are only used
 * to log in: Postgres checks the password when a connection opens, so a connection outlives
 * its token and nothing already running is touched by a refresh. Failures are SyncErrors
 * naming the profile and workspace host (classifyLakebaseError). A request that gets no
 * answer within `timeoutMs` fails with a retryable connection error and is forgotten, so a
 * stalled workspace does not hold every later login of the pool behind it.
 */
export class LakebaseTokenSource {
  private cached: { token: string; refreshAt: number } | undefined;
  private pending: Promise<string> | undefined;
  /** Tokens fetched so far (for logs and tests). */
  fetched = 0;

  constructor(
    private readonly issue: () => Promise<IssuedCredential>,
    private readonly ctx: LakebaseErrorContext,
    private readonly now: () => number = Date.now,
    private readonly timeoutMs: number = LAKEBASE_CREDENTIAL_TIMEOUT_MS,
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
    let credential: IssuedCredential;
    try {
      credential = await withinTime(this.issue(), this.timeoutMs, () => new SyncError('connection', `${describeWorkspace(this.ctx)} did not issue a database token for Lakebase ${this.ctx.resource} within ${Math.round(this.timeoutMs / 100) / 10} s.`, {
        setting: 'target.connection',
        retry: 'auto',
        hint: 'Check the workspace host of the profile, the network, VPN or proxy; the sync retries on its own.',
      }));
    } catch (e) {
      throw e instanceof SyncError ? e : classifyLakebaseError(e, this.ctx);
    }
    const expiresAt = Date.parse(credential.expiresAt);
    const lifetime = Number.isFinite(expiresAt) ? expiresAt - asked : 0;
    this.cached = { token: credential.token, refreshAt: asked + Math.max(0, lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 2)) };
    this.fetched++;
    return credential.token;
  }
}
