/**
 * The body of "Sync All" in the Mappings view (issue 14, point 5) without VS Code: the valid
 * mappings of the workspace run once in `after` order through the RunController (one run at
 * a time, Stop through its signal, the Progress panel fed by its snapshots), one pool per
 * target, one log line per mapping, and the summary toast's severity and text. The command
 * (ContinuousSyncCommands.ts) adds the notification and shows the toast; tests call this.
 */
import { syncAllMappings, syncAllSummary } from '../engine/syncAllMappings';
import type { SyncAllDeps } from '../engine/syncAllMappings';
import { SyncError } from '../sync/errors';
import type { RunResult } from '../sync/ports/reports';
import type { MappingOutcome } from '../sync/run/syncAll';
import type { MappingNode } from './MappingsModel';
import type { RunController } from './RunController';

type ValidMapping = MappingNode & { kind: 'mapping' };

export interface SyncAllLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface SyncAllResult {
  outcomes: Array<MappingOutcome<RunResult>>;
  /** The summary line: "3 mappings: 2 succeeded, 1 failed (orders), 0 skipped". */
  summary: string;
  /** The toast: a warning when any mapping failed or was skipped, or a mapping file is invalid. */
  toast: { severity: 'info' | 'warning'; text: string };
}

/** The mappings Sync All runs and the invalid files it reports; no valid mapping is a usage error. */
export function syncAllMappingsOf(nodes: readonly MappingNode[]): { valid: ValidMapping[]; invalid: number } {
  const valid = nodes.filter((n): n is ValidMapping => n.kind === 'mapping');
  const invalid = nodes.filter((n) => n.kind === 'invalid').length;
  if (valid.length === 0) throw new SyncError('usage', 'No valid mapping in this workspace.', { hint: 'Create one with "Delta Sync: Create Mapping".' });
  return { valid, invalid };
}

/**
 * Runs every valid mapping of `nodes` as one RunController run ("all mappings"); resolves to
 * the outcomes and the toast, or undefined when a Stop ended the run before its summary.
 */
export async function runSyncAll<T extends { release(): Promise<void> }>(
  nodes: readonly MappingNode[],
  deps: {
    runs: RunController;
    open: SyncAllDeps<T>;
    log: SyncAllLog;
    report?(message: string): void;
    /** A mapping starts: the command shows that mapping's past runs in the Progress panel. */
    onMappingStart?(node: ValidMapping): void;
    /** A mapping that started has its outcome: its past runs now include this run. */
    onMappingEnd?(node: ValidMapping): void;
  },
): Promise<SyncAllResult | undefined> {
  const { valid, invalid } = syncAllMappingsOf(nodes);
  let result: SyncAllResult | undefined;
  await deps.runs.start('all mappings', 'incremental', async (signal, onEvent) => {
    const outcomes = await syncAllMappings(valid.map((n) => ({ mapping: n.mapping, file: n.file })), deps.open, {
      signal,
      onEvent,
      // The Progress panel follows the mapping that runs: its name, its phases, its past runs.
      onStart: (it) => {
        const node = valid.find((n) => n.mapping.name === it.mapping.name);
        deps.runs.next(it.mapping.name, 'incremental', node?.file);
        if (node) deps.onMappingStart?.(node);
      },
      onOutcome: (o) => {
        // Refused before its runner reported an end: the panel shows that mapping failed.
        // Also once its runner reported the failure: the panel then gets the classified error (hint, Open Setting).
        const now = deps.runs.current();
        if (o.status === 'failed' && o.error.kind !== 'cancelled' && now.mapping === o.name && (now.status === 'running' || now.status === 'failed')) deps.runs.failed(o.error);
        const ended = o.status === 'skipped' ? undefined : valid.find((n) => n.mapping.name === o.name);
        if (ended) deps.onMappingEnd?.(ended);
        deps.report?.(`${o.name}: ${o.status}`);
        if (o.status === 'succeeded') deps.log.info(`Sync All: ${o.name}: ${o.result.status === 'up-to-date' ? `up to date at v${o.result.toVersion}` : `${o.result.mode} to v${o.result.toVersion}: ${o.result.inserted} inserted, ${o.result.updated} updated, ${o.result.deleted} deleted`}`);
        else if (o.status === 'failed') deps.log.error(`Sync All: ${o.name}: ${o.error.describe()}`);
        else deps.log.warn(`Sync All: ${o.name}: skipped: ${o.reason}`);
      },
    });
    const summary = syncAllSummary(outcomes, invalid);
    deps.log.info(`Sync All: ${summary}`);
    const failed = outcomes.some((o) => o.status !== 'succeeded') || invalid > 0;
    result = { outcomes, summary, toast: { severity: failed ? 'warning' : 'info', text: `Delta Sync: Sync All: ${summary}` } };
  });
  return result;
}
