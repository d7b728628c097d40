import assert from 'node:assert/strict';
import pg from 'pg';
import { SyncEngine } from '../../src/engine/SyncEngine';
import { NEON_API_KEY_SECRET } from '../../src/platform/StateKeys';
import { silentLogger } from '../../src/sync/ports/Logger';
import { NeonModel } from '../../src/views/NeonModel';
import { pickTreeNode } from '../../src/views/pickTreeNode';
import { neonDatabasePick, targetsChildren } from '../../src/views/targetPicks';
import { TargetsModel } from '../../src/views/TargetsModel';
import { ScriptedPrompter } from '../helpers/scriptedPrompter';
import type { NeonNode } from '../../src/views/NeonModel';
import { listTargetTables } from '../../src/views/targetTables';
import { expectSyncError } from '../helpers/expectSyncError';
import { MemorySecrets, MemoryState } from '../helpers/memoryStores';
import { NeonApiServer } from '../helpers/neonApi/NeonApiServer';
import { getTestServer } from '../helpers/postgres';

/**
 * The extension's Neon account (NeonModel, no VS Code): the key checked then kept in
 * secret storage only, the Targets tree account -> projects -> branches -> databases ->
 * schemas -> tables, and
 * a `neon:` reference opened by the SyncEngine with that key (not NEON_API_KEY).
 */
describe('Neon account in the Targets view (model) and the engine', function () {
  this.timeout(120_000);
  let server: NeonApiServer;
  let project: { projectId: string; branchId: string };

  before(async () => {
    server = await NeonApiServer.start({ adminUrl: (await getTestServer()).adminUrl, operationMs: 20 });
    project = await server.addProject({ name: 'tree-shop', database: 'treedb', role: 'tree_owner' });
    const c = new pg.Client({ connectionString: server.realUrl(project.projectId, 'main', 'treedb') });
    await c.connect();
    try {
      await c.query('CREATE TABLE public.orders (id int PRIMARY KEY); INSERT INTO public.orders SELECT generate_series(1, 7); ANALYZE public.orders');
      await c.query('GRANT ALL ON public.orders TO tree_owner');
    } finally {
      await c.end();
    }
  });
  after(async () => {
    await server?.close();
  });

  const model = (secrets: MemorySecrets, apiUrl?: string, env: Record<string, string | undefined> = {}): NeonModel =>
    new NeonModel(secrets, { apiUrl: () => apiUrl ?? server.apiUrl, env });

  it('a key the API rejects is not stored; a good one is stored in secret storage only, and the account row appears', async () => {
    const secrets = new MemorySecrets();
    const m = model(secrets);
    assert.deepEqual(await m.roots(), []);
    await expectSyncError(m.setApiKey('napi_wrong'), { kind: 'auth', message: /HTTP 401/ });
    assert.equal(secrets.data.size, 0);
    assert.equal(await m.setApiKey(`  ${server.apiKey}\n`), 1);
    assert.deepEqual([...secrets.data.entries()], [[NEON_API_KEY_SECRET, server.apiKey]]);
    const roots = await m.roots();
    assert.equal(roots.length, 1);
    assert.equal(roots[0]?.kind, 'neon-account');
  });

  it('the tree reads projects, branches (default first) and databases with their neon: reference', async () => {
    const secrets = new MemorySecrets();
    const m = model(secrets);
    await m.setApiKey(server.apiKey);
    const [account] = await m.roots();
    const projects = await m.children(account as NeonNode);
    assert.deepEqual(projects.map((p) => p.kind === 'neon-project' && p.name), ['tree-shop']);
    const branches = await m.children(projects[0] as NeonNode);
    const main = branches[0];
    assert.ok(main?.kind === 'neon-branch' && main.isDefault && main.name === 'main', JSON.stringify(branches));
    const dbs = await m.children(main);
    assert.deepEqual(dbs.map((d) => d.kind === 'neon-database' && [d.name, d.owner, d.reference]), [['treedb', 'tree_owner', `neon:${project.projectId}/main/treedb`]]);
  });

  it('Copy Neon Reference from the palette: the Neon rows of the Targets view only, single levels opened without asking, then the database', async () => {
    const secrets = new MemorySecrets();
    const m = model(secrets);
    await m.setApiKey(server.apiKey);
    const children = targetsChildren(new TargetsModel(new MemoryState(), new MemorySecrets()), undefined, m);
    const p = new ScriptedPrompter(['treedb']);
    const node = await pickTreeNode(p, neonDatabasePick(children, 'Copy Neon Reference'));
    assert.equal(node?.kind === 'neon-database' ? node.reference : node, `neon:${project.projectId}/main/treedb`);
    // The account, its one project and its one branch open without a pick; the sandbox is never offered.
    const picks = p.asked.filter((a) => a.kind === 'pick');
    assert.equal(picks.length, 1);
    assert.match(picks[0]?.title ?? '', /^Copy Neon Reference: Neon .* \/ tree-shop \/ main$/);
    assert.deepEqual(picks[0]?.labels, ['treedb']);
  });

  it('a key revoked after it was stored shows an error row, not an exception', async () => {
    const secrets = new MemorySecrets();
    const m = model(secrets);
    await m.setApiKey(server.apiKey);
    secrets.data.set(NEON_API_KEY_SECRET, 'napi_revoked');
    const [account] = await m.roots();
    const rows = await m.children(account as NeonNode);
    assert.equal(rows.length, 1);
    assert.ok(rows[0]?.kind === 'message' && rows[0].severity === 'error' && /HTTP 401/.test(rows[0].label), JSON.stringify(rows));
  });

  it('the apiUrl setting wins over NEON_API_HOST; an empty setting uses NEON_API_HOST', () => {
    const secrets = new MemorySecrets();
    assert.equal(model(secrets, 'http://127.0.0.1:1/api/v2', { NEON_API_HOST: 'elsewhere.example' }).apiUrl(), 'http://127.0.0.1:1/api/v2');
    assert.equal(model(secrets, '', { NEON_API_HOST: 'elsewhere.example' }).apiUrl(), 'https://elsewhere.example/api/v2');
    assert.equal(model(secrets, '', {}).apiUrl(), 'https://console.neon.tech/api/v2');
  });

  it('the SyncEngine opens a neon: reference with the stored key (no NEON_API_KEY) and lists its tables', async () => {
    const secrets = new MemorySecrets();
    const m = model(secrets);
    await m.setApiKey(server.apiKey);
    const engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async () => undefined, logger: silentLogger, env: {}, neon: () => m.resolveOptions() });
    try {
      const tables = await engine.withTarget(`neon:tree-shop/main/treedb`, (t) => listTargetTables(t.pool, true));
      assert.deepEqual(tables.map((t) => [t.schema, t.table, t.rows]), [['public', 'orders', '7']]);
      const without = new SyncEngine({ sandboxDir: () => undefined, lookup: async () => undefined, logger: silentLogger, env: {} });
      await expectSyncError(without.withTarget(`neon:tree-shop/main/treedb`, async () => undefined), { kind: 'auth', setting: 'NEON_API_KEY' });
    } finally {
      await engine.dispose();
    }
  });

  it('below a database the tree shows its schemas, each with its tables and row counts', async () => {
    const shop = await server.addProject({ name: 'schema-shop', database: 'schemadb', role: 'schema_owner' });
    const c = new pg.Client({ connectionString: server.realUrl(shop.projectId, 'main', 'schemadb') });
    await c.connect();
    try {
      await c.query(`CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY); INSERT INTO sales.orders SELECT generate_series(1, 12);
        CREATE TABLE sales.refunds (id int PRIMARY KEY); CREATE TABLE public.customers (id int PRIMARY KEY); INSERT INTO public.customers SELECT generate_series(1, 3);
        ANALYZE sales.orders; ANALYZE sales.refunds; ANALYZE public.customers`);
      await c.query('GRANT USAGE ON SCHEMA sales TO schema_owner; GRANT SELECT ON ALL TABLES IN SCHEMA sales TO schema_owner; GRANT SELECT ON public.customers TO schema_owner');
    } finally {
      await c.end();
    }
    const secrets = new MemorySecrets();
    const m = model(secrets);
    await m.setApiKey(server.apiKey);
    const [account] = await m.roots();
    const project = (await m.children(account as NeonNode)).find((p) => p.kind === 'neon-project' && p.name === 'schema-shop');
    const [main] = await m.children(project as NeonNode);
    const [db] = await m.children(main as NeonNode);
    assert.ok(db?.kind === 'neon-database', JSON.stringify(db));
    const engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async () => undefined, logger: silentLogger, env: {}, neon: () => m.resolveOptions() });
    try {
      const tables = await engine.withTarget(db.reference, (t) => listTargetTables(t.pool, false));
      const schemas = NeonModel.schemasOf(db, tables);
      assert.deepEqual(
        schemas.map((s) => s.kind === 'neon-schema' && [s.schema, s.reference, s.tables.map((t) => [t.table, t.rows])]),
        [
          ['public', db.reference, [['customers', '3']]],
          ['sales', db.reference, [['orders', '12'], ['refunds', '0']]],
        ],
      );
    } finally {
      await engine.dispose();
    }
  });
});
