import type { PreviewFilter, PreviewPage, PreviewRow, PreviewSummary } from '../protocol/messages';

/**
 * What a preview needs from the engine: a plan computed read-only, paged rows with
 * display cells (the host formats bigint/decimal values; they never become numbers),
 * and the two actions the user can take.
 */
export interface PreviewSource {
  summary: PreviewSummary;
  /** `search`: only rows whose key or values contain it (case-insensitive, host-side). */
  page(filter: PreviewFilter, offset: number, limit: number, search?: string): Promise<PreviewPage>;
  /** Applies exactly the previewed plan (the runner checks the versions still match). */
  apply(): Promise<void>;
  /** Drops the plan's resources (temp files, connections). */
  dispose(): void;
  /**
   * Recomputes the plan up to `toVersion` (the Preview's version picker); `summary` and the
   * pages then describe that plan, and apply() syncs exactly up to it.
   */
  retarget?(toVersion: number): Promise<void>;
  /** The statement that applies one previewed row to the target ("Copy as SQL"). */
  rowSql?(row: PreviewRow): string;
  /** Starts Preview on a Neon Branch for the mapping (only when `summary.onBranch`). */
  previewOnBranch?(): void;
  /** A preview on a Neon branch (`summary.branch`): its connection string, password included. */
  connectionString?(): string;
  /** A preview on a Neon branch: Cancel deletes the branch (then the panel closes). */
  discard?(): Promise<void>;
}

/** RFC 4180 CSV: every field quoted when it needs it; NULL is an empty field. */
export function csvLine(fields: ReadonlyArray<string | null>): string {
  return fields.map((f) => (f === null ? '' : /[",\r\n]/.test(f) || f === '' ? `"${f.replace(/"/g, '""')}"` : f)).join(',') + '\r\n';
}

/** The plan's rows as CSV lines: op, each column, and for updates each changed column's old value. */
export async function* planCsv(source: Pick<PreviewSource, 'page'>, filter: PreviewFilter, search: string | undefined, pageSize = 1000): AsyncGenerator<string> {
  let offset = 0;
  let header = false;
  for (;;) {
    const p = await source.page(filter, offset, pageSize, search);
    if (!header) {
      yield csvLine(['op', ...p.columns.map((c) => c.name), ...p.columns.filter((c) => !c.isKey).map((c) => `${c.name} (before)`)]);
      header = true;
    }
    for (const r of p.rows) {
      const before = p.columns.map((c, i) => (c.isKey ? undefined : r.op === 'update' && r.changed?.includes(c.name) ? (r.before?.[i] ?? null) : null)).filter((x): x is string | null => x !== undefined);
      yield csvLine([r.op, ...r.cells, ...before]);
    }
    offset += p.rows.length;
    if (p.rows.length < pageSize || (p.total !== null && offset >= p.total)) return;
  }
}
