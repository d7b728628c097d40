import assert from 'node:assert/strict';
import { expectSyncError } from '../helpers/expectSyncError';
import { checkpointVersion } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { existingKeyInsert } from '../helpers/existingKeyTable';

/**
 * Issue 11 leftover: a dry run runs the sync's "insert of a key the target already holds"
 * check (duplicateKeys: fail), so it fails where the sync would, naming the version and the
 * keys, instead of counting the insert as an update.
 */
describe('dry run: an insert of a key the target already holds (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('dryrun_dups');

  for (const duplicateKeys of ['fail', 'last-wins'] as const) {
    it(`with duplicateKeys ${duplicateKeys}, the dry run ${duplicateKeys === 'fail' ? 'refuses it as the sync does, naming the version and key' : 'counts it as an update, as the sync does'}`, async () => {
      const name = `dups_${duplicateKeys.replace('-', '_')}`;
      const { r, version: v } = await existingKeyInsert(db().url, name, duplicateKeys);
      try {
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
