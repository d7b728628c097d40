import * as assert from 'node:assert/strict';
import { computeThenShow, FirstShowingLatch, type FirstShowing } from '../../src/views/previewShowing';

/** A Preview panel stand-in: its first showing settles when the test says so. */
function fakePanel(): { firstShowing: Promise<FirstShowing>; latch: FirstShowingLatch } {
  const latch = new FirstShowingLatch();
  return { firstShowing: latch.settled, latch };
}

/** Whether `p` is still pending after the event loop had a turn. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  return (await Promise.race([p, new Promise((r) => setTimeout(() => r(marker), 20))])) === marker;
}

describe('the Preview\'s progress lasts until the panel shows its first page', () => {
  it('after the plan is computed and the panel opened, the progress waits for the counts and first page', async () => {
    const panel = fakePanel();
    const opened: number[] = [];
    const done = computeThenShow(async () => 1_200, (n) => {
      opened.push(n);
      return panel;
    }, { signal: new AbortController().signal, waitMs: 10_000 });
    assert.ok(await pending(done), 'the progress ended before the panel showed anything');
    assert.deepEqual(opened, [1_200]);
    panel.latch.settle('shown');
    assert.equal(await done, 'shown');
  });

  it('a first page that fails, or a panel closed first, ends the progress too', async () => {
    for (const how of ['failed', 'closed'] as const) {
      const panel = fakePanel();
      const done = computeThenShow(async () => 'plan', () => panel, { signal: new AbortController().signal, waitMs: 10_000 });
      assert.ok(await pending(done));
      panel.latch.settle(how);
      assert.equal(await done, how);
    }
  });

  it('a panel that never shows its page ends the progress after the bound', async () => {
    const t0 = Date.now();
    assert.equal(await computeThenShow(async () => 'plan', () => fakePanel(), { signal: new AbortController().signal, waitMs: 50 }), 'timeout');
    assert.ok(Date.now() - t0 < 5_000);
  });

  it('Cancel on the notification once the panel is open ends the wait and keeps the panel', async () => {
    const abort = new AbortController();
    let opened = 0;
    const done = computeThenShow(async () => 'plan', () => {
      opened++;
      return fakePanel();
    }, { signal: abort.signal, waitMs: 10_000 });
    assert.ok(await pending(done));
    abort.abort();
    assert.equal(await done, 'cancelled');
    assert.equal(opened, 1);
  });

  it('a failed computation opens no panel and fails as it did', async () => {
    let opened = 0;
    await assert.rejects(
      computeThenShow(async () => {
        throw new Error('Delta table /data/orders: version 7 is missing');
      }, () => {
        opened++;
        return fakePanel();
      }, { signal: new AbortController().signal, waitMs: 10_000 }),
      /version 7 is missing/,
    );
    assert.equal(opened, 0);
  });

  it('the first showing is settled once: a later outcome does not change it', async () => {
    const latch = new FirstShowingLatch();
    latch.settle('shown');
    latch.settle('closed');
    assert.equal(await latch.settled, 'shown');
  });
});
