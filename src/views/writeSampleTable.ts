import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCustomerProfilesTable } from '../fixtures/customerProfiles';
import { CUSTOMER_KEY } from '../fixtures/customerProfiles';
import type { MappingInput } from '../sync/mapping/mappingSchema';

export const SAMPLE_TABLE = 'customer_profiles';
export const SAMPLE_MAPPING = 'customer-profiles';

/**
 * Writes the sample `customer_profiles` Delta table (CDF and deletion vectors on, six
 * versions; see createCustomerProfilesTable) into `<dir>/customer_profiles`, so a new user
 * can try preview and sync without data of their own. Returns the table path; an existing
 * sample is left as it is.
 */
export async function writeSampleTable(dir: string, rows = 1000): Promise<{ path: string; created: boolean }> {
  const tablePath = path.join(dir, SAMPLE_TABLE);
  if (fs.existsSync(path.join(tablePath, '_delta_log'))) return { path: tablePath, created: false };
  await createCustomerProfilesTable(tablePath, { rows });
  return { path: tablePath, created: true };
}

/** The sandbox mapping for the sample, `source.path` relative to the mapping folder. */
export function sampleMapping(relativeTablePath: string): MappingInput {
  return {
    $schema: './schema/mapping.schema.json',
    name: SAMPLE_MAPPING,
    source: { type: 'delta', path: relativeTablePath },
    target: { connection: 'sandbox', schema: 'public', table: SAMPLE_TABLE },
    key: [CUSTOMER_KEY],
  };
}
