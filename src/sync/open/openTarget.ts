import * as path from 'node:path';
import type { Pool } from 'pg';
import { SyncError } from '../errors';
import type { DatabricksResolveOptions } from '../databricks/resolveDatabricksConnection';
import { openLakebasePool } from '../lakebase/openLakebasePool';
import { isLakebaseReference } from '../mapping/lakebaseReference';
import { createPool } from '../postgres/createPool';
import { openSandbox } from '../postgres/PglitePool';
import { PostgresTarget } from '../postgres/PostgresTarget';
import type { Mapping } from '../mapping/mappingSchema';
import type { Logger } from '../ports/Logger';
import type { Target } from '../ports/Target';
import { isNeonReference } from '../mapping/neonReference';
import { resolveNeonConnection } from '../neon/resolveNeonConnection';
import type { NeonResolveOptions } from '../neon/resolveNeonConnection';

/** The name under which the embedded PGlite target is always available. */
export const SANDBOX_CONNECTION = 'sandbox';

/** The Target port for a mapping's table over an opened pool (a server's or the sandbox's). */
export function mappingTarget(pool: Pool, target: Pick<Mapping['target'], 'schema' | 'table'>, logger?: Logger): Target {
  return new PostgresTarget(pool, { schema: target.schema, name: target.table }, logger ? { logger } : {});
}

export interface OpenedTarget {
  pool: Pool;
  /** For messages: host/database, never the password. */
  label: string;
  kind: 'postgres' | 'sandbox';
  close(): Promise<void>;
}

export interface TargetResolveOptions {
  env?: Record<string, string | undefined>;
  /** Where the sandbox database lives (default: in memory). */
  sandboxDir?: string;
  /** Named connections (the extension passes the ones from SecretStorage). */
  lookup?: (name: string) => Promise<string | undefined>;
  /** Saved Databricks connections, for the profile of a lakebase: target. */
  databricks?: Pick<DatabricksResolveOptions, 'lookup'>;
  /** For `neon:` references: the API key source, API URL, progress (env comes from `env`). */
  neon?: Omit<NeonResolveOptions, 'env'>;
}

const ENV_REF = /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** The environment variable that holds the URL of a named connection in the CLI. */
export function connectionEnvVar(name: string): string {
  return `DELTA_NEON_SYNC_CONNECTION_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * Resolves a mapping's `target.connection` to a connection string: a postgres:// URL,
 * `${env:VAR}`, the built-in `sandbox`, a `lakebase:` reference (returned as it is; its
 * password is a token fetched when a connection opens), or a saved name (extension: SecretStorage; CLI:
 * the DELTA_NEON_SYNC_CONNECTION_<NAME> environment variable). An unset variable or an
 * unknown name is a 'mapping' error (setting target.connection, with a hint), not a 'usage'
 * one: the CLI prints a usage error's usage line instead of its hint, and the hint (which
 * variable to set) is the useful part here.
 */
export async function resolveConnection(connection: string, opts: TargetResolveOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  if (isNeonReference(connection)) return (await resolveNeonConnection(connection, { ...opts.neon, env })).url;
  const ref = ENV_REF.exec(connection);
  if (ref) {
    const v = env[ref[1] as string];
    if (!v) {
      throw new SyncError('mapping', `target.connection refers to environment variable ${ref[1]}, which is not set.`, {
        setting: 'target.connection',
        hint: `export ${ref[1]}='postgresql://user:password@host/db?sslmode=require'`,
      });
    }
    return v;
  }
  if (/^postgres(ql)?:\/\//i.test(connection) || connection === SANDBOX_CONNECTION || isLakebaseReference(connection)) return connection;
  const saved = (await opts.lookup?.(connection)) ?? env[connectionEnvVar(connection)];
  if (!saved) {
    throw new SyncError('mapping', `Unknown connection "${connection}".`, {
      setting: 'target.connection',
      hint: `Use a postgres:// URL, \${env:VAR}, "${SANDBOX_CONNECTION}", or set ${connectionEnvVar(connection)} to its connection string.`,
    });
  }
  return saved;
}

export async function openTarget(connection: string, opts: TargetResolveOptions = {}): Promise<OpenedTarget> {
  if (isNeonReference(connection)) {
    // The URI (with the role's password) comes from the Neon API and stays in memory.
    const neon = await resolveNeonConnection(connection, { ...opts.neon, env: opts.env ?? process.env });
    const pool = createPool(neon.url);
    return { pool, label: neon.label, kind: 'postgres', close: () => pool.end() };
  }
  const url = await resolveConnection(connection, opts);
  if (url === SANDBOX_CONNECTION) {
    const sandbox = await openSandbox(opts.sandboxDir === undefined ? undefined : path.resolve(opts.sandboxDir));
    return { pool: sandbox.pool, label: `sandbox (embedded PGlite${opts.sandboxDir ? ` in ${opts.sandboxDir}` : ', in memory'})`, kind: 'sandbox', close: () => sandbox.close() };
  }
  if (isLakebaseReference(url)) {
    const lb = await openLakebasePool(url, { env: opts.env ?? process.env, ...(opts.databricks ? { databricks: opts.databricks } : {}) });
    return { pool: lb.pool, label: lb.label, kind: 'postgres', close: () => lb.close() };
  }
  const pool = createPool(url);
  let label = 'postgres';
  try {
    const u = new URL(url);
    label = `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    // createPool validated the URL already; keep the generic label.
  }
  return { pool, label, kind: 'postgres', close: () => pool.end() };
}
