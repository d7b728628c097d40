import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CUSTOMER_PROFILE_COLUMNS, createCustomerProfilesTable, generateCustomers } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { DatabricksCatalog } from '../../src/sync/databricks/DatabricksCatalog';
import { DatabricksConnections, testResultMessage, validateHttpPath } from '../../src/views/DatabricksConnections';
import { pickTreeNode } from '../../src/views/pickTreeNode';
import { ScriptedPrompter } from '../helpers/scriptedPrompter';
import { cdfTablePick, DatabricksModel, databricksTableSummary, isDatabricksNode, type DatabricksNode, type DatabricksTableNode } from '../../src/views/DatabricksModel';
import { SyncEngine } from '../../src/engine/SyncEngine';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { MemorySecrets, MemoryState } from '../helpers/memoryStores';
import { FakeWarehouse } from '../helpers/fakeWarehouse/FakeWarehouse';
import { tempDir } from '../helpers/syncHarness';

/** Newest commit version and the CDF property of the newest metaData, read from _delta_log files (independent of the reader). */
function logFacts(table: string): { version: number; cdf: boolean } {
  const commits = fs
    .readdirSync(path.join(table, '_delta_log'))
    .filter((n) => /^\d{20}\.json$/.test(n))
    .sort();
  let cdf = false;
  for (const file of commits) {
    for (const line of fs.readFileSync(path.join(table, '_delta_log', file), 'utf8').split('\n')) {
      if (!line.includes('"metaData"')) continue;
      const meta = JSON.parse(line) as { metaData: { configuration?: Record<string, string> } };
      cdf = meta.metaData.configuration?.['delta.enableChangeDataFeed'] === 'true';
    }
  }
  return { version: Number(commits[commits.length - 1]?.slice(0, 20)), cdf };
}

function labels(nodes: DatabricksNode[]): string[] {
  return nodes.map((n) => {
    switch (n.kind) {
      case 'databricks-connection':
        return n.info.name;
      case 'databricks-catalog':
        return n.catalog;
      case 'databricks-schema':
        return n.schema;
      case 'databricks-table':
        return n.table.table;
      case 'databricks-column':
        return n.field.name;
      case 'message':
        return `${n.severity}: ${n.label}`;
    }
  });
}

function tableNamed(nodes: DatabricksNode[], name: string): DatabricksTableNode {
  const n = nodes.find((x): x is DatabricksTableNode => x.kind === 'databricks-table' && x.table.table === name);
  assert.ok(n, `no table row ${name} in ${labels(nodes).join(', ')}`);
  return n;
}

describe('extension: Databricks sources (view models against the local test warehouse)', function () {
  this.timeout(120_000);
  let warehouse: FakeWarehouse;
  let customers: string;
  let noCdf: string;
  let state: MemoryState;
  let secrets: MemorySecrets;
  let connections: DatabricksConnections;
  let model: DatabricksModel;

  before(async function () {
    this.timeout(60_000);
    const dir = await tempDir('ext-dbx-');
    customers = (await createCustomerProfilesTable(path.join(dir, 'customers'), { rows: 60 })).path;
    const w = await DeltaTableWriter.create(path.join(dir, 'no_cdf'), { columns: [...CUSTOMER_PROFILE_COLUMNS], name: 'no_cdf' });
    await w.append(generateCustomers(10));
    await w.append(generateCustomers(5, 42, 11));
    noCdf = w.path;
    warehouse = await FakeWarehouse.start({ catalogs: { main: { sales: { customers, no_cdf: noCdf }, empty: {} }, hive: { legacy: {} } } });
  });
  after(async () => {
    await warehouse?.stop();
  });

  // Two attempts: a keep-alive socket the warehouse closed while the event loop was busy
  // (the sandbox opening) is retried, as the driver's default does; a 503 still fails fast.
  const extras = () => ({ customCaCert: warehouse.caCert, retryMaxAttempts: 2 });
  const host = (): string => `https://${warehouse.host}:${warehouse.serverPort}/`;

  beforeEach(async () => {
    warehouse.mode = 'running';
    state = new MemoryState();
    secrets = new MemorySecrets();
    connections = new DatabricksConnections(state, secrets, { extras, env: {} });
    model = new DatabricksModel(connections);
    await connections.add({ name: 'ws', host: host(), httpPath: warehouse.httpPath, auth: { type: 'pat', token: warehouse.token } });
  });
  afterEach(async () => {
    await connections.dispose();
  });

  describe('connections', () => {
    it('keeps the token only in secret storage; state has name, host and path', async () => {
      assert.ok(!JSON.stringify([...state.data.values()]).includes(warehouse.token));
      assert.ok([...secrets.data.values()].some((v) => v.includes(warehouse.token)));
      const [info] = connections.list();
      assert.equal(info?.name, 'ws');
      assert.equal(info?.httpPath, warehouse.httpPath);
      assert.equal(info?.authType, 'pat');
    });

    it('stores OAuth client secrets in secret storage too, and the lookup returns them', async () => {
      await connections.add({ name: 'sp', host: 'adb-1.7.azuredatabricks.net', httpPath: '/sql/1.0/warehouses/abc', auth: { type: 'oauth-m2m', clientId: 'cid-1', clientSecret: 'very-secret' } });
      assert.ok(!JSON.stringify([...state.data.values()]).includes('very-secret'));
      const cfg = await connections.lookup('sp');
      assert.deepEqual(cfg?.auth, { type: 'oauth-m2m', clientId: 'cid-1', clientSecret: 'very-secret' });
      assert.equal(await connections.lookup('not-saved'), undefined);
    });

    it('refuses duplicate names and HTTP paths that are not warehouse paths', async () => {
      assert.ok(connections.validateName('ws'));
      assert.ok(connections.validateName('has space'));
      assert.equal(validateHttpPath('/sql/1.0/warehouses/0123abcd'), undefined);
      assert.ok(validateHttpPath('https://adb-1.azuredatabricks.net'));
      await expectSyncError(connections.add({ name: 'ws', host: host(), httpPath: warehouse.httpPath, auth: { type: 'pat', token: 't' } }), { kind: 'usage' });
    });

    it('a connection whose secret is gone fails with an auth error naming the fix', async () => {
      await secrets.delete([...secrets.data.keys()][0] as string);
      await expectSyncError(connections.lookup('ws'), { kind: 'auth', hint: /add it again/ });
    });

    it('remove forgets the connection and deletes its secret', async () => {
      await model.children(model.roots()[0]); // opens the shared client
      await connections.remove('ws');
      assert.deepEqual(connections.list(), []);
      assert.equal(secrets.data.size, 0);
      assert.deepEqual(model.roots(), []);
    });
  });

  describe('test connection', () => {
    it('reports the catalogs the warehouse shows', async () => {
      const r = await connections.test('ws');
      assert.equal(r.ok, true);
      assert.deepEqual(r.ok && [...r.catalogs].sort(), ['hive', 'main']);
      assert.match(testResultMessage(r), /Connected to 127\.0\.0\.1 as "ws".*2 catalogs visible/);
    });

    it('a wrong token is an auth failure with the 403 and what to check', async () => {
      await connections.add({ name: 'bad', host: host(), httpPath: warehouse.httpPath, auth: { type: 'pat', token: 'dapi-wrong' } });
      const r = await connections.test('bad');
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error.kind, 'auth');
      assert.match(testResultMessage(r), /403/);
      assert.match(testResultMessage(r), /HTTP path|credentials/);
    });

    it('a stopped warehouse says so and that it may be starting', async () => {
      warehouse.mode = 'stopped';
      const r = await connections.test('ws');
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error.kind, 'connection');
      assert.match(testResultMessage(r), /stopped or still starting/);
    });

    it('an unknown host is a name-resolution failure pointing at the host setting', async () => {
      await connections.add({ name: 'dns', host: 'no-such-workspace.invalid', httpPath: warehouse.httpPath, auth: { type: 'pat', token: 't' } });
      const r = await connections.test('dns');
      assert.equal(r.ok, false);
      // ENOTFOUND where a resolver answers; EAI_AGAIN (cannot reach) in a sandbox without DNS.
      assert.match(testResultMessage(r), /Cannot resolve the Databricks host|Cannot reach Databricks/);
    });
  });

  describe('browse tree', () => {
    it('lists connection -> catalogs -> schemas -> tables with version and CDF from the tables\' logs', async () => {
      const [conn] = model.roots();
      assert.equal(conn?.kind, 'databricks-connection');
      const catalogs = await model.children(conn);
      assert.deepEqual(labels(catalogs), ['hive', 'main']);
      const main = catalogs.find((c) => c.kind === 'databricks-catalog' && c.catalog === 'main');
      const schemas = await model.children(main);
      assert.deepEqual(labels(schemas), ['empty', 'sales']);
      const tables = await model.children(schemas.find((s) => s.kind === 'databricks-schema' && s.schema === 'sales'));
      assert.deepEqual(labels(tables), ['customers', 'no_cdf']);
      const c = tableNamed(tables, 'customers');
      const n = tableNamed(tables, 'no_cdf');
      const cFacts = logFacts(customers);
      const nFacts = logFacts(noCdf);
      assert.equal(c.state?.version, cFacts.version);
      assert.equal(c.state?.cdfEnabled, cFacts.cdf);
      assert.equal(n.state?.version, nFacts.version);
      assert.equal(n.state?.cdfEnabled, nFacts.cdf);
      assert.equal(databricksTableSummary(c), `v${cFacts.version} · CDF ${cFacts.cdf ? 'on' : 'off'}`);
      assert.equal(databricksTableSummary(n), `v${nFacts.version} · CDF ${nFacts.cdf ? 'on' : 'off'}`);
      assert.equal(c.fullName, 'main.sales.customers');
      assert.ok(isDatabricksNode(c));
    });

    it('Enable Change Data Feed from the palette: connection (the only one, not asked), catalog, schema, then only the tables whose feed is off', async () => {
      const p = new ScriptedPrompter(['main', 'sales', 'no_cdf']);
      const node = await pickTreeNode(p, cdfTablePick(model, 'Enable Change Data Feed'));
      assert.equal(node?.kind === 'databricks-table' ? node.fullName : node, 'main.sales.no_cdf');
      const picks = p.asked.filter((a) => a.kind === 'pick');
      assert.deepEqual(picks.map((a) => a.labels), [['hive', 'main'], ['empty', 'sales'], ['no_cdf']]);
      assert.deepEqual(picks.map((a) => a.title), ['Enable Change Data Feed: ws', 'Enable Change Data Feed: ws / main', 'Enable Change Data Feed: ws / main / sales']);
      // A schema without tables offers nothing to enable, and says where it looked.
      await expectSyncError(pickTreeNode(new ScriptedPrompter(['main', 'empty']), cdfTablePick(model, 'Enable Change Data Feed')), { kind: 'usage', message: 'Enable Change Data Feed: nothing to choose from under ws / main / empty.' });
    });

    it('expanding a table lists its columns in order', async () => {
      const tables = await model.children({ kind: 'databricks-schema', connection: 'ws', catalog: 'main', schema: 'sales' });
      const cols = await model.children(tableNamed(tables, 'customers'));
      assert.deepEqual(labels(cols), CUSTOMER_PROFILE_COLUMNS.map((col) => col.name));
    });

    it('empty levels are info rows', async () => {
      const rows = await model.children({ kind: 'databricks-schema', connection: 'ws', catalog: 'main', schema: 'empty' });
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.kind === 'message' && rows[0].severity, 'info');
    });

    it('a wrong token is one error row under the connection (the 403 and the hint), not an exception', async () => {
      await connections.add({ name: 'bad', host: host(), httpPath: warehouse.httpPath, auth: { type: 'pat', token: 'dapi-wrong' } });
      const conn = model.roots().find((r) => r.kind === 'databricks-connection' && r.info.name === 'bad');
      const rows = await model.children(conn);
      assert.equal(rows.length, 1);
      const row = rows[0];
      assert.equal(row?.kind, 'message');
      assert.equal(row?.kind === 'message' && row.severity, 'error');
      assert.match(row?.kind === 'message' ? row.label : '', /HTTP 403/);
    });

    it('a warehouse stopped after browsing began gives an error row saying it is stopped; browsing works again once it runs', async () => {
      const [conn] = model.roots();
      assert.deepEqual(labels(await model.children(conn)), ['hive', 'main']); // shared client open
      warehouse.mode = 'stopped';
      model.refresh();
      const rows = await model.children(conn);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.kind === 'message' && rows[0].severity, 'error');
      assert.match(rows[0]?.kind === 'message' ? rows[0].label : '', /stopped or still starting/);
      warehouse.mode = 'running';
      model.refresh();
      assert.deepEqual(labels(await model.children(conn)), ['hive', 'main']);
    });

    it('a kept connection that died (expired session) is replaced once, also when several tables read in parallel', async () => {
      const schema: DatabricksNode = { kind: 'databricks-schema', connection: 'ws', catalog: 'main', schema: 'sales' };
      await model.children(schema);
      const dead = await connections.client('ws');
      await dead.close();
      model.refresh();
      const tables = await model.children(schema);
      assert.deepEqual(labels(tables), ['customers', 'no_cdf']);
      assert.equal(tableNamed(tables, 'customers').error, null);
      assert.equal(tableNamed(tables, 'no_cdf').error, null);
      const fresh = await connections.client('ws');
      assert.notEqual(fresh, dead);
      model.refresh();
      assert.equal(tableNamed(await model.children(schema), 'customers').error, null, 'the replacement stays usable');
    });

    it('reuses one warehouse connection across refreshes', async () => {
      const [conn] = model.roots();
      const first = await connections.client('ws');
      await model.children(conn);
      model.refresh();
      await model.children({ kind: 'databricks-schema', connection: 'ws', catalog: 'main', schema: 'sales' });
      assert.equal(await connections.client('ws'), first);
    });
  });

  describe('enable change data feed', () => {
    it('refuses without confirmation and sends no ALTER to the warehouse', async () => {
      const tables = await model.children({ kind: 'databricks-schema', connection: 'ws', catalog: 'main', schema: 'sales' });
      const n = tableNamed(tables, 'no_cdf');
      const before = warehouse.statements.length;
      await expectSyncError(model.enableChangeDataFeed(n, { confirm: false }), { kind: 'usage', hint: /ALTER TABLE/ });
      assert.ok(!warehouse.statements.slice(before).some((s) => /^ALTER/i.test(s)));
    });

    it('with confirmation runs exactly the statement it showed, and the row then shows CDF on', async () => {
      const schema: DatabricksNode = { kind: 'databricks-schema', connection: 'ws', catalog: 'main', schema: 'sales' };
      const n = tableNamed(await model.children(schema), 'no_cdf');
      assert.equal(n.state?.cdfEnabled, false);
      const shown = model.enableCdfStatement(n);
      const after = await model.enableChangeDataFeed(n, { confirm: true });
      assert.ok(warehouse.statements.includes(shown));
      assert.equal(after.cdfEnabled, true);
      assert.equal(tableNamed(await model.children(schema), 'no_cdf').state?.cdfEnabled, true);
    });
  });

  describe('sync engine with SecretStorage connections', () => {
    it('a Databricks mapping\'s status reads through the saved connection on the shared client', async () => {
      const engine = new SyncEngine({
        sandboxDir: () => undefined,
        lookup: async () => undefined,
        logger: { debug() {}, info() {}, warn() {}, error() {} },
        env: {},
        databricks: { lookup: connections.lookup, openShared: (c, t) => connections.openSharedSource(c, t) },
      });
      try {
        const mapping = buildMapping({ name: 'dbx-customers', source: { type: 'databricks', connection: 'ws', table: 'main.sales.customers' }, target: { connection: 'sandbox', table: 'customers' }, key: ['customer_id'] });
        const status = await engine.withRunner(mapping, (h) => h.runner.status(), { shareSource: true });
        assert.equal(status.latestVersion, logFacts(customers).version);
        // Releasing the runner leaves the shared client open: it still answers, directly.
        const kept = await connections.client('ws');
        assert.deepEqual((await new DatabricksCatalog(kept).catalogs()).sort(), ['hive', 'main']);
        // A run (not shared) opens its own connection through the lookup and closes it.
        const own = await engine.withRunner(mapping, (h) => h.source.latestVersion());
        assert.equal(own, logFacts(customers).version);
      } finally {
        await engine.dispose();
      }
    });
  });
});
