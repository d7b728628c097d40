import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The conformance tables written by Spark and delta-rs live outside the project, in
 * `../shared/delta-tables` (next to the clone). Tests that need them skip when the folder
 * is absent; `DELTA_TABLES_DIR` overrides the location.
 */
export const SHARED_TABLES_DIR: string | undefined = (() => {
  const candidates = [
    process.env.DELTA_TABLES_DIR,
    path.resolve(__dirname, '../../../shared/delta-tables'),
    path.resolve(__dirname, '../../shared/delta-tables'),
    // Where this workplace keeps it when the clone is not next to it.
    '/work/shared/delta-tables',
  ].filter((p): p is string => !!p);
  return candidates.find((p) => fs.existsSync(path.join(p, 'README.md')));
})();

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
