import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import type { ChangeRow, Row } from '../../src/sync/delta/types';
import { CUSTOMER_KEY, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { NetChangeBuffer, estimateRowBytes } from '../../src/sync/plan/netChanges';
import { cdf } from '../builders/changeRows';

/**
 * NetChangeBuffer.bytes is a cheap estimate (sampled upserts): it must stay close to the
 * sum of estimateRowBytes over the rows it holds, on real rows, and what it adds for an
 * entry must be what it takes away when that entry is replaced or drained.
 */
describe('NetChangeBuffer.bytes on real change rows', function () {
  this.timeout(120_000);
  let tmp: string;
  let changes: ChangeRow[];

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'net-bytes-'));
    const dir = path.join(tmp, 'customers');
    await createCustomerProfilesTable(dir, { rows: 5000 });
    const table = await DeltaTable.open(dir);
    changes = [];
    for await (const b of table.changes({ startingVersion: 0 })) changes.push(...b);
  });

  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  /** Sum of estimateRowBytes over what a drain returns: the exact measure the estimate approximates. */
  function exactBytes(net: { upserts: Row[]; deletes: Row[] }): number {
    let n = 0;
    for (const r of net.upserts) n += estimateRowBytes(r);
    for (const r of net.deletes) n += estimateRowBytes(r);
    return n;
  }

  it('stays within 10% of estimateRowBytes over the rows held, whole feed and in small batches', () => {
    assert.ok(changes.length > 5000, 'the fixture feed has thousands of rows');
    const whole = new NetChangeBuffer([CUSTOMER_KEY]);
    for (const c of changes) whole.add(c);
    const approx = whole.bytes;
    const exact = exactBytes(whole.drain());
    assert.ok(Math.abs(approx - exact) <= exact * 0.1, `estimate ${approx} vs exact ${exact}`);

    // Batches drained every 700 rows: the running mean carries over drains.
    const batched = new NetChangeBuffer([CUSTOMER_KEY]);
    for (let i = 0; i < changes.length; i += 700) {
      for (const c of changes.slice(i, i + 700)) batched.add(c);
      const a = batched.bytes;
      const e = exactBytes(batched.drain());
      assert.ok(Math.abs(a - e) <= e * 0.1, `batch at ${i}: estimate ${a} vs exact ${e}`);
      assert.equal(batched.bytes, 0, 'drain resets bytes');
    }
  });

  it('takes back exactly what it charged: after every upserted key is deleted, bytes is the exact size of the key-only rows', () => {
    const inserts = changes.filter((c) => c.changeType === 'insert');
    assert.ok(inserts.length > 1000, 'enough upserts that most are charged the mean, not measured');
    const b = new NetChangeBuffer([CUSTOMER_KEY]);
    for (const c of inserts) b.add({ ...c, commitVersion: 1 });
    assert.ok(b.bytes > 0);
    for (const c of inserts) b.add(cdf.delete(c.values, 2, c.commitTimestamp));
    const keyOnly = inserts.reduce((n, c) => n + estimateRowBytes({ [CUSTOMER_KEY]: c.values[CUSTOMER_KEY] ?? null }), 0);
    assert.equal(b.bytes, keyOnly);
    const net = b.drain();
    assert.equal(net.upserts.length, 0);
    assert.equal(net.deletes.length, new Set(inserts.map((c) => c.values[CUSTOMER_KEY])).size);
    assert.deepEqual(Object.keys(net.deletes[0]), [CUSTOMER_KEY], 'a delete is a key-only row');
  });
});
