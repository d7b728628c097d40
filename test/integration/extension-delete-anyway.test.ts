import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ContinuousSyncs } from '../../src/engine/ContinuousSyncs';
import type { WatchStatus } from '../../src/engine/ContinuousSyncs';
import { DELETE_ANYWAY, deleteAnywayQuestion, isMassDeleteRefusal, resumeWatchAllowingOnce, runAllowingOnce } from '../../src/engine/deleteAnyway';
import type { DeleteAnywayQuestion } from '../../src/engine/deleteAnyway';
import { SyncEngine } from '../../src/engine/SyncEngine';
import type { TargetHandle } from '../../src/engine/SyncEngine';
import type { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { SyncError } from '../../src/sync/errors';
import { silentLogger } from '../../src/sync/ports/Logger';
import { buildMapping } from '../builders/mappings';
import { checkpointVersion, queryOnce } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { pollUntil, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import { itemRows, newItemTable } from '../builders/itemTables';

/**
 * The editor's "Delete Anyway" (issue 14, point 4) without VS Code: the glue the Mappings
 * commands run (runAllowingOnce: a refused run, one question, the rerun allowed once) and
 * the continuous sync that the delete guard stops (resumeWatchAllowingOnce: the same
 * question, then the watch resumes with its first run allowed and every later version
 * checked again). The modal is a recorded answer; the runs are real, on a real server.
 */

const rows = itemRows;
const ids = (a: number, b: number): bigint[] => rows(a, b).map((r) => r.id as bigint);
const KEY = ['id'];

describe('extension: Delete Anyway after a refused mass delete (real server, no VS Code)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('ext_delete_anyway');
  let dir: string;
  let engine: SyncEngine;

  before(async () => {
    dir = await tempDir('dns-ext-anyway-');
    engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async (name) => (name === 'pg' ? db().url : undefined), logger: silentLogger });
  });
  after(async () => {
    await engine.dispose();
  });

  const newTable = (name: string): Promise<DeltaTableWriter> => newItemTable(dir, name, 20);
  const count = async (table: string): Promise<number> =>
    Number((await queryOnce<{ n: string }>(db().url, `SELECT count(*)::text AS n FROM public.${table}`))[0]?.n);

  /** The modal, answered from a script; records every question. */
  function modal(answers: boolean[]): { ask: (q: DeleteAnywayQuestion) => Promise<boolean>; asked: DeleteAnywayQuestion[] } {
    const asked: DeleteAnywayQuestion[] = [];
    return {
      asked,
      ask: async (q) => {
        asked.push(q);
        const a = answers.shift();
        if (a === undefined) throw new Error(`unexpected question: ${q.text}`);
        return a;
      },
    };
  }

  it('a refused run asks once (rows, version, TRUNCATE in the modal); Delete Anyway reruns it allowed; the next mass delete asks again and a Cancel keeps the rows', async () => {
    const t = await newTable('anyway_run');
    const m = buildMapping({ name: 'anyway-run', source: t.path, target: { connection: 'pg', table: 'anyway_run' }, key: KEY });
    const sync = (allow: boolean) => engine.withRunner(m, (h) => h.runner.run({ ...(allow ? { allowMassDelete: true } : {}) }));
    await sync(false);
    const loaded = t.version;
    const v = await t.overwrite([], { operation: 'TRUNCATE' });

    const yes = modal([true]);
    const allowed: boolean[] = [];
    const r = await runAllowingOnce((allow) => (allowed.push(allow), sync(allow)), async (e) => yes.ask(deleteAnywayQuestion('run', m.name, e)));
    assert.deepEqual(allowed, [false, true], 'refused, then the one rerun with the allowance');
    assert.equal(yes.asked.length, 1);
    assert.equal(yes.asked[0]?.text, 'Delta Sync: anyway-run would delete most of its target.');
    assert.match(yes.asked[0]?.detail ?? '', new RegExp(`Refused to delete 20 of about 20 row\\(s\\).*version ${v}: TRUNCATE.*stays at version ${loaded}`, 's'));
    assert.match(yes.asked[0]?.detail ?? '', /Delete Anyway applies these deletes in this one run; later runs are checked again/);
    assert.equal(r.deleted, 20);
    assert.equal(await count('anyway_run'), 0);
    assert.equal(await checkpointVersion(db().url, 'anyway-run'), v);

    await t.append(rows(21, 40));
    await sync(false);
    const del = await t.delete('id', ids(21, 40));
    const no = modal([false]);
    const refused = await runAllowingOnce(sync, async (e) => no.ask(deleteAnywayQuestion('run', m.name, e))).then(() => undefined, (e: unknown) => e);
    assert.ok(isMassDeleteRefusal(refused), `the refusal is rethrown: ${String(refused)}`);
    assert.equal((refused as SyncError).version, del);
    assert.equal(no.asked.length, 1, 'asked again: the allowance was for one run');
    assert.equal(await count('anyway_run'), 20);
    assert.equal(await checkpointVersion(db().url, 'anyway-run'), del - 1);

    // Any other error is not a question.
    const other = modal([]);
    const bad = buildMapping({ name: 'anyway-bad', source: path.join(dir, 'no_such_table'), target: { connection: 'pg', table: 'anyway_bad' }, key: KEY });
    await assert.rejects(runAllowingOnce(() => engine.withRunner(bad, (h) => h.runner.run({})), async (e) => other.ask(deleteAnywayQuestion('run', bad.name, e))));
    assert.equal(other.asked.length, 0);
  });

  it('a continuous sync stopped by the delete guard offers Delete Anyway; the resumed watch applies the truncate, follows new versions, and stops again on the next mass delete', async () => {
    const t = await newTable('anyway_watch');
    const m = buildMapping({ name: 'anyway-watch', source: t.path, target: { connection: 'pg', table: 'anyway_watch' }, key: KEY });
    const key = '/ws/.delta-sync/anyway-watch.json';
    const w = new ContinuousSyncs<TargetHandle>({ openTarget: (c) => engine.openTarget(c), openRunner: (mm, tt) => engine.openRunnerOn(mm, tt), backoffMs: 100 });
    const stops: Array<{ status: WatchStatus; error: SyncError | undefined }> = [];
    w.subscribe({ onStopped: (status, error) => stops.push({ status, error }) });
    const atVersion = (v: number): Promise<number> =>
      pollUntil(async () => ((await checkpointVersion(db().url, 'anyway-watch')) === v ? v : undefined), { timeoutMs: 30_000, everyMs: 50, what: `anyway-watch at version ${v}` });
    try {
      const first = w.start(key, m, { mode: 'follow', intervalMs: 200 });
      await atVersion(t.version);
      const loaded = t.version;
      const v = await t.overwrite([], { operation: 'TRUNCATE' });
      await first.done;
      const stop1 = stops.at(-1);
      assert.ok(isMassDeleteRefusal(stop1?.error), `stopped by the guard: ${String(stop1?.error)}`);
      assert.equal(await count('anyway_watch'), 20, 'nothing deleted');
      assert.equal(await checkpointVersion(db().url, 'anyway-watch'), loaded);

      const yes = modal([true]);
      const resumed = await resumeWatchAllowingOnce(w, stop1!.status, stop1!.error, m, yes.ask);
      assert.ok(resumed, 'the watch started again');
      assert.equal(yes.asked.length, 1);
      assert.equal(yes.asked[0]?.text, 'Delta Sync: continuous sync of anyway-watch stopped: it would delete most of its target.');
      assert.match(yes.asked[0]?.detail ?? '', new RegExp(`Refused to delete 20 of about 20 row\\(s\\).*version ${v}: TRUNCATE`, 's'));
      assert.match(yes.asked[0]?.detail ?? '', /resumes the continuous sync; every later version is checked again/);
      await atVersion(v);
      assert.equal(await count('anyway_watch'), 0);
      const st = w.get(key);
      assert.equal(st?.mode, 'follow');
      assert.equal(st?.intervalMs, 200);

      // Still watching: new rows land.
      await t.append(rows(21, 40));
      await atVersion(t.version);
      await assertTargetEquals(db().url, { schema: 'public', name: 'anyway_watch' }, t.path, t.version, { key: KEY });
      const good = t.version;

      // The allowance was for one run: the next mass delete stops the watch again.
      const del = await t.delete('id', ids(21, 40));
      await resumed!.done;
      const stop2 = stops.at(-1);
      assert.ok(isMassDeleteRefusal(stop2?.error), `stopped by the guard again: ${String(stop2?.error)}`);
      assert.equal(stop2?.error?.version, del);
      assert.equal(await count('anyway_watch'), 20);
      assert.equal(await checkpointVersion(db().url, 'anyway-watch'), good);

      // Cancel in the modal: the watch stays stopped.
      const no = modal([false]);
      assert.equal(await resumeWatchAllowingOnce(w, stop2!.status, stop2!.error, m, no.ask), undefined);
      assert.equal(no.asked.length, 1);
      assert.equal(w.list().length, 0);
      // A stop that was not the guard's asks nothing.
      assert.equal(await resumeWatchAllowingOnce(w, stop2!.status, undefined, m, modal([]).ask), undefined);
      assert.equal(DELETE_ANYWAY, 'Delete Anyway');
    } finally {
      await w.dispose();
    }
  });
});
