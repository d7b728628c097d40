import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { openSandbox } from '../../src/sync/postgres/PglitePool';
import type { SandboxDatabase } from '../../src/sync/postgres/PglitePool';
import { ABANDONED_RUN_ERROR } from '../../src/sync/postgres/stateTables';
import type { SyncEvent } from '../../src/sync/ports/events';
import { openSource } from '../../src/sync/open/openSource';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { buildMapping, mappingInput } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { buildCli, createManyVersionsTable, openRunner, pollUntil, runCli, startCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import { queryOnce } from '../helpers/pgQuery';

/**
 * A run whose process dies (SIGKILL) cannot record its end: the next run (or status())
 * sees that no live process holds the pipeline's run lock and marks it 'abandoned'. A run
 * started while another one of the same pipeline is live fails at once with a clear
 * message naming the live run. Real server and real CLI processes; the sandbox keeps working.
 */

const TABLE = { schema: 'public', name: 'customer_profiles' };
const KEY = ['customer_id'];

interface RunRow {
  run_id: string;
  status: string;
  error: string | null;
  finished: boolean;
  started: string;
}

/** The pipeline's run rows, oldest first; none before the state tables exist. */
async function runRows(url: string, pipeline: string): Promise<RunRow[]> {
  const sql = `SELECT run_id::text AS run_id, status, error, finished_at IS NOT NULL AS finished, started_at::text AS started
                 FROM delta_neon_sync.runs WHERE pipeline = $1 ORDER BY run_id`;
  return queryOnce<RunRow>(url, sql, [pipeline]).catch(() => []);
}

/** Sets the pipeline's checkpoint back to version 0, so the next throttled run has many batches to do. */
async function rewindCheckpoint(url: string, pipeline: string): Promise<void> {
  await queryOnce(url, `UPDATE delta_neon_sync.checkpoints SET version = 0 WHERE pipeline = $1`, [pipeline]);
}

/** Advisory locks held in `db` (the run lock of a live run is one). */
async function advisoryLocks(url: string, db: string): Promise<number> {
  const sql = `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1`;
  return (await queryOnce<{ n: number }>(url, sql, [db]))[0]?.n ?? 0;
}

describe('abandoned runs and concurrent runs (real server, CLI processes)', function () {
  this.timeout(240_000);
  const db = useTestDatabase('sync_abandon');
  let dir: string;
  let tablePath: string;
  let latest: number;
  let mappingFile: string;
  const PIPELINE = 'abandon';

  before(async function () {
    this.timeout(120_000);
    await buildCli();
    dir = await tempDir('dns-abandon-');
    tablePath = path.join(dir, 'many_versions');
    latest = await createManyVersionsTable(tablePath, { appends: 12, perAppend: 500 });
    // Throttled to 1000 rows/s in batches of 500 rows: a run of the whole table takes seconds.
    mappingFile = await writeMappingFile(
      dir,
      PIPELINE,
      mappingInput({ name: PIPELINE, source: tablePath, target: { connection: db().url, table: TABLE.name }, key: KEY, batch: { maxRows: 500, maxRowsPerSecond: 1000 } }),
    );
    const init = await runCli(['sync', '--mapping', mappingFile, '--mode', 'initial', '--to-version', '0']);
    assert.equal(init.code, 0, init.stderr);
  });

  /** Starts a throttled CLI sync and waits until its run row is 'running'. */
  async function startLiveRun(): Promise<{ stop: () => Promise<void>; done: ReturnType<typeof startCli>['done']; child: ReturnType<typeof startCli>['child']; row: RunRow }> {
    const known = new Set((await runRows(db().url, PIPELINE)).map((r) => r.run_id));
    const { child, done } = startCli(['sync', '--mapping', mappingFile]);
    const row = await pollUntil(async () => (await runRows(db().url, PIPELINE)).find((r) => !known.has(r.run_id) && r.status === 'running'), {
      timeoutMs: 30_000, everyMs: 10, what: 'the CLI run to be recorded as running',
    });
    return {
      child, done, row,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await done;
      },
    };
  }

  it('a second run while one is live fails at once naming the live run; after the live one is SIGKILLed, status() shows it abandoned and the next run succeeds', async () => {
    const mapping = buildMapping({ name: PIPELINE, source: tablePath, target: TABLE.name, key: KEY });
    const r = await openRunner(mapping, db().url);
    const live = await startLiveRun();
    try {
      const refusedEvents: SyncEvent[] = [];
      await expectSyncError(r.runner.run({ onEvent: (e) => refusedEvents.push(e) }), {
        message: new RegExp(`Another run of pipeline "${PIPELINE}" is in progress \\(started at [^,]+, run #${live.row.run_id}\\)`),
        retry: 'manual',
        hint: true,
      });
      // Refused at once, not after waiting for the live run: that one is still going (below),
      // and the refused run never started (no run-started, nothing read).
      assert.deepEqual(refusedEvents.filter((e) => e.type === 'run-started' || e.type === 'progress' || e.type === 'batch-committed'), []);
      // The refused run neither recorded a run nor touched the live one.
      const during = await runRows(db().url, PIPELINE);
      assert.deepEqual(during.map((x) => x.status), ['succeeded', 'running']);
      const st = await r.runner.status();
      assert.equal(st.runs[0]?.status, 'running', 'status() leaves a live run alone');
      assert.equal(live.child.exitCode, null, 'the live run is still going');

      live.child.kill('SIGKILL');
      const killed = await live.done;
      assert.equal(killed.signal, 'SIGKILL');
      // The server ends the dead client's sessions, which frees the run lock.
      await pollUntil(async () => ((await advisoryLocks(db().url, db().database)) === 0 ? true : undefined), { timeoutMs: 20_000, what: 'the killed run lock to go' });
      assert.deepEqual((await runRows(db().url, PIPELINE)).map((x) => x.status), ['succeeded', 'running'], 'nobody recorded the end of the killed run');

      const st2 = await r.runner.status();
      const abandoned = st2.runs.find((x) => x.runId === live.row.run_id);
      assert.equal(abandoned?.status, 'abandoned');
      assert.equal(abandoned?.error, ABANDONED_RUN_ERROR);
      assert.ok(abandoned?.finishedAt);

      const res = await r.runner.run({ maxAttempts: 1 });
      assert.equal(res.status, 'succeeded');
      assert.equal(res.toVersion, latest);
      assert.equal(res.abandonedRuns, undefined, 'status() had marked it already');
      await assertTargetEquals(db().url, TABLE, tablePath, latest, { key: KEY });
      assert.deepEqual((await runRows(db().url, PIPELINE)).map((x) => x.status), ['succeeded', 'abandoned', 'succeeded']);
    } finally {
      await live.stop();
      await r.close();
    }
  });

  it('the next run started right after a SIGKILL (before anything else looked) marks the killed run abandoned, reports it, and succeeds', async () => {
    await rewindCheckpoint(db().url, PIPELINE);
    const live = await startLiveRun();
    live.child.kill('SIGKILL');
    await live.done;
    const again = await runCli(['sync', '--mapping', mappingFile]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`Run\\(s\\) #${live.row.run_id} of pipeline "${PIPELINE}" were still marked running.*marked them abandoned`));
    const rows = await runRows(db().url, PIPELINE);
    const killed = rows.find((x) => x.run_id === live.row.run_id);
    assert.equal(killed?.status, 'abandoned');
    assert.equal(killed?.error, ABANDONED_RUN_ERROR);
    assert.equal(rows[rows.length - 1]?.status, 'succeeded');
    assert.equal(rows.filter((x) => x.status === 'running').length, 0);
  });

  it('two CLI syncs started together: one does the work, the other exits non-zero with the "in progress" message', async () => {
    await rewindCheckpoint(db().url, PIPELINE);
    const [a, b] = await Promise.all([runCli(['sync', '--mapping', mappingFile]), runCli(['sync', '--mapping', mappingFile])]);
    assert.equal([a, b].filter((x) => x.code === 0).length, 1, `exactly one succeeded:\n${a.stderr}\n---\n${b.stderr}`);
    const loser = a.code === 0 ? b : a;
    assert.notEqual(loser.code, 0);
    assert.match(loser.stderr, new RegExp(`Another run of pipeline "${PIPELINE}" is in progress`));
    const rows = await runRows(db().url, PIPELINE);
    assert.equal(rows.filter((x) => x.status === 'running').length, 0);
    assert.equal(rows[rows.length - 1]?.status, 'succeeded');
  });
});

describe('abandoned runs on the sandbox (PGlite, one process)', function () {
  this.timeout(120_000);
  let sandbox: SandboxDatabase;
  before(async () => {
    sandbox = await openSandbox();
  });
  after(async () => {
    await sandbox?.close();
  });

  it('a run left "running" is marked abandoned when the next run starts; two runs of one pipeline at once: the second fails at once', async () => {
    const dir = await tempDir('dns-abandon-sb-');
    const t = await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 300 });
    const mapping = buildMapping({ name: 'sb-abandon', source: t.path, target: { connection: 'sandbox', table: TABLE.name }, key: KEY });
    const runner = new SyncRunner(mapping, await openSource(mapping.source), mappingTarget(sandbox.pool, mapping.target));
    await runner.run({ mode: 'initial', toVersion: 1 });
    // What a sandbox process that died mid-run leaves behind: its run row, still 'running'.
    await sandbox.pool.query(`INSERT INTO delta_neon_sync.runs (pipeline, mode, from_version, to_version) VALUES ('sb-abandon', 'incremental', 2, 5)`);
    const [first, second] = await Promise.allSettled([runner.run({ toVersion: 3 }), runner.run({ toVersion: 3 })]);
    assert.equal(first.status, 'fulfilled', first.status === 'rejected' ? String(first.reason) : '');
    assert.equal(second.status, 'rejected');
    assert.match(String((second as PromiseRejectedResult).reason), /Another run of pipeline "sb-abandon" is in progress \(started at /);
    assert.equal((first as PromiseFulfilledResult<Awaited<ReturnType<SyncRunner['run']>>>).value.abandonedRuns?.length, 1);
    const st = await runner.status();
    assert.deepEqual(st.runs.map((x) => x.status), ['succeeded', 'abandoned', 'succeeded']);
    assert.equal(st.runs[1]?.error, ABANDONED_RUN_ERROR);
    const next = await runner.run({});
    assert.equal(next.status, 'succeeded');
    await assertTargetEquals(sandbox.pool, TABLE, t.path, t.version, { key: KEY });
  });
});
