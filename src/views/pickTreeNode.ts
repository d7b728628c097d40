/**
 * The argument of a tree command run from the palette: the rows of the tree it belongs to,
 * offered level by level as quick picks (a connection, then its schema, then the table), as
 * the user would expand them in the view. Plain TS over the Prompter port.
 */
import { SyncError } from '../sync/errors';
import type { PickItem, Prompter } from './PostgresConnectionForm';

export interface TreePick<N> {
  /** The command's title, said in every pick ("Show Rows"). */
  title: string;
  /** The rows under `node`, as the view lists them (undefined: the top level). */
  children(node?: N): Promise<N[]>;
  /** A row the command acts on. */
  wanted(node: N): boolean;
  /** A row to open on the way to one (a connection, a schema); rows neither wanted nor opened (columns, messages) are not offered. */
  opens(node: N): boolean;
  label(node: N): PickItem;
  /** The text of an error row (a connection whose tables cannot be listed): said when a level offers nothing else. */
  problem?(node: N): string | undefined;
}

/** How deep a pick goes before it gives up (a tree that opens forever is a bug, not a wait). */
const MAX_DEPTH = 10;

/**
 * The row the user picks, level by level; undefined when a pick is dismissed. A level with a
 * single row to open (the only connection) is opened without asking. A level that offers
 * nothing fails with what its error rows say, naming where it looked.
 */
export async function pickTreeNode<N>(p: Prompter, t: TreePick<N>): Promise<N | undefined> {
  let parent: N | undefined;
  const trail: string[] = [];
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const under = parent;
    const rows = await p.progress(`${t.title}: listing ${trail.length ? trail.join(' / ') : 'the view'}`, () => t.children(under));
    const offered = rows.filter((n) => t.wanted(n) || t.opens(n));
    if (offered.length === 0) {
      const problems = rows.map((n) => t.problem?.(n)).filter((x): x is string => x !== undefined);
      const where = trail.length ? ` under ${trail.join(' / ')}` : '';
      if (problems.length) throw new SyncError('connection', `${t.title}: nothing to choose from${where}: ${problems.join('; ')}`);
      throw new SyncError('usage', `${t.title}: nothing to choose from${where}.`);
    }
    const only = offered.length === 1 ? offered[0] : undefined;
    let node: N;
    if (only !== undefined && !t.wanted(only)) {
      node = only;
    } else {
      const items = offered.map((n) => ({ ...t.label(n), node: n }));
      const pick = await p.pick(items, { title: trail.length ? `${t.title}: ${trail.join(' / ')}` : t.title });
      if (!pick) return undefined;
      node = pick.node;
    }
    if (t.wanted(node)) return node;
    trail.push(t.label(node).label);
    parent = node;
  }
  throw new SyncError('usage', `${t.title}: no row to act on within ${MAX_DEPTH} levels (${trail.join(' / ')}).`);
}

/** A saved connection by name, picked; a clear error (with the command that adds one) when there is none. */
export async function pickConnectionName(p: Prompter, names: readonly string[], title: string, addHint: string): Promise<string | undefined> {
  if (names.length === 0) throw new SyncError('usage', `${title}: no saved connection.`, { hint: addHint });
  const pick = await p.pick(names.map((label) => ({ label })), { title });
  return pick?.label;
}
