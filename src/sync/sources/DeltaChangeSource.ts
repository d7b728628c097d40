import type { ChangeSource, CommitOperation, SourceSnapshot, WorkerSource } from '../ports/ChangeSource';
import type { ChangeReadOptions, ChangeRow } from '../delta/types';
import { DeltaTable } from '../delta/DeltaTable';

/** The local Delta reader as a ChangeSource. */
export class DeltaChangeSource implements ChangeSource {
  private constructor(private readonly table: DeltaTable) {}

  static async open(path: string): Promise<DeltaChangeSource> {
    return new DeltaChangeSource(await DeltaTable.open(path));
  }

  get name(): string {
    return this.table.path;
  }

  latestVersion(): Promise<number> {
    return this.table.latestVersion();
  }

  async snapshot(version?: number): Promise<SourceSnapshot> {
    const s = await this.table.snapshot(version === undefined ? {} : { version });
    return {
      version: s.version,
      timestamp: s.timestamp,
      schema: s.schema,
      cdfEnabled: s.cdfEnabled,
      rows: (opts) => s.rows(opts),
      rowCount: s.describe().numRows,
      rowsFrom: (skip, opts) => s.rows({ ...opts, skip }),
    };
  }

  async commitTimestamp(version: number): Promise<number> {
    try {
      return await this.table.commitTimestamp(version);
    } catch {
      // No commit file (cleaned up) and no checkpoint at that version: the snapshot knows.
      return (await this.table.snapshot({ version })).timestamp;
    }
  }

  async operations(from: number, to: number): Promise<CommitOperation[]> {
    return (await this.table.operations(from, to)).map((h) => ({
      version: h.version, operation: h.operation ?? null, ...(h.operationParameters ? { parameters: h.operationParameters } : {}),
    }));
  }

  workerSource(): WorkerSource {
    return { type: 'delta', path: this.table.path };
  }

  changeBytes(start: number, end: number): Promise<number> {
    return this.table.changeBytes(start, end);
  }

  changeCount(start: number, end: number): Promise<number> {
    return this.table.changeCount(start, end);
  }

  /** Honours `preimageColumns`: preimages are read slim (ChangeReadOptions). */
  changes(start: number, end: number, opts?: ChangeReadOptions): AsyncIterable<ChangeRow[]> {
    return this.table.changes({ startingVersion: start, endingVersion: end }, opts);
  }
}
