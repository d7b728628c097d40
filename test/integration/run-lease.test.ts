import assert from 'node:assert/strict';
import type { Pool } from 'pg';
import { createPool } from '../../src/sync/postgres/createPool';
import { PostgresTarget } from '../../src/sync/postgres/PostgresTarget';
import { defaultTargetColumns } from '../../src/sync/postgres/renderCreateTable';
import { thisProcess } from '../../src/sync/postgres/runLease';
import { readCheckpoint } from '../../src/sync/postgres/stateTables';
import { field, string } from '../builders/deltaFields';
import { expectSyncError } from '../helpers/expectSyncError';
import { queryOnce } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';

/**
 * The run lease (src/sync/postgres/runLease.ts) below the runner, on a direct connection:
 * refusal naming the holder, take-over races, a holder on another machine, the heartbeat,
 * and the fence that keeps a run whose lease was taken over from committing.
 */

const table = { schema: 'public', name: 'lease_t' };
const columns = defaultTargetColumns([field('id', string(), { nullable: false }), field('v', string())]);

describe('run lease (state table row, no session lock)', function () {
  this.timeout(60_000);
  const db = useTestDatabase('run_lease');
  const pools: Pool[] = [];

  function target(params: Record<string, string> = {}): PostgresTarget {
    const u = new URL(db().url);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    const pool = createPool(u.toString(), { max: 4 });
    pools.push(pool);
    return new PostgresTarget(pool, table);
  }

  before(async () => {
    await queryOnce(db().url, 'CREATE TABLE public.lease_t (id text PRIMARY KEY, v text)');
    await target().prepare();
  });

  after(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  });

  /** A lease row as a process on another machine would have left it. */
  async function foreignLease(pipeline: string, expired: boolean): Promise<void> {
    await queryOnce(
      db().url,
      `INSERT INTO delta_neon_sync.run_leases (pipeline, token, holder, holder_host, holder_pid, holder_scope, acquired_at, renewed_at, expires_at)
       VALUES ($1, 'foreign-token', 'pid 4242 on host elsewhere (user etl)', 'elsewhere', 4242, 'elsewhere|boot|pid:[1]',
               now() - interval '2 min', now() - interval '70 s', now() + CASE WHEN $2 THEN interval '-10 s' ELSE interval '1 h' END)`,
      [pipeline, expired],
    );
  }

  it('a second run of a pipeline is refused naming the holder and when its lease expires; after release the next run takes it', async () => {
    const a = target();
    const b = target();
    const guard = await a.acquireRun('p-refuse');
    try {
      const err = await expectSyncError(b.acquireRun('p-refuse'), {
        message: /^Another run of pipeline "p-refuse" is in progress \(started at [^)]+\), held by pid \d+ on host .* since .* expires at /,
        retry: 'manual',
        setting: 'run_lease_timeout',
      });
      assert.ok(err.message.includes(`pid ${process.pid} `), err.message);
      assert.equal(await b.isRunning('p-refuse'), true);
    } finally {
      await guard.release();
    }
    assert.equal(await b.isRunning('p-refuse'), false);
    const next = await b.acquireRun('p-refuse');
    await next.release();
    assert.deepEqual(await queryOnce(db().url, `SELECT * FROM delta_neon_sync.run_leases WHERE pipeline = 'p-refuse'`), []);
  });

  it('a lease of this process that none of its runs holds (its release was lost: server down, or a crash with synchronous_commit=off) is taken over by its next run at once, with no notice', async () => {
    const me = thisProcess();
    // As a run of this process leaves it when its release's DELETE never reached the server: live for a minute.
    await queryOnce(
      db().url,
      `INSERT INTO delta_neon_sync.run_leases (pipeline, token, holder, holder_host, holder_pid, holder_scope, acquired_at, renewed_at, expires_at)
       VALUES ('p-own-leftover', 'lost-release', $1, $2, $3, $4, now(), now(), now() + interval '1 min')`,
      [me.description, me.host, me.pid, me.scope],
    );
    const next = await target().acquireRun('p-own-leftover');
    try {
      assert.equal(next.notice, undefined);
      const now = await queryOnce<{ token: string }>(db().url, `SELECT token FROM delta_neon_sync.run_leases WHERE pipeline = 'p-own-leftover'`);
      assert.notEqual(now[0]?.token, 'lost-release', 'the leftover was taken over');
      // A lease a live run of this process holds is still refused.
      await expectSyncError(target().acquireRun('p-own-leftover'), { message: /is in progress/, retry: 'manual' });
    } finally {
      await next.release();
    }
  });

  it('a live lease of a process on another machine is never taken over early, even though no such pid runs here', async () => {
    await foreignLease('p-foreign', false);
    await expectSyncError(target().acquireRun('p-foreign'), { message: /held by pid 4242 on host elsewhere \(user etl\)/, retry: 'manual' });
    assert.equal(await target().isRunning('p-foreign'), true);
  });

  it('an expired lease: of five runs taking it over at once exactly one wins, naming the old holder; the others are refused naming the winner', async () => {
    await foreignLease('p-race', true);
    const targets = Array.from({ length: 5 }, () => target());
    const results = await Promise.allSettled(targets.map((t) => t.acquireRun('p-race')));
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    try {
      assert.equal(won.length, 1, `one winner: ${lost.map((e) => e.message).join('\n')}`);
      assert.match(won[0]?.notice ?? '', /^Took over the run lease of pipeline "p-race" from pid 4242 on host elsewhere \(user etl\): it was last renewed at .* and expired at /);
      assert.equal(lost.length, 4);
      for (const e of lost) assert.match(e.message, new RegExp(`held by pid ${process.pid} on host `));
    } finally {
      await Promise.all(won.map((g) => g.release()));
    }
  });

  it('the heartbeat keeps a lease alive past its length while the run works', async () => {
    const a = target({ run_lease_timeout: '2', run_lease_renew: '0.2' });
    const guard = await a.acquireRun('p-heartbeat');
    try {
      // Three lease lengths: without renewals it would have expired twice over.
      await new Promise((r) => setTimeout(r, 6000));
      const rows = await queryOnce<{ live: boolean; renewed: boolean }>(
        db().url,
        `SELECT expires_at > clock_timestamp() AS live, renewed_at > acquired_at AS renewed FROM delta_neon_sync.run_leases WHERE pipeline = 'p-heartbeat'`,
      );
      assert.deepEqual(rows, [{ live: true, renewed: true }]);
      await expectSyncError(target().acquireRun('p-heartbeat'), { message: /is in progress/ });
    } finally {
      await guard.release();
    }
  });

  it('a run whose lease was taken over commits nothing: its checkpoint write is refused, the data rolled back', async () => {
    const a = target();
    const b = target();
    const guard = await a.acquireRun('p-fence');
    const tx = await a.beginApply({ columns, key: ['id'], pipeline: 'p-fence', source: 'test', expectVersion: null });
    await tx.apply({ upserts: [[{ id: 'x', v: 'from the stalled run' }]], deletes: [] });
    // The run stalls past its lease (simulated: the lease is made to have expired), and
    // another run takes the pipeline over.
    await queryOnce(db().url, `UPDATE delta_neon_sync.run_leases SET expires_at = clock_timestamp() - interval '1 s' WHERE pipeline = 'p-fence'`);
    const taker = await b.acquireRun('p-fence');
    try {
      assert.match(taker.notice ?? '', /Took over the run lease of pipeline "p-fence" from pid \d+ on host .* expired at /);
      await expectSyncError(tx.commit({ version: 1, commitTimestamp: null }), {
        message: /The run lease of pipeline "p-fence" was taken over by another run before this run committed version 1; nothing of this batch was applied/,
        retry: 'manual',
      });
      assert.equal(await readCheckpointOf(db().url, 'p-fence'), undefined);
      assert.deepEqual(await queryOnce(db().url, 'SELECT * FROM public.lease_t'), []);
    } finally {
      await taker.release();
      await guard.release();
    }
  });
});

async function readCheckpointOf(url: string, pipeline: string): Promise<unknown> {
  const pool = createPool(url, { max: 1 });
  try {
    const c = await pool.connect();
    try {
      return await readCheckpoint(c, pipeline);
    } finally {
      c.release();
    }
  } finally {
    await pool.end();
  }
}
