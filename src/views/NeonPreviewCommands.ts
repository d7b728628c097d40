import * as vscode from 'vscode';
import { channelLogger } from '../platform/channelLogger';
import { isSyncError, SyncError } from '../sync/errors';
import type { Mapping } from '../sync/mapping/mappingSchema';
import { parseNeonReference } from '../sync/mapping/neonReference';
import { neonClientFor } from '../sync/neon/resolveNeonConnection';
import { applyBranchToParent, discardPreviewBranch, listPreviewBranches, previewApplyToParent, previewOnBranch } from '../sync/open/neonBranchPreview';
import type { BranchPreviewResult } from '../sync/open/neonBranchPreview';
import type { RunResult } from '../sync/ports/reports';
import { closeIfClosable } from '../engine/SyncEngine';
import type { RunnerHandle } from '../engine/SyncEngine';
import { previewColumns, RunnerPreviewSource } from './RunnerPreviewSource';
import { errorText } from './toProtocolError';
import { registerCommand } from './commandRegistry';
import type { MappingNode } from './MappingsModel';
import { PreviewPanel } from './PreviewPanel';
import type { Services } from './Services';

type ValidMapping = MappingNode & { kind: 'mapping' };

/** A mapping node from the tree, or the one Neon mapping / a pick among them. */
async function neonMappingFrom(arg: unknown, s: Services): Promise<ValidMapping> {
  const node = arg as MappingNode | undefined;
  if (node && typeof node === 'object' && node.kind === 'mapping') return node;
  const neon = (await s.mappingsModel.children()).filter((n): n is ValidMapping => n.kind === 'mapping' && parseNeonReference(n.mapping.target.connection).ok);
  if (neon.length === 0) throw new SyncError('usage', 'No mapping in this workspace targets a Neon branch.', { hint: 'Set a mapping\'s target.connection to neon:<project>/<branch>/<database> (right-click a Neon database in Targets > Copy Neon Reference).' });
  if (neon.length === 1) return neon[0] as ValidMapping;
  const pick = await vscode.window.showQuickPick(neon.map((n) => ({ label: n.mapping.name, description: n.mapping.target.connection, node: n })), { title: 'Select a mapping' });
  if (!pick) throw new SyncError('cancelled', 'No mapping selected.');
  return pick.node;
}

function counts(r: RunResult): string {
  return r.status === 'up-to-date' ? `up to date at version ${r.toVersion}` : `${r.mode} sync to version ${r.toVersion}: ${r.inserted} inserted, ${r.updated} updated, ${r.deleted} deleted`;
}

/** Picks one of the mapping's preview branches (the newest first). */
async function pickPreview(s: Services, mapping: Mapping, title: string): Promise<string> {
  const ref = parseNeonReference(mapping.target.connection);
  if (!ref.ok) throw new SyncError('mapping', `${mapping.name} does not target a Neon branch.`, { setting: 'target.connection' });
  const client = await neonClientFor(s.neon.resolveOptions());
  const project = await client.findProject(ref.ref.project);
  const previews = (await listPreviewBranches(client, project.id, mapping.name)).reverse();
  if (previews.length === 0) throw new SyncError('usage', `${mapping.name} has no preview branch.`, { hint: 'Run "Delta Sync: Preview on a Neon Branch" first.' });
  const pick = await vscode.window.showQuickPick(previews.map((p) => ({ label: p.branch.name, description: `created ${p.branch.created_at}`, id: p.branch.id })), { title });
  if (!pick) throw new SyncError('cancelled', 'No preview branch selected.');
  return pick.id;
}

/** Runs `fn` in a cancellable notification; the token aborts the signal. */
function withCancellable<T>(title: string, fn: (signal: AbortSignal, report: (m: string) => void) => Promise<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
    const abort = new AbortController();
    const sub = token.onCancellationRequested(() => abort.abort(new SyncError('cancelled', 'Cancelled by the user.')));
    try {
      return await fn(abort.signal, (message) => progress.report({ message }));
    } finally {
      sub.dispose();
    }
  });
}

async function applyFlow(s: Services, node: ValidMapping, branch: string): Promise<void> {
  const { mapping } = node;
  const logger = channelLogger(s.log);
  const r = await withCancellable(`Delta Sync: applying ${mapping.name} to the parent branch`, async (signal, report) => {
    const source = await s.engine.openSource(mapping.source);
    try {
      return await applyBranchToParent({ mapping, source, branch, neon: { ...s.neon.resolveOptions(), onProgress: report }, logger, signal, onEvent: (e) => (e.type === 'phase' ? report(e.phase) : undefined) });
    } finally {
      await closeIfClosable(source);
    }
  });
  s.log.info(`${mapping.name}: applied to ${r.parent.name}: ${counts(r.result)}`);
  PreviewPanel.closeFor(mapping.name);
  s.mappingsModel.invalidate(node.file);
  s.mappings.refresh();
  s.targets.refresh();
  void vscode.window.showInformationMessage(`Delta Sync: applied ${mapping.name} to ${r.parent.name}: ${counts(r.result)}.${r.discarded ? ` Deleted preview branch ${r.branch.name}.` : ''}`);
}

async function discardFlow(s: Services, node: ValidMapping, branch: string): Promise<void> {
  const gone = await discardPreviewBranch({ mapping: node.mapping, branch, neon: s.neon.resolveOptions(), logger: channelLogger(s.log) });
  s.targets.refresh();
  void vscode.window.showInformationMessage(`Delta Sync: deleted preview branch ${gone.name}.`);
}

/** The connection string with its password masked, for showing (the real one is only copied). */
export function maskPassword(uri: string): string {
  try {
    const u = new URL(uri);
    if (u.password) u.password = '********';
    return u.toString();
  } catch {
    return uri.replace(/:\/\/([^:@/]+):[^@]*@/, '://$1:********@');
  }
}

/** The toast of a preview branch when its rows cannot be shown: counts and the three actions. */
async function branchToast(s: Services, node: ValidMapping, r: BranchPreviewResult): Promise<void> {
  const choice = await vscode.window.showInformationMessage(
    `Delta Sync: preview branch ${r.branch.name} of ${r.parent.name}: ${counts(r.result)}. Point your app or psql at the branch, then apply to ${r.parent.name} or discard.`,
    'Copy Connection String', 'Apply to Parent', 'Discard',
  );
  if (choice === 'Copy Connection String') {
    await vscode.env.clipboard.writeText(r.connectionUri);
    void vscode.window.showInformationMessage(`Copied the connection string of ${r.branch.name} (it holds the role's password).`);
  } else if (choice === 'Apply to Parent') {
    await applyFlow(s, node, r.branch.id);
  } else if (choice === 'Discard') {
    await discardFlow(s, node, r.branch.id);
  }
}

/**
 * Preview on a Neon branch for one mapping (the command and the Preview panel's button):
 * the sync into a new child branch in a cancellable notification, then the Preview panel
 * with what Apply to Parent will change row by row (the mapping's preview on the parent,
 * pinned to the version the branch reached: the same rows the sync changed on the
 * branch), the branch's connection string with a copy button, Apply to Parent and Discard.
 */
export async function runPreviewOnBranch(s: Services, node: ValidMapping): Promise<void> {
  const { mapping } = node;
  const logger = channelLogger(s.log);
  const r = await withCancellable(`Delta Sync: preview of ${mapping.name} on a Neon branch`, async (signal, report) => {
    const source = await s.engine.openSource(mapping.source);
    try {
      return await previewOnBranch({ mapping, source, neon: { ...s.neon.resolveOptions(), onProgress: report }, logger, signal, onEvent: (e) => (e.type === 'phase' ? report(e.phase) : undefined) });
    } finally {
      await closeIfClosable(source);
    }
  });
  s.log.info(`${mapping.name}: preview branch ${r.branch.name} (${r.branch.id}) of ${r.parent.name}: ${counts(r.result)}`);
  s.targets.refresh();
  const pageSize = s.settings.previewPageSize();
  let h: RunnerHandle | undefined;
  try {
    // A runner on the parent (the mapping's own target) pages the rows while the panel is open.
    h = await s.engine.openRunner(mapping);
    const runner = h.runner;
    const { report, columns } = await withCancellable(`Delta Sync: listing what applying ${mapping.name} to ${r.parent.name} will change`, async (signal) => {
      const report = await previewApplyToParent(runner, r.result, { limit: pageSize, checks: true, signal });
      const key = mapping.key ?? Object.keys(report.rows[0]?.key ?? {});
      return { report, columns: await previewColumns(mapping, (h as RunnerHandle).source, report.toVersion, key) };
    });
    const release = h.release;
    const source = new RunnerPreviewSource(mapping, report, columns, runner,
      async () => {
        void applyFlow(s, node, r.branch.id).catch((e: unknown) => {
          s.log.error(`${mapping.name}: apply to ${r.parent.name}: ${errorText(e)}`);
          if (!(isSyncError(e) && e.kind === 'cancelled')) void vscode.window.showErrorMessage(`Delta Sync: ${errorText(e)}`);
        });
      },
      () => void release(),
      undefined,
      {
        info: { name: r.branch.name, id: r.branch.id, parent: r.parent.name, connection: maskPassword(r.connectionUri), ran: counts(r.result) },
        connectionUri: r.connectionUri,
        discard: () => discardFlow(s, node, r.branch.id),
      },
    );
    h = undefined;
    PreviewPanel.pageSize = pageSize;
    PreviewPanel.show(s.extensionUri, s.log, mapping.name, source, `Preview on branch: ${mapping.name}`);
  } catch (e) {
    // The branch is there and has the changes (also when the listing was cancelled): offer its actions without the row list.
    s.log.warn(`${mapping.name}: could not list what applying to ${r.parent.name} will change: ${errorText(e)}`);
    await branchToast(s, node, r);
  } finally {
    await h?.release();
  }
}

/** Preview on a Neon branch, Apply to parent, Discard: commands on a mapping. */
export function registerNeonPreviewCommands(s: Services): vscode.Disposable[] {
  return [
    registerCommand('deltaSync.mappings.previewOnBranch', async (arg) => {
      await runPreviewOnBranch(s, await neonMappingFrom(arg, s));
    }, s.log),
    registerCommand('deltaSync.mappings.applyPreviewBranch', async (arg) => {
      const node = await neonMappingFrom(arg, s);
      await applyFlow(s, node, await pickPreview(s, node.mapping, `Apply which preview of ${node.mapping.name} to its parent?`));
    }, s.log),
    registerCommand('deltaSync.mappings.discardPreviewBranch', async (arg) => {
      const node = await neonMappingFrom(arg, s);
      await discardFlow(s, node, await pickPreview(s, node.mapping, `Discard which preview branch of ${node.mapping.name}?`));
    }, s.log),
  ];
}
