import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { openSource } from '../../src/sync/open/openSource';
import { mappingTarget } from '../../src/sync/open/openTarget';
import type { Logger } from '../../src/sync/ports/Logger';
import type { SyncEvent } from '../../src/sync/ports/events';
import type { RunResult } from '../../src/sync/ports/reports';
import { createPool } from '../../src/sync/postgres/createPool';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { queryOnce } from '../helpers/pgQuery';
import { freePort, useTestDatabase } from '../helpers/postgres';
import { tempDir } from '../helpers/syncHarness';
import { startTcpProxy } from '../helpers/tcpProxy';
import type { TcpProxy } from '../helpers/tcpProxy';

/**
 * Issue 11, connections, locks and signals: no wait is unbounded, and a connection that
 * fails says what happened (never connected, unknown host, missing database, TLS refused,
 * lock held by whom, a server that stopped answering), naming the server or the setting,
 * never blaming a table. Short timeouts come from the connection string, as a user sets them.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
];

function rows(a: number, b: number, suffix = ''): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: BigInt(i), name: `item ${i}${suffix}` });
  return out;
}

/** `url` with its query parameters set (or replaced) and, optionally, another host/port or database. */
function withParams(url: string, params: Record<string, string>, at: { port?: number; host?: string; database?: string } = {}): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  if (at.host !== undefined) u.hostname = at.host;
  if (at.port !== undefined) u.port = String(at.port);
  if (at.database !== undefined) u.pathname = `/${at.database}`;
  return u.toString();
}

interface Opened {
  runner: SyncRunner;
  events: SyncEvent[];
  warnings: string[];
  close(): Promise<void>;
}

async function openAt(mapping: Mapping, url: string): Promise<Opened> {
  const pool = createPool(url, { max: 4 });
  const warnings: string[] = [];
  const logger: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => void warnings.push(m), error: () => undefined };
  const source = await openSource(mapping.source);
  const events: SyncEvent[] = [];
  const runner = new SyncRunner(mapping, source, mappingTarget(pool, mapping.target, logger), logger);
  return { runner, events, warnings, close: () => pool.end() };
}

describe('connections, locks and signals: bounded waits and errors that say what happened (real server)', function () {
  this.timeout(20_000);
  const db = useTestDatabase('sync_conn');
  let dir: string;
  let table: DeltaTableWriter;

  before(async function () {
    this.timeout(60_000);
    dir = await tempDir();
    table = await DeltaTableWriter.create(path.join(dir, 'items'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await table.append(rows(1, 20)); // v1
  });

  const mappingFor = (name: string): Mapping => buildMapping({ name, source: table.path, target: name, key: ['id'] });

  it('a closed port says it never connected and names host:port, not the table; retries follow the time budget, one warning per attempt', async () => {
    const port = await freePort();
    const o = await openAt(mappingFor('closed_port'), withParams(db().url, {}, { port, host: '127.0.0.1' }));
    try {
      const err = await expectSyncError(o.runner.run({ retryForMs: 1500, backoffMs: 100, onEvent: (e) => o.events.push(e) }), {
        kind: 'connection',
        message: new RegExp(`Could not connect to Postgres at 127\\.0\\.0\\.1:${port}: connection refused.*No connection was made`),
        hint: /host and port/,
      });
      assert.equal(err.table, undefined, 'a connection that never opened is not blamed on a table');
      assert.doesNotMatch(err.message, /Lost the connection|public\./);
      const retries = o.events.filter((e): e is Extract<SyncEvent, { type: 'warning' }> => e.type === 'warning' && /retrying in \d+ ms/.test(e.message));
      assert.ok(retries.length >= 2, `several attempts within 1.5 s: ${retries.length}`);
      const attempts = retries.map((e) => /\(attempt (\d+),/.exec(e.message)?.[1]);
      assert.deepEqual(attempts, [...new Set(attempts)], 'one warning per attempt');
      assert.deepEqual(o.warnings, [], 'the retry is announced once (as the warning event), not also through the logger');
      assert.match(err.message, /gave up after \d+ attempts/);
    } finally {
      await o.close();
    }
  });

  it('an unknown host, a missing database and verify-full against a server without TLS each get their own message and hint', async () => {
    const cases: { url: string; message: RegExp; setting: string; hint: RegExp }[] = [
      { url: withParams(db().url, {}, { host: 'no-such-host.invalid' }), message: /host name no-such-host\.invalid is unknown/, setting: 'target.connection', hint: /host name/ },
      { url: withParams(db().url, {}, { database: 'no_such_db_x' }), message: /database "no_such_db_x" does not exist on 127\.0\.0\.1:\d+|database "no_such_db_x" does not exist on localhost:\d+/, setting: 'target.connection', hint: /database name/ },
      { url: withParams(db().url, { sslmode: 'verify-full' }), message: /does not accept TLS.*sslmode=verify-full.*No connection was made/, setting: 'sslmode', hint: /sslmode=disable/ },
    ];
    for (const c of cases) {
      const o = await openAt(mappingFor('conn_errors'), c.url);
      try {
        const err = await expectSyncError(o.runner.run({ retryForMs: 0 }), { message: c.message, setting: c.setting, hint: c.hint });
        assert.equal(err.table, undefined, `${c.url}: not blamed on a table`);
        assert.notEqual(err.retry, 'auto', `${c.url}: retrying does not help`);
      } finally {
        await o.close();
      }
    }
    // The TLS hint works: the same server with sslmode=disable.
    const o = await openAt(mappingFor('conn_errors'), withParams(db().url, { sslmode: 'disable' }));
    try {
      assert.equal((await o.runner.run({ retryForMs: 0 })).status, 'succeeded');
    } finally {
      await o.close();
    }
  });

  it('a blackholed server fails after connect_timeout, naming host:port, instead of hanging', async () => {
    const u = new URL(db().url);
    const proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port) });
    proxy.blackhole(true);
    const o = await openAt(mappingFor('blackholed'), withParams(db().url, { connect_timeout: '1' }, { host: '127.0.0.1', port: proxy.port }));
    try {
      const t = Date.now();
      await expectSyncError(o.runner.run({ retryForMs: 0 }), {
        kind: 'connection',
        message: new RegExp(`Could not connect to Postgres at 127\\.0\\.0\\.1:${proxy.port}: no answer`),
        setting: 'connect_timeout',
        hint: /connect_timeout=/,
      });
      assert.ok(Date.now() - t < 10_000);
    } finally {
      await o.close();
      await proxy.close();
    }
  });

  describe('locks', () => {
    let holder: pg.Client;
    beforeEach(async () => {
      holder = new pg.Client({ connectionString: db().url, application_name: 'lock-holder-test' });
      await holder.connect();
    });
    afterEach(async () => {
      await holder.end().catch(() => undefined);
    });

    async function loaded(name: string): Promise<Opened> {
      const o = await openAt(mappingFor(name), db().url);
      await o.runner.run({ mode: 'initial' });
      await o.close();
      return o;
    }

    it('a table lock held by another session fails after lock_timeout with a hint naming lock_timeout, and the hint works', async () => {
      await loaded('table_lock');
      await table.append(rows(21, 25)); // a change to apply
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE public.table_lock IN ACCESS EXCLUSIVE MODE');
      const o = await openAt(mappingFor('table_lock'), withParams(db().url, { lock_timeout: '1000' }));
      try {
        const t = Date.now();
        const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
        const err = await expectSyncError(o.runner.run({ retryForMs: 0 }), { kind: 'target', message: /lock/, setting: 'lock_timeout', hint: /lock_timeout=<ms> in the connection string/ });
        assert.match(err.message, new RegExp(`held by pid ${holderPid} \\(AccessExclusiveLock, application lock-holder-test, `));
        assert.ok(Date.now() - t < 10_000, 'lock_timeout=1000 in the connection string bounds the wait');
      } finally {
        await o.close();
        await holder.query('ROLLBACK');
      }
    });

    it('statement_timeout ends a statement with a hint naming statement_timeout', async () => {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE public.table_lock IN ACCESS EXCLUSIVE MODE');
      const o = await openAt(mappingFor('table_lock'), withParams(db().url, { statement_timeout: '1000', lock_timeout: '0' }));
      try {
        await expectSyncError(o.runner.run({ retryForMs: 0 }), { kind: 'target', setting: 'statement_timeout', hint: /statement_timeout=<ms> in the connection string/ });
      } finally {
        await o.close();
        await holder.query('ROLLBACK');
      }
    });

    it("the pipeline's transaction lock held by another session: a message names the holder while waiting, and the wait is bounded", async () => {
      await loaded('pipe_lock');
      await table.append(rows(26, 30));
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(hashtext('delta_neon_sync:pipe_lock'))`);
      const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const o = await openAt(mappingFor('pipe_lock'), withParams(db().url, { lock_timeout: '1500' }));
      try {
        const err = await expectSyncError(o.runner.run({ retryForMs: 0 }), { kind: 'target', setting: 'lock_timeout', hint: /pg_terminate_backend/ });
        assert.match(err.message, new RegExp(`held by pid ${pid} \\(application lock-holder-test, `));
        assert.ok(o.warnings.some((w) => w.includes(`pid ${pid}`) && /waiting for its transaction lock/.test(w)), JSON.stringify(o.warnings));
      } finally {
        await o.close();
        await holder.query('ROLLBACK');
      }
      // Free again: the same run goes through.
      const again = await openAt(mappingFor('pipe_lock'), db().url);
      try {
        assert.equal((await again.runner.run()).status, 'succeeded');
      } finally {
        await again.close();
      }
    });
  });

  describe('through a TCP proxy', () => {
    let proxy: TcpProxy;
    let url: string;
    beforeEach(async () => {
      const u = new URL(db().url);
      proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port) });
      url = withParams(db().url, { watchdog_timeout: '2', idle_in_transaction_session_timeout: '3000' }, { host: '127.0.0.1', port: proxy.port });
    });
    afterEach(async () => {
      await proxy.close();
    });

    it('a stalled connection (neither end sees it close) is cut off by the watchdog with an error naming the server', async () => {
      const name = 'stalled';
      const m = buildMapping({ name, source: table.path, target: name, key: ['id'], batch: { maxRows: 5, maxRowsPerSecond: 20 } });
      const o = await openAt(m, url);
      try {
        const t = Date.now();
        let stalled = false;
        const err = await expectSyncError(
          o.runner.run({
            mode: 'initial', maxAttempts: 1,
            onEvent: (e) => {
              if (e.type === 'progress' && !stalled) {
                stalled = true;
                proxy.stallAll();
              }
            },
          }),
          { kind: 'connection', message: new RegExp(`Postgres at 127\\.0\\.0\\.1:${proxy.port} did not answer for 2 s`), setting: 'watchdog_timeout', hint: /watchdog_timeout=/ },
        );
        assert.ok(stalled, 'the proxy stalled mid-run');
        assert.ok(Date.now() - t < 15_000, `bounded: ${Date.now() - t} ms (${err.message})`);
      } finally {
        await o.close();
      }
    });

    it('with 50 ms latency each way the watchdog stays quiet, and the run completes after a half-close of its connections mid-run', async () => {
      const name = 'half_closed';
      proxy.setLatency(50);
      const m = buildMapping({ name, source: table.path, target: name, key: ['id'], batch: { maxRows: 5, maxRowsPerSecond: 20 } });
      const o = await openAt(m, url);
      try {
        let closed = false;
        const events: SyncEvent[] = [];
        const r = await o.runner.run({
          mode: 'initial',
          backoffMs: 100,
          onEvent: (e) => {
            events.push(e);
            if (e.type === 'progress' && !closed) {
              closed = true;
              proxy.halfCloseAll();
            }
          },
        });
        assert.equal(r.status, 'succeeded');
        assert.ok(closed);
        assert.ok(!events.some((e) => e.type === 'warning' && /did not answer/.test(e.message)), 'latency is not silence');
      } finally {
        await o.close();
      }
    });

    it('a retry that finds its versions applied by another run meanwhile says so, naming that run, and reports nothing as its own work', async () => {
      const name = 'retry_after_other_run';
      const direct = await openAt(mappingFor(name), db().url);
      try {
        await direct.runner.run({ mode: 'initial' });
        for (let i = 0; i < 4; i++) await table.append(rows(300 + i * 5, 304 + i * 5));
        const latest = table.version;
        const m = buildMapping({ name, source: table.path, target: name, key: ['id'], batch: { maxRows: 5, maxRowsPerSecond: 50 } });
        const viaProxy = await openAt(m, url);
        let reset = false;
        let other: Promise<RunResult> | undefined;
        const events: SyncEvent[] = [];
        try {
          const r = await viaProxy.runner.run({
            // Long enough for the other run (direct, a few rows) to finish while this one waits.
            backoffMs: 5000,
            onEvent: (e) => {
              events.push(e);
              // Its connections cut while it reads: the attempt fails as a lost connection.
              if (e.type === 'progress' && !reset) {
                reset = true;
                proxy.resetAll();
              }
              // While it waits to retry (its lease given back), another run syncs the pipeline.
              if (e.type === 'warning' && /retrying in \d+ ms/.test(e.message) && !other) other = direct.runner.run();
            },
          });
          assert.ok(other, `the first attempt failed and was retried:\n${events.filter((e) => e.type === 'warning').map((e) => JSON.stringify(e)).join('\n')}`);
          const theirs = await other;
          assert.equal(theirs.status, 'succeeded');
          assert.equal(theirs.toVersion, latest);
          const [otherRun] = await queryOnce<{ run_id: string }>(db().url, `SELECT run_id::text AS run_id FROM delta_neon_sync.runs WHERE pipeline = $1 AND status = 'succeeded' ORDER BY run_id DESC LIMIT 1`, [name]);
          assert.ok(otherRun);
          assert.equal(r.status, 'up-to-date');
          assert.equal(r.inserted + r.updated + r.deleted, 0, 'the retry applied nothing');
          assert.ok(r.appliedByOthers, 'the result says the work was done by another run');
          assert.equal(r.appliedByOthers.toVersion, latest);
          assert.deepEqual(r.appliedByOthers.runIds, [otherRun.run_id]);
          assert.match(r.appliedByOthers.message, new RegExp(`^Versions? [0-9.]+ of pipeline "${name}" (was|were) applied by run #${otherRun.run_id} while this run waited to retry; this run did not apply (it|them)`));
          assert.ok(events.some((e) => e.type === 'warning' && e.message === r.appliedByOthers?.message), 'and warns so while it runs');
          assert.equal(r.warnings[0], r.appliedByOthers.message);
        } finally {
          await other?.catch(() => undefined);
          await viaProxy.close();
        }
      } finally {
        await direct.close();
      }
    });

    it('a reset mid-run is retried within the time budget and the run completes', async () => {
      const name = 'reset_mid_run';
      const o = await openAt(mappingFor(name), url);
      try {
        await o.runner.run({ mode: 'initial' });
        for (let i = 0; i < 6; i++) await table.append(rows(100 + i * 5, 104 + i * 5));
        let reset = false;
        const events: SyncEvent[] = [];
        const m = buildMapping({ name, source: table.path, target: name, key: ['id'], batch: { maxRows: 5, maxRowsPerSecond: 50 } });
        const o2 = await openAt(m, url);
        try {
          const r = await o2.runner.run({
            backoffMs: 100,
            onEvent: (e) => {
              events.push(e);
              if (e.type === 'batch-committed' && !reset) {
                reset = true;
                proxy.resetAll();
              }
            },
          });
          assert.equal(r.status, 'succeeded');
          assert.equal(r.toVersion, table.version);
          assert.ok(reset);
        } finally {
          await o2.close();
        }
      } finally {
        await o.close();
      }
    });
  });
});
