import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The conformance tables written by Spark and delta-rs live outside the project, in
 * `../shared/delta-tables` (next to the clone); `DELTA_TABLES_DIR` overrides the location
 * (and then is the only place looked at). Locally, tests that need them skip when the
 * folder is absent. In CI (`CI` set to anything but false/0) a missing folder fails the
 * run instead: those tests are a large part of the suite, and a run that silently skipped
 * them would still pass.
 */
export function sharedTablesDir(env: NodeJS.ProcessEnv, helperDir: string): string | undefined {
  const candidates = env.DELTA_TABLES_DIR
    ? [env.DELTA_TABLES_DIR]
    : [path.resolve(helperDir, '../../../shared/delta-tables'), path.resolve(helperDir, '../../shared/delta-tables')];
  const found = candidates.find((p) => fs.existsSync(path.join(p, 'README.md')));
  if (!found && isCi(env)) {
    throw new Error(
      `CI is set, but the shared Delta tables folder is missing (looked for README.md in ${candidates.join(', ')}). ` +
        'Put the conformance tables in ../shared/delta-tables next to the clone, or set DELTA_TABLES_DIR to their folder.',
    );
  }
  return found;
}

function isCi(env: NodeJS.ProcessEnv): boolean {
  const v = env.CI?.trim().toLowerCase();
  return !!v && v !== 'false' && v !== '0';
}

export const SHARED_TABLES_DIR: string | undefined = sharedTablesDir(process.env, __dirname);

export function sharedTable(name: string): string | undefined {
  if (!SHARED_TABLES_DIR) return undefined;
  const p = path.join(SHARED_TABLES_DIR, name);
  return fs.existsSync(p) ? p : undefined;
}

/** For `describe` blocks: call inside a test body to skip when the shared folder is absent. */
export function requireSharedTable(ctx: Mocha.Context, name: string): string {
  const p = sharedTable(name);
  if (!p) ctx.skip();
  return p as string;
}
