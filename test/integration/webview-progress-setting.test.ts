import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parseWebviewToHost, type HostToWebview, type ProgressSnapshot } from '../../src/protocol/messages';
import { SyncError } from '../../src/sync/errors';
import { RunController } from '../../src/views/RunController';
import { CHROMIUM, openWebviewPage } from '../helpers/webviewPage';

/**
 * The Progress panel's error box offers Open Setting when the failed run's error names a
 * setting the editor can open (the failure toast's rule, settingLocation.ts): the snapshot
 * comes from the host's RunController, the webview is the real bundle in a real browser.
 * The button is reached with Tab, pressed with Enter, keeps its focus while snapshots
 * arrive (the DOM is updated in place), and its request names no setting or file.
 */

declare const window: { postMessage(message: unknown, origin: string): void; __posted: Array<{ type: string; id?: string }> };
interface El { getAttribute(name: string): string | null; setAttribute(name: string, value: string): void }
declare const document: { activeElement: El | null; querySelector(selector: string): El | null };
const FILE = '/ws/.delta-sync/orders.json';

/** The terminal snapshot of a run of `orders` (mapping file FILE) that failed with `error`. */
async function failedSnapshot(error: SyncError): Promise<ProgressSnapshot> {
  const runs = new RunController(() => 1_000);
  let terminal: ProgressSnapshot | undefined;
  runs.onSnapshot((s, isTerminal) => {
    if (isTerminal) terminal = s;
  });
  await assert.rejects(runs.start('orders', 'incremental', async () => {
    throw error;
  }, FILE));
  assert.ok(terminal);
  return terminal;
}

describe('Progress panel: Open Setting in the error box of a failed run', function () {
  this.timeout(60_000);
  let browser: Browser;
  let page: Page;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) this.skip();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await page?.close();
    await browser?.close();
  });

  const posted = async (type: string): Promise<Array<{ type: string; id?: string }>> =>
    page.evaluate((t) => window.__posted.filter((m) => m.type === t), type);
  const send = async (m: HostToWebview): Promise<void> => page.evaluate((msg) => window.postMessage(msg, '*'), m);
  const focused = async (): Promise<string | null> => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? null);

  it('names the mapping key and its file, is reached by Tab and pressed by Enter, keeps focus across snapshots, and hides for an error without a setting', async () => {
    const massDelete = await failedSnapshot(new SyncError('mapping', 'The batch would delete 80% of the rows of public.orders.', { setting: 'safety.maxDeleteShare', hint: 'Raise safety.maxDeleteShare in the mapping, or run it once with Delete Anyway.' }));
    page = await openWebviewPage(browser, 'progress', { viewport: { width: 1000, height: 700 } });
    await send({ type: 'init', state: { panel: 'progress', runId: null }, preview: null, progress: massDelete, history: null });

    const button = page.locator('[data-testid=open-setting]');
    await button.waitFor({ state: 'visible' });
    assert.match((await page.textContent('[data-testid=run-error-text]')) ?? '', /would delete 80% of the rows of public\.orders/);
    assert.equal(await button.textContent(), 'Open Setting');
    assert.equal(await button.getAttribute('aria-label'), 'Open Setting: "safety.maxDeleteShare" in orders.json');

    // Keyboard only: Tab from the page reaches the button (the run is over, Stop is hidden).
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await focused()) === 'open-setting';
    }
    assert.ok(reached, 'Tab reaches Open Setting');
    await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS ?? os.tmpdir(), 'progress-open-setting.png') });
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__posted.some((m) => m.type === 'run/openSetting'));
    const [request] = await posted('run/openSetting');
    // The request names nothing to open: the host opens the setting of the error it holds.
    assert.deepEqual(parseWebviewToHost(request), { type: 'run/openSetting', id: request!.id });
    assert.deepEqual(Object.keys(request!).sort(), ['id', 'type']);
    await send({ type: 'response', id: request!.id!, ok: true, result: { type: 'accepted' } });

    // Snapshots keep coming (the same failed run, a later update): the same button keeps the focus.
    await page.evaluate(() => document.querySelector('[data-testid=open-setting]')?.setAttribute('data-same', '1'));
    await send({ type: 'progress', snapshot: { ...massDelete, updatedAt: massDelete.updatedAt + 500 } });
    await send({ type: 'history', history: { mapping: 'orders', runs: [] } });
    assert.equal(await focused(), 'open-setting');
    assert.equal(await button.getAttribute('data-same'), '1', 'the button was updated in place, not rebuilt');

    // The host refusing (say the run changed meanwhile): its words show under the error.
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__posted.filter((m) => m.type === 'run/openSetting').length === 2);
    const second = (await posted('run/openSetting'))[1]!;
    await send({ type: 'response', id: second.id!, ok: false, error: { message: 'The error of this run names no setting to open.', kind: 'usage' } });
    await page.locator('[data-testid=action-error]').waitFor({ state: 'visible' });
    assert.equal(await page.textContent('[data-testid=action-error]'), 'The error of this run names no setting to open.');

    // A VS Code setting is named as such.
    await send({ type: 'progress', snapshot: await failedSnapshot(new SyncError('usage', 'The page size is too big.', { setting: 'deltaSync.preview.pageSize' })) });
    await page.waitForFunction(() => document.querySelector('[data-testid=open-setting]')?.getAttribute('aria-label')?.includes('deltaSync.preview.pageSize') === true);
    assert.equal(await button.getAttribute('aria-label'), 'Open Setting: deltaSync.preview.pageSize in the Settings editor');

    // An error that names no openable setting (a connection-string parameter): no button.
    await send({ type: 'progress', snapshot: await failedSnapshot(new SyncError('connection', 'The server refused TLS.', { setting: 'sslmode' })) });
    await button.waitFor({ state: 'hidden' });
    assert.match((await page.textContent('[data-testid=run-error-text]')) ?? '', /refused TLS/);
  });
});
