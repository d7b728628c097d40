/**
 * End-to-end test of issue 13's ten points in a real VS Code (code-server + Chromium),
 * driven through the UI as a user would: `tsx test/e2e/ux.ts` (part of `npm run test:e2e`).
 *
 * Data, written by the project's own Delta writer (src/fixtures/DeltaTableWriter.ts):
 * - `wide_events`: 18 columns (long text, timestamps, dates, decimals, binary, booleans,
 *   float/double/int/long), 1,200 rows, CDF on; the test later commits a version with
 *   1,100 updates while VS Code watches.
 * - `big_events`: 200,000 rows (the 200k preview's timing, a paced initial load to Stop).
 * - A throwaway PostgreSQL whose role `app` must log in with a password (point 5).
 *
 * Passes: the whole script in the dark theme at 1000x700, then the main flow in the light
 * theme at 1400x900 (its screenshots are the README's pictures:
 * E2E_UPDATE_README_IMAGES=1 copies them to docs/images). Screenshots in
 * .test-artifacts/e2e-ux/<pass>/. Timings of the 200k preview are printed, not asserted.
 * E2E_UX_PASS=dark|light runs one pass; E2E_KEEP=1 keeps the temp folders.
 *
 * Describe Table and Show Table History (from the Sources tree: the inline action and the
 * context menu) and Dry Run (the Mappings tree's context menu) open grid report panels
 * (src/views/ReportPanel.ts): both passes read their grids after the new Delta version.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import type { Frame, Page } from 'playwright-core';
import { DeltaTableWriter, type WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { startThrowawayServer, type TestServer } from '../helpers/postgres';
import {
  addConnectionByUrl,
  clearNotifications,
  contextMenu,
  expandPane,
  finishCreateMapping,
  freePort,
  grouped,
  paneRows,
  pickQuickInputItem,
  prepareExtension,
  quickInputStep,
  rowLabelled,
  runE2e,
  runPaletteCommand,
  showPane,
  skipRequested,
  stepRecorder,
  waitForText,
  webviewFrame,
  withWorkbench,
  type PreparedExtension,
} from './workbench';
import { connectionsKeysHistorySteps } from './uxConnectionsKeysHistory';

const ROOT = path.resolve(__dirname, '../..');
const ARTIFACTS = path.join(ROOT, '.test-artifacts', 'e2e-ux');
const { log, step, timings, report } = stepRecorder('e2e-ux');
const measured: string[] = [];

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

// ------------------------------------------------------------------ data

const WIDE_ROWS = 1_200;
const WIDE_UPDATES = 1_100;
const BIG_ROWS = 200_000;
const PAGE_SIZE = 100;
/** 2022-09-27T19:44:46.618568Z in microseconds (the raw value). */
const T0 = 1_664_307_886_618_568n;

const s = (name: string, nullable = true): WriterColumn => ({ name, type: { kind: 'primitive', name: 'string' }, nullable });
const prim = (name: string, type: 'timestamp' | 'date' | 'double' | 'float' | 'long' | 'integer' | 'boolean' | 'binary'): WriterColumn => ({ name, type: { kind: 'primitive', name: type } });
const WIDE_COLUMNS: WriterColumn[] = [
  s('event_id', false),
  s('account_id'),
  s('title'),
  s('description'),
  prim('created_at', 'timestamp'),
  prim('event_date', 'date'),
  { name: 'amount', type: { kind: 'decimal', precision: 12, scale: 2 } },
  prim('score', 'double'),
  prim('quantity', 'long'),
  prim('priority', 'integer'),
  prim('is_flagged', 'boolean'),
  prim('payload', 'binary'),
  s('category'),
  s('notes'),
  prim('updated_at', 'timestamp'),
  prim('ratio', 'float'),
  s('region'),
  s('status'),
];
const CATEGORIES = ['billing', 'support', 'sales', 'ops', 'security'];
const REGIONS = ['eu-west', 'us-east', 'ap-south', 'sa-east'];

function eventId(i: number): string {
  return `evt_${String(i).padStart(7, '0')}`;
}

/** Long text whose middle changes with `rev` (the cell inspector's diff marks only that). */
function description(i: number, rev: number): string {
  const head = `Event ${i}: ${'The quick brown fox jumps over the lazy dog. '.repeat(20)}`;
  const tail = ` ${'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(12)}End of event ${i}.`;
  return `${head}[revision ${rev}]${tail}`;
}

function wideRow(i: number, rev = 1): Row {
  return {
    event_id: eventId(i),
    // Point 1: a key with nulls (the first row's) and duplicates (300 accounts for 1,200 rows).
    account_id: i % 10 === 1 ? null : `acct_${String(i % 300).padStart(4, '0')}`,
    title: `Event number ${i}`,
    description: description(i, rev),
    created_at: T0 + BigInt(i) * 3_600_000_000n,
    event_date: i === 2 ? 0 : 19_713 + (i % 400),
    amount: `${(i * 37) % 100_000}.${String(i % 100).padStart(2, '0')}`,
    score: (i % 1000) / 7,
    quantity: BigInt(i) * 1_000_003n,
    priority: i % 5,
    is_flagged: i % 3 === 0,
    payload: new Uint8Array([0x31, i % 256, (i * 7) % 256]),
    category: CATEGORIES[i % CATEGORIES.length] as string,
    notes: i % 4 === 0 ? null : `Note ${i} ${'x'.repeat(i % 200)}`,
    updated_at: T0 + BigInt(i) * 60_000_000n + BigInt(rev) * 86_400_000_000n,
    ratio: (i % 100) / 8,
    region: REGIONS[i % REGIONS.length] as string,
    status: rev === 1 ? 'open' : 'closed',
  };
}

function* bigRows(): Generator<Row> {
  for (let i = 1; i <= BIG_ROWS; i++) {
    yield { id: BigInt(i), name: `row ${i}`, created_at: T0 + BigInt(i) * 1_000_000n, amount: `${i % 10_000}.${String(i % 100).padStart(2, '0')}` };
  }
}

interface Tables {
  tables: string;
  wide: string;
  big: string;
}

/** A pass's Delta tables (each pass commits to them), `big_events` only when `big`. */
async function writeTables(dir: string, big: boolean): Promise<Tables> {
  const tables = path.join(dir, 'tables');
  const t = { tables, wide: path.join(tables, 'wide_events'), big: path.join(tables, 'big_events') };
  await step('write wide_events (18 columns, 1,200 rows, CDF on)', async () => {
    const w = await DeltaTableWriter.create(t.wide, { columns: WIDE_COLUMNS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(Array.from({ length: WIDE_ROWS }, (_, k) => wideRow(k + 1)));
  });
  if (big) {
    await step('write big_events (200,000 rows)', async () => {
      const w = await DeltaTableWriter.create(t.big, {
        columns: [
          { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
          s('name'),
          prim('created_at', 'timestamp'),
          { name: 'amount', type: { kind: 'decimal', precision: 10, scale: 2 } },
        ],
      });
      await w.append(bigRows());
    });
  }
  return t;
}

/** A throwaway PostgreSQL where role `app` must log in with its password (`right-password`). */
async function startPasswordPostgres(): Promise<TestServer> {
  return step('start PostgreSQL with password auth for role app', async () => {
    const srv = await startThrowawayServer({ hba: ['host all +needs_password 127.0.0.1/32 scram-sha-256'] });
    const c = new pg.Client({ connectionString: srv.adminUrl });
    await c.connect();
    try {
      await c.query(`SET password_encryption = 'scram-sha-256'`);
      await c.query('CREATE ROLE needs_password NOLOGIN');
      await c.query(`CREATE ROLE app LOGIN PASSWORD 'right-password' IN ROLE needs_password`);
      await c.query('CREATE DATABASE shop OWNER app');
    } finally {
      await c.end();
    }
    // Tables in two schemas, so the Targets tree shows shop-local -> schemas -> tables.
    const shopUrl = new URL(srv.adminUrl);
    shopUrl.pathname = '/shop';
    const shop = new pg.Client({ connectionString: shopUrl.toString() });
    await shop.connect();
    try {
      await shop.query(`SET ROLE app; CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY); INSERT INTO sales.orders SELECT generate_series(1, 3);
        CREATE TABLE public.customers (id int PRIMARY KEY); ANALYZE sales.orders; ANALYZE public.customers`);
    } finally {
      await shop.end();
    }
    return srv;
  });
}

/** A workspace for one pass: the tables folder as a source and the mappings of the points. */
function makeWorkspace(dir: string, fx: Tables): void {
  fs.mkdirSync(path.join(dir, '.vscode'), { recursive: true });
  fs.mkdirSync(path.join(dir, '.delta-sync'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.vscode', 'settings.json'), JSON.stringify({ 'deltaSync.deltaFolders': [fx.tables], 'deltaSync.preview.pageSize': PAGE_SIZE }, null, 2));
  const mapping = (name: string, table: string, source: string, key: string, extra: Record<string, unknown> = {}): void => {
    fs.writeFileSync(
      path.join(dir, '.delta-sync', `${name}.json`),
      JSON.stringify({ name, source: { type: 'delta', path: source }, target: { connection: 'sandbox', schema: 'public', table }, key: [key], ...extra }, null, 2),
    );
  };
  mapping('wide-events', 'wide_events', fx.wide, 'event_id');
  mapping('by-account', 'by_account', fx.wide, 'account_id');
  if (!fs.existsSync(fx.big)) return;
  // Paced so that Stop lands mid-run (200,000 rows at 5,000 a second).
  mapping('big-events', 'big_events', fx.big, 'id', { batch: { maxRowsPerSecond: 5_000 } });
}

// ------------------------------------------------------------------ UI helpers

/** The frame of the Preview panel of `mapping` (its title names it). */
async function previewFrame(page: Page, mapping: string, timeoutMs = 180_000): Promise<Frame> {
  return webviewFrame(page, `h1:text-is("Preview: ${mapping}")`, timeoutMs);
}

async function openPreview(page: Page, mapping: string): Promise<Frame> {
  await runPaletteCommand(page, 'Delta Sync: Preview Changes');
  await pickQuickInputItem(page, mapping);
  return previewFrame(page, mapping);
}

/** Text of the cell in `column` (header label) of the grid's `row`-th rendered row (0-based, display order). */
async function cellText(frame: Frame, grid: string, column: string, row = 0): Promise<string> {
  const labels = await frame.locator(`[data-testid="${grid}"] .grid-header [role="columnheader"] button`).evaluateAll((bs) => bs.map((b) => b.firstChild?.textContent ?? ''));
  const i = labels.indexOf(column);
  check(i >= 0, `the grid has no column ${column} (columns: ${labels.join(', ')})`);
  const cell = frame.locator(`[data-testid="${grid}"] .grid-body [role="row"][aria-rowindex="${row + 2}"] [role="gridcell"][aria-colindex="${i + 1}"]`);
  await cell.waitFor({ timeout: 30_000 });
  return (await cell.textContent()) ?? '';
}

/**
 * Opens the cell inspector on `column` of the first row by keyboard: a click on the row's
 * first cell (frozen columns cover others in a narrow panel), arrows to the column, Enter.
 */
async function openInspector(page: Page, frame: Frame, column: string): Promise<void> {
  const labels = await frame.locator('[data-testid="preview-table"] .grid-header [role="columnheader"] button').evaluateAll((bs) => bs.map((b) => b.firstChild?.textContent ?? ''));
  const i = labels.indexOf(column);
  check(i >= 0, `the grid has no column ${column}`);
  await frame.locator('[data-testid="preview-table"] .grid-body [role="row"][aria-rowindex="2"] [role="gridcell"]').first().click();
  for (let k = 0; k < i; k++) await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
}

/** The rendered rows of a report/preview grid as cell texts in column order (rows are virtualised: only those in view). */
async function gridRows(frame: Frame, grid: string): Promise<string[][]> {
  return frame.locator(`[data-testid="${grid}"] .grid-body [role="row"]`).evaluateAll((rs) =>
    rs
      .map((r) => ({ i: Number(r.getAttribute('aria-rowindex')), cells: [...r.querySelectorAll('[role="gridcell"]')].sort((a, b) => Number(a.getAttribute('aria-colindex')) - Number(b.getAttribute('aria-colindex'))).map((c) => (c.textContent ?? '').trim()) }))
      .sort((a, b) => a.i - b.i)
      .map((r) => r.cells),
  );
}

/** The header labels of a grid, in order. */
async function gridColumns(frame: Frame, grid: string): Promise<string[]> {
  return frame.locator(`[data-testid="${grid}"] .grid-header [role="columnheader"] button`).evaluateAll((bs) => bs.map((b) => b.firstChild?.textContent ?? ''));
}

async function activeTestId(frame: Frame): Promise<string> {
  // Strings, not functions, for page code: this project's tsconfig has no DOM lib.
  return frame.evaluate<string>(`(() => { const a = document.activeElement; return a?.getAttribute('data-testid') ?? a?.getAttribute('role') ?? a?.tagName ?? ''; })()`);
}

/** Presses Tab in the webview until `testid` has focus (keyboard only); fails after `max` presses. */
async function tabTo(page: Page, frame: Frame, testid: string, max = 30, key = 'Tab'): Promise<void> {
  for (let i = 0; i < max; i++) {
    if ((await activeTestId(frame)) === testid) return;
    await page.keyboard.press(key);
  }
  check((await activeTestId(frame)) === testid, `${max} presses of ${key} did not reach ${testid} (focus on ${await activeTestId(frame)})`);
}

/**
 * The Preview webview's User Timing marks (media/preview.ts PREVIEW_MARKS): when the
 * latest counts were rendered and when the first page after them was painted. Read after
 * the fact, so the figure never depends on a probe being installed before the counts came.
 */
const PREVIEW_MARKS_READ = `(() => {
  const at = (n) => performance.getEntriesByName(n, 'mark').map((m) => m.startTime);
  const counts = at('delta-sync:preview-counts').pop();
  const painted = counts === undefined ? undefined : at('delta-sync:preview-first-page-painted').find((t) => t >= counts);
  return { counts: counts ?? null, painted: painted ?? null };
})()`;

/** Types a page number into the Page box and presses Enter; resolves to ms until the range label shows that page. */
async function timeJumpToPage(frame: Frame, pageNo: number, pageSize: number): Promise<number> {
  const expected = `${((pageNo - 1) * pageSize + 1).toLocaleString('en-US')}–`;
  return timePageLoad(frame, `const box = document.querySelector('[data-testid="goto-page"]'); box.focus(); box.value = '${pageNo}'; box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));`, expected);
}

/**
 * Runs `action` (page code) and resolves to the ms until the range label starts with
 * `expected` with rows in the grid. A string, not a function: tsx would wrap inner
 * functions in a __name helper the page lacks, and the project's tsconfig has no DOM lib.
 */
async function timePageLoad(frame: Frame, action: string, expected: string): Promise<number> {
  return frame.evaluate<number>(`new Promise((resolve, reject) => {
    const range = document.querySelector('[data-testid="page-range"]');
    if (!range) return reject(new Error('no range label'));
    const t0 = performance.now();
    const obs = new MutationObserver(() => {
      if ((range.textContent || '').startsWith(${JSON.stringify(expected)}) && document.querySelector('[data-testid="preview-table"] .grid-body [role="row"]')) {
        obs.disconnect();
        resolve(performance.now() - t0);
      }
    });
    obs.observe(range, { subtree: true, childList: true, characterData: true });
    setTimeout(() => {
      obs.disconnect();
      reject(new Error('no page ' + ${JSON.stringify(expected)} + ' within 60 s (range "' + range.textContent + '")'));
    }, 60000);
    ${action}
  })`);
}

/** WCAG contrast ratio of two computed CSS colours (rgb/rgba; alpha composited over `base`). */
function contrast(fg: string, bg: string, base: string): number {
  const parse = (c: string): [number, number, number, number] => {
    const m = /rgba?\(([^)]+)\)/.exec(c);
    const [r = 0, g = 0, b = 0, a = 1] = (m?.[1] ?? '0,0,0').split(',').map((x) => Number(x.trim()));
    return [r, g, b, a];
  };
  const over = (top: [number, number, number, number], under: [number, number, number]): [number, number, number] =>
    [0, 1, 2].map((k) => (top[k] as number) * top[3] + (under[k] as number) * (1 - top[3])) as [number, number, number];
  const lum = ([r, g, b]: [number, number, number]): number => {
    const ch = (v: number): number => {
      const x = v / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b);
  };
  const baseRgb = over(parse(base), [255, 255, 255]);
  const bgRgb = over(parse(bg), baseRgb);
  const fgRgb = over(parse(fg), bgRgb);
  const [l1, l2] = [lum(fgRgb), lum(bgRgb)].sort((a, b) => b - a) as [number, number];
  return (l1 + 0.05) / (l2 + 0.05);
}

// ------------------------------------------------------------------ Preview grid features (self-contained)

/**
 * `grid_events` for the Preview's grid features, written by the step that uses it (the
 * mapping watcher and the Sources tree pick it up): v1 250 rows, v2 50 more, v3 the first
 * 40 rows rewritten with the same values (an incremental from v1 lists them as unchanged).
 */
const GRID_V1 = 250;
const GRID_V2 = 50;
const GRID_SAME = 40;
const CITIES = ['Lisbon', 'Oslo', 'Quito'];
const gridRow = (i: number): Row => ({ id: BigInt(i), name: `item ${i}`, amount: `${i}.50`, city: CITIES[i % CITIES.length] as string });

async function writeGridEvents(dir: string): Promise<void> {
  const w = await DeltaTableWriter.create(dir, {
    columns: [
      { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
      s('name'),
      { name: 'amount', type: { kind: 'decimal', precision: 10, scale: 2 } },
      s('city'),
    ],
    configuration: { 'delta.enableChangeDataFeed': 'true' },
  });
  await w.append(Array.from({ length: GRID_V1 }, (_, k) => gridRow(k + 1)));
  await w.append(Array.from({ length: GRID_V2 }, (_, k) => gridRow(GRID_V1 + k + 1)));
  await w.update('id', Array.from({ length: GRID_SAME }, (_, k) => gridRow(k + 1)));
}

/** Width in px of the header cell of `column` in the preview grid. */
async function headerWidth(frame: Frame, column: string): Promise<number> {
  const labels = await gridColumns(frame, 'preview-table');
  const i = labels.indexOf(column);
  check(i >= 0, `the grid has no column ${column} (columns: ${labels.join(', ')})`);
  const box = await frame.locator(`[data-testid="preview-table"] .grid-header [role="columnheader"][aria-colindex="${i + 1}"]`).boundingBox();
  return box?.width ?? NaN;
}

/** The grid's first rendered row as {column: value}, NULL cells as null. */
async function firstRowValues(frame: Frame): Promise<Record<string, string | null>> {
  const cols = await gridColumns(frame, 'preview-table');
  const [row] = await gridRows(frame, 'preview-table');
  check(!!row, 'the grid shows no row');
  return Object.fromEntries(cols.map((c, i) => [c, row?.[i] === 'NULL' ? null : (row?.[i] ?? '')]));
}

interface GridCtx {
  workspace: string;
  tables: string;
  /** A folder outside the workspace for the exported CSV. */
  exports: string;
  shot: (p: Page, name: string) => Promise<unknown>;
}

/**
 * The Preview's grid features driven through the UI on a mapping of their own
 * (`grid-events`): column resize kept across pages, Copy Row as JSON (the clipboard's
 * text), Export CSV (the saved file), the version picker (an older "Up to" version, its
 * counts, Apply, the checkpoint at that version), the Unchanged tab, and "Delta Sync:
 * Cancel Preview" from the palette (nothing written). Then "Apply Preview" from the
 * palette under unacknowledged warnings (by-account): the modal, and its Cancel applies nothing.
 */
async function previewGridFeatures(p: Page, ctx: GridCtx): Promise<void> {
  const mapping = 'grid-events';
  const mappings = paneRows(p, 'Mappings');
  await step('[grid] a table grid_events (v1 250 rows, v2 +50, v3 40 rows rewritten unchanged) and its mapping, written outside VS Code', async () => {
    await writeGridEvents(path.join(ctx.tables, 'grid_events'));
    fs.writeFileSync(
      path.join(ctx.workspace, '.delta-sync', `${mapping}.json`),
      JSON.stringify({ name: mapping, source: { type: 'delta', path: path.join(ctx.tables, 'grid_events') }, target: { connection: 'sandbox', schema: 'public', table: 'grid_events' }, key: ['id'] }, null, 2),
    );
    await showPane(p, 'Mappings');
    const row = rowLabelled(mappings, p, mapping).filter({ hasText: 'not loaded yet' }).first();
    await row.waitFor({ timeout: 60_000 });
    await row.click();
  });

  let frame: Frame | undefined;
  let firstRows: string[][] = [];
  await step('[grid] initial Preview: drag a header edge to widen a column; the width stays on the next page', async () => {
    frame = await openPreview(p, mapping);
    await waitForText(frame, '[data-testid="count-insert"]', grouped(GRID_V1 + GRID_V2));
    await waitForText(frame, '[data-testid="page-range"]', `1–${PAGE_SIZE} of ${grouped(GRID_V1 + GRID_V2)}`);
    const labels = await gridColumns(frame, 'preview-table');
    check(labels.join() === 'op,id,name,amount,city', `the grid's columns are ${labels.join(', ')}`);
    // The plan's order (the snapshot's files), kept for the exported CSV below.
    firstRows = (await gridRows(frame, 'preview-table')).slice(0, 2);
    const before = await headerWidth(frame, 'name');
    const handle = frame.locator(`[data-testid="preview-table"] .grid-header [role="columnheader"][aria-colindex="${labels.indexOf('name') + 1}"] .grid-resize`);
    // In a narrow editor group the column's edge can sit under the group's border: the grid
    // scrolls sideways to show it first, as a user would.
    await handle.scrollIntoViewIfNeeded();
    const box = await handle.boundingBox();
    check(!!box, 'the name column has no resize handle');
    const x = (box?.x ?? 0) + (box?.width ?? 0) / 2;
    const y = (box?.y ?? 0) + (box?.height ?? 0) / 2;
    await p.mouse.move(x, y);
    await p.mouse.down();
    await p.mouse.move(x + 60, y, { steps: 4 });
    await p.mouse.move(x + 120, y, { steps: 4 });
    await p.mouse.up();
    const after = await headerWidth(frame, 'name');
    check(Math.abs(after - before - 120) <= 4, `dragging the name header's edge 120 px right made it ${Math.round(before)} -> ${Math.round(after)} px`);
    const cell = async (): Promise<number> => (await frame?.locator('[data-testid="preview-table"] .grid-body [role="row"][aria-rowindex="2"] [role="gridcell"][aria-colindex="3"]').boundingBox())?.width ?? NaN;
    check(Math.abs((await cell()) - after) <= 1, `the name cells are ${await cell()} px wide under a ${after} px header`);
    await ctx.shot(p, 'grid-01-column-resized');
    await frame.getByRole('button', { name: 'Next page' }).click();
    await waitForText(frame, '[data-testid="page-range"]', `101–200 of ${grouped(GRID_V1 + GRID_V2)}`);
    const page2 = await cellText(frame, 'preview-table', 'id');
    check(page2 !== firstRows[0]?.[1], `page 2 starts with the row of page 1 (id ${page2})`);
    const kept = await headerWidth(frame, 'name');
    check(Math.abs(kept - after) <= 1, `after Next the name column is ${Math.round(kept)} px, not the ${Math.round(after)} px it was resized to`);
    check(Math.abs((await cell()) - after) <= 1, `after Next the name cells are ${await cell()} px wide`);
    await ctx.shot(p, 'grid-02-column-width-kept-on-page-2');
  });

  await step('[grid] Copy Row: the clipboard holds the focused row as JSON, its values those of the grid', async () => {
    const f = frame as Frame;
    await p.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await p.evaluate(`navigator.clipboard.writeText('nothing copied yet')`);
    const shown = await firstRowValues(f);
    await f.locator('[data-testid="preview-table"] .grid-body [role="row"][aria-rowindex="2"] [role="gridcell"]').first().click();
    await f.locator('[data-testid="copy-row"]').click();
    await waitForText(f, '[data-testid="preview-status"]', 'Copied row 101 as JSON.', 15_000);
    let text = '';
    for (let i = 0; i < 25; i++) {
      text = await p.evaluate<string>(`navigator.clipboard.readText()`);
      if (text !== 'nothing copied yet') break;
      await p.waitForTimeout(200);
    }
    let copied: { op?: string; values?: Record<string, string | null> } = {};
    try {
      copied = JSON.parse(text) as typeof copied;
    } catch {
      check(false, `the clipboard holds no JSON: ${text.slice(0, 200)}`);
    }
    const { op, ...values } = shown;
    check(copied.op === op && op === 'insert', `the copied row's op is ${copied.op}, the grid's ${op}`);
    check(JSON.stringify(copied.values) === JSON.stringify(values), `the clipboard's values ${JSON.stringify(copied.values)} are not the grid's ${JSON.stringify(values)}`);
    const id = Number(values.id);
    check(JSON.stringify(values) === JSON.stringify({ id: String(id), name: `item ${id}`, amount: `${id}.50`, city: CITIES[id % CITIES.length] }), `row 101 reads ${JSON.stringify(values)}`);
    await ctx.shot(p, 'grid-03-copied-row-json');
  });

  await step('[grid] Export CSV: the save dialog, then the file holds the header and every row of the plan', async () => {
    const f = frame as Frame;
    fs.mkdirSync(ctx.exports, { recursive: true });
    const file = path.join(ctx.exports, 'grid-events-plan.csv');
    await f.locator('[data-testid="export-csv"]').click();
    const box = await quickInputStep(p, `Export the preview of ${mapping} as CSV`);
    await ctx.shot(p, 'grid-04-export-save-dialog');
    await box.fill(file);
    // The simple file dialog first moves to the typed folder (a first Enter may only do that): Enter until it closes.
    const saved = `Saved ${grouped(GRID_V1 + GRID_V2)} rows to ${file}.`;
    const title = p.locator('.quick-input-widget .quick-input-title', { hasText: `Export the preview of ${mapping} as CSV` }).first();
    for (let i = 0; i < 3; i++) {
      await p.waitForTimeout(500);
      if (!(await title.isVisible())) break;
      await box.press('Enter');
    }
    await waitForText(f, '[data-testid="preview-status"]', saved, 30_000);
    const lines = fs.readFileSync(file, 'utf8').split('\r\n');
    check(lines[0] === 'op,id,name,amount,city,name (before),amount (before),city (before)', `the CSV's header is ${lines[0]}`);
    // The first rows are page 1's first rows, in the plan's order; an insert has no old values.
    const expected = firstRows.map((r) => `${r.join(',')},,,`);
    check(expected.length === 2 && lines[1] === expected[0] && lines[2] === expected[1], `the CSV's first rows are ${JSON.stringify(lines.slice(1, 3))}, the grid's ${JSON.stringify(expected)}`);
    const ids = lines.slice(1, -1).map((l) => Number(l.split(',')[1]));
    check(lines.length === GRID_V1 + GRID_V2 + 2 && lines[lines.length - 1] === '', `the CSV has ${lines.length - 2} rows, not ${GRID_V1 + GRID_V2}`);
    check(new Set(ids).size === GRID_V1 + GRID_V2 && ids.every((i) => i >= 1 && i <= GRID_V1 + GRID_V2), 'the CSV does not hold each of ids 1-300 once');
    await ctx.shot(p, 'grid-05-exported-csv');
  });

  await step('[grid] the version picker: Up to v1 shows its 250 inserts; Apply loads v1; the tree says checkpoint v1, 2 versions behind', async () => {
    const f = frame as Frame;
    const select = f.locator('[data-testid="version-select"]');
    const options = await select.locator('option').allTextContents();
    check(options.join() === 'v3 (latest),v2,v1,v0', `the picker offers ${options.join(', ')}`);
    check((await select.inputValue()) === '3', `the picker starts at ${await select.inputValue()}, not the latest`);
    await select.selectOption('1');
    await waitForText(f, '[data-testid="count-insert"]', grouped(GRID_V1), 60_000);
    await waitForText(f, '[data-testid="preview-mode"]', /initial load of snapshot v1$/);
    await waitForText(f, '[data-testid="page-range"]', `1–${PAGE_SIZE} of ${grouped(GRID_V1)}`);
    check((await select.inputValue()) === '1', `the picker shows ${await select.inputValue()} after picking v1`);
    await waitForText(f, '[data-testid="filter-insert"]', `Inserts (${grouped(GRID_V1)})`);
    await ctx.shot(p, 'grid-06-version-picked-v1');
    await f.locator('[data-testid="apply"]').click();
    await showPane(p, 'Mappings');
    const row = rowLabelled(mappings, p, mapping).filter({ hasText: '2 versions behind' }).first();
    await row.waitFor({ timeout: 180_000 });
    if ((await row.getAttribute('aria-expanded')) !== 'true') await row.click();
    await mappings.filter({ hasText: 'Checkpoint' }).filter({ hasText: /Checkpoint\s*v1(?!\d)/ }).first().waitFor({ timeout: 30_000 });
    await mappings.filter({ hasText: 'Source' }).filter({ hasText: 'v3 · 2 versions behind' }).first().waitFor({ timeout: 30_000 });
    await mappings.filter({ hasText: 'Last run' }).filter({ hasText: `succeeded · initial load · ${grouped(GRID_V1)} rows` }).first().waitFor({ timeout: 30_000 });
    await ctx.shot(p, 'grid-07-applied-up-to-v1');
    await row.click();
  });

  await step('[grid] incremental Preview v1 → v3: the Unchanged tab lists the 40 rewritten rows', async () => {
    const f = await openPreview(p, mapping);
    await waitForText(f, '[data-testid="preview-mode"]', /incremental: checkpoint v1 → v3/);
    await waitForText(f, '[data-testid="count-insert"]', grouped(GRID_V2));
    await waitForText(f, '[data-testid="count-unchanged"]', grouped(GRID_SAME));
    const tab = f.locator('[data-testid="filter-unchanged"]');
    await waitForText(f, '[data-testid="filter-unchanged"]', `Unchanged (${GRID_SAME})`);
    await tab.click();
    await waitForText(f, '[data-testid="page-range"]', `1–${GRID_SAME} of ${GRID_SAME}`);
    check((await tab.getAttribute('aria-pressed')) === 'true', 'the Unchanged tab is not pressed');
    const rows = await gridRows(f, 'preview-table');
    check(rows.length > 0 && rows.every((r) => r[0] === 'unchanged'), `the Unchanged tab lists ops ${[...new Set(rows.map((r) => r[0]))].join(', ')}`);
    check(rows.every((r) => Number(r[1]) >= 1 && Number(r[1]) <= GRID_SAME), `the Unchanged tab lists ids ${rows.map((r) => r[1]).join(', ')}, not only the ${GRID_SAME} rewritten rows`);
    await ctx.shot(p, 'grid-08-unchanged-tab');
  });

  await step('[grid] "Delta Sync: Cancel Preview" from the palette: the panel closes, nothing is written', async () => {
    await runPaletteCommand(p, 'Delta Sync: Cancel Preview', { exact: true });
    await p.locator('.tabs-container .tab', { hasText: `Preview: ${mapping}` }).first().waitFor({ state: 'detached', timeout: 15_000 });
    await showPane(p, 'Mappings');
    const row = rowLabelled(mappings, p, mapping).filter({ hasText: '2 versions behind' }).first();
    await row.waitFor({ timeout: 30_000 });
    if ((await row.getAttribute('aria-expanded')) !== 'true') await row.click();
    await mappings.filter({ hasText: 'Checkpoint' }).filter({ hasText: /Checkpoint\s*v1(?!\d)/ }).first().waitFor({ timeout: 10_000 });
    await showPane(p, 'Targets');
    await runPaletteCommand(p, 'Delta Sync: Refresh Targets');
    const targets = paneRows(p, 'Targets');
    const sandbox = targets.filter({ hasText: 'Sandbox (embedded Postgres)' }).first();
    if ((await sandbox.getAttribute('aria-expanded')) !== 'true') await sandbox.click();
    await rowLabelled(targets, p, 'public.grid_events').filter({ hasText: '250 rows' }).first().waitFor({ timeout: 30_000 });
    await ctx.shot(p, 'grid-09-cancel-preview-nothing-written');
    await showPane(p, 'Mappings');
    await rowLabelled(mappings, p, mapping).first().click();
  });

  await step('[grid] "Apply Preview" from the palette under unacknowledged warnings (by-account): a modal; its Cancel applies nothing', async () => {
    await clearNotifications(p);
    const f = await openPreview(p, 'by-account');
    await f.locator('[data-testid="preview-warnings"]').waitFor({ state: 'visible', timeout: 60_000 });
    check(await f.locator('[data-testid="apply"]').isDisabled(), 'Apply is enabled before the warnings are acknowledged');
    await runPaletteCommand(p, 'Delta Sync: Apply Preview', { exact: true });
    const dialog = p.locator('.monaco-dialog-box').first();
    await dialog.waitFor({ state: 'visible', timeout: 15_000 });
    const said = ((await dialog.textContent()) ?? '').replace(/\s+/g, ' ');
    check(/The preview of by-account found problems/.test(said) && /null/i.test(said), `the modal says "${said.slice(0, 300)}"`);
    await dialog.locator('.monaco-button', { hasText: 'I Understand, Apply' }).first().waitFor({ timeout: 5_000 });
    await ctx.shot(p, 'grid-10-apply-preview-modal');
    await dialog.locator('.monaco-button', { hasText: /^Cancel$/ }).first().click();
    await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
    // Nothing applied: the same Preview, still asking for the acknowledgement; the mapping not loaded; no run.
    const again = await previewFrame(p, 'by-account', 15_000);
    check(await again.locator('[data-testid="apply"]').isDisabled(), 'Apply is enabled after the modal was cancelled');
    check(!(await again.locator('[data-testid="applied"]').isVisible()), 'the Preview says it is applying after the modal was cancelled');
    await p.waitForTimeout(2_000);
    check((await p.locator('.notification-toast', { hasText: /by-account/ }).count()) === 0, 'a notification about by-account appeared after the modal was cancelled');
    await showPane(p, 'Mappings');
    await rowLabelled(mappings, p, 'by-account').filter({ hasText: 'not loaded yet' }).first().waitFor({ timeout: 15_000 });
    await ctx.shot(p, 'grid-11-modal-cancelled-nothing-applied');
    await runPaletteCommand(p, 'Delta Sync: Cancel Preview', { exact: true });
    await p.locator('.tabs-container .tab', { hasText: 'Preview: by-account' }).first().waitFor({ state: 'detached', timeout: 15_000 });
    await rowLabelled(mappings, p, 'by-account').first().click();
  });
}

// ------------------------------------------------------------------ one pass

interface Pass {
  name: 'dark' | 'light';
  theme: string;
  viewport: { width: number; height: number };
  /** The whole script (dark) or the main flow (light). */
  full: boolean;
}

async function runPass(ext: PreparedExtension, pgServer: TestServer | undefined, pass: Pass): Promise<void> {
  const shots = path.join(ARTIFACTS, pass.name);
  fs.rmSync(shots, { recursive: true, force: true });
  fs.mkdirSync(shots, { recursive: true });
  const shot = (p: Page, name: string): Promise<Buffer> => p.screenshot({ path: path.join(shots, `${name}.png`) });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `delta-sync-ux-${pass.name}-`));
  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(workspace);
  const fx = await writeTables(tmp, pass.full);
  makeWorkspace(workspace, fx);
  const consoleErrors: string[] = [];
  try {
    const opts = {
      tmp,
      workspace,
      artifacts: shots,
      userSettings: { 'workbench.colorTheme': pass.theme },
      viewport: pass.viewport,
      sidebarWiden: pass.viewport.width >= 1400 ? 220 : 80,
      onPage: (pg0: Page) =>
        pg0.on('console', (m) => {
          if (m.type() === 'error') consoleErrors.push(m.text());
        }),
    };
    await withWorkbench(step, ext, opts, async (p) => {
      await step(`[${pass.name}] views: the tables with version, CDF state and row counts; the mappings`, async () => {
        for (const name of ['Sources', 'Targets', 'Mappings']) await expandPane(p, name);
        const sources = paneRows(p, 'Sources');
        await rowLabelled(sources, p, 'tables').first().click();
        await rowLabelled(sources, p, 'wide_events').filter({ hasText: `v1 · CDF on · ${grouped(WIDE_ROWS)} rows` }).first().waitFor({ timeout: 60_000 });
        if (pass.full) await rowLabelled(sources, p, 'big_events').filter({ hasText: `CDF off · ${grouped(BIG_ROWS)} rows` }).first().waitFor({ timeout: 60_000 });
        const mappings = paneRows(p, 'Mappings');
        for (const m of pass.full ? ['wide-events', 'by-account', 'big-events'] : ['wide-events', 'by-account']) await rowLabelled(mappings, p, m).first().waitFor({ timeout: 30_000 });
        await rowLabelled(mappings, p, 'wide-events').filter({ hasText: 'not loaded yet' }).first().waitFor({ timeout: 120_000 });
        await shot(p, '01-views');
      });

      if (pass.full) {
        await step('[point 7] Create Mapping: version and CDF in the source pick, an empty key re-asks that step only, then "Preview now?"', async () => {
          await runPaletteCommand(p, 'Delta Sync: Create Mapping...');
          await quickInputStep(p, 'Create Mapping (1/7)');
          const src = p.locator('.quick-input-list .monaco-list-row', { hasText: 'wide_events' }).first();
          await src.waitFor({ timeout: 30_000 });
          check(/v1 · CDF on · 1,200 rows/.test((await src.textContent()) ?? ''), `the source pick does not show version and CDF state: "${await src.textContent()}"`);
          await shot(p, '02-create-mapping-source');
          await src.click();
          await quickInputStep(p, 'Create Mapping (2/7)');
          await p.locator('.quick-input-list .monaco-list-row', { hasText: 'sandbox' }).first().click();
          const table = await quickInputStep(p, 'Create Mapping (3/7)');
          await table.fill('public.wide_copy');
          await table.press('Enter');
          const key = await quickInputStep(p, 'Create Mapping (4/7)');
          // Only scalar columns are offered; event_id is the guess. Untick it and accept an empty key.
          const guess = p.locator('.quick-input-list .monaco-list-row[aria-checked="true"]');
          check((await guess.count()) === 1 && /event_id/.test((await guess.first().textContent()) ?? ''), 'event_id is not the one preselected key');
          await guess.first().click();
          await p.locator('.quick-input-list .monaco-list-row[aria-checked="true"]').first().waitFor({ state: 'detached', timeout: 5_000 });
          await key.press('Enter');
          // The same step again (not the end of the flow, not step 1), saying why.
          await p.locator('.quick-input-widget input[placeholder*="Pick at least one key column"], .quick-input-widget [aria-label*="Pick at least one key column"]').first().waitFor({ timeout: 15_000 });
          await quickInputStep(p, 'Create Mapping (4/7)');
          await shot(p, '03-create-mapping-key-reasked');
          // Re-asked with the guess preselected again: accept it.
          const eventIdRow = p.locator('.quick-input-list .monaco-list-row', { has: p.locator('.label-name', { hasText: /^event_id$/ }) }).first();
          if ((await eventIdRow.getAttribute('aria-checked')) !== 'true') await eventIdRow.click();
          await key.press('Enter');
          const written = await finishCreateMapping<{ key?: string[]; target?: { table?: string } }>(p, workspace, 'wide-copy');
          check(written.key?.join() === 'event_id' && written.target?.table === 'wide_copy', `unexpected mapping written: ${JSON.stringify(written)}`);
          const toast = p.locator('.notification-toast', { hasText: 'Preview now?' }).first();
          await toast.waitFor({ timeout: 20_000 });
          await shot(p, '04-create-mapping-preview-now');
          await toast.locator('.monaco-button', { hasText: /^Preview/ }).first().click();
        });
      }

      const mainMapping = pass.full ? 'wide-copy' : 'wide-events';
      await step(`[points 2, 4, 10] initial-load Preview of ${mainMapping}: formatted values, page size, wide grid, inspector, search, jump`, async () => {
        const frame = pass.full ? await previewFrame(p, mainMapping) : await openPreview(p, mainMapping);
        await waitForText(frame, '[data-testid="count-insert"]', grouped(WIDE_ROWS));
        await waitForText(frame, '[data-testid="preview-mode"]', /initial load of snapshot v1/);
        // The page size setting (100) is honoured.
        await waitForText(frame, '[data-testid="page-range"]', `1–${PAGE_SIZE} of ${grouped(WIDE_ROWS)}`);
        // Point 2: values as Postgres prints them, never epoch microseconds or day numbers.
        const created = await cellText(frame, 'preview-table', 'created_at');
        check(/^2022-09-27 2\d:44:46\.618568\+00$/.test(created), `created_at shows "${created}"`);
        const date = await cellText(frame, 'preview-table', 'event_date');
        check(/^\d{4}-\d{2}-\d{2}$/.test(date), `event_date shows "${date}"`);
        const date2 = await cellText(frame, 'preview-table', 'event_date', 1);
        check(date2 === '1970-01-01', `day 0 shows "${date2}", not 1970-01-01`);
        const payload = await cellText(frame, 'preview-table', 'payload');
        check(/^\\x31[0-9a-f]{4}$/.test(payload), `payload shows "${payload}"`);
        const amount = await cellText(frame, 'preview-table', 'amount');
        check(/^\d+\.\d{2}$/.test(amount), `amount shows "${amount}"`);
        const flag = await cellText(frame, 'preview-table', 'is_flagged');
        check(flag === 'true' || flag === 'false', `is_flagged shows "${flag}"`);
        // The "computing the preview" notification ends with the first page and does not stay over the
        // pager (VS Code keeps a progress notification at least 800 ms after it appeared: hence the bound).
        const computing = p.locator('.notification-toast', { hasText: 'computing the preview' });
        await computing.first().waitFor({ state: 'detached', timeout: 1_500 }).catch(() => undefined);
        check((await computing.count()) === 0, `the rows are shown but the notification "${(await computing.first().textContent().catch(() => '')) ?? ''}" is still up`);
        await shot(p, '05-preview-initial');
        // Point 4: a wide table scrolls sideways in the grid's one scroll area; no column is a mile wide; the page does not scroll.
        const widths = await frame.locator('[data-testid="preview-table"] .grid-header [role="columnheader"]').evaluateAll((hs) => hs.map((h) => h.getBoundingClientRect().width));
        check(widths.length === 19 && Math.max(...widths) <= 400, `column widths ${widths.map(Math.round).join(', ')}`);
        const scroll = await frame.evaluate<{ sideways: boolean; pageScrolls: boolean }>(`(() => {
          const sc = document.querySelector('[data-testid="preview-table"] .grid-scroll');
          const doc = document.scrollingElement;
          return { sideways: sc.scrollWidth > sc.clientWidth, pageScrolls: doc.scrollHeight > doc.clientHeight + 1 };
        })()`);
        check(scroll.sideways, 'the 18-column table does not scroll sideways in the grid');
        check(!scroll.pageScrolls, 'the page scrolls besides the grid (two scroll areas)');
        // Point 10: Apply and Cancel on one line, even at 1000 px.
        const [a, c] = [await frame.locator('[data-testid="apply"]').boundingBox(), await frame.locator('[data-testid="cancel"]').boundingBox()];
        check(!!a && !!c && Math.abs(a.y - c.y) < 2, `Apply and Cancel are on different lines (${a?.y} / ${c?.y})`);
        // Cell inspector on a long value: Enter on the description cell shows all of it.
        await openInspector(p, frame, 'description');
        const pop = frame.locator('.grid-popover');
        await pop.waitFor({ timeout: 10_000 });
        const full = description(1, 1);
        await pop.locator('pre', { hasText: 'End of event 1.' }).first().waitFor({ timeout: 5_000 });
        check(((await pop.textContent()) ?? '').includes(`${grouped(full.length)} characters`), 'the inspector does not say how long the value is');
        await shot(p, '06-preview-cell-inspector');
        await p.keyboard.press('Escape');
        await pop.waitFor({ state: 'detached', timeout: 10_000 });
        // Search by key.
        await frame.locator('[data-testid="search"]').fill('evt_0000777');
        await waitForText(frame, '[data-testid="page-range"]', /^1–1 of 1 matching "evt_0000777"$/);
        check((await cellText(frame, 'preview-table', 'event_id')) === 'evt_0000777', 'the search shows another row');
        await shot(p, '07-preview-search');
        await frame.locator('[data-testid="search"]').fill('');
        await waitForText(frame, '[data-testid="page-range"]', `1–${PAGE_SIZE} of ${grouped(WIDE_ROWS)}`);
        // Jump to the last page, then to a row.
        await frame.locator('[data-testid="goto-page"]').fill('12');
        await frame.locator('[data-testid="goto-page"]').press('Enter');
        await waitForText(frame, '[data-testid="page-range"]', `1,101–1,200 of ${grouped(WIDE_ROWS)}`);
        check((await cellText(frame, 'preview-table', 'event_id')) === eventId(1101), 'page 12 does not start at row 1,101');
        await frame.locator('[data-testid="goto-row"]').fill('555');
        await frame.locator('[data-testid="goto-row"]').press('Enter');
        await waitForText(frame, '[data-testid="page-range"]', `501–600 of ${grouped(WIDE_ROWS)}`);
        await waitForText(frame, '[data-testid="preview-status"]', /Showing rows/);
        await shot(p, '08-preview-jump');
      });

      await step(`[points 3, 6] keyboard only: a filter tab and Next keep focus; Tab/Enter on Apply; the Progress panel shows the run`, async () => {
        const frame = await previewFrame(p, mainMapping);
        // Focus a tab with the keyboard (Tab from the search box goes forward through the toolbar; Shift+Tab back to the tabs).
        await frame.locator('[data-testid="search"]').focus();
        await tabTo(p, frame, 'filter-insert', 10, 'Shift+Tab');
        await p.keyboard.press('Enter');
        await waitForText(frame, '[data-testid="page-range"]', `1–${PAGE_SIZE} of ${grouped(WIDE_ROWS)}`);
        check((await activeTestId(frame)) === 'filter-insert', `after the filter tab's page loaded, focus is on "${await activeTestId(frame)}"`);
        // Next with the keyboard: the page loads and focus stays on Next; the next Tab goes to the Page box, not to Apply.
        const next = frame.getByRole('button', { name: 'Next page' });
        await next.focus();
        await p.keyboard.press('Enter');
        await waitForText(frame, '[data-testid="page-range"]', `101–200 of ${grouped(WIDE_ROWS)}`);
        check(await frame.evaluate<boolean>(`document.activeElement?.getAttribute('aria-label') === 'Next page'`), `after Next, focus is on "${await activeTestId(frame)}"`);
        await p.keyboard.press('Tab');
        check((await activeTestId(frame)) === 'goto-page', `Tab after Next lands on "${await activeTestId(frame)}"`);
        // Old rows never stay under a new range label: the first row is the page's first.
        check((await cellText(frame, 'preview-table', 'event_id')) === eventId(101), 'page 2 does not start at row 101');
        // To Apply by keyboard: Shift+Tab from the search box walks back through the toolbar, the counts and the header.
        await frame.locator('[data-testid="search"]').focus();
        await tabTo(p, frame, 'apply', 20, 'Shift+Tab');
        await shot(p, '09-preview-apply-focused');
        await p.keyboard.press('Enter');
        const progress = await webviewFrame(p, '[data-testid="status"]', 60_000);
        await waitForText(progress, '[data-testid="status"]', 'succeeded', 180_000);
        await waitForText(progress, '[data-testid="rows-applied"]', new RegExp(`^${grouped(WIDE_ROWS)}`));
        await progress.locator('[data-testid="history"] tbody tr').first().waitFor({ timeout: 30_000 });
        const internal = /initial-swap|initial-merge|_dns_|staging/i.exec((await progress.locator('body').textContent()) ?? '');
        check(!internal, `the Progress panel shows the internal word "${internal?.[0]}"`);
        await progress.locator('[data-testid="history"] tbody tr', { hasText: 'initial load' }).first().waitFor({ timeout: 10_000 });
        // The notification's counts have separators.
        await p.locator('.notification-toast', { hasText: `done: ${grouped(WIDE_ROWS)} inserted` }).first().waitFor({ timeout: 30_000 });
        await shot(p, '10-progress-initial-load');
        // The Preview is now the applied record (its tab behind Progress): the table exists, so no "does not exist yet: Apply creates it" note.
        await p.locator('.tabs-container .tab', { hasText: `Applied: ${mainMapping}` }).first().click();
        const record = await webviewFrame(p, `h1:text-is("Applied: ${mainMapping}")`, 30_000);
        await waitForText(record, '[data-testid="applied"]', /^Applied at/, 30_000);
        check(!(await record.locator('details.ddl:not(.alterations)').first().isVisible()), 'the applied record still says the target table does not exist yet');
        await shot(p, '10b-preview-applied-record');
        // Its webview was reloaded when shown (it was behind Progress), and is again after another hide
        // and show: each time the page it kept (page 2), never "Loading rows 101–200…" for ever (issue 15).
        await waitForText(record, '[data-testid="preview-status"]', new RegExp(`^Showing rows 101–200 of ${grouped(WIDE_ROWS)}\\.$`), 15_000);
        await p.locator('.tabs-container .tab', { hasText: 'Delta Sync: Progress' }).first().click();
        await p.locator('.tabs-container .tab', { hasText: `Applied: ${mainMapping}` }).first().click();
        const again = await webviewFrame(p, `h1:text-is("Applied: ${mainMapping}")`, 30_000);
        await waitForText(again, '[data-testid="preview-status"]', new RegExp(`^Showing rows 101–200 of ${grouped(WIDE_ROWS)}\\.$`), 15_000);
        await shot(p, '10c-preview-applied-record-shown-again');
        await showPane(p, 'Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, mainMapping).filter({ hasText: 'up to date · v1' }).first().waitFor({ timeout: 60_000 });
        await p.locator('.statusbar-item', { hasText: new RegExp(`${mainMapping}: `) }).first().waitFor({ timeout: 10_000 });
      });

      await step('[point 9] Show Rows: the target table in the data grid, sorted numerically by the host', async () => {
        await showPane(p, 'Targets');
        await runPaletteCommand(p, 'Delta Sync: Refresh Targets');
        const targets = paneRows(p, 'Targets');
        const sandbox = targets.filter({ hasText: 'Sandbox (embedded Postgres)' }).first();
        if ((await sandbox.getAttribute('aria-expanded')) !== 'true') await sandbox.click();
        const tableName = `public.${mainMapping.replace('-', '_')}`;
        const row = rowLabelled(targets, p, tableName).filter({ hasText: `${grouped(WIDE_ROWS)} rows` }).first();
        await row.waitFor({ timeout: 60_000 });
        await shot(p, '11-views-after-load');
        // The Sandbox row's hover tooltip can cover the row under it: move the pointer away first.
        await p.mouse.move(5, pass.viewport.height - 5);
        await row.click();
        const rows = await webviewFrame(p, '[data-testid="rows-table"] .grid-body [role="row"]', 60_000);
        await waitForText(rows, '[data-testid="page-range"]', new RegExp(`of ${grouped(WIDE_ROWS)}$`));
        await rows.locator('[data-testid="rows-table"] .grid-header').getByRole('button', { name: 'quantity', exact: true }).click();
        await waitForText(rows, '[data-testid="rows-status"]', /sorted by quantity ascending/);
        const q = [await cellText(rows, 'rows-table', 'quantity', 0), await cellText(rows, 'rows-table', 'quantity', 1), await cellText(rows, 'rows-table', 'quantity', 2)];
        // Numbers sort as numbers: 1000003, 2000006, 3000009 (as text 10000030 would come second).
        check(q.join() === ['1000003', '2000006', '3000009'].join(), `quantity sorted as ${q.join(', ')}`);
        check(/^2022-09-27 /.test(await cellText(rows, 'rows-table', 'created_at', 0)), 'Show Rows does not format timestamps');
        // The frozen key column: arrows right then back left; the focused cell is never left under it, and it stays opaque.
        await rows.locator('[data-testid="rows-table"] .grid-body [role="row"][aria-rowindex="2"] .grid-cell.frozen').first().click();
        for (let k = 0; k < 10; k++) await p.keyboard.press('ArrowRight');
        for (let k = 0; k < 8; k++) {
          await p.keyboard.press('ArrowLeft');
          const clear = await rows.evaluate<string>(`(() => {
            const a = document.activeElement;
            const f = document.querySelector('[data-testid="rows-table"] .grid-body [role="row"][aria-rowindex="2"] .grid-cell.frozen');
            if (!a || !f || a.classList.contains('frozen')) return 'ok';
            const ar = a.getBoundingClientRect(), fr = f.getBoundingClientRect();
            return ar.left >= fr.right - 1 ? 'ok' : 'column ' + a.getAttribute('aria-colindex') + ' starts at ' + Math.round(ar.left) + ' px, under the frozen key column that ends at ' + Math.round(fr.right) + ' px';
          })()`);
          check(clear === 'ok', `Show Rows: the focused cell is covered: ${clear}`);
        }
        const frozenBg = await rows.evaluate<string>(`(() => {
          const f = document.querySelector('[data-testid="rows-table"] .grid-body [role="row"][aria-rowindex="2"] .grid-cell.frozen');
          return getComputedStyle(f).backgroundColor + ' z' + getComputedStyle(f).zIndex;
        })()`);
        check(!/rgba\([^)]*, 0(\.\d+)?\)|transparent/.test(frozenBg) && !/ z(auto|0|1)$/.test(frozenBg), `the frozen key cell is ${frozenBg}: not opaque above the scrolled cells`);
        await shot(p, '12-show-rows');
        await p.locator('.tabs-container .tab', { hasText: `Rows: ${tableName}` }).first().click({ button: 'middle' });
        await showPane(p, 'Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, mainMapping).first().click();
      });

      await step('[point 8] a new Delta version (1,100 updates) written outside VS Code: the tree says behind without a refresh', async () => {
        const w = await DeltaTableWriter.open(fx.wide);
        await w.update('event_id', Array.from({ length: WIDE_UPDATES }, (_, k) => wideRow(k + 1, 2)));
        await showPane(p, 'Mappings');
        const behind = rowLabelled(paneRows(p, 'Mappings'), p, mainMapping).filter({ hasText: '1 version behind' }).first();
        await behind.waitFor({ timeout: 60_000 });
        if ((await behind.getAttribute('aria-expanded')) !== 'true') await behind.click();
        // Point 10: the last run in the user's words, its rows grouped.
        await paneRows(p, 'Mappings').filter({ hasText: 'Last run' }).filter({ hasText: `succeeded · initial load · ${grouped(WIDE_ROWS)} rows` }).first().waitFor({ timeout: 30_000 });
        await shot(p, '13-tree-behind');
      });

      await step('[point 9] Describe Table and Show Table History from the Sources tree: grid report panels, not Markdown', async () => {
        await showPane(p, 'Sources');
        const sources = paneRows(p, 'Sources');
        const wide = rowLabelled(sources, p, 'wide_events').first();
        // Describe with the mouse: the row's inline action (shown on hover).
        await wide.hover();
        await wide.locator('.action-label[aria-label^="Describe Table"]').first().click();
        const describe = await webviewFrame(p, '[data-testid="report-columns"] .grid-body [role="row"]', 60_000);
        await waitForText(describe, 'h1', 'wide_events');
        const facts = (await describe.locator('[data-testid="report-facts"]').textContent()) ?? '';
        // Several mappings read wide_events (the pass's own and by-account): the facts name one of them.
        check(/Change Data Feed\s*on/.test(facts) && facts.includes(`Rows${grouped(WIDE_ROWS)}`) && /→ public\.(wide_|by_account)/.test(facts), `Describe's facts: ${facts}`);
        const cols = await gridColumns(describe, 'report-columns');
        check(cols.slice(0, 3).join() === 'column,Delta type,Postgres type', `Describe's columns grid has the columns ${cols.join(', ')}`);
        const typed = new Map((await gridRows(describe, 'report-columns')).map((r) => [r[0], r]));
        const expect: Array<[string, string, string]> = [
          ['event_id', 'string', 'text'],
          ['created_at', 'timestamp', 'timestamptz'],
          ['event_date', 'date', 'date'],
          ['amount', 'decimal(12,2)', 'numeric(12,2)'],
        ];
        for (const [name, delta, pgType] of expect) {
          const r = typed.get(name);
          check(!!r && r[1] === delta && r[2] === pgType, `Describe shows ${name} as ${JSON.stringify(r)}, not ${delta} → ${pgType}`);
        }
        // Several mappings read wide_events with different keys: a key cell names the mappings it is the key of.
        check([...typed.values()].some((r) => /^key( \(.+\))?$/.test(r[4] ?? '')), `no column of a mapping that reads wide_events is marked key: ${JSON.stringify([...typed.values()].map((r) => r[4]))}`);
        await waitForText(describe, '[data-testid="report-columns"] h2', `Columns (${WIDE_COLUMNS.length})`);
        check((await p.locator('.tabs-container .tab', { hasText: /\.md$|Untitled/ }).count()) === 0, 'a Markdown editor opened');
        await shot(p, '13b-describe-table');
        // History with the context menu of the same row.
        await showPane(p, 'Sources');
        await contextMenu(p, rowLabelled(paneRows(p, 'Sources'), p, 'wide_events').first(), 'Show Table History');
        const history = await webviewFrame(p, '[data-testid="report-versions"] .grid-body [role="row"]', 60_000);
        await waitForText(history, 'h1', 'History of wide_events');
        const hcols = await gridColumns(history, 'report-versions');
        const at = (name: string): number => hcols.indexOf(name);
        check(['version', 'operation', 'rows added', 'rows updated'].every((c) => at(c) >= 0), `the versions grid has the columns ${hcols.join(', ')}`);
        const versions = await gridRows(history, 'report-versions');
        // Newest first; the v2 commit is the 1,100 updates written above, v1 the 1,200 rows.
        check(versions.map((r) => r[at('version')]).join() === '2,1,0', `versions listed ${versions.map((r) => r[at('version')]).join(', ')}`);
        const v2 = versions[0] as string[];
        check(v2[at('operation')] === 'UPDATE' && v2[at('rows updated')] === grouped(WIDE_UPDATES), `v2 reads ${JSON.stringify(v2)}, not UPDATE of ${grouped(WIDE_UPDATES)} rows`);
        const v1 = versions[1] as string[];
        check(v1[at('rows added')] === grouped(WIDE_ROWS), `v1 reads ${JSON.stringify(v1)}, not ${grouped(WIDE_ROWS)} rows added`);
        // Sorting by version ascending is numeric (the header button).
        await history.locator('[data-testid="report-versions"] .grid-header').getByRole('button', { name: 'version', exact: true }).click();
        for (let i = 0; i < 25; i++) {
          if ((await gridRows(history, 'report-versions')).map((r) => r[at('version')]).join() === '0,1,2') break;
          await p.waitForTimeout(200);
        }
        check((await gridRows(history, 'report-versions')).map((r) => r[at('version')]).join() === '0,1,2', 'sorting by version does not give 0, 1, 2');
        await shot(p, '13c-table-history');
        for (const title of ['History of wide_events', 'wide_events']) await p.locator('.tabs-container .tab', { hasText: title }).first().click({ button: 'middle' });
      });

      await step('[point 9] Dry Run of the wide mapping (1 version behind): counts and the plan in a grid; nothing written', async () => {
        await showPane(p, 'Mappings');
        await contextMenu(p, rowLabelled(paneRows(p, 'Mappings'), p, mainMapping).first(), 'Dry Run');
        const dry = await webviewFrame(p, '[data-testid="report-plan"] .grid-body [role="row"]', 120_000);
        await waitForText(dry, 'h1', `Dry run: ${mainMapping}`);
        const facts = await dry.locator('[data-testid="report-facts"] .fact').evaluateAll((fs0) => fs0.map((f) => `${f.querySelector('dt')?.textContent ?? ''}=${f.querySelector('dd')?.textContent ?? ''}`));
        for (const f of ['Inserted=0', `Updated=${grouped(WIDE_UPDATES)}`, 'Deleted=0', 'Rejected=0']) check(facts.includes(f), `the dry run's facts are ${facts.join('; ')}: no ${f}`);
        await waitForText(dry, '[data-testid="report-plan"] h2', `Rows of the plan (${grouped(WIDE_UPDATES)})`);
        const pcols = await gridColumns(dry, 'report-plan');
        check(pcols[0] === 'op' && pcols[1] === 'event_id' && pcols.includes('description'), `the plan grid has the columns ${pcols.join(', ')}`);
        const plan = await gridRows(dry, 'report-plan');
        check(plan.length > 0 && plan.every((r) => r[0] === 'update'), `the plan's rows are ${plan.map((r) => r[0]).join(', ')}, not updates`);
        const desc = plan[0]?.[pcols.indexOf('description')] ?? '';
        check(desc.includes('[revision 1]') && desc.includes('→') && desc.includes('[revision 2]'), `the plan's description cell shows no before → after: ${desc.slice(0, 120)}`);
        check(plan[0]?.[pcols.indexOf('title')] === '·', `an unchanged column of an update reads "${plan[0]?.[pcols.indexOf('title')]}", not ·`);
        await shot(p, '13d-dry-run');
        await p.locator('.tabs-container .tab', { hasText: `Dry run: ${mainMapping}` }).first().click({ button: 'middle' });
        // Nothing written: the mapping is still a version behind.
        await showPane(p, 'Mappings');
        const behind = rowLabelled(paneRows(p, 'Mappings'), p, mainMapping).filter({ hasText: '1 version behind' }).first();
        await behind.waitFor({ timeout: 30_000 });
        // Focus back in the tree (the palette's F1 is not seen while a closed webview had it).
        await behind.click();
      });

      await step('[points 4, 10, 3] incremental Preview of 1,100 updates: versions, separators, the inspector diff; Apply Preview from the palette', async () => {
        const frame = await openPreview(p, mainMapping);
        await waitForText(frame, '[data-testid="count-update"]', grouped(WIDE_UPDATES));
        await waitForText(frame, '[data-testid="preview-mode"]', /incremental: checkpoint v1 → v2/);
        await frame.locator('[data-testid="filter-update"]').click();
        await waitForText(frame, '[data-testid="page-range"]', `1–${PAGE_SIZE} of ${grouped(WIDE_UPDATES)}`);
        // The range reads the same under All and Updates here: wait for the Updates page itself.
        await waitForText(frame, '[data-testid="preview-status"]', /^Showing rows/);
        await shot(p, '14a-preview-updates');
        // Point 10: a hovered filter tab stays readable, pressed (Updates) or not (Deletes).
        for (const id of ['filter-update', 'filter-delete']) {
          await frame.locator(`[data-testid="${id}"]`).hover();
          const colors = await frame.evaluate<{ fg: string; bg: string; base: string }>(`(() => {
            const b = document.querySelector('[data-testid="${id}"]');
            return { fg: getComputedStyle(b).color, bg: getComputedStyle(b).backgroundColor, base: getComputedStyle(document.body).backgroundColor };
          })()`);
          const ratio = contrast(colors.fg, colors.bg, colors.base);
          check(ratio >= 3, `the hovered ${id} tab's text has a contrast of ${ratio.toFixed(2)} (${colors.fg} on ${colors.bg})`);
        }
        // The changed long description: the inspector shows before and after with the difference marked.
        await openInspector(p, frame, 'description');
        const pop = frame.locator('.grid-popover');
        let marks: string[] = [];
        for (let i = 0; i < 50 && marks.length < 2; i++) {
          marks = await pop.locator('mark').allTextContents();
          if (marks.length < 2) await p.waitForTimeout(200);
        }
        check(marks.length === 2 && marks[0] === '1' && marks[1] === '2', `the diff marks ${JSON.stringify(marks)}, not just the revision`);
        await shot(p, '14-preview-update-inspector');
        await p.keyboard.press('Escape');
        // Exactly this title: Enter would take the top fuzzy match ("Apply Neon Preview Branch..." for "Apply Preview").
        await runPaletteCommand(p, 'Delta Sync: Apply Preview', { exact: true });
        const progress = await webviewFrame(p, '[data-testid="status"]', 60_000);
        await waitForText(progress, '[data-testid="status"]', 'succeeded', 180_000);
        // Point 10: the run counts from the checkpoint the target held (v1), not "v2 -> v2"; its history row says the same.
        await waitForText(progress, '[data-testid="versions"]', 'checkpoint v1 → v2', 10_000);
        await progress.locator('[data-testid="history"] tbody tr', { hasText: 'checkpoint v1 → v2' }).first().waitFor({ timeout: 30_000 });
        const newestCells = await progress.locator('[data-testid="history"] tbody tr').first().locator('td').allTextContents();
        check(newestCells[2] === 'succeeded' && newestCells[3] === 'checkpoint v1 → v2', `the newest past run reads ${newestCells.join(' | ')}`);
        await p.locator('.notification-toast', { hasText: `${mainMapping}: incremental sync from checkpoint v1 to v2 done: 0 inserted, ${grouped(WIDE_UPDATES)} updated` }).first().waitFor({ timeout: 30_000 });
        await showPane(p, 'Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, mainMapping).filter({ hasText: 'up to date · v2' }).first().waitFor({ timeout: 60_000 });
        await shot(p, '15-progress-incremental');
      });

      if (!pass.full) return;

      await previewGridFeatures(p, { workspace, tables: fx.tables, exports: path.join(tmp, 'exports'), shot });

      await step('[point 1] a key with nulls and duplicates: the banner, Apply blocked until acknowledged, a failed Apply notifies', async () => {
        await rowLabelled(paneRows(p, 'Mappings'), p, 'by-account').first().click();
        await clearNotifications(p);
        const frame = await openPreview(p, 'by-account');
        const banner = frame.locator('[data-testid="preview-warnings"]');
        await banner.waitFor({ state: 'visible', timeout: 30_000 });
        const checks = await banner.locator('li[data-check]').evaluateAll((ls) => ls.map((l) => l.getAttribute('data-check') ?? ''));
        check(checks.some((c) => /null/i.test(c)) && checks.some((c) => /dup/i.test(c)), `the banner lists ${checks.join(', ')}, not null and duplicate keys`);
        check(await frame.locator('[data-testid="apply"]').isDisabled(), 'Apply is enabled before the warnings are acknowledged');
        await banner.locator('details summary').first().click();
        await shot(p, '16-preview-key-warnings');
        await frame.locator('[data-testid="acknowledge"]').check();
        check(!(await frame.locator('[data-testid="apply"]').isDisabled()), 'Apply stays disabled after acknowledging');
        await frame.locator('[data-testid="apply"]').click();
        const toast = p.locator('.notification-toast', { hasText: 'applying the preview of by-account failed' }).first();
        await toast.waitFor({ timeout: 120_000 });
        for (const b of ['Show Progress', 'Show Log']) await toast.locator('.monaco-button', { hasText: b }).first().waitFor({ timeout: 5_000 });
        // Point 10: notifications name the extension by what it does.
        const source = ((await toast.locator('.notification-list-item-source').first().textContent()) ?? '').trim();
        check(source.includes('Delta Lake → Postgres Sync'), `the notification's source reads "${source}"`);
        const msg = (await toast.textContent()) ?? '';
        check(!/stag|_dns_|delta-neon-sync preview/i.test(msg), `the error speaks of internals or the CLI: ${msg}`);
        check(/by_account|account_id/.test(msg), `the error does not name the user's table or key: ${msg}`);
        await shot(p, '17-apply-failed-toast');
        await toast.locator('.monaco-button', { hasText: 'Show Progress' }).first().click();
        const progress = await webviewFrame(p, '[data-testid="run-error"]:visible', 30_000);
        await waitForText(progress, '[data-testid="status"]', 'failed');
        await shot(p, '18-progress-failed');
        await showPane(p, 'Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, 'by-account').first().click();
        await clearNotifications(p);
      });

      await step('[point 1] a sync run from the palette that fails notifies with Show Progress and Open Setting; Open Setting opens the mapping file on "deadLetter"', async () => {
        // A mapping of this step's own, keyed on the column with nulls, that sets deadLetter explicitly (so the key is in the file).
        const name = 'strict-account';
        const text = JSON.stringify({ name, source: { type: 'delta', path: fx.wide }, target: { connection: 'sandbox', schema: 'public', table: 'strict_account' }, key: ['account_id'], deadLetter: false }, null, 2);
        fs.writeFileSync(path.join(workspace, '.delta-sync', `${name}.json`), text);
        const line = text.split('\n').findIndex((l) => l.includes('"deadLetter"')) + 1;
        await runPaletteCommand(p, 'Delta Sync: Refresh Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, name).first().waitFor({ timeout: 30_000 });
        await clearNotifications(p);
        await runPaletteCommand(p, 'Delta Sync: Run Initial Load');
        await pickQuickInputItem(p, name);
        await p.locator('.monaco-dialog-box .monaco-button', { hasText: 'Run Initial Load' }).first().click();
        const toast = p.locator('.notification-toast', { hasText: `initial load of ${name} failed` }).first();
        await toast.waitFor({ timeout: 120_000 });
        for (const b of ['Show Progress', 'Open Setting', 'Show Log']) await toast.locator('.monaco-button', { hasText: b }).first().waitFor({ timeout: 5_000 });
        const msg = (await toast.textContent()) ?? '';
        check(/strict_account/.test(msg) && /account_id/.test(msg), `the toast does not name the table and key: ${msg}`);
        await shot(p, '18a-palette-run-failed-toast');
        await toast.locator('.monaco-button', { hasText: 'Open Setting' }).first().click();
        await p.locator('.tabs-container .tab.active', { hasText: `${name}.json` }).first().waitFor({ timeout: 30_000 });
        // The cursor is on the key: the selection is its name, quotes included, on its line.
        const selection = p.locator('[id="status.editor.selection"]').first();
        await selection.filter({ hasText: new RegExp(`Ln ${line}, Col \\d+ \\(${'"deadLetter"'.length} selected\\)`) }).waitFor({ timeout: 15_000 }).catch(async (e: unknown) => {
          throw new Error(`Open Setting did not select "deadLetter" on line ${line}: the status bar says "${(await selection.textContent()) ?? ''}" (${String(e)})`);
        });
        await shot(p, '18b-open-setting-dead-letter');
        await runPaletteCommand(p, 'View: Close Editor');
        // The Progress panel's error box offers the same Open Setting, pressed from the keyboard.
        await runPaletteCommand(p, 'Delta Sync: Show Sync Progress');
        const progress = await webviewFrame(p, '[data-testid="open-setting"]:visible', 30_000);
        const openSetting = progress.locator('[data-testid="open-setting"]');
        const label = (await openSetting.getAttribute('aria-label')) ?? '';
        check(label === `Open Setting: "deadLetter" in ${name}.json`, `the Progress panel's Open Setting reads "${label}"`);
        await shot(p, '18c-progress-open-setting');
        await openSetting.focus();
        await p.keyboard.press('Enter');
        await p.locator('.tabs-container .tab.active', { hasText: `${name}.json` }).first().waitFor({ timeout: 30_000 });
        await selection.filter({ hasText: new RegExp(`Ln ${line}, Col \\d+ \\(${'"deadLetter"'.length} selected\\)`) }).waitFor({ timeout: 15_000 }).catch(async (e: unknown) => {
          throw new Error(`Open Setting in the Progress panel did not select "deadLetter" on line ${line}: the status bar says "${(await selection.textContent()) ?? ''}" (${String(e)})`);
        });
        await runPaletteCommand(p, 'View: Close Editor');
        await showPane(p, 'Mappings');
        await clearNotifications(p);
      });

      await step('[point 4] a 200,000-change preview: time from counts to first page, and of a jump to a far page (printed)', async () => {
        await runPaletteCommand(p, 'Delta Sync: Preview Changes');
        await pickQuickInputItem(p, 'big-events');
        const frame = await previewFrame(p, 'big-events');
        await waitForText(frame, '[data-testid="count-insert"]', grouped(BIG_ROWS));
        await waitForText(frame, '[data-testid="page-range"]', `1–${PAGE_SIZE} of ${grouped(BIG_ROWS)}`);
        type Marks = { counts: number | null; painted: number | null };
        let marks = await frame.evaluate<Marks>(PREVIEW_MARKS_READ);
        for (let i = 0; i < 50 && marks.painted === null; i++) {
          await p.waitForTimeout(100);
          marks = await frame.evaluate<Marks>(PREVIEW_MARKS_READ);
        }
        check(marks.counts !== null && marks.painted !== null, `the Preview recorded no counts / first-page marks: ${JSON.stringify(marks)}`);
        const first = (marks.painted as number) - (marks.counts as number);
        // The first page of a filter is a host query of its own (the first page of All came with the counts).
        const inserts = await timePageLoad(frame, `document.querySelector('[data-testid="filter-insert"]').click();`, '1–100 of 200,000');
        const far = await timeJumpToPage(frame, 1_500, PAGE_SIZE);
        await waitForText(frame, '[data-testid="page-range"]', `149,901–150,000 of ${grouped(BIG_ROWS)}`);
        check((await cellText(frame, 'preview-table', 'id')) === '149901', 'page 1,500 does not start at id 149901');
        const last = await timeJumpToPage(frame, BIG_ROWS / PAGE_SIZE, PAGE_SIZE);
        measured.push(`200k preview: counts -> first page rendered ${first.toFixed(0)} ms; first page of the Inserts filter ${inserts.toFixed(0)} ms; jump to page 1,500 ${far.toFixed(0)} ms; jump to the last page ${last.toFixed(0)} ms`);
        log(measured[measured.length - 1] as string);
        await shot(p, '19-preview-200k-far-page');
      });

      await step('[points 6, 3] a paced 200,000-row initial load: rows applied move with % and ETA; Stop by keyboard is recorded as cancelled', async () => {
        const frame = await previewFrame(p, 'big-events');
        await frame.locator('[data-testid="apply"]').click();
        const progress = await webviewFrame(p, '[data-testid="stop"]:visible', 60_000);
        await waitForText(progress, '[data-testid="status"]', 'running', 30_000);
        await progress.locator('[data-testid="rows-applied"]').filter({ hasText: /^[1-9][\d,]* \/ 200,000$/ }).first().waitFor({ timeout: 60_000 });
        await progress.locator('[data-testid="percent"]').filter({ hasText: /^\d+%$/ }).first().waitFor({ timeout: 10_000 });
        await progress.locator('[data-testid="eta"]').filter({ hasText: /\d+s$/ }).first().waitFor({ timeout: 10_000 });
        const mapped = await progress.locator('[data-testid="history"]:visible').evaluateAll((els) => els.map((e) => e.getAttribute('data-mapping')).filter((m) => m !== 'big-events'));
        check(mapped.length === 0, `the Progress panel shows the history of ${mapped.join(', ')} under the big-events run`);
        await p.locator('.statusbar-item', { hasText: /big-events: / }).first().waitFor({ timeout: 10_000 });
        await shot(p, '20-paced-load-running');
        // Keyboard only: into the panel (click its heading, not a control), Tab to Stop, let an update arrive, Enter.
        await progress.locator('h1:visible').first().click();
        await tabTo(p, progress, 'stop', 15);
        const applied = progress.locator('[data-testid="rows-applied"]');
        const before = await applied.textContent();
        for (let i = 0; i < 100 && (await applied.textContent()) === before; i++) await p.waitForTimeout(100);
        check((await applied.textContent()) !== before, `rows applied stayed at ${before}`);
        check((await activeTestId(progress)) === 'stop', `a progress update moved the focus from Stop to ${await activeTestId(progress)}`);
        await p.keyboard.press('Enter');
        await waitForText(progress, '[data-testid="status"]', 'cancelled', 30_000);
        await progress.locator('[data-testid="history"] tbody tr', { hasText: 'cancelled' }).first().waitFor({ timeout: 30_000 });
        check((await progress.locator('[data-testid="history"] tbody tr', { hasText: 'failed' }).count()) === 0, 'the Stop was recorded as failed');
        await p.locator('.statusbar-item', { hasText: 'big-events: cancelled' }).first().waitFor({ timeout: 10_000 });
        await shot(p, '21-paced-load-stopped');
        await showPane(p, 'Mappings');
        const row = rowLabelled(paneRows(p, 'Mappings'), p, 'big-events').first();
        await row.waitFor({ timeout: 10_000 });
        check(!/failed|error/i.test((await row.textContent()) ?? ''), `the tree shows the stopped mapping as "${await row.textContent()}"`);
        await row.click();
      });

      await step('[point 5] Add Postgres Connection: a wrong password and a closed port give readable errors with Edit / Retry', async () => {
        await clearNotifications(p);
        const toast = await addConnectionByUrl(p, 'shop-local', `postgresql://app:wrong-password@127.0.0.1:${pgServer?.port ?? 1}/shop?sslmode=disable`, 'Password authentication failed for user "app"', ['Edit', 'Retry']);
        await shot(p, '22-add-connection-wrong-password');
        // Edit re-asks the password (the only masked field); the right one tests fine and is saved.
        await toast.locator('.monaco-button', { hasText: 'Edit' }).first().click();
        const pw = p.locator('.quick-input-widget input[type="password"]').first();
        await pw.waitFor({ state: 'visible', timeout: 15_000 });
        await pw.fill('right-password');
        await pw.press('Enter');
        await showPane(p, 'Targets');
        const targets = paneRows(p, 'Targets');
        const conn = rowLabelled(targets, p, 'shop-local').first();
        await conn.waitFor({ timeout: 30_000 });
        check(!/app:|right-password/.test((await conn.textContent()) ?? ''), 'the tree shows the password');
        // Below the connection, its schemas; below a schema, its tables with their row counts.
        if ((await conn.getAttribute('aria-expanded')) !== 'true') await conn.click();
        const sales = rowLabelled(targets, p, 'sales').filter({ hasText: '1 table' }).first();
        await sales.waitFor({ timeout: 30_000 });
        await rowLabelled(targets, p, 'public').filter({ hasText: '1 table' }).first().waitFor({ timeout: 10_000 });
        if ((await sales.getAttribute('aria-expanded')) !== 'true') await sales.click();
        await rowLabelled(targets, p, 'orders').filter({ hasText: '~3 rows' }).first().waitFor({ timeout: 30_000 });
        await shot(p, '22b-connection-schemas-tables');
        // Focus back in a tree before the palette (as run.ts does: otherwise its input can stay hidden in code-server).
        await conn.click();
        await clearNotifications(p);
        await conn.click();
        // A closed port.
        const closed = await freePort();
        const refused = await addConnectionByUrl(p, 'local-closed', `postgresql://app:secret@127.0.0.1:${closed}/shop?sslmode=disable`, `Nothing is listening on 127.0.0.1:${closed} — is Postgres running?`, ['Edit', 'Retry', 'Save Anyway']);
        await shot(p, '23-add-connection-closed-port');
        await refused.locator('.monaco-button', { hasText: 'Save Anyway' }).first().click();
        const closedRow = rowLabelled(targets, p, 'local-closed').first();
        await closedRow.waitFor({ timeout: 20_000 });
        if ((await closedRow.getAttribute('aria-expanded')) !== 'true') await closedRow.click();
        await rowLabelled(targets, p, `Nothing is listening on 127.0.0.1:${closed} — is Postgres running?`).first().waitFor({ timeout: 30_000 });
        await shot(p, '24-connection-error-row');
      });

      // Point 5's form, Test, Edit, Retry and Remove Folder; point 7's scalar keys; point 6's Sync History (test/e2e/uxConnectionsKeysHistory.ts).
      if (pgServer) await connectionsKeysHistorySteps({ page: p, step, shot, adminUrl: pgServer.adminUrl, workspace, tablesDir: fx.tables, wideMapping: mainMapping });

      await step('[point 10] the walkthrough names the task and the extension, with the extension\'s icon', async () => {
        // The palette's walkthrough list: its title, and the extension's name as its source.
        await runPaletteCommand(p, 'Welcome: Open Walkthrough...');
        const pick = p.locator('.quick-input-list .monaco-list-row', { hasText: 'Sync a Delta table to Postgres' }).first();
        await pick.waitFor({ timeout: 15_000 });
        check(((await pick.textContent()) ?? '').includes('Delta Lake → Postgres Sync'), `the walkthrough pick reads "${await pick.textContent()}"`);
        await p.keyboard.press('Escape');
        await p.locator('.quick-input-widget input').first().waitFor({ state: 'hidden', timeout: 5_000 });
        // The Welcome page: the walkthrough's card shows the extension's 128x128 icon, not the generic one.
        await runPaletteCommand(p, 'Help: Welcome', { exact: true });
        const card = p.locator('.gettingStartedContainer button.getting-started-category', { hasText: 'Sync a Delta table to Postgres' }).first();
        await card.waitFor({ timeout: 20_000 });
        const icon = card.locator('img.category-icon').first();
        await icon.waitFor({ timeout: 10_000 });
        let natural = 0;
        for (let i = 0; i < 50 && natural === 0; i++) {
          natural = await icon.evaluate((img) => {
            const i = img as unknown as { complete: boolean; naturalWidth: number };
            return i.complete ? i.naturalWidth : 0;
          });
          if (natural === 0) await p.waitForTimeout(100);
        }
        const src = (await icon.getAttribute('src')) ?? '';
        check(/media\/icon\.png/.test(decodeURIComponent(src)) && natural === 128, `the walkthrough card's icon is ${src} (${natural} px wide)`);
        await shot(p, '25-welcome-walkthrough-card');
        // Its page is titled by the task.
        await card.click();
        const heading = p.locator('.gettingStartedContainer h2.category-title').filter({ hasText: /\S/ }).first();
        await heading.waitFor({ timeout: 20_000 });
        check(((await heading.textContent()) ?? '').trim() === 'Sync a Delta table to Postgres', `the walkthrough page is titled "${await heading.textContent()}"`);
        await shot(p, '26-walkthrough');
      });
    });
  } finally {
    fs.writeFileSync(path.join(shots, 'browser-console-errors.txt'), consoleErrors.join('\n') + '\n');
    if (!process.env.E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The screenshots that are the README's pictures (docs/images): [pass, screenshot, picture]. */
const README_IMAGES: Array<['light' | 'dark', string, string]> = [
  ['light', '11-views-after-load.png', 'views.png'],
  ['light', '14a-preview-updates.png', 'preview.png'],
  ['light', '05-preview-initial.png', 'preview-initial-load.png'],
  ['light', '10-progress-initial-load.png', 'progress.png'],
  ['light', '12-show-rows.png', 'show-rows.png'],
  ['dark', '16-preview-key-warnings.png', 'preview-warnings-dark.png'],
  ['dark', '13b-describe-table.png', 'describe-dark.png'],
  ['dark', '24-connection-error-row.png', 'connection-error-dark.png'],
];

/** 'skipped' when SKIP_E2E=1 told it not to run: then it must not report PASS (and in CI it must run). */
async function main(): Promise<'passed' | 'skipped'> {
  if (skipRequested(log, 'the UX end-to-end test in VS Code')) return 'skipped';
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const started = Date.now();
  const only = process.env.E2E_UX_PASS;
  const pkgDir = path.join(ARTIFACTS, `package-${only ?? 'all'}`);
  fs.mkdirSync(pkgDir, { recursive: true });
  const ext = await prepareExtension(step, ROOT, pkgDir);
  const pgServer = !only || only === 'dark' ? await startPasswordPostgres() : undefined;
  try {
    if (!only || only === 'dark') await runPass(ext, pgServer, { name: 'dark', theme: 'Default Dark Modern', viewport: { width: 1000, height: 700 }, full: true });
    if (!only || only === 'light') {
      await runPass(ext, undefined, { name: 'light', theme: 'Default Light Modern', viewport: { width: 1400, height: 900 }, full: false });
    }
    if (process.env.E2E_UPDATE_README_IMAGES === '1') {
      const ran = README_IMAGES.filter(([pass]) => !only || only === pass);
      for (const [pass, from, to] of ran) fs.copyFileSync(path.join(ARTIFACTS, pass, from), path.join(ROOT, 'docs', 'images', to));
      log(`README images updated in docs/images: ${ran.map(([, , to]) => to).join(', ')}`);
    }
  } finally {
    await pgServer?.stop().catch(() => undefined);
    timings.push(['total', Date.now() - started]);
    const table = [report(110), ...measured].join('\n');
    fs.writeFileSync(path.join(ARTIFACTS, `timings-${only ?? 'all'}.txt`), table + '\n');
    log(`timings:\n${table}`);
  }
  return 'passed';
}

runE2e(log, ARTIFACTS, main);
