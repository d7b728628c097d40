import { promises as fs } from 'node:fs';
import { SyncError } from '../errors';
import { fileKey, readCommit } from './logActions';
import type { CheckpointInfo, LogListing } from './logListing';
import { readCheckpoint } from './readCheckpoint';
import type { AddAction, LogActions, MetadataAction, ProtocolAction } from './types';

/**
 * Replaying a Delta transaction log to a version: the newest usable checkpoint, then the
 * commits after it (logListing.ts lists the log, logActions.ts decodes commits,
 * readCheckpoint.ts reads checkpoints).
 */

/** Table state at one version. */
export interface TableState {
  version: number;
  protocol: ProtocolAction;
  metadata: MetadataAction;
  /** Live files keyed by fileKey(path, dv), in the order they became live. Empty if not requested. */
  files: Map<string, AddAction>;
}

/**
 * How `version` can be reconstructed: from the newest complete checkpoint <= version whose
 * following commits are all present, or from commit 0. Returns undefined if impossible.
 */
function planReplay(listing: LogListing, version: number): { checkpoints: CheckpointInfo[]; fromCommit: number } | undefined {
  const commitsUpTo = (from: number): boolean => {
    for (let v = from; v <= version; v++) if (!listing.commits.has(v)) return false;
    return true;
  };
  const candidates = listing.checkpoints.filter((c) => c.version <= version).reverse();
  for (let i = 0; i < candidates.length; i++) {
    if (commitsUpTo(candidates[i].version + 1)) {
      // Keep older usable checkpoints as fallbacks if the newest one is unreadable.
      const usable = candidates.slice(i).filter((c) => commitsUpTo(c.version + 1));
      return { checkpoints: usable, fromCommit: candidates[i].version + 1 };
    }
  }
  if (commitsUpTo(0)) return { checkpoints: [], fromCommit: 0 };
  return undefined;
}

/** Oldest version whose state can be reconstructed from what is in the log, or undefined. */
export function oldestReconstructableVersion(listing: LogListing): number | undefined {
  const starts: number[] = [];
  if (listing.commits.has(0)) starts.push(0);
  for (const c of listing.checkpoints) starts.push(c.version);
  starts.sort((a, b) => a - b);
  return starts.length ? starts[0] : undefined;
}

/**
 * Replays the log to `version`: the newest usable checkpoint, then the commits after it.
 * The newest protocol and metaData win; a file is live when its last add (by path + DV id)
 * is not followed by a remove. Throws SyncError('time-travel') when `version` is outside
 * what the log can reconstruct, SyncError('delta-log') on gaps or a missing protocol/metaData.
 */
export async function replayTo(listing: LogListing, version: number, opts: { files: boolean }): Promise<TableState> {
  const table = listing.tableRoot;
  if (!Number.isInteger(version) || version < 0 || version > listing.latestVersion) {
    throw new SyncError('time-travel', `Version ${version} of ${table} does not exist; the latest version is ${listing.latestVersion}.`, {
      table,
      version,
      hint: `Choose a version between ${oldestReconstructableVersion(listing) ?? 0} and ${listing.latestVersion}.`,
    });
  }
  const plan = planReplay(listing, version);
  if (!plan) {
    const oldest = oldestReconstructableVersion(listing);
    if (oldest === undefined || version < oldest) {
      throw new SyncError(
        'time-travel',
        `Version ${version} of ${table} can no longer be read: its log was cleaned up${oldest === undefined ? '' : `; the oldest readable version is ${oldest}`}.`,
        { table, version, hint: 'Read a newer version (log files older than delta.logRetentionDuration are deleted).' },
      );
    }
    let missing = oldest + 1;
    while (missing <= version && listing.commits.has(missing)) missing++;
    throw new SyncError('delta-log', `The log of ${table} has a gap: commit ${missing} is missing and no checkpoint covers it.`, {
      table,
      version,
      hint: 'The transaction log is incomplete; restore the missing commit files.',
    });
  }

  let protocol: ProtocolAction | undefined;
  let metadata: MetadataAction | undefined;
  const files = new Map<string, AddAction>();
  let fromCommit = plan.fromCommit;
  if (plan.checkpoints.length) {
    let content: LogActions | undefined;
    let lastError: unknown;
    for (const cp of plan.checkpoints) {
      try {
        content = await readCheckpoint(listing, cp, opts.files);
        fromCommit = cp.version + 1;
        break;
      } catch (e) {
        lastError = e;
      }
    }
    if (!content) {
      // Every checkpoint failed: commits from 0 are the last resort.
      let all = true;
      for (let v = 0; v <= version; v++) if (!listing.commits.has(v)) all = false;
      if (!all) throw lastError;
      fromCommit = 0;
    } else {
      protocol = content.protocol;
      metadata = content.metadata;
      if (opts.files) for (const a of content.adds) files.set(fileKey(a.path, a.deletionVector), a);
    }
  }
  for (let v = fromCommit; v <= version; v++) {
    const c = await readCommit(listing, v);
    if (c.protocol) protocol = c.protocol;
    if (c.metadata) metadata = c.metadata;
    if (opts.files) {
      // Within one commit a (path, DV) appears at most once, so removes-then-adds is exact;
      // it also handles a DV update (remove old DV id, add new DV id of the same path).
      for (const r of c.removes) files.delete(fileKey(r.path, r.deletionVector));
      for (const a of c.adds) {
        const k = fileKey(a.path, a.deletionVector);
        files.delete(k); // re-add moves the file to the end, keeping "order became live"
        files.set(k, a);
      }
    }
  }
  if (!protocol || !metadata) {
    throw new SyncError('delta-log', `The log of ${table} up to version ${version} has no ${!protocol ? 'protocol' : 'metaData'} action.`, {
      table,
      version,
      hint: 'The transaction log is incomplete or damaged.',
    });
  }
  return { version, protocol, metadata, files };
}

/**
 * Timestamp (ms) of `version`: from its commit; when the commit was cleaned up but a
 * checkpoint of that version exists, the checkpoint file's modification time.
 */
export async function versionTimestamp(listing: LogListing, version: number): Promise<number> {
  if (listing.commits.has(version)) return (await readCommit(listing, version)).timestamp;
  const cp = listing.checkpoints.find((c) => c.version === version);
  if (cp) return Math.floor((await fs.stat(cp.files[0])).mtimeMs);
  throw new SyncError('time-travel', `Version ${version} of ${listing.tableRoot} has no commit file.`, {
    table: listing.tableRoot,
    version,
  });
}
