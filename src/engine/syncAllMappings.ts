/**
 * "Sync All" in the extension (issue 14, point 5): every valid mapping of the workspace once,
 * in `after` order, through the engine's `runAllMappings` (what `sync --all` runs), one pool
 * per target connection, and one summary. Plain TS (no vscode).
 */
import type { Mapping } from '../sync/mapping/mappingSchema';
import type { RunOptions, RunResult } from '../sync/ports/reports';
import { runAllMappings } from '../sync/run/syncAll';
import type { MappingOutcome, NamedMapping } from '../sync/run/syncAll';
import type { SyncRunner } from '../sync/run/SyncRunner';

export interface SyncAllDeps<T extends { release(): Promise<void> }> {
  openTarget(connection: string): Promise<T>;
  openRunner(mapping: Mapping, target: T): Promise<{ runner: SyncRunner; release(): Promise<void> }>;
}

export async function syncAllMappings<T extends { release(): Promise<void> }>(
  items: readonly NamedMapping[],
  deps: SyncAllDeps<T>,
  opts: Pick<RunOptions, 'signal' | 'onEvent'> & {
    /** A mapping is about to run (after its `after` mappings, not when skipped). */
    onStart?(item: NamedMapping): void;
    onOutcome?(o: MappingOutcome<RunResult>): void;
  },
): Promise<Array<MappingOutcome<RunResult>>> {
  const pools = new Map<string, Promise<T>>();
  const pool = (connection: string): Promise<T> => {
    let p = pools.get(connection);
    if (!p) {
      p = deps.openTarget(connection);
      pools.set(connection, p);
    }
    return p;
  };
  try {
    return await runAllMappings(
      items,
      async (it) => {
        opts.onStart?.(it);
        const h = await deps.openRunner(it.mapping, await pool(it.mapping.target.connection));
        try {
          return await h.runner.run({ mode: 'auto', signal: opts.signal, onEvent: opts.onEvent });
        } finally {
          await h.release();
        }
      },
      { signal: opts.signal, onOutcome: opts.onOutcome },
    );
  } finally {
    await Promise.allSettled([...pools.values()].map(async (p) => (await p).release()));
  }
}

/** One line over every outcome: "3 mappings: 2 succeeded, 1 failed (orders), 0 skipped". */
export function syncAllSummary(outcomes: ReadonlyArray<MappingOutcome<unknown>>, invalidFiles = 0): string {
  const names = (status: MappingOutcome<unknown>['status']): string[] => outcomes.filter((o) => o.status === status).map((o) => o.name);
  const failed = names('failed');
  const skipped = names('skipped');
  const ok = outcomes.length - failed.length - skipped.length;
  const part = (n: string[], word: string): string => `${n.length} ${word}${n.length ? ` (${n.join(', ')})` : ''}`;
  const invalid = invalidFiles ? `; ${invalidFiles} invalid mapping file${invalidFiles === 1 ? '' : 's'} not run` : '';
  return `${outcomes.length} mapping${outcomes.length === 1 ? '' : 's'}: ${ok} succeeded, ${part(failed, 'failed')}, ${part(skipped, 'skipped')}${invalid}`;
}
