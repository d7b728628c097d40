/** What the engine says about one pipeline, for views to show as is (never re-derived). */
export type PipelineState =
  | { phase: 'not-loaded' }                       // no checkpoint yet: an initial load is needed
  | { phase: 'running'; runId: string; mode: string; startedAt: string }
  | { phase: 'up-to-date'; version: number }
  | { phase: 'behind'; version: number; latestVersion: number; versionsBehind: number }
  // Loaded, but the source's latest version was not read: reading it would start stopped compute (a Databricks SQL warehouse).
  | { phase: 'source-not-checked'; version: number; reason: string; short: string }
  | { phase: 'errored'; version: number | null; error: { message: string; kind: string; retry: 'auto' | 'manual' | 'never'; hint?: string }; at: string };
