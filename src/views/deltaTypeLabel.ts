import { formatDeltaType } from '../sync/delta/schema';
import type { DeltaType } from '../sync/delta/types';

/** A Delta type as the views label it: formatDeltaType, with a struct as its field count (its fields show as child rows). */
export function deltaTypeLabel(t: DeltaType): string {
  return formatDeltaType(t, { structs: 'count' });
}
