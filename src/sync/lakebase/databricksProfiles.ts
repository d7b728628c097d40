import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A profile of the Databricks config file (`~/.databrickscfg`): its name, host and how it signs in. */
export interface DatabricksProfile {
  name: string;
  host?: string;
  /** token (PAT), oauth-m2m (client_id and client_secret), or the profile's auth_type. */
  auth?: string;
}

/** The config file the Databricks SDK reads: DATABRICKS_CONFIG_FILE, else ~/.databrickscfg. */
export function databricksConfigFile(env: Record<string, string | undefined> = process.env): string {
  const set = env.DATABRICKS_CONFIG_FILE?.trim();
  if (set) return set.startsWith('~/') ? path.join(os.homedir(), set.slice(2)) : set;
  return path.join(os.homedir(), '.databrickscfg');
}

/**
 * The profiles of the Databricks config file (INI: `[name]` sections of `key = value`),
 * in file order; no file is no profiles. Only names, hosts and the kind of sign-in are
 * read out: the secrets stay in the file, where the SDK reads them at run time.
 */
export async function listDatabricksProfiles(env: Record<string, string | undefined> = process.env): Promise<DatabricksProfile[]> {
  let text: string;
  try {
    text = await fs.readFile(databricksConfigFile(env), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: DatabricksProfile[] = [];
  let current: (DatabricksProfile & { keys: Set<string> }) | undefined;
  const close = (): void => {
    if (!current) return;
    const { keys, ...p } = current;
    const auth = p.auth ?? (keys.has('token') ? 'token' : keys.has('client_id') && keys.has('client_secret') ? 'oauth-m2m' : undefined);
    // DEFAULT with no host is only the INI defaults section, not a profile anyone signs in with.
    if (p.name !== 'DEFAULT' || p.host) out.push({ name: p.name, ...(p.host ? { host: p.host } : {}), ...(auth ? { auth } : {}) });
    current = undefined;
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section) {
      close();
      current = { name: (section[1] as string).trim(), keys: new Set() };
      continue;
    }
    const kv = /^([A-Za-z0-9_]+)\s*[=:]\s*(.*)$/.exec(line);
    if (!kv || !current) continue;
    const key = (kv[1] as string).toLowerCase();
    current.keys.add(key);
    if (key === 'host') current.host = (kv[2] as string).trim();
    if (key === 'auth_type') current.auth = (kv[2] as string).trim();
  }
  close();
  return out;
}
