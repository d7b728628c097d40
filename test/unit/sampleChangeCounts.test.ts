import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applySampleChanges, createCustomerProfilesTable, customerId, sampleChangeCounts } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';

describe('Change Sample: the counts it reports are read from the change feed', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sample-counts-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a MERGE whose "update" finds its customer gone counts it as an insert', async () => {
    const table = path.join(dir, 'customer_profiles');
    await createCustomerProfilesTable(table, { rows: 200 });
    const first = await applySampleChanges(table);
    assert.deepEqual(await sampleChangeCounts(table, first), { inserted: 3, updated: 3, deleted: 2 });
    // The next round upgrades customers 25, 32 and 39 (base 4 + 21): delete 32 first.
    const w = await DeltaTableWriter.open(table);
    await w.delete('customer_id', [customerId(32)]);
    const second = await applySampleChanges(table);
    assert.deepEqual(await sampleChangeCounts(table, second), { inserted: 4, updated: 2, deleted: 2 });
  });
});
