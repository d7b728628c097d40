/**
 * The guided Add Lakebase Database flow, against the same small `Prompter` as the Postgres
 * connection form (so tests drive it without VS Code): a name, the Databricks profile that
 * signs in (a saved Databricks connection or a `~/.databrickscfg` profile), the Lakebase
 * endpoint (Autoscaling: picked from the workspace's projects, branches and endpoints when
 * `catalog` is given, else typed) or database instance (Provisioned), the endpoint's host
 * (prefilled from the endpoint picked), the database (picked from the branch's). Then Test before saving; on failure Edit (one step) / Retry / Save Anyway.
 * What is saved is a `lakebase:` reference: no token and no secret, the password is a
 * database credential fetched at run time with the profile's sign-in.
 */
import type { Pool } from 'pg';
import { isSyncError, SyncError } from '../sync/errors';
import type { DatabricksProfile } from '../sync/lakebase/databricksProfiles';
import type { LakebaseCatalog } from '../sync/lakebase/LakebaseCatalog';
import { parseLakebaseReference } from '../sync/mapping/lakebaseReference';
import { classifyPgError } from '../sync/postgres/classifyPgError';
import type { ConnectionTestResult } from '../sync/postgres/testConnection';
import type { ConnectionFormResult, PickItem, Prompter } from './PostgresConnectionForm';

/** A profile the user can pick: its name in the reference, and where it comes from. */
export interface LakebaseProfileChoice {
  name: string;
  /** e.g. "Databricks connection · PAT" or "~/.databrickscfg · oauth-m2m". */
  source: string;
  host?: string;
}

export interface LakebaseFormDeps {
  validateName(name: string): string | undefined;
  /** Saved Databricks connections first, then the profiles of the Databricks config file. */
  profiles(): Promise<LakebaseProfileChoice[]>;
  test(reference: string): Promise<ConnectionTestResult>;
  save(name: string, reference: string): Promise<unknown>;
  /**
   * Signs in with `profile` and lists the workspace's Lakebase projects, branches, endpoints
   * and databases (openLakebaseCatalog), so the endpoint and database are picked rather than
   * typed. Absent: they are typed.
   */
  catalog?(profile: string): Promise<LakebaseCatalog>;
}

/** A Databricks profile name a `lakebase:` reference can carry. */
const PROFILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;

/**
 * The profiles offered: saved Databricks connections first (the same names a Databricks
 * source uses), then the config file's profiles of other names.
 */
export function profileChoices(saved: ReadonlyArray<{ name: string; host: string; authType: string }>, fromFile: readonly DatabricksProfile[]): LakebaseProfileChoice[] {
  const conns = saved.map((c): LakebaseProfileChoice => ({ name: c.name, source: `Databricks connection · ${c.authType === 'pat' ? 'PAT' : 'OAuth M2M'}`, host: c.host }));
  const file = fromFile
    .filter((p) => PROFILE_NAME_RE.test(p.name) && !conns.some((c) => c.name === p.name))
    .map((p): LakebaseProfileChoice => ({ name: p.name, source: `~/.databrickscfg${p.auth ? ` · ${p.auth}` : ''}`, ...(p.host ? { host: p.host } : {}) }));
  return [...conns, ...file];
}

/**
 * Test of a `lakebase:` reference as a run opens it (a token from the profile's sign-in,
 * then a login): the server's version, or the problem classified.
 */
export async function testLakebaseReference(withTarget: <T>(connection: string, fn: (t: { pool: Pool }) => Promise<T>) => Promise<T>, reference: string, summary: string): Promise<ConnectionTestResult> {
  try {
    const version = await withTarget(reference, async (t) => (await t.pool.query<{ v: string }>('select version() as v')).rows[0]?.v ?? '');
    return { ok: true, serverVersion: version.split(/ on | \(|,/)[0]?.trim() ?? version, server: summary };
  } catch (e) {
    const error = isSyncError(e) ? e : classifyPgError(e);
    return { ok: false, problem: { headline: error.message, error } };
  }
}

export interface LakebaseFields {
  profile: string;
  kind: 'endpoint' | 'instance';
  /** projects/<p>/branches/<b>/endpoints/<e>, or the database instance's name. */
  resource: string;
  /** The endpoint's Postgres host, optionally host:port (empty: PGHOST, or for an instance the workspace's answer). */
  host: string;
  database: string;
}

const ENDPOINT_RE = /^projects\/[A-Za-z0-9][A-Za-z0-9_.-]*\/branches\/[A-Za-z0-9][A-Za-z0-9_.-]*\/endpoints\/[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const INSTANCE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** The database every Lakebase endpoint and instance has. */
export const LAKEBASE_DEFAULT_DATABASE = 'databricks_postgres';

function isLocal(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function splitHost(h: string): { host: string; port?: string } {
  const m = /^(.*?)(?::(\d+))?$/.exec(h.trim());
  return { host: m?.[1] ?? h.trim(), ...(m?.[2] ? { port: m[2] } : {}) };
}

/** The `lakebase:` reference the fields describe (TLS required, except on the loopback). */
export function referenceFromFields(f: LakebaseFields): string {
  const params = new URLSearchParams();
  params.set('profile', f.profile);
  const { host, port } = splitHost(f.host);
  if (host) params.set('host', host);
  if (port) params.set('port', port);
  params.set('sslmode', host && isLocal(host) ? 'disable' : 'require');
  return `lakebase:${f.resource}/${encodeURIComponent(f.database)}?${params.toString()}`;
}

/** Why a step's answer cannot be used, or undefined. */
export function validateLakebaseField(field: 'resource' | 'host' | 'database', v: string, kind: LakebaseFields['kind']): string | undefined {
  const t = v.trim();
  switch (field) {
    case 'resource':
      if (kind === 'endpoint') return ENDPOINT_RE.test(t) ? undefined : 'The endpoint\'s full resource name, projects/<project>/branches/<branch>/endpoints/<endpoint> (databricks postgres list-endpoints prints it).';
      return INSTANCE_RE.test(t) ? undefined : 'The database instance\'s name: letters, digits, "_", "." or "-" (Compute > Lakebase Postgres in the workspace).';
    case 'host': {
      if (!t) return kind === 'endpoint' ? 'The endpoint\'s host (Connect in the Lakebase UI), e.g. ep-cool-name.database.us-east-1.cloud.databricks.com.' : undefined;
      if (/^[a-z]+:\/\//i.test(t)) return 'Only the host name (optionally :port), not a URL.';
      const { host } = splitHost(t);
      return /[\s/?#@]/.test(host) || !host ? 'A host name has no spaces, "/", "?", "#" or "@".' : undefined;
    }
    case 'database':
      return t ? undefined : `The Postgres database (every endpoint has ${LAKEBASE_DEFAULT_DATABASE}).`;
  }
}

type Step = 'profile' | 'resource' | 'host' | 'database';
const STEPS: Step[] = ['profile', 'resource', 'host', 'database'];

/** The label of the item that leaves a listed pick for typing the name. */
export const TYPE_INSTEAD = 'Type it instead…';

/** One workspace sign-in per profile for the whole form (forgotten when it fails, so Retry signs in again). */
class Catalogs {
  private readonly open = new Map<string, Promise<LakebaseCatalog>>();
  constructor(private readonly deps: LakebaseFormDeps) {}
  get available(): boolean {
    return this.deps.catalog !== undefined;
  }
  for(profile: string): Promise<LakebaseCatalog> {
    let c = this.open.get(profile);
    if (!c) {
      c = (this.deps.catalog as (p: string) => Promise<LakebaseCatalog>)(profile);
      void c.catch(() => this.open.delete(profile));
      this.open.set(profile, c);
    }
    return c;
  }
}

type Listed<T> = { picked: T } | { action: 'type' | 'profile' } | undefined;

/**
 * A pick over what `load` lists, with a last item to type the name instead. A listing that
 * fails is shown in the form: the pick's title is the error (naming the profile, the
 * workspace and what was listed), its placeholder the hint, and it offers Retry, another
 * profile, or typing the name.
 */
async function pickListed<T>(p: Prompter, title: string, what: string, load: () => Promise<T[]>, toItem: (t: T) => PickItem, placeHolder: string): Promise<Listed<T>> {
  for (;;) {
    let list: T[];
    try {
      list = await p.progress(`Listing ${what}`, load);
    } catch (e) {
      const err = isSyncError(e) ? e : new SyncError('connection', `Could not list ${what}: ${e instanceof Error ? e.message : String(e)}`);
      const actions: Array<PickItem & { action: 'retry' | 'profile' | 'type' }> = [
        { label: 'Retry', description: `list ${what} again`, action: 'retry' },
        { label: 'Choose another profile', action: 'profile' },
        { label: TYPE_INSTEAD, description: `the ${what.replace(/s$/, '')}'s name`, action: 'type' },
      ];
      const choice = await p.pick(actions, { title: `${title}: ${err.message}`, placeHolder: err.hint ?? 'Retry, choose another profile, or type the name' });
      if (!choice) return undefined;
      if (choice.action === 'retry') continue;
      return { action: choice.action };
    }
    const items: Array<PickItem & { value?: T }> = [...list.map((t) => ({ ...toItem(t), value: t })), { label: TYPE_INSTEAD, description: list.length === 0 ? `none found: type the name` : 'a name not listed here' }];
    const pick = await p.pick(items, { title: list.length === 0 ? `${title} (no ${what} found)` : title, placeHolder });
    if (!pick) return undefined;
    return pick.value === undefined ? { action: 'type' } : { picked: pick.value };
  }
}

/**
 * The endpoint picked from the profile's workspace: project, branch (the default first),
 * then the branch's compute endpoint (read-write first), whose host fills the host step.
 */
async function browseEndpoint(p: Prompter, catalogs: Catalogs, f: LakebaseFields, title: string): Promise<'picked' | 'type' | 'profile' | 'cancel'> {
  const outcome = (r: Listed<unknown>): 'type' | 'profile' | 'cancel' => (r === undefined ? 'cancel' : 'action' in r ? r.action : 'cancel');
  const profile = f.profile;
  const project = await pickListed(p, `${title}: project`, 'Lakebase projects', async () => (await catalogs.for(profile)).projects(),
    (x) => ({ label: x.displayName, description: x.id === x.displayName ? undefined : x.id, detail: x.name }), `Projects in the workspace of profile ${profile}`);
  if (!project || !('picked' in project)) return outcome(project);
  const branch = await pickListed(p, `${title}: branch of ${project.picked.displayName}`, 'branches', async () => {
    const all = await (await catalogs.for(profile)).branches(project.picked.name);
    return [...all].sort((a, b) => Number(b.isDefault) - Number(a.isDefault));
  }, (x) => ({ label: x.id, description: [x.isDefault ? 'default' : undefined, x.state?.toLowerCase()].filter(Boolean).join(' · ') || undefined }), 'The branch to sync into');
  if (!branch || !('picked' in branch)) return outcome(branch);
  const endpoint = await pickListed(p, `${title}: endpoint of ${branch.picked.id}`, 'compute endpoints', async () => {
    const all = await (await catalogs.for(profile)).endpoints(branch.picked.name);
    return [...all].sort((a, b) => Number(b.readWrite) - Number(a.readWrite));
  }, (x) => ({ label: x.id, description: [x.readWrite ? 'read-write' : 'read-only', x.host, x.state?.toLowerCase()].filter(Boolean).join(' · ') }), 'A sync writes: pick the read-write endpoint');
  if (!endpoint || !('picked' in endpoint)) return outcome(endpoint);
  f.resource = endpoint.picked.name;
  if (endpoint.picked.host) f.host = endpoint.picked.host;
  return 'picked';
}

/** Asks one step (prefilled with `f`); false when cancelled. The resource step also asks endpoint vs instance. */
async function askStep(p: Prompter, deps: LakebaseFormDeps, f: LakebaseFields, step: Step, catalogs: Catalogs = new Catalogs(deps)): Promise<boolean> {
  const title = `Add Lakebase Database (${STEPS.indexOf(step) + 2}/${STEPS.length + 1})`;
  switch (step) {
    case 'profile': {
      const profiles = await deps.profiles();
      if (profiles.length === 0) {
        throw new SyncError('usage', 'No Databricks profile to sign in with: no saved Databricks connection and no profile in ~/.databrickscfg.', {
          hint: 'Add a Databricks connection (Delta Sync: Add Databricks Connection) or a [profile] with host and token (or client_id and client_secret) to ~/.databrickscfg, then add the Lakebase database again.',
        });
      }
      const items = profiles.map((x) => ({ label: x.name, description: x.source, ...(x.host ? { detail: x.host } : {}), profile: x.name }));
      items.sort((a, b) => Number(b.profile === f.profile) - Number(a.profile === f.profile));
      const pick = await p.pick(items, { title: `${title}: Databricks profile`, placeHolder: 'Who signs in: the database password is a token issued to this identity' });
      if (!pick) return false;
      f.profile = pick.profile;
      return true;
    }
    case 'resource': {
      const kinds: Array<PickItem & { kind: LakebaseFields['kind'] }> = [
        { label: 'Lakebase Autoscaling endpoint', description: 'projects/<project>/branches/<branch>/endpoints/<endpoint>', kind: 'endpoint' },
        { label: 'Lakebase Provisioned database instance', description: 'the instance name; its host is looked up in the workspace', kind: 'instance' },
      ];
      kinds.sort((a, b) => Number(b.kind === f.kind) - Number(a.kind === f.kind));
      const kind = await p.pick(kinds, { title: `${title}: Autoscaling endpoint or Provisioned instance` });
      if (!kind) return false;
      if (kind.kind !== f.kind) f.resource = '';
      f.kind = kind.kind;
      while (f.kind === 'endpoint' && catalogs.available) {
        const r = await browseEndpoint(p, catalogs, f, title);
        if (r === 'picked') return true;
        if (r === 'cancel') return false;
        if (r === 'type') break;
        if (!(await askStep(p, deps, f, 'profile', catalogs))) return false;
      }
      const v = await p.input({
        title: `${title}: ${f.kind === 'endpoint' ? 'endpoint' : 'database instance'}`,
        prompt: f.kind === 'endpoint' ? 'The endpoint\'s resource name (databricks postgres list-endpoints projects/<project>/branches/<branch>)' : 'The database instance\'s name',
        value: f.resource,
        placeHolder: f.kind === 'endpoint' ? 'projects/my-project/branches/production/endpoints/primary' : 'my-instance',
        validate: (x) => validateLakebaseField('resource', x, f.kind),
      });
      if (v === undefined) return false;
      f.resource = v.trim();
      return true;
    }
    case 'host': {
      const v = await p.input({
        title: `${title}: host`,
        prompt: f.kind === 'endpoint' ? 'The endpoint\'s Postgres host, optionally host:port' : 'The instance\'s Postgres host, optionally host:port (empty: looked up in the workspace)',
        value: f.host,
        placeHolder: 'instance-1234.database.cloud.databricks.com',
        validate: (x) => validateLakebaseField('host', x, f.kind),
      });
      if (v === undefined) return false;
      f.host = v.trim();
      return true;
    }
    case 'database': {
      const branch = f.kind === 'endpoint' && ENDPOINT_RE.test(f.resource) ? f.resource.split('/').slice(0, 4).join('/') : undefined;
      while (branch !== undefined && catalogs.available) {
        const profile = f.profile;
        const r = await pickListed(p, `${title}: database`, 'databases', async () => (await catalogs.for(profile)).databases(branch),
          (x) => ({ label: x.postgresDatabase, ...(x.owner ? { description: `owner ${x.owner.slice(x.owner.lastIndexOf('/') + 1)}` } : {}) }), `The Postgres database of ${branch} to sync into`);
        if (r === undefined) return false;
        if ('picked' in r) {
          f.database = r.picked.postgresDatabase;
          return true;
        }
        if (r.action === 'type') break;
        if (!(await askStep(p, deps, f, 'profile', catalogs))) return false;
      }
      const v = await p.input({
        title: `${title}: database`,
        prompt: 'The Postgres database to sync into',
        value: f.database,
        validate: (x) => validateLakebaseField('database', x, f.kind),
      });
      if (v === undefined) return false;
      f.database = v.trim();
      return true;
    }
  }
}

/**
 * Add a Lakebase database as a saved target connection (its value a `lakebase:` reference).
 * Resolves to what was saved, or undefined when the user cancelled (nothing saved).
 */
export async function lakebaseDatabaseForm(p: Prompter, deps: LakebaseFormDeps): Promise<ConnectionFormResult | undefined> {
  const n = await p.input({
    title: `Add Lakebase Database (1/${STEPS.length + 1}): name`,
    prompt: 'A name for this target, used in mapping files as target.connection',
    placeHolder: 'lakebase-prod',
    validate: (v) => deps.validateName(v.trim()),
  });
  if (n === undefined) return undefined;
  const name = n.trim();
  const f: LakebaseFields = { profile: '', kind: 'endpoint', resource: '', host: '', database: LAKEBASE_DEFAULT_DATABASE };
  const catalogs = new Catalogs(deps);
  for (const step of STEPS) if (!(await askStep(p, deps, f, step, catalogs))) return undefined;

  for (;;) {
    const reference = referenceFromFields(f);
    const parsed = parseLakebaseReference(reference);
    if (!parsed.ok) throw new SyncError('usage', `Not a valid Lakebase target: ${parsed.problem}`);
    const result = await p.progress(`Testing ${f.database} on ${f.kind === 'endpoint' ? 'endpoint' : 'instance'} ${f.resource} (profile ${f.profile})`, () => deps.test(reference));
    if (result.ok) {
      await deps.save(name, reference);
      void p.message('info', `Connected to ${result.server} — ${result.serverVersion}. Saved "${name}" (${reference}); the password is a token fetched at each run.`);
      return { name, url: reference, test: result };
    }
    const choice = await p.message('error', `${result.problem.headline}${result.problem.error.hint ? ` ${result.problem.error.hint}` : ''}`, 'Edit', 'Retry', 'Save Anyway');
    if (choice === 'Retry') continue;
    if (choice === 'Save Anyway') {
      await deps.save(name, reference);
      return { name, url: reference, test: result };
    }
    if (choice !== 'Edit') return undefined;
    const values: Record<Step, string> = { profile: f.profile, resource: f.resource, host: f.host || '(none)', database: f.database };
    const pick = await p.pick(STEPS.map((s) => ({ label: s, description: values[s], step: s })), { title: 'Add Lakebase Database: which step?', placeHolder: result.problem.headline });
    if (!pick) return undefined;
    if (!(await askStep(p, deps, f, pick.step, catalogs))) return undefined;
  }
}
