import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SyncError } from '../errors';
import type { DeletionVectorDescriptor } from './types';
import { z85Decode, z85Encode } from './z85';

/**
 * Deletion vectors per the Delta protocol ("Deletion Vector Format"): a 64-bit
 * RoaringTreemap of deleted row indexes, stored inline (Z85) or in a DV file as
 *   version byte 1 | { int32 BE size | data | int32 BE CRC-32 of data }*
 * where data is the magic number 1681511377 (int32 LE) followed by the portable
 * RoaringTreemap: int64 LE bitmap count, then per bitmap an int32 LE high key and a
 * 32-bit RoaringBitmap in the portable serialization (array, bitmap and run containers).
 */

/** A set of 0-based row indexes within one data file. */
export interface RowIndexSet {
  has(index: number): boolean;
  readonly size: number;
  values(): IterableIterator<number>;
}

const MAGIC = 1681511377;
const SERIAL_COOKIE_NO_RUNCONTAINER = 12346;
const SERIAL_COOKIE = 12347;
const NO_OFFSET_THRESHOLD = 4;
const ARRAY_MAX = 4096;
const TWO_32 = 4294967296;

// ---------------------------------------------------------------- the set

/** One 2^16 chunk: sorted values (sparse) or a 65536-bit bitmap (dense). */
type Container = { kind: 'array'; values: Uint16Array } | { kind: 'bitmap'; words: Uint32Array; cardinality: number };

/** Row indexes grouped by index >>> 16 (as a number, so indexes beyond 2^32 work). */
class ContainerRowIndexSet implements RowIndexSet {
  readonly size: number;
  private readonly keys: number[];

  constructor(private readonly containers: Map<number, Container>) {
    this.keys = [...containers.keys()].sort((a, b) => a - b);
    let size = 0;
    for (const c of containers.values()) size += c.kind === 'array' ? c.values.length : c.cardinality;
    this.size = size;
  }

  has(index: number): boolean {
    if (!Number.isInteger(index) || index < 0) return false;
    const c = this.containers.get(Math.floor(index / 65536));
    if (!c) return false;
    const low = index % 65536;
    if (c.kind === 'bitmap') return (c.words[low >>> 5] & (1 << (low & 31))) !== 0;
    const v = c.values;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const x = v[mid];
      if (x === low) return true;
      if (x < low) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  *values(): IterableIterator<number> {
    for (const key of this.keys) {
      const c = this.containers.get(key) as Container;
      const base = key * 65536;
      if (c.kind === 'array') {
        for (const v of c.values) yield base + v;
      } else {
        for (let w = 0; w < 2048; w++) {
          let word = c.words[w];
          while (word !== 0) {
            const bit = 31 - Math.clz32(word & -word);
            yield base + w * 32 + bit;
            word &= word - 1;
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------- decoding

class Reader {
  offset = 0;
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number): void {
    if (this.offset + n > this.bytes.length) throw new Error(`truncated bitmap (needs ${n} bytes at ${this.offset}, has ${this.bytes.length})`);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }
  take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`bitmap count ${v} is out of range`);
    return Number(v);
  }
}

/** Parses the DV data (magic + portable RoaringTreemap) into a row index set. */
function parseBitmapData(data: Uint8Array): RowIndexSet {
  const r = new Reader(data);
  const magic = r.u32();
  if (magic !== MAGIC) throw new Error(`bad magic number ${magic} (expected ${MAGIC})`);
  const bitmapCount = r.u64();
  const containers = new Map<number, Container>();
  let lastHigh = -1;
  for (let b = 0; b < bitmapCount; b++) {
    const high = r.u32();
    if (high <= lastHigh) throw new Error('bitmap keys are not in ascending order');
    lastHigh = high;
    parseRoaring32(r, high, containers);
  }
  return new ContainerRowIndexSet(containers);
}

/** One portable 32-bit RoaringBitmap; containers are keyed by (high << 16 | key) as numbers. */
function parseRoaring32(r: Reader, high: number, out: Map<number, Container>): void {
  const cookie = r.u32();
  let size: number;
  let runFlags: Uint8Array | undefined;
  if ((cookie & 0xffff) === SERIAL_COOKIE) {
    size = (cookie >>> 16) + 1;
    runFlags = r.take(Math.ceil(size / 8));
  } else if (cookie === SERIAL_COOKIE_NO_RUNCONTAINER) {
    size = r.u32();
  } else {
    throw new Error(`bad RoaringBitmap cookie ${cookie}`);
  }
  if (size > 65536) throw new Error(`bad RoaringBitmap container count ${size}`);
  const keys = new Array<number>(size);
  const cards = new Array<number>(size);
  for (let i = 0; i < size; i++) {
    keys[i] = r.u16();
    cards[i] = r.u16() + 1;
  }
  // Offsets are redundant when reading sequentially; skip them.
  if (!runFlags || size >= NO_OFFSET_THRESHOLD) {
    r.need(4 * size);
    r.offset += 4 * size;
  }
  for (let i = 0; i < size; i++) {
    const isRun = runFlags !== undefined && (runFlags[i >>> 3] & (1 << (i & 7))) !== 0;
    const containerKey = high * 65536 + keys[i];
    let container: Container;
    if (isRun) {
      const runs = r.u16();
      const words = new Uint32Array(2048);
      let cardinality = 0;
      for (let j = 0; j < runs; j++) {
        const start = r.u16();
        const length = r.u16() + 1;
        if (start + length > 65536) throw new Error('run container exceeds 16 bits');
        for (let v = start; v < start + length; v++) words[v >>> 5] |= 1 << (v & 31);
        cardinality += length;
      }
      container = cardinality <= ARRAY_MAX ? { kind: 'array', values: bitmapToArray(words, cardinality) } : { kind: 'bitmap', words, cardinality };
    } else if (cards[i] <= ARRAY_MAX) {
      const values = new Uint16Array(cards[i]);
      for (let j = 0; j < values.length; j++) values[j] = r.u16();
      container = { kind: 'array', values };
    } else {
      const words = new Uint32Array(2048);
      for (let w = 0; w < 2048; w++) words[w] = r.u32();
      let cardinality = 0;
      for (const w of words) cardinality += popcount(w);
      container = { kind: 'bitmap', words, cardinality };
    }
    out.set(containerKey, container);
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function bitmapToArray(words: Uint32Array, cardinality: number): Uint16Array {
  const values = new Uint16Array(cardinality);
  let n = 0;
  for (let w = 0; w < 2048; w++) {
    let word = words[w];
    while (word !== 0) {
      values[n++] = w * 32 + (31 - Math.clz32(word & -word));
      word &= word - 1;
    }
  }
  return values;
}

// ---------------------------------------------------------------- CRC-32

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE, as java.util.zip.CRC32). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------- loading

/** UUID text of the 16 bytes Z85-encoded in the last 20 characters of a 'u' descriptor. */
function uuidFromZ85(encoded: string): string {
  const hex = Buffer.from(z85Decode(encoded)).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The absolute path of the file a 'u' or 'p' descriptor points at. */
export function deletionVectorPath(tableRoot: string, dv: DeletionVectorDescriptor): string {
  if (dv.storageType === 'u') {
    const s = dv.pathOrInlineDv;
    if (s.length < 20) throw new Error(`'${s}' is too short for a relative deletion vector path`);
    const prefix = s.slice(0, s.length - 20);
    const name = `deletion_vector_${uuidFromZ85(s.slice(s.length - 20))}.bin`;
    return prefix ? path.join(tableRoot, prefix, name) : path.join(tableRoot, name);
  }
  if (dv.storageType === 'p') {
    const p = dv.pathOrInlineDv;
    if (/^file:/i.test(p)) return fileURLToPath(p);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) throw new Error(`deletion vector URI scheme of '${p}' is not supported for local tables`);
    return p;
  }
  throw new Error(`storage type '${dv.storageType}' has no file`);
}

/**
 * Loads a DV: storageType 'i' (inline Z85), 'u' (relative path derived from the Z85 UUID
 * with optional random prefix: `<prefix>/deletion_vector_<uuid>.bin`), 'p' (absolute path
 * / file:// URI). Reads the 4-byte size at `offset`, then `sizeInBytes` bytes of data and
 * the CRC-32 after it, checks the magic number and parses the portable RoaringTreemap.
 * Errors: SyncError('delta-file') naming the table, DV path and reason.
 */
export async function loadDeletionVector(tableRoot: string, dv: DeletionVectorDescriptor, table?: string): Promise<RowIndexSet> {
  const where = dv.storageType === 'i' ? 'inline deletion vector' : `deletion vector ${dv.pathOrInlineDv}`;
  const fail = (reason: string, cause?: unknown, hint?: string): SyncError =>
    new SyncError('delta-file', `Cannot read ${where}${table ? ` of table ${table}` : ''}: ${reason}`, {
      table,
      cause,
      hint: hint ?? 'The deletion vector is corrupt; the table cannot be read until it is repaired.',
    });

  let bytes: Uint8Array;
  if (dv.storageType === 'i') {
    try {
      bytes = z85Decode(dv.pathOrInlineDv);
    } catch (e) {
      throw fail((e as Error).message, e);
    }
    if (bytes.length < dv.sizeInBytes) throw fail(`inline data has ${bytes.length} bytes, descriptor says ${dv.sizeInBytes}`);
    bytes = bytes.subarray(0, dv.sizeInBytes);
  } else if (dv.storageType === 'u' || dv.storageType === 'p') {
    let file: string;
    try {
      file = deletionVectorPath(tableRoot, dv);
    } catch (e) {
      throw fail((e as Error).message, e);
    }
    bytes = await readDvFile(file, dv, fail);
  } else {
    throw fail(`unknown storage type '${String(dv.storageType)}'`);
  }

  let set: RowIndexSet;
  try {
    set = parseBitmapData(bytes);
  } catch (e) {
    throw fail((e as Error).message, e);
  }
  if (Number.isInteger(dv.cardinality) && set.size !== dv.cardinality) {
    throw fail(`it holds ${set.size} row indexes, the descriptor says ${dv.cardinality}`);
  }
  return set;
}

async function readDvFile(
  file: string,
  dv: DeletionVectorDescriptor,
  fail: (reason: string, cause?: unknown, hint?: string) => SyncError,
): Promise<Uint8Array> {
  const offset = dv.offset ?? 1;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw fail(
      missing ? `file ${file} is missing` : `cannot open ${file}: ${(e as Error).message}`,
      e,
      missing ? 'The file was probably removed by VACUUM. Read a newer version, or run a full reload.' : undefined,
    );
  }
  try {
    const head = new Uint8Array(4);
    const { bytesRead: headRead } = await handle.read(head, 0, 4, offset);
    if (headRead < 4) throw fail(`file ${file} ends before offset ${offset}`);
    const size = new DataView(head.buffer).getInt32(0, false);
    if (size !== dv.sizeInBytes) throw fail(`size prefix at offset ${offset} of ${file} is ${size}, descriptor says ${dv.sizeInBytes}`);
    const buf = new Uint8Array(size + 4);
    const { bytesRead } = await handle.read(buf, 0, size + 4, offset + 4);
    if (bytesRead < size + 4) throw fail(`file ${file} ends inside the deletion vector at offset ${offset} (size ${size})`);
    const data = buf.subarray(0, size);
    const expected = new DataView(buf.buffer).getUint32(size, false);
    const actual = crc32(data);
    if (expected !== actual) throw fail(`checksum mismatch in ${file} at offset ${offset} (stored ${expected}, computed ${actual})`);
    return data;
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------- encoding (test fixtures)

/** The DV data bytes (magic + portable RoaringTreemap) of a set of row indexes. */
function encodeBitmapData(indices: Iterable<number>): { data: Uint8Array; cardinality: number } {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  for (const i of sorted) {
    if (!Number.isSafeInteger(i) || i < 0) throw new RangeError(`row index ${i} is not a non-negative safe integer`);
  }
  // Group by high 32 bits, then by 16-bit container key.
  const highs = new Map<number, Map<number, number[]>>();
  for (const i of sorted) {
    const high = Math.floor(i / TWO_32);
    const low = i % TWO_32;
    const key = Math.floor(low / 65536);
    let byKey = highs.get(high);
    if (!byKey) highs.set(high, (byKey = new Map()));
    let vals = byKey.get(key);
    if (!vals) byKey.set(key, (vals = []));
    vals.push(low % 65536);
  }
  const parts: number[] = [];
  const u16 = (v: number): void => {
    parts.push(v & 0xff, (v >>> 8) & 0xff);
  };
  const u32 = (v: number): void => {
    parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  };
  u32(MAGIC);
  u32(highs.size);
  u32(0); // high half of the int64 bitmap count
  for (const [high, byKey] of highs) {
    u32(high);
    const bitmapStart = parts.length;
    const keys = [...byKey.keys()];
    // Pick the smallest container per key, as CRoaring's runOptimize does.
    const containers = keys.map((k) => {
      const vals = byKey.get(k) as number[];
      const runs: Array<[number, number]> = [];
      for (const v of vals) {
        const last = runs[runs.length - 1];
        if (last && last[0] + last[1] === v) last[1]++;
        else runs.push([v, 1]);
      }
      const runBytes = 2 + 4 * runs.length;
      const arrayBytes = vals.length <= ARRAY_MAX ? 2 * vals.length : Infinity;
      const kind = runBytes < Math.min(arrayBytes, 8192) ? 'run' : vals.length <= ARRAY_MAX ? 'array' : 'bitmap';
      return { key: k, vals, runs, kind };
    });
    const hasRun = containers.some((c) => c.kind === 'run');
    if (hasRun) {
      u32(SERIAL_COOKIE | ((containers.length - 1) << 16));
      const flags = new Uint8Array(Math.ceil(containers.length / 8));
      containers.forEach((c, i) => {
        if (c.kind === 'run') flags[i >>> 3] |= 1 << (i & 7);
      });
      parts.push(...flags);
    } else {
      u32(SERIAL_COOKIE_NO_RUNCONTAINER);
      u32(containers.length);
    }
    for (const c of containers) {
      u16(c.key);
      u16(c.vals.length - 1);
    }
    const sizes = containers.map((c) => (c.kind === 'run' ? 2 + 4 * c.runs.length : c.kind === 'array' ? 2 * c.vals.length : 8192));
    if (!hasRun || containers.length >= NO_OFFSET_THRESHOLD) {
      // Offsets count from the start of this 32-bit bitmap (its cookie).
      let at = parts.length + 4 * containers.length - bitmapStart;
      for (const size of sizes) {
        u32(at);
        at += size;
      }
    }
    for (const c of containers) {
      if (c.kind === 'run') {
        u16(c.runs.length);
        for (const [start, len] of c.runs) {
          u16(start);
          u16(len - 1);
        }
      } else if (c.kind === 'array') {
        for (const v of c.vals) u16(v);
      } else {
        const words = new Uint32Array(2048);
        for (const v of c.vals) words[v >>> 5] |= 1 << (v & 31);
        for (const w of words) u32(w);
      }
    }
  }
  return { data: Uint8Array.from(parts), cardinality: sorted.length };
}

/**
 * For the project's own test-fixture writer: a DV file body holding one DV (version byte
 * 1, int32 BE size, data, int32 BE CRC-32), with the descriptor's offset and sizeInBytes.
 */
export function encodeDeletionVectorFile(indices: Iterable<number>): {
  bytes: Uint8Array;
  offset: number;
  sizeInBytes: number;
  cardinality: number;
} {
  const { data, cardinality } = encodeBitmapData(indices);
  const bytes = new Uint8Array(1 + 4 + data.length + 4);
  const view = new DataView(bytes.buffer);
  bytes[0] = 1;
  view.setInt32(1, data.length, false);
  bytes.set(data, 5);
  view.setUint32(5 + data.length, crc32(data), false);
  return { bytes, offset: 1, sizeInBytes: data.length, cardinality };
}

/** For the project's own test-fixture writer: an inline ('i') DV payload (Z85, zero-padded to 4 bytes). */
export function encodeInlineDeletionVector(indices: Iterable<number>): {
  pathOrInlineDv: string;
  sizeInBytes: number;
  cardinality: number;
} {
  const { data, cardinality } = encodeBitmapData(indices);
  const padded = new Uint8Array(Math.ceil(data.length / 4) * 4);
  padded.set(data);
  return { pathOrInlineDv: z85Encode(padded), sizeInBytes: data.length, cardinality };
}
