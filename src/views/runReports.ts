/** Markdown documents for dry runs and run history (opened as untitled, read-only previews). */
import type { DryRunReport, RepairReport, PipelineStatus } from '../sync/ports/reports';

function cell(s: string | null): string {
  return (s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function dryRunMarkdown(mapping: string, r: DryRunReport): string {
  const x = r.result;
  const lines = [
    `# Dry run: ${mapping}`,
    '',
    `Versions ${r.fromVersion}..${r.toVersion}, applied inside a transaction that was rolled back: nothing was written.`,
    '',
    '| inserted | updated | deleted | unchanged | delete (missing) | rejected |',
    '|---:|---:|---:|---:|---:|---:|',
    `| ${x.inserted} | ${x.updated} | ${x.deleted} | ${x.unchanged} | ${x.deleteMissing} | ${x.rejected.length} |`,
  ];
  if (r.alterations?.length) {
    lines.push('', '## Schema changes run first (schema drift)', '', '```sql', ...r.alterations.map((d) => `${d};`), '```');
  }
  if (x.rejected.length > 0) {
    lines.push('', '## Rows the target would reject', '', '| op | key | sqlstate | error |', '|---|---|---|---|');
    for (const rej of x.rejected.slice(0, 200)) lines.push(`| ${rej.op} | ${cell(rej.keyJson)} | ${cell(rej.sqlstate)} | ${cell(rej.message)} |`);
    if (x.rejected.length > 200) lines.push('', `…and ${x.rejected.length - 200} more.`);
  }
  return lines.join('\n') + '\n';
}

export function historyTableMarkdown(s: PipelineStatus): string {
  const lines = [
    `# Sync history: ${s.pipeline}`,
    '',
    `Source \`${s.source}\` (latest version ${s.latestVersion}) → target \`${s.target}\`.`,
    '',
    s.checkpoint ? `Checkpoint: version ${String(s.checkpoint.version)}; ${s.lag === 0 ? 'up to date' : `${s.lag} version(s) behind`}.` : 'No checkpoint yet: run Preview, then Apply (an initial load).',
    '',
  ];
  if (s.runs.length === 0) {
    lines.push('No runs recorded.');
  } else {
    lines.push('| run | mode | status | versions | rows | started | finished | error |', '|---:|---|---|---|---:|---|---|---|');
    for (const r of s.runs) {
      const versions = r.fromVersion === null ? (r.toVersion ?? '') : `${r.fromVersion}..${r.toVersion ?? ''}`;
      lines.push(`| ${cell(r.runId)} | ${cell(r.mode)} | ${cell(r.status)} | ${cell(versions)} | ${cell(r.rows)} | ${cell(r.startedAt)} | ${cell(r.finishedAt)} | ${cell(r.error)} |`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The repair a Verify & Repair found (dry run): counts, what was read, the rows as the sync's preview lists them. */
export function repairMarkdown(mapping: string, r: RepairReport): string {
  const p = r.planned;
  const lines = [
    `# Verify & Repair: ${mapping}`,
    '',
    `The target against the snapshot at version ${r.version}, compared by checksums of key buckets: ${r.sourceRows} source rows, ${r.targetRows} target rows; ${r.rowsReadBack} target rows read back (${r.bytesRead} bytes from Postgres).`,
    '',
    '| insert (missing) | update (differing) | delete (extra) |',
    '|---:|---:|---:|',
    `| ${p.insert} | ${p.update} | ${p.delete} |`,
  ];
  const rows = r.preview?.rows ?? [];
  if (rows.length > 0) {
    lines.push('', '| action | key | changes |', '|---|---|---|');
    for (const row of rows) {
      const key = Object.entries(row.key).map(([k, v]) => `${k}=${v ?? 'NULL'}`).join(', ');
      const changes = (row.changes ?? []).map((c) => `${c.column}: ${c.old ?? 'NULL'} → ${c.new ?? 'NULL'}`).join('; ');
      lines.push(`| ${row.action} | ${cell(key)} | ${cell(changes)} |`);
    }
    const more = (r.preview?.matching ?? 0) - rows.length;
    if (more > 0) lines.push('', `…and ${more} more.`);
  }
  return lines.join('\n') + '\n';
}
