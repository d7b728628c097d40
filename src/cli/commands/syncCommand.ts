import { formatDuration, parseDuration } from '../../sync/run/duration';
import { SyncError } from '../../sync/errors';
import type { CliCommand, CliIo } from '../CliCommand';
import { PIPELINE_HELP, PIPELINE_OPTIONS, openPipeline } from '../pipelineArgs';
import { ProgressPrinter } from '../ProgressPrinter';
import { parseCommandArgs, stringOption, versionOption } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';
import type { ParsedArgs } from '../parseCommandArgs';
import type { OpenedPipeline } from '../pipelineArgs';
import type { RunResult } from '../../sync/ports/reports';
import { watchIntervalMs, watchPipeline } from '../../sync/run/watch';
import type { PollState } from '../../sync/run/watch';
import { syncAll, watchAll } from '../syncAll';
import * as path from 'node:path';

const OPTIONS: OptionSpecs = { ...PIPELINE_OPTIONS, mode: { type: 'string' }, 'to-version': { type: 'string' }, 'retry-for': { type: 'string' }, watch: { type: 'boolean' }, interval: { type: 'string' }, every: { type: 'string' }, 'wake-warehouse': { type: 'boolean' }, all: { type: 'boolean' }, dir: { type: 'string' }, 'allow-mass-delete': { type: 'boolean' } };

/** `sync`: initial load or incremental sync of one mapping (auto picks by checkpoint). */
export const syncCommand: CliCommand = {
  options: OPTIONS,
  name: 'sync',
  summary: 'Sync a Delta table into Postgres (initial load, then incremental from the Change Data Feed)',
  usage: '--mapping FILE [--mode initial|incremental|auto] [--to-version N] [--retry-for SECONDS] [--watch [--interval 1s] [--wake-warehouse] | --every 5m] [--all [--dir FOLDER]] [--allow-mass-delete]',
  help: `Options:
${PIPELINE_HELP}
  --mode MODE        initial: load the snapshot and swap/merge it in; incremental: apply the
                     Change Data Feed since the checkpoint; auto (default): initial when the
                     pipeline has no checkpoint, else incremental
  --to-version N     stop at version N (default: the latest)
  --retry-for SECS   retry lost connections for this long (default 60), one message per attempt
  --watch            keep following the source: load if there is no checkpoint, then apply
                     each new version as it is committed, one line per applied range (with
                     the lag: now - the commit's timestamp), until SIGINT/SIGTERM (exit 0).
                     A local table wakes on a change of its _delta_log; --interval is the
                     polling floor (and the only trigger for a Databricks source)
  --interval DUR     with --watch: how often to check the source (default 1s for a local
                     table, 30s for a Databricks table: each poll is a statement on the SQL
                     warehouse; 500ms, 10s, 1m)
  --wake-warehouse   with --watch on a Databricks table: poll even while the SQL warehouse is
                     stopped, which starts it. Without it a poll first reads the warehouse's
                     state over REST (no statement) and waits while it is not running
  --all              every mapping in .delta-sync/*.json of --dir (default: the current
                     folder), in dependency order ("after": [...] in a mapping), one pool
                     per target, one summary at the end; exit 1 when any failed. With
                     --watch or --every: all of them watched at once, so "after" only sets
                     the order the watches start in, not the order their batches commit
  --dir FOLDER       with --all: the workspace folder holding .delta-sync/
  --every DUR        run a sync every DUR (e.g. 5m, 1h) until SIGINT/SIGTERM; for headless
                     schedules cron or a systemd timer running plain \`sync\` also works (README)
  --allow-mass-delete  let this run delete more of the target than the mapping's
                     safety.maxDeleteShare (default 50%), or swap an empty snapshot over a
                     non-empty table; without it such a run is refused before it writes.
                     One run only: not with --watch, --every or --all (run it once, then
                     start the watch again)
  -h, --help         show this help

Every batch commits together with its checkpoint: a run that is killed leaves the target at
the last committed batch, and the next run resumes there. The first Ctrl-C (or SIGTERM)
cancels the statement in flight and exits once the server rolled it back; a second one exits
at once. Timeouts live in the connection string: connect_timeout, statement_timeout,
lock_timeout, idle_in_transaction_session_timeout, watchdog_timeout (see docs/errors.md).`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    if (args.positionals.length) throw new SyncError('usage', `unexpected argument '${args.positionals[0]}'`);
    const mode = stringOption(args, 'mode') ?? 'auto';
    if (mode !== 'initial' && mode !== 'incremental' && mode !== 'auto') {
      throw new SyncError('usage', `--mode must be initial, incremental or auto, got '${mode}'`);
    }
    const toVersion = versionOption(args, 'to-version');
    const retryText = stringOption(args, 'retry-for');
    const retryFor = retryText === undefined ? undefined : Number(retryText);
    if (retryFor !== undefined && (!Number.isFinite(retryFor) || retryFor < 0)) throw new SyncError('usage', `--retry-for must be a number of seconds, got '${retryText}'`);
    if (args.values['allow-mass-delete'] === true && (args.values.all || args.values.watch || args.values.every !== undefined)) {
      throw new SyncError('usage', '--allow-mass-delete allows one run: it does not go with --all, --watch or --every', {
        hint: 'Run that mapping once with `sync --mapping FILE --allow-mass-delete`, then start the watch or schedule again.',
      });
    }
    if (args.values.all) return runAll(args, io, retryFor);
    if (args.values.dir !== undefined) throw new SyncError('usage', '--dir goes with --all');
    if (args.values.watch || args.values.every !== undefined) return runContinuous(args, io, retryFor);
    if (args.values.interval !== undefined) throw new SyncError('usage', '--interval goes with --watch');
    const p = await openPipeline(args, io);
    try {
      const printer = new ProgressPrinter(io.stderr);
      const r = await p.runner.run({ mode, toVersion, signal: io.signal, onEvent: printer.onEvent, ...(args.values['allow-mass-delete'] === true ? { allowMassDelete: true } : {}), ...(retryFor === undefined ? {} : { retryForMs: retryFor * 1000 }) });
      if (r.createdTableSql) io.stdout.write(`Created the target table:\n${r.createdTableSql}\n`);
      io.stdout.write(
        r.status === 'up-to-date'
          ? `${p.mapping.name}: up to date at version ${r.toVersion} (${p.target.label})${r.appliedByOthers ? `: nothing done by this run. ${r.appliedByOthers.message}` : ''}\n`
          : `${p.mapping.name}: ${runLabel(r)} sync to version ${r.toVersion} done in ${r.batches} batch(es): ${r.inserted} inserted, ${r.updated} updated, ${r.deleted} deleted, ${r.unchanged} unchanged${r.deadLettered ? `, ${r.deadLettered} dead-lettered` : ''} (${r.rowsRead} rows read)\n`,
      );
      return 0;
    } finally {
      await p.close();
    }
  },
};

/** `sync --watch` / `sync --every`: the loop lives in the engine (watchPipeline); this prints. */
function continuousOptions(args: ParsedArgs): { watch: boolean; intervalMs: number | undefined; wake: boolean } {
  const watch = args.values.watch === true;
  const every = stringOption(args, 'every');
  if (watch && every !== undefined) throw new SyncError('usage', '--watch and --every cannot be combined: --watch follows every new version, --every runs on a timer');
  if (!watch && args.values.interval !== undefined) throw new SyncError('usage', '--interval goes with --watch (--every takes its own duration)');
  if (!watch && args.values['wake-warehouse'] !== undefined) throw new SyncError('usage', '--wake-warehouse goes with --watch (a run of --every always uses the warehouse)');
  for (const opt of ['mode', 'to-version']) {
    if (args.values[opt] !== undefined) throw new SyncError('usage', `--${opt} cannot be combined with ${watch ? '--watch' : '--every'}`);
  }
  const interval = stringOption(args, 'interval');
  const intervalMs = watch ? (interval === undefined ? undefined : durationOption(interval, '--interval')) : durationOption(every as string, '--every');
  return { watch, intervalMs, wake: args.values['wake-warehouse'] === true };
}

/** `sync --all [--watch | --every DUR] [--dir FOLDER]`: every mapping of the workspace folder. */
async function runAll(args: ParsedArgs, io: CliIo, retryFor: number | undefined): Promise<number> {
  const single = ['mapping', 'source', 'target', 'table', 'key', 'to-version'].filter((k) => args.values[k] !== undefined);
  if (single.length) throw new SyncError('usage', `--all runs every mapping in .delta-sync/; it cannot be combined with ${single.map((k) => `--${k}`).join(', ')}`);
  const dir = path.resolve(stringOption(args, 'dir') ?? '.');
  const sandboxDir = stringOption(args, 'sandbox-dir');
  const printer = new ProgressPrinter(io.stderr);
  const runOpts = { onEvent: printer.onEvent, ...(retryFor === undefined ? {} : { retryForMs: retryFor * 1000 }) };
  if (args.values.watch || args.values.every !== undefined) {
    const { watch, intervalMs, wake } = continuousOptions(args);
    io.stderr.write(`${watch ? 'watching' : `syncing every ${formatMs(intervalMs ?? 0)}`} every mapping in ${path.join(dir, '.delta-sync')}; Ctrl-C or SIGTERM stops\n`);
    const code = await watchAll(dir, io, {
      sandboxDir,
      watch: { mode: watch ? 'follow' : 'schedule', intervalMs, run: runOpts, onRetry: retryLine(io), wakeSource: wake },
      onPollState: (name, state) => io.stderr.write(pollStateLine(name, state)),
      onApplied: (name, r, lagMs) => io.stdout.write(`${appliedLine(name, r)}${lagMs === null ? '' : ` (lag ${formatMs(lagMs)})`}\n`),
    });
    io.stoppedBySignalCleanly?.();
    return code;
  }
  if (args.values.interval !== undefined) throw new SyncError('usage', '--interval goes with --watch');
  const mode = stringOption(args, 'mode') ?? 'auto';
  if (mode !== 'initial' && mode !== 'incremental' && mode !== 'auto') throw new SyncError('usage', `--mode must be initial, incremental or auto, got '${mode}'`);
  return syncAll(dir, io, { sandboxDir, run: { ...runOpts, mode }, line: appliedLine });
}

function retryLine(io: CliIo): (err: SyncError, delayMs: number, attempt: number) => void {
  return (err, delayMs, attempt) => io.stderr.write(`warning: ${err.message}${err.hint ? ` (${err.hint})` : ''} — retrying in ${formatMs(delayMs)} (attempt ${attempt})\n`);
}

/** The line a watch prints when its polls start or stop waiting for stopped compute (a Databricks SQL warehouse). */
export function pollStateLine(name: string, state: PollState): string {
  switch (state.phase) {
    case 'waiting':
      return `${name}: waiting: ${state.reason}, and a poll would start it, so new versions are not looked for until it runs again (start it, or watch with --wake-warehouse to let each poll start it)\n`;
    case 'unchecked':
      return `warning: ${name}: ${state.warning}\n`;
    case 'polling':
      return `${name}: the SQL warehouse is running: polling again\n`;
  }
}

async function runContinuous(args: ParsedArgs, io: CliIo, retryFor: number | undefined): Promise<number> {
  const { watch, intervalMs: givenMs, wake } = continuousOptions(args);
  const p: OpenedPipeline = await openPipeline(args, io);
  try {
    const printer = new ProgressPrinter(io.stderr);
    const local = p.mapping.source.type === 'delta' ? p.mapping.source.path : undefined;
    const intervalMs = watch ? watchIntervalMs(p.source, givenMs) : (givenMs as number);
    const polling = p.source.polling;
    const how = local
      ? ` (its _delta_log, checked at least every ${formatMs(intervalMs)})`
      : polling
        ? ` (polled every ${formatMs(intervalMs)}${givenMs === undefined ? ', the default for this source (--interval sets it)' : ''}: ${polling.cost}; ${wake ? '--wake-warehouse: a poll starts a stopped warehouse' : 'a stopped warehouse is not started by a poll (--wake-warehouse lets it)'})`
        : ` (checked at least every ${formatMs(intervalMs)})`;
    io.stderr.write(
      watch
        ? `${p.mapping.name}: watching ${p.source.name}${how}; Ctrl-C or SIGTERM stops\n`
        : `${p.mapping.name}: syncing every ${formatMs(intervalMs)}; Ctrl-C or SIGTERM stops\n`,
    );
    const summary = await watchPipeline({
      runner: p.runner,
      source: p.source,
      localTablePath: local,
      mode: watch ? 'follow' : 'schedule',
      intervalMs,
      wakeSource: wake,
      onPollState: (state) => io.stderr.write(pollStateLine(p.mapping.name, state)),
      signal: io.signal,
      run: { onEvent: printer.onEvent, ...(retryFor === undefined ? {} : { retryForMs: retryFor * 1000 }) },
      onApplied: (r, { lagMs }) => io.stdout.write(`${appliedLine(p.mapping.name, r)}${lagMs === null ? '' : ` (lag ${formatMs(lagMs)})`}\n`),
      onRetry: retryLine(io),
    });
    io.stdout.write(`${p.mapping.name}: stopped${summary.lastVersion === null ? '' : ` at version ${summary.lastVersion}`}\n`);
    io.stoppedBySignalCleanly?.();
    return 0;
  } finally {
    await p.close();
  }
}

/** The run's mode as its result line says it: a snapshot that mode auto loaded in place of an incremental sync says so. */
function runLabel(r: RunResult): string {
  return r.auto?.path === 'snapshot' ? 'snapshot (mode auto)' : r.mode;
}

function appliedLine(name: string, r: RunResult): string {
  if (r.status === 'up-to-date') return `${name}: up to date at version ${r.toVersion}${r.appliedByOthers ? `: nothing done by this run. ${r.appliedByOthers.message}` : ''}`;
  const range = r.fromVersion === null || r.mode === 'initial' ? `version ${r.toVersion}` : (r.fromVersion === r.toVersion ? `version ${r.toVersion}` : `versions ${r.fromVersion}..${r.toVersion}`);
  return `${name}: ${runLabel(r)} ${range}: ${r.inserted} inserted, ${r.updated} updated, ${r.deleted} deleted${r.deadLettered ? `, ${r.deadLettered} dead-lettered` : ''}`;
}

/** `500ms`, `1s`, `5m`, `1h`, or a bare number of seconds (the engine's one parser). */
export function durationOption(text: string, name: string): number {
  return parseDuration(text, name);
}

const formatMs = formatDuration;
