import { DeltaTable } from '../../sync/delta/DeltaTable';
import type { CliCommand, CliIo } from '../CliCommand';
import { OutputStream } from '../OutputStream';
import { batchToJsonl, rowToJsonl } from '../jsonlLines';
import { batchSizeOption, formatOption, parseCommandArgs, tableAtVersion } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';

const OPTIONS: OptionSpecs = {
  version: { type: 'string' },
  timestamp: { type: 'string' },
  format: { type: 'string' },
  'batch-size': { type: 'string' },
};

/** `delta snapshot`: the table's rows at a version as jsonl, streamed batch by batch. */
export const deltaSnapshotCommand: CliCommand = {
  name: 'snapshot',
  options: OPTIONS,
  summary: 'Print every row of a Delta table at a version (latest by default) as jsonl',
  usage: '<table-path> [--version N | --timestamp ISO] [--format jsonl]',
  help: `Options:
  --version N        read the table as of version N
  --timestamp ISO    read the latest version committed at or before this time (UTC if no zone)
  --format jsonl     one JSON object per row (the only format, and the default)
  --batch-size N     rows per read batch (default 10000)
  -h, --help         show this help

Output: one JSON object per row, keys are the logical column names in schema order. Dates
are YYYY-MM-DD, timestamps ISO 8601 UTC with Z, 64-bit integers and decimals are numbers
when a double holds them exactly and strings otherwise, binary is base64.`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    const { tablePath, version, timestamp } = tableAtVersion(args);
    formatOption(args, ['jsonl'] as const);
    const batchSize = batchSizeOption(args);

    const table = await DeltaTable.open(tablePath);
    const snapshot = await table.snapshot({ version, timestamp });
    const out = new OutputStream(io.stdout);
    const fields = snapshot.schema;
    for await (const batch of snapshot.rows({ batchSize })) {
      if (io.signal.aborted) break;
      await out.write(batchToJsonl(batch, (row) => rowToJsonl(row, fields)));
    }
    await out.flush();
    return 0;
  },
};
