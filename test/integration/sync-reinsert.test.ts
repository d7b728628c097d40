import assert from 'node:assert/strict';
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
 * Issue 11, duplicate keys across versions: a version that INSERTS a key the table already
 * holds (inserted earlier, never deleted) makes the Delta table hold two rows for that key,
 * which the target (one row per key) cannot represent. Refused by default, naming table,
 * version, key column and keys; `duplicateKeys: "last-wins"` applies it as an update. A
 * re-insert (the key deleted first, in an earlier version, an earlier run or the same
 * version) is not a duplicate.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
];

const row = (id: number, name = `n${id}`): Row => ({ id: BigInt(id), name });

type Thread = 'worker' | 'main';

describe('an insert of a key the table already holds (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_reinsert');
  let dir: string;

  before(async () => {
    dir = await tempDir();
  });

  async function newTable(name: string, first: Row[] = [row(1), row(2)]): Promise<DeltaTableWriter> {
    const w = await DeltaTableWriter.create(path.join(dir, name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(first); // v1
    return w;
  }

  async function query<T>(sql: string): Promise<T[]> {
    const pg = await import('pg');
    const c = new pg.default.Client({ connectionString: db().url });
    await c.connect();
    try {
      return (await c.query(sql)).rows as T[];
    } finally {
      await c.end();
    }
  }

  const targetRows = (table: string): Promise<Array<{ id: string; name: string }>> => query(`SELECT id::text AS id, name FROM ${table} ORDER BY id, name`);

  /** Opens a runner for a fresh table; `thread` picks where the Change Data Feed is read. */
  async function withRunner(name: string, w: DeltaTableWriter, overrides: MappingOverrides, thread: Thread, fn: (r: OpenedRunner) => Promise<void>): Promise<void> {
    const m = buildMapping({ name: name.replace(/_/g, '-'), source: w.path, target: name, key: ['id'], ...overrides });
    const r = await openRunner(m, db().url);
    const before = process.env.DELTA_NEON_SYNC_READ_THREAD;
    process.env.DELTA_NEON_SYNC_READ_THREAD = thread; // 'worker' even for small reads
    try {
      await fn(r);
    } finally {
      if (before === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
      else process.env.DELTA_NEON_SYNC_READ_THREAD = before;
      await r.close();
    }
  }

  for (const thread of ['worker', 'main'] as const) {
    for (const parts of [false, true]) {
      const how = `read on the ${thread} thread${parts ? ', the version applied in parts' : ''}`;

      it(`is refused by default, naming table, version, key column and keys; target and checkpoint stay, a rerun fails the same way (${how})`, async () => {
        const name = `re_refuse_${thread}${parts ? '_parts' : ''}`;
        const w = await newTable(name);
        await withRunner(name, w, parts ? { batch: { maxRows: 3 } } : {}, thread, async (r) => {
          await r.runner.run({ mode: 'initial' });
          // v2: key 2 again (held since v1), new keys around it (in parts mode they span parts).
          await w.append(parts ? [row(3), row(4), row(5), row(6), row(2, 'again'), row(7), row(8)] : [row(2, 'again'), row(3)]);
          for (let attempt = 0; attempt < 2; attempt++) {
            const err = await expectSyncError(r.runner.run({}), { kind: 'mapping', version: 2, setting: 'duplicateKeys', table: w.path, hint: /"duplicateKeys": "last-wins"/ });
            assert.match(err.message, /version 2\b/);
            assert.match(err.message, /key column id\b/);
            assert.match(err.message, /id=2\b/);
            assert.match(err.message, /public\.re_refuse/);
            assert.doesNotMatch(err.message, /id=3\b/);
            assert.equal((await r.runner.status()).checkpoint?.version, 1n);
            assert.deepEqual(await targetRows(name), [{ id: '1', name: 'n1' }, { id: '2', name: 'n2' }]);
          }
        });
      });
    }

    it(`the hint works: with "duplicateKeys": "last-wins" the insert is applied as an update (read on the ${thread} thread)`, async () => {
      const name = `re_last_${thread}`;
      const w = await newTable(name);
      await withRunner(name, w, { duplicateKeys: 'last-wins' }, thread, async (r) => {
        await r.runner.run({ mode: 'initial' });
        await w.append([row(2, 'again'), row(3)]); // v2
        const res = await r.runner.run({});
        assert.equal(res.toVersion, 2);
        assert.equal(res.inserted, 1);
        assert.equal(res.updated, 1);
        assert.deepEqual(await targetRows(name), [{ id: '1', name: 'n1' }, { id: '2', name: 'again' }, { id: '3', name: 'n3' }]);
      });
    });

    it(`a key inserted twice by two versions of one batch is refused, naming the second version (read on the ${thread} thread)`, async () => {
      const name = `re_twice_${thread}`;
      const w = await newTable(name);
      await withRunner(name, w, {}, thread, async (r) => {
        await r.runner.run({ mode: 'initial' });
        await w.append([row(3, 'a')]); // v2
        await w.append([row(3, 'b'), row(4)]); // v3
        const err = await expectSyncError(r.runner.run({}), { kind: 'mapping', version: 3, setting: 'duplicateKeys', table: w.path });
        assert.match(err.message, /id=3\b/);
        assert.equal((await r.runner.status()).checkpoint?.version, 1n);
        assert.deepEqual(await targetRows(name), [{ id: '1', name: 'n1' }, { id: '2', name: 'n2' }]);
      });
    });

    it(`... and the same when each version is its own transaction: the first commits, the second is refused (read on the ${thread} thread)`, async () => {
      const name = `re_twice_tx_${thread}`;
      const w = await newTable(name);
      await withRunner(name, w, { batch: { maxRows: 1 } }, thread, async (r) => {
        await r.runner.run({ mode: 'initial' });
        await w.append([row(3, 'a')]); // v2
        await w.append([row(3, 'b'), row(4)]); // v3
        await expectSyncError(r.runner.run({}), { kind: 'mapping', version: 3, setting: 'duplicateKeys', message: /id=3\b/ });
        assert.equal((await r.runner.status()).checkpoint?.version, 2n);
        assert.deepEqual(await targetRows(name), [{ id: '1', name: 'n1' }, { id: '2', name: 'n2' }, { id: '3', name: 'a' }]);
      });
    });

    for (const soft of [false, true]) {
      it(`a key inserted again, then moved away (its key changed) later in the batch, is refused though the net change is a ${soft ? 'soft ' : ''}delete (read on the ${thread} thread)`, async () => {
        const name = `re_gone_${soft ? 'soft_' : ''}${thread}`;
        const w = await newTable(name);
        await withRunner(name, w, soft ? { deletes: { mode: 'soft-delete', column: 'deleted', kind: 'boolean' } } : {}, thread, async (r) => {
          await r.runner.run({ mode: 'initial' });
          await w.append([row(2, 'again')]); // v2: the table holds key 2 twice
          await w.updateWhere((x) => x.name === 'again', (x) => ({ ...x, id: 9n })); // v3: the second row becomes key 9
          await expectSyncError(r.runner.run({}), { kind: 'mapping', version: 2, setting: 'duplicateKeys', message: /id=2\b/ });
          assert.equal((await r.runner.status()).checkpoint?.version, 1n);
          assert.deepEqual((await targetRows(name)).map((x) => x.id), ['1', '2']);
        });
      });
    }

    it(`an update that changes a key to one the table holds is refused too (read on the ${thread} thread)`, async () => {
      const name = `re_rekey_${thread}`;
      const w = await newTable(name);
      await withRunner(name, w, {}, thread, async (r) => {
        await r.runner.run({ mode: 'initial' });
        await w.updateWhere((x) => x.id === 1n, (x) => ({ ...x, id: 2n, name: 'moved' })); // v2: two rows with id 2
        await expectSyncError(r.runner.run({}), { kind: 'mapping', version: 2, setting: 'duplicateKeys', message: /id=2\b/ });
        assert.equal((await r.runner.status()).checkpoint?.version, 1n);
      });
    });
  }

  describe('re-inserts and other inserts that are not duplicates keep working', () => {
    for (const thread of ['worker', 'main'] as const) {
      it(`a key deleted by an earlier run, then inserted (read on the ${thread} thread)`, async () => {
        const name = `re_ok_runs_${thread}`;
        const w = await newTable(name);
        await withRunner(name, w, {}, thread, async (r) => {
          await r.runner.run({ mode: 'initial' });
          await w.delete('id', [2n]); // v2
          await r.runner.run({});
          await w.append([row(2, 'back')]); // v3
          const res = await r.runner.run({});
          assert.equal(res.inserted, 1);
          assert.deepEqual(await targetRows(name), [{ id: '1', name: 'n1' }, { id: '2', name: 'back' }]);
        });
      });

      it(`deleted and re-inserted by versions of one batch, also after an update, and a new key inserted, deleted and inserted again (read on the ${thread} thread)`, async () => {
        const name = `re_ok_batch_${thread}`;
        const w = await newTable(name);
        await withRunner(name, w, {}, thread, async (r) => {
          await r.runner.run({ mode: 'initial' });
          await w.update('id', [row(2, 'upd')]); // v2
          await w.delete('id', [2n]); // v3
          await w.append([row(2, 'back'), row(3, 'a')]); // v4
          await w.delete('id', [3n]); // v5
          await w.append([row(3, 'b')]); // v6
          const res = await r.runner.run({});
          assert.equal(res.toVersion, 6);
          assert.deepEqual(await targetRows(name), [{ id: '1', name: 'n1' }, { id: '2', name: 'back' }, { id: '3', name: 'b' }]);
        });
      });

      for (const parts of [false, true]) {
        it(`deleted and inserted within one version (a writer without change files: remove + add) (read on the ${thread} thread${parts ? ', in parts' : ''})`, async () => {
          const name = `re_ok_same_${thread}${parts ? '_parts' : ''}`;
          const first = parts ? [1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => row(i)) : [row(1), row(2), row(3)];
          const w = await newTable(name, first);
          await withRunner(name, w, parts ? { batch: { maxRows: 3 } } : {}, thread, async (r) => {
            await r.runner.run({ mode: 'initial' });
            // v2: the file is removed and rewritten without key 3: every other key is a delete + insert.
            await w.delete('id', [3n], { writeCdc: false });
            const res = await r.runner.run({});
            assert.equal(res.toVersion, 2);
            assert.deepEqual((await targetRows(name)).map((x) => x.id), first.filter((x) => x.id !== 3n).map((x) => String(x.id)));
          });
        });
      }

      it(`soft deletes: a key marked deleted, then inserted again, is live again (runs apart and in one batch) (read on the ${thread} thread)`, async () => {
        const name = `re_ok_soft_${thread}`;
        const w = await newTable(name);
        await withRunner(name, w, { deletes: { mode: 'soft-delete', column: 'deleted', kind: 'boolean' } }, thread, async (r) => {
          await r.runner.run({ mode: 'initial' });
          await w.delete('id', [2n]); // v2
          await r.runner.run({});
          assert.deepEqual(await query(`SELECT id::text AS id, deleted FROM ${name} ORDER BY id`), [{ id: '1', deleted: false }, { id: '2', deleted: true }]);
          await w.append([row(2, 'back')]); // v3
          await r.runner.run({});
          await w.delete('id', [1n]); // v4
          await w.append([row(1, 'back')]); // v5
          await r.runner.run({});
          assert.deepEqual(await query(`SELECT id::text AS id, name, deleted FROM ${name} ORDER BY id`), [
            { id: '1', name: 'back', deleted: false },
            { id: '2', name: 'back', deleted: false },
          ]);
          // A live row is still a duplicate under soft deletes.
          await w.append([row(2, 'dup')]); // v6
          await expectSyncError(r.runner.run({}), { kind: 'mapping', version: 6, setting: 'duplicateKeys', message: /id=2\b/ });
        });
      });

      it(`deletes: ignore keeps deleted rows in the target, so a re-insert updates them (read on the ${thread} thread)`, async () => {
        const name = `re_ok_ignore_${thread}`;
        const w = await newTable(name);
        await withRunner(name, w, { deletes: { mode: 'ignore' } }, thread, async (r) => {
          await r.runner.run({ mode: 'initial' });
          await w.delete('id', [2n]); // v2
          await r.runner.run({});
          await w.append([row(2, 'back')]); // v3
          await r.runner.run({});
          assert.deepEqual(await targetRows(name), [{ id: '1', name: 'n1' }, { id: '2', name: 'back' }]);
        });
      });

      it(`the first incremental after an initial load (at the latest version and with --to-version), then a --to-version incremental (read on the ${thread} thread)`, async () => {
        const name = `re_ok_overlap_${thread}`;
        const w = await newTable(name);
        await w.append([row(3)]); // v2
        await w.append([row(4)]); // v3
        await w.append([row(5)]); // v4
        await withRunner(name, w, {}, thread, async (r) => {
          await r.runner.run({ mode: 'initial', toVersion: 2 });
          const a = await r.runner.run({ toVersion: 3 });
          assert.equal(a.inserted, 1);
          const b = await r.runner.run({});
          assert.equal(b.inserted, 1);
          await w.append([row(6)]); // v5
          await r.runner.run({ mode: 'initial' });
          await w.append([row(7)]); // v6
          const c = await r.runner.run({});
          assert.equal(c.inserted, 1);
          assert.deepEqual((await targetRows(name)).map((x) => x.id), ['1', '2', '3', '4', '5', '6', '7']);
        });
      });

      it(`a range re-applied after the checkpoint was set back by hand is harmless: inserts of versions committed before are not refused (read on the ${thread} thread)`, async () => {
        const name = `re_ok_rewind_${thread}`;
        const w = await newTable(name);
        await withRunner(name, w, { batch: { maxRows: 1 } }, thread, async (r) => {
          await r.runner.run({ mode: 'initial' });
          await w.append([row(3)]); // v2
          await w.update('id', [row(3, 'upd')]); // v3
          await w.append([row(4)]); // v4
          await r.runner.run({});
          await query(`UPDATE delta_neon_sync.checkpoints SET version = 1 WHERE pipeline = '${name.replace(/_/g, '-')}'`);
          const redo = await r.runner.run({});
          assert.equal(redo.toVersion, 4);
          assert.deepEqual(await targetRows(name), [{ id: '1', name: 'n1' }, { id: '2', name: 'n2' }, { id: '3', name: 'upd' }, { id: '4', name: 'n4' }]);
        });
      });

      it(`a new initial load starts over: versions applied before it (here with last-wins) no longer excuse a duplicate insert (read on the ${thread} thread)`, async () => {
        const name = `re_reload_${thread}`;
        const w = await newTable(name);
        await w.append([row(2, 'again')]); // v2: a duplicate
        await withRunner(name, w, { duplicateKeys: 'last-wins' }, thread, async (r) => {
          await r.runner.run({ mode: 'initial', toVersion: 1 });
          await r.runner.run({}); // applied through v2
        });
        await withRunner(name, w, {}, thread, async (r) => {
          await r.runner.run({ mode: 'initial', toVersion: 1 });
          await expectSyncError(r.runner.run({}), { kind: 'mapping', version: 2, setting: 'duplicateKeys', message: /id=2\b/ });
          assert.deepEqual(await targetRows(name), [{ id: '1', name: 'n1' }, { id: '2', name: 'n2' }]);
        });
      });

      it(`a batch retried after a failure is applied once, its inserts not mistaken for duplicates (read on the ${thread} thread)`, async () => {
        const name = `re_ok_retry_${thread}`;
        const w = await newTable(name);
        await withRunner(name, w, { batch: { maxRows: 1 } }, thread, async (r) => {
          await r.runner.run({ mode: 'initial' });
          await w.append([row(3)]); // v2: commits
          await w.append([row(4), row(5)]); // v3: fails the first time
          await query(`CREATE FUNCTION ${name}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = 5 THEN RAISE EXCEPTION 'not now'; END IF; RETURN NEW; END $$`);
          await query(`CREATE TRIGGER refuse BEFORE INSERT ON ${name} FOR EACH ROW EXECUTE FUNCTION ${name}_refuse()`);
          await assert.rejects(r.runner.run({}), /not now/);
          assert.equal((await r.runner.status()).checkpoint?.version, 2n);
          await query(`DROP TRIGGER refuse ON ${name}`);
          const res = await r.runner.run({});
          assert.equal(res.fromVersion, 3);
          assert.equal(res.inserted, 2);
          assert.deepEqual((await targetRows(name)).map((x) => x.id), ['1', '2', '3', '4', '5']);
        });
      });
    }
  });
});
