/**
 * Typed progress events the runner emits. The CLI renders them as bars or lines, the
 * extension posts them (throttled) to the progress webview.
 */
export type SyncMode = 'initial' | 'incremental';
/**
 * Where a run is, emitted as it gets there: plan (columns, schema drift), read (the
 * snapshot or the change feed), stage (COPY into the staging table), index (its primary
 * key), swap (the load's one transaction: swap or merge), apply (an incremental
 * transaction's parts), checkpoint (the commit that writes it).
 */
export type SyncPhase = 'plan' | 'read' | 'stage' | 'index' | 'swap' | 'apply' | 'checkpoint';

/** What a mapping with `mode: "auto"` chose, in events, results and reports. */
export interface AutoSaid {
  path: 'incremental' | 'snapshot';
  reason: string;
}

export type SyncEvent =
  | {
      type: 'run-started'; runId: string; pipeline: string; /** repair: a repair by checksums (run/repairPhase). */ mode: SyncMode | 'repair'; fromVersion: number | null; toVersion: number;
      /** Rows the run will read, when known before reading (an initial load: the snapshot's row count from the log's stats). */
      totalRows?: number | null;
      /**
       * Mapping `mode: "auto"`: the path it chose for the versions after the checkpoint and
       * why (run/autoMode: "snapshot swap: 420,000 changes are 42% of 1,000,000 rows, above
       * auto.maxChangeShare 20%"); a snapshot path runs as mode initial.
       */
      auto?: AutoSaid;
      at: number;
    }
  | { type: 'phase'; phase: SyncPhase; detail?: string; at: number }
  | {
      type: 'progress';
      rowsRead: number;
      /** Rows the target has taken: an initial load counts them as COPY takes them (final count at its end). */
      rowsApplied: number;
      bytesRead: number;
      batches: number;
      /** Version committed so far by this run: the last committed batch's (incremental), the snapshot's once an initial load committed; null before the run's first commit. */
      version: number | null;
      /** Rows read per second since the run's clock started. */
      rowsPerSecond: number;
      /** Seconds left, when the total is known: at the slower of the read and apply rates. */
      etaSeconds: number | null;
      /**
       * Rows the run will read, when known before reading: an initial load's snapshot row
       * count from the Delta log's file stats (numRecords less deletion vectors), from the
       * first progress event on; null when the log has no stats, and for incremental runs.
       */
      totalRows: number | null;
      at: number;
    }
  | { type: 'batch-committed'; fromVersion: number; toVersion: number; inserted: number; updated: number; deleted: number; unchanged: number; deadLettered: number; at: number }
  | { type: 'warning'; message: string; at: number }
  | { type: 'run-finished'; runId: string; status: 'succeeded' | 'failed' | 'cancelled'; checkpointVersion: number | null; rowsApplied: number; error?: string; at: number };

export type SyncEventListener = (event: SyncEvent) => void;
