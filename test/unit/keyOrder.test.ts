import assert from 'node:assert/strict';
import { sortByKey } from '../../src/sync/plan/keyOrder';

describe('sortByKey (the order a part\'s upserts are staged in)', () => {
  it('orders by the key columns in turn: numbers and bigints by value, strings by code unit, nulls last', () => {
    const rows = [
      { a: 2n, b: 'b', v: 1 },
      { a: 10, b: 'a', v: 2 },
      { a: 2, b: 'B', v: 3 },
      { a: null, b: 'a', v: 4 },
      { a: 2n, b: 'a', v: 5 },
      { a: -1, b: null, v: 6 },
    ];
    assert.deepEqual(sortByKey(rows, ['a', 'b']).map((r) => r.v), [6, 3, 5, 1, 2, 4]);
  });

  it('one key column: strings in code unit order (the C collation\'s), the rows themselves kept', () => {
    const rows = ['cust_10', 'cust_09', 'Cust_50', 'cust_1'].map((k) => ({ k, payload: { k } }));
    const sorted = sortByKey([...rows], ['k']);
    assert.deepEqual(sorted.map((r) => r.k), ['Cust_50', 'cust_09', 'cust_1', 'cust_10']);
    for (const r of sorted) assert.ok(rows.includes(r));
  });
});
