/**
 * A PreviewSource over the engine's `SyncRunner.preview`: the first call gives the totals
 * (the panel's summary); each page request asks the runner again for one page, so only a
 * page of rows is ever held here or in the webview. Plain TS (no vscode).
 */
import type { PreviewColumn, PreviewFilter, PreviewPage, PreviewRow, PreviewSummary } from '../protocol/messages';
import { resolveColumns } from '../sync/mapping/resolveColumns';
import { rowStatementSql } from '../sync/postgres/rowStatementSql';
import { deltaTypeLabel } from './deltaTypeLabel';
import type { Mapping } from '../sync/mapping/mappingSchema';
import { SyncError } from '../sync/errors';
import type { PreviewAction } from '../sync/ports/targetTypes';
import type { PreviewReport } from '../sync/ports/reports';
import type { ChangeSource } from '../sync/ports/ChangeSource';
import type { PreviewSource } from './PreviewSource';

/** What the source needs from a runner (SyncRunner has it; tests can pass a real one). */
export interface PreviewRunner {
  preview(opts: { limit?: number; offset?: number; include?: readonly PreviewAction[]; toVersion?: number; search?: string; checks?: boolean; signal?: AbortSignal }): Promise<PreviewReport>;
}

/** Which engine actions a panel filter lists. */
export function includeFor(filter: PreviewFilter): PreviewAction[] {
  switch (filter) {
    case 'all':
      return ['insert', 'update', 'delete', 'delete-missing', 'kept'];
    case 'insert':
      return ['insert'];
    case 'update':
      return ['update'];
    case 'delete':
      return ['delete', 'delete-missing'];
    case 'unchanged':
      return ['unchanged', 'kept'];
  }
}

/** The mapped columns in target order, typed, with the key marked. */
export async function previewColumns(mapping: Mapping, source: ChangeSource, version: number, key: readonly string[]): Promise<PreviewColumn[]> {
  const snap = await source.snapshot(version);
  return resolveColumns(mapping, snap.schema).map((c) => ({
    name: c.name,
    sourceType: deltaTypeLabel(c.source.type),
    targetType: c.pgType,
    isKey: key.includes(c.name),
  }));
}

/** One engine row as display cells in `columns` order; values stay Postgres text. */
export function toPreviewRow(r: PreviewReport['rows'][number], columns: readonly PreviewColumn[]): PreviewRow {
  const cell = (rec: Record<string, string | null> | undefined, name: string): string | null => rec?.[name] ?? r.key[name] ?? null;
  switch (r.action) {
    case 'insert':
      return { op: 'insert', cells: columns.map((c) => cell(r.newRow, c.name)), before: null };
    case 'delete':
    case 'delete-missing':
      return { op: 'delete', cells: columns.map((c) => cell(r.oldRow, c.name)), before: null };
    case 'kept':
      // The out-of-order guard keeps the target row: shown as it stays.
      return { op: 'unchanged', cells: columns.map((c) => cell(r.oldRow, c.name)), before: null, changed: [] };
    case 'unchanged':
      // Only the key is known (the row equals the target's): the other cells are not NULL, just not shown.
      return { op: 'unchanged', cells: columns.map((c) => r.key[c.name] ?? null), before: null, changed: [] };
    case 'update': {
      const changes = new Map((r.changes ?? []).map((ch) => [ch.column, ch]));
      return {
        op: 'update',
        cells: columns.map((c) => (changes.has(c.name) ? (changes.get(c.name)?.new ?? null) : (r.key[c.name] ?? null))),
        before: columns.map((c) => (changes.has(c.name) ? (changes.get(c.name)?.old ?? null) : (r.key[c.name] ?? null))),
        changed: [...changes.keys()],
      };
    }
  }
}

/** "Copy as SQL" of a previewed row: the statement for the mapping's target table, with the engine's quoting. */
export function rowSqlFor(mapping: Mapping, columns: readonly PreviewColumn[], row: PreviewRow): string {
  if (row.cells.length !== columns.length) throw new SyncError('usage', `The row has ${row.cells.length} values; the preview has ${columns.length} columns.`);
  return rowStatementSql(
    { schema: mapping.target.schema, name: mapping.target.table },
    columns.map((c) => ({ name: c.name, pgType: c.targetType ?? 'text', isKey: c.isKey })),
    { op: row.op, cells: row.cells, ...(row.changed ? { changed: row.changed } : {}) },
  );
}

export function summaryOf(mapping: Mapping, report: PreviewReport): PreviewSummary {
  const src = mapping.source.type === 'delta' ? mapping.source.path : mapping.source.table;
  return {
    mapping: mapping.name,
    sourceTable: src,
    targetTable: `${mapping.target.connection}:${mapping.target.schema}.${mapping.target.table}`,
    fromVersion: report.fromVersion,
    toVersion: report.toVersion,
    inserts: report.totals.insert,
    updates: report.totals.update,
    deletes: report.totals.delete + report.totals['delete-missing'],
    unchanged: report.totals.unchanged,
    ...(report.totals.kept === undefined ? {} : { keptByGuard: report.totals.kept }),
    mode: report.mode,
    targetMissing: report.targetMissing,
    ddl: report.ddl,
    ...(report.alterations && report.alterations.length > 0 ? { alterations: report.alterations.slice(0, 200) } : {}),
    ...(report.auto ? { auto: report.auto } : {}),
    ...(report.warnings && report.warnings.length > 0 ? { warnings: report.warnings.slice(0, 20) } : {}),
  };
}

/** A preview on a Neon branch: what the panel shows of it, and its two branch actions. */
export interface BranchPreviewSide {
  info: NonNullable<PreviewSummary['branch']>;
  /** With the password: copied on request, never posted to the webview. */
  connectionUri: string;
  discard: () => Promise<void>;
}

/** The versions a preview may end at: from the first version the plan reads (the snapshot's 0 for an initial load) to the latest. */
export function versionRangeOf(report: PreviewReport, latest: number): { min: number; max: number } | undefined {
  const min = report.mode === 'initial' ? 0 : (report.fromVersion ?? 0);
  return min <= latest ? { min, max: latest } : undefined;
}

export class RunnerPreviewSource implements PreviewSource {
  summary: PreviewSummary;
  report: PreviewReport;
  previewOnBranch?: () => void;
  connectionString?: () => string;
  discard?: () => Promise<void>;
  private first: PreviewPage | undefined;
  private columns: PreviewColumn[];
  /** The latest source version when the preview opened: the picker's top. */
  private readonly latest: number;
  private readonly onBranchSet: boolean;
  private branchInfo: PreviewSummary['branch'];

  /**
   * `report` is the runner's answer for the first page of 'all'; later pages pin
   * `toVersion` so every page describes the same plan as the summary.
   */
  constructor(
    private readonly mapping: Mapping,
    report: PreviewReport,
    columns: PreviewColumn[],
    private readonly runner: PreviewRunner,
    private readonly onApply: (report: PreviewReport) => Promise<void>,
    private readonly onDispose: () => void,
    /** Preview on a Neon branch (mappings whose target is a `neon:` reference). */
    onBranch?: () => void,
    /** This is a preview on a Neon branch: the rows are what Apply to Parent changes. */
    branch?: BranchPreviewSide,
    /** The version picker: the columns at a version (the schema may differ) and the first page's size. */
    private readonly picker?: { columnsAt: (version: number, key: readonly string[]) => Promise<PreviewColumn[]>; firstLimit: number },
  ) {
    this.latest = report.toVersion;
    this.onBranchSet = onBranch !== undefined;
    if (onBranch) this.previewOnBranch = onBranch;
    if (branch) {
      this.branchInfo = branch.info;
      this.connectionString = () => branch.connectionUri;
      this.discard = branch.discard;
    }
    this.report = report;
    this.columns = columns;
    this.summary = this.summarize();
  }

  private summarize(): PreviewSummary {
    const range = this.picker ? versionRangeOf(this.report, this.latest) : undefined;
    this.first = {
      filter: 'all',
      offset: 0,
      total: this.report.matching,
      columns: this.columns,
      rows: this.report.rows.map((r) => toPreviewRow(r, this.columns)),
    };
    return { ...summaryOf(this.mapping, this.report), ...(this.onBranchSet ? { onBranch: true } : {}), ...(this.branchInfo ? { branch: this.branchInfo } : {}), ...(range ? { versionRange: range } : {}) };
  }

  async retarget(toVersion: number): Promise<void> {
    if (!this.picker) throw new SyncError('usage', 'This preview cannot change its version.');
    const range = versionRangeOf(this.report, this.latest);
    if (!range || toVersion < range.min || toVersion > range.max) {
      throw new SyncError('usage', `Version ${toVersion} cannot end this plan: pick one from ${range?.min ?? '-'} to ${range?.max ?? '-'}.`, { version: toVersion });
    }
    const report = await this.runner.preview({ limit: this.picker.firstLimit, offset: 0, toVersion, checks: true });
    const key = this.mapping.key ?? Object.keys(report.rows[0]?.key ?? this.report.rows[0]?.key ?? {});
    this.columns = await this.picker.columnsAt(report.toVersion, key);
    this.report = report;
    this.summary = this.summarize();
  }

  rowSql(row: PreviewRow): string {
    return rowSqlFor(this.mapping, this.columns, row);
  }

  async page(filter: PreviewFilter, offset: number, limit: number, search?: string): Promise<PreviewPage> {
    const first = this.first;
    if (!search && first && filter === 'all' && offset === 0 && first.rows.length >= Math.min(limit, first.total ?? 0)) {
      return { ...first, rows: first.rows.slice(0, limit) };
    }
    const r = await this.runner.preview({ limit, offset, include: includeFor(filter), toVersion: this.report.toVersion, ...(search ? { search } : {}) });
    return { filter, offset, ...(search ? { search } : {}), total: r.matching, columns: this.columns, rows: r.rows.map((row) => toPreviewRow(row, this.columns)) };
  }

  apply(): Promise<void> {
    return this.onApply(this.report);
  }

  dispose(): void {
    this.first = undefined;
    this.onDispose();
  }
}
