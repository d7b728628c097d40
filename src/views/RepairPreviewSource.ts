/**
 * A PreviewSource over a Verify & Repair (SyncRunner.repair with dryRun): the comparison by
 * checksums runs once, and its preview (the first `limit` rows of what the repair writes,
 * classified against the target as any sync's preview) is paged here; the totals are the
 * whole repair's. Apply runs the repair to the same version (through the RunController, by
 * the caller). Plain TS (no vscode).
 */
import type { PreviewColumn, PreviewFilter, PreviewPage, PreviewSummary } from '../protocol/messages';
import type { Mapping } from '../sync/mapping/mappingSchema';
import type { RepairReport } from '../sync/ports/reports';
import type { PreviewSource } from './PreviewSource';
import { includeFor, toPreviewRow } from './RunnerPreviewSource';

export function repairSummary(mapping: Mapping, r: RepairReport): PreviewSummary {
  const src = mapping.source.type === 'delta' ? mapping.source.path : mapping.source.table;
  return {
    mapping: mapping.name,
    sourceTable: src,
    targetTable: `${mapping.target.connection}:${mapping.target.schema}.${mapping.target.table}`,
    fromVersion: r.fromVersion,
    toVersion: r.version,
    inserts: r.planned.insert,
    updates: r.planned.update,
    deletes: r.planned.delete,
    mode: 'repair',
  };
}

export class RepairPreviewSource implements PreviewSource {
  readonly summary: PreviewSummary;

  constructor(
    mapping: Mapping,
    readonly report: RepairReport,
    private readonly columns: PreviewColumn[],
    private readonly onApply: (report: RepairReport) => Promise<void>,
    private readonly onDispose: () => void = () => undefined,
  ) {
    this.summary = repairSummary(mapping, report);
  }

  page(filter: PreviewFilter, offset: number, limit: number, search?: string): Promise<PreviewPage> {
    const include = new Set<string>(includeFor(filter));
    const needle = search?.toLowerCase();
    const rows = (this.report.preview?.rows ?? [])
      .filter((r) => include.has(r.action))
      .map((r) => toPreviewRow(r, this.columns))
      .filter((r) => !needle || [...r.cells, ...(r.before ?? [])].some((c) => c !== null && c.toLowerCase().includes(needle)));
    return Promise.resolve({ filter, offset, ...(search ? { search } : {}), total: rows.length, columns: this.columns, rows: rows.slice(offset, offset + limit) });
  }

  apply(): Promise<void> {
    return this.onApply(this.report);
  }

  dispose(): void {
    this.onDispose();
  }
}
