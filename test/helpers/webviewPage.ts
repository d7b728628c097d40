import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { REPO_ROOT } from './syncHarness';

/** The Chromium the webview tests drive (Debian's, or E2E_CHROMIUM); tests skip without it. */
export const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';

let bundled: Promise<string> | undefined;

/** The webview bundle (media/main.ts) built as the extension's build makes it for its panels; built once per test process. */
export function webviewBundle(): Promise<string> {
  bundled ??= (async () => {
    const esbuild = await import('esbuild');
    const out = await esbuild.build({ entryPoints: [path.join(REPO_ROOT, 'media/main.ts')], bundle: true, write: false, platform: 'browser', format: 'iife', target: 'es2022', logLevel: 'error' });
    return out.outputFiles[0]!.text;
  })();
  return bundled;
}

/**
 * A page running the webview bundle as panel `panel` runs it in VS Code: its CSS, an
 * `acquireVsCodeApi` whose posts are recorded in `window.__posted`, and `state` as the state
 * a restored panel finds. Resolves once the webview posted `ready` (the host then sends init).
 */
export async function openWebviewPage(browser: Browser, panel: 'preview' | 'progress', opts: { viewport: { width: number; height: number }; state?: unknown }): Promise<Page> {
  const bundle = await webviewBundle();
  const page = await browser.newPage({ viewport: opts.viewport });
  try {
    await page.setContent(`<!DOCTYPE html><html><body data-panel="${panel}"><main id="root" aria-live="polite"></main></body></html>`);
    const state = opts.state === undefined ? '' : ` window.__state = ${JSON.stringify(opts.state)};`;
    await page.addScriptTag({ content: `window.__posted = [];${state} window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), setState: (s) => { window.__state = s; }, getState: () => window.__state });` });
    await page.addStyleTag({ path: path.join(REPO_ROOT, 'media/webview.css') });
    await page.addScriptTag({ content: bundle });
    // A string: this file has no DOM types (the function runs in the page).
    await page.waitForFunction("window.__posted.some((m) => m.type === 'ready')");
    return page;
  } catch (e) {
    await page.close();
    throw e;
  }
}
