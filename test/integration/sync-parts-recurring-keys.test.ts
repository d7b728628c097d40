import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * One commit applied in many parts (batch.maxRows 10: a part holds about 10 keys) whose
 * keys recur in parts far apart. planSteps remembers, for the whole commit, which keys it
 * upserted (plan/KeySet.ts), so that a removal of such a key in a later part is dropped
 * (the upsert replaced the row), its insert is excused, and a second upsert of it is a
 * duplicate key. Keys mix Latin-1, Cyrillic, CJK and astral characters, which that set
 * stores differently. Expectations come from how the versions were written here.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: string(), nullable: false },
  { name: 'name', type: string() },
];
const SCRIPTS = ['k', 'ключ', '客户', '😀'];
const id = (i: number): string => `${SCRIPTS[i % SCRIPTS.length]}${i}`;
const row = (i: number, name = `n${i}`): Row => ({ id: id(i), name });
const THREADS = ['worker', 'main'] as const;

async function onThread<T>(thread: (typeof THREADS)[number], fn: () => Promise<T>): Promise<T> {
  const saved = process.env.DELTA_NEON_SYNC_READ_THREAD;
  process.env.DELTA_NEON_SYNC_READ_THREAD = thread;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
    else process.env.DELTA_NEON_SYNC_READ_THREAD = saved;
  }
}

describe('a commit applied in many parts whose keys recur across parts (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_parts_keys');
  let dir: string;

  before(async () => {
    dir = await tempDir('dns-parts-keys-');
  });

  /**
   * A CDF table `name` holding `v1`, its mapping (batches of 10 rows, so a commit comes in
   * many parts) and a runner that has loaded it on `thread`; the caller closes the runner.
   */
  async function loadedTable(name: string, thread: (typeof THREADS)[number], v1: Row[], opts?: { rowsPerFile: number }): Promise<{ w: DeltaTableWriter; r: Awaited<ReturnType<typeof openRunner>> }> {
    const w = await DeltaTableWriter.create(path.join(dir, name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(v1, opts);
    const m = buildMapping({ name: name.replaceAll('_', '-'), source: w.path, target: name, key: ['id'], batch: { maxRows: 10 } });
    const r = await openRunner(m, db().url);
    try {
      await onThread(thread, () => r.runner.run({ mode: 'initial' }));
    } catch (e) {
      await r.close();
      throw e;
    }
    return { w, r };
  }

  async function targetRows(table: string): Promise<Array<{ id: string; name: string }>> {
    const pg = await import('pg');
    const c = new pg.default.Client({ connectionString: db().url });
    await c.connect();
    try {
      return (await c.query<{ id: string; name: string }>(`SELECT id, name FROM ${table} ORDER BY id COLLATE "C"`)).rows;
    } finally {
      await c.end();
    }
  }
  const sorted = (rows: Row[]): Array<{ id: string; name: string }> =>
    rows.map((r) => ({ id: r.id as string, name: r.name as string })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  for (const thread of THREADS) {
    it(`(${thread} thread) an overwrite read as 290 inserts and 300 deletes in about 60 parts: every key kept, changed or deleted as the new version says, none lost`, async () => {
      const name = `recur_net_${thread}`;
      const v1: Row[] = [];
      for (let i = 0; i < 300; i++) v1.push(row(i));
      const { w, r } = await loadedTable(name, thread, v1, { rowsPerFile: 50 });
      try {
        // v2 rewrites the table (no change data files: the feed reads every old row as a
        // delete and every new row as an insert, in one commit): 30 keys gone, 150 renamed,
        // 120 the same, 20 new.
        const v2: Row[] = [];
        for (let i = 0; i < 320; i++) {
          if (i < 300 && i % 10 === 7) continue;
          v2.push(row(i, i % 2 === 0 ? `renamed${i}` : `n${i}`));
        }
        await w.overwrite(v2, { rowsPerFile: 40 });
        const res = await onThread(thread, () => r.runner.run({}));
        assert.equal(res.toVersion, 2);
        assert.equal(res.batches, 1, 'one transaction');
        assert.equal(res.rowsRead, 590);
        assert.equal(res.deleted, 30);
        assert.equal(res.inserted, 20);
        assert.deepEqual(await targetRows(name), sorted(v2));
      } finally {
        await r.close();
      }
    });

    it(`(${thread} thread) an update swapping the keys of rows 150 apart: each key is upserted in one part and removed in another, in both orders; every key ends with its partner's row`, async () => {
      const name = `recur_swap_${thread}`;
      const v1: Row[] = [];
      for (let i = 0; i < 300; i++) v1.push(row(i));
      const { w, r } = await loadedTable(name, thread, v1, { rowsPerFile: 300 });
      try {
        // v2: row i (i < 150) takes key i + 150 and row i + 150 takes key i. The change data
        // lists row i first (preimage of key i, postimage of key i + 150) and row i + 150
        // about 15 parts later (preimage of key i + 150, postimage of key i).
        const partner = (i: number): number => (i < 150 ? i + 150 : i - 150);
        const ids = new Map(v1.map((_, i) => [id(i), i]));
        await w.updateWhere(() => true, (x) => ({ ...x, id: id(partner(ids.get(x.id as string) as number)) }), { rowsPerFile: 300 });
        const res = await onThread(thread, () => r.runner.run({}));
        assert.equal(res.toVersion, 2);
        assert.equal(res.rowsRead, 600);
        assert.equal(res.deleted, 0);
        assert.equal(res.inserted, 0);
        const expected: Row[] = [];
        for (let i = 0; i < 300; i++) expected.push({ id: id(i), name: `n${partner(i)}` });
        assert.deepEqual(await targetRows(name), sorted(expected));
      } finally {
        await r.close();
      }
    });

    it(`(${thread} thread) keys written twice in one commit, in parts far apart, are refused as duplicate keys naming them; nothing is applied`, async () => {
      const name = `recur_dup_${thread}`;
      const { w, r } = await loadedTable(name, thread, [row(0), row(1)]);
      try {
        // v2 appends 200 new keys; 客户6 comes again 150 rows later, 😀11 again 185 rows later.
        const v2: Row[] = [];
        for (let i = 2; i < 202; i++) v2.push(row(i));
        v2.splice(156, 0, row(6, 'again'));
        v2.push(row(11, 'again'));
        await w.append(v2, { rowsPerFile: 1000 });
        const err = await expectSyncError(onThread(thread, () => r.runner.run({})), { kind: 'mapping', version: 2, setting: 'duplicateKeys', table: w.path, hint: /"duplicateKeys": "last-wins"/ });
        assert.match(err.message, /2 rows repeat a key written earlier in the same commit \(version 2: id="客户6"; id="😀11"\)/);
        assert.equal((await r.runner.status()).checkpoint?.version, 1n);
        assert.deepEqual(await targetRows(name), sorted([row(0), row(1)]));
      } finally {
        await r.close();
      }
    });
  }
});
