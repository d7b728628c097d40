import { SyncError } from '../../sync/errors';
import type { RepairReport } from '../../sync/ports/reports';
import type { CliCommand, CliIo } from '../CliCommand';
import { OutputStream } from '../OutputStream';
import { PIPELINE_HELP, PIPELINE_OPTIONS, openPipeline } from '../pipelineArgs';
import { ProgressPrinter } from '../ProgressPrinter';
import { parseCommandArgs, versionOption } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';
import { renderTable } from './previewCommand';

const OPTIONS: OptionSpecs = { ...PIPELINE_OPTIONS, 'to-version': { type: 'string' }, 'dry-run': { type: 'boolean' }, limit: { type: 'string' }, 'allow-mass-delete': { type: 'boolean' } };

/** `repair`: verify the target against the snapshot by checksums and repair what differs. */
export const repairCommand: CliCommand = {
  options: OPTIONS,
  name: 'repair',
  summary: 'Compare the target with the Delta snapshot by checksums and repair the rows that differ (works without the Change Data Feed)',
  usage: '--mapping FILE [--to-version N] [--dry-run [--limit N]] [--allow-mass-delete]',
  help: `Options:
${PIPELINE_HELP}
  --to-version N     repair to the snapshot at version N (default: the latest)
  --dry-run          compare and preview the repair (inserts, updates old -> new, deletes)
                     without writing; exit 0 when the target already equals the snapshot,
                     1 when it differs
  --limit N          with --dry-run: rows to list (default 50)
  --allow-mass-delete  let this repair delete more of the target than the mapping's
                     safety.maxDeleteShare (default 50%); without it such a repair is
                     refused before it writes
  -h, --help         show this help

The target is compared with the snapshot by key buckets: Postgres computes a checksum per
bucket over the target, the engine the same over the snapshot, and only the rows of the
buckets that differ are read back. The repair is applied in one transaction together with
the checkpoint, set to the version compared; exit 0 when the target equals the snapshot
afterwards. Mappings with deletes: ignore or soft-delete are refused (they keep rows the
snapshot lacks on purpose).`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    if (args.positionals.length) throw new SyncError('usage', `unexpected argument '${args.positionals[0]}'`);
    const dryRun = args.values['dry-run'] === true;
    const limit = versionOption(args, 'limit');
    if (limit !== undefined && !dryRun) throw new SyncError('usage', '--limit goes with --dry-run');
    const p = await openPipeline(args, io);
    try {
      const printer = dryRun ? undefined : new ProgressPrinter(io.stderr);
      const report = await p.runner.repair({
        toVersion: versionOption(args, 'to-version'), dryRun, limit: limit ?? 50, signal: io.signal, ...(args.values['allow-mass-delete'] === true ? { allowMassDelete: true } : {}),
        ...(printer ? { onEvent: (e) => printer.onEvent(e) } : {}),
      });
      const out = new OutputStream(io.stdout);
      await out.write(`${repairSummary(report)}\n`);
      if (report.preview) {
        await out.write(renderTable({ ...report.preview, mode: 'incremental', fromVersion: report.fromVersion, toVersion: report.version, targetMissing: false }).split('\n').slice(1).join('\n'));
      }
      await out.flush();
      return report.equal ? 0 : 1;
    } finally {
      await p.close();
    }
  },
};

/** The counts of a repair: what the comparison found, what it read from Postgres, what was applied. */
export function repairSummary(r: RepairReport): string {
  const found = `${r.planned.insert} missing, ${r.planned.update} differing, ${r.planned.delete} extra`;
  const read = `${r.rowsReadBack} target row(s) read back, ${formatBytes(r.bytesRead)} read from Postgres`;
  const head = `Repair to version ${r.version}: ${r.sourceRows} source rows, ${r.targetRows} target rows; ${found} (${read}, ${(r.ms / 1000).toFixed(1)} s)`;
  if (!r.applied) return `${head}\n${r.equal ? 'The target equals the snapshot.' : 'Dry run: nothing written.'}`;
  const a = r.result ?? { inserted: 0, updated: 0, deleted: 0, unchanged: 0 };
  return `${head}\nApplied: ${a.inserted} inserted, ${a.updated} updated, ${a.deleted} deleted; checkpoint at version ${r.version}. ${r.equal ? 'The target equals the snapshot.' : 'The target still differs from the snapshot (was it written to during the repair?).'}`;
}

function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
