import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SyncEngine } from '../../src/engine/SyncEngine';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { silentLogger } from '../../src/sync/ports/Logger';
import type { PipelineStatus } from '../../src/sync/ports/reports';
import { DatabricksConnections } from '../../src/views/DatabricksConnections';
import { MappingStatusRefresher } from '../../src/views/MappingStatusRefresher';
import { MappingsModel, mappingDescription, mappingTooltip, statusRows } from '../../src/views/MappingsModel';
import type { MappingNode, MappingStatus, StatusReadOptions } from '../../src/views/MappingsModel';
import { syncHistoryReport } from '../../src/views/reports';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { createPool } from '../../src/sync/postgres/createPool';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { DatabricksChangeSource } from '../../src/sync/sources/DatabricksChangeSource';
import { buildMapping } from '../builders/mappings';
import { assertTargetEquals } from '../helpers/targetEquality';
import { long, string } from '../builders/deltaFields';
import { FakeWarehouse } from '../helpers/fakeWarehouse/FakeWarehouse';
import { MemorySecrets, MemoryState } from '../helpers/memoryStores';
import { useTestDatabase } from '../helpers/postgres';
import { buildCli, pollUntil, runCli, tempDir, writeMappingFile } from '../helpers/syncHarness';

/**
 * Issue 14, point 1 (Databricks), for status reads: the Mappings tree's periodic status
 * check and the CLI's `status` read the SQL warehouse's state over REST first and, while
 * it is not RUNNING, send no statement and open no session (either would start it), saying
 * that the source's version was not checked instead of "up to date" from a stale read. An
 * explicit Refresh and `status --wake-warehouse` still read it. Real @databricks/sql driver
 * and Databricks SDK against the local test warehouse (a real Delta table), real Postgres.
 */

function rows(a: number, b: number): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: BigInt(i), name: `item ${i}` });
  return out;
}

const HISTORY = /^DESCRIBE HISTORY `main`\.`sales`\.`(\w+)` LIMIT 1$/;

describe('Databricks source: status reads do not start a stopped SQL warehouse (real driver and SDK, local test warehouse)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('dbx_status');
  let warehouse: FakeWarehouse;
  let dir: string;
  const tables: Record<string, DeltaTableWriter> = {};

  before(async function () {
    this.timeout(60_000);
    dir = await tempDir('dbx-status-');
    for (const name of ['tree', 'cli', 'ca']) {
      const t = await DeltaTableWriter.create(path.join(dir, 'tables', name), {
        columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }],
        configuration: { 'delta.enableChangeDataFeed': 'true' },
      });
      await t.append(rows(1, 10));
      tables[name] = t;
    }
    warehouse = await FakeWarehouse.start({ catalogs: { main: { sales: Object.fromEntries(Object.entries(tables).map(([n, t]) => [n, t.path])) } } });
  });

  after(async () => {
    await warehouse?.stop();
  });

  beforeEach(() => {
    warehouse.mode = 'running';
    // As a real warehouse: a statement (or a new session) starts a stopped one.
    warehouse.autoResume = true;
  });

  const historyOf = (sent: readonly string[], table: string): string[] => sent.filter((s) => HISTORY.exec(s)?.[1] === table);

  it('Mappings tree: a periodic check sends DESCRIBE HISTORY while the warehouse runs, nothing while it is stopped (the row says the version was not checked); Refresh reads it', async () => {
    const t = tables.tree as DeltaTableWriter;
    const ws = path.join(dir, 'ws');
    await fs.mkdir(path.join(ws, '.delta-sync'), { recursive: true });
    const file = await writeMappingFile(path.join(ws, '.delta-sync'), 'tree', {
      name: 'dbx-tree',
      source: { type: 'databricks', connection: 'ws', table: 'main.sales.tree' },
      target: { connection: db().url, schema: 'public', table: 'dbx_tree' },
      key: ['id'],
    });
    // Wired as extension.ts wires it: saved connection, its shared client, the status read deferred.
    const connections = new DatabricksConnections(new MemoryState(), new MemorySecrets(), { extras: () => ({ customCaCert: warehouse.caCert, retryMaxAttempts: 1 }), env: {} });
    await connections.add({ name: 'ws', host: `https://${warehouse.host}:${warehouse.serverPort}/`, httpPath: warehouse.httpPath, auth: { type: 'pat', token: warehouse.token } });
    const engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async () => undefined, logger: silentLogger, env: {}, databricks: { lookup: connections.lookup, openShared: (c, tb) => connections.openSharedSource(c, tb) } });
    let started = 0;
    let settled = 0;
    const reads: StatusReadOptions[] = [];
    const statusOf = async (m: Parameters<typeof engine.withRunner>[0], o: StatusReadOptions): Promise<MappingStatus> => {
      started++;
      reads.push(o);
      try {
        return await engine.withRunner(m, (h) => h.runner.status(o), { shareSource: true, deferConnect: true });
      } finally {
        settled++;
      }
    };
    const model = new MappingsModel(() => [ws], () => '.delta-sync', statusOf);
    /** The mapping row once its status has settled (the tree lists again on each change, as the view does). */
    const node = async (): Promise<MappingNode & { kind: 'mapping' }> =>
      pollUntil(async () => {
        const n = (await model.children())[0] as MappingNode & { kind: 'mapping' };
        return n.status && n.status.state !== 'pending' ? n : undefined;
      }, { timeoutMs: 30_000, everyMs: 20, what: 'the mapping status' });
    /** Runs the periodic refresher (as registerViews does) until `n` more status reads settled, then stops it and lets every read finish. */
    const periodic = async (n: number): Promise<void> => {
      const want = settled + n;
      const refresher = new MappingStatusRefresher(model, { pollSeconds: () => 0.2, onRefresh: () => void model.children() });
      try {
        await refresher.sync();
        await pollUntil(async () => (settled >= want ? true : undefined), { timeoutMs: 30_000, everyMs: 20, what: `${n} periodic status reads` });
      } finally {
        refresher.dispose();
      }
      await pollUntil(async () => (settled === started ? true : undefined), { timeoutMs: 30_000, everyMs: 20, what: 'the status reads in flight' });
    };
    try {
      const mapping = (await model.load(file)) as MappingNode & { kind: 'mapping' };
      await engine.withRunner(mapping.mapping, (h) => h.runner.run());
      const loaded = t.version;
      assert.equal(mappingDescription(await node()).split(' · ').slice(0, 2).join(' · '), `up to date · v${loaded}`);

      // Running: one DESCRIBE HISTORY ... LIMIT 1 per periodic read, as before.
      let from = warehouse.statements.length;
      let startedFrom = started;
      await periodic(3);
      const whileRunning = historyOf(warehouse.statements.slice(from), 'tree');
      assert.equal(whileRunning.length, started - startedFrom, `one history read per status read:\n${warehouse.statements.slice(from).join('\n')}`);
      assert.ok(whileRunning.length >= 3);
      assert.ok(reads.slice(startedFrom).every((o) => !o.wakeSource), 'a periodic read may not wake the warehouse');

      // Stopped, with a version committed meanwhile by other compute: no statement, no session.
      await warehouse.stopWhenIdle();
      await t.append(rows(11, 12));
      from = warehouse.statements.length;
      startedFrom = started;
      const resumesBefore = warehouse.resumes;
      const stateReadsBefore = warehouse.stateReads;
      await periodic(3);
      assert.deepEqual(warehouse.statements.slice(from), [], 'no statement while the warehouse is stopped');
      assert.equal(warehouse.resumes, resumesBefore, 'no status read started the warehouse');
      assert.equal(warehouse.mode, 'stopped');
      assert.equal(warehouse.stateReads - stateReadsBefore, started - startedFrom, 'each read asked the state over REST');

      const stopped = await node();
      const id = warehouse.warehouseId;
      assert.equal(mappingDescription(stopped), `v${loaded} checkpoint · warehouse stopped, source version not checked · main.sales.tree → ${db().url}:public.dbx_tree`);
      const status = stopped.status?.state === 'ok' ? stopped.status.status : undefined;
      assert.equal(status?.latestVersion, null);
      assert.equal(status?.lag, null);
      assert.deepEqual(status?.state, { phase: 'source-not-checked', version: loaded, reason: `SQL warehouse "Fake Warehouse" (${id}) is STOPPED`, short: 'warehouse stopped' });
      const children = statusRows(file, stopped.status);
      const source = children.find((r) => r.kind === 'status' && r.label === 'Source');
      assert.ok(source && source.kind === 'status');
      assert.equal(source.detail, 'not checked · warehouse stopped');
      assert.equal(source.tooltip, `SQL warehouse "Fake Warehouse" (${id}) is STOPPED: the status check does not start it, so the source's latest version was not read (the checkpoint is v${loaded}; the source may be ahead).\nRefresh the Mappings view to read it now (that starts the warehouse), or set deltaSync.status.wakeWarehouse to let every status check start it.`);
      assert.ok(!children.some((r) => r.kind === 'status' && /up to date/.test(r.detail)), 'never "up to date" from a version nobody read');
      assert.match(mappingTooltip(stopped), /deltaSync\.status\.wakeWarehouse/);
      const facts = syncHistoryReport(status as PipelineStatus).facts;
      assert.deepEqual(facts.map((f) => f.value), [`not checked: SQL warehouse "Fake Warehouse" (${id}) is STOPPED, and reading it would start it`, `version ${loaded}; versions behind unknown (the source was not checked)`]);

      // The user's Refresh reads it, starting the warehouse.
      from = warehouse.statements.length;
      model.invalidate(undefined, { wakeSource: true });
      const refreshed = await node();
      assert.equal(warehouse.resumes, resumesBefore + 1, 'Refresh started the warehouse');
      assert.equal(historyOf(warehouse.statements.slice(from), 'tree').length, 1);
      assert.equal(mappingDescription(refreshed).split(' · ')[0], '1 version behind');
      // The next periodic read is not a Refresh: it does not wake.
      assert.equal(reads.at(-1)?.wakeSource, true);
      await periodic(1);
      assert.equal(reads.at(-1)?.wakeSource, false);
    } finally {
      await engine.dispose();
      await connections.dispose();
    }
  });

  it('CLI status: no statement while the warehouse is stopped (text and JSON say the version was not checked and why); one while it runs; --wake-warehouse reads it', async function () {
    this.timeout(180_000);
    await buildCli();
    const t = tables.cli as DeltaTableWriter;
    const caFile = path.join(dir, 'warehouse-ca.pem');
    await fs.writeFile(caFile, warehouse.caCert);
    const env = { DATABRICKS_HOST: `${warehouse.host}:${warehouse.serverPort}`, DATABRICKS_HTTP_PATH: warehouse.httpPath, DATABRICKS_TOKEN: warehouse.token, NODE_EXTRA_CA_CERTS: caFile };
    const mappingFile = await writeMappingFile(dir, 'dbx-cli', {
      name: 'dbx-cli',
      source: { type: 'databricks', connection: 'default', table: 'main.sales.cli' },
      target: { connection: db().url, schema: 'public', table: 'dbx_cli' },
      key: ['id'],
    });
    const id = warehouse.warehouseId;
    const ok = async (args: string[]): Promise<string> => {
      const r = await runCli(args, env);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    await ok(['sync', '--mapping', mappingFile]);
    const loaded = t.version;

    // Running: the state, then one DESCRIBE HISTORY ... LIMIT 1.
    let from = warehouse.statements.length;
    let out = await ok(['status', '--mapping', mappingFile]);
    assert.equal(historyOf(warehouse.statements.slice(from), 'cli').length, 1);
    assert.match(out, new RegExp(`^source: +main\\.sales\\.cli \\(latest version ${loaded}\\)$`, 'm'));
    assert.match(out, new RegExp(`^warehouse: +SQL warehouse "Fake Warehouse" \\(${id}\\) is RUNNING$`, 'm'));
    assert.match(out, /^lag: +0 version\(s\) behind$/m);

    // Stopped: nothing sent, no session opened; text and JSON say so.
    await warehouse.stopWhenIdle();
    await t.append(rows(11, 11));
    const resumesBefore = warehouse.resumes;
    from = warehouse.statements.length;
    out = await ok(['status', '--mapping', mappingFile]);
    const json = JSON.parse(await ok(['status', '--mapping', mappingFile, '--format', 'json'])) as PipelineStatus;
    assert.deepEqual(warehouse.statements.slice(from), [], 'no statement while the warehouse is stopped');
    assert.equal(warehouse.resumes, resumesBefore, 'status did not start the warehouse');
    assert.equal(warehouse.mode, 'stopped');
    assert.match(out, new RegExp(`^source: +main\\.sales\\.cli \\(latest version not checked: SQL warehouse "Fake Warehouse" \\(${id}\\) is STOPPED, and reading it would start it; status --wake-warehouse reads it\\)$`, 'm'));
    assert.match(out, /^lag: +unknown \(the source was not checked\)$/m);
    assert.match(out, new RegExp(`^checkpoint: version ${loaded} `, 'm'));
    assert.equal(json.latestVersion, null);
    assert.equal(json.lag, null);
    assert.deepEqual(json.sourceNotChecked, { reason: `SQL warehouse "Fake Warehouse" (${id}) is STOPPED`, short: 'warehouse stopped' });
    assert.equal(json.state.phase, 'source-not-checked');

    // --wake-warehouse: reads it, starting the warehouse.
    from = warehouse.statements.length;
    out = await ok(['status', '--mapping', mappingFile, '--wake-warehouse']);
    assert.equal(warehouse.resumes, resumesBefore + 1);
    assert.equal(historyOf(warehouse.statements.slice(from), 'cli').length, 1);
    assert.match(out, new RegExp(`^source: +main\\.sales\\.cli \\(latest version ${t.version}\\)$`, 'm'));
    assert.match(out, /^lag: +1 version\(s\) behind$/m);
  });

  it("a sync whose connection carries the CA as a Buffer (as the extension reads deltaSync.databricks.caCertificateFile) reads on the worker thread, whose copy of it is a Uint8Array", async () => {
    const t = tables.ca as DeltaTableWriter;
    const source = await DatabricksChangeSource.open({ ...warehouse.config(), customCaCert: Buffer.from(warehouse.caCert) }, 'main.sales.ca');
    const mapping = buildMapping({ name: 'dbx-ca', source: { type: 'databricks', connection: 'default', table: 'main.sales.ca' }, target: { connection: db().url, schema: 'public', table: 'dbx_ca' }, key: ['id'] });
    const pool = createPool(db().url, { max: 2 });
    try {
      const sessions = warehouse.sessionsOpened;
      const r = await new SyncRunner(mapping, source, mappingTarget(pool, mapping.target)).run();
      assert.equal(r.inserted, 10);
      assert.ok(warehouse.sessionsOpened > sessions, 'the snapshot was read on a session of its own (the worker thread)');
      await assertTargetEquals(db().url, { schema: 'public', name: 'dbx_ca' }, t.path, t.version, { key: ['id'] });
    } finally {
      await source.close();
      await pool.end();
    }
  });
});
