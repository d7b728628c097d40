/**
 * The Describe, History and Dry Run results as `Report`s for the report panel's grids
 * (src/views/ReportPanel.ts, media/report.ts). Plain TS (no vscode): what each grid holds
 * is decided here and unit-tested; the CLI prints its own text output.
 */
import type { PreviewColumn, PreviewRow, Report, ReportGrid } from '../protocol/messages';
import type { HistoryEntry } from '../sync/delta/DeltaTable';
import type { TableDescription } from '../sync/delta/types';
import { defaultPgType, isSelected, targetColumnFor } from '../sync/mapping/resolveColumns';
import type { Mapping } from '../sync/mapping/mappingSchema';
import type { DryRunReport, PipelineStatus } from '../sync/ports/reports';
import { deltaTypeLabel } from './deltaTypeLabel';

const nf = new Intl.NumberFormat('en-US');

/** A count with thousands separators ("1,550"). */
export function count(n: number | bigint): string {
  return nf.format(n);
}

function utc(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** "1,048,576 bytes (1.0 MiB)" */
function bytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u < 0 ? `${count(n)} bytes` : `${count(n)} bytes (${v.toFixed(1)} ${units[u]})`;
}

/**
 * Describe: the table's facts and a grid of its columns. With the mappings that read the
 * table, the grid says what they make of each column in Postgres (type, key, rename, or
 * "not synced"). Several mappings may read one table with different keys, renames and
 * types: a cell names the mappings it holds for (`key (by-id)`) unless it holds for all
 * of them. Without a mapping, the Postgres type is the default a new mapping would use and
 * no column is a key.
 */
export function describeReport(d: TableDescription, mappings: readonly Mapping[] = []): Report {
  /** One cell over every mapping: per mapping its value ('' for none). */
  const cell = (values: readonly string[], flag?: string): string => {
    const set = values.filter((v) => v !== '');
    if (set.length === 0) return '';
    if (set.length === values.length && new Set(set).size === 1) return set[0] as string;
    if (flag !== undefined) return `${flag} (${mappings.filter((_, i) => values[i] !== '').map((m) => m.name).join(', ')})`;
    return mappings.flatMap((m, i) => (values[i] ? [`${values[i]} (${m.name})`] : [])).join('; ');
  };
  const rows = d.schema.map((f) => {
    const per = mappings.map((m) => {
      const t = targetColumnFor(m, f);
      const selected = isSelected(m, f.name);
      return { pgType: selected ? t.pgType : 'not synced', key: selected && (m.key ?? []).includes(t.name) ? 'key' : '', renamed: selected && t.name !== f.name ? t.name : '' };
    });
    return [
      f.name,
      deltaTypeLabel(f.type),
      mappings.length > 0 ? cell(per.map((x) => x.pgType)) : defaultPgType(f.type),
      f.nullable ? 'yes' : 'no',
      cell(per.map((x) => x.key), 'key'),
      cell(per.map((x) => x.renamed)),
      d.partitionColumns.includes(f.name) ? 'yes' : '',
    ];
  });
  const names = mappings.map((m) => m.name).join(', ');
  const keyOf = (m: Mapping): string => (m.key ? `${m.name}: ${m.key.join(', ')}` : `${m.name}: none named, the primary key of ${m.target.schema}.${m.target.table} (not read here)`);
  const grids: ReportGrid[] = [
    {
      id: 'columns',
      title: `Columns (${count(d.schema.length)})`,
      columns: [
        { name: 'column', frozen: true },
        { name: 'Delta type' },
        { name: 'Postgres type', title: mappings.length > 0 ? `As mapping ${names} writes it` : 'The default a new mapping would use' },
        { name: 'nullable' },
        { name: 'key', title: mappings.length > 0 ? `Key of ${mappings.length > 1 ? 'each mapping' : 'mapping'}: ${mappings.map(keyOf).join('; ')}` : 'No mapping reads this table' },
        { name: 'renamed to', title: mappings.length > 0 ? `columns.rename of mapping ${names}` : 'No mapping reads this table' },
        { name: 'partition' },
      ],
      rows,
    },
  ];
  const props = Object.entries(d.configuration);
  if (props.length > 0) grids.push({ id: 'properties', title: 'Table properties', columns: [{ name: 'property', frozen: true }, { name: 'value' }], rows: props.map(([k, v]) => [k, v]) });
  return {
    kind: 'describe',
    title: d.path.split(/[\\/]/).filter(Boolean).pop() ?? d.path,
    subtitle: d.path,
    facts: [
      { label: 'Version', value: `${count(d.version)} (${utc(d.timestamp)})` },
      { label: 'Change Data Feed', value: d.cdfEnabled ? 'on' : 'off' },
      { label: 'Rows', value: d.numRows === null ? 'unknown (files without stats)' : count(d.numRows) },
      { label: 'Files', value: `${count(d.numFiles)}, ${bytes(d.sizeInBytes)}` },
      { label: 'Protocol', value: `reader ${d.protocol.minReaderVersion}, writer ${d.protocol.minWriterVersion}` },
      { label: 'Reader features', value: d.readerFeatures.join(', ') || 'none' },
      { label: 'Column mapping', value: d.columnMappingMode },
      { label: 'Partition columns', value: d.partitionColumns.join(', ') || 'none' },
      { label: mappings.length > 1 ? 'Mappings' : 'Mapping', value: mappings.length > 0 ? mappings.map((m) => `${m.name} → ${m.target.schema}.${m.target.table}`).join('; ') : 'none reads this table' },
    ],
    grids,
  };
}

function metric(m: Record<string, unknown> | undefined, ...names: string[]): number | undefined {
  let sum: number | undefined;
  for (const n of names) {
    const v = m?.[n];
    const x = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;
    if (x !== undefined) sum = (sum ?? 0) + x;
  }
  return sum;
}

/** Rows a commit added, updated and removed, from its operationMetrics (null: not recorded). */
export function rowCounts(e: HistoryEntry): { added: number | null; updated: number | null; removed: number | null } {
  const m = e.operationMetrics;
  const added = metric(m, 'numTargetRowsInserted') ?? metric(m, 'numInsertedRows') ?? metric(m, 'numOutputRows');
  const updated = metric(m, 'numTargetRowsUpdated', 'numTargetRowsMatchedUpdated', 'numTargetRowsNotMatchedBySourceUpdated') ?? metric(m, 'numUpdatedRows');
  const removed = metric(m, 'numTargetRowsDeleted', 'numTargetRowsMatchedDeleted', 'numTargetRowsNotMatchedBySourceDeleted') ?? metric(m, 'numDeletedRows');
  return { added: added ?? null, updated: updated ?? null, removed: removed ?? null };
}

function paramsText(p: Record<string, unknown> | undefined): string {
  if (!p) return '';
  return Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ');
}

/** History of a Delta table: one row per version still in the log, newest first. */
export function deltaHistoryReport(tablePath: string, entries: readonly HistoryEntry[]): Report {
  const n = (x: number | null): string | null => (x === null ? null : count(x));
  const latest = entries[0];
  return {
    kind: 'delta-history',
    title: `History of ${tablePath.split(/[\\/]/).filter(Boolean).pop() ?? tablePath}`,
    subtitle: tablePath,
    facts: [
      { label: 'Versions in the log', value: count(entries.length) },
      { label: 'Latest', value: latest ? `${count(latest.version)} (${utc(latest.timestamp)})` : 'none' },
      { label: 'Change Data Feed at the latest version', value: latest?.cdf === undefined ? 'unknown' : latest.cdf ? 'on' : 'off' },
    ],
    grids: [
      {
        id: 'versions',
        title: 'Versions',
        columns: [
          { name: 'version', numeric: true, frozen: true },
          { name: 'time (UTC)' },
          { name: 'operation' },
          { name: 'rows added', numeric: true, title: 'operationMetrics: inserted or written rows' },
          { name: 'rows updated', numeric: true },
          { name: 'rows removed', numeric: true },
          { name: 'CDF', title: 'Whether the Change Data Feed can be read at this version (incremental syncs need it)' },
          { name: 'parameters' },
          { name: 'engine' },
        ],
        rows: entries.map((e) => {
          const c = rowCounts(e);
          return [
            String(e.version),
            utc(e.timestamp),
            e.operation ?? '',
            n(c.added),
            n(c.updated),
            n(c.removed),
            e.cdf === undefined ? 'unknown' : e.cdf ? 'yes' : 'no',
            paramsText(e.operationParameters),
            e.engineInfo ?? '',
          ];
        }),
        empty: 'The log holds no commits.',
      },
    ],
  };
}

const OP_LABEL: Record<PreviewRow['op'], string> = { insert: 'insert', update: 'update', delete: 'delete', unchanged: 'unchanged' };

/**
 * Dry Run: what applying would do, counted by a transaction that was rolled back, the rows
 * the target refused, and the plan's rows (the same cells as the Preview; read-only).
 */
export function dryRunReport(
  mapping: string,
  r: DryRunReport,
  plan?: { columns: readonly PreviewColumn[]; rows: readonly PreviewRow[]; total: number | null },
): Report {
  const x = r.result;
  // fromVersion is the first version read; the user thinks from the version the target holds (the checkpoint).
  const range =
    r.fromVersion === null
      ? `initial load of version ${count(r.toVersion)}`
      : r.fromVersion > r.toVersion
        ? `up to date at version ${count(r.toVersion)}`
        : `incremental: checkpoint v${count(r.fromVersion - 1)} → v${count(r.toVersion)}`;
  const grids: ReportGrid[] = [
    {
      id: 'rejected',
      title: `Rows the target would reject (${count(x.rejected.length)})`,
      columns: [{ name: 'op', frozen: true }, { name: 'key', frozen: true }, { name: 'SQLSTATE' }, { name: 'error' }],
      rows: x.rejected.slice(0, 5000).map((rej) => [rej.op, rej.keyJson, rej.sqlstate, rej.message]),
      empty: 'None: the target accepted every row.',
      ...(x.rejected.length > 5000 ? { more: `…and ${count(x.rejected.length - 5000)} more (see the log).` } : {}),
    },
  ];
  if (r.alterations && r.alterations.length > 0) {
    // The run's schema changes (drift, lineage columns): the statements the sync runs first, in the transaction of its first batch.
    grids.unshift({
      id: 'schema',
      title: `Schema changes run first: ${count(r.alterations.length)}`,
      columns: [{ name: 'statement' }],
      rows: r.alterations.map((sql) => [`${sql};`]),
      empty: 'None.',
    });
  }
  if (plan) {
    grids.push({
      id: 'plan',
      title: `Rows of the plan${plan.total !== null ? ` (${count(plan.total)})` : ''}`,
      columns: [
        { name: 'op', frozen: true },
        ...plan.columns.map((c) => ({ name: c.name, title: `${c.sourceType} → ${c.targetType ?? '?'}${c.isKey ? ' (key)' : ''}`, frozen: c.isKey })),
      ],
      rows: plan.rows.map((row) => [
        OP_LABEL[row.op],
        ...row.cells.map((cell, i) => {
          const col = plan.columns[i];
          if (row.op === 'update' && col && !col.isKey && row.changed && !row.changed.includes(col.name)) return '·';
          if (row.op === 'update' && col && row.changed?.includes(col.name)) return `${row.before?.[i] ?? 'NULL'} → ${cell ?? 'NULL'}`;
          return cell;
        }),
      ]),
      empty: 'Nothing to write.',
      ...(plan.total !== null && plan.total > plan.rows.length ? { more: `Showing the first ${count(plan.rows.length)} of ${count(plan.total)} rows; the Preview pages through all of them.` } : {}),
    });
  }
  return {
    kind: 'dry-run',
    title: `Dry run: ${mapping}`,
    subtitle: range,
    // Mapping mode "auto": which path the sync will take and why; the dry run rehearsed that path.
    note: `${dryRunNote(r)}${r.auto ? ` Mode auto: ${r.auto.reason}.` : ''}`,
    facts: [
      { label: 'Inserted', value: count(x.inserted) },
      { label: 'Updated', value: count(x.updated) },
      { label: 'Deleted', value: count(x.deleted) },
      { label: 'Unchanged', value: count(x.unchanged) },
      { label: 'Delete (missing)', value: count(x.deleteMissing) },
      { label: 'Rejected', value: count(x.rejected.length) },
    ],
    grids,
  };
}

/** What a dry run did, in a sentence: the change feed applied, or mode auto's snapshot load rehearsed, then rolled back. */
export function dryRunNote(r: Pick<DryRunReport, 'rehearsed' | 'toVersion'>): string {
  if (r.rehearsed?.load === 'swap') {
    return `Rehearsed the snapshot swap: the snapshot at version ${count(r.toVersion)} was staged beside the table and indexed, then swapped in inside a transaction that was rolled back: nothing was written (the staging table was dropped).`;
  }
  if (r.rehearsed?.load === 'merge') {
    return `Rehearsed the snapshot merge: the snapshot at version ${count(r.toVersion)} was staged beside the table and indexed, then merged into it inside a transaction that was rolled back: nothing was written (the staging table was dropped).`;
  }
  return 'Applied inside a transaction that was rolled back: nothing was written.';
}

/** A run mode in the user's words (the run log stores the engine's: "initial-swap"). */
export function modeLabel(mode: string): string {
  switch (mode) {
    case 'initial':
      return 'initial load';
    case 'initial-swap':
      return 'initial load (new table swapped in)';
    case 'initial-merge':
      return 'initial load (merged into the table)';
    case 'auto-swap':
      return 'snapshot swapped in (mode auto: many changes)';
    case 'auto-merge':
      return 'snapshot merged (mode auto: many changes)';
    case 'dry-run':
      return 'dry run';
    default:
      return mode;
  }
}

/** Show Sync History of a mapping: where it stands and its runs. */
export function syncHistoryReport(s: PipelineStatus): Report {
  const num = (v: string | null): string | null => (v !== null && /^\d+$/.test(v) ? count(BigInt(v)) : v);
  return {
    kind: 'sync-history',
    title: `Sync history: ${s.pipeline}`,
    subtitle: `${s.source} → ${s.target}`,
    facts: [
      {
        label: 'Latest source version',
        value: s.latestVersion !== null ? count(s.latestVersion) : `not checked: ${s.sourceNotChecked?.reason ?? 'not read'}, and reading it would start it`,
      },
      {
        label: 'Checkpoint',
        value: s.checkpoint
          ? `version ${count(s.checkpoint.version)}; ${s.lag === null ? 'versions behind unknown (the source was not checked)' : s.lag === 0 ? 'up to date' : `${count(s.lag)} version(s) behind`}`
          : 'none yet: Preview Changes, then Apply (an initial load)',
      },
    ],
    grids: [
      {
        id: 'runs',
        title: `Runs (${count(s.runs.length)})`,
        columns: [
          { name: 'started', frozen: true },
          { name: 'mode' },
          { name: 'status' },
          { name: 'versions' },
          { name: 'rows', numeric: true },
          { name: 'mode auto', title: 'Mapping mode "auto": the path the run took and why (changes counted, the table\'s rows, auto.maxChangeShare)' },
          { name: 'finished' },
          { name: 'error' },
          { name: 'run' },
        ],
        rows: s.runs.map((r) => [
          r.startedAt,
          r.auto && r.mode === 'incremental' ? `${modeLabel(r.mode)} (auto)` : modeLabel(r.mode),
          r.status,
          // fromVersion is the first version the run read: the user counts from the checkpoint before it.
          r.fromVersion === null ? `snapshot v${r.toVersion ?? '?'}` : `checkpoint v${Number(r.fromVersion) - 1} → v${r.toVersion ?? '?'}`,
          num(r.rows),
          r.auto?.reason ?? null,
          r.finishedAt,
          r.error,
          r.runId,
        ]),
        empty: 'No runs recorded.',
      },
    ],
  };
}
