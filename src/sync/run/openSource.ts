import { DeltaChangeSource } from '../delta/DeltaChangeSource';
import { SyncError } from '../errors';
import type { MappingSource } from '../mapping/mappingSchema';
import type { ChangeSource } from './ChangeSource';

/** Opens the ChangeSource a mapping names. */
export async function openSource(source: MappingSource): Promise<ChangeSource> {
  switch (source.type) {
    case 'delta':
      return DeltaChangeSource.open(source.path);
    case 'databricks':
      throw new SyncError('usage', `Databricks sources (${source.table}) are not available in this version yet.`, {
        setting: 'source.type',
        hint: 'Point source.path at a local or mounted copy of the Delta table for now.',
      });
  }
}
