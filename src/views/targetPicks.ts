/**
 * The Targets view's rows as the palette's pickers offer them (Show Rows, Copy Neon
 * Reference): the same children the view lists (`targetsChildren`, which the tree data
 * provider uses too), labelled as the view labels them. Plain TS.
 */
import type { NeonModel } from './NeonModel';
import type { TreePick } from './pickTreeNode';
import { tableRowsBelow, type TableLister, type TargetNode, type TargetsModel } from './TargetsModel';

/** The rows under `node` in the Targets view (undefined: its top level). */
export function targetsChildren(model: TargetsModel, listTables?: TableLister, neon?: NeonModel): (node?: TargetNode) => Promise<TargetNode[]> {
  return async (node) => {
    if (!node) return [...model.children(), ...(neon ? ((await neon.roots()) as TargetNode[]) : [])];
    if (neon && (node.kind === 'neon-account' || node.kind === 'neon-project' || node.kind === 'neon-branch')) return (await neon.children(node)) as TargetNode[];
    return (listTables ? await tableRowsBelow(node, listTables, (name) => model.address(name)) : undefined) ?? [];
  };
}

function label(n: TargetNode): { label: string; description?: string } {
  switch (n.kind) {
    case 'sandbox':
      return { label: n.label, description: n.detail };
    case 'connection':
      return { label: n.info.name, description: n.info.summary };
    case 'schema':
    case 'neon-schema':
      return { label: n.schema, description: `${n.tables.length} table${n.tables.length === 1 ? '' : 's'}` };
    case 'table':
      return { label: n.underSchema ? n.table : `${n.schema}.${n.table}`, description: `${n.estimated ? '~' : ''}${n.rows} rows` };
    case 'neon-account':
      return { label: n.label };
    case 'neon-project':
      return { label: n.name, description: `${n.projectId} · ${n.region}` };
    case 'neon-branch':
      return { label: n.name, ...(n.isDefault ? { description: 'default' } : {}) };
    case 'neon-database':
      return { label: n.name, description: n.reference };
    case 'message':
      return { label: n.label };
  }
}

const problem = (n: TargetNode): string | undefined => (n.kind === 'message' && n.severity === 'error' ? n.label : undefined);

/** A table of any target: the sandbox's, a saved connection's (through its schema), a Neon database's. */
export function targetTablePick(children: (node?: TargetNode) => Promise<TargetNode[]>, title: string): TreePick<TargetNode> {
  return {
    title,
    children,
    wanted: (n) => n.kind === 'table',
    opens: (n) => ['sandbox', 'connection', 'schema', 'neon-account', 'neon-project', 'neon-branch', 'neon-database', 'neon-schema'].includes(n.kind),
    label,
    problem,
  };
}

/** A database of the Neon account (preview branches made by this tool left out), for its `neon:` reference. */
export function neonDatabasePick(children: (node?: TargetNode) => Promise<TargetNode[]>, title: string): TreePick<TargetNode> {
  return {
    title,
    // Only the Neon part of the view.
    children: async (node) => (await children(node)).filter((n) => node !== undefined || n.kind === 'neon-account'),
    wanted: (n) => n.kind === 'neon-database',
    opens: (n) => n.kind === 'neon-account' || n.kind === 'neon-project' || (n.kind === 'neon-branch' && !n.previewOf),
    label,
    problem,
  };
}
