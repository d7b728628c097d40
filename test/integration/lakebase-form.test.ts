import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { SyncEngine } from '../../src/engine/SyncEngine';
import { connectionSecretKey } from '../../src/platform/StateKeys';
import { listDatabricksProfiles } from '../../src/sync/lakebase/databricksProfiles';
import { parseLakebaseReference } from '../../src/sync/mapping/lakebaseReference';
import { silentLogger } from '../../src/sync/ports/Logger';
import { openLakebaseCatalog } from '../../src/sync/lakebase/LakebaseCatalog';
import { TYPE_INSTEAD, lakebaseDatabaseForm, profileChoices, testLakebaseReference, type LakebaseFormDeps } from '../../src/views/LakebaseDatabaseForm';
import { TargetsModel, summarizeConnectionString } from '../../src/views/TargetsModel';
import { FakeLakebaseWorkspace, LAKEBASE_PASSWORD_GROUP } from '../helpers/fakeLakebaseWorkspace';
import { MemorySecrets, MemoryState } from '../helpers/memoryStores';
import { startThrowawayServer, type TestServer } from '../helpers/postgres';
import { ScriptedPrompter } from '../helpers/scriptedPrompter';
import { tempDir } from '../helpers/syncHarness';

/**
 * Add Lakebase Database (the extension's dialog, through a scripted Prompter): the profiles
 * offered come from the saved Databricks connections and ~/.databrickscfg; the answers make
 * a `lakebase:` reference that is tested as a run opens it (a token from the local
 * Databricks workspace, a login at its Postgres endpoint) before it is saved, and what is
 * saved holds no secret.
 */

const ENDPOINT = 'projects/proj-form/branches/br-main/endpoints/ep-primary';
const ALICE = 'alice.form@example.com';
const ALICE_PAT = 'dapi-alice-form-0123456789';
const BOB = 'bob.form@example.com';
const BOB_PAT = 'dapi-bob-form-no-projects-42';
/** Other endpoints of the workspace, so the form has something to choose between. */
const DEV_ENDPOINT = 'projects/proj-form/branches/br-dev/endpoints/ep-dev';
const OTHER_ENDPOINT = 'projects/proj-other/branches/main/endpoints/ep-1';

describe('Add Lakebase Database (the dialog, against a local Databricks workspace)', function () {
  this.timeout(120_000);
  let server: TestServer;
  let workspace: FakeLakebaseWorkspace;
  let configFile: string;
  let engine: SyncEngine;

  before(async function () {
    this.timeout(120_000);
    server = await startThrowawayServer({ hba: [`host all +${LAKEBASE_PASSWORD_GROUP} 127.0.0.1/32 scram-sha-256`] });
    workspace = await FakeLakebaseWorkspace.start({
      adminUrl: server.adminUrl, endpoints: [ENDPOINT, DEV_ENDPOINT, OTHER_ENDPOINT], tokenTtlMs: 60_000,
      principals: [{ role: ALICE, pat: ALICE_PAT }, { role: BOB, pat: BOB_PAT, projectAccess: false }],
      databases: { 'projects/proj-form/branches/br-main': ['databricks_postgres', 'lb_form'] },
    });
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE lb_form OWNER ${pg.escapeIdentifier(ALICE)}`);
    } finally {
      await admin.end();
    }
    const dir = await tempDir('dns-lakebase-form-');
    configFile = path.join(dir, 'databrickscfg');
    await fs.writeFile(configFile, [
      '[DEFAULT]', '',
      '[alice-pat]', `host = ${workspace.url}`, `token = ${ALICE_PAT}`, '',
      '; an expired token', '[alice-old]', `host = ${workspace.url}`, 'token = dapi-revoked', '',
      '[sp-m2m]', 'host = https://adb-1.azuredatabricks.net', 'client_id = abc', 'client_secret = shh', '',
      '[bob-noaccess]', `host = ${workspace.url}`, `token = ${BOB_PAT}`, '',
    ].join('\n'));
    engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async () => undefined, logger: silentLogger, env: { DATABRICKS_CONFIG_FILE: configFile } });
  });
  after(async () => {
    await engine?.dispose();
    await workspace?.stop();
    await server?.stop();
  });

  function deps(model: TargetsModel, tested: string[]): LakebaseFormDeps {
    return {
      validateName: (n) => model.validateName(n),
      profiles: async () => profileChoices([{ name: 'dbx-prod', host: 'adb-2.azuredatabricks.net', authType: 'oauth-m2m' }], await listDatabricksProfiles({ DATABRICKS_CONFIG_FILE: configFile })),
      test: (reference) => {
        tested.push(reference);
        return testLakebaseReference((c, fn) => engine.withTarget(c, fn), reference, summarizeConnectionString(reference));
      },
      save: (name, reference) => model.save(name, reference),
    };
  }

  /** As the extension wires it: the endpoint and database listed from the profile's workspace. */
  function browsingDeps(model: TargetsModel, tested: string[]): LakebaseFormDeps {
    return { ...deps(model, tested), catalog: (profile) => openLakebaseCatalog(profile, { env: { DATABRICKS_CONFIG_FILE: configFile } }) };
  }

  it('lists the config file\'s profiles with host and kind of sign-in (secrets not read out), none without a file', async () => {
    assert.deepEqual(await listDatabricksProfiles({ DATABRICKS_CONFIG_FILE: configFile }), [
      { name: 'alice-pat', host: workspace.url, auth: 'token' },
      { name: 'alice-old', host: workspace.url, auth: 'token' },
      { name: 'sp-m2m', host: 'https://adb-1.azuredatabricks.net', auth: 'oauth-m2m' },
      { name: 'bob-noaccess', host: workspace.url, auth: 'token' },
    ]);
    assert.deepEqual(await listDatabricksProfiles({ DATABRICKS_CONFIG_FILE: path.join(path.dirname(configFile), 'missing') }), []);
  });

  it('a profile whose sign-in fails is reported by the test, nothing saved; Edit the profile, the test passes, the reference is saved without a secret', async () => {
    const secrets = new MemorySecrets();
    const model = new TargetsModel(new MemoryState(), secrets);
    const tested: string[] = [];
    const host = `127.0.0.1:${workspace.pgPort}`;
    const p = new ScriptedPrompter([
      'lb-form', 'alice-old', 'Lakebase Autoscaling endpoint', ENDPOINT, host, 'lb_form',
      'Edit', 'profile', 'alice-pat',
    ]);
    const r = await lakebaseDatabaseForm(p, deps(model, tested));
    assert.ok(r, 'saved');
    // The profiles offered: saved connections first, then the file's (DEFAULT without a host is not one).
    assert.deepEqual(p.asked.find((a) => a.kind === 'pick' && a.title.endsWith('Databricks profile'))?.labels, ['dbx-prod', 'alice-pat', 'alice-old', 'sp-m2m', 'bob-noaccess']);
    const failed = p.asked.find((a) => a.kind === 'message');
    assert.match(failed?.title ?? '', /alice-old/, 'the failure names the profile');
    assert.equal(tested.length, 2);
    const expected = `lakebase:${ENDPOINT}/lb_form?profile=alice-pat&host=127.0.0.1&port=${workspace.pgPort}&sslmode=disable`;
    assert.equal(tested[1], expected);
    assert.equal(r.url, expected);
    assert.ok(r.test.ok);
    const parsed = parseLakebaseReference(expected);
    assert.ok(parsed.ok && parsed.ref.workspace === 'alice-pat' && parsed.ref.endpoint === ENDPOINT && parsed.ref.database === 'lb_form');
    // Saved: the reference alone (no token, no PAT); listed with a summary naming the profile.
    assert.deepEqual([...secrets.data.entries()], [[connectionSecretKey('lb-form'), expected]]);
    assert.ok(!expected.includes(ALICE_PAT) && !expected.includes('lbt-'));
    assert.deepEqual(model.connections().map((c) => [c.name, c.summary]), [['lb-form', 'lakebase 127.0.0.1/lb_form (profile alice-pat)']]);
    // The saved name opens as a run would: logged in as the profile's user.
    const named = new SyncEngine({ sandboxDir: () => undefined, lookup: (n) => model.connectionString(n), logger: silentLogger, env: { DATABRICKS_CONFIG_FILE: configFile } });
    try {
      assert.equal(await named.withTarget('lb-form', async (t) => (await t.pool.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u), ALICE);
    } finally {
      await named.dispose();
    }
  });

  it('with the workspace listed, the endpoint is picked (project, branch, endpoint), its host prefills the host step, and the database is picked', async () => {
    const secrets = new MemorySecrets();
    const model = new TargetsModel(new MemoryState(), secrets);
    const tested: string[] = [];
    let prefilled: string | undefined;
    const p = new ScriptedPrompter([
      'lb-browse', 'alice-pat', 'Lakebase Autoscaling endpoint', 'proj-form', 'br-main', 'ep-primary',
      (o) => {
        prefilled = o.value;
        return `${o.value ?? ''}:${workspace.pgPort}`;
      },
      'lb_form',
    ]);
    const r = await lakebaseDatabaseForm(p, browsingDeps(model, tested));
    assert.ok(r?.test.ok, JSON.stringify(r?.test));
    const picks = p.asked.filter((a) => a.kind === 'pick').map((a) => [a.title.replace(/^Add Lakebase Database \(\d\/5\): /, ''), a.labels]);
    assert.deepEqual(picks.slice(2), [
      ['project', ['proj-form', 'proj-other', TYPE_INSTEAD]],
      ['branch of proj-form', ['br-main', 'br-dev', TYPE_INSTEAD]],
      ['endpoint of br-main', ['ep-primary', TYPE_INSTEAD]],
      ['database', ['databricks_postgres', 'lb_form', TYPE_INSTEAD]],
    ]);
    assert.equal(prefilled, '127.0.0.1', 'the host step starts from the endpoint\'s host');
    const expected = `lakebase:${ENDPOINT}/lb_form?profile=alice-pat&host=127.0.0.1&port=${workspace.pgPort}&sslmode=disable`;
    assert.deepEqual(tested, [expected]);
    assert.deepEqual([...secrets.data.entries()], [[connectionSecretKey('lb-browse'), expected]]);
  });

  it('listing errors are shown in the form, naming the profile and what was listed: a revoked token, then a profile without access; another profile or typing goes on', async () => {
    const secrets = new MemorySecrets();
    const model = new TargetsModel(new MemoryState(), secrets);
    const tested: string[] = [];
    const p = new ScriptedPrompter([
      'lb-errors', 'alice-old', 'Lakebase Autoscaling endpoint',
      'Choose another profile', 'bob-noaccess',
      TYPE_INSTEAD, ENDPOINT, `127.0.0.1:${workspace.pgPort}`,
      // The database list fails the same way: cancel there.
      undefined,
    ]);
    const r = await lakebaseDatabaseForm(p, browsingDeps(model, tested));
    assert.equal(r, undefined, 'cancelled');
    const errors = p.asked.filter((a) => a.kind === 'pick' && a.labels?.includes('Choose another profile'));
    assert.equal(errors.length, 3, JSON.stringify(p.asked, null, 1));
    const host = new URL(workspace.url).host;
    assert.match(errors[0]?.title ?? '', new RegExp(`project: Databricks rejected the credentials of Databricks profile "alice-old" \\(workspace ${host.replace(/\./g, '\\.')}\\) while trying to list the Lakebase projects`));
    assert.match(errors[1]?.title ?? '', new RegExp(`project: Databricks profile "bob-noaccess" \\(workspace ${host.replace(/\./g, '\\.')}\\) may not list the Lakebase projects: .*does not have permission`));
    assert.match(errors[2]?.title ?? '', /database: Databricks profile "bob-noaccess" .* may not list the databases of Lakebase projects\/proj-form\/branches\/br-main/);
    assert.deepEqual(errors[0]?.labels, ['Retry', 'Choose another profile', TYPE_INSTEAD]);
    assert.deepEqual(tested, []);
    assert.equal(secrets.data.size, 0);
  });

  it('cancelling at any step saves nothing', async () => {
    const secrets = new MemorySecrets();
    const model = new TargetsModel(new MemoryState(), secrets);
    const tested: string[] = [];
    const r = await lakebaseDatabaseForm(new ScriptedPrompter(['lb-cancel', 'alice-pat', 'Lakebase Provisioned database instance', undefined]), deps(model, tested));
    assert.equal(r, undefined);
    assert.deepEqual(tested, []);
    assert.equal(secrets.data.size, 0);
    assert.deepEqual(model.connections(), []);
  });
});
