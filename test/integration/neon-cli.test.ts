import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { NeonApiServer } from '../helpers/neonApi/NeonApiServer';
import { getTestServer } from '../helpers/postgres';
import { buildCli, pollUntil, runCli, startCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * The CLI's `neon` commands and a mapping that targets `neon:...`, as processes, against
 * the local Neon API server (NEON_API_KEY / NEON_API_HOST) and the real PostgreSQL.
 */
describe('CLI: neon projects / branches / databases / preview / apply / discard', function () {
  this.timeout(180_000);
  let server: NeonApiServer;
  let project: { projectId: string; branchId: string };
  let dir: string;
  let tablePath: string;
  let firstVersion: number;
  let latest: number;
  let mappingFile: string;
  const env = (): Record<string, string> => ({ NEON_API_KEY: server.apiKey, NEON_API_HOST: server.apiUrl });
  const parentUrl = (): string => server.realUrl(project.projectId, 'main', 'clidb');

  before(async function () {
    this.timeout(120_000);
    await buildCli();
    const pgServer = await getTestServer();
    server = await NeonApiServer.start({ adminUrl: pgServer.adminUrl, operationMs: 50 });
    project = await server.addProject({ name: 'cli-shop', database: 'clidb', role: 'cli_owner' });
    dir = await tempDir('dns-neon-cli-');
    const t = await createCustomerProfilesTable(path.join(dir, 'customers'), { rows: 150 });
    tablePath = t.path;
    firstVersion = t.version;
    latest = await applySampleChanges(t.path);
    mappingFile = await writeMappingFile(dir, 'neon-cli', {
      name: 'neon-cli',
      source: { type: 'delta', path: tablePath },
      target: { connection: 'neon:cli-shop/main/clidb', schema: 'public', table: 'customers' },
      key: ['customer_id'],
    });
  });
  after(async () => {
    await server?.close();
  });

  it('neon projects / branches / databases list what the key sees, in text and json', async () => {
    const p = await runCli(['neon', 'projects'], env());
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`^${project.projectId}\\tcli-shop\\t`, 'm'));
    const pj = await runCli(['neon', 'projects', '--format', 'json'], env());
    assert.deepEqual((JSON.parse(pj.stdout) as { name: string }[]).map((x) => x.name), ['cli-shop']);

    const b = await runCli(['neon', 'branches', 'cli-shop'], env());
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, new RegExp(`^${project.branchId}\\tmain \\(default\\)\\troot\\tcreated `, 'm'));

    const d = await runCli(['neon', 'databases', 'cli-shop', 'main'], env());
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, new RegExp(`^clidb\\towner cli_owner\\tneon:${project.projectId}/main/clidb$`, 'm'));
    assert.match(d.stdout, /^Roles: cli_owner$/m);
  });

  it('without NEON_API_KEY, or with a wrong one, the command fails with how to set the key', async () => {
    const none = await runCli(['neon', 'projects'], { NEON_API_HOST: server.apiUrl, NEON_API_KEY: '' });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /No Neon API key/);
    assert.match(none.stderr, /export NEON_API_KEY=/);
    const wrong = await runCli(['neon', 'projects'], { NEON_API_HOST: server.apiUrl, NEON_API_KEY: 'napi_wrong' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /rejected the API key \(HTTP 401\)/);
  });

  it('sync with a neon: mapping loads the branch database; the mapping file holds no password', async () => {
    const out = await runCli(['sync', '--mapping', mappingFile, '--to-version', String(firstVersion)], env());
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /neon-cli: initial sync to version \d+ done/);
    await assertTargetEquals(parentUrl(), { schema: 'public', name: 'customers' }, tablePath, firstVersion, { key: ['customer_id'] });
    assert.doesNotMatch(await fs.readFile(mappingFile, 'utf8'), /npg_/);
  });

  it('neon preview prints the counts and the branch connection string; previews lists it; apply brings the parent up', async () => {
    const pv = await runCli(['neon', 'preview', '--mapping', mappingFile], env());
    assert.equal(pv.code, 0, pv.stderr);
    const m = /^Preview branch (delta-sync-preview-neon-cli-\S+) \((br-\S+)\) of main: incremental sync to version (\d+): (\d+) insert, (\d+) update, (\d+) delete/m.exec(pv.stdout);
    assert.ok(m, pv.stdout);
    assert.equal(Number(m[3]), latest);
    const uri = /^Connection string \(role cli_owner\): (postgresql:\/\/\S+)$/m.exec(pv.stdout)?.[1];
    assert.ok(uri, pv.stdout);
    await assertTargetEquals(uri, { schema: 'public', name: 'customers' }, tablePath, latest, { key: ['customer_id'] });
    await assertTargetEquals(parentUrl(), { schema: 'public', name: 'customers' }, tablePath, firstVersion, { key: ['customer_id'] });
    // The same counts in the row list of what Apply to Parent will change, then a sample of its rows.
    const changed = Number(m[4]) + Number(m[5]) + Number(m[6]);
    assert.match(pv.stdout, new RegExp(`^What Apply to main will change \\(the rows the branch now has different from main\\):\nPreview \\(versions \\d+\\.\\.${latest}\\): ${m[4]} insert, ${m[5]} update, ${m[6]} delete`, 'm'));
    const listed = pv.stdout.split('\n').filter((l) => /^(insert|update|delete) +customer_id=cust_\d+$/.test(l));
    assert.equal(listed.length, Math.min(20, changed), pv.stdout);
    if (changed > 20) assert.match(pv.stdout, new RegExp(`^\\.\\.\\. ${changed - 20} more \\(use --rows N\\)$`, 'm'));

    const ls = await runCli(['neon', 'previews', 'cli-shop'], env());
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`^${m[2]}\\t${m[1]}\\tmapping neon-cli\\t`, 'm'));

    const ap = await runCli(['neon', 'apply', '--mapping', mappingFile, m[1] as string], env());
    assert.equal(ap.code, 0, ap.stderr);
    assert.match(ap.stdout, new RegExp(`^Applied to main: incremental sync to version ${latest}: ${m[4]} insert, ${m[5]} update, ${m[6]} delete.*Deleted preview branch ${m[1]}\\.$`, 'm'));
    await assertTargetEquals(parentUrl(), { schema: 'public', name: 'customers' }, tablePath, latest, { key: ['customer_id'] });
    const after = await runCli(['neon', 'previews', 'cli-shop'], env());
    assert.equal(after.stdout, 'No preview branches.\n');
  });

  it('neon discard <project> <branch> deletes a kept preview branch', async () => {
    const pv = await runCli(['neon', 'preview', '--mapping', mappingFile, '--format', 'json'], env());
    assert.equal(pv.code, 0, pv.stderr);
    const r = JSON.parse(pv.stdout) as { branch: { id: string; name: string }; result: { status: string } };
    assert.equal(r.result.status, 'up-to-date');
    const dc = await runCli(['neon', 'discard', 'cli-shop', r.branch.name], env());
    assert.equal(dc.code, 0, dc.stderr);
    assert.equal(dc.stdout, `Deleted preview branch ${r.branch.name} (${r.branch.id}).\n`);
    await server.settle();
    assert.ok(!server.branches(project.projectId).some((b) => b.branch.id === r.branch.id));
  });

  it('Ctrl-C while neon preview waits for its new branch deletes the branch before the CLI exits', async () => {
    const release = server.holdOperations();
    let stderr = '';
    try {
      const { child, done } = startCli(['neon', 'preview', '--mapping', mappingFile], env());
      child.stderr?.on('data', (d: string) => (stderr += d));
      await pollUntil(async () => (/Created preview branch/.test(stderr) ? true : undefined), { timeoutMs: 30_000, what: 'the preview branch to be created' });
      child.kill('SIGINT');
      // The delete is refused (423) while the create operation runs; let it finish now.
      setTimeout(release, 300);
      const res = await done;
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /cancelled/i);
      assert.match(res.stderr, /Deleted preview branch delta-sync-preview-neon-cli-\S+: the preview did not finish/);
    } finally {
      release();
    }
    await server.settle();
    assert.deepEqual(server.branches(project.projectId).map((b) => b.branch.name), ['main']);
  });
});
