import * as assert from 'node:assert/strict';
import {
  HostToWebview,
  WebviewToHost,
  idleProgress,
  parseHostToWebview,
  parseWebviewToHost,
  type PreviewPage,
  type PreviewSummary,
  type ProgressSnapshot,
} from '../../src/protocol/messages';

// Test-data builders: each message kind once, with every optional part filled.
const running: ProgressSnapshot = {
  ...idleProgress(1_700_000_000_000),
  runId: 'run-1',
  mapping: 'orders',
  mode: 'incremental',
  status: 'running',
  phase: 'apply',
  fromVersion: 3,
  toVersion: 9,
  version: 5,
  rowsRead: 1200,
  rowsApplied: 1100,
  totalRows: 5000,
  rowsPerSecond: 850.5,
  etaSeconds: 4.6,
  startedAt: 1_700_000_000_000,
  warnings: ['slow batch'],
  error: { message: 'boom', kind: 'target', hint: 'check the table' },
  throughput: [[1_700_000_000_500, 800], [1_700_000_001_000, 850.5]],
};
const summary: PreviewSummary = {
  mapping: 'orders', sourceTable: '/t/orders', targetTable: 'public.orders', fromVersion: null, toVersion: 4, inserts: 2, updates: 1, deletes: 1,
  unchanged: 7, mode: 'initial', targetMissing: true, ddl: 'CREATE TABLE "public"."orders" ("id" bigint PRIMARY KEY);', onBranch: true,
  warnings: [
    { check: 'null-key', column: 'id', count: 2, message: 'Key column "id" is NULL.', samples: [{ id: null }, { id: null }] },
    { check: 'duplicate-key', count: 1, message: 'Several source rows have the same key.', samples: [{ id: '9223372036854775807' }] },
  ],
};
const page: PreviewPage = {
  filter: 'all',
  search: 'alice',
  offset: 0,
  total: 3,
  columns: [
    { name: 'id', sourceType: 'long', targetType: 'bigint', isKey: true },
    { name: 'amount', sourceType: 'decimal(38,18)', targetType: null, isKey: false },
  ],
  rows: [
    // A 64-bit id and an 18-digit decimal cross as strings, exactly.
    { op: 'insert', cells: ['9223372036854775807', '12345678901234567890.123456789012345678'], before: null },
    { op: 'update', cells: ['2', null], before: ['2', '1.50'], changed: ['amount'] },
    { op: 'delete', cells: ['3', '0.00'], before: null },
  ],
};

const webviewMessages: WebviewToHost[] = [
  { type: 'ready', panel: 'preview' },
  { type: 'ready', panel: 'progress' },
  { type: 'preview/page', id: 'r1', filter: 'update', offset: 100, limit: 100 },
  { type: 'preview/page', id: 'r6', filter: 'all', offset: 0, limit: 500, search: 'alice' },
  { type: 'preview/apply', id: 'r2' },
  { type: 'preview/apply', id: 'r7', acknowledged: true },
  { type: 'preview/copy', id: 'r8', text: '{"id":"9223372036854775807"}' },
  { type: 'preview/version', id: 'r14', toVersion: 6 },
  { type: 'preview/copySql', id: 'r12', row: { op: 'update', cells: ['1', 'new'], before: ['1', 'old'], changed: ['note'] } },
  { type: 'preview/exportCsv', id: 'r9', filter: 'update', search: 'x' },
  { type: 'preview/cancel', id: 'r3' },
  { type: 'preview/onBranch', id: 'r5' },
  { type: 'preview/copyConnection', id: 'r13' },
  { type: 'run/stop', id: 'r4' },
  { type: 'run/openSetting', id: 'r15' },
  { type: 'rows/page', id: 'r11', offset: 200, limit: 200 },
  { type: 'rows/page', id: 'r12', offset: 0, limit: 100, sort: { column: 'amount', dir: 'desc' } },
];
const hostMessages: HostToWebview[] = [
  { type: 'init', state: { panel: 'preview', mapping: 'orders', filter: 'update', offset: 200, search: 'alice' }, preview: summary, progress: null, pageSize: 250 },
  { type: 'init', state: { panel: 'preview', mapping: 'orders' }, preview: {
    ...summary,
    branch: { name: 'delta-sync-preview-orders-20260101-000000', id: 'br-a-1', parent: 'main', connection: 'postgresql://app:********@ep-x.neon.tech/appdb', ran: 'incremental sync to version 4: 2 inserted, 1 updated, 1 deleted' },
  }, progress: null },
  { type: 'init', state: { panel: 'progress', runId: null }, preview: null, progress: idleProgress(1) },
  { type: 'init', state: { panel: 'progress', runId: 'run-1' }, preview: null, progress: running, history: { mapping: 'orders', runs: [
    { runId: '7', mode: 'incremental', status: 'succeeded', fromVersion: '4', toVersion: '9', rows: '8', startedAt: '2026-01-01 00:00:00+00', finishedAt: '2026-01-01 00:00:01+00', error: null },
  ] } },
  { type: 'progress', snapshot: running },
  // A failed run whose error names a mapping key (with its file) or a VS Code setting: the panel offers Open Setting.
  { type: 'progress', snapshot: { ...running, status: 'failed', error: { message: 'The batch would delete 80% of the rows.', kind: 'mapping', hint: 'Raise safety.maxDeleteShare.', setting: { scope: 'mapping', key: 'safety.maxDeleteShare', file: '/ws/.delta-sync/orders.json' } } } },
  { type: 'progress', snapshot: { ...running, status: 'failed', error: { message: 'Page size too big.', kind: 'usage', setting: { scope: 'vscode', key: 'deltaSync.preview.pageSize' } } } },
  { type: 'history', history: { mapping: 'orders', runs: [] } },
  { type: 'history', history: { mapping: 'orders', runs: [
    { runId: '8', mode: 'incremental', status: 'succeeded', fromVersion: '10', toVersion: '10', rows: '12', startedAt: '2026-01-01 00:00:00+00', finishedAt: null, error: null,
      auto: { path: 'incremental', reason: 'incremental: 12 changes, 12% of 100 rows (at most auto.maxChangeShare 30%)' } },
  ] } },
  { type: 'response', id: 'r1', ok: true, result: { type: 'previewPage', page } },
  { type: 'response', id: 'r2', ok: true, result: { type: 'accepted' } },
  { type: 'response', id: 'r9', ok: true, result: { type: 'exported', file: '/tmp/orders.csv', rows: 3 } },
  { type: 'response', id: 'r10', ok: true, result: { type: 'exported', file: null, rows: 0 } },
  { type: 'init', state: { panel: 'rows', connection: 'local', schema: 'public', table: 'orders' }, preview: null, progress: null, pageSize: 200 },
  { type: 'response', id: 'r11', ok: true, result: { type: 'rowsPage', page: { table: 'public.orders', offset: 200, total: 201, columns: [{ name: 'id', type: 'bigint' }, { name: 'note', type: 'text' }], rows: [['9223372036854775807', null]] } } },
  {
    type: 'init',
    state: { panel: 'report', title: 'Dry run: orders' },
    preview: null,
    progress: null,
    report: {
      kind: 'dry-run',
      title: 'Dry run: orders',
      subtitle: 'incremental: checkpoint v1 → v2',
      note: 'nothing was written',
      facts: [{ label: 'Inserted', value: '1,550' }],
      grids: [{ id: 'plan', title: 'Rows of the plan', columns: [{ name: 'op', frozen: true }, { name: 'id', numeric: true }], rows: [['insert', '9223372036854775807'], ['delete', null]], more: '…' }],
    },
  },
  { type: 'response', id: 'r13', ok: true, result: { type: 'copied', text: 'DELETE FROM "t" WHERE "id" = E\'1\'::bigint;' } },
  { type: 'response', id: 'r3', ok: false, error: { message: 'No sync is running.', kind: 'usage' } },
];

/** What postMessage does to a message: a JSON round trip. */
const overTheWire = (m: unknown): unknown => JSON.parse(JSON.stringify(m));

describe('host <-> webview protocol', () => {
  for (const m of webviewMessages) {
    it(`webview -> host '${m.type}'${'id' in m ? ` (${m.id})` : ''} survives the wire unchanged`, () => {
      assert.deepEqual(parseWebviewToHost(overTheWire(m)), m);
    });
  }
  for (const m of hostMessages) {
    it(`host -> webview '${m.type}'${'id' in m ? ` (${m.id})` : ''} survives the wire unchanged`, () => {
      assert.deepEqual(parseHostToWebview(overTheWire(m)), m);
    });
  }

  it('covers every message type of both unions', () => {
    const w = new Set(WebviewToHost.options.map((o) => o.shape.type.value));
    assert.deepEqual(new Set(webviewMessages.map((m) => m.type)), w);
    assert.deepEqual(new Set(hostMessages.map((m) => m.type)), new Set(['init', 'progress', 'history', 'response']));
    assert.equal(HostToWebview.options.length, 4);
  });

  it('rejects requests without an id', () => {
    assert.equal(parseWebviewToHost({ type: 'preview/apply' }), undefined);
    assert.equal(parseWebviewToHost({ type: 'run/stop', id: '' }), undefined);
  });

  it('rejects a webview naming a command to run', () => {
    assert.equal(parseWebviewToHost({ type: 'command', id: 'r1', command: 'workbench.action.terminal.new' }), undefined);
  });

  it('rejects an unknown check kind and a search longer than 200 characters', () => {
    const bad = overTheWire({ type: 'init', state: { panel: 'preview', mapping: 'orders' }, preview: { ...summary, warnings: [{ check: 'rm -rf', count: 1, message: 'x', samples: [] }] }, progress: null });
    assert.equal(parseHostToWebview(bad), undefined);
    assert.equal(parseWebviewToHost({ type: 'preview/page', id: 'r1', filter: 'all', offset: 0, limit: 10, search: 'x'.repeat(201) }), undefined);
  });

  it("rejects an error's setting that is a mapping key without its file, a VS Code setting outside deltaSync.*, or another scope", () => {
    const withSetting = (setting: unknown): unknown => overTheWire({ type: 'progress', snapshot: { ...running, status: 'failed', error: { message: 'x', setting } } });
    assert.equal(parseHostToWebview(withSetting({ scope: 'mapping', key: 'deadLetter' })), undefined);
    assert.equal(parseHostToWebview(withSetting({ scope: 'mapping', key: 'deadLetter', file: '' })), undefined);
    assert.equal(parseHostToWebview(withSetting({ scope: 'vscode', key: 'terminal.integrated.shell.linux' })), undefined);
    assert.equal(parseHostToWebview(withSetting({ scope: 'command', key: 'workbench.action.terminal.new' })), undefined);
    assert.ok(parseHostToWebview(withSetting({ scope: 'mapping', key: 'deadLetter', file: '/ws/m.json' })));
  });

  it('Open Setting names no setting or file: the request carries only its id', () => {
    const parsed = parseWebviewToHost({ type: 'run/openSetting', id: 'r1', setting: { scope: 'vscode', key: 'deltaSync.x' }, file: '/etc/passwd' });
    assert.deepEqual(parsed, { type: 'run/openSetting', id: 'r1' });
  });

  it('rejects a Show Rows sort direction other than asc/desc', () => {
    assert.equal(parseWebviewToHost({ type: 'rows/page', id: 'r1', offset: 0, limit: 10, sort: { column: 'id', dir: 'DESC; DROP' } }), undefined);
  });

  it('rejects page sizes outside 1..1000 and negative offsets', () => {
    assert.equal(parseWebviewToHost({ type: 'preview/page', id: 'r1', filter: 'all', offset: 0, limit: 100000 }), undefined);
    assert.equal(parseWebviewToHost({ type: 'preview/page', id: 'r1', filter: 'all', offset: -1, limit: 10 }), undefined);
  });

  it('rejects a failed response without an error and a successful one without a result', () => {
    assert.equal(parseHostToWebview({ type: 'response', id: 'r1', ok: false }), undefined);
    assert.equal(parseHostToWebview({ type: 'response', id: 'r1', ok: true }), undefined);
  });

  it('rejects numeric cells, so 64-bit values cannot arrive as lossy numbers', () => {
    const bad = overTheWire({ type: 'response', id: 'r1', ok: true, result: { type: 'previewPage', page } }) as { result: { page: { rows: Array<{ cells: unknown[] }> } } };
    bad.result.page.rows[0]!.cells[0] = 9223372036854775807;
    assert.equal(parseHostToWebview(bad), undefined);
  });

  it('never throws on garbage', () => {
    for (const g of [null, undefined, 42, 'ready', [], { type: 42 }]) {
      assert.equal(parseWebviewToHost(g), undefined);
      assert.equal(parseHostToWebview(g), undefined);
    }
  });
});
