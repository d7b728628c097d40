import {
  Binary,
  Bool,
  DateDay,
  Decimal,
  Field,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  List,
  Map_,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  TimestampMicrosecond,
  Utf8,
  makeData,
} from 'apache-arrow';
import type { Data, DataType } from 'apache-arrow';
import type { DeltaStruct, DeltaType, DeltaValue } from '../../../src/sync/delta/types';

/**
 * Arrow IPC the way a Databricks SQL warehouse sends results (useArrowNativeTypes on):
 * the schema message alone, then one record-batch message per batch, no end-of-stream
 * marker. Decimals are 128-bit, TIMESTAMP is microseconds with zone 'Etc/UTC',
 * TIMESTAMP_NTZ microseconds without zone, DATE days, MAP a list of key/value entries.
 */

export interface ResultColumn {
  name: string;
  type: DeltaType;
}

const mk = makeData as unknown as (props: Record<string, unknown>) => Data;

export function arrowType(t: DeltaType): DataType {
  switch (t.kind) {
    case 'decimal':
      return new Decimal(t.scale, t.precision, 128);
    case 'struct':
      return new Struct(t.fields.map((f) => new Field(f.name, arrowType(f.type), true)));
    case 'array':
      return new List(new Field('element', arrowType(t.elementType), true));
    case 'map':
      const entries = new Struct([new Field('key', arrowType(t.keyType), false), new Field('value', arrowType(t.valueType), true)]);
      return new Map_(new Field('entries', entries, false) as unknown as Field<Struct<{ key: never; value: never }>>, false);
    case 'primitive':
      switch (t.name) {
        case 'string':
          return new Utf8();
        case 'long':
          return new Int64();
        case 'integer':
          return new Int32();
        case 'short':
          return new Int16();
        case 'byte':
          return new Int8();
        case 'float':
          return new Float32();
        case 'double':
          return new Float64();
        case 'boolean':
          return new Bool();
        case 'binary':
          return new Binary();
        case 'date':
          return new DateDay();
        case 'timestamp':
          return new TimestampMicrosecond('Etc/UTC');
        case 'timestamp_ntz':
          return new TimestampMicrosecond();
        case 'variant':
          throw new Error('the fake warehouse does not return variant columns');
      }
  }
}

function validity(values: readonly DeltaValue[]): { nullBitmap: Uint8Array; nullCount: number } {
  const bits = new Uint8Array(Math.ceil(values.length / 8) || 1);
  let nullCount = 0;
  values.forEach((v, i) => {
    if (v === null || v === undefined) nullCount++;
    else bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
  });
  return { nullBitmap: bits, nullCount };
}

const encoder = new TextEncoder();

function bytesData(type: DataType, values: readonly DeltaValue[], toBytes: (v: DeltaValue) => Uint8Array): Data {
  const parts = values.map((v) => (v === null || v === undefined ? new Uint8Array(0) : toBytes(v)));
  const offsets = new Int32Array(values.length + 1);
  let total = 0;
  parts.forEach((p, i) => {
    total += p.length;
    offsets[i + 1] = total;
  });
  const data = new Uint8Array(total);
  parts.forEach((p, i) => data.set(p, offsets[i] as number));
  return mk({ type, length: values.length, ...validity(values), valueOffsets: offsets, data });
}

function listData(type: DataType, child: (flat: DeltaValue[]) => Data, values: readonly DeltaValue[], items: (v: DeltaValue) => DeltaValue[]): Data {
  const offsets = new Int32Array(values.length + 1);
  const flat: DeltaValue[] = [];
  values.forEach((v, i) => {
    if (v !== null && v !== undefined) flat.push(...items(v));
    offsets[i + 1] = flat.length;
  });
  return mk({ type, length: values.length, ...validity(values), valueOffsets: offsets, child: child(flat) });
}

/** One column's values (engine representation) as Arrow data of `arrowType(t)`. */
export function arrowData(t: DeltaType, values: readonly DeltaValue[]): Data {
  const type = arrowType(t);
  const n = values.length;
  const v = validity(values);
  switch (t.kind) {
    case 'decimal': {
      const words = new Uint32Array(n * 4);
      values.forEach((x, i) => {
        if (x === null || x === undefined) return;
        const [ip, fp = ''] = String(x).replace('-', '').split('.');
        let u = BigInt(`${ip}${fp.padEnd(t.scale, '0')}`);
        if (String(x).startsWith('-')) u = -u;
        let two = BigInt.asUintN(128, u);
        for (let w = 0; w < 4; w++) {
          words[i * 4 + w] = Number(two & 0xffffffffn);
          two >>= 32n;
        }
      });
      return mk({ type, length: n, ...v, data: words });
    }
    case 'struct': {
      const children = t.fields.map((f) => arrowData(f.type, values.map((x) => (x === null || x === undefined ? null : ((x as DeltaStruct)[f.name] ?? null)))));
      return mk({ type, length: n, ...v, children });
    }
    case 'array':
      return listData(type, (flat) => arrowData(t.elementType, flat), values, (x) => x as DeltaValue[]);
    case 'map': {
      const entryType: DeltaType = {
        kind: 'struct',
        fields: [
          { name: 'key', type: t.keyType, nullable: false, metadata: {}, physicalName: 'key' },
          { name: 'value', type: t.valueType, nullable: true, metadata: {}, physicalName: 'value' },
        ],
      };
      const entriesData = (flat: DeltaValue[]): Data => {
        const d = arrowData(entryType, flat);
        // The entries struct must carry the Map's own child type (non-null 'key').
        return mk({ type: (type as Map_).children[0]?.type, length: d.length, nullCount: 0, children: d.children });
      };
      return listData(type, entriesData, values, (x) => [...(x as Map<DeltaValue, DeltaValue>)].map(([key, value]) => ({ key, value })));
    }
    case 'primitive':
      switch (t.name) {
        case 'string':
          return bytesData(type, values, (x) => encoder.encode(x as string));
        case 'binary':
          return bytesData(type, values, (x) => x as Uint8Array);
        case 'boolean': {
          const bits = new Uint8Array(Math.ceil(n / 8) || 1);
          values.forEach((x, i) => {
            if (x === true) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
          });
          return mk({ type, length: n, ...v, data: bits });
        }
        case 'long':
        case 'timestamp':
        case 'timestamp_ntz': {
          const a = new BigInt64Array(n);
          values.forEach((x, i) => {
            if (x !== null && x !== undefined) a[i] = x as bigint;
          });
          // Int64 stores BigInt64Array; Timestamp stores pairs of int32 words.
          return mk({ type, length: n, ...v, data: t.name === 'long' ? a : new Int32Array(a.buffer) });
        }
        case 'integer':
        case 'date':
          return mk({ type, length: n, ...v, data: Int32Array.from(values, (x) => (x === null || x === undefined ? 0 : (x as number))) });
        case 'short':
          return mk({ type, length: n, ...v, data: Int16Array.from(values, (x) => (x === null || x === undefined ? 0 : (x as number))) });
        case 'byte':
          return mk({ type, length: n, ...v, data: Int8Array.from(values, (x) => (x === null || x === undefined ? 0 : (x as number))) });
        case 'float':
          return mk({ type, length: n, ...v, data: Float32Array.from(values, (x) => (x === null || x === undefined ? 0 : (x as number))) });
        case 'double':
          return mk({ type, length: n, ...v, data: Float64Array.from(values, (x) => (x === null || x === undefined ? 0 : (x as number))) });
        case 'variant':
          throw new Error('the fake warehouse does not return variant columns');
      }
  }
}

export function arrowSchema(columns: readonly ResultColumn[]): Schema {
  return new Schema(columns.map((c) => new Field(c.name, arrowType(c.type), true)));
}

const EOS = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

function stripEos(bytes: Uint8Array): Uint8Array {
  const tail = bytes.subarray(bytes.length - 8);
  return EOS.every((b, i) => tail[i] === b) ? bytes.subarray(0, bytes.length - 8) : bytes;
}

/** The IPC schema message alone. */
export function schemaMessage(columns: readonly ResultColumn[]): Buffer {
  const w = new RecordBatchStreamWriter();
  w.reset(undefined, arrowSchema(columns));
  w.finish();
  return Buffer.from(stripEos(w.toUint8Array(true)));
}

/** One record-batch message alone for `rows` (each an array of column values). */
export function batchMessage(columns: readonly ResultColumn[], rows: readonly DeltaValue[][]): Buffer {
  const schema = arrowSchema(columns);
  const children = columns.map((c, j) => arrowData(c.type, rows.map((r) => r[j] ?? null)));
  const batch = new RecordBatch(schema, mk({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children }) as Data<Struct>);
  const full = stripEos(RecordBatchStreamWriter.writeAll([batch]).toUint8Array(true));
  const head = schemaMessage(columns).length;
  return Buffer.from(full.subarray(head));
}
