import type { ChangeRow, DeltaField, Row } from '../delta/types';

/**
 * What the runner needs from a source: the local Delta reader and the Databricks source
 * implement it, so mappings, preview and sync work the same on both.
 */
export interface SourceSnapshot {
  version: number;
  /** Commit timestamp, ms since epoch. */
  timestamp: number;
  schema: DeltaField[];
  cdfEnabled: boolean;
  rows(opts?: { batchSize?: number; signal?: AbortSignal }): AsyncIterable<Row[]>;
}

export interface ChangeSource {
  /** How errors and checkpoints name the source (table path or catalog.schema.table). */
  readonly name: string;
  latestVersion(): Promise<number>;
  snapshot(version?: number): Promise<SourceSnapshot>;
  /** Commit timestamp of a version, ms since epoch. */
  commitTimestamp(version: number): Promise<number>;
  /** Change rows of [start, end] in commit-version order, in batches. */
  changes(start: number, end: number, opts?: { batchSize?: number; signal?: AbortSignal }): AsyncIterable<ChangeRow[]>;
  /** Releases connections the source holds (Databricks); local tables hold none. */
  close?(): Promise<void>;
}
