import type { NetKey } from './netChanges';

/**
 * An exact set of NetKeys kept in typed arrays outside the JS heap: planSteps' per-version
 * bookkeeping of a commit applied in parts (the keys it upserted, the inserts awaiting an
 * excuse), which grows with the commit, not with the part.
 *
 * Why not a `Set<NetKey>`: a string key in a Set costs about 80 bytes of JS heap (the
 * string, the table entry), 68 MB for the 900k keys a 1M-change MERGE upserts, and that
 * heap is old generation, which V8 lets grow well past the live size between full
 * collections. Here a key costs its bytes (one per character for Latin-1 strings) plus
 * about 12 bytes of table, in buffers the collector never walks.
 *
 * Equality is the Set's (SameValueZero): each key is written as a type tag and its exact
 * content (strings as Latin-1 bytes when every code unit fits, else as UTF-16 code units;
 * numbers as float64 with -0 folded into 0 and one NaN; bigints as their decimal digits),
 * and a probe compares those bytes in full, so two keys are equal here exactly when the Set
 * would say so: a hash collision costs a comparison, never a false match.
 */
export class KeySet {
  /** Encoded keys, back to back. */
  private arena = new Uint8Array(1 << 16);
  private used = 0;
  private view: DataView | undefined;
  /** hash() of the key encode() last wrote. */
  private tailHash = 0;
  /** Start of key i in `arena` (its end is starts[i + 1], or `used` for the last). */
  private starts = new Int32Array(1 << 12);
  private count = 0;
  /** Open addressing: key index + 1, 0 empty, -1 deleted. Power-of-two length. */
  private slots = new Int32Array(1 << 12);
  /** Slots that are not empty (live or deleted): the table's load. */
  private filled = 0;
  private live = 0;

  get size(): number {
    return this.live;
  }

  has(key: NetKey): boolean {
    const len = this.encode(key);
    return this.find(this.tailHash, len) >= 0;
  }

  /** Adds the key; false if it was there already. */
  add(key: NetKey): boolean {
    const len = this.encode(key);
    const h = this.tailHash;
    if (this.find(h, len) >= 0) return false;
    if ((this.filled + 1) * 4 > this.slots.length * 3) this.rehash();
    if (this.count + 1 >= this.starts.length) {
      const starts = new Int32Array(this.starts.length * 2);
      starts.set(this.starts);
      this.starts = starts;
    }
    this.starts[this.count] = this.used;
    this.used += len;
    this.count++;
    this.place(h, this.count);
    this.filled++;
    this.live++;
    return true;
  }

  /** Removes the key; false if it was not there. Its bytes stay in the arena until clear(). */
  delete(key: NetKey): boolean {
    const len = this.encode(key);
    const slot = this.find(this.tailHash, len);
    if (slot < 0) return false;
    this.slots[slot] = -1;
    this.live--;
    return true;
  }

  /** Bytes held (arena and tables). */
  get bytes(): number {
    return this.arena.byteLength + this.starts.byteLength + this.slots.byteLength;
  }

  /**
   * Writes the key's encoding at the arena's end (not yet counted in `used`); returns its
   * length, and its hash in `tailHash`. Tags: 1 Latin-1 string, 2 UTF-16 string, 3 number, 4 bigint, 5 boolean.
   */
  private encode(key: NetKey): number {
    switch (typeof key) {
      case 'string': {
        const n = key.length;
        this.reserve(1 + 2 * n);
        const a = this.arena;
        const at = this.used;
        // Written and hashed in one pass (FNV-1a, as hash()), tag 1 first.
        let h = Math.imul(0x811c9dc5 ^ 1, 0x01000193);
        let i = 0;
        for (; i < n; i++) {
          const c = key.charCodeAt(i);
          if (c > 0xff) break;
          a[at + 1 + i] = c;
          h = Math.imul(h ^ c, 0x01000193);
        }
        if (i === n) {
          a[at] = 1;
          this.tailHash = mix(h);
          return 1 + n;
        }
        a[at] = 2;
        for (i = 0; i < n; i++) {
          const c = key.charCodeAt(i);
          a[at + 1 + 2 * i] = c & 0xff;
          a[at + 2 + 2 * i] = c >>> 8;
        }
        this.tailHash = this.hash(at, 1 + 2 * n);
        return 1 + 2 * n;
      }
      case 'number': {
        this.reserve(9);
        this.arena[this.used] = 3;
        // SameValueZero: -0 is 0, every NaN is one NaN.
        const v = key === 0 ? 0 : Number.isNaN(key) ? Number.NaN : key;
        if (this.view?.buffer !== this.arena.buffer) this.view = new DataView(this.arena.buffer);
        this.view.setFloat64(this.used + 1, v, true);
        this.tailHash = this.hash(this.used, 9);
        return 9;
      }
      case 'bigint': {
        const len = this.writeAscii(4, key.toString());
        this.tailHash = this.hash(this.used, len);
        return len;
      }
      case 'boolean':
        this.reserve(2);
        this.arena[this.used] = 5;
        this.arena[this.used + 1] = key ? 1 : 0;
        this.tailHash = this.hash(this.used, 2);
        return 2;
    }
  }

  private writeAscii(tag: number, s: string): number {
    this.reserve(1 + s.length);
    this.arena[this.used] = tag;
    for (let i = 0; i < s.length; i++) this.arena[this.used + 1 + i] = s.charCodeAt(i);
    return 1 + s.length;
  }

  /** FNV-1a over `len` bytes of the arena from `at`. */
  private hash(at: number, len: number): number {
    const a = this.arena;
    let h = 0x811c9dc5;
    for (let i = at, end = at + len; i < end; i++) h = Math.imul(h ^ (a[i] as number), 0x01000193);
    return mix(h);
  }

  /** The slot of the key encoded at the arena's end, or -1. */
  private find(h: number, len: number): number {
    const mask = this.slots.length - 1;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const k = this.slots[s] as number;
      if (k === 0) return -1;
      if (k > 0 && this.equalsTail(k - 1, len)) return s;
    }
  }

  private equalsTail(index: number, len: number): boolean {
    const start = this.starts[index] as number;
    if (this.end(index) - start !== len) return false;
    const a = this.arena;
    for (let i = 0; i < len; i++) if (a[start + i] !== a[this.used + i]) return false;
    return true;
  }

  /** End of key `index` in the arena. */
  private end(index: number): number {
    return index + 1 < this.count ? (this.starts[index + 1] as number) : this.used;
  }

  private place(h: number, value: number): void {
    const mask = this.slots.length - 1;
    let s = h & mask;
    while (this.slots[s] !== 0) s = (s + 1) & mask;
    this.slots[s] = value;
  }

  /** A table twice as big when the live keys fill half of it, else the same size; drops deleted slots. */
  private rehash(): void {
    const oldSlots = this.slots;
    const size = this.live * 2 >= oldSlots.length ? oldSlots.length * 2 : oldSlots.length;
    this.slots = new Int32Array(size);
    for (let s = 0; s < oldSlots.length; s++) {
      const k = oldSlots[s] as number;
      if (k > 0) this.place(this.hash(this.starts[k - 1] as number, this.end(k - 1) - (this.starts[k - 1] as number)), k);
    }
    this.filled = this.live;
  }

  /** Room for `n` more bytes at the arena's end. */
  private reserve(n: number): void {
    if (this.used + n <= this.arena.length) return;
    let size = this.arena.length * 2;
    while (this.used + n > size) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.arena.subarray(0, this.used));
    this.arena = next;
  }
}

/** Spreads FNV's bits into the low ones, which pick the slot. */
function mix(h: number): number {
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}
