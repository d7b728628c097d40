import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { SyncEvent } from '../../src/sync/ports/events';
import type { MappingOverrides } from '../builders/mappings';
import { buildMapping } from '../builders/mappings';
import { long, string } from '../builders/deltaFields';
import { expectSyncError } from '../helpers/expectSyncError';
import { checkpointVersion, queryOnce } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { buildCli, openRunner, runCli, tempDir } from '../helpers/syncHarness';
import type { OpenedRunner } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import { dryRunReport } from '../../src/views/reports';

/**
 * Issue 15, point 3: mapping `mode: "auto"` counts the pending versions' changes from the
 * Delta log and applies them from the change feed while they are at most
 * auto.maxChangeShare of the table, else loads the snapshot at the end version (swap, or
 * merge) with the checkpoint; preview, dry run, events and the run log say which and why.
 * Real server, tables written by the project's writer.
 */
describe('mode auto: snapshot or incremental, chosen by the share of changed rows (real server)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('auto_mode');
  const ROWS = 100;
  const row = (id: number, tag = ''): Row => ({ id: BigInt(id), name: `name ${id}${tag}` });
  const ids = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  async function loaded(name: string, overrides: MappingOverrides = {}): Promise<{ w: DeltaTableWriter; r: OpenedRunner; table: string }> {
    const dir = await tempDir();
    const w = await DeltaTableWriter.create(path.join(dir, name), {
      columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }],
      configuration: { 'delta.enableChangeDataFeed': 'true' },
    });
    await w.append(ids(1, ROWS).map((i) => row(i)));
    const r = await openRunner(buildMapping({ name: name.replace(/_/g, '-'), source: w.path, target: name, key: ['id'], mode: 'auto', ...overrides }), db().url);
    assert.equal((await r.runner.run()).inserted, ROWS);
    return { w, r, table: name };
  }

  const equalsSnapshot = (w: DeltaTableWriter, table: string, version: number): Promise<number> =>
    assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, version, { key: ['id'] });

  type RunRow = { mode: string; from_version: string | null; to_version: string | null; status: string; auto_path: string | null; auto_reason: string | null };
  async function lastRun(pipeline: string): Promise<RunRow> {
    const [run] = await queryOnce<RunRow>(
      db().url, 'SELECT mode, from_version::text, to_version::text, status, auto_path, auto_reason FROM delta_neon_sync.runs WHERE pipeline = $1 ORDER BY run_id DESC LIMIT 1', [pipeline]);
    assert.ok(run, `a run of ${pipeline} is recorded`);
    return run;
  }

  it('under auto.maxChangeShare the changes are applied from the change feed, and the preview, dry run, events and result say so with the count', async () => {
    const { w, r, table } = await loaded('auto_small');
    try {
      // 10 updates and 2 deletes: 12 changes, 12% of 100 rows (the default share is above it).
      await w.update('id', ids(1, 10).map((i) => row(i, ' v2')));
      const v = await w.deleteWhere((x) => x.id === 99n || x.id === 100n);
      const preview = await r.runner.preview();
      assert.deepEqual(preview.auto, { path: 'incremental', reason: preview.auto?.reason });
      assert.match(preview.auto?.reason ?? '', /^incremental: 12 changes, 12% of 100 rows \(at most auto\.maxChangeShare \d+%\)$/);
      assert.equal((await r.runner.preview({ offset: 5 })).auto, undefined, 'a later page does not count again');
      const dry = await r.runner.dryRun();
      assert.equal(dry.auto?.path, 'incremental');
      // The change feed's transactions, rolled back: only the changed rows, nothing rehearsed besides.
      assert.equal(dry.rehearsed, undefined);
      assert.deepEqual([dry.result.updated, dry.result.deleted, dry.result.unchanged, dry.result.staged.upserts], [10, 2, 0, 10]);
      assert.match(dryRunReport('auto-small', dry).note ?? '', /^Applied inside a transaction that was rolled back: nothing was written\. Mode auto: incremental: 12 changes, 12% of 100 rows/);
      const events: SyncEvent[] = [];
      const res = await r.runner.run({ onEvent: (e) => events.push(e) });
      assert.equal(res.mode, 'incremental');
      assert.equal(res.auto?.path, 'incremental');
      assert.deepEqual([res.updated, res.deleted], [10, 2]);
      const started = events.find((e) => e.type === 'run-started');
      assert.equal(started?.type === 'run-started' ? started.auto?.path : undefined, 'incremental');
      assert.ok(events.some((e) => e.type === 'phase' && /mode auto: incremental: 12 changes/.test(e.detail ?? '')), 'a plan phase says which path and why');
      // The run history keeps the path and why for the incremental path too (state table, status, the views' history).
      const logged = await lastRun('auto-small');
      assert.equal(logged.mode, 'incremental');
      assert.equal(logged.auto_path, 'incremental');
      assert.equal(logged.auto_reason, res.auto?.reason);
      assert.match(logged.auto_reason ?? '', /^incremental: 12 changes, 12% of 100 rows \(at most auto\.maxChangeShare \d+%\)$/);
      assert.deepEqual((await r.runner.status()).runs[0]?.auto, { path: 'incremental', reason: logged.auto_reason });
      assert.equal(await checkpointVersion(db().url, 'auto-small'), v);
      await equalsSnapshot(w, table, v);
    } finally {
      await r.close();
    }
  });

  it('over auto.maxChangeShare the snapshot at the end version is swapped in with its checkpoint, equal to the source; preview and run log say so', async () => {
    const { w, r, table } = await loaded('auto_big', { auto: { maxChangeShare: 0.2 } });
    try {
      // Two versions: 30 updates, then 5 deletes and 7 inserts: 42 changes of 100 rows.
      await w.update('id', ids(11, 40).map((i) => row(i, ' v2')));
      await w.deleteWhere((x) => typeof x.id === 'bigint' && x.id > 95n);
      const v = await w.append(ids(101, 107).map((i) => row(i)));
      // A version the target does not have yet: the preview's rows are the net changes either path makes.
      const preview = await r.runner.preview();
      assert.equal(preview.auto?.path, 'snapshot');
      assert.equal(preview.auto?.reason, 'snapshot swap: 42 changes are 42% of 100 rows, above auto.maxChangeShare 20%');
      assert.deepEqual([preview.totals.insert, preview.totals.update, preview.totals.delete], [7, 30, 5]);
      const events: SyncEvent[] = [];
      const res = await r.runner.run({ onEvent: (e) => events.push(e) });
      assert.equal(res.auto?.path, 'snapshot');
      assert.equal(res.mode, 'initial');
      assert.equal(res.toVersion, v);
      assert.ok(events.some((e) => e.type === 'phase' && e.phase === 'swap'), 'the snapshot was swapped in');
      assert.ok(events.some((e) => e.type === 'phase' && /mode auto: snapshot swap: 42 changes are 42%/.test(e.detail ?? '')));
      const run = await lastRun('auto-big');
      assert.deepEqual(run, {
        mode: 'auto-swap', from_version: '2', to_version: String(v), status: 'succeeded',
        auto_path: 'snapshot', auto_reason: 'snapshot swap: 42 changes are 42% of 100 rows, above auto.maxChangeShare 20%',
      });
      assert.equal(await checkpointVersion(db().url, 'auto-big'), v);
      assert.equal(await equalsSnapshot(w, table, v), ROWS - 5 + 7);
      // Resumes from the new checkpoint: a small change next is incremental.
      const small = await w.update('id', [row(1, ' v3')]);
      const next = await r.runner.run();
      assert.equal(next.auto?.path, 'incremental');
      assert.equal(next.updated, 1);
      // Both paths in the history, newest first, each with its reason.
      const [inc, swap] = (await r.runner.status()).runs;
      assert.deepEqual([inc?.mode, inc?.auto?.path, swap?.mode, swap?.auto?.path], ['incremental', 'incremental', 'auto-swap', 'snapshot']);
      assert.match(inc?.auto?.reason ?? '', /^incremental: 1 change, 1% of 102 rows/);
      await equalsSnapshot(w, table, small);
    } finally {
      await r.close();
    }
  });

  it('the dry run of a sync that would load the snapshot rehearses that load (staged, indexed, swapped or merged, rolled back) and says so; nothing is left behind', async () => {
    const { w, r, table } = await loaded('auto_dry', { auto: { maxChangeShare: 0.2 } });
    try {
      const before = await checkpointVersion(db().url, 'auto-dry');
      const runsBefore = (await r.runner.status()).runs.length;
      const oid = async (): Promise<string | undefined> => (await queryOnce<{ oid: string }>(db().url, `SELECT 'public.auto_dry'::regclass::oid::text AS oid`))[0]?.oid;
      const oidBefore = await oid();
      // 30 updates, 5 deletes, 7 inserts: 42% of 100 rows, above 20%.
      await w.update('id', ids(11, 40).map((i) => row(i, ' v2')));
      await w.deleteWhere((x) => typeof x.id === 'bigint' && x.id > 95n);
      const v = await w.append(ids(101, 107).map((i) => row(i)));
      const events: SyncEvent[] = [];
      const dry = await r.runner.dryRun({ onEvent: (e) => events.push(e) });
      assert.equal(dry.auto?.reason, 'snapshot swap: 42 changes are 42% of 100 rows, above auto.maxChangeShare 20%');
      assert.deepEqual(dry.rehearsed, { path: 'snapshot', load: 'swap' });
      assert.deepEqual([dry.fromVersion, dry.toVersion], [Number(before) + 1, v]);
      // What the swap changes, and the whole snapshot staged (the change feed would stage its 37 changed rows, none unchanged).
      assert.deepEqual([dry.result.inserted, dry.result.updated, dry.result.deleted, dry.result.unchanged, dry.result.staged.upserts], [7, 30, 5, 65, 102]);
      const phases = events.flatMap((e) => (e.type === 'phase' ? [e.phase] : []));
      for (const p of ['stage', 'index', 'swap'] as const) assert.ok(phases.includes(p), `the dry run passed the load's ${p} phase (${phases.join(', ')})`);
      assert.ok(!events.some((e) => e.type === 'run-started' || e.type === 'run-finished'), 'a rehearsal is not a run');
      assert.ok(events.some((e) => e.type === 'phase' && e.detail === 'mode auto: snapshot swap: 42 changes are 42% of 100 rows, above auto.maxChangeShare 20% (dry run: rehearsed, then rolled back)'));
      assert.match(dryRunReport('auto-dry', dry).note ?? '', new RegExp(`^Rehearsed the snapshot swap: the snapshot at version ${v} was staged beside the table and indexed, then swapped in inside a transaction that was rolled back: nothing was written \\(the staging table was dropped\\)\\. Mode auto: snapshot swap: 42 changes`));
      // Rolled back: the same table (not a swapped-in one), its rows, the checkpoint, no staging table, no run recorded.
      assert.equal(await oid(), oidBefore);
      assert.equal(await checkpointVersion(db().url, 'auto-dry'), before);
      await equalsSnapshot(w, table, Number(before));
      const [left] = await queryOnce<{ n: string }>(db().url, `SELECT count(*)::text AS n FROM pg_tables WHERE tablename LIKE 'auto_dry__dns_%'`);
      assert.equal(left?.n, '0', 'the staging table was dropped');
      assert.equal((await r.runner.status()).runs.length, runsBefore, 'a dry run is not recorded as a run');
      // What the rehearsal refuses, the sync refuses: the swap's safe-delete count (60 of 100).
      const gone = await w.deleteWhere((x) => typeof x.id === 'bigint' && x.id > 40n && x.id <= 100n);
      await expectSyncError(r.runner.dryRun(), { kind: 'target', setting: 'safety.maxDeleteShare', version: gone, message: /Refused to delete 60 of about 100 row\(s\)/ });
      await expectSyncError(r.runner.run({ maxAttempts: 1 }), { kind: 'target', setting: 'safety.maxDeleteShare', version: gone, message: /Refused to delete 60 of about 100 row\(s\)/ });
      assert.equal(await checkpointVersion(db().url, 'auto-dry'), before);
      // The sync then does what the dry run rehearsed.
      const res = await r.runner.run({ allowMassDelete: true });
      assert.equal(res.auto?.path, 'snapshot');
      await equalsSnapshot(w, table, gone);
    } finally {
      await r.close();
    }
    // A table with a row trigger: mode auto merges, and the dry run rehearses the merge (the trigger fires, rolled back).
    const trig = await loaded('auto_dry_merge', { auto: { maxChangeShare: 0.2 } });
    try {
      await queryOnce(db().url, `CREATE TABLE public.auto_dry_merge_seen (id bigint)`);
      await queryOnce(db().url, `CREATE FUNCTION auto_dry_merge_seen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.auto_dry_merge_seen VALUES (NEW.id); RETURN NEW; END $$`);
      await queryOnce(db().url, `CREATE TRIGGER seen BEFORE UPDATE ON public.auto_dry_merge FOR EACH ROW EXECUTE FUNCTION auto_dry_merge_seen()`);
      const before = await checkpointVersion(db().url, 'auto-dry-merge');
      await trig.w.update('id', ids(1, 50).map((i) => row(i, ' v2')));
      const dry = await trig.r.runner.dryRun();
      assert.deepEqual(dry.rehearsed, { path: 'snapshot', load: 'merge' });
      assert.match(dry.auto?.reason ?? '', /^snapshot merge: 50 changes are 50% of 100 rows, above auto\.maxChangeShare 20% \(merge: .*trigger "seen"/);
      assert.deepEqual([dry.result.inserted, dry.result.updated, dry.result.deleted, dry.result.unchanged], [0, 50, 0, 50]);
      assert.match(dryRunReport('auto-dry-merge', dry).note ?? '', /^Rehearsed the snapshot merge: .*merged into it inside a transaction that was rolled back/);
      const [seen] = await queryOnce<{ n: string }>(db().url, 'SELECT count(*)::text AS n FROM public.auto_dry_merge_seen');
      assert.equal(seen?.n, '0', 'what the trigger wrote was rolled back with the merge');
      assert.equal(await checkpointVersion(db().url, 'auto-dry-merge'), before);
      await equalsSnapshot(trig.w, 'auto_dry_merge', Number(before));
    } finally {
      await trig.r.close();
    }
  });

  it('a run log made before auto_path / auto_reason existed gets them on the next run, which records its path and why', async () => {
    const { w, r } = await loaded('auto_upgrade');
    try {
      await queryOnce(db().url, 'ALTER TABLE delta_neon_sync.runs DROP COLUMN auto_path, DROP COLUMN auto_reason');
      await w.update('id', [row(1, ' v2')]);
      const res = await r.runner.run();
      assert.equal(res.auto?.path, 'incremental');
      const logged = await lastRun('auto-upgrade');
      assert.deepEqual([logged.auto_path, logged.auto_reason], ['incremental', res.auto?.reason]);
    } finally {
      await r.close();
    }
  });

  it('without mode auto the same share is applied from the change feed', async () => {
    const { w, r } = await loaded('auto_off', { mode: 'incremental' });
    try {
      await w.update('id', ids(1, 60).map((i) => row(i, ' v2')));
      const res = await r.runner.run();
      assert.equal(res.mode, 'incremental');
      assert.equal(res.auto, undefined);
      assert.equal(res.updated, 60);
    } finally {
      await r.close();
    }
  });

  it('a failed auto snapshot (a CHECK the new rows break) and a stopped one leave the target and the checkpoint as before', async () => {
    const { w, r, table } = await loaded('auto_fail', { auto: { maxChangeShare: 0.1 } });
    try {
      await queryOnce(db().url, `ALTER TABLE public.${table} ADD CONSTRAINT short_name CHECK (length(name) < 20)`);
      const before = await checkpointVersion(db().url, 'auto-fail');
      await w.update('id', ids(1, 50).map((i) => row(i, ' a name far too long for the check')));
      await expectSyncError(r.runner.run({ maxAttempts: 1 }), { message: /short_name/ });
      assert.equal(await checkpointVersion(db().url, 'auto-fail'), before);
      await equalsSnapshot(w, table, Number(before));
      // Stopped while the snapshot is indexed, before the swap's transaction.
      await queryOnce(db().url, `ALTER TABLE public.${table} DROP CONSTRAINT short_name`);
      const stop = new AbortController();
      const stopped = r.runner.run({ signal: stop.signal, maxAttempts: 1, onEvent: (e) => { if (e.type === 'phase' && e.phase === 'index') stop.abort(); } });
      await expectSyncError(stopped, { kind: 'cancelled' });
      assert.equal(await checkpointVersion(db().url, 'auto-fail'), before);
      await equalsSnapshot(w, table, Number(before));
      const [left] = await queryOnce<{ n: string }>(db().url, `SELECT count(*)::text AS n FROM pg_tables WHERE tablename LIKE 'auto_fail__dns_%'`);
      assert.equal(left?.n, '0', 'no staging table is left behind');
      // And the next run does it.
      const res = await r.runner.run();
      assert.equal(res.auto?.path, 'snapshot');
      await equalsSnapshot(w, table, res.toVersion);
    } finally {
      await r.close();
    }
  });

  it('safety.maxDeleteShare applies to what the snapshot swap would delete; allowMassDelete lets it through once', async () => {
    const { w, r, table } = await loaded('auto_deletes');
    try {
      const before = await checkpointVersion(db().url, 'auto-deletes');
      const v = await w.deleteWhere((x) => typeof x.id === 'bigint' && x.id > 40n);
      const e = await expectSyncError(r.runner.run({ maxAttempts: 1 }), {
        kind: 'target', setting: 'safety.maxDeleteShare', version: v, message: /Refused to delete 60 of about 100 row\(s\)/,
      });
      assert.match(e.message, /DELETE/);
      assert.equal(await checkpointVersion(db().url, 'auto-deletes'), before);
      await equalsSnapshot(w, table, Number(before));
      const res = await r.runner.run({ allowMassDelete: true });
      assert.equal(res.auto?.path, 'snapshot');
      assert.equal(await checkpointVersion(db().url, 'auto-deletes'), v);
      assert.equal(await equalsSnapshot(w, table, v), 40);
    } finally {
      await r.close();
    }
  });

  it('a table with a row trigger, or deletes: soft-delete, is loaded by merge (the reason says why); deletes: ignore and a filter stay incremental', async () => {
    const trig = await loaded('auto_trigger');
    try {
      await queryOnce(db().url, `CREATE FUNCTION auto_trigger_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
      await queryOnce(db().url, `CREATE TRIGGER keep_me BEFORE UPDATE ON public.auto_trigger FOR EACH ROW EXECUTE FUNCTION auto_trigger_noop()`);
      const v = await trig.w.update('id', ids(1, 50).map((i) => row(i, ' v2')));
      const res = await trig.r.runner.run();
      assert.equal(res.auto?.path, 'snapshot');
      assert.match(res.auto?.reason ?? '', /^snapshot merge: 50 changes are 50% of 100 rows, above auto\.maxChangeShare \d+% \(merge: .*trigger "keep_me"/);
      assert.equal((await lastRun('auto-trigger')).mode, 'auto-merge');
      await equalsSnapshot(trig.w, 'auto_trigger', v);
      const [t] = await queryOnce<{ n: string }>(db().url, `SELECT count(*)::text AS n FROM pg_trigger WHERE tgname = 'keep_me'`);
      assert.equal(t?.n, '1', 'the trigger stays');
    } finally {
      await trig.r.close();
    }
    const soft = await loaded('auto_soft', { deletes: { mode: 'soft-delete', column: 'deleted', kind: 'boolean' } });
    try {
      const v = await soft.w.deleteWhere((x) => typeof x.id === 'bigint' && x.id <= 40n);
      const res = await soft.r.runner.run();
      assert.match(res.auto?.reason ?? '', /^snapshot merge: 40 changes .*\(merge: deletes is soft-delete/);
      assert.equal(await checkpointVersion(db().url, 'auto-soft'), v);
      const [n] = await queryOnce<{ marked: string; all: string }>(db().url, 'SELECT count(*) FILTER (WHERE deleted)::text AS marked, count(*)::text AS all FROM public.auto_soft');
      assert.deepEqual(n, { marked: '40', all: '100' });
    } finally {
      await soft.r.close();
    }
    const ignore = await loaded('auto_ignore', { deletes: { mode: 'ignore' } });
    try {
      await ignore.w.deleteWhere((x) => typeof x.id === 'bigint' && x.id <= 30n);
      const res = await ignore.r.runner.run();
      assert.equal(res.auto?.path, 'incremental');
      assert.match(res.auto?.reason ?? '', /deletes is "ignore"/);
      const [n] = await queryOnce<{ n: string }>(db().url, 'SELECT count(*)::text AS n FROM public.auto_ignore');
      assert.equal(n?.n, '100');
    } finally {
      await ignore.r.close();
    }
    const filtered = await loaded('auto_filter', { filter: [{ column: 'id', op: '<=', value: 1000 }] });
    try {
      await filtered.w.update('id', ids(1, 50).map((i) => row(i, ' v2')));
      const res = await filtered.r.runner.run();
      assert.equal(res.auto?.path, 'incremental');
      assert.match(res.auto?.reason ?? '', /filter applies to snapshot loads only/);
    } finally {
      await filtered.r.close();
    }
  });

  it('the CLI quick form: --max-change-share turns mode auto on; sync and preview print which path and why', async () => {
    await buildCli();
    const dir = await tempDir();
    const w = await DeltaTableWriter.create(path.join(dir, 'auto_cli'), {
      columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }],
      configuration: { 'delta.enableChangeDataFeed': 'true' },
    });
    await w.append(ids(1, ROWS).map((i) => row(i)));
    const quick = ['--source', w.path, '--target', db().url, '--table', 'public.auto_cli', '--key', 'id', '--max-change-share', '0.3'];
    const load = await runCli(['sync', ...quick]);
    assert.equal(load.code, 0, load.stderr);
    const v = await w.update('id', ids(1, 50).map((i) => row(i, ' v2')));
    const preview = await runCli(['preview', ...quick]);
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(preview.stdout, /\nmode auto: snapshot swap: 50 changes are 50% of 100 rows, above auto\.maxChangeShare 30%\n/);
    const sync = await runCli(['sync', ...quick]);
    assert.equal(sync.code, 0, sync.stderr);
    assert.match(sync.stderr, /Snapshot load in place of an incremental sync of public-auto_cli: versions 2\.\.2\n {2}mode auto: snapshot swap: 50 changes are 50% of 100 rows, above auto\.maxChangeShare 30%\n/);
    assert.equal(sync.stderr.split('mode auto:').length, 2, 'said once');
    assert.match(sync.stdout, new RegExp(`public-auto_cli: snapshot \\(mode auto\\) sync to version ${v} done`));
    await equalsSnapshot(w, 'auto_cli', v);
    // status prints each auto run's path and why under its line; a small change next stays incremental and says so too.
    await w.update('id', [row(1, ' v3')]);
    const small = await runCli(['sync', ...quick]);
    assert.equal(small.code, 0, small.stderr);
    const status = await runCli(['status', ...quick]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /\n {2}#\d+ incremental 3\.\.3 succeeded 1 rows started [^\n]+\n {4}mode auto: incremental: 1 change, 1% of 100 rows \(at most auto\.maxChangeShare 30%\)\n/);
    assert.match(status.stdout, /\n {2}#\d+ auto-swap 2\.\.2 succeeded 100 rows started [^\n]+\n {4}mode auto: snapshot swap: 50 changes are 50% of 100 rows, above auto\.maxChangeShare 30%\n/);
    assert.match(status.stdout, /\n {2}#\d+ initial-swap -\.\.\d+ succeeded 100 rows started [^\n]+\n$/, 'a run outside mode auto has no such line');
    const bad = await runCli(['sync', ...quick.slice(0, -1), '30']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--max-change-share must be a share .* got '30'/);
  });
});
