import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { openLakebasePool } from '../../src/sync/lakebase/openLakebasePool';
import { openSource } from '../../src/sync/open/openSource';
import { mappingTarget, openTarget } from '../../src/sync/open/openTarget';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { FakeLakebaseWorkspace, LAKEBASE_PASSWORD_GROUP } from '../helpers/fakeLakebaseWorkspace';
import { freePort, startThrowawayServer } from '../helpers/postgres';
import type { TestServer } from '../helpers/postgres';
import { buildCli, pollUntil, runCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Lakebase targets (issue 12, point 3): a `lakebase:` reference resolved with the Databricks
 * unified auth (a ~/.databrickscfg profile with a PAT, a Databricks connection with an OAuth
 * M2M secret), against a local workspace whose database credentials are real, expiring
 * passwords at its Postgres endpoint (a gateway in front of a throwaway PostgreSQL: every
 * token logs in until it expires, as on Lakebase), so a run longer than a token's life only
 * succeeds if every new connection gets a fresh token and the connection doing a COPY keeps
 * it going after its token expired.
 */

const ENDPOINT = 'projects/proj-sales/branches/br-main/endpoints/ep-primary';
const SP = '6f1c2a9e-0b3d-4c57-9d2e-1a2b3c4d5e6f'; // a service principal's application id = its role
const SP_SECRET = 'dose-sp-secret';
const ALICE = 'alice@example.com';
const INSTANCE = 'sales-oltp'; // a Lakebase Provisioned database instance
const ALICE_PAT = 'dapi-alice-0123456789';

describe('Lakebase targets through a local Databricks workspace (tokens are expiring role passwords)', function () {
  this.timeout(240_000);
  let server: TestServer;
  let workspace: FakeLakebaseWorkspace;
  let pgPort: number;
  let dir: string;
  let configFile: string;

  /** A database owned by `role` (as a Lakebase database is by its creator) and its admin URL. */
  async function databaseFor(role: string, name: string): Promise<string> {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} OWNER ${pg.escapeIdentifier(role)}`);
    } finally {
      await admin.end();
    }
    const u = new URL(server.adminUrl);
    u.pathname = `/${name}`;
    return u.toString();
  }

  function reference(database: string, profile: string, extra = ''): string {
    return `lakebase:${ENDPOINT}/${database}?profile=${profile}&host=127.0.0.1&port=${pgPort}&sslmode=disable${extra}`;
  }

  /** Env for a Databricks connection named `name` signing in with OAuth M2M. */
  function m2mEnv(name: string, secret: string): Record<string, string> {
    const p = `DELTA_NEON_SYNC_DATABRICKS_${name.toUpperCase()}_`;
    return { [`${p}HOST`]: workspace.url, [`${p}CLIENT_ID`]: SP, [`${p}CLIENT_SECRET`]: secret };
  }

  /** Waits (polling) until the newest credential the workspace issued has expired. */
  async function untilLatestTokenExpired(): Promise<void> {
    const last = workspace.issued.at(-1);
    if (!last) return;
    while (Date.now() <= last.expiresAt.getTime() + 200) await new Promise((r) => setTimeout(r, 100));
  }

  before(async function () {
    this.timeout(120_000);
    server = await startThrowawayServer({ hba: [`host all +${LAKEBASE_PASSWORD_GROUP} 127.0.0.1/32 scram-sha-256`] });
    workspace = await FakeLakebaseWorkspace.start({
      adminUrl: server.adminUrl,
      endpoints: [ENDPOINT],
      instances: [{ name: INSTANCE, host: '127.0.0.1' }],
      principals: [{ role: SP, clientSecret: SP_SECRET }, { role: ALICE, pat: ALICE_PAT }],
      tokenTtlMs: 2000,
    });
    // The workspace's Postgres endpoint (it checks the token, then logs in to the server).
    pgPort = workspace.pgPort;
    dir = await tempDir('dns-lakebase-');
    configFile = path.join(dir, 'databrickscfg');
    await fs.writeFile(configFile, `[DEFAULT]\nhost = https://unused.example.com\n\n[alice-pat]\nhost = ${workspace.url}\ntoken = ${ALICE_PAT}\n\n[alice-old]\nhost = ${workspace.url}\ntoken = dapi-revoked-token\n`);
  });

  after(async () => {
    await workspace?.stop();
    await server?.stop();
  });

  it('the roles log in only with a token the workspace issued, and not once it has expired (the setup is real)', async () => {
    const connect = async (password: string): Promise<void> => {
      const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: SP, password, database: 'postgres' });
      await c.connect();
      await c.end();
    };
    await assert.rejects(connect('not-a-token'), /password authentication failed/);
    // Fetch one credential the way the engine does.
    const lb = await openLakebasePool(reference('postgres', 'lbcheck'), { env: m2mEnv('lbcheck', SP_SECRET) });
    try {
      const token = await lb.tokens.token();
      await connect(token);
      const issued = workspace.issued.find((i) => i.token === token);
      assert.ok(issued, 'the token came from the workspace');
      await untilLatestTokenExpired();
      await assert.rejects(connect(token), /password authentication failed/);
    } finally {
      await lb.close();
    }
  });

  it('an earlier token keeps logging in after newer ones were issued, until it expires itself (as on Lakebase)', async () => {
    const connect = async (password: string): Promise<string | undefined> => {
      const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: SP, password, database: 'postgres' });
      await c.connect();
      try {
        return (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u;
      } finally {
        await c.end();
      }
    };
    const a = await openLakebasePool(reference('postgres', 'lbolder'), { env: m2mEnv('lbolder', SP_SECRET) });
    const b = await openLakebasePool(reference('postgres', 'lbnewer'), { env: m2mEnv('lbnewer', SP_SECRET) });
    try {
      const older = await a.tokens.token();
      const newer = await b.tokens.token();
      assert.notEqual(older, newer);
      const olderIssued = workspace.issued.find((i) => i.token === older);
      assert.ok(olderIssued && workspace.issued.indexOf(olderIssued) < workspace.issued.findIndex((i) => i.token === newer), 'the older token was issued first');
      // Precondition, not a timing check: the older token has not expired yet.
      assert.ok(Date.now() < olderIssued.expiresAt.getTime(), 'the older token expired before the test could use it');
      assert.deepEqual([await connect(older), await connect(newer)], [SP, SP]);
      await untilLatestTokenExpired();
      await assert.rejects(connect(older), /password authentication failed/);
      await assert.rejects(connect(newer), /password authentication failed/);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('connections opened together share one credential request, and each logs in as the principal', async () => {
    const lb = await openLakebasePool(reference('postgres', 'lbshare'), { env: m2mEnv('lbshare', SP_SECRET), pool: { max: 4 } });
    try {
      await untilLatestTokenExpired(); // nothing cached anywhere: the next connect must ask
      const before = workspace.credentialRequests;
      const settled = await Promise.allSettled([0, 1, 2, 3].map(() => lb.pool.connect()));
      const clients = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      try {
        assert.deepEqual(settled.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), [], 'every connection logged in');
        assert.equal(workspace.credentialRequests - before, 1, 'one request for four new connections');
        const users = await Promise.all(clients.map(async (c) => (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u));
        assert.deepEqual(users, [SP, SP, SP, SP]);
      } finally {
        for (const c of clients) c.release();
      }
    } finally {
      await lb.close();
    }
  });

  it('CLI sync --target lakebase:...?profile=<~/.databrickscfg profile with a PAT> loads the table as the signed-in user', async () => {
    await buildCli();
    await databaseFor(ALICE, 'lb_cli');
    const t = await createCustomerProfilesTable(path.join(dir, 'cli_customers'), { rows: 300 });
    const target = reference('lb_cli', 'alice-pat');
    const before = workspace.credentialRequests;
    const out = await runCli(['sync', '--source', t.path, '--target', target, '--table', 'public.customers', '--key', 'customer_id'], {
      DATABRICKS_CONFIG_FILE: configFile,
    });
    assert.equal(out.code, 0, out.stderr);
    assert.ok(workspace.credentialRequests > before, 'the CLI asked the workspace for a database credential');
    const adminDb = new URL(server.adminUrl);
    adminDb.pathname = '/lb_cli';
    await assertTargetEquals(adminDb.toString(), { schema: 'public', name: 'customers' }, t.path, t.version, { key: ['customer_id'] });
    // Written as the role of the profile's user (found through SCIM Me), not the admin.
    const c = new pg.Client({ connectionString: adminDb.toString() });
    await c.connect();
    try {
      assert.equal((await c.query(`SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'customers'`)).rows[0]?.tableowner, ALICE);
    } finally {
      await c.end();
    }
  });

  it('a Lakebase Provisioned instance (lakebase:<instance>/<database>) syncs, its host looked up in the workspace', async () => {
    const adminUrl = await databaseFor(SP, 'lb_instance');
    const t = await createCustomerProfilesTable(path.join(dir, 'instance_customers'), { rows: 200 });
    const mapping = buildMapping({
      name: 'lakebase-instance',
      source: t.path,
      target: { connection: `lakebase:${INSTANCE}/lb_instance?profile=lbinst&port=${pgPort}&sslmode=disable`, table: 'customers' },
      key: ['customer_id'],
    });
    const before = workspace.credentialRequests;
    const target = await openTarget(mapping.target.connection, { env: m2mEnv('lbinst', SP_SECRET) });
    const source = await openSource(mapping.source);
    try {
      assert.match(target.label, /^lakebase 127\.0\.0\.1\/lb_instance /);
      const r = await new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target)).run({ mode: 'initial' });
      assert.equal(r.status, 'succeeded');
      assert.ok(workspace.credentialRequests > before, 'credentials came from /api/2.0/database/credentials');
      await assertTargetEquals(adminUrl, { schema: 'public', name: 'customers' }, t.path, t.version, { key: ['customer_id'] });
    } finally {
      await target.close();
      await source.close?.();
    }
    await expectSyncError(openTarget(`lakebase:no-such-instance/db?profile=lbinst&port=${pgPort}`, { env: m2mEnv('lbinst', SP_SECRET) }), {
      kind: 'mapping',
      message: /No Lakebase database instance no-such-instance in Databricks profile "lbinst"/,
      hint: /list-database-instances/,
    });
  });

  it('a run that outlives its tokens succeeds: a paced initial load longer than a token lasts, then incremental batches each after the last token expired', async () => {
    const adminUrl = await databaseFor(SP, 'lb_long');
    const t = await createCustomerProfilesTable(path.join(dir, 'long_customers'), { rows: 3000 });
    const mapping = buildMapping({
      name: 'lakebase-long',
      source: t.path,
      target: { connection: reference('lb_long', 'lbsp'), table: 'customers' },
      key: ['customer_id'],
      // 3000 rows at 1000 rows/s: the COPY runs for seconds on the connection that logged in with the first token.
      batch: { maxRows: 500, maxRowsPerSecond: 1000 },
    });
    // Idle connections close at once, so each batch below logs in anew.
    const lb = await openLakebasePool(mapping.target.connection, { env: m2mEnv('lbsp', SP_SECRET), pool: { idleTimeoutMillis: 100 } });
    const source = await openSource(mapping.source);
    const runner = new SyncRunner(mapping, source, mappingTarget(lb.pool, mapping.target));
    try {
      const issuedBefore = workspace.issued.length;
      const initial = await runner.run({ mode: 'initial' });
      assert.equal(initial.status, 'succeeded');
      const first = workspace.issued[issuedBefore];
      assert.ok(first, 'the initial load logged in with a workspace token');
      // Precondition of this test, not a speed check: the initial load was still running when its first token expired.
      assert.ok(Date.now() > first.expiresAt.getTime(), `the paced initial load ended before its first token expired (${first.expiresAt.toISOString()})`);
      let latest = t.version;
      for (let round = 0; round < 3; round++) {
        latest = await applySampleChanges(t.path);
        await untilLatestTokenExpired();
        // The last run's connection closes once idle for 100 ms (a run gives it back at its
        // very end, and the token may have expired long before): none is left to reuse.
        await pollUntil(async () => (lb.pool.totalCount === 0 ? true : undefined), { timeoutMs: 10_000, everyMs: 20, what: 'the idle connection to close' });
        const issued = workspace.issued.length;
        const r = await runner.run({ mode: 'incremental' });
        assert.equal(r.status, 'succeeded', `incremental round ${round}`);
        assert.equal(r.toVersion, latest);
        assert.ok(workspace.issued.length > issued, `round ${round} logged in with a fresh token`);
      }
      await assertTargetEquals(adminUrl, { schema: 'public', name: 'customers' }, t.path, latest, { key: ['customer_id'] });
    } finally {
      await lb.close();
      await source.close?.();
    }
  });

  it('a wrong OAuth secret fails the run with an auth error naming the profile and the workspace host', async () => {
    const mapping = buildMapping({
      name: 'lakebase-bad-secret',
      source: (await createCustomerProfilesTable(path.join(dir, 'bad_customers'), { rows: 20 })).path,
      target: { connection: reference('postgres', 'lbbad'), table: 'never_written' },
      key: ['customer_id'],
    });
    const target = await openTarget(mapping.target.connection, { env: m2mEnv('lbbad', 'wrong-secret') });
    const source = await openSource(mapping.source);
    try {
      const runner = new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target));
      const host = new URL(workspace.url).host;
      const e = await expectSyncError(runner.run({ mode: 'initial' }), {
        kind: 'auth',
        retry: 'never',
        message: /Databricks profile "lbbad"/,
        hint: /profile "lbbad".*client_id and client_secret/,
      });
      assert.ok(e.message.includes(host), `the message names the workspace host ${host}: ${e.message}`);
    } finally {
      await target.close();
      await source.close?.();
    }
  });

  it('a revoked PAT in a ~/.databrickscfg profile is an auth error naming that profile and its host', async () => {
    const target = await openTarget(reference('postgres', 'alice-old', `&user=${encodeURIComponent(ALICE)}`), { env: { DATABRICKS_CONFIG_FILE: configFile } });
    try {
      await expectSyncError(target.pool.query('SELECT 1'), {
        kind: 'auth',
        message: new RegExp(`Databricks rejected the credentials of Databricks profile "alice-old" \\(workspace ${new URL(workspace.url).host.replace(/\./g, '\\.')}\\)`),
        hint: /profile "alice-old"/,
      });
    } finally {
      await target.close();
    }
  });

  it('a role other than the token\'s identity is refused with an error naming the role, the profile and what a token logs in as', async () => {
    const target = await openTarget(reference('postgres', 'lbwho', `&user=${encodeURIComponent(ALICE)}`), { env: m2mEnv('lbwho', SP_SECRET) });
    try {
      await expectSyncError(target.pool.query('SELECT 1'), {
        kind: 'auth',
        message: new RegExp(`Lakebase refused role "${ALICE}" on 127\\.0\\.0\\.1/postgres with a database token from Databricks profile "lbwho"`),
        hint: new RegExp(`user=${ALICE} is that identity`),
      });
    } finally {
      await target.close();
    }
  });

  it('a profile that exists nowhere is a mapping error naming it, before any connection', async () => {
    await expectSyncError(openTarget(reference('postgres', 'nosuch'), { env: { DATABRICKS_CONFIG_FILE: configFile } }), {
      kind: 'mapping',
      message: /Databricks profile "nosuch".*nosuch/,
      hint: /\[nosuch\].*DELTA_NEON_SYNC_DATABRICKS_NOSUCH_HOST/,
    });
  });

  it('a workspace that does not answer is a retryable connection error naming the profile and host', async () => {
    const port = await freePort(); // nothing listens there
    const target = await openTarget(reference('postgres', 'lbdown', `&user=${encodeURIComponent(ALICE)}`), {
      env: { DELTA_NEON_SYNC_DATABRICKS_LBDOWN_HOST: `http://127.0.0.1:${port}`, DELTA_NEON_SYNC_DATABRICKS_LBDOWN_TOKEN: ALICE_PAT },
    });
    try {
      await expectSyncError(target.pool.query('SELECT 1'), {
        kind: 'connection',
        retry: 'auto',
        message: new RegExp(`Cannot reach Databricks profile "lbdown" \\(workspace 127\\.0\\.0\\.1:${port}\\)`),
      });
    } finally {
      await target.close();
    }
  });

  it('an endpoint the workspace does not know fails with a hint on where to find its name', async () => {
    const wrong = `lakebase:projects/proj-sales/branches/br-main/endpoints/ep-typo/postgres?profile=lbsp2&host=127.0.0.1&port=${pgPort}&sslmode=disable`;
    const target = await openTarget(wrong, { env: m2mEnv('lbsp2', SP_SECRET) });
    try {
      await expectSyncError(target.pool.query('SELECT 1'), { kind: 'mapping', message: /ep-typo/, hint: /list-endpoints/ });
    } finally {
      await target.close();
    }
  });
});
