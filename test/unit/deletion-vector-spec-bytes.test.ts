import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { loadDeletionVector } from '../../src/sync/delta/deletionVector';
import type { DeletionVectorDescriptor } from '../../src/sync/delta/types';

/**
 * Deletion vectors built byte by byte from the format specs, not by the project's encoder:
 * a bug the encoder and the decoder share (a threshold, a boundary) passes a round trip but
 * fails here. Sources:
 * - Delta protocol, "Deletion Vector Format": the DV file is version byte 1, then per DV an
 *   int32 BE size, the data, an int32 BE CRC-32 of the data; the data is the magic number
 *   1681511377 (int32 LE) and a RoaringBitmapArray in the portable serialization: int64 LE
 *   bitmap count, then per bitmap an int32 LE high key and a 32-bit RoaringBitmap.
 * - RoaringFormatSpec (portable 32-bit serialization): cookie 12346 + int32 container count
 *   when no container is a run container, else cookie 12347 | (count-1) << 16 and a run
 *   flag bitset; then per container uint16 key and uint16 cardinality-1; then, when there is
 *   no run container or there are at least 4 (NO_OFFSET_THRESHOLD) containers, one uint32
 *   offset per container; then the containers: array = sorted uint16 values (cardinality
 *   at most 4096), bitmap = 1024 uint64 words (cardinality above 4096), run = uint16 run
 *   count and per run uint16 start, uint16 length-1. All little-endian.
 */

type SpecContainer =
  | { key: number; kind: 'array'; values: number[] }
  | { key: number; kind: 'bitmap'; values: number[] }
  | { key: number; kind: 'run'; runs: Array<[start: number, length: number]> };

class Bytes {
  readonly out: number[] = [];
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  u64(v: number): this {
    return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32));
  }
}

function cardinality(c: SpecContainer): number {
  return c.kind === 'run' ? c.runs.reduce((n, [, len]) => n + len, 0) : c.values.length;
}

function containerBytes(c: SpecContainer): number[] {
  const b = new Bytes();
  if (c.kind === 'array') for (const v of c.values) b.u16(v);
  else if (c.kind === 'run') {
    b.u16(c.runs.length);
    for (const [start, len] of c.runs) b.u16(start).u16(len - 1);
  } else {
    const words = new Array<bigint>(1024).fill(0n);
    for (const v of c.values) words[v >> 6] = (words[v >> 6] as bigint) | (1n << BigInt(v & 63));
    for (const w of words) b.u32(Number(w & 0xffffffffn)).u32(Number(w >> 32n));
  }
  return b.out;
}

/** A portable 32-bit RoaringBitmap, written from the spec. */
function roaring32(containers: SpecContainer[]): number[] {
  const b = new Bytes();
  const n = containers.length;
  const hasRun = containers.some((c) => c.kind === 'run');
  if (hasRun) {
    b.u32(12347 + (n - 1) * 65536);
    const flags = new Array<number>(Math.ceil(n / 8)).fill(0);
    containers.forEach((c, i) => {
      if (c.kind === 'run') flags[i >> 3] = (flags[i >> 3] as number) | (1 << (i % 8));
    });
    for (const f of flags) b.u8(f);
  } else {
    b.u32(12346).u32(n);
  }
  for (const c of containers) b.u16(c.key).u16(cardinality(c) - 1);
  const bodies = containers.map(containerBytes);
  if (!hasRun || n >= 4) {
    let at = b.out.length + 4 * n;
    for (const body of bodies) {
      b.u32(at);
      at += body.length;
    }
  }
  for (const body of bodies) b.out.push(...body);
  return b.out;
}

/** DV data: magic, int64 bitmap count, per bitmap the high key and its RoaringBitmap. */
function dvData(bitmaps: Array<[high: number, containers: SpecContainer[]]>): Uint8Array {
  const b = new Bytes().u32(1681511377).u64(bitmaps.length);
  for (const [high, containers] of bitmaps) {
    b.u32(high);
    b.out.push(...roaring32(containers));
  }
  return Uint8Array.from(b.out);
}

function expectedIndexes(bitmaps: Array<[number, SpecContainer[]]>): number[] {
  const out: number[] = [];
  for (const [high, containers] of bitmaps) {
    for (const c of containers) {
      const base = high * 2 ** 32 + c.key * 65536;
      if (c.kind === 'run') for (const [start, len] of c.runs) for (let i = 0; i < len; i++) out.push(base + start + i);
      else for (const v of c.values) out.push(base + v);
    }
  }
  return out;
}

describe('deletion vectors: bytes written from the Delta and Roaring format specs', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dv-spec-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Writes `data` as a DV file ('p' descriptor): version byte, int32 BE size, data, int32 BE CRC-32. */
  function writeFile(name: string, data: Uint8Array): DeletionVectorDescriptor {
    const file = path.join(dir, name);
    const head = Buffer.alloc(5);
    head.writeUInt8(1, 0);
    head.writeInt32BE(data.length, 1);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(data), 0);
    fs.writeFileSync(file, Buffer.concat([head, data, crc]));
    return { storageType: 'p', pathOrInlineDv: file, offset: 1, sizeInBytes: data.length, cardinality: 0 };
  }

  async function load(name: string, bitmaps: Array<[number, SpecContainer[]]>): Promise<number[]> {
    const expected = expectedIndexes(bitmaps);
    const dv = { ...writeFile(name, dvData(bitmaps)), cardinality: expected.length };
    const set = await loadDeletionVector(dir, dv, name);
    assert.equal(set.size, expected.length);
    return [...set.values()];
  }

  it('reads a literal DV file holding {3, 4, 7, 65536}: one array container per 16-bit key', async () => {
    // Every byte by hand: magic 1681511377 = 0x6439D3D1 (LE d1 d3 39 64), one bitmap, high key 0,
    // cookie 12346 (3a 30 00 00), 2 containers, keys 0 (card 3) and 1 (card 1), offsets 24 and 30 (from the cookie).
    const data = Uint8Array.from([
      0xd1, 0xd3, 0x39, 0x64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      0x3a, 0x30, 0, 0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 24, 0, 0, 0, 30, 0, 0, 0,
      3, 0, 4, 0, 7, 0, 0, 0,
    ]);
    const dv = { ...writeFile('literal.bin', data), cardinality: 4 };
    const set = await loadDeletionVector(dir, dv, 'literal');
    assert.deepEqual([...set.values()], [3, 4, 7, 65536]);
    assert.ok(set.has(65536) && !set.has(5));
  });

  it('reads an array container of exactly 4,096 entries (the largest array container) as an array, not a bitmap', async () => {
    const values = Array.from({ length: 4096 }, (_, i) => i * 2);
    const got = await load('array-4096.bin', [[0, [{ key: 0, kind: 'array', values }]]]);
    assert.deepEqual(got, values);
  });

  it('reads a bitmap container of 4,097 entries, next to an array container of 4,096', async () => {
    const dense = Array.from({ length: 4097 }, (_, i) => i * 3);
    const sparse = Array.from({ length: 4096 }, (_, i) => i * 5);
    const got = await load('bitmap-4097.bin', [[0, [{ key: 2, kind: 'bitmap', values: dense }, { key: 5, kind: 'array', values: sparse }]]]);
    assert.deepEqual(got, [...dense.map((v) => 2 * 65536 + v), ...sparse.map((v) => 5 * 65536 + v)]);
  });

  for (const count of [1, 3, 4, 5, 9]) {
    it(`reads ${count} container(s) with run containers (offset header ${count >= 4 ? 'present' : 'absent'}: at least 4 containers)`, async () => {
      const containers: SpecContainer[] = Array.from({ length: count }, (_, i): SpecContainer =>
        i % 2 === 0
          ? { key: i * 3, kind: 'run', runs: [[10, 5], [100 + i, 5000]] }
          : { key: i * 3, kind: 'array', values: [1, 17, 40000 + i] },
      );
      const bitmaps: Array<[number, SpecContainer[]]> = [[0, containers]];
      assert.deepEqual(await load(`runs-${count}.bin`, bitmaps), expectedIndexes(bitmaps));
    });
  }

  it('reads several bitmaps (high keys beyond 2^32), one with runs and 4 containers, one without runs', async () => {
    const runs4: SpecContainer[] = [0, 1, 2, 3].map((k) => ({ key: k, kind: 'run', runs: [[k, 3]] }));
    const plain: SpecContainer[] = [{ key: 7, kind: 'array', values: [0, 65535] }];
    const bitmaps: Array<[number, SpecContainer[]]> = [[0, plain], [1, runs4], [5, plain]];
    assert.deepEqual(await load('treemap.bin', bitmaps), expectedIndexes(bitmaps));
  });
});
