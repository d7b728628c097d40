import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { HostToWebview, PreviewSummary } from '../../src/protocol/messages';
import { summaryOf, toPreviewRow } from '../../src/views/RunnerPreviewSource';
import type { PreviewReport } from '../../src/sync/ports/reports';
import { buildMapping } from '../builders/mappings';
import { CHROMIUM, openWebviewPage } from '../helpers/webviewPage';

/**
 * The Preview panel with the lineage guard (issue 14 point 3): the host turns the engine's
 * `kept` total into the summary's "kept by guard" count and a kept row into the row as it
 * stays; the webview shows the count beside the others. The report is the engine's shape
 * (PreviewReport), the webview the real bundle in a real browser.
 */

declare const window: { postMessage(message: unknown, origin: string): void };

const report: PreviewReport = {
  mode: 'incremental', fromVersion: 2, toVersion: 2, targetMissing: false, matching: 1,
  totals: { insert: 0, update: 0, delete: 0, unchanged: 0, 'delete-missing': 0, kept: 3 },
  rows: [{ action: 'kept', key: { id: '1' }, oldRow: { id: '1', name: 'c', _delta_version: '3' }, newRow: { id: '1', name: 'b', _delta_version: '2' } }],
};

describe('Preview panel: changes kept by the out-of-order guard', function () {
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

  it('the summary carries the kept count, a kept row shows the row as it stays, and the panel shows "kept by guard"', async () => {
    const mapping = buildMapping({ name: 'lin', source: '/t/lin', target: 'lin', key: ['id'], lineage: { version: '_delta_version' } });
    const summary: PreviewSummary = summaryOf(mapping, report);
    assert.equal(summary.keptByGuard, 3);
    const columns = ['id', 'name', '_delta_version'].map((name) => ({ name, sourceType: 'string', targetType: 'text', isKey: name === 'id' }));
    assert.deepEqual(toPreviewRow(report.rows[0]!, columns), { op: 'unchanged', cells: ['1', 'c', '3'], before: null, changed: [] });

    page = await openWebviewPage(browser, 'preview', { viewport: { width: 1000, height: 500 } });
    const init: HostToWebview = { type: 'init', state: { panel: 'preview', mapping: 'lin' }, preview: summary, progress: null, pageSize: 100 };
    await page.evaluate((m) => window.postMessage(m, '*'), init);
    await page.locator('[data-testid=count-kept]').waitFor();
    assert.equal(await page.textContent('[data-testid=count-kept]'), '3');
    assert.match((await page.locator('[data-testid=count-kept]').locator('..').textContent()) ?? '', /kept by guard/);
    const tabs = await page.locator('button[data-filter]').allTextContents();
    assert.ok(tabs.includes('All changes (3)') && tabs.includes('Unchanged (3)'), `the kept rows are listed under All changes and Unchanged: ${tabs.join(' | ')}`);
    const shot = path.join(process.env.E2E_SCREENSHOTS ?? os.tmpdir(), 'preview-kept-by-guard.png');
    await page.screenshot({ path: shot });
    await page.close();
  });
});
