/** The Markdown document of a Verify & Repair (opened as an untitled, read-only preview). */
import type { RepairReport } from '../sync/ports/reports';

function cell(s: string | null): string {
  return (s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
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
