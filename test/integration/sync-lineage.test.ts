import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { MappingOverrides } from '../builders/mappings';
import { long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import type { OpenedRunner } from '../helpers/syncHarness';

/**
 * Issue 14 point 3: lineage columns (the Delta commit version, its commit timestamp, the
 * sync time) and the out-of-order guard they carry. Expectations come from the Delta log
 * (commit files read here) and from the engine's state table (the checkpoint row is
 * written in the same transaction as the rows: its finished_at is that transaction's
 * now()), never from the engine's own results.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
];
const row = (id: number, name = `n${id}`): Row => ({ id: BigInt(id), name });
const LINEAGE = { version: '_delta_version', commitTimestamp: '_commit_timestamp', syncedAt: 'updated_at' };

type Thread = 'worker' | 'main';

/** Commit time (ms) of `version` as the Delta protocol defines it: inCommitTimestamp, else commitInfo.timestamp. */
async function commitMillis(tablePath: string, version: number): Promise<number> {
  const text = await fs.readFile(path.join(tablePath, '_delta_log', `${String(version).padStart(20, '0')}.json`), 'utf8');
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const ci = (JSON.parse(line) as { commitInfo?: { timestamp?: number; inCommitTimestamp?: number } }).commitInfo;
    if (ci) return ci.inCommitTimestamp ?? (ci.timestamp as number);
  }
  throw new Error(`no commitInfo in version ${version}`);
}

interface TargetRow {
  id: string;
  name: string | null;
  ver: string | null;
  /** Commit timestamp as ms since the epoch. */
  ts: string | null;
  synced: string | null;
  /** The transaction that last wrote the row. */
  xmin: string;
}

type LineageNames = { version?: string; commitTimestamp?: string; syncedAt?: string };

describe('lineage columns and the out-of-order guard (real server)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('sync_lineage');
  let dir: string;

  before(async () => {
    dir = await tempDir('dns-lineage-');
  });

  async function newTable(name: string): Promise<DeltaTableWriter> {
    const w = await DeltaTableWriter.create(path.join(dir, name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append([row(1), row(2), row(3), row(4)]); // v1
    return w;
  }

  async function withRunner(name: string, w: DeltaTableWriter, overrides: MappingOverrides, thread: Thread, fn: (r: OpenedRunner) => Promise<void>): Promise<void> {
    const r = await openRunner(buildMapping({ name, source: w.path, target: name, key: ['id'], ...overrides }), db().url);
    const before = process.env.DELTA_NEON_SYNC_READ_THREAD;
    if (thread === 'main') process.env.DELTA_NEON_SYNC_READ_THREAD = 'main';
    try {
      await fn(r);
    } finally {
      if (before === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
      else process.env.DELTA_NEON_SYNC_READ_THREAD = before;
      await r.close();
    }
  }

  /** The target's rows with their lineage (columns the mapping does not name read as NULL). */
  async function rows(r: OpenedRunner, table: string, cols: LineageNames = LINEAGE): Promise<Map<string, TargetRow>> {
    const q = (c: string): string => `"${c.replace(/"/g, '""')}"`;
    const res = await r.pool.query<TargetRow>(
      `SELECT id::text AS id, name, ${cols.version ? `${q(cols.version)}::text` : 'NULL'} AS ver,
              ${cols.commitTimestamp ? `(extract(epoch FROM ${q(cols.commitTimestamp)}) * 1000)::int8::text` : 'NULL'} AS ts,
              ${cols.syncedAt ? `${q(cols.syncedAt)}::text` : 'NULL'} AS synced, xmin::text AS xmin FROM public.${q(table)} ORDER BY id`,
    );
    return new Map(res.rows.map((x) => [x.id, x]));
  }

  /** The pipeline's checkpoint row: the transaction that wrote it, and its finished_at (clock_timestamp() in that transaction). */
  async function checkpointRow(r: OpenedRunner, pipeline: string): Promise<{ xmin: string; finished: string }> {
    const res = await r.pool.query<{ xmin: string; finished: string }>(`SELECT xmin::text AS xmin, finished_at::text AS finished FROM delta_neon_sync.checkpoints WHERE pipeline = $1`, [pipeline]);
    return res.rows[0] as { xmin: string; finished: string };
  }

  /** Whether timestamptz text `a` <= `b` (compared by the server). */
  async function notAfter(r: OpenedRunner, a: string, b: string): Promise<boolean> {
    return (await r.pool.query<{ ok: boolean }>('SELECT $1::timestamptz <= $2::timestamptz AS ok', [a, b])).rows[0]?.ok === true;
  }

  /**
   * The rows `ids` were written by the transaction that wrote the checkpoint (same xmin) and
   * carry one sync time, now() of that transaction: the same for all of them, not after the
   * checkpoint's clock_timestamp(), and later than `after` (an earlier transaction's).
   */
  async function syncedByCheckpoint(r: OpenedRunner, pipeline: string, got: Map<string, TargetRow>, ids: string[], after?: string): Promise<string> {
    const cp = await checkpointRow(r, pipeline);
    const times = new Set(ids.map((id) => got.get(id)?.synced));
    assert.equal(times.size, 1, `rows ${ids.join(', ')} share one sync time`);
    const t = [...times][0] as string;
    for (const id of ids) assert.equal(got.get(id)?.xmin, cp.xmin, `row ${id} was written with the checkpoint`);
    assert.ok(await notAfter(r, t, cp.finished), 'the sync time is the transaction\'s now(), not after its checkpoint');
    if (after !== undefined) assert.ok(!(await notAfter(r, t, after)), 'a later transaction has a later sync time');
    return t;
  }

  /** Moves the pipeline's checkpoint back by hand (as a user re-applying a range would). */
  async function setCheckpoint(r: OpenedRunner, pipeline: string, version: number): Promise<void> {
    await r.pool.query(`UPDATE delta_neon_sync.checkpoints SET version = $2 WHERE pipeline = $1`, [pipeline, version]);
  }

  it('values equal the commits: the version and commit timestamp of each row\'s last change, and now() of the transaction that wrote it', async () => {
    const name = 'lin_values';
    const w = await newTable(name);
    await withRunner(name, w, { lineage: LINEAGE }, 'worker', async (r) => {
      const init = await r.runner.run({ mode: 'initial' });
      assert.match(init.createdTableSql ?? '', /"_delta_version" bigint,\n {2}"_commit_timestamp" timestamptz,\n {2}"updated_at" timestamptz/);
      const v1 = String(await commitMillis(w.path, 1));
      const loaded = await rows(r, name);
      for (const x of loaded.values()) assert.deepEqual([x.ver, x.ts], ['1', v1], `row ${x.id} after the load`);
      // A swap load stamps the rows as it stages them (the COPY's transaction, before the swap's).
      const loadedAt = loaded.get('1')?.synced as string;
      assert.equal(new Set([...loaded.values()].map((x) => x.synced)).size, 1, 'one sync time for the load');
      assert.ok(await notAfter(r, loadedAt, (await checkpointRow(r, name)).finished));
      const defaults = await r.pool.query(`SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND column_default IS NOT NULL`, [name]);
      assert.deepEqual(defaults.rows, [], 'the staging defaults are not left on the table');

      await w.update('id', [row(2, 'two')]); // v2
      await w.delete('id', [3n]); // v3
      await w.append([row(5)]); // v4
      await r.runner.run({});
      const got = await rows(r, name);
      assert.deepEqual([...got.keys()], ['1', '2', '4', '5']);
      assert.deepEqual([got.get('1')?.ver, got.get('1')?.ts, got.get('1')?.synced], ['1', v1, loadedAt], 'an untouched row keeps its lineage');
      assert.deepEqual([got.get('2')?.name, got.get('2')?.ver, got.get('2')?.ts], ['two', '2', String(await commitMillis(w.path, 2))]);
      assert.deepEqual([got.get('5')?.ver, got.get('5')?.ts], ['4', String(await commitMillis(w.path, 4))]);
      await syncedByCheckpoint(r, name, got, ['2', '5'], loadedAt);
    });
  });

  it('the commit timestamp is the in-commit timestamp when the commit has one, not commitInfo.timestamp', async () => {
    const name = 'lin_ict';
    const w = await newTable(name);
    await withRunner(name, w, { lineage: { commitTimestamp: '_commit_timestamp' } }, 'worker', async (r) => {
      await r.runner.run({ mode: 'initial' });
      await w.update('id', [row(2, 'two')]); // v2
      // As a writer with delta.enableInCommitTimestamps writes it: commitInfo.inCommitTimestamp, here a minute before the wall-clock timestamp.
      const file = path.join(w.path, '_delta_log', `${String(2).padStart(20, '0')}.json`);
      const lines = (await fs.readFile(file, 'utf8')).split('\n').map((l) => {
        if (!l.trim()) return l;
        const a = JSON.parse(l) as { commitInfo?: { timestamp: number; inCommitTimestamp?: number } };
        if (a.commitInfo) a.commitInfo.inCommitTimestamp = a.commitInfo.timestamp - 60_000;
        return JSON.stringify(a);
      });
      await fs.writeFile(file, lines.join('\n'));
      await r.runner.run({});
      const ict = await commitMillis(w.path, 2);
      const got = await rows(r, name, { commitTimestamp: '_commit_timestamp' });
      assert.equal(got.get('2')?.ts, String(ict));
      const plain = JSON.parse((await fs.readFile(file, 'utf8')).split('\n').find((l) => l.includes('commitInfo')) as string) as { commitInfo: { timestamp: number } };
      assert.notEqual(got.get('2')?.ts, String(plain.commitInfo.timestamp));
    });
  });

  for (const thread of ['worker', 'main'] as const) {
    it(`incremental (${thread} thread): re-applying older versions leaves newer rows as they are (upserts and deletes), and the dry run counts them`, async () => {
      const name = `lin_incr_${thread}`;
      const w = await newTable(name);
      await withRunner(name, w, { lineage: { version: '_delta_version' } }, thread, async (r) => {
        await r.runner.run({ mode: 'initial' });
        await w.update('id', [row(1, 'b')]); // v2
        await w.update('id', [row(1, 'c')]); // v3
        await w.delete('id', [3n]); // v4
        await w.append([row(3, 'back')]); // v5
        await r.runner.run({});
        const newest = await rows(r, name, { version: '_delta_version' });
        assert.deepEqual([newest.get('1')?.name, newest.get('1')?.ver, newest.get('3')?.name, newest.get('3')?.ver], ['c', '3', 'back', '5']);

        // Back to version 1: v2 updates id 1 (the target holds v3's row) ...
        await setCheckpoint(r, name, 1);
        const dry = await r.runner.dryRun({ toVersion: 2 });
        assert.equal(dry.result.keptByGuard, 1, 'the dry run counts the update the guard keeps');
        await r.runner.run({ toVersion: 2 });
        // ... and v4 deletes id 3 (the target holds v5's re-insert).
        await setCheckpoint(r, name, 3);
        await r.runner.run({ toVersion: 4 });
        const after = await rows(r, name, { version: '_delta_version' });
        assert.deepEqual([after.get('1')?.name, after.get('1')?.ver], ['c', '3'], 'the older update did not regress id 1');
        assert.deepEqual([after.get('3')?.name, after.get('3')?.ver], ['back', '5'], 'the older delete did not remove the re-inserted id 3');
        assert.equal(after.size, 4);
      });
    });
  }

  it('merge initial load of an old snapshot (--to-version): rows newer than the snapshot are neither updated nor deleted', async () => {
    const name = 'lin_merge';
    const w = await newTable(name);
    await withRunner(name, w, { lineage: { version: '_delta_version', commitTimestamp: '_commit_timestamp' }, initialLoad: { mode: 'merge' } }, 'main', async (r) => {
      await r.runner.run({ mode: 'initial' });
      await w.update('id', [row(2, 'two')]); // v2
      await w.append([row(9)]); // v3
      await r.runner.run({});
      // A backfill of version 1's snapshot by merge: id 2 changed at v2, id 9 came at v3.
      await r.runner.run({ mode: 'initial', toVersion: 1 });
      const got = await rows(r, name, { version: '_delta_version', commitTimestamp: '_commit_timestamp' });
      assert.deepEqual([got.get('2')?.name, got.get('2')?.ver, got.get('2')?.ts], ['two', '2', String(await commitMillis(w.path, 2))], 'id 2 keeps its newer values');
      assert.deepEqual([got.get('9')?.name, got.get('9')?.ver], ['n9', '3'], 'id 9 (not in the old snapshot, newer) is not deleted');
      assert.equal(got.get('1')?.ver, '1');
    });
  });

  it('lineage added to an existing target: ALTER TABLE ADD COLUMN, shown by the preview, then rows written get their lineage', async () => {
    const name = 'lin_added';
    const w = await newTable(name);
    await withRunner(name, w, {}, 'worker', async (r) => {
      await r.runner.run({ mode: 'initial' });
    });
    await w.update('id', [row(4, 'four')]); // v2
    await withRunner(name, w, { lineage: LINEAGE }, 'worker', async (r) => {
      const pv = await r.runner.preview({ limit: 100 });
      assert.deepEqual(pv.alterations, [
        'ALTER TABLE "public"."lin_added" ADD COLUMN IF NOT EXISTS "_delta_version" bigint',
        'ALTER TABLE "public"."lin_added" ADD COLUMN IF NOT EXISTS "_commit_timestamp" timestamptz',
        'ALTER TABLE "public"."lin_added" ADD COLUMN IF NOT EXISTS "updated_at" timestamptz',
      ]);
      assert.equal(pv.ddl, undefined, 'an incremental preview has no CREATE TABLE');
      // The dry run runs the same statements first (rolled back), as the sync does.
      const dry = await r.runner.dryRun({});
      assert.deepEqual(dry.alterations, pv.alterations);
      assert.equal(dry.result.updated, 1);
      const still = await r.pool.query(`SELECT 1 FROM pg_attribute WHERE attrelid = 'public.lin_added'::regclass AND attname = '_delta_version'`);
      assert.equal(still.rowCount, 0, 'the preview and the dry run rolled their DDL back');
      const run = await r.runner.run({});
      assert.ok(run.warnings.some((x) => /Added lineage columns "_delta_version" \(bigint\), "_commit_timestamp" \(timestamptz\), "updated_at" \(timestamptz\) to public.lin_added \(ALTER TABLE/.test(x)), run.warnings.join('\n'));
      const attrs = await r.pool.query<{ xmin: string }>(
        `SELECT DISTINCT xmin::text AS xmin FROM pg_attribute WHERE attrelid = 'public.lin_added'::regclass AND attname IN ('_delta_version', '_commit_timestamp', 'updated_at')`,
      );
      assert.deepEqual(attrs.rows.map((x) => x.xmin), [(await checkpointRow(r, name)).xmin], 'the columns were added by the transaction that applied the batch');
      const got = await rows(r, name);
      assert.deepEqual([got.get('4')?.name, got.get('4')?.ver, got.get('4')?.ts], ['four', '2', String(await commitMillis(w.path, 2))]);
      await syncedByCheckpoint(r, name, got, ['4']);
      assert.deepEqual([got.get('1')?.ver, got.get('1')?.ts, got.get('1')?.synced], [null, null, null], 'rows not written since have no lineage');
    });
  });

  it('soft deletes and dead-letter runs carry the guard: an older soft delete does not mark a row re-inserted later, an older update does not regress it', async () => {
    const name = 'lin_soft';
    const w = await newTable(name);
    const overrides: MappingOverrides = { lineage: { version: '_delta_version', syncedAt: 'updated_at' }, deletes: { mode: 'soft-delete', column: 'is_deleted', kind: 'boolean' }, deadLetter: true };
    await withRunner(name, w, overrides, 'main', async (r) => {
      await r.runner.run({ mode: 'initial' });
      await w.update('id', [row(1, 'b')]); // v2
      await w.delete('id', [3n]); // v3
      await w.update('id', [row(1, 'c')]); // v4
      await w.append([row(3, 'back')]); // v5
      await w.delete('id', [4n]); // v6
      await r.runner.run({});
      const state = async (): Promise<Array<[string, string | null, string | null, boolean]>> =>
        (await r.pool.query<{ id: string; name: string | null; ver: string | null; del: boolean }>(`SELECT id::text AS id, name, _delta_version::text AS ver, is_deleted AS del FROM public.${name} ORDER BY id`)).rows.map((x) => [x.id, x.name, x.ver, x.del]);
      const synced = await state();
      assert.deepEqual(synced.filter((x) => x[0] === '1' || x[0] === '3' || x[0] === '4'), [['1', 'c', '4', false], ['3', 'back', '5', false], ['4', 'n4', '6', true]]);
      // Re-apply versions 2..3 (the checkpoint set back by hand): both changes are older than the rows.
      await setCheckpoint(r, name, 1);
      await r.runner.run({ toVersion: 3 });
      assert.deepEqual(await state(), synced, 'nothing regressed');
    });
  });

  it('a target column of the lineage name and another type is refused, naming the setting', async () => {
    const name = 'lin_wrong_type';
    const w = await newTable(name);
    await withRunner(name, w, {}, 'main', async (r) => {
      await r.runner.run({ mode: 'initial' });
      await r.pool.query(`ALTER TABLE public.${name} ADD COLUMN _delta_version text`);
    });
    await w.update('id', [row(1, 'b')]); // v2
    await withRunner(name, w, { lineage: { version: '_delta_version' } }, 'main', async (r) => {
      await expectSyncError(r.runner.run({}), { kind: 'mapping', setting: 'lineage.version', column: '_delta_version' });
      const name1 = await r.pool.query<{ name: string }>(`SELECT name FROM public.${name} WHERE id = 1`);
      assert.equal(name1.rows[0]?.name, 'n1', 'nothing was applied');
    });
  });

  it('preview lists the rows the guard keeps, with their kept values', async () => {
    const name = 'lin_preview';
    const w = await newTable(name);
    await withRunner(name, w, { lineage: { version: '_delta_version' } }, 'main', async (r) => {
      await r.runner.run({ mode: 'initial' });
      await w.update('id', [row(1, 'b')]); // v2
      await w.update('id', [row(1, 'c')]); // v3
      await r.runner.run({});
      await setCheckpoint(r, name, 1);
      const pv = await r.runner.preview({ limit: 100, toVersion: 2, include: ['kept', 'update', 'insert'] });
      assert.equal(pv.totals.kept, 1);
      assert.equal(pv.totals.update, 0);
      const kept = pv.rows.find((x) => x.action === 'kept');
      assert.equal(kept?.key.id, '1');
      assert.equal(kept?.oldRow?.name, 'c', 'the row the guard keeps, as it is');
      assert.equal(kept?.newRow?.name, 'b', 'the older change it refuses');
    });
  });

  it('hostile lineage column names are quoted; names that are not identifiers or collide are refused', async () => {
    const name = 'lin_hostile';
    const w = await newTable(name);
    const hostile = { version: 'select', commitTimestamp: 'From$Where', syncedAt: 'Order' };
    await withRunner(name, w, { lineage: hostile }, 'worker', async (r) => {
      await r.runner.run({ mode: 'initial' });
      await w.update('id', [row(1, 'x')]); // v2
      await w.delete('id', [2n]); // v3
      await r.runner.run({});
      const got = await rows(r, name, hostile);
      assert.deepEqual([got.get('1')?.ver, got.get('1')?.ts], ['2', String(await commitMillis(w.path, 2))]);
      await syncedByCheckpoint(r, name, got, ['1']);
      assert.equal(got.has('2'), false);
    });
    assert.throws(() => buildMapping({ source: w.path, key: ['id'], lineage: { version: 'a"; DROP TABLE x; --' } }), /lineage\.version: must be a valid identifier/);
    assert.throws(() => buildMapping({ source: w.path, key: ['id'], lineage: { version: 'id' } }), /lineage\.version: "id" is also a mapped column \(it is a key column\)/);
    assert.throws(() => buildMapping({ source: w.path, key: ['id'], lineage: { version: 'v', syncedAt: 'v' } }), /lineage: must name a different column for each lineage value/);
    await withRunner('lin_clash', w, { lineage: { syncedAt: 'name' } }, 'main', async (r) => {
      await expectSyncError(r.runner.run({ mode: 'initial' }), { kind: 'mapping', setting: 'lineage.syncedAt' });
    });
  });
});
