import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import type { PipelineState } from '../../src/sync/ports/pipelineState';
import type { RunHistoryEntry } from '../../src/sync/ports/runLog';
import {
  MappingsModel,
  mappingDescription,
  mappingLook,
  mappingSummary,
  mappingTooltip,
  statusPhrase,
  statusRows,
  type MappingNode,
  type MappingStatus,
  type StatusEntry,
} from '../../src/views/MappingsModel';
import { slugFor } from '../../src/views/slugFor';

/** A status as the runner reports it; a test states only the fields that matter to it. */
function aStatus(fields: Partial<MappingStatus> = {}): MappingStatus {
  return { pipeline: 'orders', source: '/t/orders', target: 'sandbox:public.orders', latestVersion: 0, checkpoint: null, lag: null, targetExists: false, runs: [], state: { phase: 'not-loaded' }, ...fields };
}

function aRun(fields: Partial<RunHistoryEntry> = {}): RunHistoryEntry {
  return { runId: '1', mode: 'incremental', fromVersion: '3', toVersion: '4', rows: '10', status: 'succeeded', error: null, startedAt: '2024-05-01 10:00', finishedAt: '2024-05-01 10:01', ...fields };
}

const ok = (status: MappingStatus): StatusEntry => ({ state: 'ok', status });

function mappingNode(status: MappingStatus): MappingNode & { kind: 'mapping' } {
  const mapping = parseMapping({ name: 'orders', source: { type: 'delta', path: '/t/orders' }, target: { connection: 'sandbox', table: 'orders' } });
  return { kind: 'mapping', file: '/ws/.delta-sync/orders.json', mapping, status: ok(status) };
}

/** The status rows as `label: detail [icon]`, the way a reader of the tree sees them. */
function shown(entry: StatusEntry): string[] {
  return statusRows('/x.json', entry).map((n) => (n.kind === 'status' ? `${n.label}: ${n.detail} [${n.icon}]` : n.kind));
}

describe('mappings model (.delta-sync files)', () => {
  let ws: string;
  beforeEach(() => {
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'mappings-model-'));
  });
  afterEach(() => fs.rmSync(ws, { recursive: true, force: true }));

  it('shows nothing when the mappings folder does not exist yet', async () => {
    assert.deepEqual(await new MappingsModel(() => [ws], () => '.delta-sync').children(), []);
  });

  it('lists valid mappings with a summary and invalid files with their error, sorted by file', async () => {
    const dir = path.join(ws, '.delta-sync');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ name: 'orders', source: { type: 'delta', path: '../tables/orders' }, target: { connection: 'neon', table: 'orders' } }));
    fs.writeFileSync(path.join(dir, 'a.json'), '{ "name": "x", }');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
    const nodes = await new MappingsModel(() => [ws], () => '.delta-sync').children();
    assert.deepEqual(nodes.map((n) => n.kind), ['invalid', 'mapping']);
    const [bad, good] = nodes;
    assert.match(bad?.kind === 'invalid' ? bad.error : '', /not valid JSON/);
    assert.ok(good?.kind === 'mapping');
    assert.equal(good.mapping.source.type === 'delta' && good.mapping.source.path, path.join(ws, 'tables', 'orders'));
    assert.equal(mappingSummary(good.mapping), 'orders → neon:public.orders');
  });

  it('an invalid mapping names the key its first issue is about, which its row opens (Open Setting); a file that is not JSON names none', async () => {
    const dir = path.join(ws, '.delta-sync');
    fs.mkdirSync(dir);
    const base = { name: 'orders', source: { type: 'delta', path: '../tables/orders' }, target: { connection: 'neon', table: 'orders' } };
    fs.writeFileSync(path.join(dir, 'a-share.json'), JSON.stringify({ ...base, safety: { maxDeleteShare: 2 } }));
    fs.writeFileSync(path.join(dir, 'b-key.json'), JSON.stringify({ ...base, key: [42] }));
    fs.writeFileSync(path.join(dir, 'c-broken.json'), '{ "name": "x", }');
    const nodes = await new MappingsModel(() => [ws], () => '.delta-sync').children();
    const settings = nodes.map((n) => (n.kind === 'invalid' ? [path.basename(n.file), n.setting ?? null] : [n.kind]));
    assert.deepEqual(settings, [
      ['a-share.json', { scope: 'mapping', key: 'safety.maxDeleteShare' }],
      // An issue inside the key array (key[0]): the key that holds it.
      ['b-key.json', { scope: 'mapping', key: 'key' }],
      ['c-broken.json', null],
    ]);
    const share = nodes[0];
    assert.match(share?.kind === 'invalid' ? share.error : '', /safety\.maxDeleteShare/);
  });

  it('derives mapping names that pass the schema from any folder name', () => {
    assert.equal(slugFor('Customer Profiles'), 'customer_profiles');
    assert.equal(slugFor('2024-sales'), 't_2024_sales');
    assert.equal(slugFor('___'), 't_table');
  });
});

describe('mappings tree shows the engine\'s pipeline state as is', () => {
  const errored: PipelineState = {
    phase: 'errored',
    version: 4,
    error: { message: 'relation "public.orders" does not exist', kind: 'target', retry: 'manual', hint: 'Run an initial load to create the table.' },
    at: '2024-05-01 10:02',
  };

  it('not-loaded: no checkpoint, and the way to a first load', () => {
    const e = ok(aStatus({ state: { phase: 'not-loaded' }, latestVersion: 5 }));
    assert.equal(statusPhrase(e), 'not loaded yet');
    assert.deepEqual(shown(e), ['Checkpoint: none: run Preview, then Apply [info]']);
    assert.equal(mappingLook(e), 'plain');
  });

  it('running: the mode and start of the run, and a running mapping row', () => {
    const e = ok(aStatus({ state: { phase: 'running', runId: '42', mode: 'initial', startedAt: '2024-05-01 10:00' } }));
    assert.equal(statusPhrase(e), 'running · initial');
    assert.deepEqual(shown(e), ['Checkpoint: none: run Preview, then Apply [info]', 'Running: initial · since 2024-05-01 10:00 [running]']);
    assert.equal(mappingLook(e), 'running');
  });

  it('up-to-date: the checkpoint version, and a source that is up to date', () => {
    const e = ok(aStatus({ state: { phase: 'up-to-date', version: 7 } }));
    assert.equal(statusPhrase(e), 'up to date · v7');
    assert.deepEqual(shown(e), ['Checkpoint: v7 [ok]', 'Source: v7 · up to date [ok]']);
    assert.equal(mappingLook(e), 'plain');
  });

  it('behind: the versions behind as the engine counted them', () => {
    const e = ok(aStatus({ state: { phase: 'behind', version: 7, latestVersion: 10, versionsBehind: 3 } }));
    assert.equal(statusPhrase(e), '3 versions behind');
    assert.deepEqual(shown(e), ['Checkpoint: v7 [ok]', 'Source: v10 · 3 versions behind [behind]']);
  });

  it('errored: the kind in the description, the error and hint in the tooltip and as rows', () => {
    const node = mappingNode(aStatus({ state: errored, runs: [aRun({ status: 'failed', error: 'relation "public.orders" does not exist' })] }));
    assert.equal(mappingLook(node.status), 'failed');
    assert.equal(mappingDescription(node), 'failed · target · orders → sandbox:public.orders');
    const tooltip = mappingTooltip(node);
    assert.match(tooltip, /target: relation "public\.orders" does not exist/);
    assert.match(tooltip, /Hint: Run an initial load to create the table\./);
    assert.match(tooltip, /Retry: manual/);
    assert.deepEqual(shown(node.status as StatusEntry), [
      'Checkpoint: v4 [ok]',
      'Error: target: relation "public.orders" does not exist [error]',
      'Hint: Run an initial load to create the table. [info]',
      'Last run: failed · incremental · 10 rows · 2024-05-01 10:01 [error]',
    ]);
    const errorRow = statusRows('/x.json', node.status).find((n) => n.kind === 'status' && n.label === 'Error');
    assert.match(errorRow?.kind === 'status' ? (errorRow.tooltip ?? '') : '', /Hint: Run an initial load/);
  });

  it('Last run says "initial load" (not the engine\'s initial-swap) and groups the row count', () => {
    const e = ok(aStatus({ state: { phase: 'up-to-date', version: 1 }, runs: [aRun({ mode: 'initial-swap', fromVersion: null, toVersion: '1', rows: '1200' })] }));
    assert.ok(shown(e).includes('Last run: succeeded · initial load · 1,200 rows · 2024-05-01 10:01 [history]'), shown(e).join('\n'));
  });

  it('Last run of mode auto names its path ("incremental (auto)", "snapshot load (auto)") and says why in its tooltip', () => {
    const reason = 'incremental: 12 changes, 12% of 100 rows (at most auto.maxChangeShare 30%)';
    const e = ok(aStatus({ state: { phase: 'up-to-date', version: 4 }, runs: [aRun({ auto: { path: 'incremental', reason } })] }));
    assert.ok(shown(e).includes('Last run: succeeded · incremental (auto) · 10 rows · 2024-05-01 10:01 [history]'), shown(e).join('\n'));
    const last = statusRows('/x.json', e).find((n) => n.kind === 'status' && n.label === 'Last run');
    assert.equal(last?.kind === 'status' ? last.tooltip : undefined, `Mode auto: ${reason}.`);
    const swap = ok(aStatus({ state: { phase: 'up-to-date', version: 4 }, runs: [aRun({ mode: 'auto-swap', auto: { path: 'snapshot', reason: 'snapshot swap: 42 changes are 42% of 100 rows, above auto.maxChangeShare 30%' } })] }));
    assert.ok(shown(swap).includes('Last run: succeeded · snapshot load (auto) · 10 rows · 2024-05-01 10:01 [history]'), shown(swap).join('\n'));
    const plain = statusRows('/x.json', ok(aStatus({ state: { phase: 'up-to-date', version: 4 }, runs: [aRun()] }))).find((n) => n.kind === 'status' && n.label === 'Last run');
    assert.equal(plain?.kind === 'status' ? plain.tooltip : 'none', undefined);
  });

  it('the state wins over the last run: a failed run is not re-derived into a failure', () => {
    const e = ok(aStatus({ state: { phase: 'up-to-date', version: 7 }, runs: [aRun({ status: 'failed', error: 'boom' })] }));
    assert.equal(statusPhrase(e), 'up to date · v7');
    assert.equal(mappingLook(e), 'plain');
    assert.ok(!shown(e).some((r) => r.startsWith('Error:')));
  });

  it('a status with a state reaches the tree through the model\'s background fetch', async () => {
    const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'mappings-state-'));
    try {
      fs.mkdirSync(path.join(ws, '.delta-sync'));
      fs.writeFileSync(path.join(ws, '.delta-sync', 'orders.json'), JSON.stringify({ name: 'orders', source: { type: 'delta', path: '../orders' }, target: { connection: 'sandbox', table: 'orders' } }));
      const model = new MappingsModel(() => [ws], () => '.delta-sync', async () => aStatus({ state: errored }));
      const settled = new Promise<void>((resolve) => model.onStatusChange(resolve));
      const [first] = await model.children();
      assert.equal(first?.kind === 'mapping' ? statusPhrase(first.status) : '', 'checking…');
      await settled;
      const [node] = await model.children();
      assert.equal(node?.kind === 'mapping' ? statusPhrase(node.status) : '', 'failed · target');
    } finally {
      fs.rmSync(ws, { recursive: true, force: true });
    }
  });
});
