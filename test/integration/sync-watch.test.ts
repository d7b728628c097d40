import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import pg from 'pg';
import type { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { string } from '../builders/deltaFields';
import { checkpointVersion } from '../helpers/pgQuery';
import { getTestServer, restartTestServer, useTestDatabase } from '../helpers/postgres';
import { buildCli, pollUntil, runCli, startCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import { PassThrough } from 'node:stream';
import { watchAll } from '../../src/cli/syncAll';
import type { OpenTargetFn } from '../../src/cli/syncAll';
import { openTarget } from '../../src/sync/open/openTarget';
import { itemRows, newItemTable } from '../builders/itemTables';

/**
 * Issue 14, point 1 (CLI): `sync --watch` follows a Delta table written while it runs, one
 * line per applied range; a version committed while a batch is in flight is applied next;
 * SIGTERM ends it with exit 0 and the target at a committed checkpoint; after a SIGKILL a
 * new watch resumes from the checkpoint and ends equal to the source.
 */

const rows = itemRows;

const KEY = ['id'];

describe('CLI: sync --watch (real server, CLI processes)', function () {
  this.timeout(60_000);
  const db = useTestDatabase('sync_watch');
  let dir: string;

  before(async function () {
    this.timeout(120_000);
    await buildCli();
    dir = await tempDir('dns-watch-');
  });

  const newTable = (name: string): Promise<DeltaTableWriter> => newItemTable(dir, name, 20);

  function watchArgs(t: DeltaTableWriter, table: string, url = db().url): string[] {
    return ['sync', '--source', t.path, '--target', url, '--table', `public.${table}`, '--key', 'id', '--watch', '--interval', '200ms'];
  }

  const atVersion = (pipeline: string, v: number) => () =>
    pollUntil(async () => ((await checkpointVersion(db().url, pipeline)) === v ? v : undefined), { timeoutMs: 30_000, everyMs: 50, what: `pipeline ${pipeline} at version ${v}` });

  /** Holds an ACCESS EXCLUSIVE lock on the table until release(); resolves once the watch waits on it. */
  async function lockTable(table: string): Promise<{ waitingPid: () => Promise<number>; release(): Promise<void> }> {
    const holder = new pg.Client({ connectionString: db().url });
    const watcher = new pg.Client({ connectionString: db().url });
    // A server restart ends both connections: an 'error' without a listener would end the test process.
    for (const c of [holder, watcher]) c.on('error', () => undefined);
    await holder.connect();
    await watcher.connect();
    await holder.query('BEGIN');
    await holder.query(`LOCK TABLE public.${table} IN ACCESS EXCLUSIVE MODE`);
    return {
      waitingPid: () =>
        pollUntil(async () => {
          const r = await watcher.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE application_name = 'delta-neon-sync' AND wait_event_type = 'Lock' AND datname = current_database()`,
          );
          return r.rows[0]?.pid;
        }, { timeoutMs: 20_000, what: 'the watch to wait for the table lock' }),
      async release() {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
        await watcher.end();
      },
    };
  }

  it('loads, then applies versions written while it runs (one line per applied range, with the lag), and stops on SIGTERM with exit 0', async () => {
    const t = await newTable('follow');
    const pipeline = 'public-watch_follow';
    const { child, done } = startCli(watchArgs(t, 'watch_follow'));
    try {
      await atVersion(pipeline, t.version)();
      await t.append(rows(21, 30));
      await atVersion(pipeline, t.version)();
      await t.update('id', [{ id: 3n, name: 'changed 3' }, { id: 25n, name: 'changed 25' }]);
      await t.delete('id', [5n, 26n]);
      await t.append(rows(31, 35));
      await atVersion(pipeline, t.version)();
      await assertTargetEquals(db().url, { schema: 'public', name: 'watch_follow' }, t.path, t.version, { key: KEY });
      child.kill('SIGTERM');
      const res = await done;
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /initial version 1: 20 inserted/);
      assert.match(res.stdout, /incremental version 2: 10 inserted, 0 updated, 0 deleted \(lag [\d.]+ (ms|s)\)/);
      assert.match(res.stdout, new RegExp(`stopped at version ${t.version}`));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('a version committed while a batch is in flight is applied after it; SIGTERM during a batch rolls it back and exits 0 at the last checkpoint', async () => {
    const t = await newTable('inflight');
    const table = 'watch_inflight';
    const pipeline = `public-${table}`;
    const url = new URL(db().url);
    url.searchParams.set('lock_timeout', '60000');
    const { child, done } = startCli(watchArgs(t, table, url.toString()));
    try {
      await atVersion(pipeline, t.version)();
      // A batch in flight: the watch's next batch waits for a lock held here.
      let lock = await lockTable(table);
      try {
        await t.append(rows(21, 25));
        await lock.waitingPid();
        // Committed while that batch runs.
        await t.update('id', [{ id: 1n, name: 'during the batch' }]);
        await t.append(rows(26, 28));
      } finally {
        await lock.release();
      }
      await atVersion(pipeline, t.version)();
      await assertTargetEquals(db().url, { schema: 'public', name: table }, t.path, t.version, { key: KEY });

      // SIGTERM while a batch waits on the lock: rolled back, exit 0, target at the checkpoint.
      const before = t.version;
      lock = await lockTable(table);
      try {
        await t.append(rows(29, 40));
        await lock.waitingPid();
        child.kill('SIGTERM');
        const res = await done;
        assert.equal(res.code, 0, res.stderr);
        assert.match(res.stdout, new RegExp(`stopped at version ${before}`));
      } finally {
        await lock.release();
      }
      assert.equal(await checkpointVersion(db().url, pipeline), before);
      await assertTargetEquals(db().url, { schema: 'public', name: table }, t.path, before, { key: KEY });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('SIGKILL during a batch, then a new watch resumes from the checkpoint and ends equal to the source', async () => {
    const t = await newTable('killed');
    const table = 'watch_killed';
    const pipeline = `public-${table}`;
    const url = new URL(db().url);
    url.searchParams.set('lock_timeout', '60000');
    const first = startCli(watchArgs(t, table, url.toString()));
    let at: number;
    try {
      await atVersion(pipeline, t.version)();
      at = t.version;
      const lock = await lockTable(table);
      try {
        await t.append(rows(21, 30));
        await lock.waitingPid();
        first.child.kill('SIGKILL');
        const killed = await first.done;
        assert.equal(killed.signal, 'SIGKILL');
      } finally {
        await lock.release();
      }
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
    }
    assert.equal(await checkpointVersion(db().url, pipeline), at);
    await t.delete('id', [2n, 22n]);
    const second = startCli(watchArgs(t, table));
    try {
      await atVersion(pipeline, t.version)();
      await assertTargetEquals(db().url, { schema: 'public', name: table }, t.path, t.version, { key: KEY });
      second.child.kill('SIGINT');
      const res = await second.done;
      assert.equal(res.code, 0, res.stderr);
      assert.doesNotMatch(res.stdout, /initial/, 'resumed from the checkpoint, no reload');
      assert.match(res.stdout, new RegExp(`incremental versions ${at + 1}\\.\\.${t.version}`));
    } finally {
      if (second.child.exitCode === null && second.child.signalCode === null) second.child.kill('SIGKILL');
    }
  });

  it('--every runs a sync on a timer: new versions land at the next tick; SIGTERM exits 0', async () => {
    const t = await newTable('every');
    const table = 'watch_every';
    const pipeline = `public-${table}`;
    const { child, done } = startCli(['sync', '--source', t.path, '--target', db().url, '--table', `public.${table}`, '--key', 'id', '--every', '300ms']);
    try {
      await atVersion(pipeline, t.version)();
      await t.append(rows(21, 24));
      await t.delete('id', [7n]);
      await atVersion(pipeline, t.version)();
      await assertTargetEquals(db().url, { schema: 'public', name: table }, t.path, t.version, { key: KEY });
      child.kill('SIGTERM');
      const res = await done;
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /incremental (version|versions) [\d.]+: /);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('survives a Postgres restart: retries, then applies what was committed meanwhile', async function () {
    const server = await getTestServer();
    if (!server.canRestart) this.skip();
    const t = await newTable('restart');
    const table = 'watch_restart';
    const pipeline = `public-${table}`;
    const { child, done } = startCli(watchArgs(t, table));
    try {
      await atVersion(pipeline, t.version)();
      // fast: the test cluster runs with synchronous_commit=off, so 'immediate' could lose the watch's last acknowledged commits.
      await restartTestServer('fast');
      await t.append(rows(21, 30));
      await t.update('id', [{ id: 4n, name: 'after restart' }]);
      await atVersion(pipeline, t.version)().catch(async (e: Error) => {
        child.kill('SIGKILL');
        const r = await done;
        throw new Error(`${e.message}\n${r.stdout}\n${r.stderr}`);
      });
      await assertTargetEquals(db().url, { schema: 'public', name: table }, t.path, t.version, { key: KEY });
      child.kill('SIGTERM');
      const res = await done;
      assert.equal(res.code, 0, res.stderr);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it("the target unreachable past the runner's retry budget (--retry-for 0): the watch's own backoff retries with growing delays, one line per attempt, then catches up", async function () {
    const server = await getTestServer();
    if (!server.canRestart) this.skip();
    this.timeout(120_000);
    const t = await newTable('backoff');
    const table = 'watch_backoff';
    const pipeline = `public-${table}`;
    const cli = startCli([...watchArgs(t, table), '--retry-for', '0']);
    const { child, done } = cli;
    const retryLines = (): Array<{ delayMs: number; attempt: number }> =>
      [...cli.output().stderr.matchAll(/retrying in ([\d.]+) (ms|s|min) \(attempt (\d+)\)/g)].map((m) => ({
        delayMs: Number(m[1]) * ({ ms: 1, s: 1_000, min: 60_000 } as Record<string, number>)[m[2] as string]!,
        attempt: Number(m[3]),
      }));
    try {
      await atVersion(pipeline, t.version)();
      // Down until the watch has backed off three times; the versions committed meanwhile wait.
      await restartTestServer('fast', async () => {
        await t.append(rows(21, 30));
        await t.update('id', [{ id: 6n, name: 'while down' }]);
        await pollUntil(async () => (retryLines().length >= 3 ? true : undefined), { timeoutMs: 60_000, everyMs: 100, what: 'three retry lines of the watch' });
      });
      await atVersion(pipeline, t.version)().catch(async (e: Error) => {
        child.kill('SIGKILL');
        const r = await done;
        throw new Error(`${e.message}\n${r.stdout}\n${r.stderr}`);
      });
      await assertTargetEquals(db().url, { schema: 'public', name: table }, t.path, t.version, { key: KEY });
      child.kill('SIGTERM');
      const res = await done;
      assert.equal(res.code, 0, res.stderr);
      const lines = retryLines();
      // Attempts counted from 2 (the first try failed), each delay double the one before (1 s, 2 s, 4 s, ...).
      assert.deepEqual(lines.slice(0, 3).map((l) => l.attempt), [2, 3, 4], res.stderr);
      for (let i = 1; i < lines.length; i++) assert.equal(lines[i]?.delayMs, 2 * (lines[i - 1]?.delayMs as number), `delays grow: ${JSON.stringify(lines)}`);
      assert.match(res.stderr, /warning: .*retrying in/);
      assert.match(res.stdout, /incremental (version|versions) [\d.]+: /);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('a Postgres restart during a batch: the batch rolls back, the watch retries it and ends equal to the source', async function () {
    const server = await getTestServer();
    if (!server.canRestart) this.skip();
    const t = await newTable('restart_inflight');
    const table = 'watch_restart_inflight';
    const pipeline = `public-${table}`;
    const url = new URL(db().url);
    url.searchParams.set('lock_timeout', '60000');
    const { child, done } = startCli(watchArgs(t, table, url.toString()));
    try {
      await atVersion(pipeline, t.version)();
      const before = t.version;
      const lock = await lockTable(table);
      let inFlight: number;
      try {
        await t.append(rows(21, 30));
        await t.delete('id', [8n]);
        // The watch's batch holds its transaction open, waiting on the lock.
        inFlight = await lock.waitingPid();
        assert.equal(await checkpointVersion(db().url, pipeline), before);
        await restartTestServer('fast');
      } finally {
        await lock.release();
      }
      assert.ok(inFlight > 0);
      await atVersion(pipeline, t.version)().catch(async (e: Error) => {
        child.kill('SIGKILL');
        const r = await done;
        throw new Error(`${e.message}\n${r.stdout}\n${r.stderr}`);
      });
      await assertTargetEquals(db().url, { schema: 'public', name: table }, t.path, t.version, { key: KEY });
      child.kill('SIGTERM');
      const res = await done;
      assert.equal(res.code, 0, res.stderr);
      // The versions of the rolled-back batch were applied once, by the retry.
      assert.match(res.stdout, new RegExp(`incremental versions ${before + 1}\\.\\.${t.version}: 10 inserted, 0 updated, 1 deleted`));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  /**
   * Starts a watch on a new table, waits for its load, makes `change`, and waits for the watch
   * to stop on it: exit 1, the checkpoint and the target still at the last good version.
   * Returns the CLI's output for the error's own assertions.
   */
  async function watchUntilItStops(name: string, change: (t: DeltaTableWriter) => Promise<void>): Promise<{ stdout: string; stderr: string }> {
    const t = await newTable(name);
    const table = `watch_${name}`;
    const pipeline = `public-${table}`;
    const { child, done } = startCli(watchArgs(t, table));
    try {
      await atVersion(pipeline, t.version)();
      const good = t.version;
      await change(t);
      const res = await done;
      assert.equal(res.code, 1, res.stdout);
      assert.equal(await checkpointVersion(db().url, pipeline), good);
      await assertTargetEquals(db().url, { schema: 'public', name: table }, t.path, good, { key: KEY });
      return res;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }

  it("an error of retry kind 'never' (a new source column under schemaDrift 'fail') stops the watch at once with the error and exit 1", async () => {
    const res = await watchUntilItStops('never', async (t) => {
      await t.addColumns([{ name: 'extra', type: string() }]);
      await t.append([{ id: 21n, name: 'item 21', extra: 'x' }]);
    });
    assert.match(res.stderr, /Schema drift in .* between versions \d+ and \d+: column\(s\) "extra" \(text\) are not in /);
    assert.match(res.stderr, /schemaDrift/);
    assert.doesNotMatch(res.stderr, /retrying in/, 'not retried');
  });

  it('an error that is not retried automatically (duplicate keys) stops the watch with exit 1 and the error, the target at the last good version', async () => {
    // Key 3 again, while nothing deleted it: refused (duplicateKeys: fail).
    const res = await watchUntilItStops('stops', async (t) => {
      await t.append([{ id: 3n, name: 'again' }]);
    });
    assert.match(res.stderr, /duplicate keys/);
  });

  it('refuses --watch with --every, and a bad --interval, naming the option', async () => {
    const t = await newTable('usage');
    const both = await runCli(['sync', '--source', t.path, '--target', db().url, '--table', 'public.watch_usage', '--watch', '--every', '5m']);
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /--watch and --every cannot be combined/);
    const bad = await runCli(['sync', '--source', t.path, '--target', db().url, '--table', 'public.watch_usage', '--watch', '--interval', 'soon']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--interval must be a duration/);
  });

  describe('sync --all', () => {
    async function workspace(name: string, mappings: Record<string, unknown>): Promise<string> {
      const ws = path.join(dir, name);
      await fs.mkdir(path.join(ws, '.delta-sync'), { recursive: true });
      for (const [file, json] of Object.entries(mappings)) await writeMappingFile(path.join(ws, '.delta-sync'), file, json);
      return ws;
    }
    const mapping = (name: string, source: string, table: string, after?: string[]) => ({
      name,
      source: { type: 'delta', path: source },
      target: { connection: db().url, schema: 'public', table },
      key: KEY,
      ...(after ? { after } : {}),
    });

    it("runs every mapping in 'after' order, keeps going past a failing one, skips what runs after it, one summary, exit 1", async () => {
      const parents = await newTable('all_parents');
      const children = await newTable('all_children');
      await children.append(rows(21, 22));
      const ws = await workspace('ws-all', {
        // File order (a-, b-, c-, d-) is not the run order: a-children runs after parents.
        'a-children': mapping('children', children.path, 'all_children', ['parents']),
        'b-broken': mapping('broken', path.join(dir, 'no-such-table'), 'all_broken'),
        'c-after-broken': mapping('after-broken', parents.path, 'all_after_broken', ['broken']),
        'd-parents': mapping('parents', parents.path, 'all_parents'),
      });
      const res = await runCli(['sync', '--all', '--dir', ws]);
      assert.equal(res.code, 1, res.stderr);
      const p = res.stdout.indexOf('parents: initial');
      const c = res.stdout.indexOf('children: initial');
      assert.ok(p >= 0 && c > p, `parents before children:\n${res.stdout}`);
      assert.match(res.stdout, /Summary: 4 mapping\(s\): 2 succeeded, 1 failed, 1 skipped/);
      assert.match(res.stdout, /broken: failed: .*no-such-table/);
      assert.match(res.stdout, /after-broken: skipped: runs after "broken"/);
      await assertTargetEquals(db().url, { schema: 'public', name: 'all_parents' }, parents.path, parents.version, { key: KEY });
      await assertTargetEquals(db().url, { schema: 'public', name: 'all_children' }, children.path, children.version, { key: KEY });
      assert.equal(await checkpointVersion(db().url, 'after-broken'), undefined);

      // Again, with new versions: incremental for both, same order.
      await parents.append(rows(21, 23));
      await children.delete('id', [1n]);
      const again = await runCli(['sync', '--all', '--dir', ws]);
      assert.equal(again.code, 1, again.stderr);
      await assertTargetEquals(db().url, { schema: 'public', name: 'all_parents' }, parents.path, parents.version, { key: KEY });
      await assertTargetEquals(db().url, { schema: 'public', name: 'all_children' }, children.path, children.version, { key: KEY });
    });

    it("--watch --all follows every mapping; SIGTERM stops them all with exit 0", async () => {
      const one = await newTable('wall_one');
      const two = await newTable('wall_two');
      const ws = await workspace('ws-watch-all', {
        one: mapping('wall-one', one.path, 'wall_one'),
        two: mapping('wall-two', two.path, 'wall_two', ['wall-one']),
      });
      const { child, done } = startCli(['sync', '--all', '--dir', ws, '--watch', '--interval', '200ms']);
      try {
        await atVersion('wall-one', one.version)();
        await atVersion('wall-two', two.version)();
        await one.append(rows(21, 25));
        await two.update('id', [{ id: 2n, name: 'two changed' }]);
        await atVersion('wall-one', one.version)();
        await atVersion('wall-two', two.version)();
        await assertTargetEquals(db().url, { schema: 'public', name: 'wall_one' }, one.path, one.version, { key: KEY });
        await assertTargetEquals(db().url, { schema: 'public', name: 'wall_two' }, two.path, two.version, { key: KEY });
        child.kill('SIGTERM');
        const res = await done;
        assert.equal(res.code, 0, res.stderr);
        assert.match(res.stdout, /Summary: 2 mapping\(s\): 2 succeeded, 0 failed, 0 skipped/);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    });

    it('--watch --all opens one connection pool per target: three mappings on two targets share two pools, closed at the stop', async () => {
      const a = await newTable('pool_a');
      const b = await newTable('pool_b');
      const c = await newTable('pool_c');
      const other = new URL(db().url);
      other.searchParams.set('application_name', 'delta-neon-sync'); // the same database through another connection string: another target
      const ws = await workspace('ws-pools', {
        a: mapping('pool-a', a.path, 'pool_a'),
        b: { ...mapping('pool-b', b.path, 'pool_b'), after: ['pool-a'] },
        c: { ...mapping('pool-c', c.path, 'pool_c'), target: { connection: other.toString(), schema: 'public', table: 'pool_c' } },
      });
      const opened: string[] = [];
      let closed = 0;
      const counting: OpenTargetFn = async (connection, opts) => {
        opened.push(connection);
        const t = await openTarget(connection, opts);
        return { ...t, close: async () => { closed++; await t.close(); } };
      };
      const stop = new AbortController();
      const out = new PassThrough();
      const err = new PassThrough();
      let stderr = '';
      err.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      out.resume();
      const applied: string[] = [];
      const running = watchAll(ws, { stdout: out, stderr: err, env: process.env, signal: stop.signal }, {
        watch: { mode: 'follow', intervalMs: 200 },
        onApplied: (name) => applied.push(name),
        openTarget: counting,
      });
      try {
        await atVersion('pool-a', a.version)();
        await atVersion('pool-b', b.version)();
        await atVersion('pool-c', c.version)();
        await b.append(rows(21, 22));
        await atVersion('pool-b', b.version)();
      } finally {
        stop.abort();
      }
      assert.equal(await running, 0, stderr);
      assert.deepEqual([...opened].sort(), [db().url, other.toString()].sort(), 'one pool per target connection, not one per mapping');
      assert.equal(closed, 2, 'both pools closed at the stop');
      assert.deepEqual([...new Set(applied)].sort(), ['pool-a', 'pool-b', 'pool-c']);
      await assertTargetEquals(db().url, { schema: 'public', name: 'pool_b' }, b.path, b.version, { key: KEY });
    });

    it("a cycle in 'after' is a mapping error naming the cycle; nothing runs", async () => {
      const t = await newTable('all_cycle');
      const ws = await workspace('ws-cycle', {
        x: mapping('cyc-x', t.path, 'all_cycle_x', ['cyc-y']),
        y: mapping('cyc-y', t.path, 'all_cycle_y', ['cyc-x']),
      });
      const res = await runCli(['sync', '--all', '--dir', ws]);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /cycle: cyc-x -> cyc-y -> cyc-x/);
      assert.equal(await checkpointVersion(db().url, 'cyc-x'), undefined);
    });
  });
});
