import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { checkpointVersion } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * Issue 11 leftover: a dry run runs the sync's "insert of a key the target already holds"
 * check (duplicateKeys: fail), so it fails where the sync would, naming the version and the
 * keys, instead of counting the insert as an update.
 */
const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
];
const row = (id: number, name = `n${id}`): Row => ({ id: BigInt(id), name });

describe('dry run: an insert of a key the target already holds (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('dryrun_dups');

  for (const duplicateKeys of ['fail', 'last-wins'] as const) {
    it(`with duplicateKeys ${duplicateKeys}, the dry run ${duplicateKeys === 'fail' ? 'refuses it as the sync does, naming the version and key' : 'counts it as an update, as the sync does'}`, async () => {
      const name = `dups_${duplicateKeys.replace('-', '_')}`;
      const w = await DeltaTableWriter.create(path.join(await tempDir(), name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
      await w.append([row(1), row(2)]);
      const r = await openRunner(buildMapping({ name: name.replace(/_/g, '-'), source: w.path, target: name, key: ['id'], duplicateKeys }), db().url);
      try {
        await r.runner.run({ mode: 'initial' });
        const v = await w.append([row(2, 'again'), row(3)]);
        if (duplicateKeys === 'fail') {
          const dry = await expectSyncError(r.runner.dryRun(), { kind: 'mapping', setting: 'duplicateKeys', version: v, message: /id=2/ });
          const sync = await expectSyncError(r.runner.run({ mode: 'incremental' }), { kind: 'mapping', setting: 'duplicateKeys', version: v });
          assert.equal(dry.message, sync.message, 'the dry run fails as the sync does');
          assert.equal(await checkpointVersion(db().url, name.replace(/_/g, '-')), v - 1);
        } else {
          const dry = await r.runner.dryRun();
          const res = await r.runner.run({ mode: 'incremental' });
          assert.deepEqual({ inserted: dry.result.inserted, updated: dry.result.updated }, { inserted: 1, updated: 1 });
          assert.deepEqual({ inserted: res.inserted, updated: res.updated }, { inserted: 1, updated: 1 });
        }
      } finally {
        await r.close();
      }
    });
  }
});
