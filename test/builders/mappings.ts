import { parseMapping } from '../../src/sync/mapping/loadMapping';
import type { Mapping, MappingInput } from '../../src/sync/mapping/mappingSchema';

/**
 * Typed builders for mappings. `buildMapping({ source: tablePath, target: 'orders', key: ['id'] })`
 * goes through the real parseMapping, so every field a test leaves out gets the schema's
 * own default (target.schema 'public', deletes 'delete', batch sizes, ...) and the
 * cross-field checks run. The builder itself fills in only the required fields: name
 * 'test-pipeline', the Delta table /data/customers and the target table 'customers' on
 * connection 'test-target'.
 */

const DEFAULT_SOURCE_PATH = '/data/customers';
const DEFAULT_TARGET_CONNECTION = 'test-target';
const DEFAULT_TARGET_TABLE = 'customers';

type TargetInput = MappingInput['target'];

export interface MappingOverrides extends Omit<MappingInput, 'name' | 'source' | 'target'> {
  name?: string;
  /** A source, or the path of a local Delta table. */
  source?: MappingInput['source'] | string;
  /** The target table's name, or target fields merged over the test target. */
  target?: Partial<TargetInput> | string;
}

/** What a user would write in the mapping file, before defaults. */
export function mappingInput(overrides: MappingOverrides = {}): MappingInput {
  const { name, source, target, ...rest } = overrides;
  return {
    name: name ?? 'test-pipeline',
    source: typeof source === 'string' ? { type: 'delta', path: source } : (source ?? { type: 'delta', path: DEFAULT_SOURCE_PATH }),
    target: {
      connection: DEFAULT_TARGET_CONNECTION,
      table: DEFAULT_TARGET_TABLE,
      ...(typeof target === 'string' ? { table: target } : target),
    },
    ...rest,
  };
}

/** A parsed mapping; `file` anchors a relative source path as a mapping file would. */
export function buildMapping(overrides: MappingOverrides = {}, file?: string): Mapping {
  return parseMapping(mappingInput(overrides), file);
}

/**
 * Mapping JSON for tests of invalid files: a valid minimal mapping whose top-level fields
 * are replaced (not merged) by `fields`, which need not be valid.
 */
export function mappingJson(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...mappingInput(), ...fields };
}
