import type { HistoryEntry } from '../sync/delta/DeltaTable';
import type { TableDescription } from '../sync/delta/types';
import { deltaTypeLabel } from './deltaTypeLabel';

/** A Markdown page describing a table, for the Describe command. */
export function describeMarkdown(d: TableDescription): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = [
    `# ${cell(d.path)}`,
    '',
    `- Version: ${d.version} (${new Date(d.timestamp).toISOString()})`,
    `- Change Data Feed: ${d.cdfEnabled ? 'on' : 'off'}`,
    `- Rows: ${d.numRows === null ? 'unknown (files without stats)' : d.numRows}`,
    `- Files: ${d.numFiles}, ${d.sizeInBytes} bytes`,
    `- Protocol: reader ${d.protocol.minReaderVersion}, writer ${d.protocol.minWriterVersion}`,
    `- Reader features: ${d.readerFeatures.join(', ') || 'none'}`,
    `- Column mapping: ${d.columnMappingMode}`,
    `- Partition columns: ${d.partitionColumns.join(', ') || 'none'}`,
    '',
    '| column | type | nullable |',
    '|---|---|---|',
    ...d.schema.map((f) => `| ${cell(f.name)} | ${cell(deltaTypeLabel(f.type))} | ${f.nullable ? 'yes' : 'no'} |`),
  ];
  const props = Object.entries(d.configuration);
  if (props.length) lines.push('', '## Properties', '', ...props.map(([k, v]) => `- \`${k}\` = \`${v}\``));
  return lines.join('\n') + '\n';
}

/** A Markdown page with the table's history, newest first. */
export function historyMarkdown(tablePath: string, entries: HistoryEntry[]): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `# History of ${cell(tablePath)}`,
    '',
    '| version | time (UTC) | operation | engine |',
    '|---|---|---|---|',
    ...entries.map((e) => `| ${e.version} | ${new Date(e.timestamp).toISOString()} | ${cell(e.operation ?? '')} | ${cell(e.engineInfo ?? '')} |`),
  ].join('\n') + '\n';
}
