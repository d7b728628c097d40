import { SyncError } from '../../sync/errors';
import type { PreviewAction } from '../../sync/ports/targetTypes';
import type { PreviewReport } from '../../sync/ports/reports';
import type { CliCommand, CliIo } from '../CliCommand';
import { OutputStream } from '../OutputStream';
import { PIPELINE_HELP, PIPELINE_OPTIONS, openPipeline } from '../pipelineArgs';
import { formatOption, parseCommandArgs, stringOption, versionOption } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';

const ACTIONS: readonly PreviewAction[] = ['insert', 'update', 'delete', 'delete-missing', 'kept', 'unchanged'];

const OPTIONS: OptionSpecs = { ...PIPELINE_OPTIONS, format: { type: 'string' }, limit: { type: 'string' }, offset: { type: 'string' }, include: { type: 'string' }, 'to-version': { type: 'string' } };

/** `preview`: what the next sync would change, row by row, without writing anything. */
export const previewCommand: CliCommand = {
  options: OPTIONS,
  name: 'preview',
  summary: 'Show what the next sync would change, row by row, against the rows now in the target (writes nothing)',
  usage: '--mapping FILE [--format table|jsonl] [--limit N] [--offset N] [--include insert,update,...]',
  help: `Options:
${PIPELINE_HELP}
  --format F         table (default) or jsonl (one object per row; totals on stderr)
  --limit N          rows to list (default 50 for table, all for jsonl)
  --offset N         skip the first N listed rows
  --include LIST     actions to list: insert,update,delete,delete-missing,kept,unchanged
                     (default all but unchanged; totals always count everything)
  --to-version N     preview up to version N
  -h, --help         show this help`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    if (args.positionals.length) throw new SyncError('usage', `unexpected argument '${args.positionals[0]}'`);
    const format = formatOption(args, ['table', 'jsonl'] as const);
    const limit = versionOption(args, 'limit') ?? (format === 'table' ? 50 : 1_000_000_000);
    const offset = versionOption(args, 'offset') ?? 0;
    const includeRaw = stringOption(args, 'include');
    const include = includeRaw?.split(',').map((s) => s.trim()) as PreviewAction[] | undefined;
    for (const a of include ?? []) {
      if (!ACTIONS.includes(a)) throw new SyncError('usage', `--include: unknown action '${a}' (use ${ACTIONS.join(', ')})`);
    }
    const p = await openPipeline(args, io);
    try {
      const report = await p.runner.preview({ limit, offset, include, toVersion: versionOption(args, 'to-version'), signal: io.signal, checks: true });
      const out = new OutputStream(io.stdout);
      if (format === 'jsonl') {
        for (const r of report.rows) await out.write(JSON.stringify(r) + '\n');
        io.stderr.write(`${summary(report)}\n`);
        for (const w of report.warnings ?? []) io.stderr.write(`${warningLine(w)}\n`);
      } else {
        await out.write(renderTable(report));
      }
      await out.flush();
      return 0;
    } finally {
      await p.close();
    }
  },
};

function summary(r: PreviewReport): string {
  // An up-to-date pipeline previews the empty range checkpoint+1..latest: say so, not "versions 7..6".
  const upToDate = r.mode !== 'initial' && r.fromVersion !== null && r.fromVersion > r.toVersion;
  const range = r.mode === 'initial' ? `initial load of the snapshot at version ${r.toVersion}` : upToDate ? `up to date at version ${r.toVersion}` : `versions ${r.fromVersion}..${r.toVersion}`;
  const t = r.totals;
  return `Preview (${range}): ${t.insert} insert, ${t.update} update, ${t.delete} delete, ${t.unchanged} unchanged${t['delete-missing'] ? `, ${t['delete-missing']} delete of missing rows` : ''}${t.kept ? `, ${t.kept} kept by the out-of-order guard (the target row is newer)` : ''}${r.targetMissing ? ' (target table does not exist yet)' : ''}${r.auto ? `\nmode auto: ${r.auto.reason}` : ''}`;
}

/** A pre-apply check that found rows, with the first of them. */
function warningLine(w: NonNullable<PreviewReport['warnings']>[number]): string {
  const rows = w.samples.map((s) => Object.entries(s).map(([k, v]) => `${k}=${v ?? 'NULL'}`).join(', ')).join('; ');
  return `warning: ${w.count} row(s): ${w.message}${rows ? ` First: ${rows}` : ''}`;
}

/** Human-readable preview: totals and the pre-apply warnings, then one line per row; updates show column: old -> new. */
export function renderTable(r: PreviewReport): string {
  const lines = [summary(r), ...(r.warnings ?? []).map(warningLine)];
  if (r.ddl && r.targetMissing) lines.push('', 'The sync will create the table:', r.ddl);
  if (r.alterations?.length) lines.push('', 'The sync will first change the table, in the transaction of its first batch:', ...r.alterations.map((s) => `${s};`));
  if (r.rows.length) lines.push('');
  for (const row of r.rows) {
    const key = Object.entries(row.key).map(([k, v]) => `${k}=${v ?? 'NULL'}`).join(', ');
    lines.push(`${row.action.padEnd(9)} ${key}`);
    for (const ch of row.changes ?? []) lines.push(`            ${ch.column}: ${ch.old ?? 'NULL'} -> ${ch.new ?? 'NULL'}`);
  }
  if (r.matching > r.rows.length) lines.push(`... ${r.matching - r.rows.length} more (use --offset / --limit)`);
  return lines.join('\n') + '\n';
}
