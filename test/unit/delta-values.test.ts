import assert from 'node:assert/strict';
import type { DeltaType, DeltaValue } from '../../src/sync/delta/types';
import { deltaValuesEqual, formatDate, formatTimestamp, parsePartitionValue, toJsonValue } from '../../src/sync/delta/values';
import { array, binary, boolean, byte, date, decimal, double, field, float, integer, long, map, short, string, struct, timestamp, timestampNtz } from '../builders/deltaFields';
import { expectSyncError } from '../helpers/expectSyncError';

const DAY_MS = 86_400_000;

describe('delta values: dates and timestamps', () => {
  it('formats day numbers like Date.toISOString for years 0000-9999', () => {
    for (const days of [-719528, -1, 0, 1, 11016, 18878, 2932896, 19723, -141427, 60]) {
      assert.equal(formatDate(days), new Date(days * DAY_MS).toISOString().slice(0, 10), String(days));
    }
  });

  it('formats years outside 0000-9999 in the expanded form, matching Date for the largest JS date', () => {
    // 8.64e15 ms is the largest Date: +275760-09-13T00:00:00.000Z.
    assert.equal(formatDate(100_000_000), new Date(8.64e15).toISOString().slice(0, 13));
    assert.equal(formatTimestamp(8_640_000_000_000_000_000n, true), '+275760-09-13T00:00:00Z');
    assert.equal(formatTimestamp(-8_640_000_000_000_000_000n, true), '-271821-04-20T00:00:00Z');
    // Beyond JS Date: no clamping, the year keeps growing.
    assert.equal(formatTimestamp(9_223_372_036_854_775_807n, true), '+294247-01-10T04:00:54.775807Z');
  });

  it('writes the fraction only when non-zero: none, milliseconds or microseconds', () => {
    const ms = Date.UTC(2023, 11, 22, 17, 10, 18, 828);
    assert.equal(formatTimestamp(BigInt(ms) * 1000n, true), '2023-12-22T17:10:18.828Z');
    assert.equal(formatTimestamp(BigInt(Date.UTC(2023, 0, 1)) * 1000n + 1n, true), '2023-01-01T00:00:00.000001Z');
    assert.equal(formatTimestamp(BigInt(Date.UTC(2023, 0, 1)) * 1000n, true), '2023-01-01T00:00:00Z');
    assert.equal(formatTimestamp(BigInt(Date.UTC(2023, 0, 1)) * 1000n, false), '2023-01-01T00:00:00');
    assert.equal(formatTimestamp(-1n, true), '1969-12-31T23:59:59.999999Z');
  });

  it('agrees with Date for random instants', () => {
    let seed = 42;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 500; i++) {
      const ms = (next() * 2 ** 16 + next()) % 253402300799999 - 62135596800000 / 2;
      const iso = new Date(ms).toISOString();
      const expected = ms % 1000 === 0 ? iso.replace('.000Z', 'Z') : iso;
      assert.equal(formatTimestamp(BigInt(ms) * 1000n, true), expected);
    }
  });
});

describe('delta values: parsePartitionValue', () => {
  it('reads null, missing and empty as null', () => {
    for (const raw of [null, undefined, '']) assert.equal(parsePartitionValue(raw, string(), 'c'), null);
    assert.equal(parsePartitionValue('', integer(), 'c'), null);
  });

  it('parses numbers, booleans, strings and binary', () => {
    assert.equal(parsePartitionValue('-128', byte(), 'c'), -128);
    assert.equal(parsePartitionValue('32767', short(), 'c'), 32767);
    assert.equal(parsePartitionValue('-2147483648', integer(), 'c'), -2147483648);
    assert.equal(parsePartitionValue('9223372036854775807', long(), 'c'), 9223372036854775807n);
    assert.equal(parsePartitionValue('1.5', double(), 'c'), 1.5);
    assert.equal(parsePartitionValue('1.1', float(), 'c'), 1.1);
    assert.ok(Number.isNaN(parsePartitionValue('NaN', double(), 'c')));
    assert.equal(parsePartitionValue('-Infinity', double(), 'c'), -Infinity);
    assert.equal(parsePartitionValue('true', boolean(), 'c'), true);
    assert.equal(parsePartitionValue('FALSE', boolean(), 'c'), false);
    assert.equal(parsePartitionValue('null', string(), 'c'), 'null');
    assert.deepEqual(parsePartitionValue('\u0001\u0002A', binary(), 'c'), Uint8Array.from([1, 2, 65]));
  });

  it('parses dates and timestamps (UTC without zone; ISO-8601 with zone; ntz as wall clock)', () => {
    assert.equal(parsePartitionValue('2021-09-08', date(), 'c'), Date.UTC(2021, 8, 8) / DAY_MS);
    const base = BigInt(Date.UTC(2021, 8, 8, 11, 11, 11)) * 1000n;
    assert.equal(parsePartitionValue('2021-09-08 11:11:11', timestamp(), 'c'), base);
    assert.equal(parsePartitionValue('2021-09-08 11:11:11.000123', timestamp(), 'c'), base + 123n);
    assert.equal(parsePartitionValue('2021-09-08T11:11:11.5Z', timestamp(), 'c'), base + 500000n);
    assert.equal(parsePartitionValue('2021-09-08T13:11:11+02:00', timestamp(), 'c'), base);
    assert.equal(parsePartitionValue('2021-09-08 11:11:11', timestampNtz(), 'c'), base);
    assert.equal(parsePartitionValue('1969-12-31 23:59:59.999999', timestamp(), 'c'), -1n);
  });

  it('applies a zone with minutes (+05:30, +0530, -09:30) in full to a timestamp partition value', () => {
    const base = BigInt(Date.UTC(2021, 8, 8, 11, 11, 11)) * 1000n;
    assert.equal(parsePartitionValue('2021-09-08T16:41:11+05:30', timestamp(), 'c'), base);
    assert.equal(parsePartitionValue('2021-09-08 16:41:11+0530', timestamp(), 'c'), base);
    assert.equal(parsePartitionValue('2021-09-08T01:41:11-09:30', timestamp(), 'c'), base);
    assert.equal(parsePartitionValue('2021-09-08T16:11:11+05', timestamp(), 'c'), base);
  });

  it('keeps a timestamp_ntz partition value at its wall clock: a zone in the text does not shift it', () => {
    const wall = BigInt(Date.UTC(2021, 8, 8, 11, 11, 11)) * 1000n;
    assert.equal(parsePartitionValue('2021-09-08 11:11:11', timestampNtz(), 'c'), wall);
    assert.equal(parsePartitionValue('2021-09-08T11:11:11+05:30', timestampNtz(), 'c'), wall);
    assert.equal(parsePartitionValue('2021-09-08T11:11:11-08:00', timestampNtz(), 'c'), wall);
    assert.equal(parsePartitionValue('2021-09-08T11:11:11.000123Z', timestampNtz(), 'c'), wall + 123n);
  });

  it('canonicalises decimals to the column scale', () => {
    assert.equal(parsePartitionValue('1.5', decimal(10, 3), 'c'), '1.500');
    assert.equal(parsePartitionValue('-0.01', decimal(5, 2), 'c'), '-0.01');
    assert.equal(parsePartitionValue('1E+2', decimal(5, 2), 'c'), '100.00');
    assert.equal(parsePartitionValue('7', decimal(4, 0), 'c'), '7');
    assert.equal(parsePartitionValue('12.300', decimal(5, 1), 'c'), '12.3');
  });

  it('throws a SyncError naming the column for a bad value', () => {
    const bad: Array<[string, DeltaType]> = [
      ['abc', integer()],
      ['128', byte()],
      ['9223372036854775808', long()],
      ['1.2.3', double()],
      ['yes', boolean()],
      ['2021-02-30', date()],
      ['2021-09-08 25:00:00', timestamp()],
      ['1.234', decimal(5, 2)],
      ['123456', decimal(5, 2)],
    ];
    for (const [raw, type] of bad) {
      const e = expectSyncError(() => parsePartitionValue(raw, type, 'part_col'), { column: 'part_col', message: /part_col/ });
      assert.ok(e.message.includes(raw), `${raw} as ${JSON.stringify(type)}: ${e.message}`);
    }
  });
});

describe('delta values: toJsonValue', () => {
  it('writes longs as numbers up to 2^53 and as strings beyond', () => {
    assert.equal(toJsonValue(9007199254740992n, long()), 9007199254740992);
    assert.equal(toJsonValue(-9007199254740992n, long()), -9007199254740992);
    assert.equal(toJsonValue(9007199254740993n, long()), '9007199254740993');
    assert.equal(toJsonValue(-9223372036854775808n, long()), '-9223372036854775808');
  });

  it('writes decimals as numbers only when they round-trip exactly', () => {
    assert.equal(toJsonValue('123.45', decimal(10, 2)), 123.45);
    assert.equal(toJsonValue('67.89000', decimal(10, 5)), '67.89000');
    assert.equal(toJsonValue('12345678901234567890.12', decimal(38, 2)), '12345678901234567890.12');
    assert.equal(toJsonValue('-7', decimal(4, 0)), -7);
  });

  it('writes floats, binary, dates and timestamps as JSON-safe values', () => {
    assert.equal(toJsonValue(NaN, double()), 'NaN');
    assert.equal(toJsonValue(Infinity, float()), 'Infinity');
    assert.equal(toJsonValue(-Infinity, double()), '-Infinity');
    assert.equal(toJsonValue(0.5, double()), 0.5);
    assert.equal(toJsonValue(Uint8Array.from([0, 255, 16]), binary()), Buffer.from([0, 255, 16]).toString('base64'));
    assert.equal(toJsonValue(0, date()), '1970-01-01');
    assert.equal(toJsonValue(1_703_265_018_828_000n, timestamp()), '2023-12-22T17:10:18.828Z');
    assert.equal(toJsonValue(1_703_265_018_828_000n, timestampNtz()), '2023-12-22T17:10:18.828');
    assert.equal(toJsonValue(null, string()), null);
  });

  it('writes structs as objects, arrays as arrays, string-keyed maps as objects and other maps as entry lists', () => {
    const nAndL = struct(field('n', long()), field('l', array(date())));
    assert.deepEqual(JSON.parse(JSON.stringify(toJsonValue({ n: 5n, l: [0, null] }, nAndL))), { n: 5, l: ['1970-01-01', null] });
    const strMap = map(string(), long());
    assert.equal(JSON.stringify(toJsonValue(new Map<DeltaValue, DeltaValue>([['b', 1n], ['__proto__', 2n]]), strMap)), '{"b":1,"__proto__":2}');
    const intMap = map(integer(), boolean());
    assert.deepEqual(toJsonValue(new Map<DeltaValue, DeltaValue>([[2, true], [1, null]]), intMap), [
      { key: 2, value: true },
      { key: 1, value: null },
    ]);
  });
});

describe('delta values: deltaValuesEqual', () => {
  it('compares by value through bigints, bytes, NaN, decimals and nested maps', () => {
    assert.ok(deltaValuesEqual(5n, 5n, long()));
    assert.ok(!deltaValuesEqual(5n, 6n, long()));
    assert.ok(deltaValuesEqual(NaN, NaN, double()));
    assert.ok(deltaValuesEqual(Uint8Array.from([1, 2]), Uint8Array.from([1, 2]), binary()));
    assert.ok(!deltaValuesEqual(Uint8Array.from([1, 2]), Uint8Array.from([1]), binary()));
    assert.ok(deltaValuesEqual('1.50', '1.50', decimal(4, 2)));
    assert.ok(deltaValuesEqual(null, null, string()));
    assert.ok(!deltaValuesEqual(null, 'x', string()));
    const mapType = map(binary(), array(long()));
    const a = new Map<DeltaValue, DeltaValue>([[Uint8Array.from([1]), [1n, null]], [Uint8Array.from([2]), []]]);
    const b = new Map<DeltaValue, DeltaValue>([[Uint8Array.from([2]), []], [Uint8Array.from([1]), [1n, null]]]);
    const c = new Map<DeltaValue, DeltaValue>([[Uint8Array.from([2]), []], [Uint8Array.from([1]), [2n, null]]]);
    assert.ok(deltaValuesEqual(a, b, mapType));
    assert.ok(!deltaValuesEqual(a, c, mapType));
  });
});
