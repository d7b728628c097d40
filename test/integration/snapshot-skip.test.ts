import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import type { Row } from '../../src/sync/delta/types';
import { resolveActionPath } from '../../src/sync/delta/tablePaths';
import { buildMapping } from '../builders/mappings';
import { sharedTable } from '../helpers/sharedTables';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * DeltaSnapshot.rows({ skip }) leaves out the first rows without opening the files that lie
 * wholly before them (their live counts come from the log's stats), which is how the
 * preview of an initial load pages through a large table without reading it for every page.
 */
async function all(rows: AsyncIterable<Row[]>): Promise<Row[]> {
  const out: Row[] = [];
  for await (const b of rows) out.push(...b);
  return out;
}

/** Rows compared as JSON (bigints as text). */
const json = (rows: Row[]): string => JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? [...v] : v));

describe('reading a snapshot from a row offset', function () {
  this.timeout(120_000);
  let dir: string;
  let tablePath: string;
  before(async () => {
    dir = await tempDir('dns-skip-');
    // 1000 customers in files of 150; v5 has deletion vectors (the sample's DELETE) and a checkpoint.
    tablePath = (await createCustomerProfilesTable(path.join(dir, 'customers'), { rows: 1000, rowsPerFile: 150 })).path;
  });

  it('equals the full stream without its first rows (and with a limit, the next rows only), at file boundaries, inside files, with deletion vectors and past the end', async () => {
    const table = await DeltaTable.open(tablePath);
    for (const version of [1, await table.latestVersion()]) {
      const snap = await table.snapshot({ version });
      const full = await all(snap.rows({ batchSize: 64 }));
      const count = snap.describe().numRows;
      assert.equal(count, full.length, `v${version}: the stats count the live rows`);
      const skips = [0, 1, 149, 150, 151, 299, 300, 333, full.length - 1, full.length, full.length + 10];
      for (const skip of skips) {
        const got = await all(snap.rows({ batchSize: 64, skip }));
        assert.equal(json(got), json(full.slice(skip)), `v${version}, skip ${skip}`);
        // A page: at most `limit` rows from the offset (the reader stops decoding after them).
        for (const limit of [1, 37, 150, 400]) {
          const page = await all(snap.rows({ batchSize: 64, skip, limit }));
          assert.equal(json(page), json(full.slice(skip, skip + limit)), `v${version}, skip ${skip}, limit ${limit}`);
        }
      }
    }
  });

  it('does not open the files wholly before the offset', async () => {
    const copy = path.join(dir, 'customers-copy');
    await fs.cp(tablePath, copy, { recursive: true });
    const table = await DeltaTable.open(copy);
    const snap = await table.snapshot({ version: 1 });
    const full = await all(snap.rows());
    // Remove the first data file: only a read that skips past it can succeed.
    const first = snap.files[0];
    assert.ok(first);
    const firstRows = Number(JSON.parse(first.stats ?? '{}').numRecords);
    await fs.rm(resolveActionPath(copy, first.path, copy));
    const got = await all(snap.rows({ skip: firstRows }));
    assert.equal(json(got), json(full.slice(firstRows)));
    await assert.rejects(all(snap.rows({ skip: firstRows - 1 })), /missing/);
  });

  it('agrees with the full stream on the shared tables written by Spark and delta-rs', async function () {
    let checked = 0;
    const names = ['delta-rs/checkpoint-cdf-table', 'delta-rs/cdf-table', 'delta-rs/table-with-dv-small', 'delta-rs/simple_table', 'delta-kernel-rs/dv-partitioned-with-checkpoint', 'delta-kernel-rs/dv-with-columnmapping', 'delta-kernel-rs/multi-part-checkpoint'];
    for (const name of names) {
      const p = sharedTable(name);
      if (!p) continue;
      const snap = await (await DeltaTable.open(p)).snapshot();
      const full = await all(snap.rows());
      for (const skip of [1, Math.floor(full.length / 2), full.length - 1]) {
        assert.equal(json(await all(snap.rows({ skip }))), json(full.slice(skip)), `${name}, skip ${skip}`);
        assert.equal(json(await all(snap.rows({ skip, limit: 5 }))), json(full.slice(skip, skip + 5)), `${name}, skip ${skip}, limit 5`);
      }
      checked++;
    }
    if (checked === 0) this.skip();
    assert.equal(checked, names.length, 'every listed shared table is there');
  });
});

describe('preview of an initial load into a missing table, page by page (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('snapshot_skip');

  it('has the snapshot count as its total and, at every offset, the rows of the snapshot stream', async () => {
    const dir = await tempDir('dns-skip-preview-');
    const t = await createCustomerProfilesTable(path.join(dir, 'customers'), { rows: 700, rowsPerFile: 100 });
    for (const deletes of [undefined, { mode: 'soft-delete' as const, column: 'deleted', kind: 'boolean' as const }]) {
      const m = buildMapping({ name: `skip-${deletes ? 'soft' : 'plain'}`, source: t.path, target: `never_loaded_${deletes ? 'soft' : 'plain'}`, key: ['customer_id'], ...(deletes ? { deletes } : {}) });
      const r = await openRunner(m, db().url);
      try {
        const whole = await r.runner.preview({ limit: 10_000 });
        assert.equal(whole.targetMissing, true);
        const snap = await (await DeltaTable.open(t.path)).snapshot();
        assert.equal(whole.totals.insert, (await all(snap.rows())).length);
        assert.equal(whole.rows.length, whole.totals.insert);
        for (const offset of [0, 99, 100, 250, whole.totals.insert - 3, whole.totals.insert]) {
          const page = await r.runner.preview({ limit: 7, offset });
          assert.equal(page.totals.insert, whole.totals.insert);
          assert.deepEqual(page.rows, whole.rows.slice(offset, offset + 7), `offset ${offset}`);
        }
      } finally {
        await r.close();
      }
    }
  });
});
