/**
 * The one protocol between the extension host and its webviews (Preview and Progress).
 *
 * Both sides import these zod schemas and `safeParse` every inbound message; nothing
 * else is shared between `src/` and `media/`, except types from the engine's import-free
 * port files (`RunHistoryEntry`), so a schema and the engine's type cannot drift. Rules:
 * - every message is an object discriminated on `type`;
 * - a webview request carries an `id`; the host answers exactly once with
 *   `{type: 'response', id, ok, error?, result?}`;
 * - the host posts nothing until the webview has sent `ready` (the panel queues);
 * - a webview never names a command or a file to run: requests are a closed set.
 *
 * Values cross as JSON (webview postMessage does not carry bigint), so cells are display
 * strings formatted by the host; 64-bit integers and decimals never become JS numbers.
 */
import { z } from 'zod';
// Type only, from a port file with no imports: the webview build gets no engine code.
import type { RunHistoryEntry } from '../sync/ports/runLog';

export const PanelKind = z.enum(['preview', 'progress', 'rows', 'report']);
export type PanelKind = z.infer<typeof PanelKind>;

const RequestId = z.string().min(1).max(64);

// ---------------------------------------------------------------- shared payloads

/** Bounds of ErrorSetting (the host leaves out a setting beyond them rather than break a snapshot). */
export const MAX_SETTING_KEY = 500;
export const MAX_SETTING_FILE = 4096;

/**
 * The setting an error names, when the editor can open it (src/views/settingLocation.ts
 * `openableSetting`): a `deltaSync.*` VS Code setting, or a key of a mapping file, which
 * carries the file. Shown by a panel (Open Setting); the webview never sends it back (the
 * host opens the setting of the error it holds).
 */
export const ErrorSetting = z.discriminatedUnion('scope', [
  z.object({ scope: z.literal('vscode'), key: z.string().startsWith('deltaSync.').max(MAX_SETTING_KEY) }),
  z.object({ scope: z.literal('mapping'), key: z.string().min(1).max(MAX_SETTING_KEY), file: z.string().min(1).max(MAX_SETTING_FILE) }),
]);
export type ErrorSetting = z.infer<typeof ErrorSetting>;

/** Error shape for responses and snapshots (a SyncError flattened). */
export const ProtocolError = z.object({
  message: z.string(),
  kind: z.string().optional(),
  hint: z.string().optional(),
  /** The setting the error names, when one can be opened: the Progress panel's error box offers Open Setting. */
  setting: ErrorSetting.optional(),
});
export type ProtocolError = z.infer<typeof ProtocolError>;

export const RunStatus = z.enum(['idle', 'running', 'stopping', 'succeeded', 'failed', 'cancelled']);
export type RunStatus = z.infer<typeof RunStatus>;

/** What the Progress panel renders: the host folds runner events into this and posts it, throttled. */
export const ProgressSnapshot = z.object({
  runId: z.string().nullable(),
  mapping: z.string().nullable(),
  mode: z.enum(['initial', 'incremental', 'dry-run', 'repair']).nullable(),
  status: RunStatus,
  phase: z.string().nullable(),
  fromVersion: z.number().int().nullable(),
  toVersion: z.number().int().nullable(),
  /** Version of the last committed batch. */
  version: z.number().int().nullable(),
  rowsRead: z.number().nonnegative(),
  rowsApplied: z.number().nonnegative(),
  totalRows: z.number().nonnegative().nullable(),
  /** Percent done (0-100) against `totalRows`, when known: what the bar and the status bar show. */
  percent: z.number().min(0).max(100).nullable().optional(),
  rowsPerSecond: z.number().nonnegative(),
  etaSeconds: z.number().nonnegative().nullable(),
  startedAt: z.number().nullable(),
  updatedAt: z.number(),
  warnings: z.array(z.string()),
  error: ProtocolError.nullable(),
  /** Mapping mode "auto": the path the run took and why ("snapshot swap: 420,000 changes are 42% of 1,000,000 rows, above ..."). */
  auto: z.string().nullable().optional(),
  /** Recent throughput samples `[ms since epoch, rows/s]`, oldest first (the chart). */
  throughput: z.array(z.tuple([z.number(), z.number().nonnegative()])).max(240).optional(),
});
export type ProgressSnapshot = z.infer<typeof ProgressSnapshot>;

/** `unchanged`: an upsert whose row the target already holds (listed on its own tab). */
export const ChangeOp = z.enum(['insert', 'update', 'delete', 'unchanged']);
export type ChangeOp = z.infer<typeof ChangeOp>;

export const PreviewColumn = z.object({
  name: z.string(),
  /** Delta type as shown to users ("long", "decimal(10,2)"). */
  sourceType: z.string(),
  /** Postgres type of the mapped column. */
  targetType: z.string().nullable(),
  isKey: z.boolean(),
});
export type PreviewColumn = z.infer<typeof PreviewColumn>;

export const PreviewRow = z.object({
  op: ChangeOp,
  /** Display cells in `columns` order; null is SQL NULL. */
  cells: z.array(z.string().nullable()),
  /** For updates: the previous cells, same order (null where unknown). */
  before: z.array(z.string().nullable()).nullable(),
  /**
   * For updates: the columns that change. The engine reports only the key and the changed
   * columns of an update, so cells of other columns are unknown (not NULL).
   */
  changed: z.array(z.string()).optional(),
});
export type PreviewRow = z.infer<typeof PreviewRow>;

export const PreviewFilter = z.enum(['all', 'insert', 'update', 'delete', 'unchanged']);
export type PreviewFilter = z.infer<typeof PreviewFilter>;

/** A pre-apply check that found rows (the engine's PreviewWarning): Apply waits for the user's acknowledgement. */
export const PreviewWarning = z.object({
  check: z.enum(['existing-key', 'null-key', 'duplicate-key', 'too-long', 'numeric-range', 'integer-range', 'timestamp-range', 'nul-byte']),
  column: z.string().optional(),
  count: z.number().int().nonnegative(),
  message: z.string(),
  samples: z.array(z.record(z.string(), z.string().nullable())).max(20),
  /** The sync would refuse these rows: Apply stays disabled (no acknowledgement lets it through). */
  blocking: z.boolean().optional(),
});
export type PreviewWarning = z.infer<typeof PreviewWarning>;

export const PreviewSummary = z.object({
  mapping: z.string(),
  sourceTable: z.string(),
  targetTable: z.string(),
  fromVersion: z.number().int().nullable(),
  toVersion: z.number().int(),
  inserts: z.number().int().nonnegative(),
  updates: z.number().int().nonnegative(),
  deletes: z.number().int().nonnegative(),
  /** Upserts whose row is already identical in the target. */
  unchanged: z.number().int().nonnegative().optional(),
  /** With a lineage version column: changes the out-of-order guard refuses (the target row is newer); listed under unchanged. */
  keptByGuard: z.number().int().nonnegative().optional(),
  /** repair: a Verify & Repair by checksums (the rows are what the repair writes). */
  mode: z.enum(['initial', 'incremental', 'repair']).optional(),
  /** The target table does not exist yet: applying creates it with `ddl`. */
  targetMissing: z.boolean().optional(),
  ddl: z.string().optional(),
  /** The DDL the sync runs first, in the transaction of its first batch (schema drift: columns added, renamed, widened, dropped). */
  alterations: z.array(z.string()).max(200).optional(),
  /** Mapping mode "auto": the path the sync takes (change feed or snapshot load) and why; the rows are the same either way. */
  auto: z.object({ path: z.enum(['incremental', 'snapshot']), reason: z.string() }).optional(),
  /** The target is a Neon branch: the panel offers Preview on a Neon Branch. */
  onBranch: z.boolean().optional(),
  /**
   * A preview on a Neon branch: the sync ran on branch `name`; the rows are what Apply to
   * Parent will change on `parent`. `connection` is the branch's connection string with the
   * password masked (the host copies the real one); `ran` says what the sync on the branch did.
   * Apply and Cancel become Apply to Parent and Discard Branch.
   */
  branch: z.object({ name: z.string(), id: z.string(), parent: z.string(), connection: z.string(), ran: z.string() }).optional(),
  /** Pre-apply checks that found rows; with any, Apply needs `acknowledged`. */
  warnings: z.array(PreviewWarning).max(20).optional(),
  /** Versions the picker offers ("sync up to"): `min` the first the plan can end at, `max` the latest. */
  versionRange: z.object({ min: z.number().int().nonnegative(), max: z.number().int().nonnegative() }).optional(),
  /** Set once applied: the panel is a read-only record of this plan. */
  applied: z.object({ at: z.string(), toVersion: z.number().int() }).optional(),
});
export type PreviewSummary = z.infer<typeof PreviewSummary>;

export const PreviewPage = z.object({
  filter: PreviewFilter,
  /** The search the rows match (none: all rows of the filter). */
  search: z.string().optional(),
  offset: z.number().int().nonnegative(),
  /** Rows matching the filter, when known. */
  total: z.number().int().nonnegative().nullable(),
  columns: z.array(PreviewColumn),
  rows: z.array(PreviewRow),
});
export type PreviewPage = z.infer<typeof PreviewPage>;

const HiddenColumns = z.array(z.string().max(200)).max(2000);

/** Persisted by the webview (`setState`) and handed back to the serializer on reload. */
export const PanelState = z.discriminatedUnion('panel', [
  z.object({
    panel: z.literal('preview'),
    mapping: z.string(),
    /** Where the user was, so the table comes back the same after hide/show. */
    filter: PreviewFilter.optional(),
    offset: z.number().int().nonnegative().optional(),
    search: z.string().max(200).optional(),
    /** Columns the user hid (grid column keys), kept while the panel lives. */
    hidden: HiddenColumns.optional(),
  }),
  z.object({ panel: z.literal('progress'), runId: z.string().nullable() }),
  /** Show Rows: a target table, paged and sorted by the host's query. */
  z.object({ panel: z.literal('rows'), connection: z.string(), schema: z.string(), table: z.string(), hidden: HiddenColumns.optional() }),
  /** Describe, History, Dry Run: a report the host computed once (not restored after a reload). */
  z.object({ panel: z.literal('report'), title: z.string() }),
]);
export type PanelState = z.infer<typeof PanelState>;

// ---------------------------------------------------------------- webview -> host

export const ReadyMessage = z.object({ type: z.literal('ready'), panel: PanelKind });
export const PreviewPageRequest = z.object({
  type: z.literal('preview/page'),
  id: RequestId,
  filter: PreviewFilter,
  offset: z.number().int().nonnegative(),
  limit: z.number().int().min(1).max(1000),
  /** Host-side search over the key and values (case-insensitive). */
  search: z.string().max(200).optional(),
});
/** `acknowledged`: the user ticked "I understand" under the pre-apply warnings. */
export const ApplyRequest = z.object({ type: z.literal('preview/apply'), id: RequestId, acknowledged: z.boolean().optional() });
/** Puts text (a row as JSON) on the clipboard; the host does it (webview clipboard access varies). */
export const CopyRequest = z.object({ type: z.literal('preview/copy'), id: RequestId, text: z.string().max(5_000_000) });
/** Copies one previewed row as the SQL statement that applies it (the host writes it with the engine's quoting). */
export const CopySqlRequest = z.object({ type: z.literal('preview/copySql'), id: RequestId, row: PreviewRow });
/** Saves every row of the plan (the filter and search given) as a CSV file the user picks. */
export const ExportCsvRequest = z.object({ type: z.literal('preview/exportCsv'), id: RequestId, filter: PreviewFilter, search: z.string().max(200).optional() });
/** Recompute the plan up to this version (the version picker); the host answers, then sends a fresh `init`. */
export const VersionRequest = z.object({ type: z.literal('preview/version'), id: RequestId, toVersion: z.number().int().nonnegative() });
export const CancelRequest = z.object({ type: z.literal('preview/cancel'), id: RequestId });
/** Run this mapping's sync into a new child branch of its Neon target (the host's own flow). */
export const OnBranchRequest = z.object({ type: z.literal('preview/onBranch'), id: RequestId });
/** A preview on a branch: put the branch's connection string (with its password) on the clipboard. */
export const CopyConnectionRequest = z.object({ type: z.literal('preview/copyConnection'), id: RequestId });
export const StopRequest = z.object({ type: z.literal('run/stop'), id: RequestId });
/** Open Setting in the Progress panel's error box: the host opens the setting its current run's error names (nothing else). */
export const OpenSettingRequest = z.object({ type: z.literal('run/openSetting'), id: RequestId });
/** Show Rows: a page of the target table, sorted by one of its columns (the host checks the name). */
export const RowsPageRequest = z.object({
  type: z.literal('rows/page'),
  id: RequestId,
  offset: z.number().int().nonnegative(),
  limit: z.number().int().min(1).max(1000),
  sort: z.object({ column: z.string().max(128), dir: z.enum(['asc', 'desc']) }).optional(),
});

export const WebviewToHost = z.discriminatedUnion('type', [
  ReadyMessage,
  PreviewPageRequest,
  ApplyRequest,
  CopyRequest,
  CopySqlRequest,
  ExportCsvRequest,
  CancelRequest,
  VersionRequest,
  OnBranchRequest,
  CopyConnectionRequest,
  StopRequest,
  OpenSettingRequest,
  RowsPageRequest,
]);
export type WebviewToHost = z.infer<typeof WebviewToHost>;
export type WebviewRequest = Exclude<WebviewToHost, { type: 'ready' }>;

// ---------------------------------------------------------------- host -> webview
/** One past run of a mapping: the engine's `RunHistoryEntry`, validated (values as text). */
export const RunHistoryRow: z.ZodType<RunHistoryEntry> = z.object({
  runId: z.string(),
  mode: z.string(),
  status: z.string(),
  fromVersion: z.string().nullable(),
  toVersion: z.string().nullable(),
  rows: z.string().nullable(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  error: z.string().nullable(),
  /** Mapping mode "auto": the path the run took and why (change count, rows, share, auto.maxChangeShare); absent outside mode auto. */
  auto: z.object({ path: z.enum(['incremental', 'snapshot']), reason: z.string() }).optional(),
});
export const RunHistory = z.object({ mapping: z.string(), runs: z.array(RunHistoryRow).max(100) });
export type RunHistory = z.infer<typeof RunHistory>;
export const HistoryMessage = z.object({ type: z.literal('history'), history: RunHistory });


/** One grid of a report: display text per cell (null is SQL NULL), numbers already formatted. */
export const ReportGrid = z.object({
  id: z.string(),
  title: z.string(),
  columns: z.array(z.object({
    name: z.string(),
    /** Header tooltip (a type, what the column means). */
    title: z.string().optional(),
    numeric: z.boolean().optional(),
    /** Kept at the left (a key, a version). */
    frozen: z.boolean().optional(),
  })),
  rows: z.array(z.array(z.string().nullable())).max(50_000),
  /** Shown instead of the grid when there are no rows. */
  empty: z.string().optional(),
  /** For rows cut off: "…and 1,234 more". */
  more: z.string().optional(),
});
export type ReportGrid = z.infer<typeof ReportGrid>;

/**
 * What the Describe, History and Dry Run panels show: facts (label and value) and grids.
 * The host builds it once (src/views/reports.ts); the webview only renders it.
 */
export const Report = z.object({
  kind: z.enum(['describe', 'delta-history', 'sync-history', 'dry-run']),
  title: z.string(),
  subtitle: z.string().optional(),
  /** A sentence above the facts ("nothing was written"). */
  note: z.string().optional(),
  facts: z.array(z.object({ label: z.string(), value: z.string() })),
  grids: z.array(ReportGrid).max(4),
});
export type Report = z.infer<typeof Report>;

export const InitMessage = z.object({
  type: z.literal('init'),
  state: PanelState,
  /** Preview panels get the summary up front; the rows come by page requests. */
  preview: PreviewSummary.nullable(),
  progress: ProgressSnapshot.nullable(),
  /** Progress panels: the run history of the last mapping run, when known. */
  history: RunHistory.nullable().optional(),
  /** Preview panels: rows per page (`deltaSync.preview.pageSize`). */
  pageSize: z.number().int().min(1).max(1000).optional(),
  /** Report panels: the whole report. */
  report: Report.nullable().optional(),
});
export const ProgressMessage = z.object({ type: z.literal('progress'), snapshot: ProgressSnapshot });


/** A page of a target table: every value as Postgres text, NULL as null. */
export const TableRowsPage = z.object({
  table: z.string(),
  /** `key`: part of the primary key (the grid keeps it at the left). */
  columns: z.array(z.object({ name: z.string(), type: z.string(), key: z.boolean().optional() })),
  offset: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  rows: z.array(z.array(z.string().nullable())),
});
export type TableRowsPage = z.infer<typeof TableRowsPage>;

/** The result carried by a successful response, discriminated by what was asked. */
export const ResponseResult = z.discriminatedUnion('type', [
  z.object({ type: z.literal('previewPage'), page: PreviewPage }),
  z.object({ type: z.literal('accepted') }),
  /** Export: where the file went and how many rows it holds (none: the user cancelled). */
  z.object({ type: z.literal('exported'), file: z.string().nullable(), rows: z.number().int().nonnegative() }),
  z.object({ type: z.literal('rowsPage'), page: TableRowsPage }),
  /** Copy as SQL: the statement now on the clipboard. */
  z.object({ type: z.literal('copied'), text: z.string() }),
]);
export type ResponseResult = z.infer<typeof ResponseResult>;

export const ResponseMessage = z.discriminatedUnion('ok', [
  z.object({ type: z.literal('response'), id: RequestId, ok: z.literal(true), result: ResponseResult }),
  z.object({ type: z.literal('response'), id: RequestId, ok: z.literal(false), error: ProtocolError }),
]);
export type ResponseMessage = z.infer<typeof ResponseMessage>;

export const HostToWebview = z.discriminatedUnion('type', [InitMessage, ProgressMessage, HistoryMessage, ResponseMessage]);
export type HostToWebview = z.infer<typeof HostToWebview>;

/** Parses an inbound message; returns undefined (never throws) for anything off-protocol. */
export function parseWebviewToHost(raw: unknown): WebviewToHost | undefined {
  const r = WebviewToHost.safeParse(raw);
  return r.success ? r.data : undefined;
}

export function parseHostToWebview(raw: unknown): HostToWebview | undefined {
  const r = HostToWebview.safeParse(raw);
  return r.success ? r.data : undefined;
}

/** The snapshot before any run: what a fresh Progress panel shows. */
export function idleProgress(now: number): ProgressSnapshot {
  return {
    runId: null,
    mapping: null,
    mode: null,
    status: 'idle',
    phase: null,
    fromVersion: null,
    toVersion: null,
    version: null,
    rowsRead: 0,
    rowsApplied: 0,
    totalRows: null,
    rowsPerSecond: 0,
    etaSeconds: null,
    startedAt: null,
    updatedAt: now,
    warnings: [],
    error: null,
  };
}
