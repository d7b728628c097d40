import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/** A row a target trigger refuses: the error's hint names the setting that helps, and it does. */

const COLS: WriterColumn[] = [
  { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
  { name: 'name', type: { kind: 'primitive', name: 'string' } },
];

function items(a: number, b: number, name = (i: number): string => `item ${i}`): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: BigInt(i), name: name(i) });
  return out;
}

describe('a trigger that refuses a row in an incremental sync (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_trigger_hint');

  it('fails naming the trigger error with a hint to set "deadLetter": true; with it set, the row is set aside and the rest applied', async () => {
    const dir = await tempDir();
    const w = await DeltaTableWriter.create(path.join(dir, 'guarded'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(items(1, 10)); // v1
    const plain = buildMapping({ name: 'guarded', source: w.path, target: 'guarded', key: ['id'] });
    const r = await openRunner(plain, db().url);
    const c = new pg.Client({ connectionString: db().url });
    await c.connect();
    try {
      await r.runner.run({});
      await c.query(`CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.name = 'bad' THEN RAISE EXCEPTION 'name "bad" is not allowed (id %)', NEW.id; END IF; RETURN NEW; END $$`);
      await c.query('CREATE TRIGGER refuse_bad BEFORE INSERT OR UPDATE ON public.guarded FOR EACH ROW EXECUTE FUNCTION refuse_bad()');
      await w.update('id', [...items(3, 3, () => 'bad'), ...items(4, 5, (i) => `item ${i} v2`)]); // v2
      const err = await expectSyncError(r.runner.run({}), { kind: 'target', message: /P0001.*not allowed \(id 3\)/ });
      assert.match(err.hint ?? '', /"deadLetter": true/);
      assert.equal((await r.runner.status()).checkpoint?.version, 1n);
    } finally {
      await r.close();
    }
    // The hint's setting: the refused row is set aside, the others applied, the checkpoint moves.
    const lettered = await openRunner(buildMapping({ name: 'guarded', source: w.path, target: 'guarded', key: ['id'], deadLetter: true }), db().url);
    try {
      const res = await lettered.runner.run({});
      assert.equal(res.deadLettered, 1);
      assert.equal(res.updated, 2);
      const names = await c.query<{ id: string; name: string }>('SELECT id::text AS id, name FROM public.guarded WHERE id IN (3, 4, 5) ORDER BY id');
      assert.deepEqual(names.rows, [{ id: '3', name: 'item 3' }, { id: '4', name: 'item 4 v2' }, { id: '5', name: 'item 5 v2' }]);
      const letters = await c.query<{ key: unknown; sqlstate: string }>(`SELECT key, sqlstate FROM delta_neon_sync.dead_letters WHERE pipeline = 'guarded'`);
      assert.deepEqual(letters.rows, [{ key: { id: '3' }, sqlstate: 'P0001' }]);
      assert.equal((await lettered.runner.status()).checkpoint?.version, 2n);
    } finally {
      await lettered.close();
      await c.end();
    }
  });
});
