import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applySampleChanges, CUSTOMER_KEY } from '../../src/fixtures/customerProfiles';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import { silentLogger } from '../../src/sync/ports/Logger';
import { openSource } from '../../src/sync/open/openSource';
import { MappingsModel, statusPhrase, statusRows } from '../../src/views/MappingsModel';
import { planCsv } from '../../src/views/PreviewSource';
import { previewColumns, RunnerPreviewSource } from '../../src/views/RunnerPreviewSource';
import { RunController } from '../../src/views/RunController';
import { lockSandbox, SyncEngine } from '../../src/engine/SyncEngine';
import { listTargetTables, sampleRows } from '../../src/views/targetTables';
import { sampleMapping, writeSampleTable } from '../../src/views/writeSampleTable';

/**
 * The extension's engine glue against the real engine: a sample Delta table written by the
 * fixture writer and the embedded PGlite sandbox (in memory). No VS Code.
 */
async function deltaRows(table: string): Promise<number> {
  const snap = await (await DeltaTable.open(table)).snapshot();
  let n = 0;
  for await (const b of snap.rows()) n += b.length;
  return n;
}

describe('extension sync engine glue (sample table -> sandbox)', function () {
  this.timeout(180_000);
  let tmp: string;
  let engine: SyncEngine;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-ext-engine-'));
    engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async () => undefined, logger: silentLogger });
  });
  after(async () => {
    await engine.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('previews an initial load page by page, applies it, then previews the sample change as 3 inserts, 3 updates, 2 deletes', async () => {
    const { path: table, created } = await writeSampleTable(path.join(tmp, 'delta-sample'), 60);
    assert.equal(created, true);
    const mappingsDir = path.join(tmp, '.delta-sync');
    fs.mkdirSync(mappingsDir, { recursive: true });
    const file = path.join(mappingsDir, 'customer-profiles.json');
    fs.writeFileSync(file, JSON.stringify(sampleMapping(path.relative(mappingsDir, table))));
    const model = new MappingsModel(() => [tmp], () => '.delta-sync', (m) => engine.withRunner(m, (h) => h.runner.status()));
    const [node] = await model.children();
    assert.equal(node?.kind, 'mapping');
    if (node?.kind !== 'mapping') return;
    assert.equal(node.mapping.key?.[0], CUSTOMER_KEY);
    const expectedRows = await deltaRows(table);

    const h = await engine.openRunner(node.mapping);
    const first = await h.runner.preview({ limit: 25 });
    const columns = await previewColumns(node.mapping, await openSource(node.mapping.source), first.toVersion, [CUSTOMER_KEY]);
    let applied = 0;
    const src = new RunnerPreviewSource(node.mapping, first, columns, h.runner, async () => { applied++; }, () => undefined);
    assert.equal(src.summary.mode, 'initial');
    assert.equal(src.summary.targetMissing, true);
    assert.equal(src.summary.inserts, expectedRows);
    assert.equal(src.summary.updates + src.summary.deletes, 0);
    const p1 = await src.page('all', 0, 25);
    const p3 = await src.page('insert', 50, 25);
    assert.equal(p1.rows.length, 25);
    assert.equal(p3.rows.length, expectedRows - 50);
    assert.equal(p3.total, expectedRows);
    const keyAt = columns.findIndex((c) => c.isKey);
    assert.notEqual(p1.rows[0]?.cells[keyAt], p3.rows[0]?.cells[keyAt], 'pages hold different rows');
    await src.apply();
    assert.equal(applied, 1);

    const result = await h.runner.run({ mode: 'initial', toVersion: first.toVersion });
    assert.equal(result.inserted, expectedRows);
    const tables = await listTargetTables(h.target.pool, true);
    assert.deepEqual(tables.map((t) => [t.schema, t.table, t.rows]), [['public', 'customer_profiles', String(expectedRows)]]);

    // Status in the Mappings tree: fetched in the background (again, after a run), then up to date.
    model.invalidate(file);
    const settled = new Promise<void>((resolve) => model.onStatusChange(resolve));
    assert.equal((await model.children()).find((n) => n.kind === 'mapping')?.kind, 'mapping');
    await settled;
    const [after] = await model.children();
    assert.equal(after?.kind === 'mapping' ? statusPhrase(after.status) : '', `up to date · v${first.toVersion}`);
    const rows = await model.children(after);
    assert.ok(rows.some((r) => r.kind === 'status' && r.label === 'Last run' && r.detail.startsWith('succeeded')));

    await applySampleChanges(table);
    const next = await h.runner.preview({ limit: 100 });
    const incr = new RunnerPreviewSource(node.mapping, next, columns, h.runner, async () => undefined, () => undefined);
    assert.deepEqual([incr.summary.mode, incr.summary.inserts, incr.summary.updates, incr.summary.deletes], ['incremental', 3, 3, 2]);
    const updates = await incr.page('update', 0, 10);
    assert.equal(updates.rows.length, 3);
    for (const r of updates.rows) {
      assert.ok(r.changed && r.changed.length > 0, 'an update lists its changed columns');
      for (const c of r.changed ?? []) {
        const i = columns.findIndex((col) => col.name === c);
        assert.notEqual(r.before?.[i], r.cells[i], `${c} differs old -> new`);
      }
    }
    const deletes = await incr.page('delete', 0, 10);
    assert.deepEqual(deletes.rows.map((r) => r.op), ['delete', 'delete']);
    // Search by key (host-side), and the plan as CSV through pages of 2: a header and one line per update.
    const someKey = updates.rows[0]?.cells[keyAt] as string;
    const found = await incr.page('all', 0, 10, someKey);
    assert.deepEqual([found.total, found.rows.map((r) => r.cells[keyAt])], [1, [someKey]]);
    const csv: string[] = [];
    for await (const line of planCsv(incr, 'update', undefined, 2)) csv.push(line);
    assert.equal(csv.length, 4);
    assert.match(csv[0] ?? '', /^op,customer_id,/);
    assert.deepEqual(csv.slice(1).map((l) => l.split(',')[0]), ['update', 'update', 'update']);
    await h.release();
  });

  it('keeps one sandbox: every target handle shares the same pool', async () => {
    const a = await engine.openTarget('sandbox');
    const b = await engine.openTarget('sandbox');
    assert.equal(a.pool, b.pool);
    assert.equal(a.kind, 'sandbox');
    const sample = await sampleRows(a.pool, 'public', 'customer_profiles', 5);
    assert.equal(sample.columns[0], CUSTOMER_KEY);
    assert.equal(sample.rows.length, 5);
    await a.release();
    await b.release();
    // Still usable after release: the sandbox closes only with the engine.
    assert.equal((await listTargetTables(b.pool, true)).length, 1);
  });

  it('Stop during a run aborts it through the runner\'s signal: the run ends cancelled and nothing is checkpointed', async () => {
    const { path: table } = await writeSampleTable(path.join(tmp, 'stop-sample'), 60);
    const mapping = parseMapping({ ...sampleMapping(table), name: 'stop-test', target: { connection: 'sandbox', schema: 'public', table: 'stop_test' } });
    const runs = new RunController();
    const statuses: string[] = [];
    runs.onSnapshot((snap) => statuses.push(snap.status));
    const run = runs.start(mapping.name, 'initial', (signal, onEvent) =>
      engine.withRunner(mapping, async (h) => {
        await h.runner.run({ mode: 'initial', signal, onEvent });
      }),
    );
    assert.equal(runs.stop(), true);
    await run; // a cancelled run resolves
    assert.equal(runs.current().status, 'cancelled');
    assert.ok(statuses.includes('stopping'));
    const status = await engine.withRunner(mapping, (h) => h.runner.status());
    assert.equal(status.checkpoint, null);
  });

  it('shows an unreadable status as a row with the error, not a failure', () => {
    const rows = statusRows('/x.json', { state: 'error', message: 'Unknown connection "neon".' });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.kind === 'status' && rows[0].detail, 'Unknown connection "neon".');
    assert.equal(statusPhrase({ state: 'error', message: 'x' }), 'status unavailable');
  });

  it('the sample mapping is valid and keyed by customer_id', () => {
    const m = parseMapping(sampleMapping('../delta-sample/customer_profiles'), path.join(tmp, '.delta-sync', 'x.json'));
    assert.deepEqual(m.key, [CUSTOMER_KEY]);
    assert.equal(m.target.connection, 'sandbox');
  });
});

describe('sandbox lock (one process per PGlite data directory)', () => {
  let dir: string;
  beforeEach(() => {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dns-lock-')), 'sandbox');
  });

  it('refuses a second live process and names it', async () => {
    const release = await lockSandbox(dir, process.pid);
    // The parent of this test process is alive and is not us: it plays the other window.
    await assert.rejects(lockSandbox(dir, process.ppid), (e: unknown) => e instanceof Error && e.message.includes(`process ${process.pid}`));
    await release();
    const again = await lockSandbox(dir, process.ppid);
    await again();
  });

  it('takes over a lock whose process is gone', async () => {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.writeFileSync(`${dir}.lock`, '2147483646'); // no such pid
    const release = await lockSandbox(dir, process.pid);
    assert.equal(fs.readFileSync(`${dir}.lock`, 'utf8'), String(process.pid));
    await release();
    assert.equal(fs.existsSync(`${dir}.lock`), false);
  });
});
