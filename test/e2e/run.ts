/**
 * End-to-end test in a real VS Code: code-server (the VS Code workbench served to a
 * browser) with the packaged .vsix installed, driven through its UI by playwright-core
 * and Debian Chromium. `npm run test:e2e`; exits non-zero on failure.
 *
 * Steps: setup (cached tools) -> build -> package .vsix and check its file list ->
 * fresh user-data/extensions dirs and a temp workspace -> install the .vsix -> start
 * code-server on a free port in its own process group -> open the Delta Sync container,
 * check the three views -> Open Sample (table + sandbox mapping) -> the Create Mapping
 * quick-pick flow -> Preview (initial load: N inserts) -> Apply -> Progress panel shows
 * the run finish -> the Targets tree shows the sandbox table's rows -> change the
 * sample -> Preview (3 inserts / 3 updates / 2 deletes) -> Apply -> rows and mapping
 * status updated -> Show Rows -> Stop a paced initial load from the Progress panel (cancelled,
 * no table written) -> a failing command's toast -> Add Postgres Connection -> Start
 * Continuous Sync on the sample mapping, Change Sample twice (status bar and trees follow),
 * Stop Continuous Sync -> Sync All from the Mappings view title (its summary toast). Screenshots in
 * .test-artifacts/e2e/. The process group is killed at the end, pass or fail.
 * Set E2E_KEEP=1 to keep the temp folder.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { generateCustomers } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { SHARED_TABLES_DIR } from '../helpers/sharedTables';
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
} from './workbench';

const ROOT = path.resolve(__dirname, '../..');
const ARTIFACTS = path.join(ROOT, '.test-artifacts', 'e2e');
const { log, step, timings, report } = stepRecorder('e2e');

/** Files the .vsix may contain (paths as `vsce ls` prints them). */
const ALLOWED_IN_VSIX = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE(\.md|\.txt)?$/,
  // changePlanWorker.js: the Delta reader's worker thread, started from dist/extension.js.
  /^dist\/(extension|webview|changePlanWorker)\.js$/,
  // PGlite's runtime files, loaded next to dist/extension.js (the sandbox target).
  /^dist\/(pglite\.wasm|pglite\.data|initdb\.wasm)$/,
  /^media\/[^/]+\.(css|svg)$/,
  // The extension's icon (package.json `icon`, rendered from media/icon.svg by scripts/render-icon.ts).
  /^media\/icon\.png$/,
  /^media\/walkthrough\/[^/]+\.md$/,
  /^schemas\/[^/]+\.json$/,
];
const REQUIRED_IN_VSIX = [
  'package.json', 'dist/extension.js', 'dist/webview.js', 'dist/changePlanWorker.js', 'dist/pglite.wasm', 'dist/pglite.data', 'dist/initdb.wasm',
  'media/webview.css', 'media/delta-sync.svg', 'media/icon.png', 'schemas/mapping.schema.json',
];

function checkVsixFiles(): string[] {
  const out = execFileSync('npx', ['--no-install', 'vsce', 'ls', '--no-dependencies'], { cwd: ROOT, encoding: 'utf8' });
  const files = out.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const unexpected = files.filter((f) => !ALLOWED_IN_VSIX.some((re) => re.test(f)));
  const missing = REQUIRED_IN_VSIX.filter((f) => !files.includes(f));
  if (unexpected.length || missing.length) {
    throw new Error(`.vsix content is wrong. Unexpected: ${unexpected.join(', ') || 'none'}. Missing: ${missing.join(', ') || 'none'}. Check .vscodeignore.`);
  }
  return files;
}

/** A workspace with the shared Delta tables configured and one mapping file. */
function makeWorkspace(dir: string): { tablesFolder: string | null } {
  fs.mkdirSync(path.join(dir, '.vscode'), { recursive: true });
  fs.mkdirSync(path.join(dir, '.delta-sync'), { recursive: true });
  const tablesFolder = SHARED_TABLES_DIR ? path.join(SHARED_TABLES_DIR, 'delta-rs') : null;
  fs.writeFileSync(
    path.join(dir, '.vscode', 'settings.json'),
    JSON.stringify({ 'deltaSync.deltaFolders': tablesFolder ? [tablesFolder, 'missing-folder'] : ['missing-folder'] }, null, 2),
  );
  fs.writeFileSync(
    path.join(dir, '.delta-sync', 'orders.json'),
    JSON.stringify(
      { name: 'orders', source: { type: 'delta', path: tablesFolder ? path.join(tablesFolder, 'cdf-table') : 'tables/orders' }, target: { connection: 'sandbox', table: 'orders' } },
      null,
      2,
    ),
  );
  fs.writeFileSync(path.join(dir, '.delta-sync', 'broken.json'), '{ "name": "Not A Slug", }\n');
  return { tablesFolder };
}


/** The damage Verify & Repair must find: 3 rows deleted, 1 changed, 1 added (the counts the toast reports). */
const DAMAGE_SQL = [
  'DELETE FROM public.customer_profiles WHERE customer_id IN (SELECT customer_id FROM public.customer_profiles ORDER BY customer_id LIMIT 3)',
  "UPDATE public.customer_profiles SET full_name = 'Damaged by the e2e' WHERE customer_id = (SELECT max(customer_id) FROM public.customer_profiles)",
  "INSERT INTO public.customer_profiles (customer_id, full_name) VALUES ('cust_e2e_extra', 'Not in Delta')",
];
const DAMAGE_KEYBINDING = 'ctrl+alt+shift+f9';

/** Rows of the Delta table's latest snapshot, counted by reading it (not from the UI). */
async function deltaRowCount(tablePath: string): Promise<number> {
  const snap = await (await DeltaTable.open(tablePath)).snapshot();
  let n = 0;
  for await (const batch of snap.rows()) n += batch.length;
  return n;
}

/** 'skipped' when SKIP_E2E=1 told it not to run: then it must not report PASS. */
async function main(): Promise<'passed' | 'skipped'> {
  if (skipRequested(log, 'the end-to-end test in VS Code')) return 'skipped';
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const started = Date.now();

  let files: string[] = [];
  const ext = await prepareExtension(step, ROOT, ARTIFACTS, () => {
    files = checkVsixFiles();
  });
  log(`.vsix files: ${files.join(', ')}`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'delta-sync-e2e-'));
  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(workspace);
  const { tablesFolder } = makeWorkspace(workspace);
  const consoleErrors: string[] = [];
  const onPage = (page: Page): void => {
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
  };
  try {
    // A wider side bar, so tree descriptions (status, row counts) are readable in the screenshots.
    await withWorkbench(step, ext, {
      tmp,
      workspace,
      artifacts: ARTIFACTS,
      sidebarWiden: 180,
      onPage,
      // TEST-ONLY: the key that damages the sandbox target before Verify & Repair (src/views/TestHooks.ts;
      // the command exists only with DELTA_SYNC_E2E_TEST_HOOKS=1, set on code-server here).
      keybindings: [{ key: DAMAGE_KEYBINDING, command: 'deltaSyncTest.sandboxSql', args: DAMAGE_SQL }],
      env: { DELTA_SYNC_E2E_TEST_HOOKS: '1' },
    }, async (p) => {
      await step('views render', async () => {
        for (const name of ['Sources', 'Targets', 'Mappings']) await expandPane(p, name);
        const sources = paneRows(p, 'Sources');
        await rowLabelled(sources, p, 'missing-folder: folder not found').first().waitFor({ timeout: 20_000 });
        if (tablesFolder) {
          await rowLabelled(sources, p, path.basename(tablesFolder)).first().click();
          const cdf = rowLabelled(sources, p, 'cdf-table').filter({ hasText: 'CDF on' }).first();
          await cdf.waitFor({ timeout: 120_000 });
          await rowLabelled(sources, p, 'simple_table').filter({ hasText: 'CDF off' }).first().waitFor({ timeout: 30_000 });
          await cdf.click(); // expand: columns with Delta types; birthday is the partition column
          await rowLabelled(sources, p, 'birthday').filter({ hasText: 'date · partition' }).first().waitFor({ timeout: 20_000 });
        }
        await paneRows(p, 'Targets').filter({ hasText: 'Sandbox (embedded Postgres)' }).first().waitFor({ timeout: 20_000 });
        const mappings = paneRows(p, 'Mappings');
        await rowLabelled(mappings, p, 'orders').filter({ hasText: 'cdf-table → sandbox:public.orders' }).first().waitFor({ timeout: 20_000 });
        await rowLabelled(mappings, p, 'broken.json').filter({ hasText: 'invalid' }).first().waitFor({ timeout: 20_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '01-views.png') });
      });

      const sampleTable = path.join(workspace, 'delta-sample', 'customer_profiles');
      let sampleRows = 0;
      await step('palette: Open Sample writes the customer_profiles table and its sandbox mapping', async () => {
        if (tablesFolder) await rowLabelled(paneRows(p, 'Sources'), p, path.basename(tablesFolder)).first().click(); // collapse
        await runPaletteCommand(p, 'Delta Sync: Open Sample (customer_profiles)');
        const sources = paneRows(p, 'Sources');
        const sampleRoot = rowLabelled(sources, p, 'delta-sample').first();
        await sampleRoot.waitFor({ timeout: 120_000 });
        await sampleRoot.click();
        sampleRows = await deltaRowCount(sampleTable);
        await rowLabelled(sources, p, 'customer_profiles').filter({ hasText: `v5 · CDF on · ${grouped(sampleRows)} rows` }).first().waitFor({ timeout: 30_000 });
        const mappingFile = path.join(workspace, '.delta-sync', 'customer-profiles.json');
        const written = JSON.parse(fs.readFileSync(mappingFile, 'utf8')) as { key?: string[]; target?: { connection?: string }; $schema?: string };
        if (written.key?.[0] !== 'customer_id' || written.target?.connection !== 'sandbox' || !written.$schema) throw new Error(`unexpected sample mapping: ${JSON.stringify(written)}`);
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '02-sample-table.png') });
        await clearNotifications(p);
      });

      await step('palette: Create Mapping walks the quick-pick steps, shows the DDL and writes the file', async () => {
        await runPaletteCommand(p, 'Delta Sync: Create Mapping...');
        await quickInputStep(p, 'Create Mapping (1/7)');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'customer_profiles' }).first().click();
        await quickInputStep(p, 'Create Mapping (2/7)');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'sandbox' }).first().click();
        const table = await quickInputStep(p, 'Create Mapping (3/7)');
        await table.fill('public.customers_copy');
        await table.press('Enter');
        const key = await quickInputStep(p, 'Create Mapping (4/7)');
        // customer_id is preselected as the key (the *_id guess); accept.
        await p.screenshot({ path: path.join(ARTIFACTS, '03-create-mapping-key.png') });
        await key.press('Enter');
        const written = await finishCreateMapping<{ key?: string[]; target?: { schema?: string; table?: string }; $schema?: string }>(p, workspace, 'customers-copy');
        if (written.key?.join() !== 'customer_id' || written.target?.table !== 'customers_copy' || written.target?.schema !== 'public' || written.$schema !== './schema/mapping.schema.json') {
          throw new Error(`unexpected mapping written: ${JSON.stringify(written)}`);
        }
        if (!fs.existsSync(path.join(workspace, '.delta-sync', 'schema', 'mapping.schema.json'))) throw new Error('the $schema file was not written');
        // The last step offers the Preview (issue 13 point 7).
        await p.locator('.notification-toast', { hasText: 'Preview now?' }).first().locator('.monaco-button', { hasText: 'Preview' }).first().waitFor({ timeout: 20_000 });
        // The DDL preview document.
        await p.locator('.monaco-editor .view-lines', { hasText: 'CREATE TABLE' }).first().waitFor({ timeout: 20_000 });
        await showPane(p, 'Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customers-copy').first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '04-create-mapping-ddl.png') });
        await runPaletteCommand(p, 'View: Close All Editors');
        await clearNotifications(p);
      });

      const previewOf = async (mapping: string): Promise<Frame> => {
        await runPaletteCommand(p, 'Delta Sync: Preview Changes');
        await pickQuickInputItem(p, mapping);
        return webviewFrame(p, '[data-testid="count-insert"]', 180_000);
      };
      const applyAndWait = async (frame: Frame, shot: string): Promise<Frame> => {
        await frame.locator('[data-testid="apply"]').click();
        const progress = await webviewFrame(p, '[data-testid="status"]', 60_000);
        await waitForText(progress, '[data-testid="status"]', 'succeeded', 180_000);
        await progress.locator('[data-testid="history"] tbody tr').first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, shot) });
        // The applied preview stays as a read-only record: marked applied, Apply off. Then closed.
        const recordTab = p.locator('.tabs-container .tab', { hasText: 'Applied: customer-profiles' }).first();
        await recordTab.click();
        const record = await webviewFrame(p, '[data-testid="applied"]:not([hidden])', 30_000);
        await waitForText(record, '[data-testid="applied"]', /^Applied at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC up to v\d+: this panel is a read-only record/);
        if ((await record.locator('[data-testid="apply"]').getAttribute('aria-disabled')) !== 'true') throw new Error('Apply is still enabled in the applied record');
        await p.screenshot({ path: path.join(ARTIFACTS, shot.replace('.png', '-record.png')) });
        await recordTab.click({ button: 'middle' });
        await recordTab.waitFor({ state: 'detached', timeout: 10_000 });
        await p.locator('.tabs-container .tab', { hasText: 'Delta Sync: Progress' }).first().click();
        return webviewFrame(p, '[data-testid="history"] tbody tr', 30_000);
      };

      await step('Preview of the sample mapping: an initial load of every row', async () => {
        const frame = await previewOf('customer-profiles');
        await waitForText(frame, '[data-testid="count-insert"]', grouped(sampleRows));
        await waitForText(frame, '[data-testid="count-update"]', '0');
        await waitForText(frame, '[data-testid="count-delete"]', '0');
        await waitForText(frame, '[data-testid="preview-mode"]', /initial load of snapshot v5/);
        // Virtualised: only the rows in view are in the DOM, never the whole page.
        await frame.locator('[data-testid="preview-table"] .grid-body [role="row"]').first().waitFor({ timeout: 30_000 });
        const shown = await frame.locator('[data-testid="preview-table"] .grid-body [role="row"]').count();
        if (shown === 0 || shown > 100) throw new Error(`expected the visible window of rows, saw ${shown}`);
        await p.screenshot({ path: path.join(ARTIFACTS, '05-preview-initial.png') });
      });

      await step('Apply: the Progress panel shows the initial load finish', async () => {
        const frame = await webviewFrame(p, '[data-testid="apply"]');
        const progress = await applyAndWait(frame, '06-progress-initial.png');
        await waitForText(progress, '[data-testid="rows-applied"]', new RegExp(`^${grouped(sampleRows)}`));
      });

      await step('Targets tree: the sandbox table holds every sample row', async () => {
        await showPane(p, 'Targets');
        const targets = paneRows(p, 'Targets');
        await runPaletteCommand(p, 'Delta Sync: Refresh Targets');
        const sandbox = targets.filter({ hasText: 'Sandbox (embedded Postgres)' }).first();
        if ((await sandbox.getAttribute('aria-expanded')) !== 'true') await sandbox.click();
        await rowLabelled(targets, p, 'public.customer_profiles').filter({ hasText: `${grouped(sampleRows)} rows` }).first().waitFor({ timeout: 60_000 });
        const mappings = paneRows(p, 'Mappings');
        await rowLabelled(mappings, p, 'customer-profiles').filter({ hasText: 'up to date · v5' }).first().waitFor({ timeout: 60_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '07-targets-after-initial.png') });
      });

      let changedRows = 0;
      await step('Change the sample, preview: 3 inserts, 3 updates, 2 deletes', async () => {
        await clearNotifications(p);
        await runPaletteCommand(p, 'Delta Sync: Change Sample Table');
        await p.locator('.notification-toast', { hasText: 'the sample table changed' }).first().waitFor({ timeout: 60_000 });
        changedRows = await deltaRowCount(sampleTable);
        const frame = await previewOf('customer-profiles');
        await waitForText(frame, '[data-testid="count-insert"]', '3');
        await waitForText(frame, '[data-testid="count-update"]', '3');
        await waitForText(frame, '[data-testid="count-delete"]', '2');
        await waitForText(frame, '[data-testid="preview-mode"]', /incremental: checkpoint v5 → v6/);
        // The version picker offers v6 (latest), the plan's end.
        if ((await frame.locator('[data-testid="version-select"]').inputValue()) !== '6') throw new Error('the version picker does not show v6');
        // Copy as SQL: the focused row as the statement that applies it, told in the status line.
        await frame.locator('[data-testid="preview-table"] .grid-body [role="gridcell"]').first().click();
        await frame.locator('[data-testid="copy-sql"]').click();
        await waitForText(frame, '[data-testid="preview-status"]', /^Copied row 1 as SQL: (INSERT INTO "public"\."customer_profiles" \("customer_id", |UPDATE "public"\."customer_profiles" SET|DELETE FROM "public"\."customer_profiles" WHERE)/, 15_000);
        await p.screenshot({ path: path.join(ARTIFACTS, '08b-preview-copy-sql.png') });
        // Hide a column with the Columns picker: its header goes, the others stay.
        await frame.locator('[data-testid="columns-button"]').click();
        await frame.locator('[data-testid="columns-picker"] input[data-column="email"]').uncheck();
        await frame.locator('[data-testid="preview-table"] .grid-header [role="columnheader"]', { hasText: /^email/ }).waitFor({ state: 'detached', timeout: 10_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '08c-preview-columns-hidden.png') });
        await frame.locator('[data-testid="columns-picker"] button', { hasText: 'Show All' }).click();
        await frame.locator('[data-testid="preview-table"] .grid-header [role="columnheader"]', { hasText: /^email/ }).first().waitFor({ timeout: 10_000 });
        await p.keyboard.press('Escape');
        // Updates show the changed columns as old → new.
        await frame.locator('[data-testid="filter-update"]').click();
        await waitForText(frame, '[data-testid="page-range"]', '1–3 of 3');
        if ((await frame.locator('[data-testid="preview-table"] .grid-body .grid-row:not(.update)').count()) !== 0) throw new Error('the Updates filter shows other rows');
        // Focus stays on the filter tab after the page loads (the page is updated in place).
        const focused = await frame.evaluate<string>(`document.activeElement?.getAttribute('data-testid') ?? ''`);
        if (focused !== 'filter-update') throw new Error(`focus moved to "${focused}" after the page loaded`);
        const changed = frame.locator('[data-testid="preview-table"] .grid-row.update .grid-cell.changed').first();
        await changed.waitFor({ timeout: 30_000 });
        // Keyboard: Enter on a changed cell opens its old -> new detail; Escape closes it and focus returns to the cell.
        await changed.click();
        await p.keyboard.press('Enter');
        await frame.locator('.grid-popover', { hasText: 'Before' }).first().waitFor({ timeout: 10_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '08a-preview-cell-detail.png') });
        await p.keyboard.press('Escape');
        await frame.locator('.grid-popover').waitFor({ state: 'detached', timeout: 10_000 });
        const role = await frame.evaluate<string>(`document.activeElement?.getAttribute('role') ?? ''`);
        if (role !== 'gridcell') throw new Error(`focus went to "${role}" after closing the detail, not back to the cell`);
        // Hide and show the panel (another tab in front, then back): the filter and page survive.
        await p.locator('.tabs-container .tab', { hasText: 'Delta Sync: Progress' }).first().click();
        await p.locator('.tabs-container .tab', { hasText: 'Preview: customer-profiles' }).first().click();
        const again = await webviewFrame(p, '[data-testid="filter-update"][aria-pressed="true"]', 30_000);
        await waitForText(again, '[data-testid="page-range"]', '1–3 of 3');
        await waitForText(again, '[data-testid="count-delete"]', '2');
        await p.screenshot({ path: path.join(ARTIFACTS, '08-preview-incremental.png') });
      });

      await step('Apply the incremental sync; the target follows the source', async () => {
        const frame = await webviewFrame(p, '[data-testid="apply"]');
        await applyAndWait(frame, '09-progress-incremental.png');
        await showPane(p, 'Targets');
        await runPaletteCommand(p, 'Delta Sync: Refresh Targets');
        const targets = paneRows(p, 'Targets');
        const sandbox = targets.filter({ hasText: 'Sandbox (embedded Postgres)' }).first();
        if ((await sandbox.getAttribute('aria-expanded')) !== 'true') await sandbox.click();
        const row = rowLabelled(targets, p, 'public.customer_profiles').filter({ hasText: `${grouped(changedRows)} rows` }).first();
        await row.waitFor({ timeout: 60_000 });
        await showPane(p, 'Mappings');
        const mapping = rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').filter({ hasText: 'up to date · v6' }).first();
        await mapping.waitFor({ timeout: 60_000 });
        await mapping.click();
        await paneRows(p, 'Mappings').filter({ hasText: 'Last run' }).first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '10-views-after-sync.png') });
        // Show Rows: the table in the data grid, paged and sorted by the host's query.
        await row.click();
        const rowsFrame = await webviewFrame(p, '[data-testid="rows-table"] .grid-body [role="row"]', 30_000);
        await waitForText(rowsFrame, '[data-testid="page-range"]', new RegExp(`of ${grouped(changedRows)}$`));
        await rowsFrame.locator('[data-testid="rows-table"] .grid-header').getByRole('button', { name: 'total_spend', exact: true }).click();
        await waitForText(rowsFrame, '[data-testid="rows-status"]', /sorted by total_spend ascending/);
        await p.screenshot({ path: path.join(ARTIFACTS, '10a-show-rows-grid.png') });
        // Done with the table: close its tab (the next steps drive the palette from the workbench).
        await p.locator('.tabs-container .tab', { hasText: 'Rows: public.customer_profiles' }).first().click({ button: 'middle' });
        await p.locator('.tabs-container .tab', { hasText: 'Rows: public.customer_profiles' }).first().waitFor({ state: 'detached', timeout: 10_000 });
        // Focus back in the workbench (the Mappings tree), not in the Progress webview now in front:
        // F1 pressed inside that webview after a palette round trip lost its quick input in code-server.
        await mapping.click();
        await p.screenshot({ path: path.join(ARTIFACTS, '11-show-rows.png') });
      });

      // --- Verify & Repair (issue 15): the sandbox target damaged through the test-only command, found and repaired. ---
      const targetRow = async (rows: number): Promise<void> => {
        await showPane(p, 'Targets');
        await runPaletteCommand(p, 'Delta Sync: Refresh Targets');
        const targets = paneRows(p, 'Targets');
        const sandbox = targets.filter({ hasText: 'Sandbox (embedded Postgres)' }).first();
        if ((await sandbox.getAttribute('aria-expanded')) !== 'true') await sandbox.click();
        await rowLabelled(targets, p, 'public.customer_profiles').filter({ hasText: `${grouped(rows)} rows` }).first().waitFor({ timeout: 60_000 });
      };
      await step('Verify & Repair from the Mappings tree: the damaged sandbox target (3 rows deleted, 1 changed, 1 added) previews as 3 inserts, 1 update (old -> new), 1 delete', async () => {
        await showPane(p, 'Mappings');
        const mapping = rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').first();
        await mapping.click();
        await clearNotifications(p);
        // Focus in the tree (the workbench), so the key reaches the keybinding service.
        await p.keyboard.press('Control+Alt+Shift+F9');
        await p.locator('.notification-toast', { hasText: 'Test only: ran 3 statement(s) on the sandbox (3, 1, 1 row(s))' }).first().waitFor({ timeout: 30_000 });
        await clearNotifications(p);
        await targetRow(changedRows - 2);
        await p.screenshot({ path: path.join(ARTIFACTS, '11v-target-damaged.png') });
        // The mapping's context menu in the Mappings tree.
        await showPane(p, 'Mappings');
        await contextMenu(p, mapping, 'Verify & Repair');
        const frame = await webviewFrame(p, '[data-testid="count-insert"]', 180_000);
        await waitForText(frame, '[data-testid="preview-mode"]', /repair by checksums to snapshot v6/);
        await waitForText(frame, '[data-testid="count-insert"]', '3');
        await waitForText(frame, '[data-testid="count-update"]', '1');
        await waitForText(frame, '[data-testid="count-delete"]', '1');
        await p.screenshot({ path: path.join(ARTIFACTS, '11w-repair-preview.png') });
        // The update shows the damaged value as the old one, the source's as the new.
        await frame.locator('[data-testid="filter-update"]').click();
        await waitForText(frame, '[data-testid="page-range"]', '1–1 of 1');
        const changed = frame.locator('[data-testid="preview-table"] .grid-row.update .grid-cell.changed').first();
        await changed.click();
        await p.keyboard.press('Enter');
        await frame.locator('.grid-popover pre.old', { hasText: 'Damaged by the e2e' }).first().waitFor({ timeout: 10_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '11x-repair-update-old-new.png') });
        await p.keyboard.press('Escape');
        await frame.locator('[data-testid="filter-delete"]').click();
        await frame.locator('[data-testid="preview-table"] .grid-row.delete', { hasText: 'cust_e2e_extra' }).first().waitFor({ timeout: 10_000 });
        await frame.locator('[data-testid="filter-insert"]').click();
        await waitForText(frame, '[data-testid="page-range"]', '1–3 of 3');
      });

      await step('Verify & Repair: Apply repairs the target (Targets tree back to every row; a second Verify says equal); the applied record survives its tab being hidden', async () => {
        const frame = await webviewFrame(p, '[data-testid="apply"]');
        await frame.locator('[data-testid="apply"]').click();
        const progress = await webviewFrame(p, '[data-testid="status"]', 60_000);
        await waitForText(progress, '[data-testid="status"]', 'succeeded', 180_000);
        await p.locator('.notification-toast', { hasText: 'customer-profiles repaired to version 6: 3 inserted, 1 updated, 1 deleted' }).first().waitFor({ timeout: 60_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '11y-repair-applied.png') });
        // The applied record, shown, hidden behind the Progress panel and shown again (a reloaded
        // webview at its saved position): its rows, never "Loading rows …" (issue 15's Preview bug).
        const recordTab = p.locator('.tabs-container .tab', { hasText: 'Applied: customer-profiles' }).first();
        for (let i = 0; i < 2; i++) {
          await recordTab.click();
          const record = await webviewFrame(p, '[data-testid="applied"]:not([hidden])', 30_000);
          await waitForText(record, '[data-testid="preview-status"]', /^Showing rows 1–3 of 3\./, 15_000);
          await p.locator('.tabs-container .tab', { hasText: 'Delta Sync: Progress' }).first().click();
        }
        await recordTab.click({ button: 'middle' });
        await recordTab.waitFor({ state: 'detached', timeout: 10_000 });
        await targetRow(changedRows);
        await showPane(p, 'Mappings');
        const mapping = rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').first();
        await mapping.click();
        await clearNotifications(p);
        await contextMenu(p, mapping, 'Verify & Repair');
        await p.locator('.notification-toast', { hasText: `customer-profiles equals its source at version 6 (${changedRows} rows)` }).first().waitFor({ timeout: 120_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '11z-verify-equal.png') });
        await clearNotifications(p);
        await mapping.click();
      });


      await step('A new Delta version written outside VS Code: the Mappings tree says behind without a refresh', async () => {
        // Another writer commits to the sample table; the extension watches its _delta_log.
        const writer = await DeltaTableWriter.open(sampleTable);
        await writer.append(generateCustomers(2, 7, 900_000));
        await showPane(p, 'Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').filter({ hasText: '1 version behind' }).first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '11b-tree-behind-after-new-version.png') });
      });

      await step('Dry Run opens a report panel: the counts and the plan rows in grids', async () => {
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').first().click();
        await runPaletteCommand(p, 'Delta Sync: Dry Run');
        await pickQuickInputItem(p, 'customer-profiles');
        const report = await webviewFrame(p, '[data-testid="report-facts"]', 120_000);
        await report.locator('[data-testid="report-facts"] .fact', { hasText: 'Inserted' }).first().waitFor({ timeout: 10_000 });
        await waitForText(report, 'header .muted', /^incremental: checkpoint v6 → v7$/);
        await report.locator('[data-testid="report-plan"] .grid-body [role="row"]').first().waitFor({ timeout: 30_000 });
        await report.locator('[data-testid="report-rejected"]', { hasText: 'None: the target accepted every row.' }).first().waitFor({ timeout: 10_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '11c-dry-run-report.png') });
        const tab = p.locator('.tabs-container .tab', { hasText: 'Dry run: customer-profiles' }).first();
        await tab.click({ button: 'middle' });
        await tab.waitFor({ state: 'detached', timeout: 10_000 });
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').first().click();
      });

      await step('Stop in the Progress panel ends a paced initial load cancelled, with nothing written', async () => {
        // Pace customers-copy's initial load (about 10 s for the sample) so Stop lands mid-run.
        const file = path.join(workspace, '.delta-sync', 'customers-copy.json');
        const mapping = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
        fs.writeFileSync(file, JSON.stringify({ ...mapping, batch: { ...(mapping.batch as object | undefined), maxRowsPerSecond: 100 } }, null, 2));
        await runPaletteCommand(p, 'Delta Sync: Refresh Mappings');
        await clearNotifications(p);
        await runPaletteCommand(p, 'Delta Sync: Run Initial Load');
        await pickQuickInputItem(p, 'customers-copy');
        await p.locator('.monaco-dialog-box .monaco-button', { hasText: 'Run Initial Load' }).first().click();
        const progress = await webviewFrame(p, '[data-testid="stop"]', 60_000);
        await waitForText(progress, '[data-testid="status"]', 'running', 30_000);
        await progress.locator('[data-testid="rows-read"]').filter({ hasText: /^[1-9]/ }).first().waitFor({ timeout: 30_000 });
        // The total is known from the log: rows applied move during COPY, with a percentage and an ETA.
        await progress.locator('[data-testid="rows-applied"]').filter({ hasText: /^[1-9][\d,]* \/ [1-9][\d,]*$/ }).first().waitFor({ timeout: 30_000 });
        await progress.locator('[data-testid="percent"]').filter({ hasText: /^\d+%$/ }).first().waitFor({ timeout: 10_000 });
        await progress.locator('[data-testid="eta"]').filter({ hasText: /\d+s$/ }).first().waitFor({ timeout: 10_000 });
        // The history under the run is this mapping's (the panel showed customer-profiles' before).
        const otherHistory = await progress.locator('[data-testid="history"]:visible').evaluateAll((els) => els.map((e) => e.getAttribute('data-mapping')).filter((m) => m !== 'customers-copy'));
        if (otherHistory.length > 0) throw new Error(`the Progress panel shows the history of ${otherHistory.join(', ')} under the customers-copy run`);
        // The status bar item shows the run; its text names the mapping and the rows.
        await p.locator('.statusbar-item', { hasText: /customers-copy: \w+/ }).first().waitFor({ timeout: 10_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '12-paced-initial-load-running.png') });
        // Keyboard only: focus Stop, let an update or two arrive (they must not take focus away), press Enter.
        const stop = progress.locator('[data-testid="stop"]');
        await stop.focus();
        const rowsApplied = progress.locator('[data-testid="rows-applied"]');
        const applied = await rowsApplied.textContent();
        for (let i = 0; i < 150 && (await rowsApplied.textContent()) === applied; i++) await p.waitForTimeout(100);
        if ((await rowsApplied.textContent()) === applied) throw new Error(`rows applied stayed at ${applied}`);
        const focused = await progress.locator('body').evaluate((body) => {
          const a = body.ownerDocument.activeElement;
          return a?.getAttribute('data-testid') ?? a?.tagName;
        });
        if (focused !== 'stop') throw new Error(`a progress update moved the focus from Stop to ${focused}`);
        const stoppedAt = Date.now();
        await p.keyboard.press('Enter');
        await waitForText(progress, '[data-testid="status"]', 'cancelled', 30_000);
        await waitForText(progress, '[data-testid="committed"]', '–');
        // Stop does not wait for the pacing to run out.
        if (Date.now() - stoppedAt > 8_000) throw new Error(`Stop took ${Date.now() - stoppedAt} ms`);
        if (await progress.locator('[data-testid="stop"]').isVisible()) throw new Error('Stop is still shown after the run ended');
        await progress.locator('[data-testid="history"] tbody tr', { hasText: 'cancelled' }).first().waitFor({ timeout: 30_000 });
        if ((await progress.locator('[data-testid="history"] tbody tr', { hasText: 'failed' }).count()) !== 0) throw new Error('a Stop was recorded as failed in the history');
        await p.locator('.statusbar-item', { hasText: 'customers-copy: cancelled' }).first().waitFor({ timeout: 10_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '13-paced-initial-load-stopped.png') });
        // Nothing was written: the target table does not exist (the next step's dry run also finds no checkpoint).
        await showPane(p, 'Targets');
        await runPaletteCommand(p, 'Delta Sync: Refresh Targets');
        const targets = paneRows(p, 'Targets');
        await rowLabelled(targets, p, 'public.customer_profiles').first().waitFor({ timeout: 60_000 });
        if ((await rowLabelled(targets, p, 'public.customers_copy').count()) !== 0) throw new Error('the stopped initial load left public.customers_copy behind');
      });

      await step('palette: a failing command shows its error with Show Log', async () => {
        // Focus in the workbench, not in the Progress webview where Stop was pressed (see Show Rows above).
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customers-copy').first().click();
        await clearNotifications(p);
        await runPaletteCommand(p, 'Delta Sync: Dry Run');
        await pickQuickInputItem(p, 'customers-copy');
        // customers-copy has never been loaded: a dry run needs a checkpoint.
        const toast = p.locator('.notification-toast', { hasText: 'has no checkpoint' }).first();
        await toast.waitFor({ timeout: 60_000 });
        await toast.locator('.monaco-button', { hasText: 'Show Log' }).first().waitFor({ timeout: 5_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '14-error-toast.png') });
        await toast.locator('.monaco-button', { hasText: 'Show Log' }).first().click();
        await p.locator('.part.panel', { hasText: 'no checkpoint' }).first().waitFor({ timeout: 15_000 }).catch(() => undefined);
        await p.screenshot({ path: path.join(ARTIFACTS, '15-log.png') });
      });

      await step('Add Postgres Connection tests before saving: a closed port says so, with Edit / Retry / Save Anyway', async () => {
        // Focus back in the workbench's trees (Show Log left it in the Output panel), so the palette opens for input.
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customers-copy').first().click();
        await clearNotifications(p);
        const closed = await freePort();
        const toast = await addConnectionByUrl(p, 'local-closed', `postgresql://app:secret@127.0.0.1:${closed}/shop?sslmode=disable`, `Nothing is listening on 127.0.0.1:${closed} — is Postgres running?`, ['Edit', 'Retry', 'Save Anyway']);
        await p.screenshot({ path: path.join(ARTIFACTS, '16-add-connection-refused.png') });
        await toast.locator('.monaco-button', { hasText: 'Save Anyway' }).first().click();
        await showPane(p, 'Targets');
        const targets = paneRows(p, 'Targets');
        const conn = rowLabelled(targets, p, 'local-closed').first();
        await conn.waitFor({ timeout: 20_000 });
        if ((await conn.getAttribute('aria-expanded')) !== 'true') await conn.click();
        // The row under it says the same, and offers Edit / Retry.
        await rowLabelled(targets, p, `Nothing is listening on 127.0.0.1:${closed} — is Postgres running?`).first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '17-connection-error-row.png') });
      });

      // --- Continuous sync (issue 14): keep these steps together, at the end. ---
      await step('Start Continuous Sync on the sample mapping: the status bar and the Mappings tree say watching, with version and lag', async () => {
        await showPane(p, 'Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').first().click();
        await clearNotifications(p);
        await runPaletteCommand(p, 'Delta Sync: Start Continuous Sync');
        await pickQuickInputItem(p, 'customer-profiles');
        // The version written outside VS Code above (v7) is applied at once.
        await p.locator('.statusbar-item', { hasText: /customer-profiles: watching · v7 · lag / }).first().waitFor({ timeout: 60_000 });
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').filter({ hasText: /watching · v7 · lag / }).first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '18-continuous-sync-started.png') });
      });

      for (const [round, version] of [[1, 8], [2, 9]] as const) {
        await step(`Continuous sync: Change Sample (${round} of 2), the target follows to v${version} without a click`, async () => {
          await clearNotifications(p);
          await runPaletteCommand(p, 'Delta Sync: Change Sample Table');
          await p.locator('.notification-toast', { hasText: `the sample table changed (version ${version}` }).first().waitFor({ timeout: 60_000 });
          const rows = await deltaRowCount(sampleTable);
          await p.locator('.statusbar-item', { hasText: new RegExp(`customer-profiles: watching · v${version} · lag [\\d.]+ (ms|s)`) }).first().waitFor({ timeout: 60_000 });
          await rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').filter({ hasText: new RegExp(`watching · v${version} · lag `) }).first().waitFor({ timeout: 30_000 });
          // The Targets tree refreshes after each applied version: the row count follows the source.
          await showPane(p, 'Targets');
          const targets = paneRows(p, 'Targets');
          const sandbox = targets.filter({ hasText: 'Sandbox (embedded Postgres)' }).first();
          if ((await sandbox.getAttribute('aria-expanded')) !== 'true') await sandbox.click();
          await rowLabelled(targets, p, 'public.customer_profiles').filter({ hasText: `${grouped(rows)} rows` }).first().waitFor({ timeout: 60_000 });
          await p.screenshot({ path: path.join(ARTIFACTS, `19-continuous-sync-v${version}.png`) });
        });
      }

      await step('Continuous sync: the status bar item opens the Progress panel; Stop Continuous Sync ends the watch', async () => {
        await p.locator('.statusbar-item', { hasText: /customer-profiles: watching · v9/ }).first().click();
        const progress = await webviewFrame(p, '[data-testid="history"] tbody tr', 30_000);
        await progress.locator('[data-testid="history"] tbody tr', { hasText: 'succeeded' }).first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '20-continuous-sync-progress.png') });
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').first().click();
        await runPaletteCommand(p, 'Delta Sync: Stop Continuous Sync');
        await p.locator('.statusbar-item', { hasText: /customer-profiles: watching/ }).first().waitFor({ state: 'hidden', timeout: 30_000 });
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customer-profiles').filter({ hasText: 'up to date · v9' }).first().waitFor({ timeout: 60_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '21-continuous-sync-stopped.png') });
      });

      await step('Sync All in the Mappings view title: every valid mapping once, one summary toast with the counts and the invalid file', async () => {
        await showPane(p, 'Mappings');
        await clearNotifications(p);
        const header = p.locator('.pane-header', { hasText: /^Mappings/i }).first();
        await header.hover();
        await header.locator('.action-label[aria-label^="Sync All"]').first().click();
        // customer-profiles (up to date at v9), customers-copy and orders run; broken.json is counted, not run.
        const toast = p.locator('.notification-toast', { hasText: /Delta Sync: Sync All: 3 mappings: \d succeeded, \d failed.*; 1 invalid mapping file not run/ }).first();
        await toast.waitFor({ timeout: 180_000 });
        const text = (await toast.locator('.notification-list-item-message').first().textContent()) ?? '';
        log(`Sync All toast: ${text}`);
        const m = /3 mappings: (\d) succeeded, (\d) failed/.exec(text);
        if (!m || Number(m[1]) < 2) throw new Error(`Sync All: expected customer-profiles and customers-copy to succeed: ${text}`);
        await toast.locator('.monaco-button', { hasText: 'Show Log' }).first().waitFor({ timeout: 5_000 });
        await rowLabelled(paneRows(p, 'Mappings'), p, 'customers-copy').filter({ hasText: /up to date · v\d+/ }).first().waitFor({ timeout: 60_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '22-sync-all-summary.png') });
      });
    });
  } finally {
    fs.writeFileSync(path.join(ARTIFACTS, 'browser-console-errors.txt'), consoleErrors.join('\n') + '\n');
    if (!process.env.E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    timings.push(['total', Date.now() - started]);
    const table = report(60);
    fs.writeFileSync(path.join(ARTIFACTS, 'timings.txt'), table + '\n');
    log(`timings:\n${table}`);
  }
  return 'passed';
}

runE2e(log, ARTIFACTS, main);
