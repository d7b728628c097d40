import type { Branch } from '@neondatabase/api-client';
import { SyncError, isSyncError } from '../errors';
import type { Mapping } from '../mapping/mappingSchema';
import type { NeonBranchInfo, NeonClient } from '../neon/NeonClient';
import { parseNeonReference } from '../mapping/neonReference';
import type { NeonReference } from '../mapping/neonReference';
import { branchConnection, neonClientFor } from '../neon/resolveNeonConnection';
import type { NeonResolveOptions } from '../neon/resolveNeonConnection';
import { createPool } from '../postgres/createPool';
import type { ChangeSource } from '../ports/ChangeSource';
import type { SyncEventListener } from '../ports/events';
import type { Logger } from '../ports/Logger';
import { silentLogger } from '../ports/Logger';
import type { PreviewReport, RunResult } from '../ports/reports';
import { SyncRunner } from '../run/SyncRunner';
import { mappingTarget } from './openTarget';

/**
 * Preview on a Neon branch: the mapping's sync runs into a copy-on-write child of the
 * target branch, the user looks at it (its connection string is returned), then
 * `applyBranchToParent` runs the same sync on the parent for the same versions, or
 * `discardPreviewBranch` deletes the child. The child carries annotations saying which
 * mapping made it, from which parent, and the parent's checkpoint when it was made, so
 * previews can be listed and an apply refused when the parent moved since.
 */

/** Annotation keys on the branches this tool creates. */
export const PREVIEW_ANNOTATION = {
  createdBy: 'delta-neon-sync/created-by',
  mapping: 'delta-neon-sync/mapping',
  parent: 'delta-neon-sync/parent-branch',
  parentCheckpoint: 'delta-neon-sync/parent-checkpoint',
} as const;

export const PREVIEW_CREATED_BY = 'delta-neon-sync preview';
export const PREVIEW_BRANCH_PREFIX = 'delta-sync-preview-';
const NO_CHECKPOINT = 'none';

export interface BranchPreviewOptions {
  mapping: Mapping;
  source: ChangeSource;
  /** The API key, URL and progress (the same as for resolving the neon: reference). */
  neon: NeonResolveOptions;
  logger?: Logger;
  signal?: AbortSignal;
  onEvent?: SyncEventListener;
  toVersion?: number;
  retryForMs?: number;
  /** For the branch name (tests). */
  now?: () => Date;
  /**
   * Also list what Apply to Parent will change, row by row (`BranchPreviewResult.changes`):
   * the first `limit` rows of the mapping's preview against the parent, pinned to the
   * version the branch reached.
   */
  changes?: { limit: number; checks?: boolean };
}

export interface PreviewBranchRef {
  projectId: string;
  branch: Branch;
  parent: Branch;
  database: string;
  role: string;
  /** The branch's connection URI, with the role's password: show it, never store it. */
  connectionUri: string;
  /** The parent's checkpoint version when the branch was made (null: not loaded yet). */
  parentCheckpoint: bigint | null;
}

export interface BranchPreviewResult extends PreviewBranchRef {
  result: RunResult;
  /** With `changes`: what Apply to Parent will change (the same rows the sync changed on the branch). */
  changes?: PreviewReport;
}

/**
 * What Apply to Parent will change, row by row: the mapping's preview against the parent
 * branch (unchanged since the branch was made, which apply checks) pinned to the version
 * the preview branch reached. Its totals are the counts of the sync that ran on the branch.
 */
export function previewApplyToParent(runner: Pick<SyncRunner, 'preview'>, reached: { toVersion: number }, opts: { limit: number; offset?: number; checks?: boolean; signal?: AbortSignal }): Promise<PreviewReport> {
  return runner.preview({ ...opts, toVersion: reached.toVersion });
}

export interface ApplyToParentResult {
  projectId: string;
  parent: Branch;
  branch: Branch;
  result: RunResult;
  /** Whether the preview branch was deleted after the apply. */
  discarded: boolean;
}

function neonRef(mapping: Mapping): NeonReference {
  const parsed = parseNeonReference(mapping.target.connection);
  if (!parsed.ok) {
    throw new SyncError('mapping', `Preview on a branch needs a mapping whose target.connection is a Neon branch (neon:<project>/<branch>/<database>); "${mapping.name}" has "${mapping.target.connection.startsWith('neon:') ? mapping.target.connection : 'another kind of connection'}".`, {
      setting: 'target.connection',
      ...(parsed.reason.startsWith('must start')
        ? { hint: 'Point the mapping at a Neon branch, e.g. "connection": "neon:<project-id>/main/neondb"; {action} lists the projects.', action: { id: 'neon-projects' as const } }
        : { hint: `The reference ${parsed.reason}.` }),
    });
  }
  return parsed.ref;
}

/** `delta-sync-preview-<mapping>-<yyyymmdd-hhmmss>` (UTC). */
export function previewBranchName(mapping: string, at: Date): string {
  const t = at.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${PREVIEW_BRANCH_PREFIX}${mapping}-${t}`;
}

/** The checkpoint version of the mapping's pipeline in one database (connect, read, close). */
async function checkpointAt(url: string, mapping: Mapping, logger: Logger): Promise<bigint | null> {
  const pool = createPool(url);
  try {
    return (await mappingTarget(pool, mapping.target, logger).readCheckpoint(mapping.name))?.version ?? null;
  } finally {
    await pool.end();
  }
}

function checkpointText(v: bigint | null): string {
  return v === null ? NO_CHECKPOINT : String(v);
}

function describeCheckpoint(v: bigint | null): string {
  return v === null ? 'not loaded yet (no checkpoint)' : `at version ${v}`;
}

/**
 * A client for cleaning up: without the caller's signal, which may be the very abort that
 * makes the cleanup necessary (its calls are still bounded by the retry budget).
 */
function cleanupClient(neon: NeonResolveOptions, logger: Logger): Promise<NeonClient> {
  const { signal: _aborted, ...rest } = neon;
  return neonClientFor({ ...rest, logger });
}

/** Deletes a branch and waits until it is gone; never throws (logs what went wrong). */
async function deleteQuietly(client: NeonClient, projectId: string, branch: Branch, logger: Logger): Promise<boolean> {
  try {
    const ops = await client.deleteBranch(projectId, branch.id);
    await client.waitForOperations(projectId, ops, { what: `deleting preview branch ${branch.name}` });
    return true;
  } catch (e) {
    logger.warn(`Could not delete the preview branch ${branch.name} (${branch.id}): ${(e instanceof Error ? e.message : String(e)).replace(/\.$/, '')}. Delete it with: delta-neon-sync neon discard ${projectId} ${branch.id}`);
    return false;
  }
}

/** The mapping's Neon project through the API, with the options and logger the branch flows share. */
async function openNeonProject(opts: { mapping: Mapping; neon: NeonResolveOptions; signal?: AbortSignal; logger?: Logger }): Promise<{
  logger: Logger; ref: NeonReference; neon: NeonResolveOptions; client: NeonClient; project: Awaited<ReturnType<NeonClient['findProject']>>;
}> {
  const logger = opts.logger ?? silentLogger;
  const ref = neonRef(opts.mapping);
  const neon: NeonResolveOptions = { ...opts.neon, ...(opts.signal ? { signal: opts.signal } : {}), logger };
  const client = await neonClientFor(neon);
  return { logger, ref, neon, client, project: await client.findProject(ref.project) };
}

/**
 * Creates a child branch of the mapping's target branch (annotated), waits for it, and
 * runs the mapping's sync into it. Any failure or cancel after the branch exists deletes
 * it again (with a client that ignores the aborted signal), so none is left behind.
 */
export async function previewOnBranch(opts: BranchPreviewOptions): Promise<BranchPreviewResult> {
  const { mapping } = opts;
  const { logger, ref, neon, client, project } = await openNeonProject(opts);
  const { branch: parent } = await client.findBranch(project.id, ref.branch);

  // The parent's checkpoint, read before the branch is made (and checked on the branch after).
  const parentConn = await branchConnection(client, project.id, parent, ref.database, ref, neon);
  const parentCheckpoint = await checkpointAt(parentConn.url, mapping, logger);

  const name = previewBranchName(mapping.name, (opts.now ?? (() => new Date()))());
  const created = await client.createBranch(project.id, {
    parentId: parent.id, name,
    annotations: {
      [PREVIEW_ANNOTATION.createdBy]: PREVIEW_CREATED_BY,
      [PREVIEW_ANNOTATION.mapping]: mapping.name,
      [PREVIEW_ANNOTATION.parent]: parent.id,
      [PREVIEW_ANNOTATION.parentCheckpoint]: checkpointText(parentCheckpoint),
    },
  });
  const branch = created.branch;
  logger.info(`Created preview branch ${branch.name} (${branch.id}) of ${parent.name}.`);
  opts.neon.onProgress?.(`Created preview branch ${branch.name} (${branch.id}) of ${parent.name}.`);
  const cleanup = await cleanupClient(opts.neon, logger);
  let kept = false;
  try {
    await client.waitForOperations(project.id, created.operations, { what: `creating preview branch ${name}` });
    const conn = await branchConnection(client, project.id, branch, ref.database, ref, neon);
    const onBranch = await checkpointAt(conn.url, mapping, logger);
    if (onBranch !== parentCheckpoint) {
      throw new SyncError('target', `The parent branch ${parent.name} moved while the preview branch was being made: its checkpoint for ${mapping.name} was ${describeCheckpoint(parentCheckpoint)}, the branch has it ${describeCheckpoint(onBranch)}.`, {
        setting: 'target.connection', retry: 'manual', hint: 'Another sync ran on the parent at the same time; run the preview again once it is done.',
      });
    }
    const pool = createPool(conn.url);
    let result: RunResult;
    try {
      const runner = new SyncRunner(mapping, opts.source, mappingTarget(pool, mapping.target, logger), logger);
      result = await runner.run({
        mode: 'auto',
        ...(opts.toVersion !== undefined ? { toVersion: opts.toVersion } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
        ...(opts.retryForMs !== undefined ? { retryForMs: opts.retryForMs } : {}),
      });
    } finally {
      await pool.end();
    }
    let changes: PreviewReport | undefined;
    if (opts.changes) {
      const parentPool = createPool(parentConn.url);
      try {
        const onParent = new SyncRunner(mapping, opts.source, mappingTarget(parentPool, mapping.target, logger), logger);
        changes = await previewApplyToParent(onParent, result, { ...opts.changes, ...(opts.signal ? { signal: opts.signal } : {}) });
      } finally {
        await parentPool.end();
      }
    }
    kept = true;
    return { projectId: project.id, branch, parent, database: ref.database, role: conn.role, connectionUri: conn.url, parentCheckpoint, result, ...(changes ? { changes } : {}) };
  } finally {
    if (!kept) {
      const gone = await deleteQuietly(cleanup, project.id, branch, logger);
      if (gone) logger.info(`Deleted preview branch ${branch.name}: the preview did not finish.`);
    }
  }
}

/** Branches this tool created in a project (optionally for one mapping), oldest first. */
export async function listPreviewBranches(client: NeonClient, projectId: string, mapping?: string): Promise<NeonBranchInfo[]> {
  const all = await client.listBranches(projectId);
  return all
    .filter((b) => b.annotations[PREVIEW_ANNOTATION.createdBy] === PREVIEW_CREATED_BY && (mapping === undefined || b.annotations[PREVIEW_ANNOTATION.mapping] === mapping))
    .sort((a, b) => a.branch.created_at.localeCompare(b.branch.created_at));
}

/** A preview branch by name or id; anything this tool did not create is refused. */
async function findPreviewBranch(client: NeonClient, projectId: string, ref: string, mapping: string | undefined): Promise<NeonBranchInfo> {
  const found = await client.findBranch(projectId, ref);
  const madeFor = found.annotations[PREVIEW_ANNOTATION.mapping];
  if (found.annotations[PREVIEW_ANNOTATION.createdBy] !== PREVIEW_CREATED_BY || !madeFor) {
    throw new SyncError('usage', `Branch ${found.branch.name} (${found.branch.id}) is not a preview branch made by delta-neon-sync; it is left alone.`, {
      hint: '{action} lists the preview branches.', action: { id: 'neon-previews' },
    });
  }
  if (mapping !== undefined && madeFor !== mapping) {
    throw new SyncError('usage', `Preview branch ${found.branch.name} was made for mapping "${madeFor}", not "${mapping}".`, {
      hint: `Use the mapping file of "${madeFor}", or a preview branch of "${mapping}" ({action} lists them).`, action: { id: 'neon-previews' },
    });
  }
  return found;
}

export interface ApplyToParentOptions extends Omit<BranchPreviewOptions, 'toVersion' | 'now'> {
  /** The preview branch, by name or id. */
  branch: string;
  /** Delete the preview branch once the parent has the changes (default true). */
  discard?: boolean;
}

/**
 * Runs the mapping's sync on the preview branch's parent up to the version the preview
 * reached, after checking that the parent's checkpoint is still the one the branch was
 * made from (else refused: the preview no longer shows what the apply would do).
 */
export async function applyBranchToParent(opts: ApplyToParentOptions): Promise<ApplyToParentResult> {
  const { mapping } = opts;
  const { logger, ref, neon, client, project } = await openNeonProject(opts);
  const preview = await findPreviewBranch(client, project.id, opts.branch, mapping.name);
  const branch = preview.branch;
  const parentId = preview.annotations[PREVIEW_ANNOTATION.parent] ?? branch.parent_id;
  if (!parentId) throw new SyncError('target', `Preview branch ${branch.name} has no parent branch.`, { hint: 'Discard it and preview again.' });
  const parent = await client.getBranch(project.id, parentId);
  const recordedText = preview.annotations[PREVIEW_ANNOTATION.parentCheckpoint] ?? NO_CHECKPOINT;
  const recorded = recordedText === NO_CHECKPOINT ? null : BigInt(recordedText);

  const branchConn = await branchConnection(client, project.id, branch, ref.database, ref, neon);
  const reached = await checkpointAt(branchConn.url, mapping, logger);
  if (reached === null) {
    throw new SyncError('target', `The preview on branch ${branch.name} did not finish: it has no checkpoint for ${mapping.name}, so there is nothing to apply.`, {
      retry: 'manual', hint: 'Discard it ({action}) and preview again.', action: { id: 'neon-discard', arg: branch.name },
    });
  }
  const parentConn = await branchConnection(client, project.id, parent, ref.database, ref, neon);
  const now = await checkpointAt(parentConn.url, mapping, logger);
  if (now !== recorded) {
    throw new SyncError('target', `Refused: the parent branch ${parent.name} moved since preview branch ${branch.name} was made. Its checkpoint for ${mapping.name} was ${describeCheckpoint(recorded)} then and is ${describeCheckpoint(now)} now, so the preview no longer shows what applying would change.`, {
      setting: 'target.connection', retry: 'never',
      hint: 'Discard the preview branch ({action}) and preview again from where the parent is now.', action: { id: 'neon-discard', arg: branch.name },
    });
  }
  const pool = createPool(parentConn.url);
  let result: RunResult;
  try {
    const runner = new SyncRunner(mapping, opts.source, mappingTarget(pool, mapping.target, logger), logger);
    result = await runner.run({
      mode: recorded === null ? 'initial' : 'incremental', toVersion: Number(reached),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      ...(opts.retryForMs !== undefined ? { retryForMs: opts.retryForMs } : {}),
    });
  } finally {
    await pool.end();
  }
  const discarded = opts.discard === false ? false : await deleteQuietly(await cleanupClient(opts.neon, logger), project.id, branch, logger);
  return { projectId: project.id, parent, branch, result, discarded };
}

/** Deletes a preview branch (only one this tool made) and waits until it is gone. */
export async function discardPreviewBranch(opts: { mapping?: Mapping; project?: string; branch: string; neon: NeonResolveOptions; logger?: Logger }): Promise<Branch> {
  const projectRef = opts.project ?? (opts.mapping ? neonRef(opts.mapping).project : undefined);
  if (!projectRef) throw new SyncError('usage', 'give --mapping FILE or the project of the preview branch');
  const client = await neonClientFor({ ...opts.neon, ...(opts.logger ? { logger: opts.logger } : {}) });
  const project = await client.findProject(projectRef);
  const { branch } = await findPreviewBranch(client, project.id, opts.branch, opts.mapping?.name);
  try {
    const ops = await client.deleteBranch(project.id, branch.id);
    await client.waitForOperations(project.id, ops, { what: `deleting preview branch ${branch.name}` });
  } catch (e) {
    throw isSyncError(e) ? e.withContext(`discarding preview branch ${branch.name}`) : e;
  }
  return branch;
}
