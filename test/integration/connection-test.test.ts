import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import pg from 'pg';
import { testPostgresConnection } from '../../src/sync/postgres/testConnection';
import { freePort, getTestServer, passwordRole, useTestDatabase } from '../helpers/postgres';
import { MemorySecrets, MemoryState } from '../helpers/memoryStores';
import { openTarget } from '../../src/sync/open/openTarget';
import { TargetsModel, tableRowsBelow, type TargetNode } from '../../src/views/TargetsModel';
import { listTargetTables } from '../../src/views/targetTables';

/**
 * Issue 13 point 5, "Test Connection": against a real Postgres, each failure the Add
 * Postgres Connection flow meets says what is wrong in words a user can act on, names the
 * field to edit, and never echoes the password.
 */

function at(url: string, change: { port?: number; database?: string; user?: string; password?: string }): string {
  const u = new URL(url);
  if (change.port !== undefined) u.port = String(change.port);
  if (change.database !== undefined) u.pathname = `/${change.database}`;
  if (change.user !== undefined) u.username = change.user;
  if (change.password !== undefined) u.password = change.password;
  return u.toString();
}

async function failure(url: string): Promise<{ headline: string; field?: string; message: string; hint?: string }> {
  const r = await testPostgresConnection(url, { connectionTimeoutMillis: 10_000 });
  assert.equal(r.ok, false, `expected the connection to ${url} to fail`);
  if (r.ok) throw new Error('unreachable');
  return { headline: r.problem.headline, field: r.problem.field, message: r.problem.error.message, hint: r.problem.error.hint };
}

describe('Test Connection (a real Postgres)', () => {
  const db = useTestDatabase('dns_conntest');

  it('connects, runs select version() and reports the server version', async () => {
    const r = await testPostgresConnection(db().url);
    assert.ok(r.ok, r.ok ? '' : r.problem.headline);
    const c = new pg.Client({ connectionString: db().url });
    await c.connect();
    const major = (await c.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0]!.v.slice(0, 2);
    await c.end();
    assert.match(r.serverVersion, new RegExp(`^PostgreSQL ${Number(major)}\\b`));
    assert.ok(r.server.endsWith(`/${db().database}`), r.server);
  });

  it('a closed port: "Nothing is listening on 127.0.0.1:<port> — is Postgres running?", field port', async () => {
    const port = await freePort();
    const f = await failure(at(db().url.replace(/@[^/]+\//, `@127.0.0.1:${port}/`), {}));
    assert.equal(f.headline, `Nothing is listening on 127.0.0.1:${port} — is Postgres running?`);
    assert.equal(f.field, 'port');
    assert.match(f.hint ?? '', /host and port/);
  });

  it('a missing database: names it and the server, field database', async () => {
    const f = await failure(at(db().url, { database: 'dns_no_such_db' }));
    assert.match(f.headline, /^Database "dns_no_such_db" does not exist on .+:\d+\.$/);
    assert.equal(f.field, 'database');
  });

  it('a wrong password: "Password authentication failed for user X", field password, the password never shown', async function () {
    const server = await getTestServer();
    if (server.kind === 'external') this.skip();
    await passwordRole(server);
    const f = await failure(at(db().url, { user: 'dns_pw_user', password: 'Wr0ng-S3cret' }));
    assert.equal(f.headline, 'Password authentication failed for user "dns_pw_user".');
    assert.equal(f.field, 'password');
    assert.ok(!`${f.headline} ${f.message} ${f.hint}`.includes('Wr0ng-S3cret'));
    // No password where the server asks for one: said so, and the half-open login is closed
    // (otherwise the server keeps it until authentication_timeout and dropping the database hangs).
    const none = await failure(at(db().url, { user: 'dns_pw_user', password: '' }));
    assert.equal(none.headline, 'The server asks for a password for user "dns_pw_user", but none was given.');
    assert.equal(none.field, 'password');
    const right = await testPostgresConnection(at(db().url, { user: 'dns_pw_user', password: 'right-pass' }));
    assert.ok(right.ok);
  });

  it('a saved connection with a wrong password: its Targets error row names the user of its connection string', async function () {
    const server = await getTestServer();
    if (server.kind === 'external') this.skip();
    await passwordRole(server);
    const model = new TargetsModel(new MemoryState(), new MemorySecrets());
    // As the Targets view lists a saved connection's tables (extension.ts: openTarget, then listTargetTables).
    const list = async (name: string) => {
      const t = await openTarget(await model.connectionString(name));
      try {
        return await listTargetTables(t.pool, false);
      } finally {
        await t.close();
      }
    };
    const rowOf = async (name: string, url: string): Promise<TargetNode | undefined> => {
      const info = await model.add(name, url);
      return (await tableRowsBelow({ kind: 'connection', info }, list, (n) => model.address(n)))?.[0];
    };
    const wrong = await rowOf('wrong-pw', at(db().url, { user: 'dns_pw_user', password: 'Wr0ng-S3cret' }));
    assert.equal(wrong?.kind === 'message' && wrong.label, 'Password authentication failed for user "dns_pw_user".');
    assert.equal(wrong?.kind === 'message' && wrong.connection, 'wrong-pw');
    const good = await rowOf('good-pw', at(db().url, { user: 'dns_pw_user', password: 'right-pass' }));
    assert.ok(good && !(good.kind === 'message' && good.severity === 'error'), `the good connection's first row: ${JSON.stringify(good)}`);
  });

  it('a saved connection without a password: its row says so and names Edit Connection, and no login is left behind (DROP DATABASE goes through)', async function () {
    this.timeout(90_000);
    const server = await getTestServer();
    if (server.kind === 'external') this.skip();
    await passwordRole(server);
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    // Bounded: a DROP DATABASE that waits on a left-behind login fails after 20 s instead of 60.
    await admin.query(`SET statement_timeout = '20s'`);
    const name = `dns_nopw_${process.pid}`;
    try {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${name}"`);
      const model = new TargetsModel(new MemoryState(), new MemorySecrets());
      // As the extension lists a saved connection's tables (SyncEngine.withTarget: a pool per listing, ended after it).
      const list = async (n: string) => {
        const t = await openTarget(await model.connectionString(n));
        try {
          return await listTargetTables(t.pool, false);
        } finally {
          await t.close();
        }
      };
      const info = await model.add('no-pw', at(at(db().url, { database: name }), { user: 'dns_pw_user', password: '' }));
      const row = (await tableRowsBelow({ kind: 'connection', info }, list, (n) => model.address(n)))?.[0];
      assert.equal(row?.kind, 'message');
      if (row?.kind !== 'message') throw new Error('unreachable');
      assert.equal(row.severity, 'error');
      assert.equal(row.connection, 'no-pw');
      assert.equal(row.label, 'No password for user "dns_pw_user": the server asks for one. Add it with Edit Connection.');
      assert.match(row.tooltip ?? '', /Edit Connection/);
      // The failed login is closed at once, not left to the server's authentication_timeout:
      // no backend of that database or user remains, so a plain DROP DATABASE (no FORCE) succeeds.
      const left = await admin.query<{ pid: number; state: string | null; usename: string | null }>(
        `SELECT pid, state, usename FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (datname = $1 OR usename = 'dns_pw_user')`,
        [name],
      );
      assert.deepEqual(left.rows, [], `sessions left behind: ${JSON.stringify(left.rows)}`);
      await admin.query(`DROP DATABASE "${name}"`);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
      await admin.end();
    }
  });

  it('an unknown host: names it, field host', async () => {
    const f = await failure(at(db().url, {}).replace(/@[^/]+\//, '@no-such-host.invalid:5432/'));
    assert.equal(f.headline, 'Unknown host "no-such-host.invalid": check the host name.');
    assert.equal(f.field, 'host');
  });
});
