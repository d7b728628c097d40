import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SchemaTree } from 'hyparquet' with { 'resolution-mode': 'import' };
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { compileConverter } from '../../src/sync/delta/parquetConverters';
import { assertReadable } from '../../src/sync/delta/protocolSupport';
import { parseSchemaString } from '../../src/sync/delta/schema';
import type { DeltaType, DeltaValue } from '../../src/sync/delta/types';
import { VariantDecodeError, variantToJson } from '../../src/sync/delta/variant';
import { SyncError } from '../../src/sync/errors';
import { defaultPgType } from '../../src/sync/mapping/resolveColumns';
import { arr, f32, f64, le, meta, obj, prim, shortStr } from '../builders/variantBytes';

/**
 * The decoder against bytes assembled here by hand from the Parquet Variant encoding spec
 * (VariantEncoding.md): header bytes, little-endian sizes and offsets, dictionary ids.
 */

const EMPTY_META = meta([]);
const decode = (value: number[], m: Uint8Array = EMPTY_META): string => variantToJson(m, new Uint8Array(value));

describe('variant decoding (Parquet Variant binary encoding -> exact JSON)', () => {
  it('null and booleans', () => {
    assert.equal(decode(prim(0)), 'null');
    assert.equal(decode(prim(1)), 'true');
    assert.equal(decode(prim(2)), 'false');
  });

  it('int8, int16, int32 and int64 keep every digit', () => {
    assert.equal(decode(prim(3, ...le(-5, 1))), '-5');
    assert.equal(decode(prim(4, ...le(-300, 2))), '-300');
    assert.equal(decode(prim(5, ...le(2147483647, 4))), '2147483647');
    assert.equal(decode(prim(6, ...le(9223372036854775807n, 8))), '9223372036854775807');
    assert.equal(decode(prim(6, ...le(-9223372036854775808n, 8))), '-9223372036854775808');
  });

  it('doubles as the shortest round-trip number; non-finite ones as strings', () => {
    assert.equal(decode(prim(7, ...f64(0.1))), '0.1');
    assert.equal(decode(prim(7, ...f64(1e21))), '1e+21');
    assert.equal(decode(prim(7, ...f64(-2.5e-8))), '-2.5e-8');
    assert.equal(decode(prim(7, ...f64(NaN))), '"NaN"');
    assert.equal(decode(prim(7, ...f64(Infinity))), '"Infinity"');
    assert.equal(decode(prim(7, ...f64(-Infinity))), '"-Infinity"');
  });

  it('floats as the shortest decimal of the float32', () => {
    assert.equal(decode(prim(14, ...f32(3.14))), '3.14');
  });

  it('decimal4/8/16 keep their scale exactly (trailing zeros included)', () => {
    assert.equal(decode(prim(8, 2, ...le(150, 4))), '1.50');
    assert.equal(decode(prim(9, 3, ...le(-5, 8))), '-0.005');
    assert.equal(decode(prim(10, 0, ...le(10n ** 38n - 1n, 16))), '99999999999999999999999999999999999999');
    assert.equal(decode(prim(10, 38, ...le(-(10n ** 38n - 1n), 16))), '-0.99999999999999999999999999999999999999');
  });

  it('date, timestamps (micros and nanos, with and without zone) and time', () => {
    assert.equal(decode(prim(11, ...le(19723, 4))), '"2024-01-01"');
    assert.equal(decode(prim(11, ...le(-1, 4))), '"1969-12-31"');
    assert.equal(decode(prim(12, ...le(1704067200123456n, 8))), '"2024-01-01T00:00:00.123456+00:00"');
    assert.equal(decode(prim(13, ...le(1704067200123456n, 8))), '"2024-01-01T00:00:00.123456"');
    assert.equal(decode(prim(18, ...le(1704067200123456789n, 8))), '"2024-01-01T00:00:00.123456789+00:00"');
    assert.equal(decode(prim(19, ...le(-1n, 8))), '"1969-12-31T23:59:59.999999999"');
    assert.equal(decode(prim(17, ...le(3723000001n, 8))), '"01:02:03.000001"');
  });

  it('timestamps keep every fraction digit, trailing zeros included, and UTC ones end in +00:00; times too (the spec\'s JSON conversion table, parquet-java\'s converter)', () => {
    assert.equal(decode(prim(12, ...le(0n, 8))), '"1970-01-01T00:00:00.000000+00:00"');
    assert.equal(decode(prim(12, ...le(1704067200120000n, 8))), '"2024-01-01T00:00:00.120000+00:00"');
    assert.equal(decode(prim(12, ...le(-1n, 8))), '"1969-12-31T23:59:59.999999+00:00"');
    assert.equal(decode(prim(13, ...le(1704067200000000n, 8))), '"2024-01-01T00:00:00.000000"');
    assert.equal(decode(prim(13, ...le(1704067200500000n, 8))), '"2024-01-01T00:00:00.500000"');
    assert.equal(decode(prim(18, ...le(1704067200000000000n, 8))), '"2024-01-01T00:00:00.000000000+00:00"');
    assert.equal(decode(prim(19, ...le(1704067200000000000n, 8))), '"2024-01-01T00:00:00.000000000"');
    assert.equal(decode(prim(19, ...le(1704067200100000000n, 8))), '"2024-01-01T00:00:00.100000000"');
    assert.equal(decode(prim(17, ...le(3723000000n, 8))), '"01:02:03.000000"');
    assert.equal(decode(prim(17, ...le(0n, 8))), '"00:00:00.000000"');
  });

  it('an integral double or float still has a fraction (the spec\'s JSON conversion table: 1.0, not 1)', () => {
    assert.equal(decode(prim(7, ...f64(1))), '1.0');
    assert.equal(decode(prim(7, ...f64(-2147483648))), '-2147483648.0');
    assert.equal(decode(prim(7, ...f64(-0))), '-0.0');
    assert.equal(decode(prim(7, ...f64(1e20))), '100000000000000000000.0');
    assert.equal(decode(prim(14, ...f32(16777216))), '16777216.0');
    assert.equal(decode(prim(14, ...f32(0))), '0.0');
  });

  it('binary as base64, strings (short and long) and uuid', () => {
    assert.equal(decode(prim(15, ...le(4, 4), 0, 1, 254, 255)), '"AAH+/w=="');
    const long = 'é"\\'.repeat(40);
    const bytes = [...Buffer.from(long, 'utf8')];
    assert.equal(decode(prim(16, ...le(bytes.length, 4), ...bytes)), JSON.stringify(long));
    assert.equal(decode(shortStr('hi 🦆')), '"hi 🦆"');
    assert.equal(decode(shortStr('')), '""');
    const uuid = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
    assert.equal(decode(prim(20, ...uuid)), '"00112233-4455-6677-8899-aabbccddeeff"');
  });

  it('objects take their names from the dictionary, sorted or not', () => {
    // Unsorted dictionary ["b", "a"]; the object lists its fields by name (a, b).
    assert.equal(decode(obj([[1, prim(3, 1)], [0, shortStr('x')]]), meta(['b', 'a'])), '{"a":1,"b":"x"}');
    assert.equal(decode(obj([[0, prim(3, 1)], [1, prim(0)]]), meta(['a', 'b'], { sorted: true })), '{"a":1,"b":null}');
    assert.equal(decode(obj([])), '{}');
  });

  it('wide ids and offsets, large counts, and values stored out of field order', () => {
    const names = Array.from({ length: 300 }, (_, i) => `k${i}`);
    const m = meta(names, { offsetSize: 2 });
    assert.equal(decode(obj([[299, prim(1)], [5, shortStr('v')]], { idSize: 2, offsetSize: 2, large: true }), m), '{"k299":true,"k5":"v"}');
    // Offsets need not follow the field order: field 0's value is stored after field 1's.
    const m2 = meta(['a', 'b']);
    const valueA = prim(3, 7);
    const valueB = shortStr('bb');
    const manual = [(0 << 2) | 2, 2, 0, 1, valueB.length, 0, valueA.length + valueB.length, ...valueB, ...valueA];
    assert.equal(decode(manual, m2), '{"a":7,"b":"bb"}');
  });

  it('arrays, nested with objects and nulls at every level', () => {
    const m = meta(['key', 'v']);
    const inner = obj([[0, prim(3, 42)]]);
    assert.equal(decode(arr([inner, prim(0), arr([prim(0), inner]), obj([[1, prim(0)]])]), m), '[{"key":42},null,[null,{"key":42}],{"v":null}]');
    assert.equal(decode(arr([])), '[]');
    const many = Array.from({ length: 300 }, (_, i) => prim(4, ...le(i, 2)));
    assert.equal(decode(arr(many, { offsetSize: 2, large: true })), `[${Array.from({ length: 300 }, (_, i) => i).join(',')}]`);
  });

  it('the bytes Spark wrote for {"key": 0} (delta-kernel-rs unshredded-variant.expected.in)', () => {
    assert.equal(variantToJson(Buffer.from('010100036b6579', 'hex'), Buffer.from('02010000020c00', 'hex')), '{"key":0}');
  });

  it('malformed input is refused with VariantDecodeError', () => {
    assert.throws(() => variantToJson(new Uint8Array([0x02, 0, 0]), new Uint8Array(prim(0))), (e: unknown) => e instanceof VariantDecodeError && /version 2/.test(e.message));
    assert.throws(() => decode(prim(6, 1, 2, 3)), (e: unknown) => e instanceof VariantDecodeError && /truncated/.test(e.message));
    assert.throws(() => decode(prim(30)), (e: unknown) => e instanceof VariantDecodeError && /type id 30/.test(e.message));
    assert.throws(() => decode(obj([[3, prim(0)]]), meta(['a'])), (e: unknown) => e instanceof VariantDecodeError && /field id 3/.test(e.message));
    assert.throws(() => decode(shortStr('a\u0000b')), (e: unknown) => e instanceof VariantDecodeError && /NUL/.test(e.message));
  });
});

describe('variant columns: what the reader accepts and refuses', () => {
  const ctx = { filePath: '/t/part-0.parquet', table: '/t', version: 4, mode: 'none' as const };
  const leaf = (name: string): SchemaTree => ({ element: { name, type: 'BYTE_ARRAY', repetition_type: 'REQUIRED' }, children: [], count: 1, path: [name] });
  const group = (children: SchemaTree[]): SchemaTree => ({ element: { name: 'v', repetition_type: 'OPTIONAL', num_children: children.length }, children, count: 1 + children.length, path: ['v'] });
  const variant: DeltaType = { kind: 'primitive', name: 'variant' };

  it('an unshredded group (metadata, value) converts to JSON text; a null group to null', () => {
    const convert = compileConverter(variant, group([leaf('metadata'), leaf('value')]), 'v', ctx);
    assert.equal(convert({ metadata: Buffer.from('010100036b6579', 'hex'), value: Buffer.from('02010000020c00', 'hex') }), '{"key":0}');
    assert.equal(convert(null), null);
  });

  it('a shredded group (typed_value) is refused naming the file, table, version and column', () => {
    assert.throws(
      () => compileConverter(variant, group([leaf('metadata'), leaf('value'), leaf('typed_value')]), 's.v', ctx),
      (e: unknown) => e instanceof SyncError && e.kind === 'delta-file' && e.column === 's.v' && e.version === 4 && /shredded VARIANT/.test(e.message),
    );
  });

  it('undecodable bytes are refused as a delta-file error naming the column', () => {
    const convert = compileConverter(variant, group([leaf('metadata'), leaf('value')]), 'v', ctx);
    assert.throws(
      () => convert({ metadata: new Uint8Array([0x01, 0, 0]), value: new Uint8Array([30 << 2]) }),
      (e: unknown) => e instanceof SyncError && e.kind === 'delta-file' && e.column === 'v' && /cannot be decoded: unknown primitive type id 30/.test(e.message),
    );
  });

  it('variantType and variantType-preview are readable; variantShredding is refused naming the feature', () => {
    assert.doesNotThrow(() => assertReadable({ minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['variantType'] }, '/t', 1));
    assert.doesNotThrow(() => assertReadable({ minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['variantType-preview'] }, '/t', 1));
    assert.throws(
      () => assertReadable({ minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['variantType', 'variantShredding-preview'] }, '/t', 1),
      (e: unknown) => e instanceof SyncError && e.setting === 'variantShredding-preview' && /shredded VARIANT/.test(e.message),
    );
  });

  it('the schema type variant maps to jsonb', () => {
    const [f] = parseSchemaString(JSON.stringify({ type: 'struct', fields: [{ name: 'v', type: 'variant', nullable: true, metadata: {} }] }), 'none');
    assert.deepEqual(f?.type, variant);
    assert.equal(defaultPgType(variant), 'jsonb');
  });
});

describe('variant values the fixture writer encodes, read back from its table', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'variant-writer-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a JS Date (hyparquet-writer: timestamp_ntz micros) keeps all six fraction digits; an integral double (beyond int32) keeps a fraction', async () => {
    const table = path.join(dir, 'events');
    await fs.mkdir(table);
    const w = await DeltaTableWriter.create(table, {
      columns: [
        { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
        { name: 'payload', type: { kind: 'primitive', name: 'variant' } },
      ],
    });
    // hyparquet-writer encodes a Date as a variant timestamp_ntz (type 13) and a number that
    // is not an int32 as a double (type 7); a DeltaValue has no Date, hence the cast.
    const date = (iso: string): DeltaValue => new Date(iso) as unknown as DeltaValue;
    const cases: Array<[DeltaValue, string]> = [
      [date('2024-01-01T00:00:00Z'), '"2024-01-01T00:00:00.000000"'],
      [date('2024-01-01T12:34:56.780Z'), '"2024-01-01T12:34:56.780000"'],
      [2147483648, '2147483648.0'],
      [-1e15, '-1000000000000000.0'],
      [0.5, '0.5'],
      [{ at: date('1969-12-31T23:59:59.999Z'), n: 4294967296, small: 7 }, '{"at":"1969-12-31T23:59:59.999000","n":4294967296.0,"small":7}'],
    ];
    await w.append(cases.map(([payload], i) => ({ id: BigInt(i), payload })));
    const snapshot = await (await DeltaTable.open(table)).snapshot();
    const got = new Map<bigint, DeltaValue>();
    for await (const rows of snapshot.rows()) for (const r of rows) got.set(r.id as bigint, r.payload ?? null);
    cases.forEach(([, want], i) => assert.equal(got.get(BigInt(i)), want, `row ${i}`));
  });
});
