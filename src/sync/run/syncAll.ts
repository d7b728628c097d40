import { SyncError } from '../errors';
import type { Mapping } from '../mapping/mappingSchema';

/**
 * Many mappings at once (issue 14, point 5): the order `sync --all` runs them in, from each
 * mapping's `after` list, and the loop that runs them and keeps going past a failure. No
 * vscode here: the CLI uses it and "Sync All" in the extension can.
 */

export interface NamedMapping {
  mapping: Mapping;
  /** Where it came from (a file), for messages. */
  file?: string;
}

/**
 * Mappings in dependency order: every mapping after the ones its `after` names, otherwise
 * in the order given (stable). Refused, as a mapping error naming the files: two mappings
 * with one name, an `after` naming no mapping, and a cycle (with its path).
 */
export function orderMappings<T extends NamedMapping>(items: readonly T[]): T[] {
  const byName = new Map<string, T>();
  for (const it of items) {
    const other = byName.get(it.mapping.name);
    if (other) {
      throw new SyncError('mapping', `Two mappings are named "${it.mapping.name}"${other.file && it.file ? ` (${other.file} and ${it.file})` : ''}; names must be unique for sync --all.`, {
        setting: 'name',
        hint: 'rename one of them (the name keys its checkpoint in the target)',
      });
    }
    byName.set(it.mapping.name, it);
  }
  for (const it of items) {
    for (const dep of it.mapping.after ?? []) {
      if (!byName.has(dep)) {
        throw new SyncError('mapping', `Mapping "${it.mapping.name}"${it.file ? ` (${it.file})` : ''} runs after "${dep}", but no mapping has that name.`, {
          setting: 'after',
          hint: `names in "after" are the "name" of other mappings: ${[...byName.keys()].join(', ')}`,
        });
      }
    }
  }
  const out: T[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (it: T, trail: string[]): void => {
    const name = it.mapping.name;
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...trail.slice(trail.indexOf(name)), name];
      throw new SyncError('mapping', `The mappings' "after" lists form a cycle: ${cycle.join(' -> ')}; none of them can run first.`, {
        setting: 'after',
        hint: `remove one of these dependencies from "after" in ${cycle.slice(0, -1).map((n) => byName.get(n)?.file ?? n).join(', ')}`,
      });
    }
    state.set(name, 'visiting');
    for (const dep of it.mapping.after ?? []) visit(byName.get(dep) as T, [...trail, name]);
    state.set(name, 'done');
    out.push(it);
  };
  for (const it of items) visit(it, []);
  return out;
}

export type MappingOutcome<R> =
  | { name: string; status: 'succeeded'; result: R }
  | { name: string; status: 'failed'; error: SyncError }
  | { name: string; status: 'skipped'; reason: string };

/**
 * Runs `runOne` for each mapping in dependency order; a failure is recorded and the rest go
 * on, except mappings that (directly or not) come after a failed or skipped one: those are
 * skipped, saying which. Stops starting new ones once `signal` aborts.
 */
export async function runAllMappings<T extends NamedMapping, R>(
  items: readonly T[],
  runOne: (item: T) => Promise<R>,
  opts: { signal?: AbortSignal; onOutcome?(o: MappingOutcome<R>): void } = {},
): Promise<Array<MappingOutcome<R>>> {
  const ordered = orderMappings(items);
  const outcomes: Array<MappingOutcome<R>> = [];
  const notDone = new Set<string>();
  for (const it of ordered) {
    const name = it.mapping.name;
    let o: MappingOutcome<R>;
    const blocked = (it.mapping.after ?? []).filter((d) => notDone.has(d));
    if (opts.signal?.aborted) {
      o = { name, status: 'skipped', reason: 'stopped before it started' };
    } else if (blocked.length) {
      o = { name, status: 'skipped', reason: `runs after ${blocked.map((b) => `"${b}"`).join(', ')}, which did not succeed` };
    } else {
      try {
        o = { name, status: 'succeeded', result: await runOne(it) };
      } catch (e) {
        const error = e instanceof SyncError ? e : new SyncError('target', e instanceof Error ? e.message : String(e), { cause: e, retry: 'manual' });
        o = { name, status: 'failed', error };
      }
    }
    if (o.status !== 'succeeded') notDone.add(name);
    outcomes.push(o);
    opts.onOutcome?.(o);
  }
  return outcomes;
}
