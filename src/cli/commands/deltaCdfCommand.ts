import { DeltaTable } from '../../sync/delta/DeltaTable';
import { SyncError } from '../../sync/errors';
import type { CliCommand, CliIo } from '../CliCommand';
import { OutputStream } from '../OutputStream';
import { batchToJsonl, changeRowToJsonl } from '../jsonlLines';
import {
  batchSizeOption,
  exclusive,
  formatOption,
  parseCommandArgs,
  singlePositional,
  timestampOption,
  versionOption,
} from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';

const OPTIONS: OptionSpecs = {
  'starting-version': { type: 'string' },
  'starting-timestamp': { type: 'string' },
  'ending-version': { type: 'string' },
  'ending-timestamp': { type: 'string' },
  format: { type: 'string' },
  'batch-size': { type: 'string' },
};

/** `delta cdf`: the Change Data Feed of a version range as jsonl, streamed batch by batch. */
export const deltaCdfCommand: CliCommand = {
  name: 'cdf',
  options: OPTIONS,
  summary: 'Print the Change Data Feed of a Delta table over a version range as jsonl',
  usage: '<table-path> (--starting-version N | --starting-timestamp ISO) [--ending-version M | --ending-timestamp ISO] [--format jsonl]',
  help: `Options:
  --starting-version N      first version of the range (inclusive)
  --starting-timestamp ISO  first version committed at or after this time (UTC if no zone)
  --ending-version M        last version of the range (inclusive; default: latest)
  --ending-timestamp ISO    last version committed at or before this time
  --format jsonl            one JSON object per change (the only format, and the default)
  --batch-size N            rows per read batch (default 10000)
  -h, --help                show this help

Output: one JSON object per change: the table's columns in schema order, then
_change_type (insert, delete, update_preimage, update_postimage), _commit_version and
_commit_timestamp (ISO 8601 UTC). Values are encoded as for 'delta snapshot'.`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    const tablePath = singlePositional(args, '<table-path>');
    exclusive(args, 'starting-version', 'starting-timestamp');
    exclusive(args, 'ending-version', 'ending-timestamp');
    const startingVersion = versionOption(args, 'starting-version');
    const startingTimestamp = timestampOption(args, 'starting-timestamp');
    const endingVersion = versionOption(args, 'ending-version');
    const endingTimestamp = timestampOption(args, 'ending-timestamp');
    if (startingVersion === undefined && startingTimestamp === undefined) {
      throw new SyncError('usage', 'one of --starting-version or --starting-timestamp is required');
    }
    formatOption(args, ['jsonl'] as const);
    const batchSize = batchSizeOption(args);

    const table = await DeltaTable.open(tablePath);
    // Resolve timestamps to versions once, so the schema and the rows agree on the range.
    const { start, end } = await table.resolveCdfRange({ startingVersion, startingTimestamp, endingVersion, endingTimestamp });
    // Change rows carry the columns of the range's last version (the schema CDF readers use).
    const fields = (await table.snapshot({ version: end })).schema;
    const out = new OutputStream(io.stdout);
    for await (const batch of table.changes({ startingVersion: start, endingVersion: end }, { batchSize, signal: io.signal })) {
      await out.write(batchToJsonl(batch, (change) => changeRowToJsonl(change, fields)));
    }
    await out.flush();
    return 0;
  },
};
