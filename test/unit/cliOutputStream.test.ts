import * as assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { OutputClosedError, OutputStream } from '../../src/cli/OutputStream';

/** A sink that accepts one chunk at a time and completes it only when told to. */
function slowSink(): { sink: Writable; chunks: string[]; release: () => void } {
  const chunks: string[] = [];
  const pending: (() => void)[] = [];
  const sink = new Writable({
    highWaterMark: 4,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      pending.push(() => cb());
    },
  });
  return { sink, chunks, release: () => pending.splice(0).forEach((f) => f()) };
}

describe('OutputStream', function () {
  it('waits for drain before resolving a write the stream cannot take yet', async function () {
    const { sink, chunks, release } = slowSink();
    const out = new OutputStream(sink);
    let resolved = false;
    const p = out.write('0123456789').then(() => {
      resolved = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(resolved, false, 'write is still waiting for drain');
    release();
    await p;
    assert.equal(resolved, true);
    assert.deepEqual(chunks, ['0123456789']);
  });

  it('turns EPIPE into OutputClosedError so the producer stops', async function () {
    const sink = new Writable({
      write(_chunk, _enc, cb) {
        const e = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
        cb(e);
      },
    });
    const out = new OutputStream(sink);
    await assert.rejects(async () => {
      for (let i = 0; i < 5; i++) await out.write(`line ${i}\n`);
    }, OutputClosedError);
    assert.equal(out.isClosed, true);
  });

  it('rethrows other stream errors', async function () {
    const sink = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
      },
    });
    const out = new OutputStream(sink);
    await assert.rejects(async () => {
      for (let i = 0; i < 5; i++) await out.write(`line ${i}\n`);
    }, /disk full/);
  });
});
