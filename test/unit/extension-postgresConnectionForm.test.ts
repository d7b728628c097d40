import * as assert from 'node:assert/strict';
import { SyncError } from '../../src/sync/errors';
import { testPostgresConnection, type ConnectionTestResult } from '../../src/sync/postgres/testConnection';
import { fieldsFromUrl, postgresConnectionForm, urlFromFields, validateField } from '../../src/views/PostgresConnectionForm';
import { ScriptedPrompter } from '../helpers/scriptedPrompter';
import pg from 'pg';
import { TargetsModel, connectionErrorNode, serverFromSummary } from '../../src/views/TargetsModel';
import { MemorySecrets, MemoryState } from '../helpers/memoryStores';
import { freePort } from '../helpers/postgres';

/**
 * Issue 13 point 5: the Add / Edit Postgres Connection flow, driven through a scripted
 * Prompter (what VS Code's input boxes and quick picks would answer), saving through the
 * real TargetsModel over in-memory stores.
 */

const ok = (server: string): ConnectionTestResult => ({ ok: true, serverVersion: 'PostgreSQL 16.4', server });

function deps(model: TargetsModel, test: (url: string) => Promise<ConnectionTestResult>, tested: string[] = []) {
  return {
    validateName: (n: string) => model.validateName(n),
    test: async (url: string) => {
      tested.push(url);
      return test(url);
    },
    save: (name: string, url: string) => model.save(name, url),
  };
}

describe('Postgres connection form (add / edit / test before saving)', () => {
  it('parses a pasted URL into fields and builds the same connection back', () => {
    const f = fieldsFromUrl('postgresql://app%40x:p%2Fss@ep-a-1.eu-central-1.aws.neon.tech/neondb?sslmode=require&connect_timeout=5');
    assert.deepEqual({ ...f, extra: f.extra }, { host: 'ep-a-1.eu-central-1.aws.neon.tech', port: '5432', database: 'neondb', user: 'app@x', password: 'p/ss', sslmode: 'require', extra: [['connect_timeout', '5']] });
    assert.deepEqual(fieldsFromUrl(urlFromFields(f)), f);
    assert.equal(fieldsFromUrl('postgres://u@localhost:5433/db').sslmode, 'disable');
    assert.match(validateField('port', '99999') ?? '', /between 1 and 65535/);
    assert.match(validateField('host', 'postgresql://x') ?? '', /Paste a connection URL/);
    assert.equal(validateField('password', ''), undefined);
  });

  it('asks each field with only the password masked, tests before saving, and saves on success', async () => {
    const model = new TargetsModel(new MemoryState(), new MemorySecrets());
    const tested: string[] = [];
    const p = new ScriptedPrompter(['local', 'Enter host, port, database, user and password', 'db.example.com', '6543', 'app', 'alice', 's3cret', 'verify-full']);
    const r = await postgresConnectionForm(p, deps(model, async () => ok('db.example.com:6543/app'), tested));
    assert.ok(r?.test.ok);
    const inputs = p.asked.filter((a) => a.kind === 'input');
    assert.deepEqual(inputs.filter((a) => a.password).map((a) => a.title), ['Add Postgres Connection (5/6): password']);
    assert.deepEqual(tested, ['postgresql://alice:s3cret@db.example.com:6543/app?sslmode=verify-full']);
    assert.equal(await model.connectionString('local'), tested[0]);
    assert.equal(model.connections()[0]?.summary, 'db.example.com:6543/app');
    assert.match(p.asked.at(-1)?.title ?? '', /Connected to db\.example\.com:6543\/app — PostgreSQL 16\.4\. Saved "local"/);
  });

  it('a failed test (a real closed port) offers Edit / Retry / Save Anyway; Edit re-asks only the port and keeps the other answers', async () => {
    const port = await freePort();
    const model = new TargetsModel(new MemoryState(), new MemorySecrets());
    const tested: string[] = [];
    const p = new ScriptedPrompter([
      'dev', 'Paste a connection URL', `postgresql://bob:pw@127.0.0.1:${port}/shop?sslmode=disable`,
      'Edit', String(port), // the port again: still closed
      'Retry',
      'Save Anyway',
    ]);
    const r = await postgresConnectionForm(p, deps(model, (u) => testPostgresConnection(u, { connectionTimeoutMillis: 5000 }), tested));
    const errors = p.asked.filter((a) => a.kind === 'message');
    assert.equal(errors.length, 3);
    for (const e of errors) {
      assert.ok(e.title.startsWith(`Nothing is listening on 127.0.0.1:${port} — is Postgres running?`), e.title);
      assert.deepEqual(e.labels, ['Edit', 'Retry', 'Save Anyway']);
      assert.ok(!e.title.includes('pw@'));
    }
    // After Edit only the port was asked, prefilled; user, database and password were kept.
    const afterEdit = p.asked.slice(p.asked.findIndex((a) => a.kind === 'message') + 1).filter((a) => a.kind === 'input');
    assert.deepEqual(afterEdit.map((a) => [a.title, a.value]), [['Add Postgres Connection (2/6): port', String(port)]]);
    assert.equal(tested.length, 3);
    assert.ok(tested.every((u) => u === `postgresql://bob:pw@127.0.0.1:${port}/shop?sslmode=disable`), tested.join(' '));
    assert.equal(r?.test.ok, false);
    assert.equal(await model.connectionString('dev'), tested[0]);
  });

  it('cancelling after a failed test saves nothing', async () => {
    const model = new TargetsModel(new MemoryState(), new MemorySecrets());
    const failed: ConnectionTestResult = { ok: false, problem: { headline: 'Database "x" does not exist on h:5432.', field: 'database', error: new SyncError('target', 'no db') } };
    const p = new ScriptedPrompter(['n1', 'Paste a connection URL', 'postgresql://u@h/x', undefined]);
    assert.equal(await postgresConnectionForm(p, deps(model, async () => failed)), undefined);
    assert.deepEqual(model.connections(), []);
  });

  it('Edit of a saved connection prefills every field (password masked), keeps the name and replaces the stored string', async () => {
    const model = new TargetsModel(new MemoryState(), new MemorySecrets());
    await model.add('prod', 'postgresql://u:old@h.example.com/db1?sslmode=require');
    const failed: ConnectionTestResult = { ok: false, problem: { headline: 'Database "db1" does not exist on h.example.com:5432.', field: 'database', error: new SyncError('target', 'no db') } };
    let calls = 0;
    const p = new ScriptedPrompter(['h.example.com', '5432', 'db1', 'u', 'new', 'require', 'Edit', 'db2']);
    const r = await postgresConnectionForm(p, deps(model, async () => (++calls === 1 ? failed : ok('h.example.com:5432/db2'))), { name: 'prod', url: await model.connectionString('prod') });
    assert.equal(r?.name, 'prod');
    const inputs = p.asked.filter((a) => a.kind === 'input');
    assert.deepEqual(inputs.slice(0, 5).map((a) => a.value), ['h.example.com', '5432', 'db1', 'u', 'old']);
    assert.deepEqual(inputs.at(-1)?.title, 'Edit Postgres Connection "prod" (3/6): database');
    assert.equal(await model.connectionString('prod'), 'postgresql://u:new@h.example.com:5432/db2?sslmode=require');
    assert.deepEqual(model.connections().map((c) => [c.name, c.summary]), [['prod', 'h.example.com:5432/db2']]);
  });

  it('a saved connection whose tables cannot be listed shows the problem in words on a row that offers Edit / Retry', async () => {
    const port = await freePort();
    const model = new TargetsModel(new MemoryState(), new MemorySecrets());
    const info = await model.add('local', `postgresql://u@127.0.0.1:${port}/app?sslmode=disable`);
    const c = new pg.Client({ connectionString: await model.connectionString('local') });
    const raw = await c.connect().then(() => undefined, (e: unknown) => e);
    assert.ok(raw instanceof Error && /ECONNREFUSED/.test(raw.message), String(raw));
    const node = connectionErrorNode(info, raw);
    assert.equal(node.kind, 'message');
    if (node.kind !== 'message') return;
    assert.equal(node.label, `Nothing is listening on 127.0.0.1:${port} — is Postgres running?`);
    assert.equal(node.connection, 'local');
    assert.match(node.tooltip ?? '', /host and port/);
    assert.deepEqual(serverFromSummary('[::1]:5433/db'), { host: '::1', port: '5433', database: 'db' });
    assert.equal(serverFromSummary('lakebase h/db (profile p)'), undefined);
  });
});
