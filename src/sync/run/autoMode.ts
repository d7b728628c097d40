import type { SourceSnapshot } from '../ports/ChangeSource';
import { missingRights } from '../ports/rights';
import type { RightsReport } from '../ports/rights';
import { describeBlockers } from '../ports/swapBlocked';
import type { AutoSaid } from '../ports/events';
import type { Checkpoint } from '../ports/targetTypes';
import type { RunContext } from './RunContext';

/**
 * Mapping `mode: "auto"` (issue 15, point 3): before an incremental sync, its changes are
 * counted from the Delta log (ChangeSource.changeCount: no data read) against the rows
 * the target holds (the snapshot at the checkpoint, from the log's stats); more than
 * `auto.maxChangeShare` of them and the sync loads the snapshot at the end version
 * instead (run/initialPhase with `auto`), which past the crossover costs less than applying
 * the change feed (bench/crossoverBench.ts).
 */
export interface AutoChoice {
  path: 'incremental' | 'snapshot';
  /** The snapshot load's mode (path snapshot). */
  load?: 'swap' | 'merge';
  /** The versions after the checkpoint the choice is for. */
  fromVersion: number;
  toVersion: number;
  /** Changes counted (null: not counted). */
  changes: number | null;
  /** The table's rows they were compared with (null: not known). */
  rows: number | null;
  maxShare: number;
  /** In the user's words: which path, and why ("snapshot swap: 420,000 changes are 42% of 1,000,000 rows, above auto.maxChangeShare 20%"). */
  reason: string;
}

/**
 * The choice as every report of it carries it (events, RunResult, the run log, preview and
 * dry run): `{ auto: { path, reason } }`, or nothing outside mode auto. Both paths record it
 * through here, so the run history says for every auto run which path it took and why.
 */
export function autoSaid(choice: AutoChoice | undefined): { auto?: AutoSaid } {
  return choice ? { auto: { path: choice.path, reason: choice.reason } } : {};
}

const count = (n: number): string => n.toLocaleString('en-US');

/** 1.2%, 42%: one decimal under 10%. */
export function percent(share: number): string {
  if (!Number.isFinite(share)) return 'all';
  const p = share * 100;
  return `${p < 10 ? Number(p.toFixed(1)) : Math.round(p)}%`;
}

/**
 * Which path a sync of the versions after `checkpoint` up to `toVersion` (default: the
 * latest) takes under `mode: "auto"`; undefined when the mapping's mode is not auto or
 * nothing is pending. `rights`: the report of the run's rights check (a snapshot load by
 * swap needs ownership of the table; without it the load merges).
 */
export async function chooseAutoPath(ctx: RunContext, checkpoint: Checkpoint, toVersion: number | undefined, rights: RightsReport): Promise<AutoChoice | undefined> {
  const { mapping, source, target } = ctx;
  if (mapping.mode !== 'auto') return undefined;
  const from = Number(checkpoint.version) + 1;
  const latest = await source.latestVersion();
  const end = Math.min(toVersion ?? latest, latest);
  if (end < from) return undefined;
  const maxShare = mapping.auto.maxChangeShare;
  const base = { fromVersion: from, toVersion: end, maxShare };
  const incremental = (changes: number | null, rows: number | null, why: string): AutoChoice => ({ ...base, path: 'incremental', changes, rows, reason: `incremental: ${why}` });
  if (mapping.deletes.mode === 'ignore') {
    return incremental(null, null, 'deletes is "ignore", which keeps rows a snapshot load would delete (mode "auto" applies the change feed)');
  }
  if (mapping.filter) {
    return incremental(null, null, 'the mapping\'s filter applies to snapshot loads only, so a snapshot would drop rows the change feed keeps (mode "auto" applies the change feed)');
  }
  if (!source.changeCount) return incremental(null, null, `${source.name} cannot count its changes without reading them (mode "auto" applies the change feed)`);
  let changes: number;
  try {
    changes = await source.changeCount(from, end);
  } catch (e) {
    // The change feed's own read says what is wrong (a vacuumed range, CDF off) with its hint.
    return incremental(null, null, `the changes of versions ${from}..${end} could not be counted (${e instanceof Error ? e.message : String(e)})`);
  }
  let before: SourceSnapshot | undefined;
  try {
    before = await source.snapshot(Number(checkpoint.version));
  } catch {
    // The log no longer reconstructs the checkpoint's version: the target's own estimate.
  }
  const rows = typeof before?.rowCount === 'number' ? before.rowCount : await target.estimateRows();
  const share = rows > 0 ? changes / rows : changes > 0 ? Number.POSITIVE_INFINITY : 0;
  const of = `${count(changes)} change${changes === 1 ? '' : 's'}`;
  if (share <= maxShare) return incremental(changes, rows, `${of}, ${percent(share)} of ${count(rows)} rows (at most auto.maxChangeShare ${percent(maxShare)})`);
  const above = `${of} ${changes === 1 ? 'is' : 'are'} ${percent(share)} of ${count(rows)} rows, above auto.maxChangeShare ${percent(maxShare)}`;
  if (before) {
    const after = await source.snapshot(end);
    if (JSON.stringify(after.schema) !== JSON.stringify(before.schema)) {
      return incremental(changes, rows, `${above}, but the Delta schema changed since version ${checkpoint.version} (schemaDrift applies to the change feed)`);
    }
  }
  const load = await autoLoadMode(ctx, rights);
  return { ...base, path: 'snapshot', load: load.mode, changes, rows, reason: `snapshot ${load.mode}: ${above}${load.why ? ` (merge: ${load.why})` : ''}` };
}

/**
 * How an auto snapshot load goes in: a swap, unless the mapping loads by merge, marks
 * deletes (a swap would drop the marked rows), the role does not own the table, or the
 * table has what a swap would bypass or break (triggers, rules, dependent views, incoming
 * foreign keys): then a merge, whatever initialLoad.onSwapBlocked says (the change feed
 * it replaces would have applied too).
 */
export async function autoLoadMode(ctx: RunContext, rights: RightsReport): Promise<{ mode: 'swap' | 'merge'; why?: string }> {
  const { mapping, target } = ctx;
  if (mapping.initialLoad.mode === 'merge') return { mode: 'merge', why: 'initialLoad.mode is merge' };
  if (mapping.deletes.mode === 'soft-delete') return { mode: 'merge', why: 'deletes is soft-delete, whose marked rows a swap would drop' };
  if (missingRights(rights, ['initial-swap']).some((m) => m.ownership === true)) return { mode: 'merge', why: `the role does not own ${target.tableLabel}, which a swap replaces` };
  const blockers = await target.swapBlockers();
  if (blockers.length > 0) return { mode: 'merge', why: `${target.tableLabel} has ${describeBlockers(blockers)}` };
  return { mode: 'swap' };
}
