import { formatDeltaType } from '../sync/delta/schema';
import type { TableDescription } from '../sync/delta/types';

/** `delta describe --format json`: stable keys, ISO timestamp, types in Delta's DDL-ish text. */
export function descriptionToJson(d: TableDescription): Record<string, unknown> {
  return {
    path: d.path,
    version: d.version,
    timestamp: new Date(d.timestamp).toISOString(),
    protocol: {
      minReaderVersion: d.protocol.minReaderVersion,
      minWriterVersion: d.protocol.minWriterVersion,
    },
    readerFeatures: d.readerFeatures,
    writerFeatures: d.writerFeatures,
    columnMappingMode: d.columnMappingMode,
    cdfEnabled: d.cdfEnabled,
    partitionColumns: d.partitionColumns,
    schema: d.schema.map((f) => ({
      name: f.name,
      type: formatDeltaType(f.type),
      nullable: f.nullable,
      ...(f.physicalName !== f.name ? { physicalName: f.physicalName } : {}),
    })),
    configuration: d.configuration,
    numFiles: d.numFiles,
    numRows: d.numRows,
    sizeInBytes: d.sizeInBytes,
  };
}

/** `delta describe` for people: aligned `key: value` lines, then the schema as a table. */
export function descriptionToText(d: TableDescription): string {
  const list = (xs: readonly string[]): string => (xs.length ? xs.join(', ') : '(none)');
  const pairs: [string, string][] = [
    ['Table', d.path],
    ['Version', `${d.version} (committed ${new Date(d.timestamp).toISOString()})`],
    ['Protocol', `reader ${d.protocol.minReaderVersion}, writer ${d.protocol.minWriterVersion}`],
    ['Reader features', list(d.readerFeatures)],
    ['Writer features', list(d.writerFeatures)],
    ['Column mapping', d.columnMappingMode],
    ['Partition columns', list(d.partitionColumns)],
    ['Change Data Feed', d.cdfEnabled ? 'enabled' : 'not enabled'],
    ['Files', String(d.numFiles)],
    ['Rows', d.numRows === null ? 'unknown (some files have no statistics)' : String(d.numRows)],
    ['Size', `${formatBytes(d.sizeInBytes)} (${d.sizeInBytes} bytes)`],
  ];
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  const lines = pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`);

  const partitions = new Set(d.partitionColumns);
  const rows = d.schema.map((f) => [
    f.name,
    formatDeltaType(f.type),
    [f.nullable ? 'nullable' : 'not null', partitions.has(f.name) ? 'partition' : '', f.physicalName !== f.name ? `physical ${f.physicalName}` : '']
      .filter(Boolean)
      .join(', '),
  ]);
  const nameWidth = Math.max(6, ...rows.map((r) => r[0].length));
  const typeWidth = Math.max(4, ...rows.map((r) => r[1].length));
  lines.push('', `Schema (${d.schema.length} columns):`);
  lines.push(`  ${'column'.padEnd(nameWidth)}  ${'type'.padEnd(typeWidth)}  notes`);
  for (const [name, type, notes] of rows) lines.push(`  ${name.padEnd(nameWidth)}  ${type.padEnd(typeWidth)}  ${notes}`.trimEnd());
  return lines.join('\n') + '\n';
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
