import assert from 'node:assert/strict';
import type { ClientBase } from 'pg';
import type { Row } from '../../src/sync/delta/types';
import { ApplyStream, dryRunChanges } from '../../src/sync/postgres/applyChanges';
import type { ApplyPart, ApplyResult, StagedChanges } from '../../src/sync/ports/targetTypes';
import { defaultTargetColumns } from '../../src/sync/postgres/renderCreateTable';
import type { SoftDeleteMarker } from '../../src/sync/ports/targetTypes';
import { readCheckpoint } from '../../src/sync/postgres/stateTables';
import { isSyncError } from '../../src/sync/errors';
import { useTargetPool } from '../helpers/postgres';
import { boolean, decimal, field, string } from '../builders/deltaFields';

/**
 * The apply engine's strategy combinations that the sync tests do not reach: an ApplyStream
 * in parts with dead letters and a soft-delete marker (rows refused by every statement and
 * while staging, in several parts), the same parts as a dry run, a dry run whose later
 * transactions each refuse rows, and a commit without parts. The expected counts are worked
 * out by hand from the rows below, not taken from the engine.
 */

const columns = defaultTargetColumns([field('id', string(), { nullable: false }), field('owner', string()), field('balance', decimal(10, 2)), field('locked', boolean())]);
const key = ['id'];
const softDelete: SoftDeleteMarker = { column: 'deleted', kind: 'boolean' };
const table = { name: 'accounts' };

/** A live row to upsert. */
function acct(id: string, balance: string, owner = `Owner ${id}`): Row {
  return { id, owner, balance, locked: false, deleted: false };
}
/** A soft delete of `id`. */
function mark(id: string): Row {
  return { id, deleted: true };
}

/** Counts and refused rows of a result, in a form to compare whole. */
function summary(r: ApplyResult): Record<string, unknown> {
  return {
    inserted: r.inserted, updated: r.updated, unchanged: r.unchanged, deleted: r.deleted, deleteMissing: r.deleteMissing, softDeleted: r.softDeleted,
    staged: r.staged, rejected: r.rejected.map((x) => [x.op, JSON.parse(x.keyJson ?? 'null').id, x.sqlstate, x.phase]),
  };
}

async function tableText(c: ClientBase): Promise<string> {
  return (await c.query<{ t: string }>(`SELECT string_agg(a::text, ';' ORDER BY id) AS t FROM accounts a`)).rows[0]?.t ?? '';
}

describe('apply engine: isolating strategy with soft deletes in parts, dry-run ending, empty commit (real server)', function () {
  this.timeout(120_000);
  const { pool, withClient } = useTargetPool('applystrat', 4);

  before(async () => {
    await pool().query(`
      CREATE TABLE accounts (
        id text PRIMARY KEY, owner text, balance numeric(10,2) CONSTRAINT balance_nonneg CHECK (balance >= 0),
        locked boolean NOT NULL DEFAULT false, deleted boolean NOT NULL DEFAULT false,
        CONSTRAINT locked_stays CHECK (NOT (locked AND deleted)));
      CREATE TABLE holds (account_id text REFERENCES accounts (id));
      INSERT INTO accounts (id, owner, balance, locked, deleted) VALUES
        ('a01', 'Owner a01', 10, false, false), ('a02', 'Owner a02', 20, false, false), ('a03', 'Owner a03', 30, false, false),
        ('a04', 'Owner a04', 40, false, false), ('a05', 'Owner a05', 50, false, false), ('a06', 'Owner a06', 60, true, false),
        ('a07', 'Owner a07', 70, false, true);
      INSERT INTO holds VALUES ('a04');`);
  });

  // Part 1: a10, a12 inserted, a11 refused (negative balance); a03 deleted, a04 refused
  // (held by a foreign key), zz1 missing; a05 marked, a06 refused (locked), zz2 missing.
  // Part 2: a01 updated, a02 unchanged, a13 refused while staging (NUL), a14 inserted;
  // a07 already marked (unchanged), a10 (inserted by part 1) marked.
  const parts = (): ApplyPart[] => [
    {
      upserts: [[acct('a10', '1.00'), acct('a11', '-1.00')], [acct('a12', '2.00')]],
      deletes: [[{ id: 'a03' }, { id: 'a04' }, { id: 'zz1' }]],
      softDeletes: [[mark('a05'), mark('a06'), mark('zz2')]],
    },
    {
      upserts: [[acct('a01', '11.00'), acct('a02', '20.00'), acct('a13', '3.00', 'nul\u0000byte'), acct('a14', '4.00')]],
      deletes: [],
      softDeletes: [[mark('a07'), mark('a10')]],
    },
  ];
  const expected = {
    inserted: 3, updated: 1, unchanged: 2, deleted: 1, deleteMissing: 2, softDeleted: 2,
    staged: { upserts: 6, deletes: 3, softDeletes: 5 },
    rejected: [['delete', 'a04', '23503', 'apply'], ['delete', 'a06', '23514', 'apply'], ['upsert', 'a11', '23514', 'apply'], ['upsert', 'a13', '22021', 'staging']],
  };
  const checkpoint = { pipeline: 'strat', source: 'src', version: 3, commitTimestamp: null };

  async function applyParts(c: ClientBase, mode: { deadLetter?: boolean; dryRun?: boolean }): Promise<ApplyResult> {
    const stream = await ApplyStream.begin(c, { table, columns, key, softDelete, checkpoint, expectVersion: null, batchRows: 2, ...mode });
    for (const part of parts()) await stream.apply(part);
    return stream.commit(checkpoint);
  }

  it('a dry run of parts with a soft-delete marker reports every refused row and the exact counts, and writes nothing, not even dead letters', async () => {
    await withClient(async (c) => {
      const before = await tableText(c);
      const r = await applyParts(c, { dryRun: true });
      assert.deepEqual(summary(r), expected);
      assert.equal(await tableText(c), before);
      assert.equal((await c.query(`SELECT count(*)::int AS n FROM delta_neon_sync.dead_letters WHERE pipeline = 'strat'`)).rows[0].n, 0);
      assert.equal(await readCheckpoint(c, 'strat'), undefined);
    });
  });

  it('dead letters across parts with a soft-delete marker: refused rows of every part are stored, the rest applied, one checkpoint with the applied rows', async () => {
    await withClient(async (c) => {
      const r = await applyParts(c, { deadLetter: true });
      assert.deepEqual(summary(r), expected);
      const dl = await c.query(`SELECT key->>'id' AS k, "row"->>'balance' AS balance, sqlstate, version FROM delta_neon_sync.dead_letters WHERE pipeline = 'strat' ORDER BY 1`);
      assert.deepEqual(dl.rows, [
        { k: 'a04', balance: null, sqlstate: '23503', version: 3n },
        { k: 'a06', balance: null, sqlstate: '23514', version: 3n },
        { k: 'a11', balance: '-1.00', sqlstate: '23514', version: 3n },
        { k: 'a13', balance: '3.00', sqlstate: '22021', version: 3n },
      ]);
      const cp = await readCheckpoint(c, 'strat');
      assert.equal(cp?.version, 3n);
      assert.equal(cp?.appliedRows, 7n); // 3 inserted + 1 updated + 1 deleted + 2 soft-deleted
      const rows = await c.query(`SELECT id, balance::text AS balance, deleted FROM accounts ORDER BY id`);
      assert.deepEqual(rows.rows, [
        { id: 'a01', balance: '11.00', deleted: false },
        { id: 'a02', balance: '20.00', deleted: false },
        { id: 'a04', balance: '40.00', deleted: false },
        { id: 'a05', balance: '50.00', deleted: true },
        { id: 'a06', balance: '60.00', deleted: false },
        { id: 'a07', balance: '70.00', deleted: true },
        { id: 'a10', balance: '1.00', deleted: true },
        { id: 'a12', balance: '2.00', deleted: false },
        { id: 'a14', balance: '4.00', deleted: false },
      ]);
    });
  });

  it('a dry run whose first and later transactions each refuse rows reports them all, each transaction on the state the earlier leave', async () => {
    await withClient(async (c) => {
      const before = await tableText(c);
      async function* later(): AsyncGenerator<StagedChanges> {
        // b01 was inserted by the first transaction: an update here. b03 refused.
        yield { upserts: [[acct('b01', '5.50'), acct('b03', '-3.00'), acct('b04', '4.00')]], deletes: [], softDeletes: [] };
        // b02 was refused in the first transaction, so it is absent here: a soft delete misses it.
        yield { upserts: [[acct('b05', '-5.00')]], deletes: [], softDeletes: [[mark('b02'), mark('b04')]] };
      }
      const r = await dryRunChanges(c, {
        table, columns, key, softDelete, checkpoint: { ...checkpoint, version: 4 },
        upserts: [[acct('b01', '1.00'), acct('b02', '-2.00')]], deletes: [], softDeletes: [], later: later(),
      });
      assert.deepEqual(summary(r), {
        inserted: 2, updated: 1, unchanged: 0, deleted: 0, deleteMissing: 1, softDeleted: 1,
        staged: { upserts: 6, deletes: 0, softDeletes: 2 },
        rejected: [['upsert', 'b02', '23514', 'apply'], ['upsert', 'b03', '23514', 'apply'], ['upsert', 'b05', '23514', 'apply']],
      });
      assert.equal(await tableText(c), before);
      assert.equal((await readCheckpoint(c, 'strat'))?.version, 3n);
    });
  });

  it('a commit without parts advances the checkpoint alone with 0 applied rows, and only from the expected version', async () => {
    await withClient(async (c) => {
      const before = await tableText(c);
      const stream = await ApplyStream.begin(c, { table, columns, key, softDelete, checkpoint, expectVersion: 3 });
      const r = await stream.commit({ ...checkpoint, version: 9, commitTimestamp: 1_700_000_000_000 });
      assert.deepEqual(summary(r), {
        inserted: 0, updated: 0, unchanged: 0, deleted: 0, deleteMissing: 0, softDeleted: 0,
        staged: { upserts: 0, deletes: 0, softDeletes: 0 }, rejected: [],
      });
      const cp = await readCheckpoint(c, 'strat');
      assert.equal(cp?.version, 9n);
      assert.equal(cp?.appliedRows, 0n);
      assert.equal(await tableText(c), before);
      await assert.rejects(ApplyStream.begin(c, { table, columns, key, softDelete, checkpoint, expectVersion: 3 }), (e: unknown) => isSyncError(e) && /at version 9, expected 3/.test(e.message));
    });
  });
});
