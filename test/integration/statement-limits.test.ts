import assert from 'node:assert/strict';
import pg from 'pg';
import type { Pool } from 'pg';
import { createPool } from '../../src/sync/postgres/createPool';
import { PostgresTarget } from '../../src/sync/postgres/PostgresTarget';
import { expectSyncError } from '../helpers/expectSyncError';
import { queryOnce } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';

/**
 * The pool's limits (lock_timeout, statement_timeout) hold for statements the engine runs
 * outside its own transactions too: the lease, checkpoint and run-log statements, catalog
 * reads. Another session holds a lock one of them needs (as an admin's ALTER TABLE on a
 * state table would, left open); the statement gives up after lock_timeout, naming that
 * session, instead of waiting for as long as the other session keeps its transaction open.
 */

const table = { schema: 'public', name: 'limits_t' };

describe('statement limits outside transactions (lock_timeout for lease, checkpoint and run-log statements)', function () {
  this.timeout(60_000);
  const db = useTestDatabase('stmt_limits');
  const pools: Pool[] = [];
  let blocker: pg.Client | undefined;

  function target(): PostgresTarget {
    const u = new URL(db().url);
    u.searchParams.set('lock_timeout', '500');
    const pool = createPool(u.toString(), { max: 4 });
    pools.push(pool);
    return new PostgresTarget(pool, table);
  }

  /** Another session, application "admin-migration", holding `lock` on `relation` in an open transaction. */
  async function holdLock(relation: string, mode: string): Promise<number> {
    blocker = new pg.Client({ connectionString: db().url, application_name: 'admin-migration' });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query(`LOCK TABLE ${relation} IN ${mode} MODE`);
    return (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;
  }

  before(async () => {
    await queryOnce(db().url, 'CREATE TABLE public.limits_t (id text PRIMARY KEY, v text)');
    await target().prepare();
  });

  afterEach(async () => {
    await blocker?.end().catch(() => undefined);
    blocker = undefined;
  });

  after(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  });

  const cases: Array<{ what: string; relation: string; mode: string; run: (t: PostgresTarget) => Promise<unknown> }> = [
    { what: 'taking the run lease', relation: 'delta_neon_sync.run_leases', mode: 'SHARE', run: (t) => t.acquireRun('p-lease') },
    { what: 'reading the checkpoint', relation: 'delta_neon_sync.checkpoints', mode: 'ACCESS EXCLUSIVE', run: (t) => t.readCheckpoint('p-read') },
    { what: 'reading the run log (status)', relation: 'delta_neon_sync.runs', mode: 'ACCESS EXCLUSIVE', run: (t) => t.runLog.history('p-read', 5) },
    { what: 'writing the run log', relation: 'delta_neon_sync.runs', mode: 'SHARE', run: (t) => t.runLog.start({ pipeline: 'p-write', mode: 'incremental', fromVersion: 1, toVersion: 2 }) },
  ];

  for (const c of cases) {
    it(`${c.what}, blocked by another session's lock on ${c.relation}, fails after lock_timeout naming that session`, async () => {
      const t = target();
      const pid = await holdLock(c.relation, c.mode);
      const err = await expectSyncError(c.run(t), { setting: 'lock_timeout', retry: 'manual', message: /gave up waiting for a lock/ });
      assert.match(err.message, new RegExp(`held by pid ${pid} \\(${c.mode.replace(' ', '')}Lock on ${c.relation.replace('.', '\\.')}, application admin-migration`, 'i'), err.message);
      // The blocker still holds its transaction; nothing of ours is left waiting or open.
      const ours = await queryOnce<{ n: number }>(db().url, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'delta-neon-sync' AND (wait_event_type = 'Lock' OR state LIKE 'idle in transaction%')`);
      assert.equal(ours[0]?.n, 0);
    });
  }

  it('once the lock is gone the same statements work, each in a transaction of its own that leaves no setting behind', async () => {
    const t = target();
    const guard = await t.acquireRun('p-after');
    try {
      assert.equal(await t.readCheckpoint('p-after'), undefined);
      const id = await t.runLog.start({ pipeline: 'p-after', mode: 'incremental', fromVersion: 1, toVersion: 2 });
      await t.runLog.finish(id, { status: 'succeeded', rows: 0, toVersion: 2 });
      assert.equal((await t.runLog.history('p-after', 5))[0]?.status, 'succeeded');
    } finally {
      await guard.release();
    }
    // SET LOCAL only: a pooled connection goes back with the server's own settings.
    const c = await pools[pools.length - 1]!.connect();
    try {
      // A plain BEGIN of our own (passed through as it is): the session's settings, not the engine's.
      await c.query('BEGIN');
      const r = await c.query<{ lt: string; st: string }>(`SELECT current_setting('lock_timeout') AS lt, current_setting('statement_timeout') AS st`);
      await c.query('COMMIT');
      assert.deepEqual(r.rows[0], { lt: '0', st: '0' });
    } finally {
      c.release();
    }
  });
});
