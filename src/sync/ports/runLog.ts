/** One past run of a pipeline, as the target's run log records it (64-bit values as text). */
export interface RunHistoryEntry {
  runId: string;
  mode: string;
  fromVersion: string | null;
  toVersion: string | null;
  rows: string | null;
  status: string;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}
