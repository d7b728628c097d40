import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { DeltaField, DeltaType, PrimitiveTypeName } from '../../src/sync/delta/types';

/**
 * Typed builders for Delta schemas, so a test states only what matters to it:
 * `field('id', long(), { nullable: false })`, `field('amount', decimal(12, 3))`,
 * `field('attrs', struct(field('a', string())))`. Defaults are the reader's for a table
 * without column mapping: nullable, no metadata, physicalName = name.
 */

export type PrimitiveType = Extract<DeltaType, { kind: 'primitive' }>;
export type DecimalType = Extract<DeltaType, { kind: 'decimal' }>;
export type StructType = Extract<DeltaType, { kind: 'struct' }>;
export type ArrayType = Extract<DeltaType, { kind: 'array' }>;
export type MapType = Extract<DeltaType, { kind: 'map' }>;

export function primitive(name: PrimitiveTypeName): PrimitiveType {
  return { kind: 'primitive', name };
}

export const string = (): PrimitiveType => primitive('string');
export const long = (): PrimitiveType => primitive('long');
export const integer = (): PrimitiveType => primitive('integer');
export const short = (): PrimitiveType => primitive('short');
export const byte = (): PrimitiveType => primitive('byte');
export const float = (): PrimitiveType => primitive('float');
export const double = (): PrimitiveType => primitive('double');
export const boolean = (): PrimitiveType => primitive('boolean');
export const binary = (): PrimitiveType => primitive('binary');
export const date = (): PrimitiveType => primitive('date');
export const timestamp = (): PrimitiveType => primitive('timestamp');
export const timestampNtz = (): PrimitiveType => primitive('timestamp_ntz');

export function decimal(precision: number, scale: number): DecimalType {
  return { kind: 'decimal', precision, scale };
}

export function struct(...fields: DeltaField[]): StructType {
  return { kind: 'struct', fields };
}

/** Elements may be null unless `containsNull` is false (Spark's default). */
export function array(elementType: DeltaType, containsNull = true): ArrayType {
  return { kind: 'array', elementType, containsNull };
}

/** Values may be null unless `valueContainsNull` is false (Spark's default). */
export function map(keyType: DeltaType, valueType: DeltaType, valueContainsNull = true): MapType {
  return { kind: 'map', keyType, valueType, valueContainsNull };
}

export interface FieldOptions {
  /** Default true. */
  nullable?: boolean;
  /** Default {}. */
  metadata?: Record<string, unknown>;
  /** Default: the logical name (no column mapping). */
  physicalName?: string;
  fieldId?: number;
}

export function field(name: string, type: DeltaType, opts: FieldOptions = {}): DeltaField {
  const f: DeltaField = { name, type, nullable: opts.nullable ?? true, metadata: opts.metadata ?? {}, physicalName: opts.physicalName ?? name };
  if (opts.fieldId !== undefined) f.fieldId = opts.fieldId;
  return f;
}

/** The fields the reader returns for a table the fixture writer made with `columns` (no column mapping). */
export function fieldsOf(columns: readonly WriterColumn[]): DeltaField[] {
  return columns.map((c) => field(c.name, c.type, { nullable: c.nullable !== false, metadata: c.metadata }));
}
