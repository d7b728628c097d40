import { SyncError } from '../../sync/errors';
import type { CliCommand, CliIo } from '../CliCommand';
import { PIPELINE_HELP, PIPELINE_OPTIONS, openPipeline } from '../pipelineArgs';
import { formatOption, parseCommandArgs } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';

const OPTIONS: OptionSpecs = { ...PIPELINE_OPTIONS, format: { type: 'string' } };

/** `status`: checkpoint, lag in versions and the last runs of a pipeline. */
export const statusCommand: CliCommand = {
  options: OPTIONS,
  name: 'status',
  summary: "Show a pipeline's checkpoint, how many versions it is behind, and its last runs",
  usage: '--mapping FILE [--format text|json]',
  help: `Options:
${PIPELINE_HELP}
  --format F         text (default) or json
  -h, --help         show this help`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    if (args.positionals.length) throw new SyncError('usage', `unexpected argument '${args.positionals[0]}'`);
    const format = formatOption(args, ['text', 'json'] as const);
    const p = await openPipeline(args, io);
    try {
      const s = await p.runner.status();
      if (format === 'json') {
        io.stdout.write(JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
        return 0;
      }
      const lines = [
        `pipeline:   ${s.pipeline}`,
        `source:     ${s.source} (latest version ${s.latestVersion})`,
        `target:     ${s.target} on ${p.target.label}${s.targetExists ? '' : ' (does not exist yet)'}`,
        s.checkpoint
          ? `checkpoint: version ${s.checkpoint.version} (committed ${s.checkpoint.commitTimestamp ?? '?'}, applied ${s.checkpoint.appliedRows} rows, at ${s.checkpoint.finishedAt})`
          : 'checkpoint: none (the next sync runs the initial load)',
        `lag:        ${s.lag === null ? 'n/a' : `${s.lag} version(s) behind`}`,
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
