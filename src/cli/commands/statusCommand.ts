import { SyncError } from '../../sync/errors';
import type { CliCommand, CliIo } from '../CliCommand';
import { PIPELINE_HELP, PIPELINE_OPTIONS, openPipeline } from '../pipelineArgs';
import { formatOption, parseCommandArgs } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';

const OPTIONS: OptionSpecs = { ...PIPELINE_OPTIONS, format: { type: 'string' }, 'wake-warehouse': { type: 'boolean' } };

/** `status`: checkpoint, lag in versions and the last runs of a pipeline. */
export const statusCommand: CliCommand = {
  options: OPTIONS,
  name: 'status',
  summary: "Show a pipeline's checkpoint, how many versions it is behind, and its last runs",
  usage: '--mapping FILE [--format text|json] [--wake-warehouse]',
  help: `Options:
${PIPELINE_HELP}
  --format F         text (default) or json
  --wake-warehouse   on a Databricks table: read its latest version even when the SQL
                     warehouse is not running, which starts it (by default its state is
                     read over REST first and, unless RUNNING, the version is not read)
  -h, --help         show this help`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    if (args.positionals.length) throw new SyncError('usage', `unexpected argument '${args.positionals[0]}'`);
    const format = formatOption(args, ['text', 'json'] as const);
    const p = await openPipeline(args, io, { deferConnect: true });
    try {
      const s = await p.runner.status({ wakeSource: args.values['wake-warehouse'] === true });
      if (format === 'json') {
        io.stdout.write(JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
        return 0;
      }
      const lines = [
        `pipeline:   ${s.pipeline}`,
        s.latestVersion !== null
          ? `source:     ${s.source} (latest version ${s.latestVersion})`
          : `source:     ${s.source} (latest version not checked: ${s.sourceNotChecked?.reason ?? 'not read'}, and reading it would start it; status --wake-warehouse reads it)`,
        ...(s.sourceState ? [`warehouse:  ${s.sourceState}`] : []),
        `target:     ${s.target} on ${p.target.label}${s.targetExists ? '' : ' (does not exist yet)'}`,
        s.checkpoint
          ? `checkpoint: version ${s.checkpoint.version} (committed ${s.checkpoint.commitTimestamp ?? '?'}, applied ${s.checkpoint.appliedRows} rows, at ${s.checkpoint.finishedAt})`
          : 'checkpoint: none (the next sync runs the initial load)',
        `lag:        ${s.lag !== null ? `${s.lag} version(s) behind` : s.checkpoint && s.latestVersion === null ? 'unknown (the source was not checked)' : 'n/a'}`,
        'last runs:',
        ...(s.runs.length
          ? s.runs.slice(0, 10).flatMap((r) => [
            `  #${r.runId} ${r.mode} ${r.fromVersion ?? '-'}..${r.toVersion ?? '-'} ${r.status}${r.rows !== null ? ` ${r.rows} rows` : ''} started ${r.startedAt}${r.error ? ` error: ${r.error}` : ''}`,
            // Mapping mode "auto": the path the run took and why, under its line.
            ...(r.auto ? [`    mode auto: ${r.auto.reason}`] : []),
          ])
          : ['  (none)']),
      ];
      io.stdout.write(lines.join('\n') + '\n');
      return 0;
    } finally {
      await p.close();
    }
  },
};
