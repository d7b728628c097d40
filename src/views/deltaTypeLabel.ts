import type { DeltaType } from '../sync/delta/types';

/** A Delta type as users read it in Spark SQL: `long`, `decimal(10,2)`, `array<string>`. */
export function deltaTypeLabel(t: DeltaType): string {
  switch (t.kind) {
    case 'primitive':
      return t.name;
    case 'decimal':
      return `decimal(${t.precision},${t.scale})`;
    case 'array':
      return `array<${deltaTypeLabel(t.elementType)}>`;
    case 'map':
      return `map<${deltaTypeLabel(t.keyType)},${deltaTypeLabel(t.valueType)}>`;
    case 'struct':
      // Fields show as children in the tree; the label stays one line.
      return `struct<${t.fields.length} field${t.fields.length === 1 ? '' : 's'}>`;
  }
}
