import type { ChangeRow, ChangeReadOptions } from '../delta/types';
import type { ChangeSource, CommitOperation, SourcePolling, SourceSnapshot } from '../ports/ChangeSource';

/**
 * A ChangeSource that opens the real one at its first read: `name` and `polling` answer
 * without it, so a caller can ask `polling.readiness()` (a Databricks warehouse's state over
 * REST) before anything connects. Opened once; a failed open is tried again at the next read.
 * `close()` closes the opened source, if any, and calls `closeOther` (the polling's client).
 */
export function deferredSource(name: string, polling: SourcePolling | undefined, open: () => Promise<ChangeSource>, closeOther?: () => void): ChangeSource {
  let opened: Promise<ChangeSource> | undefined;
  const source = (): Promise<ChangeSource> => {
    if (!opened) {
      const p = open();
      opened = p;
      p.catch(() => {
        if (opened === p) opened = undefined;
      });
    }
    return opened;
  };
  return {
    name,
    ...(polling ? { polling } : {}),
    latestVersion: async () => (await source()).latestVersion(),
    snapshot: async (version?: number): Promise<SourceSnapshot> => (await source()).snapshot(version),
    commitTimestamp: async (version: number) => (await source()).commitTimestamp(version),
    async *changes(start: number, end: number, opts?: ChangeReadOptions): AsyncIterable<ChangeRow[]> {
      yield* (await source()).changes(start, end, opts);
    },
    async operations(from: number, to: number): Promise<CommitOperation[]> {
      const s = await source();
      return s.operations ? s.operations(from, to) : [];
    },
    async close(): Promise<void> {
      const p = opened;
      opened = undefined;
      closeOther?.();
      const s = p ? await p.catch(() => undefined) : undefined;
      await s?.close?.();
    },
  };
}
