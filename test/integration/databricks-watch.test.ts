import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ContinuousSyncs, watchBarLook, watchPhrase } from '../../src/engine/ContinuousSyncs';
import type { WatchStatus } from '../../src/engine/ContinuousSyncs';
import { SyncEngine } from '../../src/engine/SyncEngine';
import type { TargetHandle } from '../../src/engine/SyncEngine';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { silentLogger } from '../../src/sync/ports/Logger';
import type { Row } from '../../src/sync/delta/types';
import { openSource } from '../../src/sync/open/openSource';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { createPool } from '../../src/sync/postgres/createPool';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { watchPipeline } from '../../src/sync/run/watch';
import type { PollState, WatchSummary } from '../../src/sync/run/watch';
import { DATABRICKS_POLL_INTERVAL_MS } from '../../src/sync/sources/DatabricksChangeSource';
import { long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { FakeWarehouse } from '../helpers/fakeWarehouse/FakeWarehouse';
import { checkpointVersion } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import * as fs from 'node:fs/promises';
import { buildCli, pollUntil, startCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Issue 14, point 1 (Databricks): a watch on a Databricks table polls its SQL warehouse
 * with one DESCRIBE HISTORY ... LIMIT 1 per interval at most, each after a state check over
 * the SQL Warehouses REST API that runs no statement; while the warehouse is stopped no
 * statement is sent (a statement would start it) and the watch says it is waiting, until
 * the warehouse runs again or the user lets polls start it. Through the real
 * @databricks/sql driver and the Databricks SDK against the local test warehouse, whose
 * table is a real Delta table written while the watch runs.
 */

function rows(a: number, b: number, tag = 'item'): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: BigInt(i), name: `${tag} ${i}` });
  return out;
}

const KEY = ['id'];
const POLL_MS = 150;
const HISTORY = /^DESCRIBE HISTORY `main`\.`sales`\.`(\w+)` LIMIT 1$/;

describe('Databricks source: continuous sync polls the warehouse cheaply (real driver and SDK, local test warehouse)', function () {
  this.timeout(90_000);
  const db = useTestDatabase('dbx_watch');
  let warehouse: FakeWarehouse;
  const tables: Record<string, DeltaTableWriter> = {};

  before(async function () {
    this.timeout(60_000);
    const dir = await tempDir('dbx-watch-');
    for (const name of ['idle', 'stopped', 'woken', 'cli', 'ext', 'denied']) {
      const t = await DeltaTableWriter.create(path.join(dir, name), {
        columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }],
        configuration: { 'delta.enableChangeDataFeed': 'true' },
      });
      await t.append(rows(1, 20));
      tables[name] = t;
    }
    warehouse = await FakeWarehouse.start({ catalogs: { main: { sales: Object.fromEntries(Object.entries(tables).map(([n, t]) => [n, t.path])) } } });
    cliDir = dir;
  });
  let cliDir: string;

  after(async () => {
    await warehouse?.stop();
  });

  beforeEach(() => {
    warehouse.mode = 'running';
    warehouse.autoResume = false;
    warehouse.restDenied = false;
  });

  interface Watch {
    pipeline: string;
    states: PollState[];
    stop(): Promise<WatchSummary>;
  }

  /** Starts a watch of main.sales.<name> into public.dbx_<name>; the source is opened as the CLI opens it (connection by name). */
  async function startWatch(name: string, opts: { wakeSource?: boolean; intervalMs?: number } = {}): Promise<Watch> {
    const mapping = buildMapping({ name: `dbx-${name}`, source: { type: 'databricks', connection: 'default', table: `main.sales.${name}` }, target: { connection: db().url, schema: 'public', table: `dbx_${name}` }, key: KEY });
    const source = await openSource(mapping.source, { databricks: { env: {}, lookup: async () => warehouse.config() } });
    const pool = createPool(db().url, { max: 3 });
    const runner = new SyncRunner(mapping, source, mappingTarget(pool, mapping.target));
    const abort = new AbortController();
    const states: PollState[] = [];
    const done = watchPipeline({
      runner,
      source,
      mode: 'follow',
      intervalMs: opts.intervalMs ?? POLL_MS,
      signal: abort.signal,
      wakeSource: opts.wakeSource,
      onPollState: (s) => states.push(s),
    });
    // A failed watch fails the test at stop(); keep the rejection handled meanwhile.
    done.catch(() => undefined);
    return {
      pipeline: mapping.name,
      states,
      async stop() {
        abort.abort();
        try {
          return await done;
        } finally {
          await source.close?.();
          await pool.end();
        }
      },
    };
  }

  const atVersion = (pipeline: string, v: number) =>
    pollUntil(async () => ((await checkpointVersion(db().url, pipeline)) === v ? v : undefined), { timeoutMs: 30_000, everyMs: 50, what: `pipeline ${pipeline} at version ${v}` });

  /** Waits until the watch has read the warehouse's state `n` more times (one per poll). */
  const polls = (n: number) => {
    const want = warehouse.stateReads + n;
    return pollUntil(async () => (warehouse.stateReads >= want ? true : undefined), { timeoutMs: 20_000, everyMs: 20, what: `${n} polls of the warehouse state` });
  };

  /**
   * Stops the warehouse while it is idle and waits until the watch says it waits. A statement
   * of a poll that read the state just before the stop starts it again (as on a real
   * warehouse): then stop it again.
   */
  async function stopUntilWaiting(isWaiting: () => boolean): Promise<void> {
    for (let i = 0; i < 10; i++) {
      await warehouse.stopWhenIdle();
      const seen = await pollUntil(async () => (isWaiting() ? true : warehouse.mode === 'running' ? false : undefined), { timeoutMs: 20_000, everyMs: 20, what: 'the watch to wait for the stopped warehouse' });
      if (seen) return;
    }
    throw new Error('a poll started the warehouse ten times in a row');
  }

  it('the default poll interval on a Databricks source is 30 s (a statement per poll costs warehouse time)', async () => {
    const source = await openSource({ type: 'databricks', connection: 'default', table: 'main.sales.idle' }, { databricks: { env: {}, lookup: async () => warehouse.config() } });
    try {
      assert.equal(source.polling?.defaultIntervalMs, DATABRICKS_POLL_INTERVAL_MS);
      assert.equal(DATABRICKS_POLL_INTERVAL_MS, 30_000);
      assert.match(source.polling?.cost ?? '', new RegExp(`DESCRIBE HISTORY main\\.sales\\.idle LIMIT 1 on SQL warehouse ${warehouse.warehouseId}.*GET /api/2\\.0/sql/warehouses/${warehouse.warehouseId}`));
    } finally {
      await source.close?.();
    }
  });

  it('idle: one DESCRIBE HISTORY ... LIMIT 1 per interval and nothing else, each after a state read over REST; a new version is picked up', async () => {
    const t = tables.idle as DeltaTableWriter;
    const w = await startWatch('idle');
    try {
      await atVersion(w.pipeline, t.version);
      await polls(1);
      const from = warehouse.statements.length;
      const readsFrom = warehouse.stateReads;
      await polls(6);
      const sent = warehouse.statements.slice(from);
      const reads = warehouse.stateReads - readsFrom;
      assert.ok(sent.every((s) => HISTORY.exec(s)?.[1] === 'idle'), `only the history read while idle:\n${sent.join('\n')}`);
      // One statement per poll: the window may cut a poll between its state read and its statement at either end.
      assert.ok(Math.abs(sent.length - reads) <= 1, `${sent.length} statements for ${reads} polls`);
      assert.deepEqual(w.states, [], 'a running warehouse: no waiting');

      await t.append(rows(21, 30));
      await t.update('id', [{ id: 2n, name: 'changed 2' }]);
      await atVersion(w.pipeline, t.version);
      await assertTargetEquals(db().url, { schema: 'public', name: 'dbx_idle' }, t.path, t.version, { key: KEY });
    } finally {
      await w.stop();
    }
  });

  it('a stopped warehouse is not started by a poll: no statement while it is stopped, the watch says it waits, and it catches up once the warehouse runs again', async () => {
    const t = tables.stopped as DeltaTableWriter;
    // As a real warehouse: a statement starts a stopped one.
    warehouse.autoResume = true;
    const w = await startWatch('stopped');
    try {
      await atVersion(w.pipeline, t.version);
      const loaded = t.version;
      await stopUntilWaiting(() => w.states.some((s) => s.phase === 'waiting'));
      const resumesBefore = warehouse.resumes;
      assert.deepEqual(w.states[0], { phase: 'waiting', reason: `SQL warehouse "Fake Warehouse" (${warehouse.warehouseId}) is STOPPED` });
      const from = warehouse.statements.length;
      // Committed while the warehouse is stopped (by a job on other compute).
      await t.append(rows(21, 25));
      await polls(6);
      assert.deepEqual(warehouse.statements.slice(from), [], 'no statement while the warehouse is stopped');
      assert.equal(warehouse.resumes - resumesBefore, 0, 'no poll started the warehouse');
      assert.equal(warehouse.mode, 'stopped');
      assert.equal(await checkpointVersion(db().url, w.pipeline), loaded);
      assert.equal(w.states.length, 1, 'said once, not per poll');

      // Someone starts it: the next poll finds the new version.
      warehouse.mode = 'running';
      await atVersion(w.pipeline, t.version);
      assert.deepEqual(w.states[1], { phase: 'polling' });
      await assertTargetEquals(db().url, { schema: 'public', name: 'dbx_stopped' }, t.path, t.version, { key: KEY });
    } finally {
      await w.stop();
    }
  });

  it('when the state cannot be read (403), the watch warns once, naming the warehouse, and polls with the statement', async () => {
    const t = tables.denied as DeltaTableWriter;
    warehouse.restDenied = true;
    const w = await startWatch('denied');
    try {
      await atVersion(w.pipeline, t.version);
      await pollUntil(async () => (w.states.length > 0 ? true : undefined), { timeoutMs: 20_000, what: 'the warning' });
      const from = warehouse.statements.length;
      await pollUntil(async () => (warehouse.statements.length >= from + 3 ? true : undefined), { timeoutMs: 20_000, what: 'three polls' });
      assert.equal(w.states.length, 1, `once: ${JSON.stringify(w.states)}`);
      const st = w.states[0] as PollState;
      assert.equal(st.phase, 'unchecked');
      assert.match(st.phase === 'unchecked' ? st.warning : '', new RegExp(`^could not read the state of SQL warehouse ${warehouse.warehouseId} \\(.*permission.*\\); polling it with a statement, which starts it when it is stopped$`));
      assert.ok(warehouse.statements.slice(from).every((x) => HISTORY.exec(x)?.[1] === 'denied'));
      await t.append(rows(21, 21));
      await atVersion(w.pipeline, t.version);
    } finally {
      await w.stop();
    }
  });

  it('with wakeSource (--wake-warehouse) a poll starts the stopped warehouse and the new version is applied', async () => {
    const t = tables.woken as DeltaTableWriter;
    warehouse.autoResume = true;
    const w = await startWatch('woken', { wakeSource: true });
    try {
      await atVersion(w.pipeline, t.version);
      const readsBefore = warehouse.stateReads;
      const resumesBefore = warehouse.resumes;
      warehouse.mode = 'stopped';
      await t.delete('id', [4n, 5n]);
      await atVersion(w.pipeline, t.version);
      assert.equal(warehouse.resumes - resumesBefore, 1, 'the poll started it');
      assert.equal(warehouse.stateReads, readsBefore, 'no state check: the user let polls start it');
      assert.deepEqual(w.states, []);
      await assertTargetEquals(db().url, { schema: 'public', name: 'dbx_woken' }, t.path, t.version, { key: KEY });
    } finally {
      await w.stop();
    }
  });

  it("CLI: the start line says the interval and what a poll costs; the watch prints when it waits for the stopped warehouse, naming --wake-warehouse, and when it polls again", async function () {
    this.timeout(120_000);
    await buildCli();
    const t = tables.cli as DeltaTableWriter;
    const caFile = path.join(cliDir, 'warehouse-ca.pem');
    await fs.writeFile(caFile, warehouse.caCert);
    const env = { DATABRICKS_HOST: `${warehouse.host}:${warehouse.serverPort}`, DATABRICKS_HTTP_PATH: warehouse.httpPath, DATABRICKS_TOKEN: warehouse.token, NODE_EXTRA_CA_CERTS: caFile };
    const mappingFile = await writeMappingFile(cliDir, 'dbx-cli', {
      name: 'dbx-cli',
      source: { type: 'databricks', connection: 'default', table: 'main.sales.cli' },
      target: { connection: db().url, schema: 'public', table: 'dbx_cli' },
      key: KEY,
    });
    const id = warehouse.warehouseId;

    // Without --interval: the Databricks default, said so.
    const first = startCli(['sync', '--mapping', mappingFile, '--watch'], env);
    try {
      const line = await pollUntil(async () => /^dbx-cli: watching .*$/m.exec(first.output().stderr)?.[0], { timeoutMs: 30_000, what: 'the start line' });
      assert.match(line, new RegExp(`polled every 30\\.0 s, the default for this source \\(--interval sets it\\): one DESCRIBE HISTORY main\\.sales\\.cli LIMIT 1 on SQL warehouse ${id} while it runs, after a state check over REST \\(GET /api/2\\.0/sql/warehouses/${id}\\) that runs no statement; a stopped warehouse is not started by a poll \\(--wake-warehouse lets it\\)`));
      await atVersion('dbx-cli', t.version);
      first.child.kill('SIGTERM');
      assert.equal((await first.done).code, 0);
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
    }

    warehouse.autoResume = true;
    const cli = startCli(['sync', '--mapping', mappingFile, '--watch', '--interval', '200ms'], env);
    try {
      await pollUntil(async () => (/dbx-cli: watching main\.sales\.cli \(polled every 200 ms: /.test(cli.output().stderr) ? true : undefined), { timeoutMs: 30_000, what: 'the start line' });
      await polls(2);
      const waitingLine = (): string | undefined => /^dbx-cli: waiting: .*$/m.exec(cli.output().stderr)?.[0];
      await stopUntilWaiting(() => waitingLine() !== undefined).catch((e: Error) => {
        throw new Error(`${e.message}; the watch said:\n${cli.output().stderr}`);
      });
      const waiting = waitingLine();
      const resumesBefore = warehouse.resumes;
      assert.equal(waiting, `dbx-cli: waiting: SQL warehouse "Fake Warehouse" (${id}) is STOPPED, and a poll would start it, so new versions are not looked for until it runs again (start it, or watch with --wake-warehouse to let each poll start it)`);
      await t.append(rows(21, 22));
      await polls(3);
      assert.equal(warehouse.mode, 'stopped', 'the CLI watch did not start it');
      assert.equal(warehouse.resumes, resumesBefore);
      warehouse.mode = 'running';
      await atVersion('dbx-cli', t.version);
      cli.child.kill('SIGTERM');
      const res = await cli.done;
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /dbx-cli: the SQL warehouse is running: polling again/);
      assert.match(res.stdout, /dbx-cli: incremental version \d+: 2 inserted, 0 updated, 0 deleted/);
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
    }
  });

  it('extension: a continuous sync shows "waiting for the warehouse" (status bar: the reason and the setting that wakes it), then follows again', async () => {
    const t = tables.ext as DeltaTableWriter;
    warehouse.autoResume = true;
    const engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async () => undefined, logger: silentLogger, env: {}, databricks: { lookup: async () => warehouse.config() } });
    const watches = new ContinuousSyncs<TargetHandle>({ openTarget: (c) => engine.openTarget(c), openRunner: (m, tgt) => engine.openRunnerOn(m, tgt), wakeWarehouse: () => false });
    const seen: WatchStatus[] = [];
    watches.subscribe({ onChange: (st) => seen.push(st) });
    const mapping = buildMapping({ name: 'dbx-ext', source: { type: 'databricks', connection: 'default', table: 'main.sales.ext' }, target: { connection: db().url, schema: 'public', table: 'dbx_ext' }, key: KEY });
    const { done } = watches.start('ext.json', mapping, { mode: 'follow', intervalMs: POLL_MS });
    try {
      await atVersion('dbx-ext', t.version);
      await stopUntilWaiting(() => watches.get('ext.json')?.state.phase === 'waiting');
      const st = watches.get('ext.json') as WatchStatus;
      assert.equal(watchPhrase(st), `waiting for the warehouse · v${t.version}`);
      const look = watchBarLook(watches.list());
      assert.match(look.text, /^\$\(warning\) dbx-ext: waiting for the warehouse/);
      assert.match(look.tooltip, new RegExp(`SQL warehouse "Fake Warehouse" \\(${warehouse.warehouseId}\\) is STOPPED; a poll would start it, so new versions are not looked for until it runs again\\. Start it, or set deltaSync\\.continuous\\.wakeWarehouse`));
      await t.append(rows(21, 23));
      warehouse.mode = 'running';
      await atVersion('dbx-ext', t.version);
      await pollUntil(async () => (watches.get('ext.json')?.state.phase === 'watching' ? true : undefined), { timeoutMs: 10_000, what: 'the watch to follow again' });
      assert.ok(seen.some((x) => x.state.phase === 'waiting'));
    } finally {
      await watches.dispose();
      await done;
      await engine.dispose();
    }
  });
});
