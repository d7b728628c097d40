import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { openRunner, tempDir } from './syncHarness';
import type { OpenedRunner } from './syncHarness';

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
];
const row = (id: number, name = `n${id}`): Row => ({ id: BigInt(id), name });

/**
 * A CDF table (id, name) whose v1 (ids 1, 2) is loaded into target table `name` (mapping
 * `name` with `-` for `_`), then a commit `version` that inserts id 2 again (a key the
 * target already holds) and id 3. The runner is open; the caller closes it.
 */
export async function existingKeyInsert(url: string, name: string, duplicateKeys: Mapping['duplicateKeys']): Promise<{ r: OpenedRunner; version: number }> {
  const w = await DeltaTableWriter.create(path.join(await tempDir(), name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
  await w.append([row(1), row(2)]);
  const r = await openRunner(buildMapping({ name: name.replace(/_/g, '-'), source: w.path, target: name, key: ['id'], duplicateKeys }), url);
  try {
    await r.runner.run({ mode: 'initial' });
    return { r, version: await w.append([row(2, 'again'), row(3)]) };
  } catch (e) {
    await r.close();
    throw e;
  }
}
