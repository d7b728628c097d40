/**
 * Renders media/icon.svg (the extension's icon, drawn for this project) to media/icon.png,
 * 128x128 with a transparent background, as package.json's `icon` needs (the Marketplace
 * and VS Code take no SVG there). Uses the Chromium of the end-to-end tests
 * (scripts/e2e-setup.sh, cached) through playwright-core.
 * Run: `npx tsx scripts/render-icon.ts`. test/unit/extensionIdentity.test.ts checks the
 * PNG's size.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(__dirname, '..');
const SVG = path.join(ROOT, 'media', 'icon.svg');
const PNG = path.join(ROOT, 'media', 'icon.png');
const SIZE = 128;

/** Chromium's path from the e2e setup's env file (its last line of output names the file). */
function chromiumPath(): string {
  const envFile = execFileSync('bash', [path.join(ROOT, 'scripts', 'e2e-setup.sh')], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop() ?? '';
  const line = fs.readFileSync(envFile, 'utf8').split('\n').find((l) => l.startsWith('E2E_CHROMIUM='));
  if (!line) throw new Error(`${envFile} names no E2E_CHROMIUM: run scripts/e2e-setup.sh`);
  return line.slice('E2E_CHROMIUM='.length);
}

async function main(): Promise<void> {
  const svg = fs.readFileSync(SVG, 'utf8');
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: SIZE, height: SIZE }, deviceScaleFactor: 1 });
    await page.setContent(`<!DOCTYPE html><html><body style="margin:0;background:transparent"><img id="icon" width="${SIZE}" height="${SIZE}" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}"></body></html>`);
    await page.locator('#icon').evaluate(`(img) => img.decode()`);
    await page.locator('#icon').screenshot({ path: PNG, omitBackground: true });
  } finally {
    await browser.close();
  }
  console.log(`wrote ${path.relative(ROOT, PNG)} (${SIZE}x${SIZE})`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
