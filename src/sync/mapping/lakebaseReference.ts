/**
 * A Lakebase target in a mapping's `target.connection`:
 *
 *   lakebase:projects/<project>/branches/<branch>/endpoints/<endpoint>/<database>?profile=<profile>&host=<postgres-host>[&user=<role>&...]
 *   lakebase:<profile>/projects/<project>/...   (the same, profile written in front)
 *   lakebase:<instance>/<database>?profile=<profile>[&host=...]   (a Lakebase Provisioned
 *     database instance; its host is looked up in the workspace when not given)
 *
 * - `profile`: a Databricks connection (the ones a Databricks source uses:
 *   DELTA_NEON_SYNC_DATABRICKS_<NAME>_*, the extension's saved ones, "default" = the
 *   DATABRICKS_* variables) or else a `~/.databrickscfg` profile; left out, the "default"
 *   connection, else the Databricks SDK's default chain (DATABRICKS_CONFIG_PROFILE...).
 * - `projects/.../endpoints/<endpoint>`: the endpoint's resource name, as
 *   `databricks postgres list-endpoints projects/<project>/branches/<branch>` prints it;
 *   database credentials (OAuth tokens used as the password) are issued for it.
 * - `<database>`: the Postgres database on that endpoint.
 * - Parameters: `host` (the endpoint's Postgres host; else PGHOST), `user` (the Postgres
 *   role; else PGUSER, the service principal's client id, or the signed-in user), `port`,
 *   and the connection-string parameters the engine honours on any target (sslmode, the
 *   timeouts...). Never a password: the password is a token fetched at run time.
 *
 * Pure parsing, no I/O: the mapping schema validates with it, src/sync/lakebase opens it.
 */

export const LAKEBASE_PREFIX = 'lakebase:';

export interface LakebaseReference {
  /** Databricks connection or ~/.databrickscfg profile name; undefined: "default", else the SDK's default chain. */
  workspace?: string;
  /** Lakebase Autoscaling: projects/<project>/branches/<branch>/endpoints/<endpoint>. */
  endpoint?: string;
  /** Lakebase Provisioned: the database instance's name (exactly one of endpoint, instance). */
  instance?: string;
  database: string;
  /** The endpoint's Postgres host, when given in the reference. */
  host?: string;
  port?: number;
  /** The Postgres role, when given in the reference. */
  user?: string;
  /** The other parameters (sslmode, connect_timeout, ...), passed on to the Postgres connection. */
  params: Record<string, string>;
}

/** Parameters passed on to the Postgres connection as they are (createPool reads them). */
export const LAKEBASE_PASSTHROUGH_PARAMS = [
  'sslmode', 'sslrootcert', 'connect_timeout', 'statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',
  'watchdog_timeout', 'keepalives', 'keepalives_idle', 'application_name', 'options',
] as const;

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const WORKSPACE_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;

export const LAKEBASE_FORM =
  'lakebase:projects/<project>/branches/<branch>/endpoints/<endpoint>/<database>?profile=<profile>&host=<endpoint host> (or lakebase:<database instance>/<database>?profile=<profile>)';

export function isLakebaseReference(connection: string): boolean {
  return connection.startsWith(LAKEBASE_PREFIX);
}

export type LakebaseParse = { ok: true; ref: LakebaseReference } | { ok: false; problem: string };

/** Parses a `lakebase:` reference; `problem` says what is wrong, for the mapping error. */
export function parseLakebaseReference(connection: string): LakebaseParse {
  const bad = (problem: string): LakebaseParse => ({ ok: false, problem: `${problem}; the form is ${LAKEBASE_FORM}` });
  if (!isLakebaseReference(connection)) return bad('must start with lakebase:');
  const body = connection.slice(LAKEBASE_PREFIX.length);
  const q = body.indexOf('?');
  const pathPart = q < 0 ? body : body.slice(0, q);
  const query = q < 0 ? '' : body.slice(q + 1);
  const segments = pathPart.split('/');
  let workspace: string | undefined;
  let resource: Pick<LakebaseReference, 'endpoint' | 'instance'>;
  let database: string | undefined;
  if (segments[0] !== 'projects' && segments[1] !== 'projects') {
    // A Lakebase Provisioned database instance: <instance>/<database>.
    const [instance, db, ...extra] = segments;
    if (!instance || !ID_RE.test(instance)) return bad(`the database instance name "${instance ?? ''}" is empty or has characters other than letters, digits, _ . -`);
    if (db === undefined || db === '') return bad('the database name is missing after the instance (or, for an endpoint, its full resource name projects/<project>/branches/<branch>/endpoints/<endpoint>)');
    if (extra.length > 0) return bad(`unexpected "/${extra.join('/')}" after the database name`);
    resource = { instance };
    database = db;
  } else {
    if (segments[0] !== 'projects') {
      workspace = segments.shift();
      if (!workspace || !WORKSPACE_RE.test(workspace)) return bad(`"${workspace ?? ''}" is not a Databricks profile name`);
    }
    const [projects, project, branches, branch, endpoints, endpoint, db, ...extra] = segments;
    if (projects !== 'projects' || branches !== 'branches' || endpoints !== 'endpoints') {
      return bad('the endpoint must be its full resource name projects/<project>/branches/<branch>/endpoints/<endpoint>');
    }
    for (const [what, id] of [['project', project], ['branch', branch], ['endpoint', endpoint]] as const) {
      if (!id || !ID_RE.test(id)) return bad(`the ${what} id "${id ?? ''}" is empty or has characters other than letters, digits, _ . -`);
    }
    if (db === undefined || db === '') return bad('the database name is missing after the endpoint');
    if (extra.length > 0) return bad(`unexpected "/${extra.join('/')}" after the database name`);
    resource = { endpoint: `projects/${project}/branches/${branch}/endpoints/${endpoint}` };
    database = db;
  }
  let databaseName: string;
  try {
    databaseName = decodeURIComponent(database);
  } catch {
    return bad(`the database name "${database}" is not valid percent-encoding`);
  }
  const params: Record<string, string> = {};
  let host: string | undefined;
  let port: number | undefined;
  let user: string | undefined;
  for (const [k, v] of new URLSearchParams(query)) {
    if (k === 'password') return bad('must not contain a password (the password is an OAuth token fetched at run time)');
    if (k === 'profile') {
      if (!v || !WORKSPACE_RE.test(v)) return bad(`profile=${v} is not a Databricks profile name`);
      if (workspace !== undefined && workspace !== v) return bad(`the profile is given twice ("${workspace}" and profile=${v})`);
      workspace = v;
    } else if (k === 'host') host = v;
    else if (k === 'user') user = v;
    else if (k === 'port') {
      port = Number(v);
      if (!Number.isInteger(port) || port <= 0 || port > 65535) return bad(`port=${v} is not a port number`);
    } else if ((LAKEBASE_PASSTHROUGH_PARAMS as readonly string[]).includes(k)) params[k] = v;
    else return bad(`unknown parameter "${k}" (known: profile, host, user, port, ${LAKEBASE_PASSTHROUGH_PARAMS.join(', ')})`);
  }
  if (host === '') return bad('host= is empty');
  if (user === '') return bad('user= is empty');
  return {
    ok: true,
    ref: {
      ...(workspace !== undefined ? { workspace } : {}),
      ...resource,
      database: databaseName,
      ...(host !== undefined ? { host } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(user !== undefined ? { user } : {}),
      params,
    },
  };
}

/** For messages: "endpoint projects/.../endpoints/e" or "database instance i". */
export function lakebaseResourceLabel(ref: Pick<LakebaseReference, 'endpoint' | 'instance'>): string {
  return ref.endpoint !== undefined ? `endpoint ${ref.endpoint}` : `database instance ${ref.instance ?? '?'}`;
}
