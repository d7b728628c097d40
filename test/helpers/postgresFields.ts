import type { DeltaField, DeltaType, PrimitiveTypeName } from '../../src/sync/delta/types';

/** Builds DeltaFields for tests (the reader produces these from a table's schema). */
export function field(name: string, type: DeltaType, nullable = true): DeltaField {
  return { name, type, nullable, metadata: {}, physicalName: name };
}

export function prim(name: PrimitiveTypeName): DeltaType {
  return { kind: 'primitive', name };
}

export function dec(precision: number, scale: number): DeltaType {
  return { kind: 'decimal', precision, scale };
}
