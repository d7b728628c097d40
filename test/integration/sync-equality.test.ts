import assert from 'node:assert/strict';
import * as path from 'node:path';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { readCheckpoint } from '../../src/sync/postgres/stateTables';
import { useTestDatabase } from '../helpers/postgres';
import { sharedTable } from '../helpers/sharedTables';
import { mappingFor, openRunner, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Acceptance 1: initial load at an early version, then incremental syncs one version at a
 * time (database A) and all at once (database B); after each step the target equals the
 * Delta snapshot at that version, checked independently of the engine (targetEquality.ts),
 * and the runner's own verify() agrees.
 */

interface Case {
  label: string;
  /** Table folder, or undefined to skip (shared table absent). */
  path: () => string | undefined;
  key: string[];
  table: string;
  firstVersion: number;
}

let customerPath: string | undefined;

const cases: Case[] = [
  { label: 'customer_profiles fixture (CDF, DVs, checkpoint, MERGE)', path: () => customerPath, key: ['customer_id'], table: 'customer_profiles', firstVersion: 0 },
  { label: 'delta-rs/cdf-table (Spark, partitioned, rows moving partitions)', path: () => sharedTable('delta-rs/cdf-table'), key: ['id'], table: 'cdf_table', firstVersion: 0 },
  // id repeats at version 4 (two rows with id 1, two with id 2): (id, name) is the key, so
  // UPDATEs of name are key changes (preimage deletes the old key).
  { label: 'delta-rs/cdf-table-non-partitioned (Spark, many scalar types)', path: () => sharedTable('delta-rs/cdf-table-non-partitioned'), key: ['id', 'name'], table: 'cdf_table_np', firstVersion: 0 },
  // Commits 0-2 were cleaned up: the checkpoint at 3 is the earliest readable snapshot.
  { label: 'delta-rs/checkpoint-cdf-table (log cleaned up before the checkpoint)', path: () => sharedTable('delta-rs/checkpoint-cdf-table'), key: ['id'], table: 'checkpoint_cdf', firstVersion: 3 },
];

describe('sync end to end: target equals the Delta snapshot after every step (real server)', function () {
  this.timeout(180_000);
  const dbA = useTestDatabase('sync_eq_a');
  const dbB = useTestDatabase('sync_eq_b');

  before(async function () {
    this.timeout(60_000);
    const dir = await tempDir();
    const t = await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 1200 });
    // Two MERGE rounds (updates, inserts, deletes in one commit) after the sample's v5.
    await applySampleChanges(t.path);
    await applySampleChanges(t.path);
    customerPath = t.path;
  });

  for (const c of cases) {
    describe(c.label, () => {
      it('initial load at an early version, then one version per incremental sync: equal after each step, verify() agrees', async function () {
        const p = c.path();
        if (!p) this.skip();
        const latest = await (await DeltaTable.open(p)).latestVersion();
        assert.ok(latest > c.firstVersion, 'the table has versions after the first one');
        const mapping = mappingFor({ name: `${c.table}-step`, source: { type: 'delta', path: p }, target: { connection: 'x', schema: 'public', table: c.table }, key: c.key });
        const r = await openRunner(mapping, dbA().url);
        try {
          const first = await r.runner.run({ mode: 'initial', toVersion: c.firstVersion });
          assert.equal(first.mode, 'initial');
          assert.equal(first.toVersion, c.firstVersion);
          await assertTargetEquals(dbA().url, { schema: 'public', name: c.table }, p, c.firstVersion, { key: c.key });
          assert.equal((await r.runner.verify()).equal, true);
          for (let v = c.firstVersion + 1; v <= latest; v++) {
            const res = await r.runner.run({ mode: 'incremental', toVersion: v });
            assert.equal(res.toVersion, v, `incremental sync reached version ${v}`);
            assert.equal(res.fromVersion, v, `incremental sync started at version ${v}`);
            await assertTargetEquals(dbA().url, { schema: 'public', name: c.table }, p, v, { key: c.key });
            const check = await r.runner.verify();
            assert.equal(check.version, v);
            assert.equal(check.equal, true, `verify() at version ${v}: ${JSON.stringify(check)}`);
            const cp = await r.pool.connect().then(async (cl) => {
              try {
                return await readCheckpoint(cl, mapping.name);
              } finally {
                cl.release();
              }
            });
            assert.equal(cp?.version, BigInt(v));
          }
        } finally {
          await r.close();
        }
      });

      it('initial load at an early version, then every later version in one incremental sync: equal at the end', async function () {
        const p = c.path();
        if (!p) this.skip();
        const latest = await (await DeltaTable.open(p)).latestVersion();
        const mapping = mappingFor({ name: `${c.table}-bulk`, source: { type: 'delta', path: p }, target: { connection: 'x', schema: 'public', table: c.table }, key: c.key });
        const r = await openRunner(mapping, dbB().url);
        try {
          await r.runner.run({ mode: 'initial', toVersion: c.firstVersion });
          await assertTargetEquals(dbB().url, { schema: 'public', name: c.table }, p, c.firstVersion, { key: c.key });
          const res = await r.runner.run({ mode: 'auto' });
          assert.equal(res.mode, 'incremental');
          assert.equal(res.status, 'succeeded');
          assert.equal(res.fromVersion, c.firstVersion + 1);
          assert.equal(res.toVersion, latest);
          const n = await assertTargetEquals(dbB().url, { schema: 'public', name: c.table }, p, latest, { key: c.key });
          const check = await r.runner.verify();
          assert.equal(check.equal, true, JSON.stringify(check));
          assert.equal(check.sourceRows, n);
          assert.equal(check.targetRows, n);
        } finally {
          await r.close();
        }
      });
    });
  }
});
