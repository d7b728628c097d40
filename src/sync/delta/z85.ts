/**
 * Z85 (ZeroMQ RFC 32) as the Delta protocol uses it for deletion vectors: inline bitmaps
 * ('i') and the UUID of a relative DV file ('u'). Input to encode and output of decode
 * are multiples of 4 bytes; callers pad and trim.
 */

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

const DECODE: Int16Array = (() => {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/**
 * Decodes a Z85 string (length a multiple of 5) into bytes (4 per 5 characters).
 *
 * A final group may be a padded tail as the Rust `z85` crate writes it (delta-kernel-rs
 * writes inline DVs that way): k leading '#' characters, then 5-k digits holding 4-k
 * bytes. '#' is digit 84, and no full group can start with it (84 * 85^4 > 2^32 - 1), so
 * the two forms cannot be confused.
 */
export function z85Decode(s: string): Uint8Array {
  if (s.length % 5 !== 0) throw new Error(`Z85 input length ${s.length} is not a multiple of 5`);
  const out = new Uint8Array((s.length / 5) * 4);
  let o = 0;
  for (let i = 0; i < s.length; i += 5) {
    let pad = 0;
    if (i + 5 === s.length) while (pad < 4 && s[i + pad] === '#') pad++;
    let value = 0;
    for (let j = pad; j < 5; j++) {
      const code = s.charCodeAt(i + j);
      const digit = code < 128 ? DECODE[code] : -1;
      if (digit < 0) throw new Error(`Invalid Z85 character '${s[i + j]}' at position ${i + j}`);
      value = value * 85 + digit;
    }
    const width = 4 - pad;
    if (width <= 0 || value >= 2 ** (8 * width)) throw new Error(`Z85 group at position ${i} exceeds ${8 * Math.max(width, 0)} bits`);
    for (let b = width - 1; b >= 0; b--) {
      out[o + b] = value % 256;
      value = Math.floor(value / 256);
    }
    o += width;
  }
  return o === out.length ? out : out.subarray(0, o);
}

/** Encodes bytes (length a multiple of 4) as Z85. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new Error(`Z85 input length ${bytes.length} is not a multiple of 4`);
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
    const chars = new Array<string>(5);
    for (let j = 4; j >= 0; j--) {
      chars[j] = ALPHABET[value % 85];
      value = Math.floor(value / 85);
    }
    out += chars.join('');
  }
  return out;
}
