import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import { long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { queryOnce } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * Errors of the read-only phases name the table at fault and point to an action that
 * exists (the hints audit): verify before any load, preview of a pipeline whose table was
 * dropped. Real Delta tables (the project's writer), a real server.
 */
const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
];

describe('read-only phases: errors name the table and an action that exists (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('error_details');

  async function table(name: string): Promise<string> {
    const w = await DeltaTableWriter.create(path.join(await tempDir(), name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append([{ id: 1n, name: 'a' }, { id: 2n, name: 'b' }]);
    return w.path;
  }

  it('verify before any load names the target table and offers the initial load', async () => {
    const source = await table('ed_verify');
    const r = await openRunner(buildMapping({ name: 'ed-verify', source, target: 'ed_verify', key: ['id'] }), db().url);
    try {
      const e = await expectSyncError(r.runner.verify(), { kind: 'mapping', table: 'public.ed_verify', message: /Pipeline "ed-verify" has no checkpoint yet: nothing to verify against public\.ed_verify/ });
      assert.match(e.hint ?? '', /`delta-neon-sync sync --mapping <file> --mode initial`/);
      assert.match(e.hintFor('vscode') ?? '', /"Delta Sync: Run Initial Load" command/);
    } finally {
      await r.close();
    }
  });

  it('a preview of a loaded pipeline whose table was dropped names the table', async () => {
    const source = await table('ed_dropped');
    const r = await openRunner(buildMapping({ name: 'ed-dropped', source, target: 'ed_dropped', key: ['id'] }), db().url);
    try {
      await r.runner.run({});
      await queryOnce(db().url, 'DROP TABLE public.ed_dropped');
      await expectSyncError(r.runner.preview({}), { kind: 'target', table: 'public.ed_dropped', message: /does not exist, but pipeline "ed-dropped" has a checkpoint/, hint: /--mode initial/ });
    } finally {
      await r.close();
    }
  });
});
