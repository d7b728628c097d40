import type { AutoSaid } from './events';

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
  /** Mapping `mode: "auto"`: the path the run took and why (absent for a run outside mode auto). */
  auto?: AutoSaid;
}

/** How a failed run is recorded: the error's message, and what kind it was, its retry policy and hint. */
export interface RunError {
  message: string;
  kind?: string;
  retry?: 'auto' | 'manual' | 'never';
  hint?: string;
}

/** A run as the run log holds it: the history entry, and a failed run's error in detail. */
export interface RunRecord extends RunHistoryEntry {
  errorDetail: RunError | null;
}
