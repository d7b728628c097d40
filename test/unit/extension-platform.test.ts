import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { databricksCaCertificate } from '../../src/platform/databricksCaCertificate';
import { isSyncError, SyncError } from '../../src/sync/errors';
import { errorText, toProtocolError } from '../../src/views/toProtocolError';

describe('extra CA certificate for Databricks clients', () => {
  it('adds nothing when the setting is empty', async () => {
    assert.deepEqual(await databricksCaCertificate(() => undefined)(), {});
  });

  it('reads the PEM file the setting names, on each new client', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-ca-'));
    try {
      const file = path.join(dir, 'proxy.pem');
      fs.writeFileSync(file, '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
      let setting: string | undefined;
      const extras = databricksCaCertificate(() => setting);
      assert.deepEqual(await extras(), {});
      setting = file;
      assert.equal((await extras()).customCaCert?.toString('utf8'), fs.readFileSync(file, 'utf8'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unreadable file is a usage error naming the file and the setting', async () => {
    const missing = path.join(os.tmpdir(), 'dns-no-such-ca.pem');
    await assert.rejects(databricksCaCertificate(() => missing)(), (e) => isSyncError(e) && e.kind === 'usage' && e.message.includes(missing) && e.setting === 'deltaSync.databricks.caCertificateFile');
  });
});

describe('errors as users see them (one conversion)', () => {
  it('a SyncError keeps its kind and hint; anything else is its message', () => {
    assert.deepEqual(toProtocolError(new SyncError('target', 'relation missing', { hint: 'run the initial load' })), { message: 'relation missing', kind: 'target', hint: 'run the initial load' });
    assert.deepEqual(toProtocolError(new Error('boom')), { message: 'boom' });
    assert.deepEqual(toProtocolError('plain'), { message: 'plain' });
  });

  it('one line puts the hint in parentheses after the message', () => {
    assert.equal(errorText(new SyncError('auth', 'Token rejected.', { hint: 'Add the connection again.' })), 'Token rejected. (Add the connection again.)');
    assert.equal(errorText(new Error('boom')), 'boom');
  });
});
