import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Copies a shared (read-only) Delta table into a fresh temp folder so a test can break it
 * (corrupt a log line, delete a data file) without touching the original. Returns the copy's
 * root; `cleanup` removes the temp folder.
 */
export function copyTableToTemp(tableRoot: string): { root: string; cleanup: () => void } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'delta-copy-'));
  const root = path.join(base, path.basename(tableRoot));
  fs.cpSync(tableRoot, root, { recursive: true });
  makeWritable(root);
  return { root, cleanup: () => fs.rmSync(base, { recursive: true, force: true }) };
}

function makeWritable(p: string): void {
  const st = fs.statSync(p);
  fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
  if (st.isDirectory()) for (const e of fs.readdirSync(p)) makeWritable(path.join(p, e));
}
