/**
 * `work`, or a rejection with `late()`'s error once `ms` have passed without its answer (the
 * timer is cleared either way). `late` may also cancel the work; a late answer is ignored.
 */
export async function withinTime<T>(work: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
