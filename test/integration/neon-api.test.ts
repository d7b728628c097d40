import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createApiClient } from '@neondatabase/api-client';
import pg from 'pg';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { NeonClient } from '../../src/sync/neon/NeonClient';
import { resolveNeonConnection } from '../../src/sync/neon/resolveNeonConnection';
import { mappingTarget, openTarget } from '../../src/sync/open/openTarget';
import { openSource } from '../../src/sync/open/openSource';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { expectSyncError } from '../helpers/expectSyncError';
import { NeonApiServer } from '../helpers/neonApi/NeonApiServer';
import { getTestServer } from '../helpers/postgres';
import { tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Neon as a target, against the local Neon API server (driven through the real
 * @neondatabase/api-client) and the real test PostgreSQL behind it: listing, errors as the
 * API gives them, `neon:` references resolved at run time, and a sync into a branch.
 */
describe('Neon API: client, neon: references and a sync into a branch', function () {
  this.timeout(120_000);
  let server: NeonApiServer;
  let project: { projectId: string; branchId: string; database: string; role: string };
  const env = (): Record<string, string> => ({ NEON_API_KEY: server.apiKey, NEON_API_HOST: server.apiUrl });
  const client = (o: Partial<ConstructorParameters<typeof NeonClient>[0]> = {}): NeonClient =>
    new NeonClient({ apiKey: server.apiKey, apiUrl: server.apiUrl, backoffMs: 20, ...o });

  before(async () => {
    const pgServer = await getTestServer();
    server = await NeonApiServer.start({ adminUrl: pgServer.adminUrl, operationMs: 50 });
    project = await server.addProject({ name: 'shop', database: 'appdb', role: 'shop_owner' });
  });
  after(async () => {
    await server?.close();
  });

  it('the real @neondatabase/api-client reads projects, branches, databases, roles and a working connection URI', async () => {
    const api = createApiClient({ apiKey: server.apiKey, baseURL: server.apiUrl });
    const projects = (await api.listProjects({})).data.projects;
    assert.deepEqual(projects.map((p) => p.name), ['shop']);
    const branches = (await api.listProjectBranches({ projectId: project.projectId })).data.branches;
    assert.deepEqual(branches.map((b) => [b.name, b.default]), [['main', true]]);
    const dbs = (await api.listProjectBranchDatabases(project.projectId, project.branchId)).data.databases;
    assert.deepEqual(dbs.map((d) => [d.name, d.owner_name]), [['appdb', 'shop_owner']]);
    const roles = (await api.listProjectBranchRoles(project.projectId, project.branchId)).data.roles;
    assert.deepEqual(roles.map((r) => r.name), ['shop_owner']);
    const password = (await api.getProjectBranchRolePassword(project.projectId, project.branchId, 'shop_owner')).data.password;
    const uri = (await api.getConnectionUri({ projectId: project.projectId, branch_id: project.branchId, database_name: 'appdb', role_name: 'shop_owner' })).data.uri;
    assert.equal(decodeURIComponent(new URL(uri).password), password);
    const c = new pg.Client({ connectionString: uri });
    await c.connect();
    try {
      const r = await c.query<{ db: string; who: string }>('SELECT current_database() AS db, current_user AS who');
      assert.equal(r.rows[0]?.who, 'shop_owner');
      assert.match(r.rows[0]?.db ?? '', /appdb$/);
    } finally {
      await c.end();
    }
  });

  it('a wrong API key is an auth error naming NEON_API_KEY, not retried', async () => {
    const err = await expectSyncError(new NeonClient({ apiKey: 'napi_wrong', apiUrl: server.apiUrl }).listProjects(), {
      kind: 'auth', retry: 'never', setting: 'NEON_API_KEY', message: /rejected the API key \(HTTP 401\)/, hint: /API keys/,
    });
    assert.match(err.message, /authentication required/);
  });

  it('no API key at all says how to set one', async () => {
    await expectSyncError(resolveNeonConnection(`neon:${project.projectId}/main/appdb`, { env: { NEON_API_HOST: server.apiUrl } }), {
      kind: 'auth', setting: 'NEON_API_KEY', hint: /export NEON_API_KEY=/,
    });
  });

  it('a rate limit (429) is waited out after Retry-After, with a progress line; past the budget it fails as retryable', async () => {
    const lines: string[] = [];
    server.rateLimit(2, 0.05);
    const projects = await client({ onProgress: (m) => lines.push(m) }).listProjects();
    assert.equal(projects.length, 1);
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0] ?? '', /rate limiting requests \(HTTP 429\).*Retrying in 0\.1 s \(attempt 2\)/);

    server.rateLimit(1000, 0.02);
    try {
      await expectSyncError(client({ retryForMs: 150 }).listProjects(), { kind: 'connection', retry: 'auto', message: /HTTP 429.*gave up after \d+ attempts/ });
    } finally {
      server.rateLimit(0);
    }
  });

  it('a write refused with 423 (an operation is running) and a read answered 503 are retried; a 400 is not', async () => {
    const lines: string[] = [];
    const c = client({ onProgress: (m) => lines.push(m) });
    server.failNext(/^POST .*\/branches$/, 423, 'project already has running operations, scheduling of new ones is prohibited');
    const created = await c.createBranch(project.projectId, { parentId: project.branchId, name: 'retry-423' });
    assert.equal(created.branch.name, 'retry-423');
    assert.match(lines[0] ?? '', /locked by an operation in progress \(HTTP 423\).*Retrying/);
    await c.waitForOperations(project.projectId, created.operations);
    server.failNext(/^GET .*\/branches$/, 503, 'service unavailable');
    assert.ok((await c.listBranches(project.projectId)).some((b) => b.branch.name === 'retry-423'));
    assert.match(lines[lines.length - 1] ?? '', /HTTP 503.*Retrying/);
    await c.waitForOperations(project.projectId, await c.deleteBranch(project.projectId, created.branch.id));
    server.failNext(/^GET .*\/branches$/, 400, 'bad request');
    await expectSyncError(c.listBranches(project.projectId), { kind: 'connection', retry: 'manual', message: /HTTP 400.*bad request/ });
  });

  it('a project, branch, database or role that does not exist is a mapping error listing what does', async () => {
    const key = { env: env() };
    await expectSyncError(resolveNeonConnection('neon:no-such-project/main/appdb', key), {
      kind: 'mapping', setting: 'target.connection', message: /No Neon project "no-such-project"/, hint: new RegExp(`${project.projectId}: shop`),
    });
    await expectSyncError(resolveNeonConnection(`neon:${project.projectId}/dev/appdb`, key), {
      kind: 'mapping', message: /has no branch "dev"/, hint: new RegExp(`main \\(default\\) = ${project.branchId}`),
    });
    await expectSyncError(resolveNeonConnection(`neon:${project.projectId}/main/nodb`, key), {
      kind: 'mapping', message: /has no database "nodb"/, hint: /appdb \(owner shop_owner\)/,
    });
    await expectSyncError(resolveNeonConnection(`neon:${project.projectId}/main/appdb?role=ghost`, key), {
      kind: 'mapping', message: /has no role "ghost"/, hint: /shop_owner/,
    });
  });

  it('the project by name and the branch by name or id resolve to the same database; the role defaults to the only one', async () => {
    const byName = await resolveNeonConnection('neon:shop/main/appdb', { env: env() });
    const byId = await resolveNeonConnection(`neon:${project.projectId}/${project.branchId}/appdb`, { env: env() });
    assert.equal(byName.role, 'shop_owner');
    assert.equal(new URL(byName.url).pathname, new URL(server.realUrl(project.projectId, 'main', 'appdb')).pathname);
    assert.equal(byId.url, byName.url);
    assert.doesNotMatch(byName.label, new RegExp(decodeURIComponent(new URL(byName.url).password)));
    assert.match(byName.label, /^neon:shop\/main\/appdb as shop_owner/);
  });

  it('with two roles on the branch the reference must name one; role= picks it', async () => {
    const p = await server.addProject({ name: 'two-roles', database: 'db2', role: 'owner_two' });
    await server.addRole(p.projectId, 'main', 'app_writer');
    await expectSyncError(resolveNeonConnection(`neon:${p.projectId}/main/db2`, { env: env() }), {
      kind: 'mapping', message: /has 2 roles/, hint: /\?role=/,
    });
    const r = await resolveNeonConnection(`neon:${p.projectId}/main/db2?role=app_writer`, { env: env() });
    assert.equal(r.role, 'app_writer');
    assert.equal(decodeURIComponent(new URL(r.url).username), 'app_writer');
  });

  it('a starting compute is waited for with a progress line; a disabled one is refused with a hint', async () => {
    const lines: string[] = [];
    server.computeStarting(project.projectId, 'main', 2);
    const r = await resolveNeonConnection(`neon:${project.projectId}/main/appdb`, { env: env(), onProgress: (m) => lines.push(m) });
    assert.equal(r.endpoint.current_state, 'active');
    assert.ok(lines.some((l) => /is starting; waiting up to 60 s/.test(l)), lines.join('\n'));

    server.setCompute(project.projectId, 'main', { disabled: true });
    try {
      await expectSyncError(resolveNeonConnection(`neon:${project.projectId}/main/appdb`, { env: env() }), {
        kind: 'connection', retry: 'manual', message: /is disabled/, hint: /Enable the compute/,
      });
    } finally {
      server.setCompute(project.projectId, 'main', { disabled: false });
    }
  });

  it('a mapping whose connection is neon:<project>/<branch>/<database> syncs into that database; the password is nowhere in the mapping', async () => {
    const dir = await tempDir('dns-neon-');
    const table = await createCustomerProfilesTable(path.join(dir, 'customers'), { rows: 120 });
    const mapping = parseMapping({
      name: 'neon-customers',
      source: { type: 'delta', path: table.path },
      target: { connection: `neon:shop/main/appdb`, schema: 'public', table: 'customers' },
      key: ['customer_id'],
    });
    const source = await openSource(mapping.source, {});
    const target = await openTarget(mapping.target.connection, { env: env() });
    try {
      assert.match(target.label, /^neon:shop\/main\/appdb as shop_owner/);
      const r = await new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target)).run({ mode: 'auto' });
      assert.equal(r.mode, 'initial');
      assert.ok(r.inserted >= 120, String(r.inserted));
    } finally {
      await target.close();
      await source.close?.();
    }
    await assertTargetEquals(server.realUrl(project.projectId, 'main', 'appdb'), { schema: 'public', name: 'customers' }, table.path, table.version, { key: ['customer_id'] });
    const secret = decodeURIComponent(new URL((await resolveNeonConnection('neon:shop/main/appdb', { env: env() })).url).password);
    const written = JSON.stringify(mapping) + (await fs.readdir(dir)).join(',');
    assert.ok(!written.includes(secret));
  });
});
