/**
 * Variant values as bytes, assembled by hand from the Parquet Variant encoding spec
 * (VariantEncoding.md): header bytes, little-endian sizes and offsets, dictionary ids.
 * Independent of the decoder in src/sync/delta/variant.ts.
 */

export function le(value: bigint | number, width: number): number[] {
  let v = BigInt.asUintN(width * 8, BigInt(value));
  const out: number[] = [];
  for (let i = 0; i < width; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

/** Metadata: header (version 1, sorted bit, offset size), dictionary size, offsets, UTF-8 names. */
export function meta(names: string[], opts: { sorted?: boolean; offsetSize?: number } = {}): Uint8Array {
  const size = opts.offsetSize ?? 1;
  const bytes = names.map((n) => [...Buffer.from(n, 'utf8')]);
  const offsets = [0];
  for (const b of bytes) offsets.push((offsets.at(-1) as number) + b.length);
  return new Uint8Array([
    0x01 | (opts.sorted ? 0x10 : 0) | ((size - 1) << 6),
    ...le(names.length, size),
    ...offsets.flatMap((o) => le(o, size)),
    ...bytes.flat(),
  ]);
}

export const prim = (typeId: number, ...payload: number[]): number[] => [typeId << 2, ...payload];
export const shortStr = (s: string): number[] => {
  const b = [...Buffer.from(s, 'utf8')];
  return [(b.length << 2) | 1, ...b];
};

/** Object: fields as [dictionary id, encoded value], written in the order given. */
export function obj(fields: Array<[number, number[]]>, opts: { idSize?: number; offsetSize?: number; large?: boolean } = {}): number[] {
  const idSize = opts.idSize ?? 1;
  const offSize = opts.offsetSize ?? 1;
  const header = ((((opts.large ? 1 : 0) << 4) | ((idSize - 1) << 2) | (offSize - 1)) << 2) | 2;
  const offsets: number[] = [];
  let at = 0;
  for (const [, v] of fields) {
    offsets.push(at);
    at += v.length;
  }
  offsets.push(at);
  return [
    header,
    ...le(fields.length, opts.large ? 4 : 1),
    ...fields.flatMap(([id]) => le(id, idSize)),
    ...offsets.flatMap((o) => le(o, offSize)),
    ...fields.flatMap(([, v]) => v),
  ];
}

export function arr(items: number[][], opts: { offsetSize?: number; large?: boolean } = {}): number[] {
  const offSize = opts.offsetSize ?? 1;
  const header = ((((opts.large ? 1 : 0) << 2) | (offSize - 1)) << 2) | 3;
  const offsets: number[] = [];
  let at = 0;
  for (const v of items) {
    offsets.push(at);
    at += v.length;
  }
  offsets.push(at);
  return [header, ...le(items.length, opts.large ? 4 : 1), ...offsets.flatMap((o) => le(o, offSize)), ...items.flat()];
}

export function f64(x: number): number[] {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return [...b];
}
export function f32(x: number): number[] {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return [...b];
}

