import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CUSTOMER_PROFILE_COLUMNS, generateCustomers } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { openSource } from '../../src/sync/open/openSource';
import type { Checkpoint } from '../../src/sync/ports/targetTypes';
import { pipelineState } from '../../src/sync/run/SyncRunner';
import { MappingStatusRefresher } from '../../src/views/MappingStatusRefresher';
import { MappingsModel, statusPhrase, type MappingNode, type MappingStatus } from '../../src/views/MappingsModel';
import { tempDir } from '../helpers/syncHarness';

/**
 * The Mappings tree follows a local source's new Delta versions without a manual refresh
 * (issue 13, point 8): a real table written by the fixture writer, a mapping file beside it,
 * the status read from the real table's log (the latest version) against a checkpoint at
 * the table's first version, and a new commit while the refresher watches `_delta_log`.
 */
describe('mapping status refresh on a new Delta version', function () {
  this.timeout(60_000);

  /** The status as the runner computes it, with the checkpoint at `checkpointVersion` (no target needed). */
  function statusFromLog(checkpointVersion: number): (m: Mapping) => Promise<MappingStatus> {
    return async (m) => {
      const latestVersion = await (await openSource(m.source)).latestVersion();
      const checkpoint: Checkpoint = { pipeline: m.name, source: 'x', version: BigInt(checkpointVersion), commitTimestamp: null, appliedRows: 5n, finishedAt: '2026-01-01 00:00' };
      return {
        pipeline: m.name, source: 'x', target: 'sandbox:public.t', latestVersion, checkpoint, lag: latestVersion - checkpointVersion,
        targetExists: true, runs: [], state: pipelineState(checkpoint, latestVersion, [], false),
      };
    };
  }

  /** The mapping row's phrase once its status has settled. */
  async function phraseOf(model: MappingsModel): Promise<string | undefined> {
    for (;;) {
      const node = (await model.children())[0] as MappingNode & { kind: 'mapping' };
      const phrase = statusPhrase(node.status);
      if (node.status?.state !== 'pending') return phrase;
      await new Promise<void>((resolve) => {
        const sub = model.onStatusChange(() => { sub.dispose(); resolve(); });
      });
    }
  }

  it('a commit to a watched local table invalidates the cached status: "up to date" becomes "1 version behind"', async () => {
    const ws = await tempDir('status-refresh-');
    const writer = await DeltaTableWriter.create(path.join(ws, 'tables', 'customers'), { columns: [...CUSTOMER_PROFILE_COLUMNS], name: 'customers' });
    await writer.append(generateCustomers(5));
    fs.mkdirSync(path.join(ws, '.delta-sync'));
    fs.writeFileSync(path.join(ws, '.delta-sync', 'customers.json'), JSON.stringify({ name: 'customers', source: { type: 'delta', path: '../tables/customers' }, target: { connection: 'sandbox', table: 'customers' } }));

    const model = new MappingsModel(() => [ws], () => '.delta-sync', statusFromLog(1));
    assert.equal(await phraseOf(model), 'up to date · v1');

    const refreshed: string[] = [];
    let notify: (() => void) | undefined;
    const refresher = new MappingStatusRefresher(model, { debounceMs: 100, pollSeconds: () => 0, onRefresh: (file) => { refreshed.push(file); notify?.(); } });
    try {
      await refresher.sync();
      assert.deepEqual(refresher.watched(), [path.join(ws, '.delta-sync', 'customers.json')]);
      // Without the refresher's invalidation the cached status would stay "up to date".
      const refreshedOnce = new Promise<void>((resolve) => (notify = resolve));
      await writer.append(generateCustomers(3, 42, 6));
      await refreshedOnce;
      assert.deepEqual([...new Set(refreshed)], [path.join(ws, '.delta-sync', 'customers.json')]);
      assert.equal(await phraseOf(model), '1 version behind');
    } finally {
      refresher.dispose();
    }
  });

  it('a Databricks source is polled at the set interval; 0 turns the poll off; a removed mapping is no longer watched', async () => {
    const ws = await tempDir('status-poll-');
    fs.mkdirSync(path.join(ws, '.delta-sync'));
    const file = path.join(ws, '.delta-sync', 'dbx.json');
    fs.writeFileSync(file, JSON.stringify({ name: 'dbx', source: { type: 'databricks', connection: 'ws', table: 'main.sales.customers' }, target: { connection: 'sandbox', table: 'customers' } }));
    const invalidated: string[] = [];
    const model = new MappingsModel(() => [ws], () => '.delta-sync');
    const spy = { folders: () => model.folders(), load: (f: string) => model.load(f), invalidate: (f?: string) => { if (f) invalidated.push(f); } };
    let seconds = 0;
    let polled: (() => void) | undefined;
    const refresher = new MappingStatusRefresher(spy, { pollSeconds: () => seconds, onRefresh: () => polled?.() });
    try {
      await refresher.sync();
      assert.deepEqual(refresher.watched(), [], 'no poll with 0 seconds');
      seconds = 0.05;
      await refresher.sync();
      assert.deepEqual(refresher.watched(), [file]);
      await new Promise<void>((resolve) => (polled = resolve));
      assert.ok(invalidated.includes(file));
      fs.rmSync(file);
      await refresher.sync();
      assert.deepEqual(refresher.watched(), []);
    } finally {
      refresher.dispose();
    }
  });
});
