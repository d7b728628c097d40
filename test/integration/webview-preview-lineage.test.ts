import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { HostToWebview, PreviewSummary } from '../../src/protocol/messages';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { summaryOf } from '../../src/views/RunnerPreviewSource';
import { long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { CHROMIUM, openWebviewPage } from '../helpers/webviewPage';

/**
 * Issue 14 point 3: lineage added to an existing target is a schema change the Preview panel
 * shows. The engine's preview on a real server (an initial load without lineage, then the
 * mapping with lineage) goes through the host's summaryOf into the real webview bundle in a
 * real browser, whose schema-change block lists the ALTER TABLE statements Apply runs first.
 */

declare const window: { postMessage(message: unknown, origin: string): void };
const LINEAGE = { version: '_delta_version', commitTimestamp: '_commit_timestamp', syncedAt: 'updated_at' };

describe('Preview panel: lineage added to an existing target is a schema change (real server, real browser)', function () {
  this.timeout(90_000);
  const db = useTestDatabase('webview_lineage');
  let browser: Browser;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) this.skip();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
  });

  async function openPreview(summary: PreviewSummary): Promise<Page> {
    const page = await openWebviewPage(browser, 'preview', { viewport: { width: 1000, height: 600 } });
    const init: HostToWebview = { type: 'init', state: { panel: 'preview', mapping: summary.mapping }, preview: summary, progress: null, pageSize: 100 };
    await page.evaluate((m) => window.postMessage(m, '*'), init);
    await page.locator('[data-testid=count-insert]').waitFor();
    return page;
  }

  async function previewSummary(mapping: Mapping): Promise<PreviewSummary> {
    const r = await openRunner(mapping, db().url);
    try {
      return summaryOf(mapping, await r.runner.preview({ limit: 100 }));
    } finally {
      await r.close();
    }
  }

  it('the schema-change block lists the three ADD COLUMN statements Apply runs first; without lineage there is no block', async () => {
    const dir = await tempDir('dns-wv-lineage-');
    const w = await DeltaTableWriter.create(path.join(dir, 'wv_lineage'), {
      columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }],
      configuration: { 'delta.enableChangeDataFeed': 'true' },
    });
    await w.append([{ id: 1n, name: 'one' }, { id: 2n, name: 'two' }]);
    const plain = buildMapping({ name: 'wv-lineage', source: w.path, target: 'wv_lineage', key: ['id'] });
    const loader = await openRunner(plain, db().url);
    try {
      await loader.runner.run({ mode: 'initial' });
    } finally {
      await loader.close();
    }
    await w.update('id', [{ id: 2n, name: 'two changed' }]);

    const withLineage = await previewSummary(buildMapping({ name: 'wv-lineage', source: w.path, target: 'wv_lineage', key: ['id'], lineage: LINEAGE }));
    const page = await openPreview(withLineage);
    try {
      const block = page.locator('details.alterations');
      assert.equal(await block.isVisible(), true, 'the schema-change block is shown');
      assert.equal(await block.locator('summary').textContent(), 'Apply first runs 3 schema change(s) on the table, in the same transaction as the rows');
      await block.locator('summary').click();
      assert.equal(await block.locator('pre').textContent(), [
        'ALTER TABLE "public"."wv_lineage" ADD COLUMN IF NOT EXISTS "_delta_version" bigint;',
        'ALTER TABLE "public"."wv_lineage" ADD COLUMN IF NOT EXISTS "_commit_timestamp" timestamptz;',
        'ALTER TABLE "public"."wv_lineage" ADD COLUMN IF NOT EXISTS "updated_at" timestamptz;',
      ].join('\n'));
      assert.equal(await page.locator('[data-testid=count-update]').textContent().then((t) => /\b1\b/.test(t ?? '')), true, 'the row change is counted beside it');
      await page.screenshot({ path: path.join(process.env.E2E_SCREENSHOTS ?? os.tmpdir(), 'preview-lineage-alterations.png') });
    } finally {
      await page.close();
    }

    const without = await previewSummary(plain);
    assert.equal(without.alterations, undefined);
    const plainPage = await openPreview(without);
    try {
      assert.equal(await plainPage.locator('details.alterations').isVisible(), false, 'no schema change, no block');
    } finally {
      await plainPage.close();
    }
  });
});
