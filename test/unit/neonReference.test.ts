import * as assert from 'node:assert/strict';
import { neonRetryAfterMs } from '../../src/sync/neon/classifyNeonError';
import { formatNeonReference, parseNeonReference } from '../../src/sync/mapping/neonReference';
import { neonApiUrl } from '../../src/sync/neon/resolveNeonConnection';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';

describe('neon: references', () => {
  it('parse project, branch and database, with role= and pooled=', () => {
    assert.deepEqual(parseNeonReference('neon:calm-river-123/main/neondb'), { ok: true, ref: { project: 'calm-river-123', branch: 'main', database: 'neondb', pooled: false } });
    assert.deepEqual(parseNeonReference('neon:p/br-quiet-fog-1/app%20db?role=app_writer&pooled=true'), {
      ok: true, ref: { project: 'p', branch: 'br-quiet-fog-1', database: 'app db', role: 'app_writer', pooled: true },
    });
  });

  it('refuse a password, unknown options, a bad pooled= and anything but three parts, saying why', () => {
    const reason = (s: string): string => {
      const r = parseNeonReference(s);
      assert.equal(r.ok, false, s);
      return r.ok ? '' : r.reason;
    };
    assert.match(reason('neon:p/b/d?password=x'), /must not contain a password/);
    assert.match(reason('neon:p/b/d?sslmode=require'), /unknown option "sslmode"/);
    assert.match(reason('neon:p/b/d?pooled=yes'), /pooled= must be true or false/);
    assert.match(reason('neon:p/b'), /three non-empty parts/);
    assert.match(reason('neon:p//d'), /three non-empty parts/);
    assert.match(reason('neon:p/b/d/e'), /three non-empty parts/);
  });

  it('format back to the same reference (names with odd characters escaped)', () => {
    for (const s of ['neon:p/main/neondb', 'neon:p/dev/app%20db?role=r&pooled=true']) {
      const r = parseNeonReference(s);
      assert.ok(r.ok);
      assert.equal(formatNeonReference(r.ref), s);
    }
  });

  it('a mapping accepts a neon: reference as target.connection and names what is wrong with a bad one', () => {
    assert.equal(buildMapping({ target: { connection: 'neon:p/main/neondb?role=r', table: 't' } }).target.connection, 'neon:p/main/neondb?role=r');
    expectSyncError(() => buildMapping({ target: { connection: 'neon:p/main', table: 't' } }), { kind: 'mapping', message: /target\.connection: a Neon reference must be neon:<project>\/<branch>\/<database>/ });
    expectSyncError(() => buildMapping({ target: { connection: 'neon:p/main/db?password=s3cret', table: 't' } }), { kind: 'mapping', message: /must not contain a password/ });
  });

  it('NEON_API_HOST may be a bare host or a full base URL', () => {
    assert.equal(neonApiUrl(undefined), 'https://console.neon.tech/api/v2');
    assert.equal(neonApiUrl('console.stage.neon.tech'), 'https://console.stage.neon.tech/api/v2');
    assert.equal(neonApiUrl('http://127.0.0.1:8080/api/v2/'), 'http://127.0.0.1:8080/api/v2');
  });

  it('Retry-After in seconds or as an HTTP date', () => {
    const err = (v: string): unknown => ({ response: { status: 429, headers: { 'retry-after': v } } });
    assert.equal(neonRetryAfterMs(err('2')), 2000);
    assert.equal(neonRetryAfterMs(err(new Date(10_000).toUTCString()), 4_000), 6_000);
    assert.equal(neonRetryAfterMs({ response: { status: 429, headers: {} } }), undefined);
  });
});
