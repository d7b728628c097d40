import assert from 'node:assert/strict';
import * as path from 'node:path';
import { createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { filesOfShare } from '../../src/sync/delta/DeltaSnapshot';
import type { Row } from '../../src/sync/delta/types';
import { tempDir } from '../helpers/syncHarness';

/**
 * DeltaSnapshot.rows({ share }) reads one share of the snapshot's files: the readers of a
 * parallel initial load (initialLoad.copyStreams) each take one, and together they must
 * read every live row exactly once.
 */
async function keys(rows: AsyncIterable<Row[]>): Promise<string[]> {
  const out: string[] = [];
  for await (const b of rows) for (const r of b) out.push(r.customer_id as string);
  return out;
}

describe('reading a snapshot in shares of its files (parallel initial load)', function () {
  this.timeout(120_000);

  it('puts each file in exactly one share, the shares balanced by bytes (largest first to the lightest share)', () => {
    const files = [{ size: 50 }, { size: 10 }, { size: 40 }, { size: 30 }, { size: 20 }, { size: 10 }];
    const shares = [0, 1, 2].map((index) => filesOfShare(files, { index, of: 3 }));
    assert.deepEqual(shares.flat().sort((a, b) => files.indexOf(a) - files.indexOf(b)), files, 'every file once');
    // 50 -> 0, 40 -> 1, 30 -> 2, 20 -> 2 (30 < 40 < 50), 10 -> 1 (40 < 50 = 50), 10 -> 0: 60 / 50 / 50 bytes, in the snapshot's order.
    assert.deepEqual(shares.map((s) => s.map((f) => files.indexOf(f))), [[0, 5], [1, 2], [3, 4]]);
    assert.deepEqual(filesOfShare(files, { index: 0, of: 1 }), files);
    assert.throws(() => filesOfShare(files, { index: 3, of: 3 }), /share 3 of 3/);
  });

  it('reads every live row once across the shares (deletion vectors included), in 1, 2, 3 and more shares than files', async () => {
    const dir = await tempDir('dns-share-');
    // 1000 customers in files of 150; the latest version has deletion vectors (the sample's DELETE).
    const tablePath = (await createCustomerProfilesTable(path.join(dir, 'customers'), { rows: 1000, rowsPerFile: 150 })).path;
    const table = await DeltaTable.open(tablePath);
    const snap = await table.snapshot({ version: await table.latestVersion() });
    const all = (await keys(snap.rows())).sort();
    assert.ok(snap.files.length >= 7 && all.length > 0);
    for (const of of [1, 2, 3, snap.files.length + 2]) {
      const parts = await Promise.all(Array.from({ length: of }, (_, index) => keys(snap.rows({ batchSize: 64, share: { index, of } }))));
      assert.deepEqual(parts.flat().sort(), all, `${of} shares`);
      if (of > 1 && of <= snap.files.length) assert.ok(parts.every((p) => p.length > 0), `every one of ${of} shares has rows`);
    }
    await assert.rejects(async () => keys(snap.rows({ share: { index: 0, of: 2 }, skip: 10 })), /share cannot be combined/);
  });
});
