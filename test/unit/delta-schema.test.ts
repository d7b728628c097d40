import assert from 'node:assert/strict';
import { columnMappingModeOf, formatDeltaType, parseSchemaString } from '../../src/sync/delta/schema';
import type { DeltaField, DeltaType, PrimitiveTypeName } from '../../src/sync/delta/types';
import type { SyncErrorKind } from '../../src/sync/errors';
import { decimal, primitive, timestampNtz } from '../builders/deltaFields';
import { expectSyncError } from '../helpers/expectSyncError';

const field = (name: string, type: unknown, metadata: Record<string, unknown> = {}, nullable = true): unknown => ({ name, type, nullable, metadata });
const schema = (...fields: unknown[]): string => JSON.stringify({ type: 'struct', fields });
const cm = (id: number, physical: string): Record<string, unknown> => ({
  'delta.columnMapping.id': id,
  'delta.columnMapping.physicalName': physical,
});

describe('delta schema: parseSchemaString', () => {
  it('parses every primitive type and decimals with precision and scale', () => {
    const names: PrimitiveTypeName[] = ['string', 'long', 'integer', 'short', 'byte', 'float', 'double', 'boolean', 'binary', 'date', 'timestamp', 'timestamp_ntz'];
    const fields = parseSchemaString(schema(...names.map((n) => field(`c_${n}`, n)), field('d', 'decimal(38,36)'), field('d0', 'decimal')), 'none');
    assert.deepEqual(
      fields.map((f) => f.type),
      [
        ...names.map(primitive),
        decimal(38, 36),
        decimal(10, 0),
      ],
    );
    assert.ok(fields.every((f) => f.physicalName === f.name && f.fieldId === undefined));
  });

  it('keeps nullability and metadata', () => {
    const [f] = parseSchemaString(schema(field('a', 'long', { comment: 'x' }, false)), 'none');
    assert.equal(f.nullable, false);
    assert.deepEqual(f.metadata, { comment: 'x' });
  });

  it('fills physical names and field ids recursively under column mapping, including structs in arrays and maps', () => {
    const inner = { type: 'struct', fields: [field('x', 'integer', cm(5, 'col-x'))] };
    const s = schema(
      field('top', 'string', cm(1, 'col-top')),
      field('st', { type: 'struct', fields: [field('y', 'long', cm(3, 'col-y'))] }, cm(2, 'col-st')),
      field('arr', { type: 'array', elementType: inner, containsNull: true }, cm(4, 'col-arr')),
      field('m', { type: 'map', keyType: 'string', valueType: { type: 'struct', fields: [field('z', 'date', cm(7, 'col-z'))] }, valueContainsNull: false }, cm(6, 'col-m')),
    );
    for (const mode of ['name', 'id'] as const) {
      const [top, st, arr, m] = parseSchemaString(s, mode);
      assert.deepEqual([top.physicalName, top.fieldId], ['col-top', 1]);
      assert.deepEqual([st.physicalName, st.fieldId], ['col-st', 2]);
      const y = (st.type as Extract<DeltaType, { kind: 'struct' }>).fields[0];
      assert.deepEqual([y.name, y.physicalName, y.fieldId], ['y', 'col-y', 3]);
      const arrType = arr.type as Extract<DeltaType, { kind: 'array' }>;
      const x = (arrType.elementType as Extract<DeltaType, { kind: 'struct' }>).fields[0];
      assert.deepEqual([x.physicalName, x.fieldId], ['col-x', 5]);
      const mapType = m.type as Extract<DeltaType, { kind: 'map' }>;
      assert.equal(mapType.valueContainsNull, false);
      const z = (mapType.valueType as Extract<DeltaType, { kind: 'struct' }>).fields[0];
      assert.deepEqual([z.physicalName, z.fieldId], ['col-z', 7]);
    }
    const [noneTop] = parseSchemaString(s, 'none');
    assert.deepEqual([noneTop.physicalName, noneTop.fieldId], ['top', undefined]);
  });

  it('throws delta-log for malformed JSON, a non-struct schema and an unknown type (naming the column)', () => {
    const check = (text: string, kind: SyncErrorKind, column?: string): void => {
      const e = expectSyncError(() => parseSchemaString(text, 'none', '/t'), { kind, table: '/t', column });
      if (column !== undefined) assert.ok(e.message.includes(column), e.message);
    };
    check('{"type":"struct","fields":[', 'delta-log');
    check('{"type":"array"}', 'delta-log');
    check(schema(field('s', { type: 'struct', fields: [field('weird', 'interval')] })), 'delta-log', 's.weird');
    check(schema(field('d', 'decimal(50,2)')), 'delta-log', 'd');
  });

  it('reads a variant column, also nested (decoded to jsonb by the parquet reader)', () => {
    const [v, s] = parseSchemaString(schema(field('v', 'variant'), field('s', { type: 'array', elementType: 'variant', containsNull: true })), 'none');
    assert.deepEqual(v?.type, { kind: 'primitive', name: 'variant' });
    assert.deepEqual(s?.type, { kind: 'array', elementType: { kind: 'primitive', name: 'variant' }, containsNull: true });
  });
});

describe('delta schema: formatDeltaType and columnMappingModeOf', () => {
  it("spells types with the protocol's schema names", () => {
    const [f] = parseSchemaString(
      schema(field('s', { type: 'struct', fields: [field('a', 'integer'), field('b', { type: 'map', keyType: 'string', valueType: { type: 'array', elementType: 'long', containsNull: true }, valueContainsNull: true })] })),
      'none',
    );
    assert.equal(formatDeltaType(f.type), 'struct<a: integer, b: map<string,array<long>>>');
    assert.equal(formatDeltaType(decimal(10, 2)), 'decimal(10,2)');
    assert.equal(formatDeltaType(timestampNtz()), 'timestamp_ntz');
    const mapField: DeltaField = parseSchemaString(schema(field('m', { type: 'map', keyType: 'string', valueType: 'integer', valueContainsNull: true })), 'none')[0];
    assert.equal(formatDeltaType(mapField.type), 'map<string,integer>');
    for (const name of ['integer', 'long', 'short', 'byte'] as const) assert.equal(formatDeltaType({ kind: 'primitive', name }), name);
  });

  it('writes a struct as its field count when asked, at any depth', () => {
    const [f] = parseSchemaString(schema(field('s', { type: 'struct', fields: [field('a', 'integer'), field('b', 'string')] })), 'none');
    assert.equal(formatDeltaType(f.type, { structs: 'count' }), 'struct<2 fields>');
    assert.equal(formatDeltaType({ kind: 'array', elementType: f.type, containsNull: true }, { structs: 'count' }), 'array<struct<2 fields>>');
    assert.equal(formatDeltaType({ kind: 'struct', fields: [f] }, { structs: 'count' }), 'struct<1 field>');
  });

  it("reads the mode from the configuration, 'none' when absent, and refuses unknown modes", () => {
    assert.equal(columnMappingModeOf({}), 'none');
    assert.equal(columnMappingModeOf({ 'delta.columnMapping.mode': 'name' }), 'name');
    assert.equal(columnMappingModeOf({ 'delta.columnMapping.mode': 'id' }), 'id');
    expectSyncError(() => columnMappingModeOf({ 'delta.columnMapping.mode': 'other' }), { kind: 'delta-protocol' });
  });
});
