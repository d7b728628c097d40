import { strict as assert } from 'node:assert';
import { isSyncError } from '../../src/sync/errors';
import type { RetryPolicy, SyncError, SyncErrorKind } from '../../src/sync/errors';

/** A text field's expectation: equal to a string, matching a RegExp, or (true) present and non-empty. */
export type TextExpectation = string | RegExp | true;

/** The fields a test checks; a field left out (or undefined) is not checked. */
export interface ExpectedSyncError {
  /** The kind, or the kinds any one of which will do. */
  kind?: SyncErrorKind | readonly SyncErrorKind[];
  retry?: RetryPolicy;
  version?: number;
  table?: TextExpectation;
  column?: TextExpectation;
  setting?: TextExpectation;
  message?: TextExpectation;
  hint?: TextExpectation;
}

type Work = PromiseLike<unknown> | (() => unknown);

/** A promise, or a function returning one, fails later; any other function throws at once. */
type Outcome<W> = W extends PromiseLike<unknown>
  ? Promise<SyncError>
  : W extends () => infer R
    ? [R] extends [never]
      ? SyncError
      : R extends PromiseLike<unknown>
        ? Promise<SyncError>
        : SyncError
    : never;

/**
 * Expects `work` to fail with a SyncError whose fields meet `expected`, and returns the
 * error for any further checks. `work` is a promise or an async function (then await the
 * result), or a function that throws synchronously (then the error comes back directly).
 */
export function expectSyncError<W extends Work>(work: W, expected: ExpectedSyncError = {}): Outcome<W> {
  let pending: unknown;
  if (typeof work === 'function') {
    try {
      pending = work();
    } catch (e) {
      return checked(e, expected) as Outcome<W>;
    }
    if (!isThenable(pending)) assert.fail('expected a SyncError, but nothing was thrown');
  } else {
    pending = work;
  }
  return Promise.resolve(pending).then(
    () => assert.fail('expected a SyncError, but the promise resolved'),
    (e: unknown) => checked(e, expected),
  ) as Outcome<W>;
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof (x as { then?: unknown } | null)?.then === 'function';
}

function checked(e: unknown, expected: ExpectedSyncError): SyncError {
  assert.ok(isSyncError(e), `expected a SyncError, got ${e instanceof Error ? e.stack : String(e)}`);
  const { kind, retry, version } = expected;
  if (kind !== undefined) {
    const kinds: readonly SyncErrorKind[] = typeof kind === 'string' ? [kind] : kind;
    assert.ok(kinds.includes(e.kind), `kind ${e.kind}, expected ${kinds.join(' or ')}: ${e.message}`);
  }
  if (retry !== undefined) assert.equal(e.retry, retry, `retry: ${e.message}`);
  if (version !== undefined) assert.equal(e.version, version, `version: ${e.message}`);
  for (const name of ['table', 'column', 'setting', 'message', 'hint'] as const) {
    const want = expected[name];
    if (want !== undefined) checkText(name, e[name], want, e);
  }
  return e;
}

function checkText(name: string, actual: string | undefined, want: TextExpectation, e: SyncError): void {
  if (want === true) assert.ok(actual, `the error has a ${name}: ${e.describe()}`);
  else if (typeof want === 'string') assert.equal(actual, want, `${name}: ${e.describe()}`);
  else assert.match(actual ?? '', want, `${name}: ${e.describe()}`);
}
