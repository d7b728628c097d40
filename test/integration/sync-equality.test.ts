import assert from 'node:assert/strict';
import * as path from 'node:path';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { readCheckpoint } from '../../src/sync/postgres/stateTables';
import { boolean, date, decimal, long, timestamp, timestampNtz } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { sharedTable } from '../helpers/sharedTables';
import { openRunner, tempDir } from '../helpers/syncHarness';
import pg from 'pg';
import { assertTargetEquals, expectedText } from '../helpers/targetEquality';

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

  it('the equality oracle formats values exactly as the server prints them (timestamps, dates, decimals, longs, booleans; doubles are compared as numbers)', async () => {
    const c = new pg.Client({ connectionString: dbA().url });
    await c.connect();
    try {
      await c.query(`SET TimeZone = 'UTC'`);
      await c.query(`SET extra_float_digits = 1`);
      // The server derives each value from a number (not from our text), then prints it.
      for (const micros of [0n, 1n, -1n, 1_717_200_000_123_400n, -62_135_596_800_000_000n + 1n, 253_402_300_799_999_999n, -1_000_000n, 999_999n]) {
// int8 * interval goes through float8 (inexact past 2^53 µs): whole seconds and the rest apart.
        const r = await c.query<{ t: string; n: string }>(
          `SELECT (timestamptz 'epoch' + ($1::int8 / 1000000) * interval '1 second' + ($1::int8 % 1000000) * interval '1 microsecond')::text AS t,
                  (timestamp 'epoch' + ($1::int8 / 1000000) * interval '1 second' + ($1::int8 % 1000000) * interval '1 microsecond')::text AS n`, [micros.toString()]);
        assert.equal(expectedText(micros, timestamp()), r.rows[0]?.t, `timestamp ${micros}`);
        assert.equal(expectedText(micros, timestampNtz()), r.rows[0]?.n, `timestamp_ntz ${micros}`);
      }
      for (const days of [0, -1, 19_000, -719_162, 2_932_896]) {
        const r = await c.query<{ d: string }>(`SELECT (date '1970-01-01' + $1::int)::text AS d`, [days]);
        assert.equal(expectedText(days, date()), r.rows[0]?.d, `date ${days}`);
      }
      for (const [v, p, sc] of [['0.00', 10, 2], ['-12.50', 10, 2], ['123456789012345678901234567890.12345678', 38, 8], ['-0.001', 6, 3], ['7', 5, 0]] as const) {
        const r = await c.query<{ x: string }>(`SELECT ($1::numeric * 1)::numeric(${p},${sc})::text AS x`, [v]);
        assert.equal(expectedText(v, decimal(p, sc)), r.rows[0]?.x, `decimal ${v}`);
      }
      for (const v of [9_223_372_036_854_775_807n, -9_223_372_036_854_775_808n, 0n]) {
        const r = await c.query<{ x: string }>(`SELECT ($1::int8)::text AS x`, [v.toString()]);
        assert.equal(expectedText(v, long()), r.rows[0]?.x);
      }
      const b = await c.query<{ t: string; f: string }>(`SELECT true::text AS t, false::text AS f`);
      assert.deepEqual([expectedText(true, boolean()), expectedText(false, boolean())], [b.rows[0]?.t, b.rows[0]?.f]);
    } finally {
      await c.end();
    }
  });

  it('the equality oracle reports a changed value, a missing row and an extra row in the target', async function () {
    const p = sharedTable('delta-rs/cdf-table');
    if (!p) this.skip();
    const mapping = buildMapping({ name: 'oracle', source: p, target: 'oracle', key: ['id'] });
    const r = await openRunner(mapping, dbA().url);
    try {
      const res = await r.runner.run({ mode: 'initial' });
      const t = { schema: 'public', name: 'oracle' };
      await assertTargetEquals(dbA().url, t, p, res.toVersion, { key: ['id'] });
      const one = (await r.pool.query<{ id: number }>(`SELECT id FROM oracle ORDER BY id LIMIT 1`)).rows[0]!.id;
      await r.pool.query(`UPDATE oracle SET name = name || 'x' WHERE id = $1`, [one]);
      await assert.rejects(assertTargetEquals(dbA().url, t, p, res.toVersion, { key: ['id'] }), /1 differing values/);
      await r.pool.query(`DELETE FROM oracle WHERE id = $1`, [one]);
      await assert.rejects(assertTargetEquals(dbA().url, t, p, res.toVersion, { key: ['id'] }), /1 missing, 0 extra/);
      await r.pool.query(`INSERT INTO oracle (id, name, birthday) VALUES (-1, 'ghost', NULL)`);
      await assert.rejects(assertTargetEquals(dbA().url, t, p, res.toVersion, { key: ['id'] }), /1 missing, 1 extra/);
      assert.equal((await r.runner.verify()).equal, false);
    } finally {
      await r.close();
    }
  });

  it('an initial load below the oldest readable version of checkpoint-cdf-table fails naming the version and the oldest readable one', async function () {
    const p = sharedTable('delta-rs/checkpoint-cdf-table');
    if (!p) this.skip();
    const mapping = buildMapping({ name: 'too-early', source: p, target: 'too_early', key: ['id'] });
    const r = await openRunner(mapping, dbA().url);
    try {
      await assert.rejects(r.runner.run({ mode: 'initial', toVersion: 2 }), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, /Version 2\b.*oldest readable version is 3/);
        return true;
      });
      const st = await r.runner.status();
      assert.equal(st.checkpoint, null);
      assert.equal(st.targetExists, false);
    } finally {
      await r.close();
    }
  });

  for (const c of cases) {
    describe(c.label, () => {
      it('initial load at an early version, then one version per incremental sync: equal after each step, verify() agrees', async function () {
        const p = c.path();
        if (!p) this.skip();
        const latest = await (await DeltaTable.open(p)).latestVersion();
        assert.ok(latest > c.firstVersion, 'the table has versions after the first one');
        const mapping = buildMapping({ name: `${c.table}-step`, source: p, target: c.table, key: c.key });
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
        const mapping = buildMapping({ name: `${c.table}-bulk`, source: p, target: c.table, key: c.key });
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
