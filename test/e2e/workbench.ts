/**
 * Shared steps for the end-to-end tests that drive the extension in code-server through
 * Chromium (test/e2e/run.ts, databricks.ts, neon.ts): tool discovery, server start-up
 * and the workbench interactions (palette, panes, tree rows, quick inputs, webviews).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Frame, type Locator, type Page } from 'playwright-core';

/** A test's named, timed step (each test logs with its own prefix). */
export type Step = <T>(name: string, fn: () => Promise<T> | T) => Promise<T>;

export interface PreparedExtension {
  /** Node 24 for code-server, code-server's entry script, and Chromium (scripts/e2e-setup.sh). */
  node24: string;
  entry: string;
  chromiumPath: string;
  /** The built .vsix, in `artifacts`. */
  vsix: string;
}

/**
 * The tools (scripts/e2e-setup.sh, cached), a fresh build, and the .vsix packaged into
 * `artifacts`; `beforePackage` runs first inside the packaging step (e.g. to check the
 * file list).
 */
export async function prepareExtension(step: Step, root: string, artifacts: string, beforePackage?: () => void): Promise<PreparedExtension> {
  const env = await step('setup (scripts/e2e-setup.sh)', () => {
    const envFile = execFileSync('bash', [path.join(root, 'scripts', 'e2e-setup.sh')], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop() as string;
    return readEnvFile(envFile);
  });
  await step('build', () => execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] }));
  const vsix = path.join(artifacts, 'delta-neon-sync.vsix');
  await step('package .vsix', () => {
    beforePackage?.();
    execFileSync('npx', ['--no-install', 'vsce', 'package', '--no-dependencies', '--skip-license', '--allow-missing-repository', '--no-rewrite-relative-links', '--out', vsix], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  });
  return { node24: env.E2E_NODE as string, entry: env.E2E_CODE_SERVER_ENTRY as string, chromiumPath: env.E2E_CHROMIUM as string, vsix };
}

export function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

export function freePort(): Promise<number> {
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

export async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
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

export async function runPaletteCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await input.press('Enter');
}

/** Expands a view pane by its title unless it is expanded. */
export async function expandPane(page: Page, name: string): Promise<void> {
  const header = page.locator('.pane-header', { hasText: new RegExp(`^${name}`, 'i') }).first();
  await header.waitFor({ state: 'visible', timeout: 20_000 });
  if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
}

/** Rows of a view pane (the pane body follows its header). */
export function paneRows(page: Page, name: string): Locator {
  return page.locator('.pane', { has: page.locator('.pane-header', { hasText: new RegExp(`^${name}`, 'i') }) }).locator('.monaco-list-row');
}

/** The row whose label is exactly `label` (descriptions are matched separately). */
export function rowLabelled(rows: Locator, page: Page, label: string): Locator {
  const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return rows.filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escaped}$`) }) });
}

/**
 * The webview frame that shows `selector` (webviews are nested iframes; several panels
 * may exist). Polls every frame of the page until one matches.
 */
export async function webviewFrame(page: Page, selector: string, timeoutMs = 60_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const f of page.frames()) {
      if (f === page.mainFrame()) continue;
      try {
        if ((await f.locator(selector).count()) > 0) return f;
      } catch {
        // a frame that navigated away meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no webview shows ${selector} after ${timeoutMs} ms`);
}

/** Waits until a webview element's text matches. */
export async function waitForText(frame: Frame, selector: string, expected: string | RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = (await frame.locator(selector).first().textContent().catch(() => null)) ?? '';
    if (typeof expected === 'string' ? last.trim() === expected : expected.test(last)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${selector}: expected ${String(expected)}, saw "${last}"`);
}

/** Waits for the quick input to show a step whose title contains `title`. */
export async function quickInputStep(page: Page, title: string): Promise<Locator> {
  await page.locator('.quick-input-widget .quick-input-title', { hasText: title }).first().waitFor({ state: 'visible', timeout: 30_000 });
  return page.locator('.quick-input-widget input').first();
}

/** Closes every notification toast so later waits see only new ones. */
export async function clearNotifications(page: Page): Promise<void> {
  await runPaletteCommand(page, 'Notifications: Clear All Notifications').catch(() => undefined);
}

/** A code-server started by startCodeServer: its URL, process and log file descriptor. */
export interface CodeServer {
  base: string;
  server: ChildProcess;
  serverLog: number;
}

/**
 * Writes the user settings (no start-up editor, tips, telemetry, updates, trust or AI
 * features, then `userSettings`, e.g. the colour theme) and `machineSettings` (code-server's extension host is remote, so it reads the
 * Machine settings file for machine-scoped settings), installs the .vsix, and starts
 * code-server on `workspace` with its log in `artifacts`.
 */
export async function startCodeServer(step: Step, ext: PreparedExtension, opts: { tmp: string; workspace: string; artifacts: string; machineSettings: Record<string, unknown>; userSettings?: Record<string, unknown> }): Promise<CodeServer> {
  const userDataDir = path.join(opts.tmp, 'user-data');
  const extensionsDir = path.join(opts.tmp, 'extensions');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.writeFileSync(
    path.join(userDataDir, 'User', 'settings.json'),
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
      ...opts.userSettings,
    }),
  );
  fs.mkdirSync(path.join(userDataDir, 'Machine'), { recursive: true });
  fs.writeFileSync(path.join(userDataDir, 'Machine', 'settings.json'), JSON.stringify(opts.machineSettings));
  const cfg = path.join(opts.tmp, 'code-server.yaml');
  fs.writeFileSync(cfg, 'auth: none\ncert: false\ndisable-telemetry: true\ndisable-update-check: true\n');
  const baseArgs = [ext.entry, '--config', cfg, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
  await step('install .vsix', () => execFileSync(ext.node24, [...baseArgs, '--install-extension', ext.vsix], { stdio: ['ignore', 'ignore', 'inherit'] }));
  const port = await freePort();
  const serverLog = fs.openSync(path.join(opts.artifacts, 'code-server.log'), 'w');
  const server = spawn(ext.node24, [...baseArgs, '--bind-addr', `127.0.0.1:${port}`, '--disable-workspace-trust', '--disable-getting-started-override', opts.workspace], {
    detached: true,
    stdio: ['ignore', serverLog, serverLog],
  });
  return { base: `http://127.0.0.1:${port}`, server, serverLog };
}

/**
 * Waits for code-server, launches Chromium (1400x900 unless `viewport` says otherwise) on the workspace, opens the Delta
 * Sync container and widens the side bar. `onContext` receives the browser context as soon
 * as it exists, so the caller's cleanup can close it even when a later step fails.
 */
export async function openWorkbench(step: Step, ext: PreparedExtension, cs: CodeServer, opts: { tmp: string; workspace: string; onContext: (c: BrowserContext, p: Page) => void; viewport?: { width: number; height: number }; sidebarWiden?: number }): Promise<Page> {
  await step('start code-server', () => waitForHealth(`${cs.base}/healthz`, cs.server, 30_000));
  const context = await step('launch chromium', () =>
    chromium.launchPersistentContext(path.join(opts.tmp, 'chromium'), {
      executablePath: ext.chromiumPath,
      headless: true,
      viewport: opts.viewport ?? { width: 1400, height: 900 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }),
  );
  const p = context.pages()[0] ?? (await context.newPage());
  opts.onContext(context, p);
  await step('load workbench and open the Delta Sync container', async () => {
    await p.goto(`${cs.base}/?folder=${encodeURIComponent(opts.workspace)}`);
    await p.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
    const item = p.locator('.activitybar .action-item a[aria-label^="Delta Sync"], .activitybar .action-item[aria-label^="Delta Sync"]').first();
    await item.waitFor({ state: 'visible', timeout: 30_000 });
    await item.click();
    const box = await p.locator('.part.sidebar').boundingBox();
    if (box) {
      await p.mouse.move(box.x + box.width + 2, box.y + box.height / 2);
      await p.mouse.down();
      await p.mouse.move(box.x + box.width + (opts.sidebarWiden ?? 220), box.y + box.height / 2, { steps: 5 });
      await p.mouse.up();
    }
    await expandPane(p, 'Sources');
  });
  return p;
}

/**
 * Add Postgres Connection from the palette with a pasted URL, up to the test it runs before
 * saving: the toast that says `expected`, with each of `buttons` on it.
 */
export async function addConnectionByUrl(page: Page, name: string, url: string, expected: string, buttons: readonly string[]): Promise<Locator> {
  await runPaletteCommand(page, 'Delta Sync: Add Postgres Connection...');
  const nameBox = await quickInputStep(page, 'Add Postgres Connection: name');
  await nameBox.fill(name);
  await nameBox.press('Enter');
  await quickInputStep(page, 'Add Postgres Connection: how');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Paste a connection URL' }).first().click();
  const urlBox = await quickInputStep(page, 'Add Postgres Connection: connection URL');
  await urlBox.fill(url);
  await urlBox.press('Enter');
  const toast = page.locator('.notification-toast', { hasText: expected }).first();
  await toast.waitFor({ timeout: 30_000 });
  for (const b of buttons) await toast.locator('.monaco-button', { hasText: b }).first().waitFor({ timeout: 5_000 });
  return toast;
}
