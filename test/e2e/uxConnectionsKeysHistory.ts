/**
 * Steps of test/e2e/ux.ts (dark pass, after point 5's Add Postgres Connection step) that
 * drive what that step leaves undriven, as a user would, asserting what the user sees:
 * - point 5: the field-by-field connection form (host and port shown, only the password
 *   masked); Test Connection and Edit from a connection's context menu; the error row's
 *   Retry (nothing listening, then a server behind the port) and Edit; Remove Folder from
 *   Sources (its tables leave the tree and the setting);
 * - point 7: Create Mapping offers only scalar columns as keys (a table with struct, array
 *   and map columns, written by the project's Delta writer);
 * - point 6: Show Sync History of the mapping that ran shows its own runs (the cancelled
 *   paced load of big-events; the two succeeded runs of the wide mapping).
 *
 * Kept in its own file so that ux.ts only calls it. It expects the state ux.ts leaves:
 * connections `shop-local` (good) and `local-closed` (saved on a closed port, its error
 * row shown), the Sources folder `tables` with wide_events, the mappings `big-events`
 * (stopped) and `wide-copy` (loaded, then synced to v2). The folder it removes from Sources
 * is put back at the end, so steps after these see the views as before.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { DeltaTableWriter, type WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { DeltaType } from '../../src/sync/delta/types';
import {
  clearNotifications,
  contextMenu,
  paneRows,
  quickInputStep,
  rowLabelled,
  scrollToRow,
  runPaletteCommand,
  showPane,
  waitForText,
  webviewFrame,
  type Step,
} from './workbench';

export interface ConnectionsKeysHistoryContext {
  page: Page;
  step: Step;
  shot: (p: Page, name: string) => Promise<unknown>;
  /** The password-auth PostgreSQL of ux.ts (role `app`, password `right-password`, database `shop` with schemas public and sales). */
  adminUrl: string;
  workspace: string;
  /** The folder listed in deltaSync.deltaFolders (ux.ts's `tables`). */
  tablesDir: string;
  /** The wide mapping made by Create Mapping in ux.ts. */
  wideMapping: string;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

const GOOD_PASSWORD = 'right-password';

/**
 * The labels of the rows right below `parent` (one level deeper, contiguous) in a tree pane,
 * in display order: only rendered rows count (the pane must show them).
 */
async function childLabels(rows: Locator, parent: string): Promise<string[]> {
  const items = await rows.evaluateAll((rs) =>
    rs.map((r) => ({ i: Number(r.getAttribute('data-index')), level: Number(r.getAttribute('aria-level')), label: r.querySelector('.label-name')?.textContent ?? '' })),
  );
  items.sort((a, b) => a.i - b.i);
  const at = items.findIndex((x) => x.label === parent);
  if (at < 0) return [];
  const out: string[] = [];
  const top = items[at] as { i: number; level: number };
  for (let k = at + 1; k < items.length; k++) {
    const it = items[k] as { i: number; level: number; label: string };
    if (it.i !== top.i + (k - at) || it.level <= top.level) break;
    if (it.level === top.level + 1) out.push(it.label);
  }
  return out;
}

/** Collapses a tree row when it is expanded (a click toggles). */
async function collapse(row: Locator): Promise<void> {
  if ((await row.count()) > 0 && (await row.first().getAttribute('aria-expanded')) === 'true') await row.first().click();
}

/** The input box of the quick input at the step titled `title`, with whether it masks what is typed. */
async function inputStep(p: Page, title: string): Promise<{ box: Locator; masked: boolean; value: string }> {
  const box = await quickInputStep(p, title);
  return { box, masked: (await box.getAttribute('type')) === 'password', value: await box.inputValue() };
}

/** A TCP relay on 127.0.0.1:`port` to `to` (the server "comes up" on a port nothing listened on); close() cuts its connections too. */
async function relay(port: number, to: { host: string; port: number }): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(to.port, to.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The rows of a report grid (cell texts by column name), the rendered ones. */
async function reportRows(frame: import('playwright-core').Frame, grid: string): Promise<Array<Record<string, string>>> {
  const names = await frame.locator(`[data-testid="${grid}"] .grid-header [role="columnheader"] button`).evaluateAll((bs) => bs.map((b) => b.firstChild?.textContent ?? ''));
  const rows = await frame.locator(`[data-testid="${grid}"] .grid-body [role="row"]`).evaluateAll((rs) =>
    rs
      .map((r) => ({ i: Number(r.getAttribute('aria-rowindex')), cells: [...r.querySelectorAll('[role="gridcell"]')].sort((a, b) => Number(a.getAttribute('aria-colindex')) - Number(b.getAttribute('aria-colindex'))).map((c) => (c.textContent ?? '').trim()) }))
      .sort((a, b) => a.i - b.i)
      .map((r) => r.cells),
  );
  return rows.map((cells) => Object.fromEntries(names.map((n, k) => [n, cells[k] ?? ''])));
}

export async function connectionsKeysHistorySteps(ctx: ConnectionsKeysHistoryContext): Promise<void> {
  const { page: p, step, shot } = ctx;
  const server = new URL(ctx.adminUrl);
  const pgHost = server.hostname;
  const pgPort = Number(server.port || 5432);
  const targets = paneRows(p, 'Targets');

  await step('[point 5] Add Postgres Connection field by field: host and port shown as typed, only the password masked; tested, then saved', async () => {
    await showPane(p, 'Targets');
    await clearNotifications(p);
    await runPaletteCommand(p, 'Delta Sync: Add Postgres Connection...');
    const name = await quickInputStep(p, 'Add Postgres Connection: name');
    await name.fill('shop-fields');
    await name.press('Enter');
    await quickInputStep(p, 'Add Postgres Connection: how');
    await p.locator('.quick-input-list .monaco-list-row', { hasText: 'Enter host, port, database, user and password' }).first().click();
    const answers: Array<[string, string]> = [['host', pgHost], ['port', String(pgPort)], ['database', 'shop'], ['user', 'app'], ['password', GOOD_PASSWORD]];
    for (const [k, [field, value]] of answers.entries()) {
      const { box, masked } = await inputStep(p, `Add Postgres Connection (${k + 1}/6): ${field}`);
      check(masked === (field === 'password'), `the ${field} field is ${masked ? '' : 'not '}masked`);
      await box.fill(value);
      if (field === 'port') await shot(p, '25-connection-form-port-shown');
      if (field === 'password') {
        check((await box.getAttribute('type')) === 'password' && (await box.inputValue()) === GOOD_PASSWORD, 'the typed password is not in a masked input');
        await shot(p, '25b-connection-form-password-masked');
      }
      await box.press('Enter');
    }
    await quickInputStep(p, 'Add Postgres Connection (6/6): sslmode');
    await p.locator('.quick-input-list .monaco-list-row', { has: p.locator('.label-name', { hasText: /^disable$/ }) }).first().click();
    // Tested before it is saved: the toast names the server it reached.
    const toast = p.locator('.notification-toast', { hasText: 'Saved "shop-fields"' }).first();
    await toast.waitFor({ timeout: 30_000 });
    const said = (await toast.textContent()) ?? '';
    check(/Connected to .*PostgreSQL/.test(said) && !said.includes(GOOD_PASSWORD), `the saved toast says "${said}"`);
    const row = rowLabelled(targets, p, 'shop-fields').first();
    await row.waitFor({ timeout: 20_000 });
    const desc = (await row.locator('.label-description').textContent()) ?? '';
    check(desc.includes(`${pgHost}:${pgPort}/shop`) && !desc.includes(GOOD_PASSWORD), `the shop-fields row reads "${desc}"`);
    await p.waitForTimeout(500); // the toast's slide-in, for the picture
    await shot(p, '25c-connection-form-saved');
  });

  await step('[point 5] Test Postgres Connection from the context menu of a good connection: connected', async () => {
    await showPane(p, 'Targets');
    // Room in the pane: the sandbox's and shop-local's rows folded.
    await collapse(targets.filter({ hasText: 'Sandbox (embedded Postgres)' }));
    await collapse(rowLabelled(targets, p, 'shop-local'));
    await clearNotifications(p);
    await contextMenu(p, rowLabelled(targets, p, 'shop-local').first(), 'Test Postgres Connection');
    const toast = p.locator('.notification-toast', { hasText: '"shop-local" connected to' }).first();
    await toast.waitFor({ timeout: 30_000 });
    check(/connected to .*PostgreSQL/.test((await toast.textContent()) ?? ''), `the test toast says "${await toast.textContent()}"`);
    await p.waitForTimeout(500); // the toast's slide-in, for the picture
    await shot(p, '26-test-connection-connected');
  });

  await step('[point 5] the error row of a connection whose server is down: Retry shows the same readable error; with a server up, Retry shows the next problem; Edit opens its form', async () => {
    await showPane(p, 'Targets');
    await clearNotifications(p);
    const conn = rowLabelled(targets, p, 'local-closed').first();
    await conn.waitFor({ timeout: 20_000 });
    const summary = (await conn.locator('.label-description').textContent()) ?? '';
    const closed = Number(/:(\d+)\//.exec(summary)?.[1]);
    check(closed > 0, `no port in the local-closed row's description "${summary}"`);
    if ((await conn.getAttribute('aria-expanded')) !== 'true') await conn.click();
    const down = `Nothing is listening on 127.0.0.1:${closed} — is Postgres running?`;
    const errorRow = (label: string | RegExp): Locator =>
      typeof label === 'string' ? rowLabelled(targets, p, label).first() : targets.filter({ has: p.locator('.label-name', { hasText: label }) }).first();
    await errorRow(down).waitFor({ timeout: 30_000 });
    check((await childLabels(targets, 'local-closed')).join('|') === down, `below local-closed: ${(await childLabels(targets, 'local-closed')).join(' | ')}`);
    // Its inline actions: Edit and Retry.
    const clickAction = async (row: Locator, action: string): Promise<void> => {
      await row.hover();
      const a = row.locator(`.action-label[aria-label^="${action}"]`).first();
      await a.waitFor({ state: 'visible', timeout: 10_000 });
      await a.click();
    };
    await clickAction(errorRow(down), 'Retry Connection');
    // Re-read: the same readable error, and nothing else below the connection.
    await errorRow(down).waitFor({ timeout: 30_000 });
    check((await childLabels(targets, 'local-closed')).join('|') === down, `after Retry, below local-closed: ${(await childLabels(targets, 'local-closed')).join(' | ')}`);
    await shot(p, '27-error-row-retry-still-down');
    // A server comes up on that port (a relay to the password-auth PostgreSQL): Retry now reaches it, and the saved password is wrong.
    const up = await relay(closed, { host: pgHost, port: pgPort });
    try {
      await clickAction(errorRow(down), 'Retry Connection');
      const wrong = errorRow(/password authentication failed for user "app"/i);
      await wrong.waitFor({ timeout: 30_000 });
      const label = (await wrong.locator('.label-name').textContent()) ?? '';
      check(!/ECONN|at Object|Error:|\n/.test(label), `the error row is raw: "${label}"`);
      check((await errorRow(down).count()) === 0, 'the "nothing is listening" row stayed after the server came up');
      await shot(p, '27b-error-row-retry-server-up');
      // Edit from the error row opens the connection's form at its first field, prefilled (Escape keeps everything).
      await clickAction(wrong, 'Edit Postgres Connection');
      const host = await inputStep(p, 'Edit Postgres Connection "local-closed" (1/6): host');
      check(host.value === '127.0.0.1' && !host.masked, `Edit from the error row shows the host as "${host.value}" (masked: ${host.masked})`);
      await p.keyboard.press('Escape');
      await p.locator('.quick-input-widget').first().waitFor({ state: 'hidden', timeout: 10_000 });
    } finally {
      await up.close();
    }
  });

  await step('[point 5] Edit Postgres Connection from the context menu turns the broken connection into a good one: the tree lists its schemas', async () => {
    await showPane(p, 'Targets');
    await clearNotifications(p);
    await contextMenu(p, rowLabelled(targets, p, 'local-closed').first(), 'Edit Postgres Connection');
    const verb = 'Edit Postgres Connection "local-closed"';
    const host = await inputStep(p, `${verb} (1/6): host`);
    check(host.value === '127.0.0.1' && !host.masked, `the host field shows "${host.value}" (masked: ${host.masked})`);
    await host.box.press('Enter');
    const port = await inputStep(p, `${verb} (2/6): port`);
    check(!port.masked && /^\d+$/.test(port.value), `the port field shows "${port.value}" (masked: ${port.masked})`);
    await port.box.fill(String(pgPort));
    await shot(p, '28-edit-connection-port');
    await port.box.press('Enter');
    for (const [n, field, expected] of [[3, 'database', 'shop'], [4, 'user', 'app']] as const) {
      const f = await inputStep(p, `${verb} (${n}/6): ${field}`);
      check(f.value === expected && !f.masked, `the ${field} field shows "${f.value}"`);
      await f.box.press('Enter');
    }
    const pw = await inputStep(p, `${verb} (5/6): password`);
    check(pw.masked, 'the password field is not masked');
    await pw.box.fill(GOOD_PASSWORD);
    await pw.box.press('Enter');
    await quickInputStep(p, `${verb} (6/6): sslmode`);
    await p.locator('.quick-input-list .monaco-list-row', { has: p.locator('.label-name', { hasText: /^disable$/ }) }).first().click();
    await p.locator('.notification-toast', { hasText: 'Saved "local-closed"' }).first().waitFor({ timeout: 30_000 });
    const conn = rowLabelled(targets, p, 'local-closed').first();
    await conn.filter({ hasText: `:${pgPort}/shop` }).waitFor({ timeout: 20_000 });
    if ((await conn.getAttribute('aria-expanded')) !== 'true') await conn.click();
    let below: string[] = [];
    for (let i = 0; i < 60; i++) {
      below = await childLabels(targets, 'local-closed');
      if (below.slice().sort().join() === 'public,sales') break;
      await p.waitForTimeout(250);
    }
    check(below.slice().sort().join() === 'public,sales', `below the edited local-closed: ${below.join(' | ')}`);
    await shot(p, '28b-edit-connection-schemas');
    await collapse(rowLabelled(targets, p, 'local-closed'));
  });

  await step('[point 7] Create Mapping: a table with struct, array and map columns; the key step lists only its scalar columns', async () => {
    const dir = path.join(ctx.tablesDir, 'nested_events');
    const prim = (name: string, type: 'long' | 'string' | 'double' | 'timestamp', nullable = true): WriterColumn => ({ name, type: { kind: 'primitive', name: type }, nullable });
    const w = await DeltaTableWriter.create(dir, { columns: [prim('event_id', 'long', false), prim('label', 'string'), prim('score', 'double'), prim('seen_at', 'timestamp')] });
    await w.append([1, 2, 3].map((i) => ({ event_id: BigInt(i), label: `event ${i}`, score: i / 4, seen_at: 1_664_307_886_618_568n + BigInt(i) })));
    const attrs: DeltaType = { kind: 'struct', fields: [{ name: 'color', type: { kind: 'primitive', name: 'string' }, nullable: true, metadata: {}, physicalName: 'color' }] };
    const tags: DeltaType = { kind: 'array', elementType: { kind: 'primitive', name: 'string' }, containsNull: true };
    const props: DeltaType = { kind: 'map', keyType: { kind: 'primitive', name: 'string' }, valueType: { kind: 'primitive', name: 'long' }, valueContainsNull: true };
    await w.addColumns([{ name: 'attrs', type: attrs }, { name: 'tags', type: tags }, { name: 'props', type: props }]);
    await showPane(p, 'Sources');
    await runPaletteCommand(p, 'Delta Sync: Refresh Sources');
    await rowLabelled(paneRows(p, 'Sources'), p, 'nested_events').first().waitFor({ timeout: 30_000 });
    await runPaletteCommand(p, 'Delta Sync: Create Mapping...');
    await quickInputStep(p, 'Create Mapping (1/7)');
    await p.locator('.quick-input-list .monaco-list-row', { has: p.locator('.label-name', { hasText: /^nested_events$/ }) }).first().click();
    await quickInputStep(p, 'Create Mapping (2/7)');
    await p.locator('.quick-input-list .monaco-list-row', { has: p.locator('.label-name', { hasText: /^sandbox$/ }) }).first().click();
    await (await quickInputStep(p, 'Create Mapping (3/7)')).press('Enter');
    const key = await quickInputStep(p, 'Create Mapping (4/7)');
    const offered = (await p.locator('.quick-input-list .monaco-list-row .label-name').allTextContents()).map((t) => t.trim());
    check(offered.slice().sort().join() === ['event_id', 'label', 'score', 'seen_at'].sort().join(), `the key step offers ${offered.join(', ')}, not just the scalar columns`);
    const placeholder = (await key.getAttribute('placeholder')) ?? (await key.getAttribute('aria-label')) ?? '';
    check(placeholder.includes('not offered (struct, array or map): attrs, tags, props'), `the key step does not say which columns it leaves out: "${placeholder}"`);
    await shot(p, '29-create-mapping-scalar-keys-only');
    await p.keyboard.press('Escape');
    await p.locator('.quick-input-widget').first().waitFor({ state: 'hidden', timeout: 10_000 });
    check(!fs.existsSync(path.join(ctx.workspace, '.delta-sync', 'nested-events.json')), 'Escape at the key step wrote a mapping');
  });

  await step('[point 6] Show Sync History: the stopped big-events shows its own run, cancelled; the wide mapping its two succeeded runs', async () => {
    const history = async (mapping: string): Promise<{ rows: Array<Record<string, string>>; facts: string; frame: import('playwright-core').Frame }> => {
      await showPane(p, 'Mappings');
      await contextMenu(p, await scrollToRow(p, 'Mappings', rowLabelled(paneRows(p, 'Mappings'), p, mapping)), 'Show Sync History');
      const frame = await webviewFrame(p, `h1:text-is("Sync history: ${mapping}")`, 60_000);
      await frame.locator('[data-testid="report-runs"] .grid-body [role="row"]').first().waitFor({ timeout: 30_000 });
      const rows = await reportRows(frame, 'report-runs');
      await waitForText(frame, '[data-testid="report-runs"] h2', `Runs (${rows.length})`);
      return { rows, facts: (await frame.locator('[data-testid="report-facts"]').textContent()) ?? '', frame };
    };
    const big = await history('big-events');
    check(big.rows.length === 1 && big.rows[0]?.status === 'cancelled' && /^snapshot v/.test(big.rows[0]?.versions ?? ''), `big-events' runs: ${JSON.stringify(big.rows)}`);
    check(/none yet/.test(big.facts), `big-events' facts after its stopped load: ${big.facts}`);
    await shot(p, '30-sync-history-cancelled');
    await p.locator('.tabs-container .tab', { hasText: 'Sync history: big-events' }).first().click({ button: 'middle' });
    const wide = await history(ctx.wideMapping);
    const statuses = wide.rows.map((r) => r.status);
    const versions = wide.rows.map((r) => r.versions);
    // Its initial load and its incremental sync, both succeeded; not big-events' cancelled run.
    check(wide.rows.length >= 2 && statuses.every((s) => s === 'succeeded'), `${ctx.wideMapping}'s runs: ${JSON.stringify(wide.rows)}`);
    check(versions.includes('snapshot v1') && versions.includes('checkpoint v1 → v2'), `${ctx.wideMapping}'s runs cover ${versions.join(', ')}`);
    check(/version 2; up to date/.test(wide.facts), `${ctx.wideMapping}'s facts: ${wide.facts}`);
    await shot(p, '30b-sync-history-wide');
    await p.locator('.tabs-container .tab', { hasText: `Sync history: ${ctx.wideMapping}` }).first().click({ button: 'middle' });
  });

  await step('[point 5] Remove Folder from Sources: its tables leave the tree and deltaSync.deltaFolders; no file is deleted', async () => {
    const settingsFile = path.join(ctx.workspace, '.vscode', 'settings.json');
    const before = fs.readFileSync(settingsFile, 'utf8');
    const folders = (): unknown => (JSON.parse(fs.readFileSync(settingsFile, 'utf8')) as Record<string, unknown>)['deltaSync.deltaFolders'];
    check(JSON.stringify(folders()).includes(JSON.stringify(ctx.tablesDir)), `deltaSync.deltaFolders is ${JSON.stringify(folders())} before the removal`);
    await showPane(p, 'Sources');
    const sources = paneRows(p, 'Sources');
    const folderName = path.basename(ctx.tablesDir);
    await contextMenu(p, rowLabelled(sources, p, folderName).first(), 'Remove Folder from Sources');
    for (const label of [folderName, 'wide_events', 'nested_events']) await rowLabelled(sources, p, label).first().waitFor({ state: 'detached', timeout: 20_000 });
    let listed: unknown = undefined;
    for (let i = 0; i < 50; i++) {
      listed = folders();
      if (!JSON.stringify(listed ?? []).includes(JSON.stringify(ctx.tablesDir))) break;
      await p.waitForTimeout(200);
    }
    check(!JSON.stringify(listed ?? []).includes(JSON.stringify(ctx.tablesDir)), `deltaSync.deltaFolders still lists the folder: ${JSON.stringify(listed)}`);
    check(fs.existsSync(path.join(ctx.tablesDir, 'wide_events', '_delta_log')), 'the removed folder\'s tables were deleted from disk');
    await shot(p, '31-remove-folder-from-sources');
    // Put it back (as the settings were), so later steps see the tables.
    fs.writeFileSync(settingsFile, before);
    await runPaletteCommand(p, 'Delta Sync: Refresh Sources');
    await rowLabelled(sources, p, folderName).first().waitFor({ timeout: 30_000 });
  });
}
