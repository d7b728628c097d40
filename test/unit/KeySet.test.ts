import { strict as assert } from 'node:assert';
import { mulberry32 } from '../../src/fixtures/prng';
import { KeySet } from '../../src/sync/plan/KeySet';
import type { NetKey } from '../../src/sync/plan/netChanges';

/** Keys a NetChangeBuffer makes: one-column primitives of every JS type, and encodeKey strings. */
function randomKey(next: () => number): NetKey {
  const pick = Math.floor(next() * 7);
  const small = Math.floor(next() * 300);
  switch (pick) {
    case 0:
      return `cust_${String(small).padStart(7, '0')}`;
    case 1:
      // Code units above 0xff (Cyrillic, CJK) and a surrogate pair, some sharing a Latin-1 prefix.
      return ['ключ', '客户', '😀', 'k\u0100', 'k'][small % 5] + String(small);
    case 2:
      return small % 3 === 0 ? -0 : small % 7 === 0 ? Number.NaN : small / 4;
    case 3:
      return BigInt(small) * 10n ** 18n - 1n;
    case 4:
      return small % 2 === 0;
    case 5:
      // Lone surrogates: distinct strings that a UTF-8 encoding would make equal (both U+FFFD).
      return ['\ud800', '\udc00', '\ud800x', '\udfffx'][small % 4] + String(small % 5);
    default:
      return String(small);
  }
}

describe('plan: KeySet (the per-version key sets of planSteps, off the JS heap)', () => {
  it('agrees with a Set (SameValueZero) on add, has and delete over random keys of every type', () => {
    const next = mulberry32(7);
    const ks = new KeySet();
    const ref = new Set<NetKey>();
    for (let i = 0; i < 40_000; i++) {
      const key = randomKey(next);
      const op = next();
      if (op < 0.55) {
        const isNew = !ref.has(key);
        ref.add(key);
        assert.equal(ks.add(key), isNew, `add ${String(key)}`);
      } else if (op < 0.8) assert.equal(ks.has(key), ref.has(key), `has ${String(key)}`);
      else assert.equal(ks.delete(key), ref.delete(key), `delete ${String(key)}`);
      assert.equal(ks.size, ref.size);
    }
    for (const key of ref) assert.ok(ks.has(key), `kept ${String(key)}`);
  });

  it('keeps apart keys that differ only in type or in code units a UTF-8 encoding would merge', () => {
    const ks = new KeySet();
    const keys: NetKey[] = ['1', 1, 1n, true, '', 'true', '\ud800', '\udc00', '\ufffd', 'é', '\u00e9\u0000', 'k\u0100', 'kĀ', 'k\u0001\u0000'];
    const distinct = new Set(keys);
    for (const k of keys) ks.add(k);
    assert.equal(ks.size, distinct.size);
    assert.ok(ks.has(-0) === false && ks.has(0) === false);
    ks.add(0);
    assert.ok(ks.has(-0), '-0 and 0 are one key, as in a Set');
    ks.add(Number.NaN);
    assert.ok(ks.has(Number.NaN));
    assert.equal(ks.add('\ud800'), false);
    assert.equal(ks.add('\udbff'), true);
  });

  it('holds a million keys, stays exact through its rehashes, and costs far less than a Set of them', () => {
    const ks = new KeySet();
    const n = 1_000_000;
    for (let i = 0; i < n; i++) assert.ok(ks.add(`cust_${String(i).padStart(7, '0')}`));
    assert.equal(ks.size, n);
    for (let i = 0; i < n; i += 997) assert.equal(ks.add(`cust_${String(i).padStart(7, '0')}`), false);
    assert.equal(ks.has(`cust_${String(n).padStart(7, '0')}`), false);
    for (let i = 0; i < n; i += 2) ks.delete(`cust_${String(i).padStart(7, '0')}`);
    assert.equal(ks.size, n / 2);
    assert.equal(ks.has('cust_0000002'), false);
    assert.equal(ks.has('cust_0000003'), true);
    // 13 bytes a key and its tables, against about 80 bytes of JS heap a key in a Set.
    assert.ok(ks.bytes < 48 * n, `${ks.bytes} bytes for ${n} keys`);
  });
});
