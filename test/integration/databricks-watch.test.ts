import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
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
import { pollUntil, tempDir } from '../helpers/syncHarness';
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
    for (const name of ['idle', 'stopped', 'woken']) {
      const t = await DeltaTableWriter.create(path.join(dir, name), {
        columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }],
        configuration: { 'delta.enableChangeDataFeed': 'true' },
      });
      await t.append(rows(1, 20));
      tables[name] = t;
    }
    warehouse = await FakeWarehouse.start({ catalogs: { main: { sales: Object.fromEntries(Object.entries(tables).map(([n, t]) => [n, t.path])) } } });
  });

  after(async () => {
    await warehouse?.stop();
  });

  beforeEach(() => {
    warehouse.mode = 'running';
    warehouse.autoResume = false;
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
      // At most one statement per poll (a poll in flight may have read the state, not yet the history).
      assert.ok(sent.length <= reads && sent.length >= reads - 1, `${sent.length} statements for ${reads} polls`);
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
      const resumesBefore = warehouse.resumes;
      warehouse.mode = 'stopped';
      await pollUntil(async () => (w.states.some((s) => s.phase === 'waiting') ? true : undefined), { timeoutMs: 20_000, what: 'the watch to wait for the warehouse' });
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
});
