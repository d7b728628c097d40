import { DeltaTable } from '../../sync/delta/DeltaTable';
import type { CliCommand, CliIo } from '../CliCommand';
import { OutputStream } from '../OutputStream';
import { descriptionToJson, descriptionToText } from '../formatDescription';
import { formatOption, parseCommandArgs, tableAtVersion } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';

const OPTIONS: OptionSpecs = {
  version: { type: 'string' },
  timestamp: { type: 'string' },
  format: { type: 'string' },
};

/** `delta describe`: what a table is, at a version (latest by default). */
export const deltaDescribeCommand: CliCommand = {
  name: 'describe',
  options: OPTIONS,
  summary: 'Show version, protocol, features, schema, partitioning, CDF status, files and rows of a Delta table',
  usage: '<table-path> [--version N | --timestamp ISO] [--format text|json]',
  help: `Options:
  --version N        describe the table as of version N (default: latest)
  --timestamp ISO    describe the latest version committed at or before this time
  --format text|json human-readable text (default) or one JSON object for programs
  -h, --help         show this help`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    const { tablePath, version, timestamp } = tableAtVersion(args);
    const format = formatOption(args, ['text', 'json'] as const);

    const table = await DeltaTable.open(tablePath);
    const snapshot = await table.snapshot({ version, timestamp });
    const description = snapshot.describe();
    const out = new OutputStream(io.stdout);
    await out.write(format === 'json' ? JSON.stringify(descriptionToJson(description), null, 2) + '\n' : descriptionToText(description));
    await out.flush();
    return 0;
  },
};
