import type { DeltaValue } from '../delta/types';
import type { TargetColumn } from '../ports/targetTypes';
import { formatDate, formatTimestamp, toExactJson, ValueEncodeError } from './copyEncoder';

/**
 * The one value formatter of previews: a Delta value shown as the text Postgres prints for
 * it once stored in its target column (`value::text` in a session with `TimeZone` UTC and
 * `DateStyle` ISO, which is how previewChanges reads rows that are in Postgres).
 *
 * So a row of an initial load into a missing table (formatted here, from the Delta
 * snapshot) and the same row in an incremental preview or in the target (read back as
 * text) look the same: dates `2023-12-21`, timestamps `2022-09-27 19:44:46.618568+00`
 * (fraction trimmed as Postgres trims it), binary `\x3132`, jsonb normalized (`{"a": 1}`,
 * keys in jsonb order). 64-bit integers and decimals keep every digit.
 *
 * A value the target cannot hold (a timestamp beyond 294276 AD, a NUL in text) is not
 * thrown: it is shown as `<invalid: ...>`; the pre-apply checks (checkRows) report it.
 */
export function formatValue(v: DeltaValue | undefined, column: TargetColumn): string | null {
  if (v === null || v === undefined) return null;
  try {
    return formatOrThrow(v, column);
  } catch (e) {
    if (e instanceof ValueEncodeError) return `<invalid: ${e.message}>`;
    throw e;
  }
}

/** As formatValue, but a value the target cannot hold throws the encoder's ValueEncodeError. */
export function formatOrThrow(v: DeltaValue, column: TargetColumn): string {
  const type = column.source.type;
  const pg = column.pgType.toLowerCase();
  switch (type.kind) {
    case 'decimal':
      return typeof v === 'string' ? v : String(v);
    case 'struct':
    case 'array':
    case 'map': {
      const json = toExactJson(v, type, column.name);
      return pg === 'jsonb' ? jsonbText(json) : json;
    }
    case 'primitive':
      switch (type.name) {
        case 'string':
          if (typeof v === 'string') {
            if (v.includes('\u0000')) throw new ValueEncodeError(`Column "${column.name}" has a NUL character (U+0000), which Postgres text cannot store.`, column.name, '22021');
            return v;
          }
          return toExactJson(v, type, column.name);
        case 'long':
        case 'integer':
        case 'short':
        case 'byte':
          return String(v);
        case 'float':
        case 'double':
          return typeof v === 'number' ? floatText(v, type.name === 'float' && !/double|float8/.test(pg)) : String(v);
        case 'boolean':
          return pg.startsWith('bool') ? (v ? 'true' : 'false') : v ? 't' : 'f';
        case 'binary':
          return v instanceof Uint8Array ? `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}` : String(v);
        case 'date':
          return typeof v === 'number' ? formatDate(v, column.name) : String(v);
        case 'timestamp':
        case 'timestamp_ntz': {
          if (typeof v !== 'bigint' && typeof v !== 'number') return String(v);
          const withZone = type.name === 'timestamp';
          const text = formatTimestamp(v, withZone, column.name);
          // Postgres prints no trailing zeros in the fraction (".5", not ".500000").
          return /^(timestamp|date)/.test(pg) ? text.replace(/(\.\d*?)0+(?=\+00| BC|$)/, '$1').replace(/\.(?=\+00| BC|$)/, '') : text;
        }
        case 'variant':
          // The decoded variant is JSON text; shown as jsonb prints it (a text override keeps it as decoded).
          return typeof v === 'string' ? (pg === 'jsonb' ? jsonbText(v) : v) : String(v);
      }
  }
  return String(v);
}

/**
 * float8out / float4out with extra_float_digits 1 (the default since Postgres 12): the
 * shortest exact digits, in exponent form when the decimal exponent is below -4 or at
 * least 15 (real: 6), the exponent with at least two digits.
 */
export function floatText(x: number, single: boolean): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mant, e] = x.toExponential().split('e') as [string, string];
  const realExp = Number(e);
  if (realExp < -4 || realExp >= (single ? 6 : 15)) {
    const sign = realExp < 0 ? '-' : '+';
    const digits = String(Math.abs(realExp)).padStart(2, '0');
    return `${mant}e${sign}${digits}`;
  }
  return String(x);
}

// ---------------------------------------------------------------- jsonb text

/**
 * numeric's output of a JSON number literal: plain digits, scale = fraction digits minus
 * the exponent (at least 0), no sign on zero. Other tokens (true, false, null) unchanged.
 */
function numericText(tok: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(tok);
  if (!m) return tok;
  const frac = m[3] ?? '';
  const exp = m[4] === undefined ? 0 : Number(m[4]);
  if (exp === 0 && !/^0\d/.test(m[2] as string)) {
    return m[1] === '-' && /^[0.]+$/.test(`${m[2]}${frac}`) ? tok.slice(1).replace(/[eE].*$/, '') : tok.replace(/[eE].*$/, '');
  }
  const scale = Math.max(0, frac.length - exp);
  // value = digits * 10^(exp - frac.length); written with `scale` fraction digits.
  let digits = `${m[2]}${frac}`;
  const shift = exp - frac.length + scale; // >= 0: zeros to append
  digits += '0'.repeat(shift);
  digits = digits.padStart(scale + 1, '0');
  let text = scale > 0 ? `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}` : digits;
  text = text.replace(/^0+(?=\d)/, '');
  const zero = /^[0.]+$/.test(text);
  return m[1] === '-' && !zero ? `-${text}` : text;
}

type Json = { t: 'raw'; s: string } | { t: 'arr'; v: Json[] } | { t: 'obj'; v: [string, Json][] };

/**
 * jsonb's output of a JSON text: `{"a": 1, "b": [1, 2]}` (a space after `:` and `,`),
 * object keys unique (the last wins) and ordered shorter first, then by UTF-8 bytes;
 * strings as written, numbers as numeric prints them (every digit kept, exponent form
 * written out: `1e+21` -> `1000000000000000000000`, `1.5e-7` -> `0.00000015`, `-0` -> `0`).
 */
export function jsonbText(json: string): string {
  let i = 0;
  const ws = (): void => {
    while (i < json.length && /\s/.test(json[i] as string)) i++;
  };
  const str = (): string => {
    const start = i++;
    while (i < json.length && json[i] !== '"') i += json[i] === '\\' ? 2 : 1;
    i++;
    return json.slice(start, i);
  };
  const value = (): Json => {
    ws();
    const c = json[i];
    if (c === '{') {
      i++;
      const byKey = new Map<string, Json>();
      ws();
      if (json[i] === '}') {
        i++;
        return { t: 'obj', v: [] };
      }
      for (;;) {
        ws();
        const k = JSON.parse(str()) as string;
        ws();
        i++; // ':'
        byKey.delete(k);
        byKey.set(k, value());
        ws();
        if (json[i++] === '}') break;
      }
      return { t: 'obj', v: [...byKey] };
    }
    if (c === '[') {
      i++;
      const items: Json[] = [];
      ws();
      if (json[i] === ']') {
        i++;
        return { t: 'arr', v: items };
      }
      for (;;) {
        items.push(value());
        ws();
        if (json[i++] === ']') break;
      }
      return { t: 'arr', v: items };
    }
    if (c === '"') return { t: 'raw', s: JSON.stringify(JSON.parse(str()) as string) };
    const start = i;
    while (i < json.length && !/[\s,\]}]/.test(json[i] as string)) i++;
    return { t: 'raw', s: numericText(json.slice(start, i)) };
  };
  const keyOrder = (a: string, b: string): number => {
    const x = Buffer.from(a, 'utf8');
    const y = Buffer.from(b, 'utf8');
    return x.length - y.length || Buffer.compare(x, y);
  };
  const out = (j: Json): string => {
    switch (j.t) {
      case 'raw':
        return j.s;
      case 'arr':
        return `[${j.v.map(out).join(', ')}]`;
      case 'obj':
        return `{${[...j.v].sort((a, b) => keyOrder(a[0], b[0])).map(([k, x]) => `${JSON.stringify(k)}: ${out(x)}`).join(', ')}}`;
    }
  };
  return out(value());
}
