import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { HostToWebview, PreviewPage, PreviewSummary, WebviewToHost } from '../../src/protocol/messages';
import { CHROMIUM, openWebviewPage } from '../helpers/webviewPage';

/**
 * The Preview webview (media/main.ts -> media/preview.ts, media/grid.ts) in a real
 * browser, with the host played by the test through the one protocol: the grid renders
 * only the rows in view, keeps focus across page loads, moves by keyboard, sorts numbers
 * as numbers, opens a cell's old -> new detail, and Apply waits for "I understand".
 */

// The browser globals the page functions below use (this build has no DOM lib).
interface PageElement {
  getAttribute(name: string): string | null;
  closest(selector: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  textContent: string | null;
}
declare const document: { activeElement: PageElement | null };
declare const window: { postMessage(message: unknown, origin: string): void };

const COLUMNS = 18;

const summary: PreviewSummary = {
  mapping: 'wide', sourceTable: '/t/wide', targetTable: 'local:public.wide', fromVersion: 2, toVersion: 3, inserts: 700, updates: 300, deletes: 0, unchanged: 0, mode: 'incremental',
  warnings: [{ check: 'null-key', column: 'id', count: 2, message: 'Key column "id" is NULL.', samples: [{ id: null }] }],
};

function pageAt(offset: number, limit: number, total: number): PreviewPage {
  const n = Math.max(0, Math.min(limit, total - offset));
  return {
    filter: 'all', offset, total,
    columns: Array.from({ length: COLUMNS }, (_, c) => ({ name: c === 0 ? 'id' : `c${c}`, sourceType: c < 2 ? 'long' : 'string', targetType: c < 2 ? 'bigint' : 'text', isKey: c === 0 })),
    rows: Array.from({ length: n }, (_, i) => {
      const k = offset + i;
      const cells = Array.from({ length: COLUMNS }, (_, c) => (c === 0 ? String(k + 1) : c === 1 ? String((k * 7919) % 1000) : `value ${c} of row ${k + 1} ${'x'.repeat(c === 5 ? 400 : 0)}`));
      return k % 2 === 0
        ? { op: 'insert' as const, cells, before: null }
        : { op: 'update' as const, cells, before: cells.map((v, c) => (c === 5 ? `${v.slice(0, 100)}OLD${v.slice(103)}` : v)), changed: ['c5'] };
    }),
  };
}

describe('Preview webview in a browser (grid, keyboard, warnings)', function () {
  this.timeout(60_000);
  let browser: Browser;
  let page: Page;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) this.skip();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
  });

  /** The next message the webview posts that matches. */
  async function posted(type: WebviewToHost['type'], after = 0): Promise<{ msg: WebviewToHost; index: number }> {
    const h = await page.waitForFunction(([t, a]) => {
      const all = (window as unknown as { __posted: Array<{ type: string }> }).__posted;
      const i = all.findIndex((m, j) => j >= (a as number) && m.type === t);
      return i >= 0 ? { msg: all[i], index: i } : null;
    }, [type, after] as const);
    return (await h.jsonValue()) as { msg: WebviewToHost; index: number };
  }
  const send = (m: HostToWebview): Promise<void> => page.evaluate((x) => window.postMessage(x, '*'), m);
  const answerPage = async (after: number, total = 1000): Promise<number> => {
    const { msg, index } = await posted('preview/page', after);
    if (msg.type !== 'preview/page') throw new Error('not a page request');
    await send({ type: 'response', id: msg.id, ok: true, result: { type: 'previewPage', page: pageAt(msg.offset, msg.limit, total) } });
    return index + 1;
  };
  const active = (): Promise<Record<string, string | null>> => page.evaluate(() => {
    const a = document.activeElement;
    return { role: a?.getAttribute('role') ?? null, row: a?.closest('[role=row]')?.getAttribute('aria-rowindex') ?? null, col: a?.getAttribute('aria-colindex') ?? null, testid: a?.getAttribute('data-testid') ?? null, text: a?.textContent ?? null };
  });

  beforeEach(async () => {
    page = await openWebviewPage(browser, 'preview', { viewport: { width: 1000, height: 700 } });
    await send({ type: 'init', state: { panel: 'preview', mapping: 'wide' }, preview: summary, progress: null, pageSize: 500 });
  });
  afterEach(async () => {
    await page?.close();
  });

  it('renders only the rows in view of a 500-row page, with the key and op columns frozen', async () => {
    const { msg } = await posted('preview/page');
    assert.equal(msg.type === 'preview/page' && msg.limit, 500);
    await answerPage(0);
    await page.locator('.grid-body [role=row]').first().waitFor();
    const rows = await page.locator('.grid-body [role=row]').count();
    assert.ok(rows > 5 && rows < 80, `rendered ${rows} rows`);
    assert.equal(await page.getAttribute('[role=grid]', 'aria-rowcount'), '501');
    const frozen = await page.locator('.grid-header .grid-cell.frozen').allTextContents();
    assert.deepEqual(frozen.map((t) => t.replace('key', '').trim()), ['op', 'id']);
    assert.match((await page.textContent('[data-testid=page-range]')) ?? '', /1–500 of 1,000/);
  });

  it('Apply stays disabled under the warnings until "I understand" is ticked, and then says so to the host', async () => {
    await answerPage(0);
    await page.locator('[data-testid=preview-warnings]', { hasText: 'Key column "id" is NULL.' }).waitFor();
    assert.equal(await page.isDisabled('[data-testid=apply]'), true);
    await page.check('[data-testid=acknowledge]');
    assert.equal(await page.isDisabled('[data-testid=apply]'), false);
    await page.click('[data-testid=apply]');
    const { msg } = await posted('preview/apply');
    assert.deepEqual({ ...msg, id: '' }, { type: 'preview/apply', id: '', acknowledged: true });
  });

  it('a preview on a Neon branch says what ran on the branch, shows its masked connection string with a copy button, and offers Apply to Parent and Discard Branch', async () => {
    const branch = { name: 'delta-sync-preview-wide-20260101-000000', id: 'br-a-1', parent: 'main', connection: 'postgresql://app:********@ep-x.neon.tech/appdb', ran: 'incremental sync to version 3: 700 inserted, 300 updated, 0 deleted' };
    const before = (await posted('preview/page')).index + 1;
    await send({ type: 'init', state: { panel: 'preview', mapping: 'wide' }, preview: { ...summary, warnings: [], onBranch: true, branch }, progress: null, pageSize: 500 });
    await answerPage(before);
    await page.locator('.grid-body [role=row]').first().waitFor();
    assert.equal(await page.textContent('h1'), `Preview on branch ${branch.name}: wide`);
    const info = (await page.textContent('[data-testid=branch-info]')) ?? '';
    assert.match(info, new RegExp(`ran on preview branch ${branch.name} \\(a copy of main\\): ${branch.ran}\\. The rows below are what Apply to main will change\\.`));
    assert.equal(await page.textContent('[data-testid=branch-connection]'), branch.connection);
    assert.equal(await page.textContent('[data-testid=apply]'), 'Apply to main');
    assert.equal(await page.textContent('[data-testid=cancel]'), 'Discard Branch');
    assert.equal(await page.locator('[data-testid=preview-on-branch]').count(), 0);
    await page.click('[data-testid=copy-connection]');
    const copy = await posted('preview/copyConnection');
    await send({ type: 'response', id: copy.msg.type === 'preview/copyConnection' ? copy.msg.id : '', ok: true, result: { type: 'accepted' } });
    await page.locator('[data-testid=preview-status]', { hasText: 'Copied the branch\'s connection string' }).waitFor();
    await page.click('[data-testid=cancel]');
    await posted('preview/cancel', copy.index + 1);
  });

  it('moves by keyboard with one tabbable cell, and keeps focus on Next while the next page loads', async () => {
    let seen = await answerPage(0);
    await page.locator('.grid-body [role=gridcell]').first().click();
    for (const k of ['ArrowDown', 'ArrowDown', 'ArrowRight', 'End']) await page.keyboard.press(k);
    assert.deepEqual(await active().then((a) => [a.role, a.row, a.col]), ['gridcell', '4', String(COLUMNS + 1)]);
    assert.equal(await page.locator('.grid-body [role=gridcell][tabindex="0"]').count(), 1);
    await page.keyboard.press('PageDown');
    assert.ok(Number((await active()).row) > 10);
    await page.focus('[aria-label="Next page"]');
    await page.keyboard.press('Enter');
    // While the page loads the old range stays (no new label over old rows).
    assert.match((await page.textContent('[data-testid=page-range]')) ?? '', /^1–500/);
    seen = await answerPage(seen);
    await page.locator('[data-testid=page-range]', { hasText: '501–1,000 of 1,000' }).waitFor();
    assert.equal((await active()).text, 'Next ›');
    assert.equal(await page.locator('.grid-body [role=row][aria-rowindex="2"] [aria-colindex="2"]').textContent(), '501');
    void seen;
  });

  it('Enter on a changed cell shows old and new with the difference marked, and a numeric column sorts as numbers', async () => {
    await answerPage(0);
    await page.locator('.grid-body [role=row]').first().waitFor();
    // A long value changed in its middle: the cell shows each side's differing part with a
    // little context, so the new value is in view next to the struck-out old one.
    const changedCell = page.locator('.grid-body .grid-row.update .grid-cell.changed').first();
    assert.equal(await changedCell.locator('.old').textContent(), `…${'x'.repeat(6)}OLD${'x'.repeat(6)}…`);
    assert.equal(await changedCell.locator('.new').textContent(), `…${'x'.repeat(15)}…`);
    const [cellBox, newBox] = [await changedCell.boundingBox(), await changedCell.locator('.new').boundingBox()];
    assert.ok(cellBox && newBox && newBox.x + newBox.width <= cellBox.x + cellBox.width + 1, `the new value is inside its cell: ${JSON.stringify({ cellBox, newBox })}`);
    await changedCell.click();
    await page.keyboard.press('Enter');
    const pop = page.locator('.grid-popover');
    await pop.waitFor();
    assert.equal(await pop.locator('pre.old mark').textContent(), 'OLD');
    assert.equal(await pop.locator('pre.new mark').textContent(), 'xxx');
    await page.keyboard.press('Escape');
    await pop.waitFor({ state: 'detached' });
    assert.equal((await active()).role, 'gridcell');
    await page.locator('.grid-header').getByRole('button', { name: 'c1', exact: true }).click();
    const firstValues = await page.locator('.grid-body [role=row] [aria-colindex="3"]').allTextContents();
    const nums = firstValues.map(Number);
    assert.ok(nums.length > 3);
    // The rendered rows are in view order only after sorting by number (0, 1, ... not "0", "10", "100").
    const byRow = await page.$$eval('.grid-body [role=row]', (rs) => rs.map((r) => [Number(r.getAttribute('aria-rowindex')), Number(r.querySelector('[aria-colindex="3"]')?.textContent)] as [number, number]).sort((a, b) => a[0] - b[0]).map((x) => x[1]));
    assert.deepEqual(byRow, [...byRow].sort((a, b) => a - b));
  });

  it('goes to a row on another page and focuses it; search asks the host and resets to the first page', async () => {
    let seen = await answerPage(0);
    await page.fill('[data-testid=goto-row]', '750');
    await page.press('[data-testid=goto-row]', 'Enter');
    const { msg } = await posted('preview/page', seen);
    assert.equal(msg.type === 'preview/page' && msg.offset, 500);
    seen = await answerPage(seen);
    await page.waitForFunction(() => document.activeElement?.getAttribute('role') === 'gridcell');
    const a = await active();
    assert.equal(a.row, String(750 - 500 + 1));
    await page.fill('[data-testid=search]', 'row 7');
    const s = await posted('preview/page', seen);
    assert.equal(s.msg.type === 'preview/page' && s.msg.search, 'row 7');
    assert.equal(s.msg.type === 'preview/page' && s.msg.offset, 0);
  });

  /**
   * A hidden tab's webview is reloaded when shown again, from its saved state. An applied
   * record (PreviewPanel.keepAsRecord) serves the one page it kept, whatever offset is asked
   * for, or an error when it kept none: the restored view must show what was served.
   */
  async function reloadAsRecord(): Promise<void> {
    const saved: unknown = await page.evaluate(() => (window as unknown as { __state: unknown }).__state);
    await page.close();
    page = await openWebviewPage(browser, 'preview', { viewport: { width: 1000, height: 700 }, state: saved });
    await send({ type: 'init', state: { panel: 'preview', mapping: 'wide' }, preview: { ...summary, applied: { at: '2026-12-07 11:00:00 UTC', toVersion: 3 } }, progress: null, pageSize: 500 });
  }

  it('an applied record restored after its tab was hidden shows the page the host kept, labelled as that page (Apply came while page 2 was loading)', async () => {
    const seen = await answerPage(0);
    await page.click('[aria-label="Next page"]');
    // Page 2 is asked for (and saved as the position); the record is kept before it is served.
    const next = await posted('preview/page', seen);
    assert.equal(next.msg.type === 'preview/page' && next.msg.offset, 500);
    await reloadAsRecord();
    const { msg } = await posted('preview/page');
    if (msg.type !== 'preview/page') throw new Error('not a page request');
    // The record's one page (what PreviewPanel.handleRecord answers to any offset): rows 1-500.
    await send({ type: 'response', id: msg.id, ok: true, result: { type: 'previewPage', page: pageAt(0, 500, 1000) } });
    await page.locator('[data-testid=preview-status]', { hasText: 'Showing rows' }).waitFor({ timeout: 10_000 });
    assert.match((await page.textContent('[data-testid=page-range]')) ?? '', /^1–500 of 1,000$/);
    assert.equal(await page.locator('.grid-body [role=row][aria-rowindex="2"] [aria-colindex="2"]').textContent(), '1');
    assert.equal(await page.inputValue('[data-testid=goto-page]'), '1');
    // Saved as shown: the next restore asks for the page that is on screen.
    const state = await page.evaluate(() => (window as unknown as { __state: { offset?: number } }).__state);
    assert.equal(state.offset, 0);
  });

  it('an applied record whose rows were not kept says so in its status line, not "Loading rows 501–1,000…" for ever', async () => {
    const seen = await answerPage(0);
    await page.click('[aria-label="Next page"]');
    await answerPage(seen);
    await page.locator('[data-testid=page-range]', { hasText: '501–1,000 of 1,000' }).waitFor();
    await reloadAsRecord();
    const { msg } = await posted('preview/page');
    if (msg.type !== 'preview/page') throw new Error('not a page request');
    assert.equal(msg.offset, 500, 'the restored view asks for the page it was on');
    await send({ type: 'response', id: msg.id, ok: false, error: { kind: 'usage', message: 'This preview was applied: its rows are no longer kept.', hint: 'Show Rows on the target table lists what it holds now.' } });
    await page.locator('.error', { hasText: 'its rows are no longer kept' }).waitFor({ timeout: 10_000 });
    const status = (await page.textContent('[data-testid=preview-status]')) ?? '';
    assert.doesNotMatch(status, /Loading/);
    assert.match(status, /^Rows 501–1,000 could not be loaded/);
  });

  it('picking an older version in "Up to" shows the new plan from its first page of All changes, not the old plan\'s page 2 (past the end of the smaller plan)', async () => {
    const picker = { ...summary, warnings: [], versionRange: { min: 0, max: 3 } };
    let seen = (await posted('preview/page')).index + 1;
    await send({ type: 'init', state: { panel: 'preview', mapping: 'wide' }, preview: picker, progress: null, pageSize: 500 });
    seen = await answerPage(seen);
    await page.click('[aria-label="Next page"]');
    seen = await answerPage(seen);
    await page.locator('[data-testid=page-range]', { hasText: '501–1,000 of 1,000' }).waitFor();
    await page.selectOption('[data-testid=version-select]', '2');
    const { msg, index } = await posted('preview/version', seen);
    if (msg.type !== 'preview/version') throw new Error('not a version request');
    assert.equal(msg.toVersion, 2);
    // What PreviewPanel does: a fresh init describing the plan up to v2 (300 changes), then the answer.
    await send({ type: 'init', state: { panel: 'preview', mapping: 'wide' }, preview: { ...picker, toVersion: 2, inserts: 200, updates: 100 }, progress: null, pageSize: 500 });
    await send({ type: 'response', id: msg.id, ok: true, result: { type: 'accepted' } });
    const next = await posted('preview/page', index + 1);
    assert.deepEqual(next.msg.type === 'preview/page' && { filter: next.msg.filter, offset: next.msg.offset }, { filter: 'all', offset: 0 });
    await answerPage(next.index, 300);
    await page.locator('[data-testid=page-range]', { hasText: /^1–300 of 300$/ }).waitFor({ timeout: 10_000 });
    assert.equal(await page.inputValue('[data-testid=version-select]'), '2');
    assert.equal(await page.inputValue('[data-testid=goto-page]'), '1');
  });

  it('a row of the Unchanged tab reads "unchanged" in full in its op cell, not cut to "uncha…"', async () => {
    // VS Code's webview type (the page above has the browser's 16 px).
    await page.addStyleTag({ content: 'body { font-family: sans-serif; font-size: 13px; }' });
    const { msg } = await posted('preview/page');
    if (msg.type !== 'preview/page') throw new Error('not a page request');
    const all = pageAt(0, 40, 40);
    const unchanged: PreviewPage = { ...all, filter: 'unchanged', rows: all.rows.map((r) => ({ op: 'unchanged' as const, cells: r.cells.map((c, i) => (i === 0 ? c : null)), before: null, changed: [] })) };
    await send({ type: 'response', id: msg.id, ok: true, result: { type: 'previewPage', page: unchanged } });
    const op = page.locator('.grid-body [role=row][aria-rowindex="2"] [aria-colindex="1"]');
    await op.waitFor();
    assert.equal(await op.textContent(), 'unchanged');
    const fit = await op.evaluate((e) => ({ scroll: (e as unknown as { scrollWidth: number }).scrollWidth, client: (e as unknown as { clientWidth: number }).clientWidth }));
    assert.ok(fit.scroll <= fit.client, `the op cell needs ${fit.scroll} px and has ${fit.client} px`);
  });

  it('in a narrow panel (a Preview beside an editor at 1000x700) the grid stays in view and is the only scroll area', async () => {
    await page.setViewportSize({ width: 330, height: 620 });
    // VS Code's webview default type size (the page above has the browser's 16 px).
    await page.addStyleTag({ content: 'body { font-family: sans-serif; font-size: 13px; }' });
    await answerPage(0);
    await page.locator('.grid-body [role=row]').first().waitFor();
    const layout = await page.evaluate(() => {
      const d = document as unknown as { querySelector(s: string): { getBoundingClientRect(): { top: number; bottom: number } } | null; scrollingElement: { scrollHeight: number; clientHeight: number }; body: { scrollWidth: number; clientWidth: number } };
      const grid = d.querySelector('[data-testid=preview-table]')?.getBoundingClientRect();
      return { top: grid?.top ?? -1, bottom: grid?.bottom ?? -1, scrollHeight: d.scrollingElement.scrollHeight, clientHeight: d.scrollingElement.clientHeight, scrollWidth: d.body.scrollWidth, clientWidth: d.body.clientWidth };
    });
    assert.ok(layout.top >= 0 && layout.bottom - layout.top >= 150 && layout.bottom <= 620, `the grid is at ${layout.top}..${layout.bottom} of a 620 px panel`);
    assert.ok(layout.scrollHeight <= layout.clientHeight + 1, `the page scrolls (${layout.scrollHeight} > ${layout.clientHeight})`);
    // Nothing outside the grid is wider than the panel (a focused Page box would scroll the whole page sideways).
    assert.ok(layout.scrollWidth <= layout.clientWidth + 1, `the page is ${layout.scrollWidth} px wide in a ${layout.clientWidth} px panel`);
  });
});
