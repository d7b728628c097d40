import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ProgressPrinter } from '../../src/cli/ProgressPrinter';
import type { SyncEvent } from '../../src/sync/ports/events';

/** The CLI's rendering of runner events: phases are shown as the run passes them. */

function capture(tty: boolean): { out: PassThrough & { isTTY?: boolean; columns?: number }; text: () => string } {
  const out = Object.assign(new PassThrough(), tty ? { isTTY: true, columns: 120 } : {});
  let text = '';
  out.setEncoding('utf8').on('data', (d: string) => (text += d));
  return { out, text: () => text };
}

const at = 0;
const events: SyncEvent[] = [
  { type: 'run-started', runId: 'r', pipeline: 'orders', mode: 'initial', fromVersion: null, toVersion: 4, at },
  { type: 'phase', phase: 'plan', detail: 'columns of /t/orders', at },
  { type: 'phase', phase: 'stage', detail: 'COPY of the snapshot into a staging table beside public.orders', at },
  { type: 'progress', rowsRead: 1500, rowsApplied: 0, bytesRead: 0, batches: 0, version: null, rowsPerSecond: 1500, etaSeconds: null, totalRows: null, at },
  { type: 'phase', phase: 'index', at },
];

describe('ProgressPrinter shows the run\'s phases', () => {
  it('without a terminal: one line per phase, with its detail when there is one', () => {
    const { out, text } = capture(false);
    const p = new ProgressPrinter(out, 0);
    for (const e of events) p.onEvent(e);
    const lines = text().split('\n');
    assert.ok(lines.includes('  plan: columns of /t/orders'), text());
    assert.ok(lines.includes('  stage: COPY of the snapshot into a staging table beside public.orders'), text());
    assert.ok(lines.includes('  index'), text());
  });

  it('on a terminal: the redrawn progress line names the phase the run is in', () => {
    const { out, text } = capture(true);
    const p = new ProgressPrinter(out, 0);
    for (const e of events) p.onEvent(e);
    assert.match(text(), /\r stage {2}1,500 rows read, 0 applied, 1,500 rows\/s/);
    assert.doesNotMatch(text(), /plan: columns/, 'phase lines are not printed on a terminal');
  });

  it('mode auto: the start line says a snapshot replaces the incremental sync, and why, once (on a terminal too)', () => {
    const reason = 'snapshot swap: 420,000 changes are 42% of 1,000,000 rows, above auto.maxChangeShare 20%';
    const auto: SyncEvent[] = [
      { type: 'run-started', runId: 'r', pipeline: 'orders', mode: 'initial', fromVersion: 5, toVersion: 9, auto: { path: 'snapshot', reason }, at },
      { type: 'phase', phase: 'plan', detail: `mode auto: ${reason}`, at },
    ];
    for (const tty of [false, true]) {
      const { out, text } = capture(tty);
      const p = new ProgressPrinter(out, 0);
      for (const e of auto) p.onEvent(e);
      assert.match(text(), /^Snapshot load in place of an incremental sync of orders: versions 5\.\.9\n/, text());
      assert.equal(text().split(`mode auto: ${reason}`).length, 2, text());
    }
  });
});
