import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { SyncEvent } from '../../src/sync/ports/events';
import { decimal, long, string } from '../builders/deltaFields';
import { buildMapping, mappingInput } from '../builders/mappings';
import type { MappingOverrides } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { createPool } from '../../src/sync/postgres/createPool';
import { ensureStateTables } from '../../src/sync/postgres/stateTables';
import { checkRights, requiredGrants, runRights } from '../../src/sync/run/mappingRights';
import { getTestServer, useTestDatabase } from '../helpers/postgres';
import { buildCli, openRunner, runCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import type { OpenedRunner } from '../helpers/syncHarness';

/**
 * Issue 12 point 6 (least privilege): a dedicated role with the rights the seed article
 * gives (CONNECT, USAGE and CREATE on the table's schema, SELECT/INSERT/UPDATE/DELETE on
 * the table; the database's default TEMP and CONNECT for PUBLIC revoked, as on a locked-down
 * server) is refused up front naming every right it lacks; after an admin runs the SQL that
 * `grants` prints, merge loads, incremental syncs, preview and dry run work as that role.
 * A swap without table ownership is refused before the snapshot is read, offering a merge.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
  { name: 'amount', type: decimal(12, 3) },
];

function item(i: number, over: Partial<Row> = {}): Row {
  return { id: BigInt(i), name: `item ${i}`, amount: `${i}.500`, ...over };
}

describe('least privilege: grants and the up-front rights check (real server, dedicated role)', function () {
  this.timeout(180_000);
  // Before useTestDatabase's own after hook drops the database: close what is connected to it.
  after(async () => {
    for (const r of open.splice(0)) await r.close();
    await admin?.query(`DROP OWNED BY ${role}`);
    await admin?.end();
  });
  const db = useTestDatabase('grants');
  const role = `dns_sync_${process.pid}`;
  const open: OpenedRunner[] = [];
  let dir: string;
  let w: DeltaTableWriter;
  let roleUrl: string;
  let admin: pg.Client | undefined;

  /** Runs SQL as the admin (the database's owner, a superuser on the test server). */
  async function asAdmin(sql: string): Promise<void> {
    await (admin as pg.Client).query(sql);
  }

  async function runnerAs(url: string, over: MappingOverrides = {}): Promise<OpenedRunner> {
    const r = await openRunner(buildMapping({ name: 'grants-items', source: w.path, target: { schema: 'app', table: 'items' }, key: ['id'], ...over }), url);
    open.push(r);
    return r;
  }

  async function targetRows(): Promise<Array<{ id: string; name: string }>> {
    return (await (admin as pg.Client).query<{ id: string; name: string }>('SELECT id::text AS id, name FROM app.items ORDER BY id')).rows;
  }

  async function stateSchemaExists(): Promise<boolean> {
    return (await (admin as pg.Client).query(`SELECT 1 FROM pg_namespace WHERE nspname = 'delta_neon_sync'`)).rowCount === 1;
  }

  /** `grants` through the real CLI, connected as the admin, for the dedicated role. */
  async function grantsSql(args: string[], over: MappingOverrides = {}): Promise<string> {
    const file = await writeMappingFile(dir, `grants-${Math.random().toString(36).slice(2, 8)}`, mappingInput({
      name: 'grants-items', source: w.path, target: { connection: '${env:GRANTS_ADMIN_URL}', schema: 'app', table: 'items' }, key: ['id'], ...over,
    }));
    const out = await runCli(['grants', file, '--role', role, ...args], { GRANTS_ADMIN_URL: db().url });
    assert.equal(out.code, 0, `grants failed: ${out.stderr}`);
    return out.stdout;
  }

  before(async () => {
    dir = await tempDir('dns-grants-');
    await buildCli();
    w = await DeltaTableWriter.create(path.join(dir, 'items'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    const rows: Row[] = [];
    for (let i = 1; i <= 20; i++) rows.push(item(i));
    await w.append(rows);
    admin = new pg.Client({ connectionString: db().url });
    await admin.connect();
    const database = (await admin.query<{ d: string }>('SELECT current_database() AS d')).rows[0]?.d as string;
    await asAdmin(`DROP ROLE IF EXISTS ${role}`);
    await asAdmin(`CREATE ROLE ${role} LOGIN PASSWORD 'sync-secret'`);
    // A locked-down database: no TEMP (nor CONNECT) for PUBLIC, only what is granted.
    await asAdmin(`REVOKE ALL ON DATABASE "${database}" FROM PUBLIC`);
    await asAdmin('CREATE SCHEMA app');
    await asAdmin('CREATE TABLE app.items (id bigint PRIMARY KEY, name text, amount numeric(12,3))');
    // The rights the seed article suggests.
    await asAdmin(`GRANT CONNECT ON DATABASE "${database}" TO ${role}`);
    await asAdmin(`GRANT USAGE, CREATE ON SCHEMA app TO ${role}`);
    await asAdmin(`GRANT SELECT, INSERT, UPDATE, DELETE ON app.items TO ${role}`);
    const u = new URL(db().url);
    u.username = role;
    u.password = 'sync-secret';
    roleUrl = u.toString();
  });
  afterEach(async () => {
    for (const r of open.splice(0)) await r.close();
  });
  after(async () => {
    // Roles are the server's, not the database's: drop it once its database is gone.
    const c = new pg.Client({ connectionString: (await getTestServer()).adminUrl });
    await c.connect();
    try {
      await c.query(`DROP ROLE IF EXISTS ${role}`);
    } finally {
      await c.end();
    }
  });

  it('refuses every command up front, naming each missing right, and touches nothing', async () => {
    const r = await runnerAs(roleUrl, { initialLoad: { mode: 'merge' } });
    const events: SyncEvent[] = [];
    const run = await expectSyncError(r.runner.run({ onEvent: (e) => events.push(e), maxAttempts: 1 }), {
      kind: 'target',
      retry: 'manual',
      message: /lacks USAGE on schema delta_neon_sync \(which does not exist yet\)/,
      hint: /CREATE SCHEMA IF NOT EXISTS "delta_neon_sync"; GRANT USAGE ON SCHEMA "delta_neon_sync" TO "dns_sync_\d+"; GRANT CREATE ON SCHEMA "delta_neon_sync" TO "dns_sync_\d+"; — `delta-neon-sync grants <mapping>`/,
    });
    assert.match(run.message, /CREATE on schema delta_neon_sync/);
    assert.deepEqual(events.filter((e) => e.type === 'phase' || e.type === 'run-started'), [], 'nothing was read');
    assert.equal(await stateSchemaExists(), false, 'no state schema was created');

    const preview = await expectSyncError(r.runner.preview(), { kind: 'target', message: /TEMP on database \w+ \(needed for the staging tables of incremental syncs, preview/ });
    assert.match(preview.message, /USAGE on schema delta_neon_sync/);
    assert.match(preview.hint ?? '', /GRANT TEMPORARY ON DATABASE "\w+" TO "dns_sync_\d+";/);
    await expectSyncError(r.runner.status(), { kind: 'target', message: /lacks USAGE on schema delta_neon_sync/ });
    assert.deepEqual(await targetRows(), []);
  });

  it('grants prints the SQL for the mapping, and with it merge, incremental, preview and dry run work as the role', async () => {
    const sql = await grantsSql([]);
    // The mapping's own modes: a swap load (the default) and incremental syncs.
    assert.match(sql, /^-- Rights of role dns_sync_\d+ on database \w+ for app\.items: initial load by swap, incremental syncs and dry runs, preview, verify, status\./);
    assert.match(sql, /^ALTER TABLE "app"\."items" OWNER TO "dns_sync_\d+";$/m);
    const merge = await grantsSql(['--mode', 'initial-merge,incremental']);
    assert.doesNotMatch(merge, /OWNER TO/, 'a merge needs no ownership');
    assert.match(merge, /^CREATE SCHEMA IF NOT EXISTS "delta_neon_sync";\nGRANT USAGE, CREATE ON SCHEMA "delta_neon_sync" TO "dns_sync_\d+";$/m);
    assert.match(merge, /^GRANT CONNECT, TEMPORARY ON DATABASE "\w+" TO "dns_sync_\d+";$/m);
    assert.match(merge, /^GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "app"\."items" TO "dns_sync_\d+";$/m);
    // The admin runs it as printed (one script, comments and all).
    await asAdmin(merge);

    // The admin created the state schema: the role creates the tables in it without CREATE on the database.
    const r = await runnerAs(roleUrl, { initialLoad: { mode: 'merge' } });
    const initial = await r.runner.run({ maxAttempts: 1 });
    assert.equal(initial.mode, 'initial');
    assert.equal(initial.inserted, 20);
    assert.equal((await targetRows()).length, 20);
    const owners = await (admin as pg.Client).query<{ relname: string; owner: string }>(
      `SELECT c.relname::text, pg_get_userbyid(c.relowner)::text AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'delta_neon_sync' AND c.relkind = 'r' ORDER BY 1`,
    );
    assert.deepEqual(owners.rows, ['checkpoints', 'dead_letters', 'run_leases', 'runs'].map((relname) => ({ relname, owner: role })));

    await w.update('id', [item(3, { name: 'renamed 3' })]);
    await w.append([item(21)]);
    await w.delete('id', [5n]);
    const preview = await r.runner.preview();
    assert.deepEqual([preview.mode, preview.totals.insert, preview.totals.update, preview.totals.delete], ['incremental', 1, 1, 1]);
    const dry = await r.runner.dryRun();
    assert.deepEqual([dry.toVersion, dry.result.inserted, dry.result.updated, dry.result.deleted], [w.version, 1, 1, 1]);
    const inc = await r.runner.run({ maxAttempts: 1 });
    assert.equal(inc.mode, 'incremental');
    assert.deepEqual([inc.inserted, inc.updated, inc.deleted], [1, 1, 1]);
    const rows = await targetRows();
    assert.equal(rows.length, 20);
    assert.equal(rows.find((x) => x.id === '3')?.name, 'renamed 3');
    assert.equal(rows.some((x) => x.id === '5'), false);
    const status = await r.runner.status();
    assert.equal(status.state.phase, 'up-to-date');
  });

  it('refuses a swap without ownership of the table before reading the snapshot, offering a merge', async () => {
    const before = await targetRows();
    const r = await runnerAs(roleUrl, { name: 'grants-items-swap' });
    const events: SyncEvent[] = [];
    const e = await expectSyncError(r.runner.run({ mode: 'initial', onEvent: (x) => events.push(x), maxAttempts: 1 }), {
      kind: 'target',
      setting: 'initialLoad.mode',
      message: /Cannot swap app\.items for the initial load: role dns_sync_\d+ lacks ownership of table app\.items \(owned by \w+\)/,
      hint: /Set "initialLoad": \{ "mode": "merge" \} in the mapping .*role dns_sync_\d+ has what a merge needs.*ALTER TABLE "app"\."items" OWNER TO "dns_sync_\d+";/,
    });
    assert.match(e.hint ?? '', /grants/);
    assert.deepEqual(events.filter((x) => x.type === 'phase' && x.phase !== 'plan'), [], 'the snapshot was not read');
    assert.equal(events.some((x) => x.type === 'run-started'), false);
    assert.deepEqual(await targetRows(), before);

    // Following the hint's other way: the owner hands the table over (grants --mode initial-swap), then the swap works.
    const swap = await grantsSql(['--mode', 'initial-swap']);
    await asAdmin(swap);
    const loaded = await r.runner.run({ mode: 'initial', maxAttempts: 1 });
    assert.equal(loaded.mode, 'initial');
    assert.equal(loaded.inserted, 20);
    assert.equal((await targetRows()).length, 20);
  });
});

describe('least privilege: the state schema and tables an admin created (real server, dedicated role)', function () {
  this.timeout(120_000);
  const role = `dns_state_${process.pid}`;
  let admin: pg.Client | undefined;
  const pools: pg.Pool[] = [];
  after(async () => {
    for (const p of pools.splice(0)) await p.end();
    await admin?.query(`DROP OWNED BY ${role}`);
    await admin?.end();
  });
  const db = useTestDatabase('grants_state');
  after(async () => {
    const c = new pg.Client({ connectionString: (await getTestServer()).adminUrl });
    await c.connect();
    try {
      await c.query(`DROP ROLE IF EXISTS ${role}`);
    } finally {
      await c.end();
    }
  });

  /** A pool connected as the dedicated role, or (no name) as the admin. */
  function poolAs(name?: string): pg.Pool {
    const u = new URL(db().url);
    if (name !== undefined) {
      u.username = name;
      u.password = 'state-secret';
    }
    const p = createPool(u.toString(), { max: 2 });
    pools.push(p);
    return p;
  }

  before(async () => {
    admin = new pg.Client({ connectionString: db().url });
    await admin.connect();
    const database = (await admin.query<{ d: string }>('SELECT current_database() AS d')).rows[0]?.d as string;
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'state-secret'`);
    await admin.query(`REVOKE ALL ON DATABASE "${database}" FROM PUBLIC`);
    await admin.query(`GRANT CONNECT ON DATABASE "${database}" TO ${role}`);
    await admin.query('CREATE SCHEMA app');
    await admin.query('CREATE TABLE app.items (id bigint PRIMARY KEY, name text)');
    await admin.query(`GRANT USAGE ON SCHEMA app TO ${role}`);
    await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON app.items TO ${role}`);
  });

  it('creates its tables in a state schema an admin created, without CREATE on the database', async () => {
    const a = admin as pg.Client;
    await a.query('CREATE SCHEMA delta_neon_sync');
    await a.query(`GRANT USAGE, CREATE ON SCHEMA delta_neon_sync TO ${role}`);
    const c = await poolAs(role).connect();
    try {
      const rights = await c.query<{ db_create: boolean }>(`SELECT has_database_privilege(current_user, current_database(), 'CREATE') AS db_create`);
      assert.equal(rights.rows[0]?.db_create, false);
      await ensureStateTables(c);
    } finally {
      c.release();
    }
    const owners = await a.query<{ relname: string; owner: string }>(
      `SELECT c.relname::text, pg_get_userbyid(c.relowner)::text AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'delta_neon_sync' AND c.relkind = 'r' ORDER BY 1`,
    );
    assert.deepEqual(owners.rows, ['checkpoints', 'dead_letters', 'run_leases', 'runs'].map((relname) => ({ relname, owner: role })));
  });

  it('uses state tables another role created with only the table rights grants prints', async () => {
    const a = admin as pg.Client;
    // The admin takes the tables over and leaves the role USAGE on the schema only.
    for (const t of ['checkpoints', 'runs', 'dead_letters', 'run_leases']) await a.query(`ALTER TABLE delta_neon_sync.${t} OWNER TO CURRENT_USER`);
    await a.query(`REVOKE CREATE ON SCHEMA delta_neon_sync FROM ${role}`);
    const mapping = buildMapping({ name: 'state-items', source: '/nonexistent/items', target: { schema: 'app', table: 'items' }, key: ['id'], initialLoad: { mode: 'merge' } });
    const asRole = mappingTarget(poolAs(role), mapping.target);
    const refused = await expectSyncError(checkRights(asRole, mapping, ['state']), {
      kind: 'target',
      message: /lacks SELECT on table delta_neon_sync\.checkpoints/,
      hint: /GRANT SELECT ON TABLE "delta_neon_sync"\."checkpoints" TO "dns_state_\d+";/,
    });
    assert.doesNotMatch(refused.message, /CREATE on schema delta_neon_sync/, 'the tables exist: no CREATE needed');

    const report = await requiredGrants(mappingTarget(poolAs(), mapping.target), mapping, { role, modes: ['initial-merge'] });
    assert.match(report.sql, /^GRANT SELECT, INSERT, UPDATE ON TABLE "delta_neon_sync"\."checkpoints" TO "dns_state_\d+";$/m);
    assert.doesNotMatch(report.sql, /CREATE SCHEMA/);
    assert.match(report.sql, /^GRANT USAGE ON SCHEMA "delta_neon_sync" TO "dns_state_\d+";$/m, 'USAGE only: the tables exist');
    await a.query(report.sql);

    await checkRights(asRole, mapping, ['state', 'initial-merge']);
    const guard = await asRole.acquireRun(mapping.name);
    try {
      const id = await asRole.runLog.start({ pipeline: mapping.name, mode: 'initial-merge', toVersion: 0 });
      await asRole.runLog.finish(id, { status: 'succeeded', rows: 0, toVersion: 0 });
      assert.equal(await asRole.readCheckpoint(mapping.name), undefined);
    } finally {
      await guard.release();
    }
    const runs = await a.query<{ status: string }>(`SELECT status FROM delta_neon_sync.runs WHERE pipeline = 'state-items'`);
    assert.deepEqual(runs.rows, [{ status: 'succeeded' }]);
  });

  it('a run refused for a state right its lease statement does not use holds no lease: the one taken in the rights check\'s round trip is given back', async () => {
    const a = admin as pg.Client;
    // The lease statement reads checkpoints and writes run_leases and runs: it succeeds
    // without UPDATE on checkpoints, which only a commit needs.
    await a.query(`REVOKE UPDATE ON delta_neon_sync.checkpoints FROM ${role}`);
    const mapping = buildMapping({ name: 'state-refused', source: '/nonexistent/items', target: { schema: 'app', table: 'items' }, key: ['id'], initialLoad: { mode: 'merge' } });
    const asRole = mappingTarget(poolAs(role), mapping.target);
    const runsBefore = await a.query(`SELECT run_id FROM delta_neon_sync.runs`);
    await expectSyncError(asRole.acquireRun(mapping.name, { rights: runRights(mapping, ['state']) }), {
      kind: 'target',
      message: /lacks UPDATE on table delta_neon_sync\.checkpoints/,
      hint: /GRANT UPDATE ON TABLE "delta_neon_sync"\."checkpoints" TO "dns_state_\d+";/,
    });
    assert.deepEqual((await a.query(`SELECT pipeline FROM delta_neon_sync.run_leases`)).rows, [], 'no lease is left');
    assert.deepEqual((await a.query(`SELECT run_id FROM delta_neon_sync.runs`)).rows, runsBefore.rows, 'no run was recorded');
    await a.query(`GRANT UPDATE ON delta_neon_sync.checkpoints TO ${role}`);
    const guard = await asRole.acquireRun(mapping.name, { rights: runRights(mapping, ['state']) });
    try {
      assert.ok(guard.rights, 'the report comes back with the lease');
      assert.deepEqual((await a.query(`SELECT pipeline FROM delta_neon_sync.run_leases`)).rows, [{ pipeline: 'state-refused' }]);
    } finally {
      await guard.release();
    }
  });
});
