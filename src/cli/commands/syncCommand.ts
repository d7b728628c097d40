import { SyncError } from '../../sync/errors';
import type { CliCommand, CliIo } from '../CliCommand';
import { PIPELINE_HELP, PIPELINE_OPTIONS, openPipeline } from '../pipelineArgs';
import { ProgressPrinter } from '../ProgressPrinter';
import { parseCommandArgs, stringOption, versionOption } from '../parseCommandArgs';

/** `sync`: initial load or incremental sync of one mapping (auto picks by checkpoint). */
export const syncCommand: CliCommand = {
  name: 'sync',
  summary: 'Sync a Delta table into Postgres (initial load, then incremental from the Change Data Feed)',
  usage: '--mapping FILE [--mode initial|incremental|auto] [--to-version N] [--retry-for SECONDS] [--allow-mass-delete]',
  help: `Options:
${PIPELINE_HELP}
  --mode MODE        initial: load the snapshot and swap/merge it in; incremental: apply the
                     Change Data Feed since the checkpoint; auto (default): initial when the
                     pipeline has no checkpoint, else incremental
  --to-version N     stop at version N (default: the latest)
  --retry-for SECS   retry lost connections for this long (default 60), one message per attempt
  --allow-mass-delete  let this run delete more of the target than the mapping's
                     safety.maxDeleteShare (default 50%), or swap an empty snapshot over a
                     non-empty table; without it such a run is refused before it writes
  -h, --help         show this help

Every batch commits together with its checkpoint: a run that is killed leaves the target at
the last committed batch, and the next run resumes there. The first Ctrl-C (or SIGTERM)
cancels the statement in flight and exits once the server rolled it back; a second one exits
at once. Timeouts live in the connection string: connect_timeout, statement_timeout,
lock_timeout, idle_in_transaction_session_timeout, watchdog_timeout (see docs/errors.md).`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, { ...PIPELINE_OPTIONS, mode: { type: 'string' }, 'to-version': { type: 'string' }, 'retry-for': { type: 'string' }, 'allow-mass-delete': { type: 'boolean' } });
    if (args.positionals.length) throw new SyncError('usage', `unexpected argument '${args.positionals[0]}'`);
    const mode = stringOption(args, 'mode') ?? 'auto';
    if (mode !== 'initial' && mode !== 'incremental' && mode !== 'auto') {
      throw new SyncError('usage', `--mode must be initial, incremental or auto, got '${mode}'`);
    }
    const toVersion = versionOption(args, 'to-version');
    const retryText = stringOption(args, 'retry-for');
    const retryFor = retryText === undefined ? undefined : Number(retryText);
    if (retryFor !== undefined && (!Number.isFinite(retryFor) || retryFor < 0)) throw new SyncError('usage', `--retry-for must be a number of seconds, got '${retryText}'`);
    const p = await openPipeline(args, io);
    try {
      const printer = new ProgressPrinter(io.stderr);
      const r = await p.runner.run({ mode, toVersion, signal: io.signal, onEvent: printer.onEvent, ...(args.values['allow-mass-delete'] === true ? { allowMassDelete: true } : {}), ...(retryFor === undefined ? {} : { retryForMs: retryFor * 1000 }) });
      if (r.createdTableSql) io.stdout.write(`Created the target table:\n${r.createdTableSql}\n`);
      io.stdout.write(
        r.status === 'up-to-date'
          ? `${p.mapping.name}: up to date at version ${r.toVersion} (${p.target.label})\n`
          : `${p.mapping.name}: ${r.mode} sync to version ${r.toVersion} done in ${r.batches} batch(es): ${r.inserted} inserted, ${r.updated} updated, ${r.deleted} deleted, ${r.unchanged} unchanged${r.deadLettered ? `, ${r.deadLettered} dead-lettered` : ''} (${r.rowsRead} rows read)\n`,
      );
      return 0;
    } finally {
      await p.close();
    }
  },
};
