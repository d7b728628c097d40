import assert from 'node:assert/strict';
import { ContinuousSyncs, watchBarLook, watchPhrase } from '../../src/engine/ContinuousSyncs';
import type { WatchStatus } from '../../src/engine/ContinuousSyncs';
import { SyncEngine } from '../../src/engine/SyncEngine';
import type { TargetHandle } from '../../src/engine/SyncEngine';
import { syncAllMappings, syncAllSummary } from '../../src/engine/syncAllMappings';
import type { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { SyncError } from '../../src/sync/errors';
import { silentLogger } from '../../src/sync/ports/Logger';
import { mappingDescription } from '../../src/views/MappingsModel';
import { buildMapping } from '../builders/mappings';
import { checkpointVersion } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { pollUntil, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import { itemRows, newItemTable } from '../builders/itemTables';

/**
 * The extension's continuous syncs and Sync All without VS Code (issue 14, points 1, 2, 5):
 * ContinuousSyncs runs the engine's watchPipeline per mapping through SyncEngine, several at
 * once with one pool per target connection; what the status bar and the Mappings tree show
 * comes from its statuses. Real Postgres, real Delta tables written while the watches run.
 */

const rows = itemRows;

const KEY = ['id'];

describe('extension: continuous syncs and Sync All (real server, no VS Code)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('ext_continuous');
  let dir: string;
  let engine: SyncEngine;
  let opened = 0;

  before(async () => {
    dir = await tempDir('dns-ext-watch-');
    engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async (name) => (name === 'pg' ? db().url : undefined), logger: silentLogger });
  });
  after(async () => {
    await engine.dispose();
  });

  const newTable = (name: string): Promise<DeltaTableWriter> => newItemTable(dir, name, 10);

  function watches(): ContinuousSyncs<TargetHandle> {
    return new ContinuousSyncs<TargetHandle>({
      openTarget: (c) => {
        opened++;
        return engine.openTarget(c);
      },
      openRunner: (m, t) => engine.openRunnerOn(m, t),
      backoffMs: 100,
    });
  }

  const atVersion = (pipeline: string, v: number): Promise<number> =>
    pollUntil(async () => ((await checkpointVersion(db().url, pipeline)) === v ? v : undefined), { timeoutMs: 30_000, everyMs: 50, what: `pipeline ${pipeline} at version ${v}` });

  it('watches two mappings at once over one pool: loads, follows new versions, shows state, version and lag; Stop ends both and closes the pool', async () => {
    const a = await newTable('cont_a');
    const b = await newTable('cont_b');
    const ma = buildMapping({ name: 'cont-a', source: a.path, target: { connection: 'pg', table: 'cont_a' }, key: KEY });
    const mb = buildMapping({ name: 'cont-b', source: b.path, target: { connection: 'pg', table: 'cont_b' }, key: KEY });
    const w = watches();
    const seen: WatchStatus[] = [];
    const stopped: Array<[string, SyncError | undefined]> = [];
    w.subscribe({ onChange: (s) => seen.push(s), onStopped: (s, e) => stopped.push([s.mapping, e]) });
    opened = 0;
    const ra = w.start('/ws/.delta-sync/cont-a.json', ma, { mode: 'follow', intervalMs: 200 });
    const rb = w.start('/ws/.delta-sync/cont-b.json', mb, { mode: 'follow', intervalMs: 200 });
    assert.throws(() => w.start('/ws/.delta-sync/cont-a.json', ma, { mode: 'follow', intervalMs: 200 }), /already watched/);
    await atVersion('cont-a', a.version);
    await atVersion('cont-b', b.version);
    assert.equal(opened, 1, 'one pool for the two mappings on one target connection');
    assert.equal(w.openPools, 1);

    await a.append(rows(11, 15));
    await b.update('id', [{ id: 2n, name: 'changed 2' }]);
    await b.delete('id', [7n]);
    await atVersion('cont-a', a.version);
    await atVersion('cont-b', b.version);
    await assertTargetEquals(db().url, { schema: 'public', name: 'cont_a' }, a.path, a.version, { key: KEY });
    await assertTargetEquals(db().url, { schema: 'public', name: 'cont_b' }, b.path, b.version, { key: KEY });

    const sa = await pollUntil(async () => {
      const s = w.get('/ws/.delta-sync/cont-a.json');
      return s?.lastVersion === a.version && s.state.phase === 'watching' ? s : undefined;
    }, { timeoutMs: 10_000, what: 'the status of cont-a at its last version' });
    assert.ok(sa.lagMs !== null && sa.lagMs >= 0, 'the lag of the last applied version is measured');
    assert.match(watchPhrase(sa), new RegExp(`^watching · v${a.version} · lag [\\d.]+ (ms|s)$`));
    assert.ok(seen.some((s) => s.mapping === 'cont-b' && s.state.phase === 'applying'), 'an applying state was shown while a batch ran');
    const bar = watchBarLook(w.list());
    assert.match(bar.text, /2 continuous syncs/);
    assert.equal(bar.error, false);
    const row = mappingDescription({ kind: 'mapping', file: sa.key, mapping: ma, watch: sa });
    assert.match(row, new RegExp(`^watching · v${a.version} · lag `));

    assert.equal(await w.stop('/ws/.delta-sync/cont-a.json'), true);
    await w.dispose();
    await Promise.all([ra.done, rb.done]);
    assert.deepEqual(stopped.map(([n, e]) => [n, e]).sort(), [['cont-a', undefined], ['cont-b', undefined]]);
    assert.equal(w.list().length, 0);
    assert.equal(w.openPools, 0, 'the shared pool is closed once no watch uses it');
    assert.equal(watchBarLook(w.list(), seen[seen.length - 1]).visible, false);
  });

  it('an error that is not retried (duplicate keys) stops the watch with the error and its hint; the status bar shows it', async () => {
    const t = await newTable('cont_dup');
    const m = buildMapping({ name: 'cont-dup', source: t.path, target: { connection: 'pg', table: 'cont_dup' }, key: KEY });
    const w = watches();
    let stoppedWith: SyncError | undefined;
    let last: WatchStatus | undefined;
    w.subscribe({ onChange: (s) => (last = s), onStopped: (_s, e) => (stoppedWith = e) });
    const run = w.start('/ws/.delta-sync/cont-dup.json', m, { mode: 'follow', intervalMs: 200 });
    await atVersion('cont-dup', t.version);
    const good = t.version;
    await t.append([{ id: 3n, name: 'again' }]);
    await run.done;
    assert.ok(stoppedWith, 'the watch stopped with an error');
    assert.match(stoppedWith.message, /duplicate key/i);
    assert.ok(stoppedWith.hint, 'the error carries its hint');
    assert.equal(last?.state.phase, 'failed');
    assert.equal(await checkpointVersion(db().url, 'cont-dup'), good);
    const bar = watchBarLook(w.list(), last);
    assert.equal(bar.visible, true);
    assert.equal(bar.error, true);
    assert.match(bar.tooltip, /duplicate key/i);
    assert.equal(w.openPools, 0);
  });

  it('Run Every (schedule) syncs on a timer through the same loop', async () => {
    const t = await newTable('cont_every');
    const m = buildMapping({ name: 'cont-every', source: t.path, target: { connection: 'pg', table: 'cont_every' }, key: KEY });
    const w = watches();
    w.start('/ws/.delta-sync/cont-every.json', m, { mode: 'schedule', intervalMs: 300 });
    await atVersion('cont-every', t.version);
    await t.append(rows(11, 12));
    await atVersion('cont-every', t.version);
    const s = w.get('/ws/.delta-sync/cont-every.json');
    assert.match(watchPhrase(s as WatchStatus), /^every 300 ms/);
    await w.dispose();
    await assertTargetEquals(db().url, { schema: 'public', name: 'cont_every' }, t.path, t.version, { key: KEY });
  });

  it("Sync All runs every mapping in 'after' order over one pool per target, skips what runs after a failure, one summary", async () => {
    const base = await newTable('all_base');
    const dep = await newTable('all_dep');
    const bad = await newTable('all_bad');
    const after = await newTable('all_after_bad');
    const m = (name: string, t: DeltaTableWriter, extra: { after?: string[]; key?: string[] } = {}) =>
      ({ mapping: buildMapping({ name, source: t.path, target: { connection: 'pg', table: name.replace(/-/g, '_') }, key: extra.key ?? KEY, ...(extra.after ? { after: extra.after } : {}) }), file: `${name}.json` });
    let opens = 0;
    const order: string[] = [];
    const outcomes = await syncAllMappings(
      // Given out of order: dep comes after base; the bad mapping's key column does not exist.
      [m('all-dep', dep, { after: ['all-base'] }), m('all-after-bad', after, { after: ['all-bad'] }), m('all-bad', bad, { key: ['missing'] }), m('all-base', base)],
      { openTarget: (c) => (opens++, engine.openTarget(c)), openRunner: (mm, t) => engine.openRunnerOn(mm, t) },
      { onOutcome: (o) => order.push(`${o.name}:${o.status}`) },
    );
    assert.equal(opens, 1, 'one pool for the one target connection');
    assert.deepEqual(order, ['all-base:succeeded', 'all-dep:succeeded', 'all-bad:failed', 'all-after-bad:skipped']);
    await assertTargetEquals(db().url, { schema: 'public', name: 'all_dep' }, dep.path, dep.version, { key: KEY });
    assert.equal(syncAllSummary(outcomes, 1), '4 mappings: 2 succeeded, 1 failed (all-bad), 1 skipped (all-after-bad); 1 invalid mapping file not run');
  });
});
