import assert from 'node:assert/strict';
import * as net from 'node:net';
import { isSyncError } from '../../src/sync/errors';
import { openLakebaseCatalog } from '../../src/sync/lakebase/LakebaseCatalog';
import { FakeLakebaseWorkspace } from '../helpers/fakeLakebaseWorkspace';
import { getTestServer } from '../helpers/postgres';

/**
 * The Lakebase listing of the Add Lakebase Database form (LakebaseCatalog) against a local
 * Databricks workspace that answers the Postgres API in its real shapes
 * (src/sync/lakebase/postgresApiTypes.ts): pages followed by next_page_token, output read from
 * `status`, a database offered under its Postgres name (its resource id is an RFC 1123 label).
 */

const ALICE = 'alice.catalog@example.com';
const ALICE_PAT = 'dapi-alice-catalog-0123';

/** Seven projects, the first with three branches, its main branch with five endpoints. */
const ENDPOINTS = [
  ...['ep-rw', 'ep-ro-1', 'ep-ro-2', 'ep-ro-3', 'ep-ro-4'].map((e) => `projects/shop/branches/main/endpoints/${e}`),
  'projects/shop/branches/dev/endpoints/ep-dev',
  'projects/shop/branches/qa/endpoints/ep-qa',
  ...['p2', 'p3', 'p4', 'p5', 'p6', 'p7'].map((p) => `projects/${p}/branches/production/endpoints/primary`),
];

describe('Lakebase catalog (the Postgres API lists of a local Databricks workspace)', function () {
  this.timeout(60_000);
  const started: FakeLakebaseWorkspace[] = [];

  async function workspace(extra: { maxPageSize?: number; omitBranchDefault?: boolean; creatingDatabases?: Record<string, string[]> } = {}): Promise<FakeLakebaseWorkspace> {
    const server = await getTestServer();
    const w = await FakeLakebaseWorkspace.start({
      adminUrl: server.adminUrl, endpoints: ENDPOINTS, principals: [{ role: ALICE, pat: ALICE_PAT }],
      endpointHost: 'ep-shop-main.database.us-east-1.cloud.databricks.com',
      databases: { 'projects/shop/branches/main': ['databricks_postgres', 'lb_orders', 'Reporting'] },
      ...extra,
    });
    started.push(w);
    return w;
  }
  const catalogOf = (w: FakeLakebaseWorkspace) => openLakebaseCatalog('alice', { env: {}, databricks: { lookup: async (n) => (n === 'alice' ? { host: w.url, httpPath: '/sql/1.0/warehouses/unused', auth: { type: 'pat' as const, token: ALICE_PAT } } : undefined) } });

  after(async () => {
    for (const w of started) await w.stop();
  });

  it('follows next_page_token through every page of each list (the workspace answers 2 items a page)', async () => {
    const w = await workspace({ maxPageSize: 2 });
    const c = await catalogOf(w);
    assert.deepEqual((await c.projects()).map((p) => p.id), ['shop', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
    assert.deepEqual((await c.branches('projects/shop')).map((b) => b.id), ['main', 'dev', 'qa']);
    assert.deepEqual((await c.endpoints('projects/shop/branches/main')).map((e) => e.id), ['ep-rw', 'ep-ro-1', 'ep-ro-2', 'ep-ro-3', 'ep-ro-4']);
    assert.deepEqual((await c.databases('projects/shop/branches/main')).map((d) => d.postgresDatabase), ['databricks_postgres', 'lb_orders', 'Reporting']);
    const projectPages = w.postgresGets.filter((g) => g.startsWith('/api/2.0/postgres/projects?'));
    assert.deepEqual(projectPages, [
      '/api/2.0/postgres/projects?page_size=100',
      '/api/2.0/postgres/projects?page_size=100&page_token=offset-2',
      '/api/2.0/postgres/projects?page_size=100&page_token=offset-4',
      '/api/2.0/postgres/projects?page_size=100&page_token=offset-6',
    ]);
  });

  it('reads each item\'s status: the default branch, the read-write endpoint and its host, a database\'s Postgres name apart from its resource id', async () => {
    const w = await workspace();
    const c = await catalogOf(w);
    const projects = await c.projects();
    assert.deepEqual(projects[0], { name: 'projects/shop', id: 'shop', displayName: 'shop', defaultBranch: 'projects/shop/branches/main' });
    const branches = await c.branches('projects/shop');
    assert.deepEqual(branches.map((b) => [b.name, b.isDefault, b.state, b.createdAt]), [
      ['projects/shop/branches/main', true, 'READY', '2026-11-30T09:00:00Z'],
      ['projects/shop/branches/dev', false, 'READY', '2026-11-30T09:00:00Z'],
      ['projects/shop/branches/qa', false, 'READY', '2026-11-30T09:00:00Z'],
    ]);
    const endpoints = await c.endpoints('projects/shop/branches/main');
    assert.deepEqual(endpoints.slice(0, 2), [
      { name: 'projects/shop/branches/main/endpoints/ep-rw', id: 'ep-rw', readWrite: true, host: 'ep-shop-main.database.us-east-1.cloud.databricks.com', state: 'ACTIVE' },
      { name: 'projects/shop/branches/main/endpoints/ep-ro-1', id: 'ep-ro-1', readWrite: false, host: 'ep-shop-main.database.us-east-1.cloud.databricks.com', state: 'ACTIVE' },
    ]);
    assert.deepEqual(await c.databases('projects/shop/branches/main'), [
      { name: 'projects/shop/branches/main/databases/databricks-postgres', postgresDatabase: 'databricks_postgres', owner: 'projects/shop/branches/main/roles/owner' },
      { name: 'projects/shop/branches/main/databases/lb-orders', postgresDatabase: 'lb_orders', owner: 'projects/shop/branches/main/roles/owner' },
      { name: 'projects/shop/branches/main/databases/reporting', postgresDatabase: 'Reporting', owner: 'projects/shop/branches/main/roles/owner' },
    ]);
    // The branches' own status.default marks the default: the project list is not read again for it.
    const before = w.postgresGets.length;
    await c.branches('projects/shop');
    assert.deepEqual(w.postgresGets.slice(before), ['/api/2.0/postgres/projects/shop/branches?page_size=100']);
  });

  it('branches without status.default: the project\'s status.default_branch (GET projects/<p>) marks the default', async () => {
    const w = await workspace({ omitBranchDefault: true });
    const c = await catalogOf(w);
    const before = w.postgresGets.length;
    assert.deepEqual((await c.branches('projects/shop')).map((b) => [b.id, b.isDefault]), [['main', true], ['dev', false], ['qa', false]]);
    assert.deepEqual(w.postgresGets.slice(before), ['/api/2.0/postgres/projects/shop/branches?page_size=100', '/api/2.0/postgres/projects/shop']);
  });

  it('a database still being created (no status.postgres_database yet) is not offered under its resource id', async () => {
    const w = await workspace({ creatingDatabases: { 'projects/shop/branches/main': ['lb-new'] } });
    const c = await catalogOf(w);
    assert.deepEqual((await c.databases('projects/shop/branches/main')).map((d) => [d.name, d.postgresDatabase]), [
      ['projects/shop/branches/main/databases/databricks-postgres', 'databricks_postgres'],
      ['projects/shop/branches/main/databases/lb-orders', 'lb_orders'],
      ['projects/shop/branches/main/databases/reporting', 'Reporting'],
    ]);
  });

  it('a workspace that takes the connection and never answers: the listing fails within its bound, naming the profile, the host and the call, and the request is cancelled', async () => {
    const sockets: net.Socket[] = [];
    const closed: Promise<void>[] = [];
    const silent = net.createServer((sock) => {
      sockets.push(sock);
      closed.push(new Promise((resolve) => sock.once('close', () => resolve())));
      sock.on('data', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const c = await openLakebaseCatalog('stalled', {
        env: {}, requestTimeoutMs: 1500,
        databricks: { lookup: async (n) => (n === 'stalled' ? { host: `http://127.0.0.1:${port}`, httpPath: '/sql/1.0/warehouses/unused', auth: { type: 'pat' as const, token: 'dapi-stalled' } } : undefined) },
      });
      const started = Date.now();
      const err = await c.projects().then(() => undefined, (e: unknown) => e);
      const took = Date.now() - started;
      assert.ok(isSyncError(err), `a SyncError, got ${String(err)}`);
      assert.match(err.message, new RegExp(`^Databricks profile "stalled" \\(workspace 127\\.0\\.0\\.1:${port}\\) did not answer GET /api/2\\.0/postgres/projects within 1\\.5 s, trying to list the Lakebase projects\\.$`));
      assert.match(err.hint ?? '', /Retry/);
      assert.ok(took >= 1400 && took < 20_000, `failed after ${took} ms`);
      assert.equal(sockets.length, 1, 'one request was sent');
      // The request in flight is cancelled: its connection closes (bounded wait).
      await Promise.race([Promise.all(closed), new Promise((_, reject) => setTimeout(() => reject(new Error('the stalled request\'s connection is still open 5 s after the listing failed')), 5_000))]);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
