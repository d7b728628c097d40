/**
 * End-to-end test of Neon targets in a real VS Code (code-server + Chromium, the same tools
 * as test/e2e/run.ts): `npx tsx test/e2e/neon.ts`, part of `npm run test:e2e`.
 *
 * The local Neon API server (test/helpers/neonApi, driven by the extension through the
 * real @neondatabase/api-client) stands in for Neon, pointed at through the
 * deltaSync.neon.apiUrl setting; its branches are real databases on the test PostgreSQL.
 *
 * Steps: Add Neon Account (the key into SecretStorage) -> browse account/project/branch/
 * database/schema/table in the Targets view -> Create Mapping with the target picked as Neon
 * project -> branch -> database (the file gets the neon: reference, no password) ->
 * Preview Changes -> the panel's Preview on Neon Branch button: the Preview panel of the
 * branch (what Apply to Parent will change, row by row; the branch's masked connection
 * string, copied by its button) -> the preview branch in the tree -> Apply to main in the
 * panel -> the parent's rows
 * (read with pg) equal the Delta table's latest version; no preview branch left -> Add
 * Lakebase Database with a ~/.databrickscfg profile of a local Databricks workspace
 * (test/helpers/fakeLakebaseWorkspace.ts): tested, saved, listed in Targets.
 * Screenshots in .test-artifacts/e2e-neon/.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import { mappingTarget, openTarget } from '../../src/sync/open/openTarget';
import { openSource } from '../../src/sync/open/openSource';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { FakeLakebaseWorkspace } from '../helpers/fakeLakebaseWorkspace';
import { NeonApiServer } from '../helpers/neonApi/NeonApiServer';
import { getTestServer } from '../helpers/postgres';
import { assertTargetEquals } from '../helpers/targetEquality';
import {
  clearNotifications,
  expandPane,
  expandRow,
  finishCreateMapping,
  paneRows,
  prepareExtension,
  pickQuickInputItem,
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
const ARTIFACTS = path.join(ROOT, '.test-artifacts', 'e2e-neon');
const { log, step, timings, report } = stepRecorder('e2e-neon');

/** The notification toasts matching `title` still shown after polling up to `withinMs` for them to close. */
async function progressLeft(p: Page, title: RegExp, withinMs: number): Promise<string[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const left = await p.locator('.notification-toast', { hasText: title }).allInnerTexts();
    if (left.length === 0 || Date.now() >= deadline) return left.map((t) => t.replace(/\s+/g, ' ').trim());
    await p.waitForTimeout(250);
  }
}

/** 'skipped' when SKIP_E2E=1 told it not to run: then it must not report PASS (and in CI it must run). */
async function main(): Promise<'passed' | 'skipped'> {
  if (skipRequested(log, 'the Neon end-to-end test in VS Code')) return 'skipped';
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const started = Date.now();
  const ext = await prepareExtension(step, ROOT, ARTIFACTS);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'delta-sync-e2e-neon-'));
  const pgServer = await step('start PostgreSQL', () => getTestServer());
  const neon = await step('start the local Neon API', () => NeonApiServer.start({ adminUrl: pgServer.adminUrl, operationMs: 200 }));
  const project = await neon.addProject({ name: 'e2e-shop', database: 'appdb', role: 'app_owner' });
  const reference = `neon:${project.projectId}/main/appdb`;
  const table = await step('write the Delta table and load version 0 into the parent branch', async () => {
    const t = await createCustomerProfilesTable(path.join(tmp, 'tables', 'customers'), { rows: 80 });
    const latest = await applySampleChanges(t.path);
    const mapping = parseMapping({ name: 'e2e-customers', source: { type: 'delta', path: t.path }, target: { connection: reference, schema: 'public', table: 'customers' }, key: ['customer_id'] });
    const source = await openSource(mapping.source);
    const target = await openTarget(reference, { env: { NEON_API_KEY: neon.apiKey, NEON_API_HOST: neon.apiUrl } });
    try {
      await new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target)).run({ mode: 'initial', toVersion: t.version });
    } finally {
      await target.close();
    }
    return { path: t.path, first: t.version, latest };
  });

  // Lakebase: a local Databricks workspace and its Postgres endpoint; a ~/.databrickscfg
  // profile for it, found by the extension through DATABRICKS_CONFIG_FILE (code-server inherits it).
  const LAKEBASE_ENDPOINT = 'projects/e2e/branches/br-main/endpoints/ep-primary';
  const lakebase = await step('start the local Databricks workspace (Lakebase)', () =>
    FakeLakebaseWorkspace.start({ adminUrl: pgServer.adminUrl, endpoints: [LAKEBASE_ENDPOINT], principals: [{ role: 'lakebase_e2e_user', pat: 'dapi-e2e-lakebase' }], tokenTtlMs: 600_000 }));
  const databricksCfg = path.join(tmp, 'databrickscfg');
  fs.writeFileSync(databricksCfg, `[e2e-pat]\nhost = ${lakebase.url}\ntoken = dapi-e2e-lakebase\n`);
  process.env.DATABRICKS_CONFIG_FILE = databricksCfg;

  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  fs.mkdirSync(path.join(workspace, '.delta-sync'), { recursive: true });
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'deltaSync.deltaFolders': [path.join(tmp, 'tables')] }, null, 2));
  try {
    await withWorkbench(step, ext, { tmp, workspace, artifacts: ARTIFACTS, machineSettings: { 'deltaSync.neon.apiUrl': neon.apiUrl } }, async (p) => {
      await step('Add Neon Account: the key is checked, then the account row appears', async () => {
        await expandPane(p, 'Targets');
        await runPaletteCommand(p, 'Delta Sync: Add Neon Account...');
        const key = await quickInputStep(p, 'Add Neon Account');
        await key.fill(neon.apiKey);
        await key.press('Enter');
        await rowLabelled(paneRows(p, 'Targets'), p, `Neon (${new URL(neon.apiUrl).host})`).first().waitFor({ timeout: 60_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '01-neon-account.png') });
      });

      const targets = paneRows(p, 'Targets');
      await step('browse: account -> project -> branch (default) -> database -> schema -> table', async () => {
        await expandRow(rowLabelled(targets, p, `Neon (${new URL(neon.apiUrl).host})`).first());
        await expandRow(rowLabelled(targets, p, 'e2e-shop').first());
        await expandRow(rowLabelled(targets, p, 'main').filter({ hasText: 'default' }).first());
        await expandRow(rowLabelled(targets, p, 'appdb').filter({ hasText: 'owner app_owner' }).first());
        await expandRow(rowLabelled(targets, p, 'public').filter({ hasText: '1 table' }).first());
        await rowLabelled(targets, p, 'customers').filter({ hasText: 'rows' }).first().waitFor({ timeout: 60_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '02-browse.png') });
      });

      await step('Create Mapping: the target step offers the Neon branch; project -> branch -> database picks write the neon: reference', async () => {
        await runPaletteCommand(p, 'Delta Sync: Create Mapping...');
        await quickInputStep(p, 'Create Mapping (1/7)');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'customers' }).first().click();
        await quickInputStep(p, 'Create Mapping (2/7)');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'Neon branch' }).first().click();
        await quickInputStep(p, 'Neon project');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'e2e-shop' }).first().click();
        await quickInputStep(p, ': branch');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'main' }).first().click();
        await quickInputStep(p, ': database');
        await p.screenshot({ path: path.join(ARTIFACTS, '03-create-mapping-neon-database.png') });
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'appdb' }).first().click();
        const tableInput = await quickInputStep(p, 'Create Mapping (3/7)');
        await tableInput.fill('public.customers');
        await tableInput.press('Enter');
        await (await quickInputStep(p, 'Create Mapping (4/7)')).press('Enter');
        const written = await finishCreateMapping<{ target?: { connection?: string; table?: string }; key?: string[] }>(p, workspace, 'e2e-customers');
        const file = path.join(workspace, '.delta-sync', 'e2e-customers.json');
        if (written.target?.connection !== reference || written.target.table !== 'customers' || written.key?.join() !== 'customer_id') throw new Error(`unexpected mapping: ${JSON.stringify(written)}`);
        if (fs.readFileSync(file, 'utf8').includes('npg_')) throw new Error('the mapping file holds a password');
        await expandPane(p, 'Mappings');
        await rowLabelled(paneRows(p, 'Mappings'), p, 'e2e-customers').filter({ hasText: 'behind' }).first().waitFor({ timeout: 60_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '04-mapping.png') });
        await runPaletteCommand(p, 'View: Close All Editors');
      });

      await step('"Delta Sync: Cancel Preview" from the palette on a preview on a Neon branch: like the panel\'s Discard Branch, the branch is deleted and the panel closes', async () => {
        await clearNotifications(p);
        await runPaletteCommand(p, 'Delta Sync: Preview Changes');
        const frame = await webviewFrame(p, '[data-testid="preview-on-branch"]', 180_000);
        await waitForText(frame, '[data-testid="count-insert"]', '3');
        await frame.locator('[data-testid="preview-on-branch"]').first().click();
        const branchFrame = await webviewFrame(p, '[data-testid="branch-info"]:not([hidden])', 180_000);
        await waitForText(branchFrame, '[data-testid="count-insert"]', '3');
        const made = neon.branches(project.projectId).filter((b) => b.branch.name.startsWith('delta-sync-preview-'));
        if (made.length !== 1) throw new Error(`expected one preview branch, found ${made.length}`);
        await runPaletteCommand(p, 'Delta Sync: Cancel Preview', { exact: true });
        await p.locator('.notification-toast', { hasText: `deleted preview branch ${made[0]?.branch.name ?? '?'}` }).first().waitFor({ timeout: 60_000 });
        await p.locator('.tabs-container .tab', { hasText: 'Preview on branch: e2e-customers' }).first().waitFor({ state: 'detached', timeout: 30_000 });
        await neon.settle();
        const left = neon.branches(project.projectId).filter((b) => b.branch.name.startsWith('delta-sync-preview-'));
        if (left.length) throw new Error(`Cancel Preview left the preview branches ${left.map((b) => b.branch.name).join(', ')}`);
        await p.screenshot({ path: path.join(ARTIFACTS, '04b-cancel-preview-deleted-branch.png') });
        await clearNotifications(p);
      });

      await step('Preview Changes, then the panel\'s Preview on Neon Branch button: the panel shows what Apply to Parent will change, row by row, and the branch', async () => {
        await clearNotifications(p);
        await runPaletteCommand(p, 'Delta Sync: Preview Changes');
        const frame = await webviewFrame(p, '[data-testid="preview-on-branch"]', 180_000);
        await waitForText(frame, '[data-testid="count-insert"]', '3');
        await p.screenshot({ path: path.join(ARTIFACTS, '05-preview-panel.png') });
        await frame.locator('[data-testid="preview-on-branch"]').first().click();
        const branchFrame = await webviewFrame(p, '[data-testid="branch-info"]:not([hidden])', 180_000);
        const info = branchFrame.locator('[data-testid="branch-info"]').first();
        await info.waitFor({ timeout: 60_000 });
        const text = (await info.textContent()) ?? '';
        if (!new RegExp(`preview branch delta-sync-preview-e2e-customers-\\S+ \\(a copy of main\\): incremental sync to version ${table.latest}: 3 inserted`).test(text)) throw new Error(`unexpected branch info: ${text}`);
        // The same counts as the sync on the branch, and its rows in the grid; the password is masked.
        await waitForText(branchFrame, '[data-testid="count-insert"]', '3');
        await branchFrame.locator('[data-testid="preview-table"] .grid-body [role=row]').first().waitFor({ timeout: 60_000 });
        const conn = (await branchFrame.locator('[data-testid="branch-connection"]').first().textContent()) ?? '';
        if (!/^postgres(ql)?:\/\/app_owner:\*+@/.test(conn) || conn.includes('npg_')) throw new Error(`unexpected connection string shown: ${conn}`);
        await branchFrame.locator('[data-testid="copy-connection"]').first().click();
        await waitForText(branchFrame, '[data-testid="preview-status"]', "Copied the branch's connection string (it holds the role's password).");
        await targets.filter({ hasText: 'preview of e2e-customers' }).first().waitFor({ timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '06-preview-on-branch.png') });
        const previews = neon.branches(project.projectId).filter((b) => b.branch.name.startsWith('delta-sync-preview-'));
        if (previews.length !== 1) throw new Error(`expected one preview branch, found ${previews.length}`);
        await assertTargetEquals(neon.realUrl(project.projectId, previews[0]?.branch.id as string, 'appdb'), { schema: 'public', name: 'customers' }, table.path, table.latest, { key: ['customer_id'] });
        await assertTargetEquals(neon.realUrl(project.projectId, 'main', 'appdb'), { schema: 'public', name: 'customers' }, table.path, table.first, { key: ['customer_id'] });
        await branchFrame.locator('[data-testid="apply"]', { hasText: 'Apply to main' }).first().click();
      });

      await step('Apply to Parent: the parent has the latest version, the preview branch is gone', async () => {
        await p.locator('.notification-toast', { hasText: /applied e2e-customers to main: incremental sync to version \d+.*Deleted preview branch/ }).first().waitFor({ timeout: 180_000 });
        // The parent moved: the open preview's plan is spent, so its panel closes.
        await p.locator('.tabs-container .tab', { hasText: 'Preview on branch: e2e-customers' }).first().waitFor({ state: 'detached', timeout: 30_000 });
        await p.screenshot({ path: path.join(ARTIFACTS, '07-applied.png') });
        await assertTargetEquals(neon.realUrl(project.projectId, 'main', 'appdb'), { schema: 'public', name: 'customers' }, table.path, table.latest, { key: ['customer_id'] });
        await neon.settle();
        const left = neon.branches(project.projectId).filter((b) => b.branch.name.startsWith('delta-sync-preview-'));
        if (left.length) throw new Error(`preview branches left: ${left.map((b) => b.branch.name).join(', ')}`);
        await runPaletteCommand(p, 'Delta Sync: Refresh Targets');
        await p.screenshot({ path: path.join(ARTIFACTS, '08-tree-after-apply.png') });
      });

      await step('Add Lakebase Database: the ~/.databrickscfg profile signs in, the test passes, the lakebase: reference is saved and listed', async () => {
        await clearNotifications(p);
        await runPaletteCommand(p, 'Delta Sync: Add Lakebase Database...');
        const name = await quickInputStep(p, 'Add Lakebase Database (1/5): name');
        await name.fill('lakebase-e2e');
        await name.press('Enter');
        await quickInputStep(p, 'Databricks profile');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'e2e-pat' }).first().click();
        await quickInputStep(p, ': Autoscaling endpoint or Provisioned instance');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'Lakebase Autoscaling endpoint' }).first().click();
        // The workspace's projects, branches and endpoints are listed to pick from.
        const [, project, , branch, , endpoint] = LAKEBASE_ENDPOINT.split('/') as string[];
        await quickInputStep(p, ': project');
        await pickQuickInputItem(p, project as string);
        await quickInputStep(p, `: branch of ${project}`);
        await pickQuickInputItem(p, branch as string);
        await quickInputStep(p, `: endpoint of ${branch}`);
        await pickQuickInputItem(p, endpoint as string);
        await p.screenshot({ path: path.join(ARTIFACTS, '09a-lakebase-endpoint-picked.png') });
        // The endpoint's host is prefilled (without a port); the local server listens on its own port.
        const host = await quickInputStep(p, ': host');
        await host.fill(`127.0.0.1:${lakebase.pgPort}`);
        await host.press('Enter');
        // The branch's databases are listed (the local workspace lists Databricks' default
        // databricks_postgres); the local server's database is typed instead.
        await quickInputStep(p, ': database');
        await p.locator('.quick-input-list .monaco-list-row', { hasText: 'databricks_postgres' }).first().waitFor({ timeout: 15_000 });
        await pickQuickInputItem(p, 'Type it instead…');
        const database = await quickInputStep(p, ': database');
        await p.locator('.quick-input-widget .quick-input-list .monaco-list-row').first().waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => undefined);
        await database.fill('postgres');
        await database.press('Enter');
        await p.locator('.notification-toast', { hasText: /Connected to .*Saved "lakebase-e2e"/ }).first().waitFor({ timeout: 120_000 });
        await rowLabelled(targets, p, 'lakebase-e2e').filter({ hasText: 'lakebase 127.0.0.1/postgres (profile e2e-pat)' }).first().waitFor({ timeout: 30_000 });
        if (lakebase.issued.length === 0) throw new Error('the test did not log in with a Lakebase token');
        await p.screenshot({ path: path.join(ARTIFACTS, '09-lakebase-added.png') });
        // Each listing's and the test's progress notification closes once its work is done
        // (VS Code keeps one at least 800 ms): none is left a few seconds after the add.
        const left = await progressLeft(p, /Delta Sync: (Listing|Testing)/, 5_000);
        await p.screenshot({ path: path.join(ARTIFACTS, '09b-lakebase-no-progress-left.png') });
        if (left.length) throw new Error(`progress notifications left 5 s after the add: ${left.join(' | ')}`);
      });
    });
  } finally {
    await neon.close();
    await lakebase.stop();
    if (!process.env.E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    timings.push(['total', Date.now() - started]);
    log(`timings:\n${report(70)}`);
  }
  return 'passed';
}

runE2e(log, ARTIFACTS, main);
