import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import { NeonClient } from '../../src/sync/neon/NeonClient';
import {
  PREVIEW_ANNOTATION, PREVIEW_BRANCH_PREFIX, applyBranchToParent, discardPreviewBranch, listPreviewBranches, previewOnBranch,
} from '../../src/sync/open/neonBranchPreview';
import { mappingTarget, openTarget } from '../../src/sync/open/openTarget';
import { openSource } from '../../src/sync/open/openSource';
import type { ChangeSource } from '../../src/sync/ports/ChangeSource';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { expectSyncError } from '../helpers/expectSyncError';
import { NeonApiServer } from '../helpers/neonApi/NeonApiServer';
import { getTestServer } from '../helpers/postgres';
import { tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Preview on a Neon branch against the local Neon API server: a child branch (a real
 * `CREATE DATABASE ... TEMPLATE` copy of the parent's database) gets the sync, the parent
 * does not; apply runs the same sync on the parent for the same versions, refused when the
 * parent moved; discard, a failure and a cancel leave no branch behind.
 */
describe('Neon: preview on a branch, apply to parent, discard', function () {
  this.timeout(180_000);
  let server: NeonApiServer;
  let project: { projectId: string; branchId: string; database: string; role: string };
  let tablePath: string;
  let firstVersion: number;
  let latest: number;
  let source: ChangeSource;
  const env = (): Record<string, string> => ({ NEON_API_KEY: server.apiKey, NEON_API_HOST: server.apiUrl });
  const client = (): NeonClient => new NeonClient({ apiKey: server.apiKey, apiUrl: server.apiUrl });
  const parentUrl = (): string => server.realUrl(project.projectId, 'main', 'shopdb');

  function mappingFor(name: string): Mapping {
    return parseMapping({
      name,
      source: { type: 'delta', path: tablePath },
      target: { connection: `neon:${project.projectId}/main/shopdb`, schema: 'public', table: `customers_${name.replace(/-/g, '_')}` },
      key: ['customer_id'],
    });
  }

  async function syncParent(mapping: Mapping, toVersion: number): Promise<void> {
    const target = await openTarget(mapping.target.connection, { env: env() });
    try {
      await new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target)).run({ mode: 'auto', toVersion });
    } finally {
      await target.close();
    }
  }

  async function tableRows(url: string, table: string): Promise<number | null> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const exists = await c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`public.${table}`]);
      if (!exists.rows[0]?.t) return null;
      return Number((await c.query<{ n: string }>(`SELECT count(*)::int8 AS n FROM public."${table}"`)).rows[0]?.n);
    } finally {
      await c.end();
    }
  }

  async function previewBranchesLeft(): Promise<string[]> {
    await server.settle();
    return server.branches(project.projectId).map((b) => b.branch.name).filter((n) => n.startsWith(PREVIEW_BRANCH_PREFIX));
  }

  before(async () => {
    const pgServer = await getTestServer();
    server = await NeonApiServer.start({ adminUrl: pgServer.adminUrl, operationMs: 50 });
    project = await server.addProject({ name: 'preview-shop', database: 'shopdb', role: 'preview_owner' });
    const dir = await tempDir('dns-neon-preview-');
    const t = await createCustomerProfilesTable(path.join(dir, 'customers'), { rows: 200 });
    tablePath = t.path;
    firstVersion = t.version;
    latest = await applySampleChanges(t.path);
    source = await openSource({ type: 'delta', path: tablePath });
  });
  after(async () => {
    await source?.close?.();
    await server?.close();
  });

  it('an incremental preview lands on an annotated child branch only; apply brings the parent to the same version and deletes the branch', async () => {
    const mapping = mappingFor('inc');
    await syncParent(mapping, firstVersion);
    const table = mapping.target.table;
    const parentBefore = await tableRows(parentUrl(), table);

    const r = await previewOnBranch({ mapping, source, neon: { env: env() } });
    assert.equal(r.result.mode, 'incremental');
    assert.equal(r.result.toVersion, latest);
    assert.ok(r.result.inserted + r.result.updated + r.result.deleted > 0);
    assert.equal(r.parentCheckpoint, BigInt(firstVersion));
    assert.match(r.branch.name, /^delta-sync-preview-inc-\d{8}-\d{6}$/);
    assert.equal(r.parent.name, 'main');

    const listed = await listPreviewBranches(client(), project.projectId, 'inc');
    assert.deepEqual(listed.map((b) => b.branch.id), [r.branch.id]);
    assert.equal(listed[0]?.annotations[PREVIEW_ANNOTATION.parentCheckpoint], String(firstVersion));

    // The connection string reaches the branch, which has the changes; the parent does not.
    await assertTargetEquals(r.connectionUri, { schema: 'public', name: table }, tablePath, latest, { key: ['customer_id'] });
    await assertTargetEquals(parentUrl(), { schema: 'public', name: table }, tablePath, firstVersion, { key: ['customer_id'] });
    assert.equal(await tableRows(parentUrl(), table), parentBefore);

    const applied = await applyBranchToParent({ mapping, source, branch: r.branch.name, neon: { env: env() } });
    assert.equal(applied.result.toVersion, latest);
    assert.deepEqual(
      [applied.result.inserted, applied.result.updated, applied.result.deleted],
      [r.result.inserted, r.result.updated, r.result.deleted],
    );
    assert.equal(applied.discarded, true);
    await assertTargetEquals(parentUrl(), { schema: 'public', name: table }, tablePath, latest, { key: ['customer_id'] });
    assert.deepEqual(await previewBranchesLeft(), []);
  });

  /** Each row of `public.<table>` as text, by its customer_id. */
  async function rowsByKey(url: string, table: string): Promise<Map<string, string>> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const r = await c.query<{ k: string; v: string }>(`SELECT customer_id::text AS k, row_to_json(t)::text AS v FROM public."${table}" t`);
      return new Map(r.rows.map((x) => [x.k, x.v]));
    } finally {
      await c.end();
    }
  }

  it('the preview lists row by row what Apply to Parent will change: exactly the rows the branch has different from the parent', async () => {
    const mapping = mappingFor('rows');
    await syncParent(mapping, firstVersion);
    const table = mapping.target.table;
    const r = await previewOnBranch({ mapping, source, neon: { env: env() }, changes: { limit: 100_000, checks: true } });
    const changes = r.changes;
    assert.ok(changes, 'no changes listed');
    assert.equal(changes.toVersion, r.result.toVersion);
    assert.equal(changes.mode, 'incremental');
    assert.deepEqual(
      [changes.totals.insert, changes.totals.update, changes.totals.delete + changes.totals['delete-missing']],
      [r.result.inserted, r.result.updated, r.result.deleted],
    );
    assert.deepEqual(changes.warnings ?? [], []);

    const [onBranch, onParent] = await Promise.all([rowsByKey(r.connectionUri, table), rowsByKey(parentUrl(), table)]);
    const expected = { insert: [] as string[], update: [] as string[], delete: [] as string[] };
    for (const [k, v] of onBranch) {
      if (!onParent.has(k)) expected.insert.push(k);
      else if (onParent.get(k) !== v) expected.update.push(k);
    }
    for (const k of onParent.keys()) if (!onBranch.has(k)) expected.delete.push(k);
    const listed = { insert: [] as string[], update: [] as string[], delete: [] as string[] };
    for (const row of changes.rows) {
      const k = String(row.key.customer_id);
      if (row.action === 'insert') listed.insert.push(k);
      else if (row.action === 'update') listed.update.push(k);
      else if (row.action === 'delete' || row.action === 'delete-missing') listed.delete.push(k);
    }
    const sorted = (o: typeof expected): typeof expected => ({ insert: [...o.insert].sort(), update: [...o.update].sort(), delete: [...o.delete].sort() });
    assert.ok(expected.insert.length + expected.update.length + expected.delete.length > 0);
    assert.deepEqual(sorted(listed), sorted(expected));

    const applied = await applyBranchToParent({ mapping, source, branch: r.branch.id, neon: { env: env() } });
    assert.deepEqual([applied.result.inserted, applied.result.updated, applied.result.deleted], [expected.insert.length, expected.update.length, expected.delete.length]);
    assert.deepEqual(await rowsByKey(parentUrl(), table), onBranch);
  });

  it('an initial preview (parent not loaded) applies as an initial load of the same version', async () => {
    const mapping = mappingFor('init');
    const r = await previewOnBranch({ mapping, source, neon: { env: env() }, toVersion: firstVersion });
    assert.equal(r.result.mode, 'initial');
    assert.equal(r.parentCheckpoint, null);
    assert.equal(await tableRows(parentUrl(), mapping.target.table), null);
    const applied = await applyBranchToParent({ mapping, source, branch: r.branch.id, neon: { env: env() } });
    assert.equal(applied.result.mode, 'initial');
    assert.equal(applied.result.toVersion, firstVersion);
    await assertTargetEquals(parentUrl(), { schema: 'public', name: mapping.target.table }, tablePath, firstVersion, { key: ['customer_id'] });
    assert.deepEqual(await previewBranchesLeft(), []);
  });

  it('apply is refused when the parent moved since the preview; discard then deletes the branch', async () => {
    const mapping = mappingFor('moved');
    await syncParent(mapping, firstVersion);
    const r = await previewOnBranch({ mapping, source, neon: { env: env() } });
    await syncParent(mapping, latest);
    const err = await expectSyncError(applyBranchToParent({ mapping, source, branch: r.branch.name, neon: { env: env() } }), {
      kind: 'target', retry: 'never', message: /Refused: the parent branch main moved since preview branch/, hint: /Discard the preview branch/,
    });
    assert.match(err.message, new RegExp(`was at version ${firstVersion} then and is at version ${latest} now`));
    assert.equal((await previewBranchesLeft()).length, 1);

    const gone = await discardPreviewBranch({ mapping, branch: r.branch.name, neon: { env: env() } });
    assert.equal(gone.id, r.branch.id);
    assert.deepEqual(await previewBranchesLeft(), []);
  });

  it('discard refuses a branch this tool did not make', async () => {
    const mapping = mappingFor('other');
    await expectSyncError(discardPreviewBranch({ mapping, branch: 'main', neon: { env: env() } }), { kind: 'usage', message: /is not a preview branch made by delta-neon-sync/ });
    assert.ok(server.branches(project.projectId).some((b) => b.branch.name === 'main'));
  });

  it('a preview cancelled during its sync deletes its branch (the same signal also given to the API calls)', async () => {
    const mapping = mappingFor('cancel');
    const ac = new AbortController();
    await expectSyncError(previewOnBranch({
      mapping, source, neon: { env: env(), signal: ac.signal }, signal: ac.signal,
      onEvent: (e) => {
        if (e.type === 'phase') ac.abort();
      },
    }), { kind: 'cancelled' });
    assert.deepEqual(await previewBranchesLeft(), []);
  });

  it('a preview that fails after its branch exists deletes the branch and reports the failure', async () => {
    const mapping = mappingFor('fails');
    await expectSyncError(previewOnBranch({
      mapping, source, neon: { env: env(), onProgress: (m) => {
        if (m.startsWith('Created preview branch')) server.failNext(/^GET .*\/connection_uri$/, 400, 'endpoint is misconfigured');
      } },
    }), { kind: 'connection', message: /HTTP 400.*endpoint is misconfigured/ });
    assert.deepEqual(await previewBranchesLeft(), []);
  });

  it('a mapping that does not target Neon is refused with the reference format', async () => {
    const mapping = parseMapping({ name: 'plain', source: { type: 'delta', path: tablePath }, target: { connection: '${env:X}', schema: 'public', table: 't' }, key: ['customer_id'] });
    await expectSyncError(previewOnBranch({ mapping, source, neon: { env: env() } }), { kind: 'mapping', setting: 'target.connection', message: /needs a mapping whose target\.connection is a Neon branch/ });
  });
});
