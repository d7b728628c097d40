import type { DeltaValue } from '../delta/types';

/**
 * A string that is equal for two key tuples exactly when Postgres would consider the keys
 * equal (for the value representation of delta/types.ts), used as a Map key.
 *
 * Each value is tagged by its JS type and strings/binaries are length-prefixed, so tuples
 * never collide by concatenation ("a,b" + "c" vs "a" + "b,c"), and a string "1" never
 * equals a number 1. bigint (long, timestamps) and decimal strings keep every digit;
 * numbers use the shortest round-trip form (0 and -0 encode alike, as in Postgres).
 * Decimals are strings in canonical form with the column's scale, so equal decimals of
 * one column are equal strings; the one exception, a negative zero, is folded by
 * NetChangeBuffer when it knows the key's types.
 */
export function encodeKey(values: readonly DeltaValue[]): string {
  let out = '';
  for (const v of values) out += encodeValue(v) + ';';
  return out;
}

export function encodeValue(v: DeltaValue): string {
  if (v === null) return 'N';
  switch (typeof v) {
    case 'boolean':
      return v ? 'T' : 'F';
    case 'number':
      return `n${String(v)}`; // String(-0) === '0'
    case 'bigint':
      return `b${v.toString()}`;
    case 'string':
      return `s${v.length}:${v}`;
  }
  if (v instanceof Uint8Array) return `x${v.length}:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  if (v instanceof Map) {
    let s = `m${v.size}{`;
    for (const [k, val] of v) s += encodeValue(k) + '=' + encodeValue(val) + ',';
    return s + '}';
  }
  if (Array.isArray(v)) return `a${v.length}[${v.map(encodeValue).join(',')}]`;
  // A struct: fields in schema order (the reader builds them in that order).
  const entries = Object.entries(v);
  return `r${entries.length}{${entries.map(([k, x]) => `${k.length}:${k}=${encodeValue(x)}`).join(',')}}`;
}
