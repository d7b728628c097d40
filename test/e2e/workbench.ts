/**
 * Shared steps for the end-to-end tests that drive the extension in code-server through
 * Chromium (test/e2e/run.ts, ux.ts, databricks.ts, neon.ts): tool discovery, server
 * start-up and tear-down, and the workbench interactions (palette, panes, tree rows, quick
 * inputs, context menus, webviews).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Frame, type Locator, type Page } from 'playwright-core';

/** A test's named, timed step (each test logs with its own prefix). */
export type Step = <T>(name: string, fn: () => Promise<T> | T) => Promise<T>;

/** A test's log (on stderr, with its prefix), its timed steps, and their timings as a table. */
export function stepRecorder(prefix: string): { log: (msg: string) => void; step: Step; timings: Array<[string, number]>; report: (width: number) => string } {
  const timings: Array<[string, number]> = [];
  const log = (msg: string): void => {
    process.stderr.write(`[${prefix}] ${msg}\n`);
  };
  const step: Step = async (name, fn) => {
    const t = Date.now();
    log(`${name}...`);
    try {
      return await fn();
    } finally {
      timings.push([name, Date.now() - t]);
    }
  };
  const report = (width: number): string => timings.map(([n, ms]) => `${n.padEnd(width)} ${(ms / 1000).toFixed(1)} s`).join('\n');
  return { log, step, timings, report };
}

/**
 * True when SKIP_E2E=1 asks to skip (for quick local loops; the caller must then not report
 * PASS). In CI (.ci/run sets CI=true) a skip is refused: the end-to-end tests must run there.
 */
export function skipRequested(log: (msg: string) => void, what: string): boolean {
  if (process.env.SKIP_E2E !== '1') return false;
  const ci = process.env.CI?.trim().toLowerCase();
  if (ci && ci !== 'false' && ci !== '0') throw new Error(`SKIP_E2E=1 is set in CI (CI is set): ${what} must run there; unset SKIP_E2E.`);
  log(`SKIPPED: SKIP_E2E=1, ${what} did not run (not a pass)`);
  return true;
}

/**
 * Runs a test's `main` and exits: 0 on PASS (said with where the screenshots are) or on an
 * asked-for skip (not said to pass), 1 on FAIL with the error's stack.
 */
export function runE2e(log: (msg: string) => void, artifacts: string, main: () => Promise<'passed' | 'skipped'>): void {
  main().then(
    (outcome) => {
      if (outcome === 'passed') log(`PASS (screenshots in ${path.relative(process.cwd(), artifacts)})`);
      process.exit(0);
    },
    (e: unknown) => {
      log(`FAIL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exit(1);
    },
  );
}

/** "1,200" as the views format counts. */
export function grouped(n: number): string {
  return n.toLocaleString('en-US');
}

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

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Where a page's test keeps its screenshots (set by withWorkbench), for the palette's retries. */
const artifactsOf = new WeakMap<Page, string>();

const PALETTE_ATTEMPTS = 3;
/** The class VS Code gives the quick input while its close animation runs (150 ms; it is inert meanwhile). */
const QUICK_INPUT_CLOSING = 'quick-input-widget-closing';

/**
 * Runs a command from the palette: F1, its title, Enter on the top match (`exact`: a click
 * on the row whose label is exactly `title`, where Enter would take another fuzzy match).
 *
 * In code-server the quick input can close again right after it opened (the focus moves
 * back to a webview, or a tree or the status bar redraws under it): then the title is
 * typed into nothing ("element is not visible"). Such an attempt, lost before the command
 * row was accepted, is retried with the palette opened anew (3 attempts, each logged with
 * a screenshot, the last error kept). What is never retried: a command the palette does
 * not list (the input stays open and no row matches), and a modal dialog in front (the
 * product asked something; the step must answer it): both fail at once.
 */
export async function runPaletteCommand(page: Page, title: string, opts: { exact?: boolean } = {}): Promise<void> {
  // A quick input that is closing stays visible (inert) for its close animation: never type into that one.
  const input = page.locator(`.quick-input-widget:not(.${QUICK_INPUT_CLOSING}) input`).first();
  const rows = page.locator('.quick-input-list .monaco-list-row');
  const row = (opts.exact ? rows.filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(title)}$`) }) }) : rows.filter({ hasText: title })).first();
  let last: unknown;
  for (let attempt = 1; attempt <= PALETTE_ATTEMPTS; attempt++) {
    await failUnderModalDialog(page, `run "${title}" from the palette`);
    await page.locator(`.quick-input-widget.${QUICK_INPUT_CLOSING}`).first().waitFor({ state: 'detached', timeout: 2_000 }).catch(() => undefined);
    await focusWorkbench(page);
    let stage = 'open the palette';
    try {
      await page.keyboard.press('F1');
      await input.waitFor({ state: 'visible', timeout: 5_000 });
      stage = 'type the title';
      await input.fill(`>${title}`, { timeout: 5_000 });
      stage = 'wait for the command row';
      try {
        await row.waitFor({ state: 'visible', timeout: 15_000 });
      } catch (e) {
        if ((await input.isVisible()) && (await input.inputValue()) === `>${title}`) {
          throw new PaletteError(`the palette lists no command ${opts.exact ? 'titled exactly' : 'matching'} "${title}" (the input stayed open 15 s with the title typed): is the command registered, and is its "when" clause true here?`);
        }
        throw e;
      }
      stage = 'accept the command row';
      // An action that times out did not happen (Playwright acts only once the element is ready): retrying cannot run the command twice.
      if (opts.exact) await row.click({ timeout: 5_000 });
      else await input.press('Enter', { timeout: 5_000 });
    } catch (e) {
      if (e instanceof PaletteError) throw e;
      last = e;
      await notePaletteRetry(page, title, attempt, stage, e);
      await page.keyboard.press('Escape').catch(() => undefined);
      continue;
    }
    // Accepted: wait until the palette lets go of the title (it closes, or the command's own
    // quick input replaces it). Without this wait, with the focus in a webview, the next
    // command's F1 came while this palette was still closing and was lost, and its fill
    // found this palette's inert input, then none: "element is inert", then "element is not
    // visible" for 30 s (CI's failure; here 2 of 5 back-to-back pairs from a webview, 0 of 28
    // with this helper).
    const released = await page
      .waitForFunction(
        `!Array.from(document.querySelectorAll('.quick-input-widget:not(.${QUICK_INPUT_CLOSING}) input')).some((i) => i.getClientRects().length > 0 && i.value === ${JSON.stringify(`>${title}`)})`,
        undefined,
        { timeout: 10_000, polling: 50 },
      )
      .then(() => true, () => false);
    if (!released) throw new Error(`palette: "${title}" was accepted but the palette still shows it after 10 s (did the command run?)`);
    return;
  }
  throw new Error(`palette: "${title}" did not run: the quick input closed or went inert before the command was accepted, ${PALETTE_ATTEMPTS} times (screenshots palette-retry-*.png). Last error: ${errorLine(last)}`);
}

class PaletteError extends Error {}

function errorLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n').filter((l) => l.trim() !== '').slice(0, 3).join(' | ');
}

async function notePaletteRetry(page: Page, title: string, attempt: number, stage: string, e: unknown): Promise<void> {
  const dir = artifactsOf.get(page);
  const shot = dir ? path.join(dir, `palette-retry-${Date.now()}-${attempt}.png`) : undefined;
  if (shot) await page.screenshot({ path: shot }).catch(() => undefined);
  const focus = await page.evaluate<string>(`(() => { const a = document.activeElement; return a ? a.tagName + (a.className ? '.' + String(a.className).split(' ').join('.') : '') : 'none'; })()`).catch(() => '?');
  process.stderr.write(`[e2e palette] "${title}": attempt ${attempt} of ${PALETTE_ATTEMPTS} failed to ${stage} (focus on ${focus})${shot ? `, screenshot ${path.basename(shot)}` : ''}: ${errorLine(e)}\n`);
}

/**
 * A modal dialog makes the rest of the workbench inert: a palette, click or key behind it
 * cannot work. The product opened it, so it is not retried away: the failure names it.
 */
export async function failUnderModalDialog(page: Page, action: string): Promise<void> {
  const dialog = page.locator('.monaco-dialog-box').first();
  if (await dialog.isVisible().catch(() => false)) {
    const text = ((await dialog.textContent().catch(() => '')) ?? '').replace(/\s+/g, ' ').trim();
    throw new Error(`cannot ${action}: a modal dialog is open ("${text.slice(0, 300)}"); the step must answer it first (or the product should not have opened it here)`);
  }
}

/**
 * Moves the keyboard focus out of a webview (an iframe) into the workbench, so F1 reaches
 * the workbench's keybindings, not the webview's document.
 */
export async function focusWorkbench(page: Page): Promise<void> {
  await page.evaluate(`(() => { const a = document.activeElement; if (a && a.tagName === 'IFRAME') a.blur(); })()`).catch(() => undefined);
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
  return rows.filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(label)}$`) }) });
}

/**
 * Scrolls pane `name`'s tree until `row` is rendered (a tree renders only the rows in view:
 * in a small window a row below the fold is not in the page) and returns it. Fails after
 * `tries` scrolls down, naming what it looked for.
 */
export async function scrollToRow(page: Page, name: string, row: Locator, tries = 15): Promise<Locator> {
  const list = page.locator('.pane', { has: page.locator('.pane-header', { hasText: new RegExp(`^${name}`, 'i') }) }).locator('.monaco-list').first();
  await list.waitFor({ timeout: 30_000 });
  for (let i = 0; i < tries && (await row.count()) === 0; i++) {
    await list.hover();
    await page.mouse.wheel(0, 66);
    await page.waitForTimeout(150);
  }
  if ((await row.count()) === 0) throw new Error(`no such row in the ${name} view after scrolling it: ${row.toString()}`);
  await row.first().scrollIntoViewIfNeeded();
  return row.first();
}

/** Expands a tree row (a click toggles; only click when collapsed). */
export async function expandRow(row: Locator): Promise<void> {
  await row.waitFor({ timeout: 30_000 });
  if ((await row.getAttribute('aria-expanded')) !== 'true') await row.click();
}

/** Opens the Delta Sync container (an editor may have taken the side bar) and expands a pane. */
export async function showPane(page: Page, name: string): Promise<void> {
  const item = page.locator('.activitybar .action-item a[aria-label^="Delta Sync"], .activitybar .action-item[aria-label^="Delta Sync"]').first();
  if (!(await page.locator('.pane-header', { hasText: new RegExp(`^${name}`, 'i') }).first().isVisible())) await item.click();
  await expandPane(page, name);
}

/** Clicks the quick pick's row whose label is exactly `label` (e.g. a mapping after Preview Changes). */
export async function pickQuickInputItem(page: Page, label: string): Promise<void> {
  const pick = page.locator('.quick-input-list .monaco-list-row', { has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(label)}$`) }) }).first();
  await pick.waitFor({ timeout: 15_000 });
  await pick.click();
}

/**
 * Picks `item` in the context menu that a right-click on `row` opens (code-server draws it
 * in the page): the entry labelled exactly `item`, or `item` and an ellipsis (a command that asks more).
 */
export async function contextMenu(page: Page, row: Locator, item: string): Promise<void> {
  await row.click({ button: 'right' });
  const entry = page.locator('.monaco-menu .action-item', { has: page.locator('.action-label', { hasText: new RegExp(`^${escapeRegExp(item)}(\\.\\.\\.|…)?$`) }) }).first();
  await entry.waitFor({ state: 'visible', timeout: 15_000 });
  // The menu ignores a click right after it opened (the right-click's own mouse-up).
  await page.waitForTimeout(400);
  await entry.click();
  await page.locator('.monaco-menu').first().waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
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
interface CodeServer {
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
async function startCodeServer(step: Step, ext: PreparedExtension, opts: { tmp: string; workspace: string; artifacts: string; machineSettings: Record<string, unknown>; userSettings?: Record<string, unknown>; keybindings?: unknown[]; env?: Record<string, string> }): Promise<CodeServer> {
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
  if (opts.keybindings) fs.writeFileSync(path.join(userDataDir, 'User', 'keybindings.json'), JSON.stringify(opts.keybindings));
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
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
    stdio: ['ignore', serverLog, serverLog],
  });
  return { base: `http://127.0.0.1:${port}`, server, serverLog };
}

/** What withWorkbench starts: code-server's files and settings, and the browser's window. */
export interface WorkbenchOptions {
  tmp: string;
  workspace: string;
  /** The test's screenshots folder: code-server.log, failure.png and the palette's retry screenshots go there. */
  artifacts: string;
  machineSettings?: Record<string, unknown>;
  userSettings?: Record<string, unknown>;
  /** User keybindings (keybindings.json), e.g. a key for a test-only command. */
  keybindings?: unknown[];
  /** Extra environment of code-server and its extension host. */
  env?: Record<string, string>;
  viewport?: { width: number; height: number };
  sidebarWiden?: number;
  /** Receives the page as soon as it exists (e.g. to collect its console errors). */
  onPage?: (p: Page) => void;
}

/**
 * Starts code-server with the .vsix installed, opens the workbench on the Delta Sync
 * container and runs `body` on its page. On failure it saves failure.png; pass or fail,
 * it closes the browser and kills code-server's process group.
 */
export async function withWorkbench<T>(step: Step, ext: PreparedExtension, opts: WorkbenchOptions, body: (p: Page) => Promise<T>): Promise<T> {
  const cs = await startCodeServer(step, ext, { ...opts, machineSettings: opts.machineSettings ?? {} });
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  try {
    const p = await openWorkbench(step, ext, cs, {
      ...opts,
      onContext: (c, pg) => {
        context = c;
        page = pg;
        artifactsOf.set(pg, opts.artifacts);
        opts.onPage?.(pg);
      },
    });
    return await body(p);
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(opts.artifacts, 'failure.png') }).catch(() => undefined);
    throw e;
  } finally {
    await context?.close().catch(() => undefined);
    try {
      // detached: its own process group, so the agent host and watchers die with it.
      if (cs.server.pid) process.kill(-cs.server.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    fs.closeSync(cs.serverLog);
  }
}

/**
 * Waits for code-server, launches Chromium (1400x900 unless `viewport` says otherwise) on the workspace, opens the Delta
 * Sync container and widens the side bar. `onContext` receives the browser context as soon
 * as it exists, so the caller's cleanup can close it even when a later step fails.
 */
async function openWorkbench(step: Step, ext: PreparedExtension, cs: CodeServer, opts: { tmp: string; workspace: string; onContext: (c: BrowserContext, p: Page) => void; viewport?: { width: number; height: number }; sidebarWiden?: number }): Promise<Page> {
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

/**
 * The last three steps of Create Mapping (all columns, the proposed types, the mapping's
 * `name`), then the mapping file it writes in the workspace's .delta-sync folder, parsed
 * (as `T`: the fields the caller checks).
 */
export async function finishCreateMapping<T>(page: Page, workspace: string, name: string): Promise<T> {
  await (await quickInputStep(page, 'Create Mapping (5/7)')).press('Enter');
  await quickInputStep(page, 'Create Mapping (6/7)');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Use these types' }).first().click();
  const nameBox = await quickInputStep(page, 'Create Mapping (7/7)');
  await nameBox.fill(name);
  await nameBox.press('Enter');
  const file = path.join(workspace, '.delta-sync', `${name}.json`);
  const deadline = Date.now() + 30_000;
  while (!fs.existsSync(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (!fs.existsSync(file)) throw new Error(`Create Mapping did not write ${file} within 30 s`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}
