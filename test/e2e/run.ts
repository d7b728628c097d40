/**
 * End-to-end test in a real VS Code: code-server (the VS Code workbench served to a
 * browser) with the packaged .vsix installed, driven through its UI by playwright-core
 * and Debian Chromium. `npm run test:e2e`; exits non-zero on failure.
 *
 * Steps: setup (cached tools) -> build -> package .vsix and check its file list ->
 * fresh user-data/extensions dirs and a temp workspace -> install the .vsix -> start
 * code-server on a free port in its own process group -> open the Delta Sync container,
 * check the three views -> run commands from the palette (a webview panel, an error
 * toast) -> screenshots in .test-artifacts/e2e/. The process group is killed at the end,
 * pass or fail. Set E2E_KEEP=1 to keep the temp folder.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type FrameLocator, type Locator, type Page } from 'playwright-core';
import { SHARED_TABLES_DIR } from '../helpers/sharedTables';

const ROOT = path.resolve(__dirname, '../..');
const ARTIFACTS = path.join(ROOT, '.test-artifacts', 'e2e');
const timings: Array<[string, number]> = [];

function log(msg: string): void {
  process.stderr.write(`[e2e] ${msg}\n`);
}

async function step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
  const t = Date.now();
  log(`${name}...`);
  try {
    return await fn();
  } finally {
    timings.push([name, Date.now() - t]);
  }
}

function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`code-server not healthy after ${timeoutMs} ms`);
}

/** Files the .vsix may contain (paths as `vsce ls` prints them). */
const ALLOWED_IN_VSIX = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE(\.md|\.txt)?$/,
  /^dist\/(extension|webview)\.js$/,
  /^media\/[^/]+\.(css|svg)$/,
  /^media\/walkthrough\/[^/]+\.md$/,
  /^schemas\/[^/]+\.json$/,
];
const REQUIRED_IN_VSIX = ['package.json', 'dist/extension.js', 'dist/webview.js', 'media/webview.css', 'media/delta-sync.svg', 'schemas/mapping.schema.json'];

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

function writeUserSettings(userDataDir: string): void {
  const dir = path.join(userDataDir, 'User');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'settings.json'),
    JSON.stringify({
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'telemetry.telemetryLevel': 'off',
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'update.mode': 'none',
      'security.workspace.trust.enabled': false,
      'chat.disableAIFeatures': true,
      'window.commandCenter': false,
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
    }),
  );
}

async function runPaletteCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await input.press('Enter');
}

/** Expands a view pane by its title unless it is expanded. */
async function expandPane(page: Page, name: string): Promise<void> {
  const header = page.locator('.pane-header', { hasText: new RegExp(`^${name}`, 'i') }).first();
  await header.waitFor({ state: 'visible', timeout: 20_000 });
  if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
}

/** Rows of a view pane (the pane body follows its header). */
function paneRows(page: Page, name: string): Locator {
  return page.locator('.pane', { has: page.locator('.pane-header', { hasText: new RegExp(`^${name}`, 'i') }) }).locator('.monaco-list-row');
}

/** The row whose label is exactly `label` (descriptions are matched separately). */
function rowLabelled(rows: Locator, page: Page, label: string): Locator {
  const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return rows.filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escaped}$`) }) });
}

async function main(): Promise<void> {
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const started = Date.now();

  const env = await step('setup (scripts/e2e-setup.sh)', () => {
    const envFile = execFileSync('bash', [path.join(ROOT, 'scripts', 'e2e-setup.sh')], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop() as string;
    return readEnvFile(envFile);
  });
  const node24 = env.E2E_NODE as string;
  const entry = env.E2E_CODE_SERVER_ENTRY as string;
  const chromiumPath = env.E2E_CHROMIUM as string;

  await step('build', () => execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] }));
  const vsix = path.join(ARTIFACTS, 'delta-neon-sync.vsix');
  const files = await step('package .vsix', () => {
    const listed = checkVsixFiles();
    execFileSync('npx', ['--no-install', 'vsce', 'package', '--no-dependencies', '--skip-license', '--allow-missing-repository', '--out', vsix], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return listed;
  });
  log(`.vsix files: ${files.join(', ')}`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'delta-sync-e2e-'));
  const userDataDir = path.join(tmp, 'user-data');
  const extensionsDir = path.join(tmp, 'extensions');
  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(workspace);
  const { tablesFolder } = makeWorkspace(workspace);
  writeUserSettings(userDataDir);
  const cfg = path.join(tmp, 'code-server.yaml');
  fs.writeFileSync(cfg, 'auth: none\ncert: false\ndisable-telemetry: true\ndisable-update-check: true\n');
  const baseArgs = [entry, '--config', cfg, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];

  await step('install .vsix', () => execFileSync(node24, [...baseArgs, '--install-extension', vsix], { stdio: ['ignore', 'ignore', 'inherit'] }));

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serverLog = fs.openSync(path.join(ARTIFACTS, 'code-server.log'), 'w');
  // detached: its own process group, so the agent host and watchers die with it.
  const server = spawn(node24, [...baseArgs, '--bind-addr', `127.0.0.1:${port}`, '--disable-workspace-trust', '--disable-getting-started-override', workspace], {
    detached: true,
    stdio: ['ignore', serverLog, serverLog],
  });
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  const consoleErrors: string[] = [];
  try {
    await step('start code-server', () => waitForHealth(`${base}/healthz`, server, 30_000));

    context = await step('launch chromium', () =>
      chromium.launchPersistentContext(path.join(tmp, 'chromium'), {
        executablePath: chromiumPath,
        headless: true,
        viewport: { width: 1400, height: 900 },
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }),
    );
    page = context.pages()[0] ?? (await context.newPage());
    const p = page;
    p.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });

    await step('load workbench', async () => {
      await p.goto(`${base}/?folder=${encodeURIComponent(workspace)}`);
      await p.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
      await p.locator('.activitybar').waitFor({ state: 'visible', timeout: 60_000 });
    });

    await step('open the Delta Sync container', async () => {
      const item = p.locator('.activitybar .action-item a[aria-label^="Delta Sync"], .activitybar .action-item[aria-label^="Delta Sync"]').first();
      await item.waitFor({ state: 'visible', timeout: 30_000 });
      await item.click();
      await p.locator('.pane-header', { hasText: /^Sources/i }).first().waitFor({ state: 'visible', timeout: 20_000 });
    });

    await step('views render', async () => {
      for (const name of ['Sources', 'Targets', 'Mappings']) await expandPane(p, name);
      const sources = paneRows(p, 'Sources');
      await rowLabelled(sources, p, 'missing-folder: folder not found').first().waitFor({ timeout: 20_000 });
      if (tablesFolder) {
        await rowLabelled(sources, p, path.basename(tablesFolder)).first().click();
        const cdf = rowLabelled(sources, p, 'cdf-table').filter({ hasText: 'CDF on' }).first();
        await cdf.waitFor({ timeout: 30_000 });
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

    await step('palette: Create Sample Table writes a table the Sources view shows', async () => {
      if (tablesFolder) await rowLabelled(paneRows(p, 'Sources'), p, path.basename(tablesFolder)).first().click(); // collapse
      await runPaletteCommand(p, 'Delta Sync: Create Sample Table');
      const sources = paneRows(p, 'Sources');
      const sampleRoot = rowLabelled(sources, p, 'delta-sample').first();
      await sampleRoot.waitFor({ timeout: 60_000 });
      await sampleRoot.click();
      // 50 rows inserted, 2 updated, 1 deleted over versions 0..3.
      await rowLabelled(sources, p, 'orders').filter({ hasText: 'v3 · CDF on · 49 rows' }).first().waitFor({ timeout: 30_000 });
      if (!fs.existsSync(path.join(workspace, 'delta-sample', 'orders', '_delta_log', '00000000000000000003.json'))) {
        throw new Error('the sample table was not written into the workspace');
      }
      await p.screenshot({ path: path.join(ARTIFACTS, '02-sample-table.png') });
    });

    await step('palette: Show Sync Progress opens the webview', async () => {
      await runPaletteCommand(p, 'Delta Sync: Show Sync Progress');
      const inner: FrameLocator = p.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
      await inner.locator('[data-testid="progress-idle"]', { hasText: 'No sync is running' }).waitFor({ timeout: 30_000 });
      await p.screenshot({ path: path.join(ARTIFACTS, '03-progress-webview.png') });
    });

    await step('palette: a failing command shows its error with Show Log', async () => {
      await runPaletteCommand(p, 'Delta Sync: Dry Run');
      // The mapping quick pick lists only valid mappings.
      const pick = p.locator('.quick-input-list .monaco-list-row', { hasText: 'orders' }).first();
      await pick.waitFor({ timeout: 15_000 });
      await p.keyboard.press('Enter');
      const toast = p.locator('.notification-toast', { hasText: 'Dry run is not available' }).first();
      await toast.waitFor({ timeout: 20_000 });
      await toast.locator('.monaco-button', { hasText: 'Show Log' }).first().waitFor({ timeout: 5_000 });
      await p.screenshot({ path: path.join(ARTIFACTS, '04-error-toast.png') });
      await toast.locator('.monaco-button', { hasText: 'Show Log' }).first().click();
      await p.locator('.part.panel', { hasText: 'dry' }).first().waitFor({ timeout: 15_000 }).catch(() => undefined);
      await p.screenshot({ path: path.join(ARTIFACTS, '05-log.png') });
    });
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(ARTIFACTS, 'failure.png') }).catch(() => undefined);
    throw e;
  } finally {
    fs.writeFileSync(path.join(ARTIFACTS, 'browser-console-errors.txt'), consoleErrors.join('\n') + '\n');
    await context?.close().catch(() => undefined);
    try {
      if (server.pid) process.kill(-server.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    fs.closeSync(serverLog);
    if (!process.env.E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    timings.push(['total', Date.now() - started]);
    const report = timings.map(([n, ms]) => `${n.padEnd(60)} ${(ms / 1000).toFixed(1)} s`).join('\n');
    fs.writeFileSync(path.join(ARTIFACTS, 'timings.txt'), report + '\n');
    log(`timings:\n${report}`);
  }
}

main().then(
  () => {
    log(`PASS (screenshots in ${path.relative(ROOT, ARTIFACTS)})`);
    process.exit(0);
  },
  (e: unknown) => {
    log(`FAIL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
