import assert from 'node:assert/strict';
import type { Row } from '../../src/sync/delta/types';
import { applyChanges } from '../../src/sync/postgres/applyChanges';
import { copyRows } from '../../src/sync/postgres/copyRows';
import { initialLoad } from '../../src/sync/postgres/initialLoad';
import { defaultTargetColumns } from '../../src/sync/postgres/renderCreateTable';
import { field, long, string } from '../builders/deltaFields';
import { useTargetPool } from '../helpers/postgres';

const fields = [field('id', string(), { nullable: false }), field('note', string()), field('n', long())];
const columns = defaultTargetColumns(fields);
const key = ['id'];
const row = (i: number, note = `note ${i}`): Row => ({ id: `k${String(i).padStart(6, '0')}`, note, n: BigInt(i) });

/** The paths the speed work added: index-probe deletes on an analyzed target, and COPY chunking. */
describe('postgres target: apply fast paths (real server)', function () {
  this.timeout(120_000);
  const { pool, withClient } = useTargetPool('speed', 3);

  it('deletes few keys from an analyzed target by index probes, applies the right rows, and puts the join settings back', async () => {
    const table = { name: 'probe_target' };
    const all: Row[] = [];
    for (let i = 0; i < 4000; i++) all.push(row(i));
    await initialLoad(pool(), { table, columns, key, rows: [all], mode: 'swap', checkpoint: { pipeline: 'speed', source: 's', version: 0, commitTimestamp: null } });
    await pool().query('VACUUM ANALYZE probe_target');
    const deleted = [5, 77, 1234, 3999, 4500].map((i) => ({ id: row(i).id }));
    const upserts = [row(10, 'changed'), row(11), row(5000, 'new')];
    await withClient(async (c) => {
      // A session setting the apply must not leave changed.
      await c.query('SET enable_mergejoin = off');
      const r = await applyChanges(c, { table, columns, key, upserts: [upserts], deletes: [deleted], checkpoint: { pipeline: 'speed', source: 's', version: 1, commitTimestamp: null } });
      assert.deepEqual({ deleted: r.deleted, deleteMissing: r.deleteMissing, inserted: r.inserted, updated: r.updated, unchanged: r.unchanged }, { deleted: 4, deleteMissing: 1, inserted: 1, updated: 1, unchanged: 1 });
      const settings = (await c.query<{ h: string; m: string }>(`SELECT current_setting('enable_hashjoin') AS h, current_setting('enable_mergejoin') AS m`)).rows[0];
      assert.deepEqual(settings, { h: 'on', m: 'off' });
      // The per-phase timings the runner logs: every phase reported, in whole milliseconds
      // (durations themselves are for benchmarks, not tests).
      const t = r.timings;
      assert.ok(t, 'applyChanges reports its timings');
      assert.deepEqual(Object.keys(t).sort(), ['commitMs', 'deleteMs', 'prepareMs', 'stageMs', 'upsertMs']);
      for (const [phase, ms] of Object.entries(t)) assert.ok(Number.isInteger(ms) && ms >= 0, `${phase} = ${ms}`);
    });
    const ids = (await pool().query<{ id: string }>(`SELECT id FROM probe_target WHERE id = ANY($1::text[]) ORDER BY id`, [[...deleted.map((d) => d.id), row(10).id, row(5000).id]])).rows.map((x) => x.id);
    assert.deepEqual(ids, [row(10).id, row(5000).id]);
    assert.equal((await pool().query(`SELECT note FROM probe_target WHERE id = $1`, [row(10).id])).rows[0].note, 'changed');
    assert.equal((await pool().query(`SELECT count(*)::int AS n FROM probe_target`)).rows[0].n, 4000 - 4 + 1);
  });

  it('copies rows across chunk boundaries exactly, including multi-byte text and a line longer than a chunk', async () => {
    await pool().query('CREATE TABLE chunked (id text PRIMARY KEY, note text, n int8)');
    const rows: Row[] = [];
    for (let i = 0; i < 3000; i++) rows.push(row(i, i % 7 === 0 ? `ü€😀\ttab\\${i}` : `plain ${i}`));
    rows.push(row(3000, '€'.repeat(5000)));
    rows.push(row(3001, 'after the long one'));
    const n = await withClient((c) => copyRows(c, { name: 'chunked' }, columns, [rows.slice(0, 1700), rows.slice(1700)], { chunkBytes: 1024 }));
    assert.equal(n, rows.length);
    const got = (await pool().query<{ id: string; note: string; n: string }>('SELECT id, note, n::text AS n FROM chunked ORDER BY id')).rows;
    assert.deepEqual(got, rows.map((r) => ({ id: r.id, note: r.note, n: String(r.n) })));
  });
});
