import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/**
 * Decides when the reader thread runs a full garbage collection of its own. Planning a
 * commit applied in parts keeps its removals to the end of the commit (planSteps; the keys
 * it upserted are kept off the heap, in a KeySet), so the live heap grows through it; V8
 * then lets the old generation grow to several times the live size between full collections (a 1M-change commit: 545 MB peak RSS, against
 * 282 MB with a full collection every few parts; bench/scaleBench.ts at 10M rows). After
 * each part the caller asks `due(used)` with the heap in use; a collection is due once it
 * is more than `factor` times what the last collection left, and above `floorBytes`.
 */
export class HeapPacer {
  private live: number;
  constructor(private readonly floorBytes = 64 * 2 ** 20, private readonly factor = 1.25) {
    this.live = 0;
  }

  due(usedBytes: number): boolean {
    return usedBytes > this.floorBytes && usedBytes > this.live * this.factor;
  }

  /** What the collection left in use. */
  collected(usedBytes: number): void {
    this.live = usedBytes;
  }
}

/**
 * A full collection, for the reader thread (no --expose-gc needed): the flag is set for
 * contexts made from now on, and `gc` is taken from a new one. Undefined if that fails.
 */
export function fullGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}
