/**
 * Paces a run to at most `perSecond` rows per second (a mapping's batch.maxRowsPerSecond),
 * to spare a target that serves an application. The pace is kept over the whole run, not
 * per batch: a slow batch leaves credit for the next, so the limit is what the run's
 * average never exceeds.
 */
export class RateLimit {
  private readonly started = Date.now();
  private admitted = 0;

  constructor(private readonly perSecond: number) {}

  /**
   * Resolves when `rows` more rows may be sent: once the rows admitted before, at the
   * limit, would have taken the time elapsed since the run started. Rejects with an
   * AbortError when `signal` aborts during the wait.
   */
  async admit(rows: number, signal?: AbortSignal): Promise<void> {
    const due = this.started + (this.admitted / this.perSecond) * 1000;
    this.admitted += rows;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait, signal);
  }
}

/** setTimeout as a promise that an AbortSignal cancels (AbortError). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
