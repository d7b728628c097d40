import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { createPool } from '../../src/sync/postgres/createPool';
import { buildMapping, mappingInput } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { noisyClients, startPgBouncer } from '../helpers/pgbouncer';
import type { PgBouncer } from '../helpers/pgbouncer';
import { queryOnce } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { buildCli, createManyVersionsTable, openRunner, pollUntil, runCli, startCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Issue 12, pooled endpoints: Neon's `-pooler` host is PgBouncer in transaction mode, so
 * every transaction may run on another server connection, and whatever session state a
 * client leaves there is met by the next client of the pool. Real PgBouncer (Debian's),
 * six other clients looping `select pg_sleep(0.02)` through it as in the issue, real CLI
 * processes for the concurrent and killed runs.
 */

const TABLE = { schema: 'public', name: 'customer_profiles' };
const KEY = ['customer_id'];

/** Settings a client may leave on a server connection that PgBouncer itself does not manage. */
const POOLER_TRACKED = ['client_encoding', 'datestyle', 'timezone', 'standard_conforming_strings', 'application_name'];

interface Leftover {
  pid: number;
  advisory: number;
  settings: string[];
}

/**
 * What every server connection of the pool carries: `size` clients through the pooler each
 * open a transaction at once (so each holds a server connection of its own, which covers
 * all of a pool of that size), and read their backend's advisory locks and SET settings.
 */
async function serverConnectionState(pooledUrl: string, size: number): Promise<Leftover[]> {
  const clients = Array.from({ length: size }, () => new pg.Client({ connectionString: pooledUrl, connectionTimeoutMillis: 10_000 }));
  try {
    await Promise.all(clients.map((c) => c.connect()));
    await Promise.all(clients.map((c) => c.query('BEGIN')));
    // All pinned now: each transaction owns a distinct server connection.
    const out = await Promise.all(clients.map(async (c) => {
      const r = await c.query<{ pid: number; advisory: number; settings: string[] }>(
        `SELECT pg_backend_pid() AS pid,
                (SELECT count(*)::int FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory') AS advisory,
                ARRAY(SELECT name || '=' || setting FROM pg_settings WHERE source = 'session' AND name <> ALL($1::text[]) ORDER BY name) AS settings`,
        [POOLER_TRACKED],
      );
      return r.rows[0] as Leftover;
    }));
    await Promise.all(clients.map((c) => c.query('COMMIT')));
    return out;
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

async function assertNothingLeft(pooledUrl: string, what: string): Promise<void> {
  const state = await serverConnectionState(pooledUrl, 10);
  assert.equal(new Set(state.map((s) => s.pid)).size, state.length, 'each probe held a server connection of its own');
  const dirty = state.filter((s) => s.advisory > 0 || s.settings.length > 0);
  assert.deepEqual(dirty, [], `${what}: server connections of the pool carry session state another client would meet`);
}

describe('pooled endpoint: PgBouncer in transaction mode with six other clients (issue 12)', function () {
  this.timeout(240_000);
  const db = useTestDatabase('sync_pooler');
  let bouncer: PgBouncer;
  let pooledUrl: string;
  let noise: ReturnType<typeof noisyClients>;
  let dir: string;
  let tablePath: string;
  let latest: number;

  before(async function () {
    this.timeout(120_000);
    bouncer = await startPgBouncer({ mode: 'transaction', poolSize: 10 });
    pooledUrl = bouncer.urlFor(db().url);
    noise = noisyClients(pooledUrl, 6);
    await buildCli();
    dir = await tempDir('dns-pooler-');
    tablePath = path.join(dir, 'many_versions');
    latest = await createManyVersionsTable(tablePath, { appends: 12, perAppend: 500 });
  });

  after(async () => {
    await noise?.stop();
    await bouncer?.stop();
  });

  it('a sync leaves no advisory lock and no session setting on any server connection, and the next syncs are not refused', async () => {
    const mapping = buildMapping({ name: 'pooled-leak', source: tablePath, target: TABLE.name, key: KEY });
    const r = await openRunner(mapping, pooledUrl);
    try {
      const first = await r.runner.run({ mode: 'initial', toVersion: 0, maxAttempts: 1 });
      assert.equal(first.status, 'succeeded');
      await assertNothingLeft(pooledUrl, 'after the first sync');
      for (const v of [2, 4, 6, latest]) {
        const next = await r.runner.run({ toVersion: v, maxAttempts: 1 });
        assert.equal(next.status, 'succeeded', `sync to version ${v}`);
      }
      await assertTargetEquals(db().url, TABLE, tablePath, latest, { key: KEY });
      await assertNothingLeft(pooledUrl, 'after five syncs');
    } finally {
      await r.close();
    }
  });

  it('two runs of one pipeline through the pooler: the second is refused naming the live run, which finishes', async () => {
    const PIPELINE = 'pooled-concurrent';
    const mappingFile = await writeMappingFile(dir, PIPELINE, mappingInput({
      name: PIPELINE, source: tablePath, target: { connection: pooledUrl, table: 'concurrent' }, key: KEY, batch: { maxRows: 500, maxRowsPerSecond: 1000 },
    }));
    const init = await runCli(['sync', '--mapping', mappingFile, '--mode', 'initial', '--to-version', '0']);
    assert.equal(init.code, 0, init.stderr);
    const { child, done } = startCli(['sync', '--mapping', mappingFile]);
    try {
      const running = await pollUntil(async () => {
        const rows = await queryOnce<{ run_id: string }>(db().url, `SELECT run_id::text AS run_id FROM delta_neon_sync.runs WHERE pipeline = $1 AND status = 'running'`, [PIPELINE]);
        return rows[0];
      }, { timeoutMs: 30_000, everyMs: 10, what: 'the CLI run to be recorded as running' });
      const r = await openRunner(buildMapping({ name: PIPELINE, source: tablePath, target: 'concurrent', key: KEY }), pooledUrl);
      try {
        await expectSyncError(r.runner.run({ maxAttempts: 1 }), {
          message: new RegExp(`Another run of pipeline "${PIPELINE}" is in progress \\(started at [^,]+, run #${running.run_id}\\)`),
          retry: 'manual',
          hint: true,
        });
      } finally {
        await r.close();
      }
      const live = await done;
      assert.equal(live.code, 0, `the live run finished untouched:\n${live.stderr}`);
      const runs = await queryOnce<{ status: string }>(db().url, `SELECT status FROM delta_neon_sync.runs WHERE pipeline = $1 ORDER BY run_id`, [PIPELINE]);
      assert.deepEqual(runs.map((x) => x.status), ['succeeded', 'succeeded']);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await done;
    }
    await assertNothingLeft(pooledUrl, 'after the concurrent runs');
  });

  it('createPool sends no startup parameter PgBouncer refuses', async () => {
    const pool = createPool(pooledUrl, { max: 1 });
    try {
      const r = await pool.query<{ one: number }>('SELECT 1 AS one');
      assert.equal(r.rows[0]?.one, 1);
    } finally {
      await pool.end();
    }
  });
});
