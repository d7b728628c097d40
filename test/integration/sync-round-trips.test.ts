import assert from 'node:assert/strict';
import * as path from 'node:path';
import type pg from 'pg';
import { CUSTOMER_KEY, CUSTOMER_PROFILE_COLUMNS, customerAt, generateCustomers, upgradedCustomer } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { openSource } from '../../src/sync/open/openSource';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { createPool } from '../../src/sync/postgres/createPool';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { queryOnce } from '../helpers/pgQuery';
import { tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Round trips to the target, counted (issue 12, network latency): over a remote link each
 * statement the engine sends waits one RTT, so their number is what a 20 ms link costs a
 * run. The counts are pinned here so they cannot silently grow back. What they are
 * (docs/architecture.md, "Round trips to the target"): an initial load into a new table:
 * the lease (with the rights check's facts, the checkpoint, the table's description, the
 * swap blockers and the staging leftovers), the run log's start, the table's catalog entry,
 * the COPY (with its BEGIN and the staging DDL), the primary key with ANALYZE, the swap with
 * the checkpoint and COMMIT, the run log's end with the lease's release. An incremental run
 * of one part: the lease (with the rights check and the description), the run log's start
 * and the apply's opening (with the delete guard's estimate), both while the changes are
 * read, the part, and the commit with the run's end and the lease's release; all on the
 * connection the initial load left in the pool (a new one costs its own round trips).
 */
describe('round trips of a sync (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_round_trips');

  it('an initial load into a new table sends at most 6 statements, an incremental run of one part at most 5 on the connection it finds', async () => {
    const dir = path.join(await tempDir(), 'rt');
    const w = await DeltaTableWriter.create(dir, { columns: [...CUSTOMER_PROFILE_COLUMNS], configuration: { 'delta.enableChangeDataFeed': 'true' }, name: 'rt' });
    await w.append(generateCustomers(500, 7));
    const upd = [];
    for (let i = 1; i <= 500; i += 10) upd.push(upgradedCustomer(customerAt(i, 7)));
    await w.update(CUSTOMER_KEY, upd);
    const mapping = buildMapping({ name: 'round-trips', source: dir, target: 'rt_customers', key: [CUSTOMER_KEY] });
    const pool = createPool(db().url, { max: 4 });
    // Every statement (query call) on every connection of the pool, the heartbeat's included.
    let sent = 0;
    let connections = 0;
    const texts: string[] = [];
    pool.on('connect', (client: pg.PoolClient) => {
      connections++;
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        sent++;
        const a = args[0] as { text?: unknown } | string;
        texts.push(String(typeof a === 'string' ? a : a.text).slice(0, 60));
        return query(...args);
      };
    });
    const source = await openSource(mapping.source);
    try {
      const runner = new SyncRunner(mapping, source, mappingTarget(pool, mapping.target));
      // The first run of a database creates the state tables: not what is counted.
      await runner.status();
      sent = 0;
      texts.length = 0;
      assert.equal((await runner.run({ mode: 'initial', toVersion: 1 })).status, 'succeeded');
      const initial = sent;
      const initialTexts = [...texts];
      sent = 0;
      texts.length = 0;
      connections = 0;
      const inc = await runner.run({ mode: 'incremental', toVersion: 2 });
      assert.equal(inc.status, 'succeeded');
      assert.equal(inc.updated, upd.length);
      assert.ok(initial <= 6, `the initial load sent ${initial} statements:\n${initialTexts.join('\n')}`);
      assert.ok(sent <= 5, `the incremental run sent ${sent} statements:\n${texts.join('\n')}`);
      assert.equal(connections, 0, 'the incremental run opened a connection of its own');
      // Each run's end was recorded with its last commit, and its lease given back with it.
      const runs = await queryOnce<{ mode: string; status: string; rows: string; to_version: string }>(db().url,
        `SELECT mode, status, rows::text AS rows, to_version::text AS to_version FROM delta_neon_sync.runs WHERE pipeline = 'round-trips' ORDER BY run_id`);
      assert.deepEqual(runs, [
        { mode: 'initial-swap', status: 'succeeded', rows: '500', to_version: '1' },
        { mode: 'incremental', status: 'succeeded', rows: String(upd.length), to_version: '2' },
      ]);
      assert.deepEqual(await queryOnce(db().url, `SELECT pipeline FROM delta_neon_sync.run_leases`), []);
      await assertTargetEquals(db().url, { schema: 'public', name: 'rt_customers' }, dir, 2, { key: [CUSTOMER_KEY] });
    } finally {
      await pool.end();
      await (source as { close?: () => Promise<void> }).close?.();
    }
  });
});
