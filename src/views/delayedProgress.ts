/**
 * How long work may run before its progress notification is shown. VS Code keeps a
 * notification progress up for at least 800 ms, so a listing that answers in 50 ms left a
 * "Listing ..." toast over the next step, and over the result of the form after a quick run
 * of steps; work this quick shows none.
 */
export const PROGRESS_DELAY_MS = 300;

/**
 * Runs `work` and calls `show` with its promise only if it has not settled after `delayMs`
 * (show displays the progress until that promise settles and returns it). Resolves or
 * rejects as the work does; the timer is cleared as soon as the work settles.
 */
export async function withDelayedProgress<T>(work: () => Promise<T>, show: (running: Promise<T>) => PromiseLike<T>, delayMs: number = PROGRESS_DELAY_MS): Promise<T> {
  const running = work();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), delayMs);
  });
  const settled = running.then(() => false, () => false);
  try {
    if (await Promise.race([settled, late])) return await show(running);
    return await running;
  } finally {
    clearTimeout(timer);
  }
}
