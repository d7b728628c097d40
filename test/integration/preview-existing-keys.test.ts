import assert from 'node:assert/strict';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { existingKeyInsert } from '../helpers/existingKeyTable';

/**
 * Issue 13: the Preview reports an incremental insert of a key the target already holds
 * (the sync and the dry run refuse it under duplicateKeys "fail") among its pre-apply
 * checks, as a blocking warning naming the version and the key.
 */
describe('preview: an insert of a key the target already holds (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('preview_existing');

  for (const duplicateKeys of ['fail', 'last-wins'] as const) {
    it(`with duplicateKeys ${duplicateKeys}, the preview ${duplicateKeys === 'fail' ? 'warns, blocking Apply, naming the version and key the dry run names' : 'has no such warning'}`, async () => {
      const name = `pex_${duplicateKeys.replace('-', '_')}`;
      const { r, version: v } = await existingKeyInsert(db().url, name, duplicateKeys);
      try {
        const p = await r.runner.preview({ limit: 10, checks: true });
        const found = (p.warnings ?? []).filter((x) => x.check === 'existing-key');
        if (duplicateKeys === 'fail') {
          assert.equal(found.length, 1);
          const warning = found[0]!;
          assert.equal(warning.count, 1);
          assert.equal(warning.blocking, true);
          assert.deepEqual(warning.samples, [{ version: String(v), id: '2' }]);
          assert.match(warning.message, new RegExp(`version ${v} inserts keys that .* already holds \\(id=2\\)`));
          await expectSyncError(r.runner.dryRun(), { kind: 'mapping', setting: 'duplicateKeys', version: v, message: /id=2/ });
        } else {
          assert.deepEqual(found, []);
          assert.equal(p.totals.update, 1);
        }
        // Without the checks (later pages) nothing extra is asked of the target.
        const page2 = await r.runner.preview({ limit: 10, offset: 1 });
        assert.equal(page2.warnings, undefined);
      } finally {
        await r.close();
      }
    });
  }
});
