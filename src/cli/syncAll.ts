import * as fs from 'node:fs';
import * as path from 'node:path';
import { SyncError } from '../sync/errors';
import { loadMappingFile } from '../sync/mapping/loadMapping';
import { openSource } from '../sync/open/openSource';
import { mappingTarget, openTarget } from '../sync/open/openTarget';
import type { OpenedTarget } from '../sync/open/openTarget';
import type { RunOptions, RunResult } from '../sync/ports/reports';
import { SyncRunner } from '../sync/run/SyncRunner';
import { orderMappings, runAllMappings } from '../sync/run/syncAll';
import type { MappingOutcome, NamedMapping } from '../sync/run/syncAll';
import { watchPipeline } from '../sync/run/watch';
import type { PollState, WatchOptions } from '../sync/run/watch';
import type { CliIo } from './CliCommand';
import { stderrLogger } from './pipelineArgs';

/** Every `.delta-sync/*.json` of `dir`, parsed (a bad file fails the whole command, naming it). */
export function workspaceMappings(dir: string): NamedMapping[] {
  const folder = path.join(dir, '.delta-sync');
  let names: string[];
  try {
    names = fs.readdirSync(folder).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    throw new SyncError('usage', `--all reads the mappings in ${folder}, which cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { setting: '--dir' });
  }
  if (!names.length) throw new SyncError('usage', `--all found no mapping (*.json) in ${folder}`, { setting: '--dir' });
  return names.map((n) => {
    const file = path.join(folder, n);
    return { mapping: loadMappingFile(file), file };
  });
}

/** How a target is opened (openTarget; tests count the pools through it). */
export type OpenTargetFn = typeof openTarget;

/**
 * Opens targets lazily, one connection pool per connection string, shared by every mapping
 * that writes there (each still takes its own run lease by pipeline name).
 */
class TargetPools {
  private readonly opened = new Map<string, Promise<OpenedTarget>>();
  constructor(private readonly io: CliIo, private readonly sandboxDir: string | undefined, private readonly open: OpenTargetFn = openTarget) {}

  get(connection: string): Promise<OpenedTarget> {
    let t = this.opened.get(connection);
    if (!t) {
      t = this.open(connection, { env: this.io.env, sandboxDir: this.sandboxDir, neon: { logger: stderrLogger(this.io), signal: this.io.signal } });
      this.opened.set(connection, t);
    }
    return t;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.opened.values()].map(async (t) => (await t).close()));
  }
}

async function withRunner<R>(item: NamedMapping, pools: TargetPools, io: CliIo, work: (runner: SyncRunner, source: Awaited<ReturnType<typeof openSource>>) => Promise<R>): Promise<R> {
  const logger = stderrLogger(io);
  const source = await openSource(item.mapping.source, { logger });
  try {
    const target = await pools.get(item.mapping.target.connection);
    const runner = new SyncRunner(item.mapping, source, mappingTarget(target.pool, item.mapping.target, logger), logger);
    return await work(runner, source);
  } finally {
    await source.close?.();
  }
}

function summary<R>(io: CliIo, outcomes: Array<MappingOutcome<R>>): number {
  const failed = outcomes.filter((o) => o.status === 'failed').length;
  const skipped = outcomes.filter((o) => o.status === 'skipped').length;
  const ok = outcomes.length - failed - skipped;
  io.stdout.write(`Summary: ${outcomes.length} mapping(s): ${ok} succeeded, ${failed} failed, ${skipped} skipped\n`);
  for (const o of outcomes) {
    if (o.status === 'failed') io.stdout.write(`  ${o.name}: failed: ${o.error.describe()}\n`);
    else if (o.status === 'skipped') io.stdout.write(`  ${o.name}: skipped: ${o.reason}\n`);
  }
  return failed || skipped ? 1 : 0;
}

/** `sync --all`: every mapping once, in dependency order; one summary; 1 when any failed. */
export async function syncAll(
  dir: string,
  io: CliIo,
  opts: { sandboxDir?: string; run: Omit<RunOptions, 'signal'>; line(name: string, r: RunResult): string; openTarget?: OpenTargetFn },
): Promise<number> {
  const items = workspaceMappings(dir);
  const pools = new TargetPools(io, opts.sandboxDir, opts.openTarget);
  try {
    const outcomes = await runAllMappings(items, (it) => withRunner(it, pools, io, (runner) => runner.run({ ...opts.run, signal: io.signal })), {
      signal: io.signal,
      onOutcome: (o) => {
        if (o.status === 'succeeded') io.stdout.write(`${opts.line(o.name, o.result)}\n`);
        else if (o.status === 'failed') io.stderr.write(`${o.name}: failed: ${o.error.message}\n`);
      },
    });
    return summary(io, outcomes);
  } finally {
    await pools.close();
  }
}

/**
 * `sync --watch --all` / `--every --all`: one watch per mapping, all at once, started in
 * dependency order; a mapping whose watch stops on an error is reported and the others go
 * on; SIGINT/SIGTERM stops them all. Exit 1 when any stopped on an error. The watches run
 * side by side, so `after` orders only their start, not the commits of their batches.
 */
export async function watchAll(
  dir: string,
  io: CliIo,
  opts: {
    sandboxDir?: string;
    watch: Omit<WatchOptions, 'runner' | 'source' | 'localTablePath' | 'signal' | 'onApplied' | 'onPollState'>;
    onApplied(name: string, r: RunResult, lagMs: number | null): void;
    onPollState?(name: string, state: PollState): void;
    openTarget?: OpenTargetFn;
  },
): Promise<number> {
  const items = orderMappings(workspaceMappings(dir));
  const pools = new TargetPools(io, opts.sandboxDir, opts.openTarget);
  try {
    const outcomes = await Promise.all(
      items.map(async (it): Promise<MappingOutcome<{ lastVersion: number | null }>> => {
        try {
          const result = await withRunner(it, pools, io, (runner, source) =>
            watchPipeline({
              ...opts.watch,
              runner,
              source,
              localTablePath: it.mapping.source.type === 'delta' ? it.mapping.source.path : undefined,
              signal: io.signal,
              onApplied: (r, { lagMs }) => opts.onApplied(it.mapping.name, r, lagMs),
              onPollState: (state) => opts.onPollState?.(it.mapping.name, state),
            }),
          );
          return { name: it.mapping.name, status: 'succeeded', result };
        } catch (e) {
          const error = e instanceof SyncError ? e : new SyncError('target', e instanceof Error ? e.message : String(e), { cause: e, retry: 'manual' });
          io.stderr.write(`${it.mapping.name}: watch stopped: ${error.describe()}\n`);
          return { name: it.mapping.name, status: 'failed', error };
        }
      }),
    );
    return summary(io, outcomes);
  } finally {
    await pools.close();
  }
}
