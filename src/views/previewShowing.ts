/**
 * When the Preview's progress notification ends. Plain TS (no vscode), so the lifecycle is
 * tested in plain Node.
 *
 * It used to end when the plan was computed, before the panel existed. VS Code keeps a
 * progress notification up at least 800 ms after it appeared (an extension cannot lower
 * that), so after a quick plan the toast outlived it and covered the pager of the panel
 * that had opened meanwhile; after a slow one it vanished before the panel showed anything.
 * Now it ends when the user sees the result: the counts and the first page of rows, or
 * that page's error, or the panel closed first; every wait bounded. From then on it goes
 * at once, unless it appeared less than those 800 ms before.
 */

/** How the panel's first showing ended: counts and first page shown, the page failed (the panel shows the error), or the panel closed first. */
export type FirstShowing = 'shown' | 'failed' | 'closed';

/** How long the progress waits, once the plan is computed, for the panel to load, ask for its first page and show it. */
export const FIRST_PAGE_WAIT_MS = 20_000;

/** A promise that settles once, with the first outcome given to `settle` (later ones are ignored). */
export class FirstShowingLatch {
  readonly settled: Promise<FirstShowing>;
  private resolve: ((how: FirstShowing) => void) | undefined;

  constructor() {
    this.settled = new Promise<FirstShowing>((resolve) => {
      this.resolve = resolve;
    });
  }

  settle(how: FirstShowing): void {
    const r = this.resolve;
    this.resolve = undefined;
    r?.(how);
  }
}

/**
 * Computes the plan, opens the panel with it, then waits until the panel's first showing
 * settles, at most `waitMs`, or until `signal` aborts (the notification's Cancel: the
 * panel stays, the wait ends). Resolves to how the wait ended; a failed or cancelled
 * computation rejects as `compute` does, and nothing is opened.
 */
export async function computeThenShow<T>(
  compute: () => Promise<T>,
  open: (value: T) => { readonly firstShowing: Promise<FirstShowing> },
  opts: { signal: AbortSignal; waitMs: number },
): Promise<FirstShowing | 'timeout' | 'cancelled'> {
  const value = await compute();
  const panel = open(value);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      panel.firstShowing,
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), opts.waitMs);
      }),
      new Promise<'cancelled'>((resolve) => {
        onAbort = () => resolve('cancelled');
        if (opts.signal.aborted) onAbort();
        else opts.signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) opts.signal.removeEventListener('abort', onAbort);
  }
}
