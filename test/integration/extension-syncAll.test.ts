import assert from 'node:assert/strict';
import { SyncEngine } from '../../src/engine/SyncEngine';
import type { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { silentLogger } from '../../src/sync/ports/Logger';
import type { MappingNode } from '../../src/views/MappingsModel';
import { RunController } from '../../src/views/RunController';
import { runSyncAll } from '../../src/views/runSyncAll';
import { buildMapping } from '../builders/mappings';
import { checkpointVersion } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import { itemRows, newItemTable } from '../builders/itemTables';

/**
 * The Mappings view's Sync All command without VS Code (issue 14, point 5): what the command
 * runs between reading the tree and showing the toast (runSyncAll): the mapping nodes as the
 * tree holds them (an invalid file among them), one RunController run, one log line per
 * mapping, a failed mapping's dependents skipped, and the toast's severity and text with the
 * counts. Real Postgres, real Delta tables.
 */

const rows = itemRows;
const KEY = ['id'];

describe('extension: the Sync All command (real server, no VS Code)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('ext_sync_all');
  let dir: string;
  let engine: SyncEngine;

  before(async () => {
    dir = await tempDir('dns-ext-all-');
    engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async (name) => (name === 'pg' ? db().url : undefined), logger: silentLogger });
  });
  after(async () => {
    await engine.dispose();
  });

  const newTable = (name: string): Promise<DeltaTableWriter> => newItemTable(dir, name, 10);
  const node = (name: string, t: DeltaTableWriter, extra: { after?: string[]; key?: string[] } = {}): MappingNode => ({
    kind: 'mapping',
    file: `/ws/.delta-sync/${name}.json`,
    mapping: buildMapping({ name, source: t.path, target: { connection: 'pg', table: name.replace(/-/g, '_') }, key: extra.key ?? KEY, ...(extra.after ? { after: extra.after } : {}) }),
  });
  function recorder(): { log: { info(m: string): void; warn(m: string): void; error(m: string): void }; lines: string[] } {
    const lines: string[] = [];
    return { lines, log: { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) } };
  }
  const open = () => ({ openTarget: (c: string) => engine.openTarget(c), openRunner: (m: Parameters<SyncEngine['openRunnerOn']>[0], t: Awaited<ReturnType<SyncEngine['openTarget']>>) => engine.openRunnerOn(m, t) });

  it("a failed mapping's dependents are skipped; the toast is a warning with the succeeded, failed and skipped counts and the invalid file", async () => {
    const base = await newTable('sa-base');
    const dep = await newTable('sa-dep');
    const bad = await newTable('sa-bad');
    const afterBad = await newTable('sa-after-bad');
    const nodes: MappingNode[] = [
      node('sa-dep', dep, { after: ['sa-base'] }),
      node('sa-after-bad', afterBad, { after: ['sa-bad'] }),
      node('sa-bad', bad, { key: ['missing'] }),
      { kind: 'invalid', file: '/ws/.delta-sync/broken.json', error: 'bad JSON' },
      node('sa-base', base),
    ];
    const runs = new RunController();
    const { log, lines } = recorder();
    const reported: string[] = [];
    const res = await runSyncAll(nodes, { runs, open: open(), log, report: (m) => reported.push(m) });
    assert.ok(res, 'a summary');
    assert.deepEqual(res.toast, {
      severity: 'warning',
      text: 'Delta Sync: Sync All: 4 mappings: 2 succeeded, 1 failed (sa-bad), 1 skipped (sa-after-bad); 1 invalid mapping file not run',
    });
    assert.deepEqual(reported, ['sa-base: succeeded', 'sa-dep: succeeded', 'sa-bad: failed', 'sa-after-bad: skipped']);
    assert.match(lines.find((l) => l.startsWith('error Sync All: sa-bad:')) ?? '', /missing/);
    assert.ok(lines.includes('warn Sync All: sa-after-bad: skipped: runs after "sa-bad", which did not succeed'), lines.join('\n'));
    assert.ok(lines.some((l) => /^info Sync All: sa-base: initial to v\d+: 10 inserted, 0 updated, 0 deleted$/.test(l)), lines.join('\n'));
    assert.equal(lines.at(-1), `info Sync All: ${res.toast.text.replace('Delta Sync: Sync All: ', '')}`);
    assert.equal(runs.running, false);
    await assertTargetEquals(db().url, { schema: 'public', name: 'sa_dep' }, dep.path, dep.version, { key: KEY });
    assert.equal(await checkpointVersion(db().url, 'sa-after-bad'), undefined, 'the skipped mapping did not run');
  });

  it('when every mapping succeeds the toast is information with the counts; no valid mapping is a usage error before any run starts', async () => {
    const one = await newTable('sa-one');
    const two = await newTable('sa-two');
    const runs = new RunController();
    const first = await runSyncAll([node('sa-one', one), node('sa-two', two, { after: ['sa-one'] })], { runs, open: open(), log: recorder().log });
    assert.deepEqual(first?.toast, { severity: 'info', text: 'Delta Sync: Sync All: 2 mappings: 2 succeeded, 0 failed, 0 skipped' });
    await one.append(rows(11, 12));
    const { log, lines } = recorder();
    const again = await runSyncAll([node('sa-one', one), node('sa-two', two, { after: ['sa-one'] })], { runs, open: open(), log });
    assert.equal(again?.toast.severity, 'info');
    assert.ok(lines.includes(`info Sync All: sa-two: up to date at v${two.version}`), lines.join('\n'));
    assert.ok(lines.some((l) => /^info Sync All: sa-one: incremental to v\d+: 2 inserted/.test(l)), lines.join('\n'));

    const idle = new RunController();
    await assert.rejects(runSyncAll([{ kind: 'invalid', file: '/ws/.delta-sync/x.json', error: 'bad' }], { runs: idle, open: open(), log: recorder().log }), /No valid mapping in this workspace/);
    assert.equal(idle.current().status, 'idle');
  });
  it("the Progress panel follows the mapping that runs: each starts under its own name with its own past runs, and one refused before it started shows as failed under its name, not under the previous mapping's", async () => {
    const good = await newTable('sa-follow-good');
    const bad = await newTable('sa-follow-bad');
    const runs = new RunController();
    const seen: Array<{ mapping: string | null; status: string; phase: string | null; error: string | null }> = [];
    runs.onSnapshot((snap) => seen.push({ mapping: snap.mapping, status: snap.status, phase: snap.phase ?? null, error: snap.error?.message ?? null }));
    const started: string[] = [];
    const ended: string[] = [];
    const res = await runSyncAll([node('sa-follow-good', good), node('sa-follow-bad', bad, { key: ['missing'], after: ['sa-follow-good'] })], {
      runs,
      open: open(),
      log: recorder().log,
      onMappingStart: (n) => started.push(n.kind === 'mapping' ? n.mapping.name : ''),
      onMappingEnd: (n) => ended.push(n.kind === 'mapping' ? n.mapping.name : ''),
    });
    assert.equal(res?.toast.severity, 'warning');
    assert.deepEqual(started, ['sa-follow-good', 'sa-follow-bad']);
    assert.deepEqual(ended, ['sa-follow-good', 'sa-follow-bad']);
    // Every snapshot under sa-follow-bad's name is its own: it starts afresh (no rows, no
    // phase, no status of sa-follow-good's run) and ends failed with its error.
    const badSnaps = seen.filter((x) => x.mapping === 'sa-follow-bad');
    assert.ok(badSnaps.length > 0, JSON.stringify(seen));
    assert.deepEqual(badSnaps[0], { mapping: 'sa-follow-bad', status: 'running', phase: null, error: null });
    const last = seen.at(-1);
    assert.equal(last?.mapping, 'sa-follow-bad');
    assert.equal(last?.status, 'failed');
    assert.match(last?.error ?? '', /missing/);
    // sa-follow-good's own snapshots end in its success; none of them carries the other's error.
    const goodSnaps = seen.filter((x) => x.mapping === 'sa-follow-good');
    assert.ok(goodSnaps.some((x) => x.status === 'succeeded'), JSON.stringify(goodSnaps));
    assert.ok(goodSnaps.every((x) => x.error === null), JSON.stringify(goodSnaps));
    assert.equal(runs.current().status, 'failed');
  });
});
