import { isAbsolute, join } from 'node:path';

/**
 * A `deltaSync.deltaFolders` list without `folder` (absolute, or as configured); entries are
 * relative to `base` (the workspace folder) unless absolute. Pure, for Remove Folder.
 */
export function withoutDeltaFolder(list: readonly unknown[], folder: string, base: string | undefined): string[] {
  const same = (p: string): boolean => p === folder || (base !== undefined && !isAbsolute(p) && join(base, p) === folder);
  return list.filter((p): p is string => typeof p === 'string' && !same(p));
}
