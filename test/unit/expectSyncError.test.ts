import { strict as assert } from 'node:assert';
import { SyncError } from '../../src/sync/errors';
import { expectSyncError } from '../helpers/expectSyncError';
import type { ExpectedSyncError } from '../helpers/expectSyncError';

/** The shared test helper must fail wherever the checks it replaced would have failed. */
describe('test helper: expectSyncError', () => {
  const drift = (): SyncError =>
    new SyncError('schema-drift', 'customers changed at version 7: added "email"', {
      table: 'customers',
      version: 7,
      column: 'email',
      setting: 'schemaDrift',
      hint: 'Set schemaDrift to add-columns',
      retry: 'manual',
    });

  it('returns the error thrown by a function when every given field matches', () => {
    const e = expectSyncError(
      () => {
        throw drift();
      },
      { kind: 'schema-drift', retry: 'manual', version: 7, table: 'customers', column: /^em/, setting: true, message: /version 7/, hint: /add-columns/ },
    );
    assert.equal(e.column, 'email');
  });

  it('awaits a rejected promise or an async function', async () => {
    assert.equal((await expectSyncError(Promise.reject(drift()), { kind: ['cdf-range', 'schema-drift'] })).version, 7);
    assert.equal((await expectSyncError(async () => Promise.reject(drift()))).kind, 'schema-drift');
  });

  it('fails when nothing is thrown, the promise resolves, or the error is not a SyncError', async () => {
    assert.throws(() => expectSyncError(() => 1), /nothing was thrown/);
    await assert.rejects(expectSyncError(Promise.resolve(1)), /the promise resolved/);
    assert.throws(
      () =>
        expectSyncError(() => {
          throw new Error('plain');
        }),
      /expected a SyncError, got Error: plain/,
    );
  });

  it('fails on each field that does not match', () => {
    const cases: ExpectedSyncError[] = [
      { kind: 'mapping' },
      { kind: ['mapping', 'target'] },
      { retry: 'auto' },
      { version: 6 },
      { table: 'orders' },
      { column: /^name$/ },
      { message: /version 8/ },
      { hint: /initial load/ },
    ];
    for (const expected of cases) {
      assert.throws(() => expectSyncError(() => {
        throw drift();
      }, expected), assert.AssertionError, String(Object.entries(expected)));
    }
    const bare = new SyncError('target', 'no hint here');
    assert.throws(() => expectSyncError(() => {
      throw bare;
    }, { hint: true }), /has a hint/);
  });
});
