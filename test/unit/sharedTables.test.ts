import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sharedTablesDir } from '../helpers/sharedTables';

describe('shared Delta tables folder', () => {
  let root: string;
  let helperDir: string;
  before(() => {
    // A clone at root/clone whose helpers are root/clone/test/helpers; the shared folder would be root/shared.
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'shared-tables-'));
    helperDir = path.join(root, 'clone', 'test', 'helpers');
    fs.mkdirSync(helperDir, { recursive: true });
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('in CI a missing folder fails instead of letting the tests that need it skip', () => {
    assert.throws(() => sharedTablesDir({ CI: 'true' }, helperDir), /CI is set, but the shared Delta tables folder is missing.*DELTA_TABLES_DIR/);
    assert.throws(() => sharedTablesDir({ CI: 'true', DELTA_TABLES_DIR: path.join(root, 'nowhere') }, helperDir), /nowhere/);
  });

  it('outside CI a missing folder is undefined (the tests skip), also with CI=false', () => {
    assert.equal(sharedTablesDir({}, helperDir), undefined);
    assert.equal(sharedTablesDir({ CI: 'false' }, helperDir), undefined);
  });

  it('finds ../shared/delta-tables next to the clone, and DELTA_TABLES_DIR is the only place looked at when set', () => {
    const shared = path.join(root, 'shared', 'delta-tables');
    fs.mkdirSync(shared, { recursive: true });
    fs.writeFileSync(path.join(shared, 'README.md'), 'tables\n');
    try {
      assert.equal(sharedTablesDir({ CI: 'true' }, helperDir), shared);
      assert.throws(() => sharedTablesDir({ CI: 'true', DELTA_TABLES_DIR: path.join(root, 'elsewhere') }, helperDir), /elsewhere/);
    } finally {
      fs.rmSync(path.join(root, 'shared'), { recursive: true, force: true });
    }
  });
});
