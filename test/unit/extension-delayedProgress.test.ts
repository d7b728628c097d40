import assert from 'node:assert/strict';
import { withDelayedProgress } from '../../src/views/delayedProgress';

describe('withDelayedProgress (the forms\' progress notifications)', () => {
  it('work that settles before the delay shows no progress: its value or its error passes through', async () => {
    const shown: unknown[] = [];
    const show = (p: Promise<unknown>) => {
      shown.push(p);
      return p;
    };
    assert.deepEqual(await withDelayedProgress(async () => ['databricks_postgres'], show, 200), ['databricks_postgres']);
    await assert.rejects(withDelayedProgress(async () => {
      throw new Error('HTTP 403');
    }, show, 200), /HTTP 403/);
    assert.deepEqual(shown, []);
  });

  it('work still running after the delay is shown once, with the work\'s own promise, until it settles', async () => {
    let finish: ((v: string) => void) | undefined;
    const work = new Promise<string>((resolve) => {
      finish = resolve;
    });
    const shown: Promise<string>[] = [];
    const result = withDelayedProgress(() => work, (running) => {
      shown.push(running);
      // The work ends only once its progress is up: the show is not a race with it.
      finish?.('listed');
      return running;
    }, 20);
    assert.equal(await result, 'listed');
    assert.equal(shown.length, 1);
    assert.equal(shown[0], work);
  });

  it('a failure after the delay rejects through the shown progress', async () => {
    let fail: ((e: Error) => void) | undefined;
    const work = new Promise<string>((_, reject) => {
      fail = reject;
    });
    let shows = 0;
    await assert.rejects(withDelayedProgress(() => work, (running) => {
      shows++;
      fail?.(new Error('did not answer within 30 s'));
      return running;
    }, 20), /did not answer within 30 s/);
    assert.equal(shows, 1);
  });
});
