import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { SyncError } from '../../src/sync/errors';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * A repair against a snapshot that holds a key twice (rows appended again, as the
 * delta-kernel-rs unshredded-variant table does with ids 0 and 1) is refused as the initial
 * load refuses it, on the worker thread and on the calling thread: before, it found no row
 * to change (the duplicate hashed like the target's row), moved the checkpoint to that
 * version and reported a target unequal to the snapshot. Verify, which counted the
 * duplicate as a second matching row, reported -1 "extra" target rows.
 */
describe('repair and verify: a snapshot with a duplicated key', function () {
  this.timeout(120_000);
  const db = useTestDatabase('repair_dup_keys');

  it('is refused naming the table, version and key; the target and its checkpoint stay as they were (worker and calling thread)', async () => {
    const dir = path.join(await tempDir('repair-dup-'), 'events');
    await fs.mkdir(dir, { recursive: true });
    const w = await DeltaTableWriter.create(dir, {
      columns: [
        { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
        { name: 'name', type: { kind: 'primitive', name: 'string' } },
      ],
    });
    await w.append(Array.from({ length: 40 }, (_, i) => ({ id: BigInt(i), name: `n${i}` })));
    const mapping = buildMapping({ name: 'dup-keys', source: dir, target: 'dup_keys', key: ['id'] });
    const r = await openRunner(mapping, db().url);
    const saved = process.env.DELTA_NEON_SYNC_READ_THREAD;
    try {
      await r.runner.run({ mode: 'initial' });
      // Version 2 appends id 7 again, with the same values.
      await w.append([{ id: 7n, name: 'n7' }]);
      const checkpoint = async (): Promise<string | undefined> =>
        (await r.pool.query<{ version: string }>(`SELECT version::text FROM delta_neon_sync.checkpoints WHERE pipeline = 'dup-keys'`)).rows[0]?.version;
      assert.equal(await checkpoint(), '1');
      for (const thread of ['worker', 'main']) {
        process.env.DELTA_NEON_SYNC_READ_THREAD = thread;
        for (const dryRun of [true, false]) {
          await assert.rejects(r.runner.repair({ dryRun }), (e: unknown) => {
            assert.ok(e instanceof SyncError, String(e));
            assert.equal(e.kind, 'mapping');
            assert.equal(e.version, 2);
            assert.equal(
              e.message,
              `The snapshot of ${dir} at version 2 holds the key (id)=(7) twice: the key (id) is not unique, so the target (one row per key) cannot equal it, and nothing was repaired.`,
              `${thread} thread, dryRun ${dryRun}`,
            );
            assert.match(e.hint ?? '', /unique in the Delta table/);
            return true;
          });
        }
      }
      assert.equal(await checkpoint(), '1');
      const rows = await r.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM dup_keys`);
      assert.equal(rows.rows[0]?.n, '40');
    } finally {
      if (saved === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
      else process.env.DELTA_NEON_SYNC_READ_THREAD = saved;
      await r.close();
    }
  });

  it('verify at a version whose snapshot repeats a key the target holds is refused naming it, not reported as -1 extra rows', async () => {
    const dir = path.join(await tempDir('verify-dup-'), 'events');
    await fs.mkdir(dir, { recursive: true });
    const w = await DeltaTableWriter.create(dir, {
      columns: [
        { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
        { name: 'name', type: { kind: 'primitive', name: 'string' } },
      ],
      configuration: { 'delta.enableChangeDataFeed': 'true' },
    });
    await w.append(Array.from({ length: 10 }, (_, i) => ({ id: BigInt(i), name: `n${i}` })));
    // last-wins lets the sync apply version 2 (id 3 appended again) as an update: the
    // checkpoint reaches a version whose snapshot holds id 3 twice.
    const mapping = buildMapping({ name: 'verify-dup', source: dir, target: 'verify_dup', key: ['id'], duplicateKeys: 'last-wins' });
    const r = await openRunner(mapping, db().url);
    try {
      await r.runner.run({ mode: 'initial' });
      await w.append([{ id: 3n, name: 'again' }]);
      assert.equal((await r.runner.run({})).toVersion, 2);
      await assert.rejects(r.runner.verify(), (e: unknown) => {
        assert.ok(e instanceof SyncError, String(e));
        assert.equal(e.kind, 'mapping');
        assert.equal(e.version, 2);
        assert.equal(
          e.message,
          `The snapshot of ${dir} at version 2 repeats keys that public.verify_dup holds once (1 row more than those keys): the key (id) is not unique, so the target (one row per key) cannot equal it.`,
        );
        return true;
      });
    } finally {
      await r.close();
    }
  });
});
