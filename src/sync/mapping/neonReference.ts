/**
 * A mapping's `target.connection` that names a Neon branch instead of a URL:
 * `neon:<project>/<branch>/<database>[?role=<role>&pooled=true]`. The project is its id
 * (or name), the branch its name or id (`br-...`). The connection URI and the role's
 * password are fetched from the Neon API at run time, so nothing secret is in the file.
 */
export interface NeonReference {
  project: string;
  branch: string;
  database: string;
  /** The role to connect as; default: the branch's only non-system role. */
  role?: string;
  /** Through the `-pooler` endpoint (PgBouncer, transaction mode). */
  pooled: boolean;
}

export const NEON_PREFIX = 'neon:';

export const NEON_REFERENCE_FORMAT = 'neon:<project>/<branch>/<database>[?role=<role>&pooled=true]';

export function isNeonReference(connection: string): boolean {
  return connection.toLowerCase().startsWith(NEON_PREFIX);
}

/** A parsed reference, or the reason it is not one (for the mapping schema's message). */
export type NeonReferenceParse = { ok: true; ref: NeonReference } | { ok: false; reason: string };

const PART_RE = /^[^/?&#\s]+$/;

export function parseNeonReference(connection: string): NeonReferenceParse {
  if (!isNeonReference(connection)) return { ok: false, reason: `must start with "${NEON_PREFIX}"` };
  const body = connection.slice(NEON_PREFIX.length);
  const q = body.indexOf('?');
  const pathPart = q === -1 ? body : body.slice(0, q);
  const query = q === -1 ? '' : body.slice(q + 1);
  const parts = pathPart.split('/');
  if (parts.length !== 3 || parts.some((p) => !PART_RE.test(p))) {
    return { ok: false, reason: `must be ${NEON_REFERENCE_FORMAT} (three non-empty parts separated by "/"), got "${connection}"` };
  }
  let decoded: string[];
  try {
    decoded = parts.map((p) => decodeURIComponent(p));
  } catch {
    return { ok: false, reason: `has a malformed %-escape: "${connection}"` };
  }
  const [project, branch, database] = decoded as [string, string, string];
  const ref: NeonReference = { project, branch, database, pooled: false };
  if (query) {
    for (const pair of query.split('&')) {
      const eq = pair.indexOf('=');
      const key = eq === -1 ? pair : pair.slice(0, eq);
      const value = eq === -1 ? '' : decodeURIComponent(pair.slice(eq + 1));
      if (key === 'role') {
        if (!value) return { ok: false, reason: 'role= needs a role name, e.g. ?role=app_writer' };
        ref.role = value;
      } else if (key === 'pooled') {
        if (value !== 'true' && value !== 'false') return { ok: false, reason: `pooled= must be true or false, got "${value}"` };
        ref.pooled = value === 'true';
      } else if (key === 'password') {
        return { ok: false, reason: 'must not contain a password: the password is fetched from the Neon API at run time' };
      } else {
        return { ok: false, reason: `unknown option "${key}" (use role=<role> or pooled=true)` };
      }
    }
  }
  return { ok: true, ref };
}

/** The reference as written in a mapping (for labels and messages; never holds a secret). */
export function formatNeonReference(ref: NeonReference): string {
  const opts = [ref.role ? `role=${encodeURIComponent(ref.role)}` : '', ref.pooled ? 'pooled=true' : ''].filter(Boolean);
  return `${NEON_PREFIX}${[ref.project, ref.branch, ref.database].map(encodeURIComponent).join('/')}${opts.length ? `?${opts.join('&')}` : ''}`;
}
