import { strict as assert } from 'node:assert';
import type { ChangeRow, ChangeType, Row } from '../../src/sync/delta/types';
import { MUST_BE_NEW, NetChangeBuffer } from '../../src/sync/plan/netChanges';
import type { NetChanges } from '../../src/sync/plan/netChanges';
import { planSteps } from '../../src/sync/plan/planSteps';
import type { PlanStep } from '../../src/sync/plan/planSteps';
import { mulberry32 } from '../../src/fixtures/prng';
import { applyDeletePolicy, markerTargetColumn } from '../../src/sync/plan/applyDeletePolicy';
import { projectRow, projectValues, projectNetChanges } from '../../src/sync/plan/projectRow';
import { encodeKey } from '../../src/sync/plan/encodeKey';
import { resolveColumns, keySourceColumns } from '../../src/sync/mapping/resolveColumns';
import { cdf, changeRow } from '../builders/changeRows';
import { decimal, field, long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';

function net(key: string[], changes: ChangeRow[]): NetChanges {
  const b = new NetChangeBuffer(key);
  for (const c of changes) b.add(c);
  return b.drain();
}

describe('plan: NetChangeBuffer semantics', () => {
  it('an insert followed by updates in later versions gives one upsert with the last postimage', () => {
    const r = net(['id'], [
      cdf.insert({ id: 1n, name: 'a' }, 1),
      cdf.updatePreimage({ id: 1n, name: 'a' }, 2),
      cdf.updatePostimage({ id: 1n, name: 'b' }, 2),
      cdf.updatePreimage({ id: 1n, name: 'b' }, 3),
      cdf.updatePostimage({ id: 1n, name: 'c' }, 3),
    ]);
    assert.deepEqual(r.upserts, [{ id: 1n, name: 'c' }]);
    assert.deepEqual(r.deletes, []);
    assert.equal(r.rowsIn, 5);
    assert.equal(r.minVersion, 1);
    assert.equal(r.maxVersion, 3);
  });

  it('an insert followed by a delete in a later version gives a key-only delete', () => {
    const r = net(['id'], [cdf.insert({ id: 7n, name: 'a' }, 1), cdf.delete({ id: 7n, name: 'a' }, 2, 2500)]);
    assert.deepEqual(r.upserts, []);
    assert.deepEqual(r.deletes, [{ id: 7n }]);
    assert.deepEqual(r.deleteTimestamps, [2500]);
  });

  it('a delete and a re-insert of one key in the same version is an upsert, in either arrival order', () => {
    const del = cdf.delete({ id: 1n, name: 'old' }, 4);
    const ins = cdf.insert({ id: 1n, name: 'new' }, 4);
    for (const order of [[del, ins], [ins, del]]) {
      const r = net(['id'], order);
      assert.deepEqual(r.upserts, [{ id: 1n, name: 'new' }]);
      assert.deepEqual(r.deletes, []);
    }
  });

  it('an update whose postimage arrives before its preimage is still an upsert', () => {
    const r = net(['id'], [
      cdf.updatePostimage({ id: 1n, name: 'b' }, 2),
      cdf.updatePreimage({ id: 1n, name: 'a' }, 2),
    ]);
    assert.deepEqual(r.upserts, [{ id: 1n, name: 'b' }]);
    assert.deepEqual(r.deletes, []);
  });

  it('the higher version wins when versions arrive out of order', () => {
    const r1 = net(['id'], [cdf.insert({ id: 1n, name: 'v5' }, 5), cdf.delete({ id: 1n, name: 'v3' }, 3)]);
    assert.deepEqual(r1.upserts, [{ id: 1n, name: 'v5' }]);
    assert.deepEqual(r1.deletes, []);
    const r2 = net(['id'], [
      cdf.delete({ id: 1n, name: 'x' }, 6),
      cdf.updatePostimage({ id: 1n, name: 'v4' }, 4),
      cdf.insert({ id: 1n, name: 'v2' }, 2),
    ]);
    assert.deepEqual(r2.upserts, []);
    assert.deepEqual(r2.deletes, [{ id: 1n }]);
    assert.equal(r2.minVersion, 2);
    assert.equal(r2.maxVersion, 6);
  });

  it('a key change deletes the old key and upserts the new one', () => {
    const r = net(['id'], [
      cdf.updatePreimage({ id: 1n, name: 'a' }, 3),
      cdf.updatePostimage({ id: 2n, name: 'a' }, 3),
    ]);
    assert.deepEqual(r.upserts, [{ id: 2n, name: 'a' }]);
    assert.deepEqual(r.deletes, [{ id: 1n }]);
  });

  it('a key change whose old key is re-used later (same or later version) leaves no delete for it', () => {
    const same = net(['id'], [
      cdf.updatePreimage({ id: 1n, name: 'a' }, 3),
      cdf.insert({ id: 1n, name: 'newcomer' }, 3),
      cdf.updatePostimage({ id: 2n, name: 'a' }, 3),
    ]);
    assert.deepEqual(new Set(same.upserts), new Set([{ id: 1n, name: 'newcomer' }, { id: 2n, name: 'a' }]));
    assert.equal(same.upserts.length, 2);
    assert.deepEqual(same.deletes, []);
    const later = net(['id'], [
      cdf.updatePreimage({ id: 1n, name: 'a' }, 3),
      cdf.updatePostimage({ id: 2n, name: 'a' }, 3),
      cdf.updatePreimage({ id: 2n, name: 'a' }, 4),
      cdf.updatePostimage({ id: 1n, name: 'a' }, 4),
    ]);
    assert.deepEqual(later.upserts, [{ id: 1n, name: 'a' }]);
    assert.deepEqual(later.deletes, [{ id: 2n }]);
  });

  it('two rows swapping keys in one commit give two upserts and no delete', () => {
    const r = net(['id'], [
      cdf.updatePreimage({ id: 1n, name: 'A' }, 2),
      cdf.updatePreimage({ id: 2n, name: 'B' }, 2),
      cdf.updatePostimage({ id: 2n, name: 'A' }, 2),
      cdf.updatePostimage({ id: 1n, name: 'B' }, 2),
    ]);
    assert.equal(r.upserts.length, 2);
    assert.deepEqual(
      r.upserts.find((x) => x.id === 1n),
      { id: 1n, name: 'B' },
    );
    assert.deepEqual(
      r.upserts.find((x) => x.id === 2n),
      { id: 2n, name: 'A' },
    );
    assert.deepEqual(r.deletes, []);
  });

  it('each key appears once in the output, and never in both upserts and deletes', () => {
    const changes: ChangeRow[] = [];
    for (let v = 1; v <= 20; v++) {
      for (let id = 0n; id < 10n; id++) {
        changes.push(v % 3 === 0 && id % 2n === 0n ? cdf.delete({ id, v }, v) : cdf.insert({ id, v }, v));
      }
    }
    const r = net(['id'], changes);
    const keys = [...r.upserts, ...r.deletes].map((x) => x.id);
    assert.equal(new Set(keys).size, keys.length);
    assert.equal(keys.length, 10);
    assert.ok(r.upserts.every((x) => x.v === 20));
  });

  it('keeps bigint keys that differ beyond 2^53 apart', () => {
    const big = 9223372036854775807n;
    const r = net(['id'], [cdf.insert({ id: big, n: 1 }, 1), cdf.insert({ id: big - 1n, n: 2 }, 1)]);
    assert.equal(r.upserts.length, 2);
    assert.equal(r.duplicateKeys, 0);
    // As JS numbers both would be 9223372036854775807 → one key; the encoding must not do that.
    assert.equal(Number(big), Number(big - 1n));
  });

  it('keeps decimal, timestamp, date and binary keys exact', () => {
    const r = net(['k'], [
      cdf.insert({ k: '12345678901234567890123456789012.345678' }, 1),
      cdf.insert({ k: '12345678901234567890123456789012.345679' }, 1),
    ]);
    assert.equal(r.upserts.length, 2);
    const ts = net(['t'], [cdf.insert({ t: 1700000000000001n }, 1), cdf.insert({ t: 1700000000000002n }, 1)]);
    assert.equal(ts.upserts.length, 2);
    const d = net(['d'], [cdf.insert({ d: 19000 }, 1), cdf.delete({ d: 19000 }, 2), cdf.insert({ d: 19001 }, 1)]);
    assert.deepEqual(d.deletes, [{ d: 19000 }]);
    assert.deepEqual(d.upserts, [{ d: 19001 }]);
    const bin = net(['b'], [
      cdf.insert({ b: new Uint8Array([0, 1]), n: 1 }, 1),
      cdf.insert({ b: new Uint8Array([0, 1, 0]), n: 2 }, 1),
      cdf.delete({ b: Uint8Array.from([0, 1]), n: 1 }, 2),
    ]);
    assert.deepEqual(bin.upserts, [{ b: new Uint8Array([0, 1, 0]), n: 2 }]);
    assert.deepEqual(bin.deletes, [{ b: new Uint8Array([0, 1]) }]);
  });

  it('binary keys that are views into a larger buffer compare by their bytes only', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const view = backing.subarray(2, 5);
    assert.equal(encodeKey([view]), encodeKey([new Uint8Array([1, 2, 3])]));
  });

  it('composite keys do not collide by concatenation', () => {
    const r = net(['a', 'b'], [
      cdf.insert({ a: 'x;', b: 'y' }, 1),
      cdf.insert({ a: 'x', b: ';y' }, 1),
      cdf.insert({ a: 's1:x', b: '' }, 1),
      cdf.insert({ a: '', b: 's1:x' }, 1),
    ]);
    assert.equal(r.upserts.length, 4);
    const r2 = net(['region', 'id'], [
      cdf.insert({ region: 'eu', id: 1n, n: 1 }, 1),
      cdf.insert({ region: 'us', id: 1n, n: 2 }, 1),
      cdf.delete({ region: 'eu', id: 1n, n: 1 }, 2),
    ]);
    assert.deepEqual(r2.upserts, [{ region: 'us', id: 1n, n: 2 }]);
    assert.deepEqual(r2.deletes, [{ region: 'eu', id: 1n }]);
  });

  it('folds a negative-zero decimal key into zero when the key types are known', () => {
    const b = new NetChangeBuffer(['k'], { keyTypes: { k: decimal(10, 2) } });
    b.add(cdf.insert({ k: '0.00', n: 1 }, 1));
    b.add(cdf.delete({ k: '-0.00', n: 1 }, 2));
    const r = b.drain();
    assert.deepEqual(r.upserts, []);
    assert.deepEqual(r.deletes, [{ k: '0.00' }]);
  });

  it('refuses a null key value, naming the column and version', () => {
    const b = new NetChangeBuffer(['id', 'region']);
    expectSyncError(() => b.add(cdf.insert({ id: 1n, region: null }, 12)), { kind: 'mapping', column: 'region', version: 12, message: /"region" is null .* version 12/ });
  });

  it('refuses a change row without the key column as schema drift', () => {
    const b = new NetChangeBuffer(['id']);
    expectSyncError(() => b.add(cdf.delete({ other: 1 }, 3)), { kind: 'schema-drift', column: 'id', version: 3 });
  });

  it('refuses an empty key', () => {
    expectSyncError(() => new NetChangeBuffer([]), { kind: 'mapping' });
  });

  it('counts two upserts of one key in one version as duplicate keys', () => {
    const r = net(['id'], [cdf.insert({ id: 1n, n: 1 }, 1), cdf.insert({ id: 1n, n: 2 }, 1)]);
    assert.equal(r.duplicateKeys, 1);
    assert.deepEqual(r.duplicateExamples, [{ version: 1, key: 'id=1' }]);
    assert.equal(r.upserts.length, 1);
  });

  it('marks an upsert whose key must be new (first change an insert, no removal in its version) and counts inserts of a key the batch left in the table', () => {
    const b = new NetChangeBuffer(['id'], { checkNewKeys: true });
    const changes = (): ChangeRow[] => [
      cdf.insert({ id: 1n }, 2), // new: must be absent at the start
      cdf.insert({ id: 2n }, 2), cdf.delete({ id: 2n }, 2), // delete + insert in one commit (delete read last): replaces a row
      cdf.delete({ id: 3n }, 2), cdf.insert({ id: 3n }, 3), // deleted, then re-inserted
      cdf.updatePreimage({ id: 4n }, 2), cdf.updatePostimage({ id: 5n }, 2), // key 4 changed to 5: 5 must be new
      cdf.insert({ id: 6n }, 2), cdf.insert({ id: 6n }, 3), // inserted twice: the second is a duplicate
      cdf.insert({ id: 7n }, 2), cdf.delete({ id: 7n }, 3), // inserted, then deleted: the delete carries the mark
      cdf.updatePreimage({ id: 8n }, 2), cdf.updatePostimage({ id: 8n }, 2), // a plain update
    ];
    for (const c of changes()) b.add(c);
    const n = b.drain();
    const marks = Object.fromEntries([...n.upserts, ...n.deletes].map((r) => [String(r.id), r[MUST_BE_NEW] ?? null]));
    assert.deepEqual(marks, { 1: 2, 2: null, 3: null, 4: null, 5: 2, 6: 2, 7: 2, 8: null });
    assert.equal(n.reinsertedKeys, 1);
    assert.deepEqual(n.reinsertedExamples, [{ version: 3, key: 'id=6' }]);
    assert.equal(n.duplicateKeys, 0);
    // Without checkNewKeys nothing is marked (last-wins), the count stays.
    const plain = net(['id'], changes());
    assert.ok([...plain.upserts, ...plain.deletes].every((r) => !(MUST_BE_NEW in r)));
    assert.equal(plain.reinsertedKeys, 1);
  });

  it('drain empties the buffer and reports null versions when nothing was added', () => {
    const b = new NetChangeBuffer(['id']);
    b.add(cdf.insert({ id: 1n, s: 'x'.repeat(1000) }, 1));
    assert.equal(b.size, 1);
    assert.ok(b.bytes >= 1000);
    b.drain();
    assert.equal(b.size, 0);
    assert.equal(b.bytes, 0);
    const empty = b.drain();
    assert.deepEqual(empty, {
      upserts: [],
      deletes: [],
      deleteTimestamps: [],
      upsertKeys: [],
      upsertVersions: [],
      deleteKeys: [],
      minVersion: null,
      maxVersion: null,
      rowsIn: 0,
      duplicateKeys: 0,
      duplicateExamples: [],
      upsertNewAt: [],
      reinsertedKeys: 0,
      reinsertedExamples: [],
      upsertPending: [],
    });
  });

  it('holds one entry per distinct key however many changes arrive', () => {
    const b = new NetChangeBuffer(['id']);
    for (let v = 0; v < 1000; v++) b.add(cdf.insert({ id: BigInt(v % 10), payload: 'p' }, v));
    assert.equal(b.size, 10);
  });
});

describe('plan: planSteps', () => {
  /** The batches of a plan without parts: each transaction is one apply (the batch's NetChanges) and a commit. */
  async function collect(changes: ChangeRow[], maxRows: number, maxBytes?: number): Promise<NetChanges[]> {
    const out: NetChanges[] = [];
    let applies = 0;
    for await (const s of planSteps([changes.slice(0, 3), [], changes.slice(3)], ['id'], { maxRows, maxBytes })) {
      if (s.type === 'apply') {
        out.push(s.changes as NetChanges);
        applies++;
      } else {
        assert.equal(applies, 1, 'one apply per transaction without parts');
        // A batch commits at its last version; the last one at the end of the stream (null).
        if (s.version !== null) assert.equal(s.version, (out.at(-1) as NetChanges).maxVersion);
        applies = 0;
      }
    }
    return out;
  }

  async function transactions(changes: ChangeRow[], opts: { maxRows: number; partRows?: number }): Promise<Array<{ parts: PlanStep[]; commit: PlanStep }>> {
    const out: Array<{ parts: PlanStep[]; commit: PlanStep }> = [];
    let parts: PlanStep[] = [];
    for await (const s of planSteps([changes], ['id'], opts)) {
      if (s.type === 'apply') parts.push(s);
      else {
        out.push({ parts, commit: s });
        parts = [];
      }
    }
    assert.equal(parts.length, 0, 'the plan ends with a commit');
    return out;
  }

  it('applies a version with more than partRows change rows in parts, holding its removals to the end', async () => {
    const changes: ChangeRow[] = [cdf.insert({ id: 0n }, 1), cdf.insert({ id: 99n }, 1)];
    for (let i = 1; i <= 25; i++) changes.push(cdf.insert({ id: BigInt(i) }, 2));
    // A removal before the upsert of its key in a later part (a preimage / a delete + re-insert): an upsert.
    changes.splice(3, 0, cdf.updatePreimage({ id: 20n }, 2));
    // A removal after the upsert of its key in an earlier part: dropped.
    changes.push(cdf.delete({ id: 3n }, 2));
    // A removal of a key upserted by an earlier version in the first part: applied at the end.
    changes.push(cdf.delete({ id: 0n }, 2));
    changes.push(cdf.insert({ id: 1000n }, 3));
    const txs = await transactions(changes, { maxRows: 1000, partRows: 10 });
    assert.equal(txs.length, 2);
    const [first, second] = txs as [{ parts: PlanStep[]; commit: PlanStep }, { parts: PlanStep[]; commit: PlanStep }];
    assert.deepEqual(first.commit, { type: 'commit', version: 2, fromVersion: 1, parts: first.parts.length });
    assert.ok(first.parts.length >= 3, `parts: ${first.parts.length}`);
    const ids = (rows: Row[]): bigint[] => rows.map((r) => r.id as bigint).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const applies = first.parts.map((p) => (p.type === 'apply' ? p.changes : assert.fail('apply expected')));
    const upserted = applies.flatMap((c) => ids(c.upserts));
    // Key 0 (inserted by v1, deleted by v2) nets to a delete: never upserted.
    assert.deepEqual(upserted.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), [...Array.from({ length: 25 }, (_, i) => BigInt(i + 1)), 99n]);
    // Only the last part deletes, and only key 0; v1's upsert of 99 waits for that part too.
    assert.deepEqual(applies.slice(0, -1).flatMap((c) => c.deletes), []);
    assert.deepEqual(ids((applies.at(-1) as { deletes: Row[] }).deletes), [0n]);
    assert.deepEqual(ids((applies.at(-1) as { upserts: Row[] }).upserts), [99n]);
    assert.deepEqual(second.commit, { type: 'commit', version: null, fromVersion: 3, parts: 1 });
  });

  it('never applies in parts without partRows', async () => {
    const changes: ChangeRow[] = [];
    for (let i = 0; i < 50; i++) changes.push(cdf.insert({ id: BigInt(i) }, 1));
    const txs = await transactions(changes, { maxRows: 10 });
    assert.deepEqual(txs.map((t) => t.parts.length), [1]);
  });

  it('cuts batches only between versions', async () => {
    const changes: ChangeRow[] = [];
    for (let v = 1; v <= 6; v++) for (let i = 0; i < 3; i++) changes.push(cdf.insert({ id: BigInt(v * 10 + i) }, v));
    const batches = await collect(changes, 4);
    assert.deepEqual(
      batches.map((b) => [b.minVersion, b.maxVersion, b.upserts.length]),
      [
        [1, 2, 6],
        [3, 4, 6],
        [5, 6, 6],
      ],
    );
  });

  it('keeps one huge version in a single oversized batch', async () => {
    const changes: ChangeRow[] = [cdf.insert({ id: 0n }, 1)];
    for (let i = 1; i <= 100; i++) changes.push(cdf.insert({ id: BigInt(i) }, 2));
    changes.push(cdf.insert({ id: 1000n }, 3));
    const batches = await collect(changes, 10);
    assert.deepEqual(
      batches.map((b) => [b.minVersion, b.maxVersion, b.upserts.length]),
      [
        [1, 2, 101],
        [3, 3, 1],
      ],
    );
  });

  it('also cuts on the byte budget', async () => {
    const changes = [1, 2, 3].map((v) => cdf.insert({ id: BigInt(v), blob: 'x'.repeat(10_000) }, v));
    const batches = await collect(changes, 1_000_000, 15_000);
    assert.deepEqual(batches.map((b) => b.maxVersion), [2, 3]);
  });

  it('refuses versions going backwards', async () => {
    await expectSyncError(collect([cdf.insert({ id: 1n }, 2), cdf.insert({ id: 2n }, 1)], 10), { kind: 'cdf-range', message: /version 1 came after version 2/ });
  });
});

describe('plan: applyDeletePolicy', () => {
  const changes = {
    upserts: [{ id: 1n, name: 'a' }],
    deletes: [{ id: 2n }],
    deleteTimestamps: [1_700_000_000_123],
  };

  it("'delete' keeps deletes", () => {
    const p = applyDeletePolicy(changes, { mode: 'delete' });
    assert.deepEqual(p, { upserts: changes.upserts, deletes: [{ id: 2n }], softDeletes: [] });
  });

  it("'ignore' drops deletes", () => {
    const p = applyDeletePolicy(changes, { mode: 'ignore' });
    assert.deepEqual(p, { upserts: changes.upserts, deletes: [], softDeletes: [] });
  });

  it("boolean 'soft-delete' marks deletes true and clears the marker on upserts", () => {
    const p = applyDeletePolicy(changes, { mode: 'soft-delete', column: 'is_deleted', kind: 'boolean' });
    assert.deepEqual(p.upserts, [{ id: 1n, name: 'a', is_deleted: false }]);
    assert.deepEqual(p.softDeletes, [{ id: 2n, is_deleted: true }]);
    assert.deepEqual(p.deletes, []);
    const col = markerTargetColumn({ column: 'is_deleted', kind: 'boolean' });
    assert.deepEqual({ column: col.name, pgType: col.pgType }, { column: 'is_deleted', pgType: 'boolean' });
    assert.deepEqual(changes.upserts, [{ id: 1n, name: 'a' }], 'input rows are not modified');
  });

  it("timestamp 'soft-delete' stamps the delete's commit time in microseconds", () => {
    const p = applyDeletePolicy(changes, { mode: 'soft-delete', column: 'deleted_at', kind: 'timestamp' });
    assert.deepEqual(p.softDeletes, [{ id: 2n, deleted_at: 1_700_000_000_123_000n }]);
    assert.deepEqual(p.upserts, [{ id: 1n, name: 'a', deleted_at: null }]);
    const col = markerTargetColumn({ column: 'deleted_at', kind: 'timestamp' });
    assert.deepEqual({ column: col.name, pgType: col.pgType }, { column: 'deleted_at', pgType: 'timestamptz' });
  });
});

describe('plan: projectRow', () => {
  const schema = [field('id', long()), field('Full Name', string()), field('secret', string()), field('amt', decimal(10, 2))];
  const mapping = buildMapping({
    key: ['customer_id'],
    columns: { exclude: ['secret'], rename: { id: 'customer_id', 'Full Name': 'full_name' } },
  });
  const cols = resolveColumns(mapping, schema);

  it('renames and drops columns, keeping values untouched', () => {
    const row = { id: 5n, 'Full Name': 'Ada', secret: 'x', amt: '10.50' };
    assert.deepEqual(projectRow(row, cols), { customer_id: 5n, full_name: 'Ada', amt: '10.50' });
    assert.deepEqual(projectValues(row, cols), [5n, 'Ada', '10.50']);
  });

  it('refuses a row that lacks a synced column', () => {
    expectSyncError(() => projectRow({ id: 5n, secret: 'x', amt: null }, cols), { kind: 'schema-drift' });
  });

  it('projects net changes end to end with source key names', () => {
    const keySources = keySourceColumns(cols, mapping.key!);
    assert.deepEqual(keySources, ['id']);
    const n = net(keySources, [
      cdf.insert({ id: 1n, 'Full Name': 'A', secret: 's', amt: '1.00' }, 1),
      cdf.insert({ id: 2n, 'Full Name': 'B', secret: 's', amt: '2.00' }, 1),
      cdf.delete({ id: 2n, 'Full Name': 'B', secret: 's', amt: '2.00' }, 2),
    ]);
    const keyCols = cols.filter((c) => keySources.includes(c.source.name));
    const p = projectNetChanges(n, cols, keyCols);
    assert.deepEqual(p.upserts, [{ customer_id: 1n, full_name: 'A', amt: '1.00' }]);
    assert.deepEqual(p.deletes, [{ customer_id: 2n }]);
  });
});

// ---------------------------------------------------------------------------------------
// Property: folding a CDF into net changes and applying them equals the table it describes.

type State = Map<string, Row>;
const BASE_ID = 1n << 62n; // beyond 2^53: any detour through number would merge keys
const REGIONS = ['eu', 'us', 'e|u;'];
const keyOf = (r: Row): string => `${String(r.id)}|${String(r.region)}`;

interface Simulation {
  initial: State;
  /** State after each version, by version. */
  after: Map<number, State>;
  changes: ChangeRow[];
  finalVersion: number;
}

/**
 * A table with key (id bigint, region string) evolves through versions; each version is
 * a commit where a row changes at most once (insert, update, key change, delete, or
 * delete + re-insert through a MERGE), as in a real Delta commit. Emits the CDF it would
 * produce and the table after every version.
 */
function simulate(rand: () => number, versions: number, regions: readonly string[] = REGIONS): Simulation {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const newKey = (): Row => ({ id: BASE_ID + BigInt(Math.floor(rand() * 12)), region: pick(regions) });
  let serial = 0;
  const payload = (k: Row, v: number): Row => ({
    ...k,
    v,
    amount: `${Math.floor(rand() * 1e6)}.${String(serial++ % 100).padStart(2, '0')}`,
    note: rand() < 0.2 ? null : `n${serial}`,
  });

  const state: State = new Map();
  for (let i = 0; i < 8; i++) {
    const k = newKey();
    state.set(keyOf(k), payload(k, 0));
  }
  const initial = new Map(state);
  const after = new Map<number, State>();
  const changes: ChangeRow[] = [];
  for (let v = 1; v <= versions; v++) {
    const touched = new Set<string>(); // rows of the start state already changed in this commit
    const upserted = new Set<string>(); // keys given a row in this commit
    const ops = 1 + Math.floor(rand() * 6);
    for (let o = 0; o < ops; o++) {
      const live = [...state.keys()].filter((k) => !touched.has(k) && !upserted.has(k));
      const op = rand();
      const emit = (t: ChangeType, row: Row): void => {
        changes.push(changeRow(t, row, v, 1_000_000 + v));
      };
      if (op < 0.3 || live.length === 0) {
        const k = newKey();
        const ks = keyOf(k);
        if (state.has(ks) || upserted.has(ks)) continue;
        const row = payload(k, v);
        state.set(ks, row);
        upserted.add(ks);
        emit('insert', row);
        continue;
      }
      const ks = pick(live);
      const old = state.get(ks)!;
      const oldKey = { id: old.id, region: old.region };
      if (op < 0.55) {
        const row = payload(oldKey, v);
        emit('update_preimage', old);
        emit('update_postimage', row);
        state.set(ks, row);
        touched.add(ks);
        upserted.add(ks);
      } else if (op < 0.7) {
        const nk = newKey();
        const nks = keyOf(nk);
        if (nks === ks || state.has(nks) || upserted.has(nks)) continue;
        const row = { ...payload(nk, v) };
        emit('update_preimage', old);
        emit('update_postimage', row);
        state.delete(ks);
        state.set(nks, row);
        touched.add(ks);
        upserted.add(nks);
      } else if (op < 0.9) {
        emit('delete', old);
        state.delete(ks);
        touched.add(ks);
      } else {
        const row = payload(oldKey, v);
        emit('delete', old);
        emit('insert', row);
        state.set(ks, row);
        touched.add(ks);
        upserted.add(ks);
      }
    }
    after.set(v, new Map(state));
  }
  return { initial, after, changes, finalVersion: versions };
}

function applyNet(state: State, n: { upserts: Row[]; deletes: Row[] }): void {
  const up = new Set(n.upserts.map(keyOf));
  for (const d of n.deletes) {
    assert.ok(!up.has(keyOf(d)), 'a key is both deleted and upserted');
    assert.deepEqual(Object.keys(d).filter((k) => k !== MUST_BE_NEW).sort(), ['id', 'region'], 'deletes are key-only (and the mark)');
    state.delete(keyOf(d));
  }
  assert.equal(up.size, n.upserts.length, 'a key is upserted twice');
  for (const u of n.upserts) state.set(keyOf(u), u);
}

function shuffle<T>(xs: T[], rand: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Rows within a version shuffled, versions in order (what the CDF reader guarantees). */
/** The rows in arrays of random lengths (0..4), the way readers deliver them. */
function chunked<T>(xs: T[], rand: () => number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; ) {
    const n = Math.floor(rand() * 5);
    out.push(xs.slice(i, i + n));
    i += n;
  }
  return out;
}

function shuffleWithinVersions(xs: ChangeRow[], rand: () => number): ChangeRow[] {
  const byVersion = new Map<number, ChangeRow[]>();
  for (const c of xs) {
    const l = byVersion.get(c.commitVersion) ?? [];
    l.push(c);
    byVersion.set(c.commitVersion, l);
  }
  return [...byVersion.keys()].sort((a, b) => a - b).flatMap((v) => shuffle(byVersion.get(v)!, rand));
}

describe('plan: property (seeded random CDF streams)', () => {
  const SEEDS = 300;

  /**
   * What the writer does with the marks of planSteps (applyChanges' refuseExistingKeys),
   * on a set of keys: an upsert marked MUST_BE_NEW whose key the table holds at the start of
   * its transaction is noted; a provisional step only notes, excused keys drop their note,
   * and any note left at a step that is not provisional (or at the commit) refuses.
   * Returns the steps' outcome: 'ok' or the refused keys; throws what planSteps throws.
   */
  async function writerOutcome(stream: ChangeRow[][], initial: State, maxRows: number, partRows: number | undefined): Promise<'ok' | string[]> {
    const state = new Map(initial);
    let startKeys = new Set(state.keys());
    let noted = new Set<string>();
    for await (const s of planSteps(stream, ['id', 'region'], { maxRows, partRows })) {
      if (s.type === 'commit') {
        if (noted.size > 0) return [...noted];
        startKeys = new Set(state.keys());
        continue;
      }
      for (const r of [...s.changes.upserts, ...s.changes.deletes]) if (MUST_BE_NEW in r && startKeys.has(keyOf(r))) noted.add(keyOf(r));
      for (const e of s.changes.excused ?? []) noted.delete(keyOf(e));
      if (!s.provisional && noted.size > 0) return [...noted];
      applyNet(state, s.changes);
    }
    return 'ok';
  }

  it('valid streams (rows shuffled within versions, in batches and parts): no insert is refused, in planning or by the marks', async () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = mulberry32(seed);
      const sim = simulate(rand, 1 + Math.floor(rand() * 25));
      const maxRows = 1 + Math.floor(rand() * 8);
      const partRows = seed % 2 === 0 ? undefined : 1 + Math.floor(rand() * 6);
      assert.equal(await writerOutcome(chunked(shuffleWithinVersions(sim.changes, rand), rand), sim.initial, maxRows, partRows), 'ok', `seed ${seed}`);
    }
  });

  it('a version that inserts a key the table holds (untouched in that version) is refused, in planning or by the marks', async () => {
    let tried = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = mulberry32(seed);
      const sim = simulate(rand, 2 + Math.floor(rand() * 24));
      const v = 1 + Math.floor(rand() * sim.finalVersion);
      const before = v === 1 ? sim.initial : sim.after.get(v - 1)!;
      const touched = new Set(sim.changes.filter((c) => c.commitVersion === v).map((c) => keyOf(c.values)));
      const candidates = [...before.keys()].filter((k) => !touched.has(k));
      if (candidates.length === 0) continue;
      tried++;
      const dup = { ...before.get(candidates[Math.floor(rand() * candidates.length)]!)!, note: 'again' };
      const at = sim.changes.findIndex((c) => c.commitVersion > v);
      const changes = [...sim.changes];
      changes.splice(at < 0 ? changes.length : at, 0, changeRow('insert', dup, v));
      const maxRows = 1 + Math.floor(rand() * 8);
      const partRows = seed % 2 === 0 ? undefined : 1 + Math.floor(rand() * 6);
      let outcome: 'ok' | string[] | 'planning';
      try {
        outcome = await writerOutcome(chunked(shuffleWithinVersions(changes, rand), rand), sim.initial, maxRows, partRows);
      } catch (e) {
        assert.equal((e as { setting?: string }).setting, 'duplicateKeys', `seed ${seed}: ${String(e)}`);
        outcome = 'planning';
      }
      assert.notEqual(outcome, 'ok', `seed ${seed}: the duplicate insert of ${keyOf(dup)} at version ${v} went through`);
      if (Array.isArray(outcome)) assert.deepEqual(outcome, [keyOf(dup)], `seed ${seed}`);
    }
    assert.ok(tried > SEEDS / 2, `only ${tried} seeds had a key to insert again`);
  });

  it('net changes of the whole stream, fed in any order, applied to the start state give the final state', () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = mulberry32(seed);
      const sim = simulate(rand, 1 + Math.floor(rand() * 25));
      const b = new NetChangeBuffer(['id', 'region']);
      for (const c of shuffle(sim.changes, rand)) b.add(c);
      const n = b.drain();
      assert.equal(n.duplicateKeys, 0, `seed ${seed}`);
      const state = new Map(sim.initial);
      applyNet(state, n);
      assert.deepEqual(state, sim.after.get(sim.finalVersion), `seed ${seed}`);
    }
  });

  it('the same holds for a one-column bigint key', () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = mulberry32(seed);
      const sim = simulate(rand, 1 + Math.floor(rand() * 25), ['eu']);
      const b = new NetChangeBuffer(['id']);
      for (const c of shuffle(sim.changes, rand)) b.add(c);
      const n = b.drain();
      const state = new Map(sim.initial);
      for (const d of n.deletes) state.delete(keyOf({ ...d, region: 'eu' }));
      for (const u of n.upserts) state.set(keyOf(u), u);
      assert.deepEqual(state, sim.after.get(sim.finalVersion), `seed ${seed}`);
    }
  });

  it('replaying every change one by one in version order (removals first) gives the same state', () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = mulberry32(seed);
      const sim = simulate(rand, 1 + Math.floor(rand() * 25));
      const rank = (c: ChangeRow): number => (c.changeType === 'delete' || c.changeType === 'update_preimage' ? 0 : 1);
      const ordered = shuffle(sim.changes, rand).sort((a, b) => a.commitVersion - b.commitVersion || rank(a) - rank(b));
      const replay = new Map(sim.initial);
      for (const c of ordered) {
        if (rank(c) === 0) replay.delete(keyOf(c.values));
        else replay.set(keyOf(c.values), c.values);
      }
      const b = new NetChangeBuffer(['id', 'region']);
      for (const c of sim.changes) b.add(c);
      const netState = new Map(sim.initial);
      applyNet(netState, b.drain());
      assert.deepEqual(netState, replay, `seed ${seed}`);
    }
  });

  it('steps planned by planSteps (batches, and versions in parts), applied in order, pass through the state of every commit version', async () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = mulberry32(seed);
      const sim = simulate(rand, 1 + Math.floor(rand() * 25));
      const maxRows = 1 + Math.floor(rand() * 8);
      // Half the seeds without parts, half with parts of 1..6 keys.
      const partRows = seed % 2 === 0 ? undefined : 1 + Math.floor(rand() * 6);
      const state = new Map(sim.initial);
      let lastCommitted = 0;
      let partsSeen = 0;
      // The transaction's parts, key -> what they did to it.
      let applied = new Map<string, Row | 'deleted'>();
      for await (const s of planSteps(chunked(shuffleWithinVersions(sim.changes, rand), rand), ['id', 'region'], { maxRows, partRows })) {
        if (s.type === 'apply') {
          applyNet(state, s.changes);
          for (const r of s.changes.deletes) {
            assert.ok(!applied.has(keyOf(r)), `seed ${seed}: key ${keyOf(r)} applied twice in one transaction`);
            applied.set(keyOf(r), 'deleted');
          }
          for (const r of s.changes.upserts) {
            assert.ok(!applied.has(keyOf(r)), `seed ${seed}: key ${keyOf(r)} applied twice in one transaction`);
            applied.set(keyOf(r), r);
          }
          partsSeen++;
          continue;
        }
        const version = s.version ?? sim.finalVersion;
        // The parts did exactly what one net batch of the same versions does (so the counts agree).
        const net = new NetChangeBuffer(['id', 'region']);
        for (const c of sim.changes) if (c.commitVersion >= s.fromVersion && c.commitVersion <= version) net.add(c);
        const n = net.drain();
        const expected = new Map<string, Row | 'deleted'>([...n.deletes.map((r) => [keyOf(r), 'deleted'] as const), ...n.upserts.map((r) => [keyOf(r), r] as const)]);
        assert.deepEqual(applied, expected, `seed ${seed}: transaction ${s.fromVersion}..${version}`);
        applied = new Map();
        assert.ok(s.fromVersion > lastCommitted, `seed ${seed}: transactions overlap`);
        assert.equal(s.parts, partsSeen, `seed ${seed}: parts counted`);
        if (partRows === undefined) assert.equal(partsSeen, 1, `seed ${seed}: parts without partRows`);
        partsSeen = 0;
        lastCommitted = version;
        assert.deepEqual(state, sim.after.get(version), `seed ${seed} at version ${version}`);
      }
      assert.deepEqual(state, sim.after.get(sim.finalVersion), `seed ${seed}`);
    }
  });
});
