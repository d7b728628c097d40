import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, getTestServer, restartTestServer, useTestDatabase } from '../helpers/postgres';

describe('postgres test harness', function () {
  this.timeout(120_000);
  const db = useTestDatabase('harness');

  it('provides a real PostgreSQL server (not a mock) that answers queries', async () => {
    const c = new pg.Client({ connectionString: db().url });
    await c.connect();
    try {
      const r = await c.query<{ v: string; n: string }>(`SELECT current_setting('server_version_num') AS n, version() AS v`);
      assert.match(r.rows[0]?.v ?? '', /^PostgreSQL \d+/);
      assert.ok(Number(r.rows[0]?.n) >= 130000);
    } finally {
      await c.end();
    }
  });

  it('gives each createTestDatabase call its own empty database, and drop removes it', async () => {
    const a = await createTestDatabase('iso');
    const b = await createTestDatabase('iso');
    assert.notEqual(a.url, b.url);
    const ca = new pg.Client({ connectionString: a.url });
    await ca.connect();
    await ca.query('CREATE TABLE only_in_a (x int)');
    await ca.end();
    const cb = new pg.Client({ connectionString: b.url });
    await cb.connect();
    const r = await cb.query(`SELECT to_regclass('only_in_a') AS t`);
    await cb.end();
    assert.equal(r.rows[0].t, null);
    await a.drop();
    await b.drop();
    const server = await getTestServer();
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    const left = await admin.query('SELECT count(*)::int AS n FROM pg_database WHERE datname = ANY($1)', [[a.database, b.database]]);
    await admin.end();
    assert.equal(left.rows[0].n, a.schema ? 1 : 0);
  });

  it('restarts the server: an open connection dies, new connections work', async function () {
    const server = await getTestServer();
    if (!server.canRestart) this.skip();
    const c = new pg.Client({ connectionString: db().url });
    c.on('error', () => undefined);
    await c.connect();
    await restartTestServer('fast');
    await assert.rejects(c.query('SELECT 1'));
    await c.end().catch(() => undefined);
    const c2 = new pg.Client({ connectionString: db().url });
    await c2.connect();
    assert.equal((await c2.query('SELECT 41 + 1 AS x')).rows[0].x, 42);
    await c2.end();
  });
});
