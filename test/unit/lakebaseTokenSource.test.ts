import assert from 'node:assert/strict';
import { SyncError } from '../../src/sync/errors';
import { LakebaseTokenSource } from '../../src/sync/lakebase/LakebaseTokenSource';
import type { IssuedCredential } from '../../src/sync/lakebase/LakebaseTokenSource';

const ctx = { profile: 'stalled', host: 'https://adb-1.example.net', resource: 'endpoint projects/p/branches/b/endpoints/e' };

describe('LakebaseTokenSource', () => {
  it('fails a credential request the workspace never answers, within its limit, and asks anew on the next login', async () => {
    let asked = 0;
    const never = (): Promise<IssuedCredential> => {
      asked++;
      return new Promise<IssuedCredential>(() => undefined);
    };
    const tokens = new LakebaseTokenSource(never, ctx, Date.now, 50);
    const started = Date.now();
    await assert.rejects(tokens.token(), (e: unknown) => {
      assert.ok(e instanceof SyncError);
      assert.equal(e.kind, 'connection');
      assert.equal(e.retry, 'auto');
      assert.match(e.message, /Databricks profile "stalled" \(workspace https:\/\/adb-1\.example\.net\) did not issue a database token for Lakebase endpoint projects\/p\/branches\/b\/endpoints\/e within 0\.1 s/);
      return true;
    });
    assert.ok(Date.now() - started < 5_000);
    // The stalled request is forgotten: the next login asks again instead of waiting on it.
    await assert.rejects(tokens.token(), /did not issue a database token/);
    assert.equal(asked, 2);
    assert.equal(tokens.fetched, 0);
  });

  it('shares one request between concurrent logins and reuses the token while it has time left', async () => {
    let asked = 0;
    const issue = async (): Promise<IssuedCredential> => {
      asked++;
      await new Promise((r) => setTimeout(r, 10));
      return { token: `t${asked}`, expiresAt: new Date(Date.now() + 3_600_000).toISOString() };
    };
    const tokens = new LakebaseTokenSource(issue, ctx, Date.now, 1_000);
    const got = await Promise.all([tokens.token(), tokens.token(), tokens.token()]);
    assert.deepEqual(got, ['t1', 't1', 't1']);
    assert.equal(await tokens.token(), 't1');
    assert.equal(asked, 1);
  });
});
