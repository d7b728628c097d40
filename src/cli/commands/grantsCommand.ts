import { SyncError } from '../../sync/errors';
import { mappingTarget, openTarget } from '../../sync/open/openTarget';
import { GRANTS_MODES } from '../../sync/ports/rights';
import type { GrantsMode } from '../../sync/ports/rights';
import { requiredGrants } from '../../sync/run/mappingRights';
import type { CliCommand, CliIo } from '../CliCommand';
import { PIPELINE_HELP, PIPELINE_OPTIONS, mappingFromArgs, stderrLogger } from '../pipelineArgs';
import { formatOption, parseCommandArgs, stringOption } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';

const OPTIONS: OptionSpecs = { ...PIPELINE_OPTIONS, role: { type: 'string' }, mode: { type: 'string' }, format: { type: 'string' } };

/**
 * `grants`: the SQL a database owner or admin runs so that a dedicated role can run a
 * mapping (least privilege), read from the target's catalogs. Reads the catalogs only.
 */
export const grantsCommand: CliCommand = {
  options: OPTIONS,
  name: 'grants',
  summary: 'Print the GRANTs a dedicated role needs to run a mapping (least privilege)',
  usage: '<mapping-file> | --mapping FILE [--role NAME] [--mode MODE[,MODE]] [--format sql|json]',
  help: `Options:
${PIPELINE_HELP}
  --role NAME        the role that will run the mapping (default: the role of the
                     connection; it need not exist yet)
  --mode MODES       comma-separated: initial-swap, initial-merge, incremental (also dry
                     run), preview (also verify), all. Default: the mapping's initial load
                     (initialLoad.mode) and incremental. Preview and the engine's state
                     (schema delta_neon_sync) are always included.
  --format F         sql (default): the script, one statement per line with what it is
                     for; json: each right, whether the role holds it, and the script
  -h, --help         show this help

Connect as the database owner or an admin, or as the role itself: the catalogs say what
the role holds either way. Every statement can be run again. Statements for rights the
role already holds are printed too, so the script is complete for a new role.`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    if (args.positionals.length > 1) throw new SyncError('usage', `unexpected argument '${args.positionals[1]}'`);
    const file = args.positionals[0];
    if (file !== undefined) {
      if (stringOption(args, 'mapping') !== undefined) throw new SyncError('usage', 'give the mapping file once: as an argument or with --mapping');
      args.values.mapping = file;
    }
    const format = formatOption(args, ['sql', 'json'] as const);
    const modes = parseModes(stringOption(args, 'mode'));
    const role = stringOption(args, 'role');
    const mapping = mappingFromArgs(args);
    const target = await openTarget(mapping.target.connection, { env: io.env, sandboxDir: stringOption(args, 'sandbox-dir') });
    try {
      const report = await requiredGrants(mappingTarget(target.pool, mapping.target, stderrLogger(io)), mapping, {
        ...(role !== undefined ? { role } : {}),
        ...(modes ? { modes } : {}),
      });
      io.stdout.write(format === 'json' ? JSON.stringify(report, null, 2) + '\n' : report.sql);
      return 0;
    } finally {
      await target.close();
    }
  },
};

function parseModes(raw: string | undefined): GrantsMode[] | undefined {
  if (raw === undefined) return undefined;
  const modes = raw.split(',').map((m) => m.trim()).filter(Boolean);
  const bad = modes.filter((m) => !(GRANTS_MODES as readonly string[]).includes(m));
  if (modes.length === 0 || bad.length > 0) {
    throw new SyncError('usage', `--mode ${bad.length ? `'${bad.join(',')}' is not one of` : 'takes'} ${GRANTS_MODES.join(', ')}`);
  }
  return modes as GrantsMode[];
}
