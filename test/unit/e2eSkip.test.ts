import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/** test/e2e/run.ts with SKIP_E2E=1: says it was skipped, never PASS; in CI it refuses to skip. */
describe('end-to-end runner with SKIP_E2E=1', function () {
  this.timeout(60_000);
  const root = path.resolve(__dirname, '../..');
  const run = (env: Record<string, string>): { status: number | null; stderr: string } => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/e2e/run.ts'], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr };
  };

  it('outside CI: exits 0, says SKIPPED and does not print PASS', () => {
    const r = run({ SKIP_E2E: '1', CI: '' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /SKIPPED: SKIP_E2E=1/);
    assert.doesNotMatch(r.stderr, /PASS/);
  });

  it('in CI: a skip is a failure (exit 1) naming SKIP_E2E', () => {
    const r = run({ SKIP_E2E: '1', CI: 'true' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /FAIL: .*SKIP_E2E=1 is set in CI/);
    assert.doesNotMatch(r.stderr, /PASS/);
  });
});
