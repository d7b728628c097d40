/**
 * End-to-end test of the Databricks sources in a real VS Code (code-server + Chromium, the
 * same tools as test/e2e/run.ts): `npx tsx test/e2e/databricks.ts`, part of `npm run test:e2e`.
 *
 * A local test warehouse (test/helpers/fakeWarehouse: the real Thrift protocol over
 * HTTPS, answers from real Delta tables) stands in for Databricks; its self-signed CA is
 * given to the extension through the deltaSync.databricks.caCertificateFile setting.
 *
 * Steps: Add Databricks Connection (quick inputs, the token into SecretStorage) -> the
 * test toast -> browse connection/catalog/schema/tables with version and CDF -> Enable
 * Change Data Feed: Cancel runs nothing, the button runs exactly the ALTER shown -> a
 * stopped warehouse's Test Connection toast -> a wrong token's error row -> Create
 * Mapping from the Databricks table -> Preview (initial load of every row) through the
 * saved connection -> Apply -> the warehouse stopped: the periodic status checks send
 * nothing and the mapping says its source version was not checked -> Refresh Mappings
 * reads it (starting the warehouse). Screenshots in .test-artifacts/e2e-databricks/.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Page } from 'playwright-core';
import { CUSTOMER_PROFILE_COLUMNS, createCustomerProfilesTable, generateCustomers } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { FakeWarehouse } from '../helpers/fakeWarehouse/FakeWarehouse';
import {
  clearNotifications,
  contextMenu,
  expandPane,
  expandRow,
  finishCreateMapping,
  grouped,
  paneRows,
  prepareExtension,
  quickInputStep,
  rowLabelled,
  runE2e,
  runPaletteCommand,
  skipRequested,
  stepRecorder,
  waitForText,
  webviewFrame,
  withWorkbench,
} from './workbench';

const ROOT = path.resolve(__dirname, '../..');
const ARTIFACTS = path.join(ROOT, '.test-artifacts', 'e2e-databricks');
const { log, step, timings, report } = stepRecorder('e2e-databricks');

/** Latest version and row count of a Delta table, read with the reader (not from the UI). */
async function tableFacts(p: string): Promise<{ version: number; rows: number }> {
  const snap = await (await DeltaTable.open(p)).snapshot();
  let rows = 0;
  for await (const b of snap.rows()) rows += b.length;
  return { version: snap.version, rows };
}

async function addConnection(p: Page, name: string, host: string, httpPath: string, token: string): Promise<void> {
  await runPaletteCommand(p, 'Delta Sync: Add Databricks Connection...');
  const n = await quickInputStep(p, 'Add Databricks Connection (1/5)');
  await n.fill(name);
  await n.press('Enter');
  const h = await quickInputStep(p, 'Add Databricks Connection (2/5)');
  await h.fill(host);
  await h.press('Enter');
  const hp = await quickInputStep(p, 'Add Databricks Connection (3/5)');
  await hp.fill(httpPath);
  await hp.press('Enter');
  await quickInputStep(p, 'Add Databricks Connection (4/5)');
  await p.locator('.quick-input-list .monaco-list-row', { hasText: 'Personal access token' }).first().click();
  const t = await quickInputStep(p, 'Add Databricks Connection (5/5)');
  await t.fill(token);
  await t.press('Enter');
}

/** 'skipped' when SKIP_E2E=1 told it not to run: then it must not report PASS (and in CI it must run). */
async function main(): Promise<'passed' | 'skipped'> {
  if (skipRequested(log, 'the Databricks end-to-end test in VS Code')) return 'skipped';
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const started = Date.now();
  const ext = await prepareExtension(step, ROOT, ARTIFACTS);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'delta-sync-e2e-dbx-'));
  const { customers, noCdf } = await step('write the warehouse\'s Delta tables', async () => {
    const c = await createCustomerProfilesTable(path.join(tmp, 'tables', 'customers'), { rows: 120 });
    const w = await DeltaTableWriter.create(path.join(tmp, 'tables', 'no_cdf'), { columns: [...CUSTOMER_PROFILE_COLUMNS], name: 'no_cdf' });
    await w.append(generateCustomers(10));
    return { customers: c.path, noCdf: w.path };
  });
  const warehouse = await step('start the test warehouse', () => FakeWarehouse.start({ catalogs: { main: { sales: { customers, no_cdf: noCdf } } } }));
  const caFile = path.join(tmp, 'warehouse-ca.pem');
  fs.writeFileSync(caFile, warehouse.caCert);

  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  // Status checks every 2 s, so the stopped-warehouse step sees a few of them.
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'deltaSync.status.pollSeconds': 2 }, null, 2) + '\n');
  try {
    await withWorkbench(step, ext, { tmp, workspace, artifacts: ARTIFACTS, machineSettings: { 'deltaSync.databricks.caCertificateFile': caFile } }, async (p) => {
      const host = `https://${warehouse.host}:${warehouse.serverPort}`;
      await step('Add Databricks Connection: quick inputs, then the connection test toast', async () => {
        await addConnection(p, 'dbx-e2e', host, warehouse.httpPath, warehouse.token);
        await p.locator('.notification-toast', { hasText: 'Connected to 127.0.0.1 as "dbx-e2e"' }).first().waitFor({ timeout: 60_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '01-added-connection.png') });
        await clearNotifications(p);
      });

      const sources = paneRows(p, 'Sources');
      const c = await tableFacts(customers);
      const n = await tableFacts(noCdf);
      await step('browse: connection -> catalog -> schema -> tables with version and CDF', async () => {
        await expandRow(rowLabelled(sources, p, 'dbx-e2e').first());
        await expandRow(rowLabelled(sources, p, 'main').first());
        await expandRow(rowLabelled(sources, p, 'sales').first());
        await rowLabelled(sources, p, 'customers').filter({ hasText: `v${c.version} · CDF on` }).first().waitFor({ timeout: 30_000 });
        await rowLabelled(sources, p, 'no_cdf').filter({ hasText: `v${n.version} · CDF off` }).first().waitFor({ timeout: 30_000 });
        await expandRow(rowLabelled(sources, p, 'customers').first());
        await rowLabelled(sources, p, 'customer_id').first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '02-browse.png') });
        await rowLabelled(sources, p, 'customers').first().click(); // collapse the columns again
      });

      await step('Enable Change Data Feed: the modal shows the ALTER; Cancel runs nothing; the button runs it', async () => {
        const row = rowLabelled(sources, p, 'no_cdf').first();
        await contextMenu(p, row, 'Enable Change Data Feed');
        const dialog = p.locator('.monaco-dialog-box').first();
        await dialog.waitFor({ timeout: 15_000 });
        const text = (await dialog.textContent()) ?? '';
        const statement = 'ALTER TABLE `main`.`sales`.`no_cdf` SET TBLPROPERTIES (delta.enableChangeDataFeed = true)';
        if (!text.includes(statement)) throw new Error(`the dialog does not show the statement: ${text}`);
        await p.screenshot({ path: path.join(ARTIFACTS, '03-enable-cdf-confirm.png') });
        await dialog.locator('.monaco-button', { hasText: 'Cancel' }).first().click();
        await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
        await new Promise((r) => setTimeout(r, 1000));
        if (warehouse.statements.some((s) => s.startsWith('ALTER'))) throw new Error('Cancel still sent an ALTER TABLE');
        await contextMenu(p, row, 'Enable Change Data Feed');
        await p.locator('.monaco-dialog-box .monaco-button', { hasText: 'Run ALTER TABLE' }).first().click();
        await rowLabelled(sources, p, 'no_cdf').filter({ hasText: 'CDF on' }).first().waitFor({ timeout: 30_000 });
        if (!warehouse.statements.includes(statement)) throw new Error(`the warehouse did not receive: ${statement}`);
        await p.screenshot({ path: path.join(ARTIFACTS, '04-cdf-enabled.png') });
        await clearNotifications(p);
      });

      await step('Test Connection on a stopped warehouse says it is stopped or starting', async () => {
        warehouse.mode = 'stopped';
        try {
          await contextMenu(p, rowLabelled(sources, p, 'dbx-e2e').first(), 'Test Databricks Connection');
          await p.locator('.notification-toast', { hasText: 'stopped or still starting' }).first().waitFor({ timeout: 60_000 });
          await p.screenshot({ path: path.join(ARTIFACTS, '05-test-stopped.png') });
        } finally {
          warehouse.mode = 'running';
        }
        await clearNotifications(p);
      });

      await step('a wrong token: the test toast and an error row under the connection', async () => {
        await addConnection(p, 'dbx-wrong-token', host, warehouse.httpPath, 'dapi-not-the-token');
        await p.locator('.notification-toast', { hasText: 'HTTP 403' }).first().waitFor({ timeout: 60_000 });
        await expandRow(rowLabelled(sources, p, 'dbx-wrong-token').first());
        await sources.filter({ hasText: 'Databricks refused access (HTTP 403)' }).first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '06-wrong-token.png') });
        await clearNotifications(p);
      });

      await step('Create Mapping from the Databricks table writes a databricks source', async () => {
        await contextMenu(p, rowLabelled(sources, p, 'customers').first(), 'Create Mapping');
        await quickInputStep(p, 'Create Mapping (2/7)');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'sandbox' }).first().click();
        const table = await quickInputStep(p, 'Create Mapping (3/7)');
        await table.fill('public.dbx_customers');
        await table.press('Enter');
        await (await quickInputStep(p, 'Create Mapping (4/7)')).press('Enter');
        const written = await finishCreateMapping<{ source?: { type?: string; connection?: string; table?: string }; key?: string[] }>(p, workspace, 'dbx-customers');
        if (written.source?.type !== 'databricks' || written.source.connection !== 'dbx-e2e' || written.source.table !== 'main.sales.customers' || written.key?.join() !== 'customer_id') {
          throw new Error(`unexpected mapping: ${JSON.stringify(written)}`);
        }
        await expandPane(p, 'Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, 'dbx-customers').filter({ hasText: 'not loaded yet' }).first().waitFor({ timeout: 60_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '07-databricks-mapping.png') });
        await runPaletteCommand(p, 'View: Close All Editors');
      });

      await step('Preview the Databricks mapping: an initial load of every row, through the saved connection', async () => {
        // The workspace's only mapping: the command previews it without asking which.
        await runPaletteCommand(p, 'Delta Sync: Preview Changes');
        const frame = await webviewFrame(p, '[data-testid="count-insert"]', 180_000);
        await waitForText(frame, '[data-testid="count-insert"]', grouped(c.rows));
        await waitForText(frame, '[data-testid="preview-mode"]', new RegExp(`initial load of snapshot v${c.version}`));
        await p.screenshot({ path: path.join(ARTIFACTS, '08-databricks-preview.png') });
      });

      await step('Apply, then stop the warehouse: the periodic status checks start nothing and the mapping says its source version was not checked; Refresh Mappings reads it', async () => {
        const frame = await webviewFrame(p, '[data-testid="apply"]');
        await frame.locator('[data-testid="apply"]').click();
        const progress = await webviewFrame(p, '[data-testid="status"]', 60_000);
        await waitForText(progress, '[data-testid="status"]', 'succeeded', 180_000);
        await runPaletteCommand(p, 'View: Close All Editors');
        const mappings = paneRows(p, 'Mappings');
        const mappingRow = (text: string) => rowLabelled(mappings, p, 'dbx-customers').filter({ hasText: text }).first();
        await mappingRow(`up to date · v${c.version}`).waitFor({ timeout: 60_000 });
        // As a real warehouse: a statement or a new session starts a stopped one.
        warehouse.autoResume = true;
        await warehouse.stopWhenIdle();
        const resumes = warehouse.resumes;
        const from = warehouse.statements.length;
        const reads = warehouse.stateReads;
        await mappingRow(`v${c.version} checkpoint · warehouse stopped, source version not checked`).waitFor({ timeout: 60_000 });
        // Two more periodic checks (deltaSync.status.pollSeconds is 2 here) while it stays stopped.
        const deadline = Date.now() + 60_000;
        while (warehouse.stateReads < reads + 3 && Date.now() < deadline) await p.waitForTimeout(200);
        if (warehouse.stateReads < reads + 3) throw new Error(`expected periodic state checks, saw ${warehouse.stateReads - reads}`);
        const sent = warehouse.statements.slice(from);
        if (sent.length > 0 || warehouse.resumes !== resumes || warehouse.mode !== 'stopped') {
          throw new Error(`the status checks started the stopped warehouse (resumes ${warehouse.resumes - resumes}, mode ${warehouse.mode}): ${sent.join('; ')}`);
        }
        const row = mappingRow('source version not checked');
        if ((await row.getAttribute('aria-expanded')) !== 'true') await expandRow(row);
        await rowLabelled(mappings, p, 'Source').filter({ hasText: 'not checked · warehouse stopped' }).first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '09-mapping-warehouse-stopped.png') });
        await runPaletteCommand(p, 'Delta Sync: Refresh Mappings');
        await mappingRow(`up to date · v${c.version}`).waitFor({ timeout: 60_000 });
        if (warehouse.resumes !== resumes + 1) throw new Error(`Refresh Mappings should start the warehouse once, saw ${warehouse.resumes - resumes}`);
        await p.screenshot({ path: path.join(ARTIFACTS, '10-mapping-refreshed.png') });
      });
    });
  } finally {
    await warehouse.stop();
    if (!process.env.E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    timings.push(['total', Date.now() - started]);
    log(`timings:\n${report(70)}`);
  }
  return 'passed';
}

runE2e(log, ARTIFACTS, main);
