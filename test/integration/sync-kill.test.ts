import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { useTestDatabase } from '../helpers/postgres';
import { buildCli, createManyVersionsTable, pollUntil, runCli, startCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import { checkpointVersion, queryOnce } from '../helpers/pgQuery';

/**
 * Acceptance 3: the CLI process is SIGKILLed in the middle of a batch (incremental) and in
 * the middle of the initial load's COPY (one stream, and three in parallel); the target is then exactly at a committed
 * checkpoint, and the next run ends equal to the source with no lost or duplicate row.
 */

const TABLE = { schema: 'public', name: 'customer_profiles' };
const KEY = ['customer_id'];

/** The sync's own write statement, running now in `db` (COPY into staging, or the merge). */
async function activeWrite(url: string, db: string): Promise<string | undefined> {
  const rows = await queryOnce<{ q: string }>(
    url,
    `SELECT query AS q FROM pg_stat_activity WHERE datname = $1 AND application_name = 'delta-neon-sync' AND state = 'active'
        AND (query ILIKE 'COPY%' OR query ILIKE '%COPY % FROM STDIN%' OR query ILIKE 'INSERT%' OR query ILIKE 'DELETE%' OR query ILIKE 'MERGE%' OR query ILIKE 'WITH%')`,
    [db],
  );
  return rows[0]?.q;
}

describe('sync killed with SIGKILL mid-run, then run again (real server, CLI process)', function () {
  this.timeout(240_000);
  const dbInc = useTestDatabase('sync_kill_inc');
  const dbInit = useTestDatabase('sync_kill_init');
  const dbTerm = useTestDatabase('sync_kill_term');
  const dbPar = useTestDatabase('sync_kill_par');
  let tablePath: string;
  let latest: number;
  let dir: string;

  before(async function () {
    this.timeout(120_000);
    await buildCli();
    dir = await tempDir();
    tablePath = path.join(dir, 'many_versions');
    // 30 appends of 4000 customers (120k rows) plus update+delete commits: ~44 versions.
    latest = await createManyVersionsTable(tablePath, { appends: 30, perAppend: 4000 });
  });

  /** A mapping file (`name`, the many-versions table into TABLE on `url`, batches of 5000 rows) whose pipeline the CLI loaded to version 0. */
  async function loadedToV0(name: string, url: string): Promise<string> {
    const mappingFile = await writeMappingFile(dir, name.replace(/^kill-/, ''), {
      name,
      source: { type: 'delta', path: tablePath },
      target: { connection: url, schema: 'public', table: TABLE.name },
      key: KEY,
      batch: { maxRows: 5000 },
    });
    const init = await runCli(['sync', '--mapping', mappingFile, '--mode', 'initial', '--to-version', '0']);
    assert.equal(init.code, 0, init.stderr);
    return mappingFile;
  }

  it('killed during an incremental batch: the target equals the snapshot at its checkpoint, and the next run catches up exactly', async () => {
    const mappingFile = await loadedToV0('kill-inc', dbInc().url);

    const { child, done } = startCli(['sync', '--mapping', mappingFile]);
    try {
      // Wait until a few batches committed and the next one is writing, then kill.
      const seen = await pollUntil(
        async () => {
          const v = await checkpointVersion(dbInc().url, 'kill-inc');
          if (v === undefined || v < 3) return undefined;
          return activeWrite(dbInc().url, dbInc().database);
        },
        { timeoutMs: 60_000, everyMs: 5, what: 'a batch being written after checkpoint 3' },
      );
      child.kill('SIGKILL');
      const killed = await done;
      assert.equal(killed.signal, 'SIGKILL', `the child was still running (statement seen: ${seen.slice(0, 60)})`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const at = await pollUntil(async () => {
      // The server ends the dead client's backend (and rolls back its transaction) on its own.
      const busy = await activeWrite(dbInc().url, dbInc().database);
      return busy ? undefined : checkpointVersion(dbInc().url, 'kill-inc');
    }, { timeoutMs: 20_000, what: 'the killed backend to go away' });
    assert.ok(at >= 3 && at < latest, `checkpoint ${at} is mid-way (latest ${latest})`);
    await assertTargetEquals(dbInc().url, TABLE, tablePath, at, { key: KEY });

    const again = await runCli(['sync', '--mapping', mappingFile]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`incremental sync to version ${latest} done`));
    assert.equal(await checkpointVersion(dbInc().url, 'kill-inc'), latest);
    await assertTargetEquals(dbInc().url, TABLE, tablePath, latest, { key: KEY });
    const runs = await queryOnce<{ status: string; error: string | null; finished: boolean }>(
      dbInc().url,
      `SELECT status, error, finished_at IS NOT NULL AS finished FROM delta_neon_sync.runs WHERE pipeline = 'kill-inc' ORDER BY run_id`,
    );
    // initial, the killed run (nobody could record its end: the catch-up run found its run
    // lock free and marked it abandoned), the catch-up.
    assert.deepEqual(runs.map((x) => x.status), ['succeeded', 'abandoned', 'succeeded']);
    assert.match(runs[1]?.error ?? '', /stopped before it finished/);
    assert.equal(runs[1]?.finished, true);
    assert.match(again.stderr, /marked them abandoned/);
  });

  it('killed during the initial load COPY: no target table and no checkpoint; the next run drops the staging leftover and loads exactly', async () => {
    const mappingFile = await writeMappingFile(dir, 'init', {
      name: 'kill-init',
      source: { type: 'delta', path: tablePath },
      target: { connection: dbInit().url, schema: 'public', table: TABLE.name },
      key: KEY,
      batch: { maxRows: 5000 },
    });
    const { child, done } = startCli(['sync', '--mapping', mappingFile]);
    try {
      const seen = await pollUntil(
        async () => {
          const q = await activeWrite(dbInit().url, dbInit().database);
          // The COPY goes in one query with the statements before it (its BEGIN, the staging DDL).
          return q && /\bCOPY\b[\s\S]*FROM STDIN/i.test(q) ? q : undefined;
        },
        { timeoutMs: 60_000, everyMs: 5, what: 'the initial load COPY' },
      );
      // Kill at once: the COPY streams the whole snapshot, so the load is mid-COPY now.
      child.kill('SIGKILL');
      const killed = await done;
      assert.equal(killed.signal, 'SIGKILL', `the child was still running (statement seen: ${seen.slice(0, 60)})`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await pollUntil(async () => ((await activeWrite(dbInit().url, dbInit().database)) ? undefined : true), { timeoutMs: 20_000, what: 'the killed backend to go away' });
    const tables = await queryOnce<{ relname: string }>(dbInit().url, `SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1`);
    assert.equal(tables.some((t) => t.relname === TABLE.name), false, 'the target table was not created');
    const leftovers = tables.filter((t) => /^customer_profiles__dns_[0-9a-f]{8}$/.test(t.relname));
    assert.equal(leftovers.length, 1, `one staging table is left behind: ${JSON.stringify(tables)}`);
    assert.equal(await checkpointVersion(dbInit().url, 'kill-init'), undefined);

    const again = await runCli(['sync', '--mapping', mappingFile]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Dropped 1 staging table/);
    assert.equal(await checkpointVersion(dbInit().url, 'kill-init'), latest);
    await assertTargetEquals(dbInit().url, TABLE, tablePath, latest, { key: KEY });
    const after = await queryOnce<{ relname: string }>(dbInit().url, `SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1`);
    assert.deepEqual(after.map((t) => t.relname), [TABLE.name]);
  });
  it('killed while three COPY streams load the snapshot in parallel (copyStreams 3) over a loaded target: the target and its checkpoint stay as they were; the next run loads exactly', async () => {
    const par = {
      name: 'kill-par',
      source: { type: 'delta', path: tablePath },
      target: { connection: dbPar().url, schema: 'public', table: TABLE.name },
      key: KEY,
      initialLoad: { copyStreams: 3 },
    };
    // Paced (the pace is shared by the streams), so the three COPYs are in flight for about
    // 24 s: on a loaded machine a stream's reader thread can start seconds after the others.
    const mappingFile = await writeMappingFile(dir, 'par', { ...par, batch: { maxRowsPerSecond: 5_000 } });
    // The same pipeline unpaced, for the runs that are not killed.
    const unpacedFile = await writeMappingFile(dir, 'par-unpaced', par);
    const first = await runCli(['sync', '--mapping', unpacedFile, '--mode', 'initial', '--to-version', '0']);
    assert.equal(first.code, 0, first.stderr);
    const { child, done } = startCli(['sync', '--mapping', mappingFile, '--mode', 'initial']);
    try {
      // Three COPYs in flight at once, each on its own connection: the load is parallel and mid-COPY.
      const copies = await pollUntil(
        async () => {
          const rows = await queryOnce<{ n: number }>(
            dbPar().url,
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'delta-neon-sync' AND state = 'active' AND query ILIKE 'COPY%'`,
            [dbPar().database],
          );
          const n = rows[0]?.n ?? 0;
          return n >= 3 ? n : undefined;
        },
        { timeoutMs: 60_000, everyMs: 5, what: 'three COPY streams at once' },
      );
      child.kill('SIGKILL');
      const killed = await done;
      assert.equal(killed.signal, 'SIGKILL', `the child was still running (${copies} COPYs seen)`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await pollUntil(async () => ((await activeWrite(dbPar().url, dbPar().database)) ? undefined : true), { timeoutMs: 20_000, what: 'the killed backends to go away' });
    // Never seen half-loaded: the target is the version-0 load, with its checkpoint.
    assert.equal(await checkpointVersion(dbPar().url, 'kill-par'), 0);
    await assertTargetEquals(dbPar().url, TABLE, tablePath, 0, { key: KEY });

    const again = await runCli(['sync', '--mapping', unpacedFile, '--mode', 'initial']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Dropped 1 staging table/);
    // The streams' rows add up: the load reports every row of the snapshot once.
    const loaded = await queryOnce<{ n: string }>(dbPar().url, `SELECT count(*)::text AS n FROM public.customer_profiles`);
    assert.match(again.stdout, new RegExp(`done in 1 batch\\(es\\): ${loaded[0]?.n} inserted`));
    assert.equal(await checkpointVersion(dbPar().url, 'kill-par'), latest);
    await assertTargetEquals(dbPar().url, TABLE, tablePath, latest, { key: KEY });
    const after = await queryOnce<{ relname: string }>(dbPar().url, `SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1`);
    assert.deepEqual(after.map((t) => t.relname), [TABLE.name]);
  });
  it('stopped with SIGTERM mid-run: the CLI cancels between statements, records the run as cancelled, exits non-zero, and the next run catches up', async () => {
    const mappingFile = await loadedToV0('kill-term', dbTerm().url);
    const { child, done } = startCli(['sync', '--mapping', mappingFile]);
    await pollUntil(async () => {
      const v = await checkpointVersion(dbTerm().url, 'kill-term');
      return v !== undefined && v >= 2 ? v : undefined;
    }, { timeoutMs: 60_000, everyMs: 5, what: 'checkpoint 2' });
    child.kill('SIGTERM');
    const out = await done;
    assert.equal(out.signal, null, 'the CLI exits by itself');
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /cancelled/i);
    const at = (await checkpointVersion(dbTerm().url, 'kill-term')) as number;
    assert.ok(at < latest, `stopped before the end (checkpoint ${at} of ${latest})`);
    await assertTargetEquals(dbTerm().url, TABLE, tablePath, at, { key: KEY });
    const runs = await queryOnce<{ status: string }>(dbTerm().url, `SELECT status FROM delta_neon_sync.runs WHERE pipeline = 'kill-term' ORDER BY run_id`);
    assert.deepEqual(runs.map((x) => x.status), ['succeeded', 'cancelled']);
    const again = await runCli(['sync', '--mapping', mappingFile]);
    assert.equal(again.code, 0, again.stderr);
    await assertTargetEquals(dbTerm().url, TABLE, tablePath, latest, { key: KEY });
  });
});
