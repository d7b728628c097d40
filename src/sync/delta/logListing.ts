import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SyncError } from '../errors';

/**
 * Listing a Delta transaction log (`_delta_log/`): its commits and complete checkpoints.
 *
 * The directory is always listed: `_last_checkpoint` is only a hint and may be stale or
 * absent, so it is never trusted.
 */

const COMMIT_RE = /^(\d{20})\.json$/;
const CLASSIC_CHECKPOINT_RE = /^(\d{20})\.checkpoint\.parquet$/;
const MULTIPART_CHECKPOINT_RE = /^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$/;
const V2_CHECKPOINT_RE = /^(\d{20})\.checkpoint\.([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.(json|parquet)$/;

export type CheckpointKind = 'classic' | 'multi-part' | 'v2';

export interface CheckpointInfo {
  version: number;
  kind: CheckpointKind;
  /** Absolute paths; for multi-part checkpoints in part order. */
  files: string[];
}

/** One listing of `_delta_log/`. */
export interface LogListing {
  tableRoot: string;
  logDir: string;
  /** version -> absolute path of its commit JSON. */
  commits: Map<number, string>;
  /** Commit versions present, ascending. */
  commitVersions: number[];
  /** Complete checkpoints, ascending by version (several may share a version). */
  checkpoints: CheckpointInfo[];
  /** Highest version that exists (commit, or checkpoint when its commit was cleaned up). */
  latestVersion: number;
}

function pad20(version: number): string {
  return String(version).padStart(20, '0');
}

/** Path of the commit file of `version` (whether or not it exists). */
export function commitPath(logDirPath: string, version: number): string {
  return path.join(logDirPath, `${pad20(version)}.json`);
}

/**
 * The error for a log path (folder or file) this user may not read (EACCES, EPERM), or
 * undefined for any other failure: names the path and says to grant read access, since
 * the usual hints (cleanup, table root) would send the user the wrong way.
 */
export function permissionError(what: string, file: string, cause: unknown, details: { table: string; version?: number }): SyncError | undefined {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'EACCES' && code !== 'EPERM') return undefined;
  return new SyncError('delta-log', `Permission denied reading ${what} ${file} (${code})`, {
    ...details,
    cause,
    retry: 'manual',
    hint: `Give the user running the sync read access to ${file} (and to the folders above it, execute access on the folders): the table root, _delta_log/ and every file in it must be readable.`,
  });
}

/**
 * Lists `_delta_log/`. Throws SyncError('delta-log') when the folder is missing or holds
 * neither a commit nor a complete checkpoint. Incomplete multi-part checkpoints are left out.
 */
export async function listLog(tableRoot: string): Promise<LogListing> {
  const logDirPath = path.join(tableRoot, '_delta_log');
  let names: string[];
  try {
    names = await fs.readdir(logDirPath);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw permissionError('the Delta log folder', logDirPath, cause, { table: tableRoot }) ?? new SyncError(
      'delta-log',
      code === 'ENOENT'
        ? `${tableRoot} is not a Delta table: it has no _delta_log folder.`
        : `Cannot list ${logDirPath}: ${(cause as Error).message}`,
      { table: tableRoot, cause, hint: 'Point to the table root folder, the one that contains _delta_log/.' },
    );
  }
  const commits = new Map<number, string>();
  const multi = new Map<string, { version: number; total: number; parts: Map<number, string> }>();
  const checkpoints: CheckpointInfo[] = [];
  for (const name of names) {
    let m = COMMIT_RE.exec(name);
    if (m) {
      commits.set(Number(m[1]), path.join(logDirPath, name));
      continue;
    }
    m = CLASSIC_CHECKPOINT_RE.exec(name);
    if (m) {
      checkpoints.push({ version: Number(m[1]), kind: 'classic', files: [path.join(logDirPath, name)] });
      continue;
    }
    m = V2_CHECKPOINT_RE.exec(name);
    if (m) {
      checkpoints.push({ version: Number(m[1]), kind: 'v2', files: [path.join(logDirPath, name)] });
      continue;
    }
    m = MULTIPART_CHECKPOINT_RE.exec(name);
    if (m) {
      const version = Number(m[1]);
      const part = Number(m[2]);
      const total = Number(m[3]);
      const key = `${version}/${total}`;
      let group = multi.get(key);
      if (!group) multi.set(key, (group = { version, total, parts: new Map() }));
      group.parts.set(part, path.join(logDirPath, name));
    }
    // .crc, _last_checkpoint, compacted logs, temp files: not needed for reading.
  }
  for (const g of multi.values()) {
    if (g.total < 1 || g.parts.size !== g.total) continue; // incomplete: a writer died mid-way
    const files: string[] = [];
    for (let p = 1; p <= g.total; p++) {
      const f = g.parts.get(p);
      if (!f) break;
      files.push(f);
    }
    if (files.length === g.total) checkpoints.push({ version: g.version, kind: 'multi-part', files });
  }
  checkpoints.sort((a, b) => a.version - b.version);
  const commitVersions = [...commits.keys()].sort((a, b) => a - b);
  if (commitVersions.length === 0 && checkpoints.length === 0) {
    throw new SyncError('delta-log', `${tableRoot} is not a Delta table: ${logDirPath} contains no commit.`, {
      table: tableRoot,
      hint: 'Point to the table root folder of a table that has at least one commit.',
    });
  }
  const latestCommit = commitVersions.length ? commitVersions[commitVersions.length - 1] : -1;
  const latestCheckpoint = checkpoints.length ? checkpoints[checkpoints.length - 1].version : -1;
  return {
    tableRoot,
    logDir: logDirPath,
    commits,
    commitVersions,
    checkpoints,
    latestVersion: Math.max(latestCommit, latestCheckpoint),
  };
}
