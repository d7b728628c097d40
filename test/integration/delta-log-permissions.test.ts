import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { long } from '../builders/deltaFields';
import { REPO_ROOT, tempDir } from '../helpers/syncHarness';

/**
 * A Delta log this user may not read is reported as a permission problem naming the path,
 * not as a cleaned-up log or a wrong table root. Root reads everything whatever the mode
 * bits, so when the tests run as root the table is read by a child process running as
 * `nobody`; otherwise by a child process as this user.
 */

interface Outcome {
  kind?: string;
  message?: string;
  hint?: string;
  version?: number;
  ok?: boolean;
}

const NOBODY = 65534;

/** Opens the table and reads its latest snapshot in a child process, as `nobody` when running as root. */
function readAsOtherUser(table: string): Promise<Outcome> {
  const script = `
    const { DeltaTable } = require(${JSON.stringify(path.join(REPO_ROOT, 'src/sync/delta/DeltaTable'))});
    (async () => {
      try {
        const t = await DeltaTable.open(${JSON.stringify(table)});
        await t.snapshot();
        console.log(JSON.stringify({ ok: true }));
      } catch (e) {
        console.log(JSON.stringify({ kind: e.kind, message: e.message, hint: e.hint, version: e.version }));
      }
    })();`;
  const asRoot = process.getuid?.() === 0;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-r', require.resolve('tsx/cjs'), '-e', script], { ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}), cwd: '/', env: { ...process.env, HOME: '/tmp' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Outcome);
    });
  });
}

describe('Delta log permissions', function () {
  this.timeout(60_000);
  let table: string;

  before(async () => {
    const dir = await tempDir();
    await fs.chmod(dir, 0o755);
    table = path.join(dir, 'perm');
    const w = await DeltaTableWriter.create(table, { columns: [{ name: 'id', type: long(), nullable: false }] });
    await w.append([{ id: 1n }]); // v1
    for (const p of [table, path.join(table, '_delta_log')]) await fs.chmod(p, 0o755);
    for (const f of await fs.readdir(path.join(table, '_delta_log'))) await fs.chmod(path.join(table, '_delta_log', f), 0o644);
    for (const f of await fs.readdir(table)) if (f.endsWith('.parquet')) await fs.chmod(path.join(table, f), 0o644);
    assert.deepEqual(await readAsOtherUser(table), { ok: true }, 'readable before the test takes access away');
  });

  it('an unreadable _delta_log folder is a permission error naming the folder, with a hint about read access', async () => {
    const log = path.join(table, '_delta_log');
    await fs.chmod(log, 0o700);
    try {
      const r = await readAsOtherUser(table);
      assert.equal(r.kind, 'delta-log');
      assert.match(r.message ?? '', new RegExp(`Permission denied reading the Delta log folder ${log.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
      assert.match(r.hint ?? '', /read access/);
      assert.doesNotMatch(r.hint ?? '', /table root folder|cleaned up/);
    } finally {
      await fs.chmod(log, 0o755);
    }
  });

  it('an unreadable commit file is a permission error naming the file and version, with a hint about read access', async () => {
    const commit = path.join(table, '_delta_log', '00000000000000000001.json');
    await fs.chmod(commit, 0o600);
    try {
      const r = await readAsOtherUser(table);
      assert.equal(r.kind, 'delta-log');
      assert.equal(r.version, 1);
      assert.match(r.message ?? '', /Permission denied reading the Delta log file .*00000000000000000001\.json/);
      assert.match(r.hint ?? '', /read access/);
      assert.doesNotMatch(r.hint ?? '', /cleaned up|logRetentionDuration/);
    } finally {
      await fs.chmod(commit, 0o644);
    }
  });
});
