/**
 * The guided Add / Edit Postgres Connection flow, written against a small `Prompter`
 * (input box, quick pick, progress, message with actions) so it runs in unit tests without
 * VS Code: name, host, port, database, user, password (the only masked field), sslmode; or
 * a pasted URL whose fields are parsed. Then Test Connection before saving; on failure
 * Edit (re-asks the field the problem points at) / Retry / Save Anyway.
 */
import { SyncError } from '../sync/errors';
import { isLakebaseReference } from '../sync/mapping/lakebaseReference';
import { parsePostgresUrl } from '../sync/postgres/createPool';
import type { ConnectionField, ConnectionTestResult } from '../sync/postgres/testConnection';

export interface InputOptions {
  title: string;
  prompt: string;
  value?: string;
  placeHolder?: string;
  password?: boolean;
  validate?: (value: string) => string | undefined;
}

export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
}

/** What the flows ask of the editor (vscode.window in the extension, a script in tests). */
export interface Prompter {
  input(o: InputOptions): Promise<string | undefined>;
  pick<T extends PickItem>(items: readonly T[], o: { title: string; placeHolder?: string }): Promise<T | undefined>;
  progress<T>(title: string, work: () => Promise<T>): Promise<T>;
  /** A message with buttons; resolves to the chosen button or undefined (dismissed). */
  message(severity: 'info' | 'warning' | 'error', text: string, ...actions: string[]): Promise<string | undefined>;
}

export const SSL_MODES = ['require', 'verify-full', 'verify-ca', 'prefer', 'disable'] as const;

export interface ConnectionFields {
  host: string;
  port: string;
  database: string;
  user: string;
  password: string;
  sslmode: string;
  /** Other query parameters of a pasted URL (connect_timeout, options, ...), kept as they were. */
  extra: Array<[string, string]>;
}

export const DEFAULT_FIELDS: ConnectionFields = { host: '', port: '5432', database: 'postgres', user: 'postgres', password: '', sslmode: 'require', extra: [] };

/** The fields of a postgres:// URL (throws SyncError('usage') for anything else). */
export function fieldsFromUrl(url: string): ConnectionFields {
  const p = parsePostgresUrl(url.trim());
  if (!p.host) throw new SyncError('usage', 'The connection URL has no host.', { hint: 'Use postgresql://user:password@host:5432/database?sslmode=require' });
  const extra = [...p.params].filter(([k]) => !['sslmode', 'host', 'port', 'user', 'password', 'dbname'].includes(k));
  return {
    host: p.host,
    port: String(p.port ?? 5432),
    database: p.database ?? '',
    user: p.user ?? '',
    password: p.password ?? '',
    sslmode: p.params.get('sslmode') ?? (isLocal(p.host) ? 'disable' : 'require'),
    extra,
  };
}

function isLocal(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.') || host.startsWith('/');
}

/** The connection string the fields describe (what is stored in SecretStorage). */
export function urlFromFields(f: ConnectionFields): string {
  const socket = f.host.startsWith('/');
  const host = socket ? '' : f.host.includes(':') ? `[${f.host}]` : f.host;
  const auth = f.user ? `${encodeURIComponent(f.user)}${f.password ? `:${encodeURIComponent(f.password)}` : ''}@` : '';
  const params = new URLSearchParams();
  if (socket) params.set('host', f.host);
  if (f.sslmode) params.set('sslmode', f.sslmode);
  for (const [k, v] of f.extra) params.set(k, v);
  const q = params.toString();
  return `postgresql://${auth}${host}${f.port && !socket ? `:${f.port}` : ''}/${encodeURIComponent(f.database)}${q ? `?${q}` : ''}`;
}

/** Why a field's value cannot be used, or undefined. */
export function validateField(field: ConnectionField, v: string): string | undefined {
  const t = v.trim();
  switch (field) {
    case 'host':
      if (!t) return 'The host name or IP address of the server, e.g. ep-cool-name-123456.eu-central-1.aws.neon.tech or localhost.';
      if (/^[a-z]+:\/\//i.test(t)) return 'Only the host name here; to paste a whole URL, choose "Paste a connection URL".';
      return /[\s/?#@]/.test(t) && !t.startsWith('/') ? 'A host name has no spaces, "/", "?", "#" or "@".' : undefined;
    case 'port':
      return /^\d+$/.test(t) && Number(t) > 0 && Number(t) < 65536 ? undefined : 'A port number between 1 and 65535 (Postgres listens on 5432 by default).';
    case 'database':
      return t ? undefined : 'The database name (Neon creates "neondb").';
    case 'user':
      return t ? undefined : 'The Postgres role to log in as.';
    case 'password':
      return undefined;
    case 'sslmode':
      return (SSL_MODES as readonly string[]).includes(t) ? undefined : `One of ${SSL_MODES.join(', ')}.`;
  }
}

const FIELD_ORDER: ConnectionField[] = ['host', 'port', 'database', 'user', 'password', 'sslmode'];

const SSL_DESCRIPTIONS: Record<(typeof SSL_MODES)[number], string> = {
  require: 'TLS, certificate not checked (Neon works with this)',
  'verify-full': 'TLS, certificate and host name checked',
  'verify-ca': 'TLS, certificate checked, not the host name',
  prefer: 'plain on localhost, TLS elsewhere',
  disable: 'no TLS: local or trusted networks only',
};

export interface ConnectionFormDeps {
  /** Why a new name cannot be used (TargetsModel.validateName), or undefined. */
  validateName(name: string): string | undefined;
  test(url: string): Promise<ConnectionTestResult>;
  save(name: string, url: string): Promise<unknown>;
}

export interface ConnectionFormResult {
  name: string;
  url: string;
  /** The last test's outcome (a failed one when the user chose Save Anyway). */
  test: ConnectionTestResult;
}

/**
 * Add (no `existing`) or Edit (`existing`: name and stored string) a Postgres connection.
 * Resolves to what was saved, or undefined when the user cancelled (nothing saved).
 */
export async function postgresConnectionForm(
  p: Prompter,
  deps: ConnectionFormDeps,
  existing?: { name: string; url: string },
): Promise<ConnectionFormResult | undefined> {
  const verb = existing ? `Edit Postgres Connection "${existing.name}"` : 'Add Postgres Connection';
  let name = existing?.name;
  if (name === undefined) {
    const n = await p.input({
      title: `${verb}: name`,
      prompt: 'A name for this connection, used in mapping files as target.connection',
      placeHolder: 'neon-prod',
      validate: (v) => deps.validateName(v.trim()),
    });
    if (n === undefined) return undefined;
    name = n.trim();
  }

  let f: ConnectionFields = { ...DEFAULT_FIELDS, extra: [] };
  /** A lakebase: reference (no host/port fields): tested and saved as typed. */
  let reference: string | undefined;
  let askAll = true;
  const askUrl = async (value?: string): Promise<boolean> => {
    const url = await p.input({
      title: `${verb}: connection URL`,
      prompt: 'Paste the connection string (or a lakebase: reference); it is kept in VS Code secret storage only',
      placeHolder: 'postgresql://user:password@host/db?sslmode=require',
      ...(value !== undefined ? { value } : {}),
      password: true,
      validate: (v) => {
        if (isLakebaseReference(v.trim())) return undefined;
        try {
          fieldsFromUrl(v);
          return undefined;
        } catch (e) {
          return e instanceof Error ? e.message : String(e);
        }
      },
    });
    if (url === undefined) return false;
    if (isLakebaseReference(url.trim())) reference = url.trim();
    else {
      reference = undefined;
      f = fieldsFromUrl(url);
    }
    return true;
  };
  if (existing) {
    if (isLakebaseReference(existing.url.trim())) {
      if (!(await askUrl(existing.url))) return undefined;
      askAll = false;
    } else f = fieldsFromUrl(existing.url);
  } else {
    const how = await p.pick(
      [
        { label: 'Enter host, port, database, user and password', how: 'fields' as const },
        { label: 'Paste a connection URL', description: 'postgresql://user:password@host/db?sslmode=require (Neon Console > Connect)', how: 'url' as const },
      ],
      { title: `${verb}: how` },
    );
    if (!how) return undefined;
    if (how.how === 'url') {
      if (!(await askUrl())) return undefined;
      // The parsed fields are shown in the test's progress and result; Edit changes one.
      askAll = false;
    }
  }

  if (askAll) {
    for (const field of FIELD_ORDER) {
      const ok = await askField(p, verb, f, field);
      if (!ok) return undefined;
    }
  }

  for (;;) {
    const url = reference ?? urlFromFields(f);
    const where = reference ?? `${f.user ? `${f.user}@` : ''}${f.host}:${f.port}/${f.database} (sslmode=${f.sslmode})`;
    const result = await p.progress(`Testing ${where}`, () => deps.test(url));
    if (result.ok) {
      await deps.save(name, url);
      void p.message('info', `Connected to ${result.server} — ${result.serverVersion}. Saved "${name}".`);
      return { name, url, test: result };
    }
    const choice = await p.message('error', `${result.problem.headline}${result.problem.error.hint ? ` ${result.problem.error.hint}` : ''}`, 'Edit', 'Retry', 'Save Anyway');
    if (choice === 'Retry') continue;
    if (choice === 'Save Anyway') {
      await deps.save(name, url);
      return { name, url, test: result };
    }
    if (choice !== 'Edit') return undefined;
    if (reference !== undefined) {
      if (!(await askUrl(reference))) return undefined;
      continue;
    }
    // Edit: the field the problem points at, else the user picks one; the rest is kept.
    let field = result.problem.field;
    if (!field) {
      const pick = await p.pick(
        FIELD_ORDER.map((x) => ({ label: x, description: x === 'password' ? (f.password ? '••••••' : '(none)') : f[x], field: x })),
        { title: `${verb}: which field?`, placeHolder: result.problem.headline },
      );
      if (!pick) return undefined;
      field = pick.field;
    }
    if (!(await askField(p, verb, f, field))) return undefined;
  }
}

/** Asks one field (prefilled), storing the answer in `f`; false when cancelled. */
async function askField(p: Prompter, verb: string, f: ConnectionFields, field: ConnectionField): Promise<boolean> {
  const n = FIELD_ORDER.indexOf(field) + 1;
  const title = `${verb} (${n}/${FIELD_ORDER.length}): ${field}`;
  if (field === 'sslmode') {
    const pick = await p.pick(
      [...SSL_MODES].sort((a, b) => Number(b === f.sslmode) - Number(a === f.sslmode)).map((m) => ({ label: m, description: `${SSL_DESCRIPTIONS[m]}${m === f.sslmode ? ' · current' : ''}` })),
      { title, placeHolder: 'How the connection uses TLS' },
    );
    if (!pick) return false;
    f.sslmode = pick.label;
    return true;
  }
  const prompts: Record<Exclude<ConnectionField, 'sslmode'>, string> = {
    host: 'Host name or IP address of the Postgres server',
    port: 'TCP port (5432 by default)',
    database: 'Database name',
    user: 'User (role) to log in as',
    password: 'Password (kept in VS Code secret storage only; leave empty for trust, PGPASSWORD or ~/.pgpass)',
  };
  const v = await p.input({
    title,
    prompt: prompts[field],
    value: f[field],
    ...(field === 'host' ? { placeHolder: 'ep-cool-name-123456.eu-central-1.aws.neon.tech' } : {}),
    password: field === 'password',
    validate: (x) => validateField(field, x),
  });
  if (v === undefined) return false;
  f[field] = field === 'password' ? v : v.trim();
  return true;
}
