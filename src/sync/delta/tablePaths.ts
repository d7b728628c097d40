import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SyncError } from '../errors';

/**
 * Paths in Delta actions (`add`, `remove`, `cdc`, `sidecar`, DV `p` paths) are URI-encoded
 * strings, relative to a base folder or absolute URIs. Decoding must happen exactly once:
 * folder names on disk may themselves contain `%3A`, spaces or `=` (a partition value
 * "a:b" is stored as folder `a%3Ab` and written in the log as `a%253Ab`).
 */

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * Turns a user-supplied table location (plain path or `file://` URI) into an absolute
 * local path without a trailing separator.
 */
export function normalizeTableRoot(location: string): string {
  const trimmed = location.trim();
  if (trimmed.startsWith('file:')) return path.resolve(fileURLToPath(trimmed));
  // A Windows drive letter ("C:\...") looks like a scheme but is a path.
  if (SCHEME.test(trimmed) && !/^[A-Za-z]:[\\/]/.test(trimmed)) {
    throw new SyncError('usage', `Unsupported table location "${location}": only local paths and file:// URIs are supported.`, {
      table: location,
      hint: 'Give a local folder that contains _delta_log/.',
    });
  }
  return path.resolve(trimmed);
}

/** Decodes a URI-encoded relative path once; a malformed escape is taken literally. */
export function decodeRelativePath(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}

/**
 * Resolves an action path to an absolute local file path. Relative paths are relative to
 * `baseDir` (the table root for data files, `_delta_log/_sidecars` for sidecars).
 * `file:` URIs are converted (which decodes them once); other schemes (s3://, abfss://)
 * cannot be read locally and fail with a `delta-file` error naming the path.
 */
export function resolveActionPath(baseDir: string, actionPath: string, table?: string): string {
  if (actionPath.startsWith('file:')) {
    try {
      return fileURLToPath(actionPath);
    } catch (cause) {
      throw new SyncError('delta-file', `Cannot interpret file URI "${actionPath}" in the Delta log.`, { table, cause });
    }
  }
  if (SCHEME.test(actionPath) && !/^[A-Za-z]:[\\/]/.test(actionPath)) {
    throw new SyncError('delta-file', `The Delta log references "${actionPath}", which is not a local file.`, {
      table,
      hint: 'Only tables whose files are on the local file system can be read locally.',
    });
  }
  const decoded = decodeRelativePath(actionPath);
  return path.isAbsolute(decoded) ? decoded : path.join(baseDir, decoded);
}

/** The `_delta_log` folder of a table root. */
export function logDir(tableRoot: string): string {
  return path.join(tableRoot, '_delta_log');
}
