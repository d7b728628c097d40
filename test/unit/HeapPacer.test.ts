import assert from 'node:assert/strict';
import { HeapPacer, fullGc } from '../../src/sync/worker/HeapPacer';

/**
 * The reader thread collects its heap itself while planning a commit applied in parts
 * (whose live heap grows to its end): when in use exceeds 1.5x what the last collection
 * left, above a floor.
 */
describe('HeapPacer (full collections on the reader thread)', () => {
  const MB = 2 ** 20;

  it('is due above the floor, then only once the heap has grown by the factor since the last collection', () => {
    const p = new HeapPacer(96 * MB, 1.5);
    assert.equal(p.due(50 * MB), false, 'under the floor');
    assert.equal(p.due(100 * MB), true, 'above the floor, never collected');
    p.collected(80 * MB);
    assert.equal(p.due(110 * MB), false, '110 < 1.5 x 80');
    assert.equal(p.due(121 * MB), true, '121 > 1.5 x 80');
    p.collected(120 * MB);
    assert.equal(p.due(170 * MB), false, 'the live size grew: so does the threshold');
    assert.equal(p.due(181 * MB), true);
  });

  it('fullGc gives a working full collection without --expose-gc', async () => {
    const gc = fullGc();
    assert.equal(typeof gc, 'function');
    let garbage: unknown[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
    const ref = new WeakRef(garbage);
    garbage = undefined;
    // A WeakRef's target is kept to the end of the job that made it.
    await new Promise((resolve) => setImmediate(resolve));
    gc?.();
    assert.equal(ref.deref(), undefined, 'the unreachable array was collected');
  });
});
