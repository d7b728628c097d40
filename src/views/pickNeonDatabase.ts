import * as vscode from 'vscode';
import { SyncError } from '../sync/errors';
import type { NeonModel, NeonNode } from './NeonModel';

/** The label of the target-connection pick entry that leads here. */
export const NEON_PICK_LABEL = '$(cloud) Neon branch...';

async function pickNode<K extends NeonNode['kind']>(neon: NeonModel, parent: NeonNode, kind: K, title: string, describe: (n: Extract<NeonNode, { kind: K }>) => { label: string; description?: string }): Promise<Extract<NeonNode, { kind: K }> | undefined> {
  const children = await neon.children(parent);
  const problem = children.find((c) => c.kind === 'message');
  if (problem && problem.kind === 'message' && problem.severity === 'error') throw new SyncError('connection', problem.label);
  const nodes = children.filter((c): c is Extract<NeonNode, { kind: K }> => c.kind === kind);
  if (nodes.length === 0) throw new SyncError('usage', `${title}: nothing to choose from${problem && problem.kind === 'message' ? ` (${problem.label})` : ''}.`);
  const pick = await vscode.window.showQuickPick(nodes.map((n) => ({ ...describe(n), node: n })), { title, ignoreFocusOut: true });
  return pick?.node;
}

/**
 * Project -> branch -> database of the stored Neon account, as quick picks; resolves to the
 * `neon:` reference for a mapping's target.connection (undefined when the user cancels).
 * Preview branches made by this tool are left out.
 */
export async function pickNeonDatabase(neon: NeonModel, title: string): Promise<string | undefined> {
  const [account] = await neon.roots();
  if (!account) throw new SyncError('auth', 'No Neon account.', { hint: 'Add one first: Targets > Add Neon Account.' });
  const project = await pickNode(neon, account, 'neon-project', `${title}: Neon project`, (p) => ({ label: p.name, description: `${p.projectId} · ${p.region}` }));
  if (!project) return undefined;
  const branches = (await neon.children(project)).filter((b) => !(b.kind === 'neon-branch' && b.previewOf));
  const branchPick = await vscode.window.showQuickPick(
    branches.flatMap((b) => (b.kind === 'neon-branch' ? [{ label: b.name, description: [b.isDefault ? 'default' : undefined, b.parent ? `from ${b.parent}` : undefined].filter(Boolean).join(' · '), node: b }] : [])),
    { title: `${title}: branch`, ignoreFocusOut: true },
  );
  if (!branchPick) return undefined;
  const db = await pickNode(neon, branchPick.node, 'neon-database', `${title}: database`, (d) => ({ label: d.name, description: `owner ${d.owner}` }));
  return db?.reference;
}
