import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { idleProgress } from '../../src/protocol/messages';
import type { HostToWebview, PreviewSummary, RunHistory } from '../../src/protocol/messages';
import { foldEvent } from '../../src/views/ProgressModel';
import { summaryOf } from '../../src/views/RunnerPreviewSource';
import type { PreviewReport } from '../../src/sync/ports/reports';
import { buildMapping } from '../builders/mappings';
import { CHROMIUM, openWebviewPage } from '../helpers/webviewPage';

/**
 * The Preview panel of a mapping with `mode: "auto"` (issue 15 point 3): the host carries
 * the engine's choice (PreviewReport.auto) into the summary, and the webview says which
 * path Apply takes and why in one line under the counts. The report is the engine's shape,
 * the webview the real bundle in a real browser.
 */

declare const window: { postMessage(message: unknown, origin: string): void };

const reason = 'snapshot swap: 42 changes are 42% of 100 rows, above auto.maxChangeShare 20%';
const report: PreviewReport = {
  mode: 'incremental', fromVersion: 2, toVersion: 4, targetMissing: false, matching: 1, auto: { path: 'snapshot', reason },
  totals: { insert: 7, update: 30, delete: 5, unchanged: 0, 'delete-missing': 0 },
  rows: [{ action: 'insert', key: { id: '101' }, newRow: { id: '101', name: 'name 101' } }],
};

describe('Preview and Progress panels: the path mode auto chose', function () {
  this.timeout(60_000);
  let browser: Browser;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) this.skip();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
  });

  /** A page with the webview bundle (media/main.ts) as the panel runs it, sent `init` once it is ready. */
  async function openPanel(panel: 'preview' | 'progress', init: HostToWebview): Promise<Page> {
    const page = await openWebviewPage(browser, panel, { viewport: { width: 1000, height: 500 } });
    try {
      await page.evaluate((m) => window.postMessage(m, '*'), init);
      return page;
    } catch (e) {
      await page.close();
      throw e;
    }
  }

  async function shown(summary: PreviewSummary, shotName: string): Promise<{ hidden: boolean; text: string }> {
    const page = await openPanel('preview', { type: 'init', state: { panel: 'preview', mapping: summary.mapping }, preview: summary, progress: null, pageSize: 100 });
    try {
      await page.locator('[data-testid=count-insert]').waitFor();
      const auto = page.locator('[data-testid=preview-auto]');
      const result = { hidden: !(await auto.isVisible()), text: (await auto.textContent()) ?? '' };
      await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS ?? os.tmpdir(), shotName) });
      return result;
    } finally {
      await page.close();
    }
  }

  it('the summary carries the choice and the panel says "Mode auto: snapshot swap: ... above auto.maxChangeShare 20%"; without auto, no line', async () => {
    const mapping = buildMapping({ name: 'auto', source: '/t/auto', target: 'auto', key: ['id'], mode: 'auto' });
    const summary = summaryOf(mapping, report);
    assert.deepEqual(summary.auto, { path: 'snapshot', reason });
    const withAuto = await shown(summary, 'preview-auto-mode.png');
    assert.deepEqual(withAuto, { hidden: false, text: `Mode auto: ${reason}.` });
    const { auto: _auto, ...plain } = report;
    const without = await shown(summaryOf(buildMapping({ name: 'plain', source: '/t/plain', target: 'plain', key: ['id'] }), plain), 'preview-no-auto.png');
    assert.equal(without.hidden, true);
  });

  it('the Progress panel shows "Mode auto: ..." under the run\'s status line', async () => {
    const progress = foldEvent(idleProgress(0), { type: 'run-started', runId: 'r', pipeline: 'auto', mode: 'initial', fromVersion: 2, toVersion: 4, totalRows: 102, auto: { path: 'snapshot', reason }, at: 1 });
    const page = await openPanel('progress', { type: 'init', state: { panel: 'progress', runId: 'r' }, preview: null, progress, pageSize: 100 });
    try {
      const auto = page.locator('[data-testid=auto-mode]');
      await auto.waitFor();
      assert.equal(await auto.textContent(), `Mode auto: ${reason}.`);
      await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS ?? os.tmpdir(), 'progress-auto-mode.png') });
    } finally {
      await page.close();
    }
  });

  it('the Progress panel\'s history names each auto run\'s path and says why under it; other runs have no such line', async () => {
    const swapWhy = 'snapshot swap: 42 changes are 42% of 100 rows, above auto.maxChangeShare 30%';
    const incWhy = 'incremental: 12 changes, 12% of 100 rows (at most auto.maxChangeShare 30%)';
    const history: RunHistory = { mapping: 'auto', runs: [
      { runId: '3', mode: 'incremental', status: 'succeeded', fromVersion: '5', toVersion: '5', rows: '12', startedAt: 's3', finishedAt: 'f3', error: null, auto: { path: 'incremental', reason: incWhy } },
      { runId: '2', mode: 'auto-swap', status: 'succeeded', fromVersion: '2', toVersion: '4', rows: '100', startedAt: 's2', finishedAt: 'f2', error: null, auto: { path: 'snapshot', reason: swapWhy } },
      { runId: '1', mode: 'initial-swap', status: 'succeeded', fromVersion: null, toVersion: '1', rows: '100', startedAt: 's1', finishedAt: 'f1', error: null },
    ] };
    const page = await openPanel('progress', { type: 'init', state: { panel: 'progress', runId: null }, preview: null, progress: idleProgress(0), history, pageSize: 100 });
    try {
      await page.locator('[data-testid=history] tbody tr').first().waitFor();
      const modes = await page.locator('[data-testid=history] tbody tr td:nth-child(2)').allTextContents();
      assert.deepEqual(modes, [`incremental (auto)Mode auto: ${incWhy}.`, `snapshot load (auto)Mode auto: ${swapWhy}.`, 'initial load']);
      assert.deepEqual(await page.locator('[data-testid=history-auto]').allTextContents(), [`Mode auto: ${incWhy}.`, `Mode auto: ${swapWhy}.`]);
      await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS ?? os.tmpdir(), 'progress-history-auto.png') });
    } finally {
      await page.close();
    }
  });
});
