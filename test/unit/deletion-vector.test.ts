import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { encodeDeletionVectorFile, encodeInlineDeletionVector, loadDeletionVector } from '../../src/sync/delta/deletionVector';
import type { DeletionVectorDescriptor } from '../../src/sync/delta/types';
import { z85Decode, z85Encode } from '../../src/sync/delta/z85';
import { expectSyncError } from '../helpers/expectSyncError';
import { sharedTable } from '../helpers/sharedTables';

describe('z85', () => {
  it('matches the ZeroMQ RFC 32 test vector', () => {
    const bytes = Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    assert.equal(z85Encode(bytes), 'HelloWorld');
    assert.deepEqual(z85Decode('HelloWorld'), bytes);
  });

  it('round-trips random bytes and refuses bad input', () => {
    const bytes = Uint8Array.from({ length: 400 }, (_, i) => (i * 37 + 11) % 256);
    assert.deepEqual(z85Decode(z85Encode(bytes)), bytes);
    assert.throws(() => z85Decode('Hell'));
    assert.throws(() => z85Decode('Hell~'));
    assert.throws(() => z85Encode(Uint8Array.from([1, 2, 3])));
  });

  it("decodes a '#'-padded final group as the shorter tail the Rust z85 crate writes", () => {
    // '#' is digit 84; '093' is 0*85^2 + 9*85 + 3 = 0x0300: two bytes.
    assert.deepEqual(z85Decode('HelloWorld##093'), Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b, 0x03, 0x00]));
  });
});

describe('deletion vectors: encode and load', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dv-test-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const uuid = '61d16c75-6994-46b7-a15b-8b538852e50e';
  const uuidZ85 = z85Encode(Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex')));

  function writeDv(indices: Iterable<number>, prefix = ''): DeletionVectorDescriptor {
    const enc = encodeDeletionVectorFile(indices);
    fs.mkdirSync(path.join(dir, prefix), { recursive: true });
    fs.writeFileSync(path.join(dir, prefix, `deletion_vector_${uuid}.bin`), enc.bytes);
    return { storageType: 'u', pathOrInlineDv: prefix + uuidZ85, offset: enc.offset, sizeInBytes: enc.sizeInBytes, cardinality: enc.cardinality };
  }

  const cases: Array<[string, number[]]> = [
    ['empty', []],
    ['sparse (array container)', [0, 3, 9, 65535, 65536, 1_000_000]],
    ['consecutive runs (run container)', Array.from({ length: 3000 }, (_, i) => 100 + i)],
    ['dense scattered (bitmap container)', Array.from({ length: 6000 }, (_, i) => i * 3)],
    ['beyond 2^32 (several treemap keys)', [1, 2 ** 32, 2 ** 32 + 7, 3 * 2 ** 32 + 65537, 2 ** 40]],
  ];
  for (const [label, indices] of cases) {
    it(`round-trips ${label} through an inline and a file DV`, async () => {
      const expected = [...indices].sort((a, b) => a - b);
      const inline = encodeInlineDeletionVector(indices);
      const fromInline = await loadDeletionVector(dir, { storageType: 'i', ...inline });
      const fromFile = await loadDeletionVector(dir, writeDv(indices));
      for (const set of [fromInline, fromFile]) {
        assert.equal(set.size, expected.length);
        assert.deepEqual([...set.values()], expected);
        for (const i of expected) assert.ok(set.has(i), String(i));
        for (const i of [4, 99, 65534, 2 ** 32 + 1, 5 * 2 ** 32]) assert.equal(set.has(i), expected.includes(i), String(i));
      }
    });
  }

  it("resolves a 'u' path with a random prefix, and 'p' paths as plain paths and file:// URIs", async () => {
    const u = writeDv([5, 6], 'ab');
    assert.deepEqual([...(await loadDeletionVector(dir, u)).values()], [5, 6]);
    const file = path.join(dir, 'ab', `deletion_vector_${uuid}.bin`);
    for (const p of [file, pathToFileURL(file).href]) {
      const set = await loadDeletionVector('/elsewhere', { ...u, storageType: 'p', pathOrInlineDv: p });
      assert.deepEqual([...set.values()], [5, 6]);
    }
  });

  it('reads a DV at a non-zero offset among others in one file', async () => {
    const first = encodeDeletionVectorFile([1]);
    const second = encodeDeletionVectorFile([2, 3]);
    // Both bodies after the single version byte: size | data | crc, twice.
    const body = Buffer.concat([Buffer.from(first.bytes), Buffer.from(second.bytes.subarray(1))]);
    fs.writeFileSync(path.join(dir, `deletion_vector_${uuid}.bin`), body);
    const d: DeletionVectorDescriptor = { storageType: 'u', pathOrInlineDv: uuidZ85, offset: first.bytes.length, sizeInBytes: second.sizeInBytes, cardinality: 2 };
    assert.deepEqual([...(await loadDeletionVector(dir, d)).values()], [2, 3]);
  });

  it('fails with delta-file naming table and DV for a missing file, bad magic, bad checksum, size and cardinality mismatch', async () => {
    const expectFail = async (d: DeletionVectorDescriptor, reason: RegExp): Promise<void> => {
      const e = await expectSyncError(loadDeletionVector(dir, d, 'my_table'), { kind: 'delta-file', table: 'my_table', message: /my_table/ });
      assert.match(e.message, reason);
    };
    const good = writeDv([1, 2, 3], 'bad');
    const file = path.join(dir, 'bad', `deletion_vector_${uuid}.bin`);
    await expectFail({ ...good, pathOrInlineDv: 'zz' + uuidZ85 }, /missing/);
    await expectFail({ ...good, sizeInBytes: good.sizeInBytes + 1 }, /size/);
    await expectFail({ ...good, cardinality: 4 }, /3 row indexes/);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(file, bytes);
    await expectFail(good, /checksum/);
    const inline = encodeInlineDeletionVector([1]);
    const raw = z85Decode(inline.pathOrInlineDv);
    raw[0] ^= 0xff;
    await expectFail({ storageType: 'i', ...inline, pathOrInlineDv: z85Encode(raw) }, /magic/);
  });
});

describe('deletion vectors: real tables', () => {
  it('encodes {0, 9} byte for byte like the Databricks-written DV file of table-with-dv-small', async function () {
    const root = sharedTable('delta-rs/table-with-dv-small');
    if (!root) this.skip();
    const d: DeletionVectorDescriptor = { storageType: 'u', pathOrInlineDv: 'vBn[lx{q8@P<9BNH/isA', offset: 1, sizeInBytes: 36, cardinality: 2 };
    assert.deepEqual([...(await loadDeletionVector(root, d)).values()], [0, 9]);
    const written = fs.readFileSync(path.join(root, 'deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin'));
    assert.deepEqual(Buffer.from(encodeDeletionVectorFile([0, 9]).bytes), written.subarray(0, 1 + 4 + 36 + 4));
  });

  it('loads the inline DVs of cdf-table-with-dv, including the padded one, as the rows its expected CDF deletes', async function () {
    const root = sharedTable('delta-kernel-rs/cdf-table-with-dv');
    if (!root) this.skip();
    // expected/cdf-table-with-dv.cdf.from-v0.txt: v3 deletes 0,1,4,5; v5 re-inserts 0,5 and deletes 3.
    const adds = new Map<number, DeletionVectorDescriptor>();
    for (const v of [3, 4, 5]) {
      const log = fs.readFileSync(path.join(root, '_delta_log', `${String(v).padStart(20, '0')}.json`), 'utf8');
      for (const line of log.split('\n').filter(Boolean)) {
        const a = JSON.parse(line) as { add?: { deletionVector?: DeletionVectorDescriptor } };
        if (a.add?.deletionVector) adds.set(v, a.add.deletionVector);
      }
    }
    const values = async (v: number): Promise<number[]> => [...(await loadDeletionVector(root, adds.get(v) as DeletionVectorDescriptor)).values()];
    assert.deepEqual(await values(3), [0, 1, 4, 5]);
    assert.deepEqual(await values(4), [0, 5]);
    assert.deepEqual(await values(5), [3]);
    assert.equal(encodeInlineDeletionVector([0, 1, 4, 5]).pathOrInlineDv, (adds.get(3) as DeletionVectorDescriptor).pathOrInlineDv);
  });
});
