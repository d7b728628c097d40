import { SyncError } from '../errors';
import type { ProtocolAction } from './types';

/** Highest `minReaderVersion` this reader implements (3 = table features). */
export const MAX_READER_VERSION = 3;

/**
 * Reader features this reader implements. `typeWidening` needs no log handling: the
 * parquet reader widens narrow physical types to the schema's type.
 * `vacuumProtocolCheck` only constrains writers/VACUUM.
 */
export const SUPPORTED_READER_FEATURES: ReadonlySet<string> = new Set([
  'deletionVectors',
  'columnMapping',
  'timestampNtz',
  'v2Checkpoint',
  'vacuumProtocolCheck',
  'typeWidening',
  'typeWidening-preview',
  // Unshredded variants only: a shredded variant's typed_value columns are refused by the
  // parquet reader, and its own feature (variantShredding) is not in this list.
  'variantType',
  'variantType-preview',
]);

/** The table property that turns the Change Data Feed on. */
export const CDF_PROPERTY = 'delta.enableChangeDataFeed';

/**
 * Whether a table's properties (`metaData.configuration`, or Databricks' SHOW TBLPROPERTIES)
 * turn the Change Data Feed on: CDF_PROPERTY is a boolean property, "true" in any case.
 */
export function isCdfEnabled(properties: Record<string, string>): boolean {
  return (properties[CDF_PROPERTY] ?? '').trim().toLowerCase() === 'true';
}

/** Features refused on purpose, with the reason shown to the user. */
const REFUSED_FEATURES: Record<string, string> = {
  variantShredding: 'shredded VARIANT columns are not supported by this reader (unshredded variants are)',
  'variantShredding-preview': 'shredded VARIANT columns are not supported by this reader (unshredded variants are)',
};

/**
 * Throws SyncError('delta-protocol') when the table at `version` needs a reader version or
 * a reader feature this reader does not implement, naming the first unsupported feature.
 */
export function assertReadable(protocol: ProtocolAction, table: string, version: number): void {
  if (!Number.isInteger(protocol.minReaderVersion) || protocol.minReaderVersion > MAX_READER_VERSION) {
    throw new SyncError(
      'delta-protocol',
      `Table ${table} at version ${version} requires Delta reader version ${protocol.minReaderVersion}; this reader supports up to ${MAX_READER_VERSION}.`,
      { table, version, hint: 'Upgrade delta-neon-sync, or read an older version of the table.' },
    );
  }
  // Reader features are only meaningful (and only required to be present) at reader version 3.
  if (protocol.minReaderVersion < 3) return;
  for (const feature of protocol.readerFeatures ?? []) {
    if (SUPPORTED_READER_FEATURES.has(feature)) continue;
    const reason = REFUSED_FEATURES[feature];
    throw new SyncError(
      'delta-protocol',
      reason
        ? `Table ${table} at version ${version} uses reader feature "${feature}": ${reason}.`
        : `Table ${table} at version ${version} uses reader feature "${feature}", which this reader does not support.`,
      {
        table,
        version,
        setting: feature,
        hint: 'Read the table with a reader that supports this feature, or read an older version written before the feature was enabled.',
      },
    );
  }
}
