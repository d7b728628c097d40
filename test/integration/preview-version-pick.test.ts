import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { openSource } from '../../src/sync/open/openSource';
import type { PreviewReport } from '../../src/sync/ports/reports';
import { RunnerPreviewSource, previewColumns } from '../../src/views/RunnerPreviewSource';
import { long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { checkpointVersion } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * The Preview's version picker (issue 13): the plan recomputed up to a chosen version
 * shows that version's changes only, and Apply syncs exactly up to it. Real Delta table,
 * real server, the extension's RunnerPreviewSource over a real runner.
 */
const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
];
const rows = (a: number, b: number): Row[] => Array.from({ length: b - a + 1 }, (_, i) => ({ id: BigInt(a + i), name: `n${a + i}` }));

describe('preview: pick the version to preview and sync up to (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('preview_pick');

  it('offers the versions after the checkpoint, recomputes the plan up to the one picked, and Apply stops there', async () => {
    const w = await DeltaTableWriter.create(path.join(await tempDir(), 'pick'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(rows(1, 10)); // v1
    const m = buildMapping({ name: 'pick', source: w.path, target: 'pick_t', key: ['id'] });
    const r = await openRunner(m, db().url);
    const source = await openSource(m.source);
    try {
      await r.runner.run({});
      await w.append(rows(11, 15)); // v2: 5 inserts
      await w.append(rows(16, 30)); // v3: 15 inserts
      const report = await r.runner.preview({ limit: 50, offset: 0, checks: true });
      const columns = await previewColumns(m, source, report.toVersion, ['id']);
      let applied: PreviewReport | undefined;
      const p = new RunnerPreviewSource(m, report, columns, r.runner, async (x) => {
        applied = x;
        await r.runner.run({ mode: x.mode, toVersion: x.toVersion });
      }, () => undefined, undefined, undefined, { columnsAt: (v, key) => previewColumns(m, source, v, key), firstLimit: 50 });
      assert.deepEqual(p.summary.versionRange, { min: 2, max: 3 });
      assert.equal(p.summary.inserts, 20);

      await p.retarget(2);
      assert.equal(p.summary.toVersion, 2);
      assert.equal(p.summary.inserts, 5);
      const page = await p.page('all', 0, 50);
      assert.deepEqual(page.rows.map((x) => x.cells[0]), ['11', '12', '13', '14', '15']);
      assert.deepEqual(p.summary.versionRange, { min: 2, max: 3 }, 'the picker still offers the latest');

      await p.apply();
      assert.equal(applied?.toVersion, 2);
      assert.equal(await checkpointVersion(db().url, 'pick'), 2);
      assert.equal((await r.pool.query('SELECT count(*)::int AS n FROM pick_t')).rows[0].n, 15);
      await assert.rejects(p.retarget(7), /Version 7 cannot end this plan: pick one from 2 to 3/);
    } finally {
      await r.close();
    }
  });
});
