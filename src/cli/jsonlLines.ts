import { toJsonValue } from '../sync/delta/values';
import type { ChangeRow, DeltaField, Row } from '../sync/delta/types';

/**
 * jsonl for `delta snapshot` / `delta cdf`: one JSON object per row, keys in schema order.
 * The object text is assembled by hand because JS objects put integer-like keys (a column
 * named "2024") first, which would break the schema order.
 */
export function rowToJsonl(row: Row, fields: readonly DeltaField[]): string {
  const parts = fields.map((f) => `${JSON.stringify(f.name)}:${JSON.stringify(toJsonValue(row[f.name] ?? null, f.type))}`);
  return `{${parts.join(',')}}`;
}

/** Row columns, then `_change_type`, `_commit_version`, `_commit_timestamp` (ISO 8601 UTC). */
export function changeRowToJsonl(change: ChangeRow, fields: readonly DeltaField[]): string {
  const parts = fields.map(
    (f) => `${JSON.stringify(f.name)}:${JSON.stringify(toJsonValue(change.values[f.name] ?? null, f.type))}`,
  );
  parts.push(
    `"_change_type":${JSON.stringify(change.changeType)}`,
    `"_commit_version":${change.commitVersion}`,
    `"_commit_timestamp":${JSON.stringify(new Date(change.commitTimestamp).toISOString())}`,
  );
  return `{${parts.join(',')}}`;
}

/** One batch as jsonl text (each line ends with '\n'), written with a single stream write. */
export function batchToJsonl<T>(batch: readonly T[], line: (item: T) => string): string {
  let out = '';
  for (const item of batch) out += line(item) + '\n';
  return out;
}
