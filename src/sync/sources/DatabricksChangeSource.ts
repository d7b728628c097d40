import { SyncError } from '../errors';
import { isChangeType } from '../delta/types';
import type { ChangeReadOptions, ChangeRow, DeltaField, Row } from '../delta/types';
import { isCdfEnabled } from '../delta/protocolSupport';
import type { ChangeSource, CommitOperation, PollReadiness, SourcePolling, SourceSnapshot, WorkerSource } from '../ports/ChangeSource';
import type { Logger } from '../ports/Logger';
import { DatabricksCatalog } from '../databricks/DatabricksCatalog';
import { DatabricksClient } from '../databricks/DatabricksClient';
import type { DatabricksConnectionConfig } from '../databricks/DatabricksClient';
import { WarehouseState } from '../databricks/WarehouseState';
import { deferredSource } from './deferredSource';
import { formatTableName, fromDriverValue, parseTableName, quoteIdentifier, quoteTableName } from '../databricks/databricksTypes';
import type { TableName } from '../databricks/databricksTypes';

/**
 * The select list for `fields`, aliased by position (`c0`, `c1`, ...) so any column name
 * is safe, with the expressions that keep values exact through the driver: TIMESTAMP as
 * unix_micros() (the driver would give a Date, ms only), TIMESTAMP_NTZ as its wall-clock
 * text, DECIMAL as its text (the driver's Arrow decimal decoding breaks on large negative
 * 128-bit values), MAP as map_entries() (the driver would turn keys into property names).
 */
export function selectList(fields: readonly DeltaField[]): { sql: string; decode: (r: Record<string, unknown>) => Row } {
  const items = fields.map((f, i) => {
    const col = quoteIdentifier(f.name);
    const alias = quoteIdentifier(`c${i}`);
    if (f.type.kind === 'primitive' && f.type.name === 'timestamp') return `unix_micros(${col}) AS ${alias}`;
    if ((f.type.kind === 'primitive' && f.type.name === 'timestamp_ntz') || f.type.kind === 'decimal') return `CAST(${col} AS STRING) AS ${alias}`;
    if (f.type.kind === 'map') return `map_entries(${col}) AS ${alias}`;
    return `${col} AS ${alias}`;
  });
  const decode = (r: Record<string, unknown>): Row => {
    const row: Row = {};
    fields.forEach((f, i) => {
      row[f.name] = fromDriverValue(r[`c${i}`], f.type, f.name);
    });
    return row;
  };
  return { sql: items.join(', '), decode };
}

function checkVersion(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new SyncError('usage', `${what} must be a non-negative integer, got ${String(v)}.`);
}

export interface DatabricksSourceOptions {
  logger?: Logger;
}

/** A continuous sync's poll interval on a Databricks source when the user sets none (`--interval`, the extension's setting). */
export const DATABRICKS_POLL_INTERVAL_MS = 30_000;

/**
 * Polling a table through its SQL warehouse. There is no cheaper read of a table's latest
 * version: DESCRIBE HISTORY is a statement (it runs on the warehouse, starting it when it
 * is stopped), and neither @databricks/sql nor the Unity Catalog tables API (TableInfo has
 * no Delta version) offers one without compute. So: a longer default floor, and before each
 * poll the warehouse's state from the SQL Warehouses API, which runs no statement; a poll is
 * skipped while the warehouse is not running.
 */
export class WarehousePolling implements SourcePolling {
  readonly defaultIntervalMs = DATABRICKS_POLL_INTERVAL_MS;
  readonly cost: string;

  constructor(private readonly warehouse: WarehouseState | undefined, table: string) {
    this.cost = warehouse
      ? `one DESCRIBE HISTORY ${table} LIMIT 1 on SQL warehouse ${warehouse.warehouseId} while it runs, after a state check over REST (GET /api/2.0/sql/warehouses/${warehouse.warehouseId}) that runs no statement`
      : `one DESCRIBE HISTORY ${table} LIMIT 1 on the cluster of the HTTP path (a cluster's state is not checked: a poll starts it when it is stopped)`;
  }

  async readiness(): Promise<PollReadiness> {
    if (!this.warehouse) return { ready: true };
    let answer;
    try {
      answer = await this.warehouse.read();
    } catch (e) {
      return { ready: true, warning: `could not read the state of SQL warehouse ${this.warehouse.warehouseId} (${e instanceof Error ? e.message : String(e)}); polling it with a statement, which starts it when it is stopped` };
    }
    const which = answer.name ? `"${answer.name}" (${this.warehouse.warehouseId})` : this.warehouse.warehouseId;
    if (answer.state === undefined) return { ready: true };
    if (answer.state === 'RUNNING') return { ready: true, state: `SQL warehouse ${which} is RUNNING` };
    return { ready: false, reason: `SQL warehouse ${which} is ${answer.state}`, short: `warehouse ${answer.state.toLowerCase()}` };
  }

  close(): void {
    this.warehouse?.close();
  }
}

/**
 * A Unity Catalog Delta table read through a SQL warehouse, as a ChangeSource: snapshots
 * with `VERSION AS OF`, changes with `table_changes()`, both streamed in chunks of the
 * batch size. Values arrive in the engine representation (databricksTypes.ts).
 */
export class DatabricksChangeSource implements ChangeSource {
  readonly name: string;
  private readonly catalog: DatabricksCatalog;
  /** Commit timestamps by version: commits are immutable, so this never goes stale. */
  private readonly timestamps = new Map<number, number>();
  /** How a continuous sync polls it: only for a source opened from a connection (its REST API needs the host and credentials). */
  readonly polling?: WarehousePolling;

  constructor(
    private readonly client: DatabricksClient,
    readonly table: TableName,
    private readonly ownsClient = false,
    /** How the source was connected: lets a worker thread open it too (workerSource). */
    private readonly connection?: DatabricksConnectionConfig,
  ) {
    this.name = formatTableName(table);
    this.catalog = new DatabricksCatalog(client);
    if (connection) this.polling = new WarehousePolling(WarehouseState.for(connection), this.name);
  }

  /**
   * The source without connecting yet: its `polling` (the warehouse's state over REST) is
   * there at once, and the first read opens it (`open`, or DatabricksChangeSource.open). For a
   * status read, which must not open a warehouse session (that starts a stopped warehouse)
   * before the state says it runs. A table that is not visible fails at that first read.
   */
  static deferred(config: DatabricksConnectionConfig, table: string, open?: () => Promise<ChangeSource>, opts: DatabricksSourceOptions = {}): ChangeSource {
    const polling = new WarehousePolling(WarehouseState.for(config), formatTableName(parseTableName(table)));
    return deferredSource(formatTableName(parseTableName(table)), polling, open ?? (() => DatabricksChangeSource.open(config, table, opts)), () => polling.close());
  }

  /** Connects and checks the table is visible; the source owns (and close() closes) the connection. */
  static async open(config: DatabricksConnectionConfig, table: string, opts: DatabricksSourceOptions = {}): Promise<DatabricksChangeSource> {
    const name = parseTableName(table);
    const client = await DatabricksClient.connect(config, { logger: opts.logger });
    try {
      const source = new DatabricksChangeSource(client, name, true, config);
      await source.columns();
      return source;
    } catch (e) {
      await client.close();
      throw e;
    }
  }

  columns(): Promise<DeltaField[]> {
    return this.catalog.columns(this.table);
  }

  async latestVersion(): Promise<number> {
    const h = await this.catalog.latest(this.table);
    this.timestamps.set(h.version, h.timestamp);
    return h.version;
  }

  async operations(from: number, to: number): Promise<CommitOperation[]> {
    const rows = await this.catalog.history(this.table);
    return rows.filter((h) => h.version >= from && h.version <= to).sort((a, b) => a.version - b.version).slice(-20)
      .map((h) => ({ version: h.version, operation: h.operation }));
  }

  async commitTimestamp(version: number): Promise<number> {
    checkVersion(version, 'The version');
    const cached = this.timestamps.get(version);
    if (cached !== undefined) return cached;
    for (const h of await this.catalog.history(this.table)) this.timestamps.set(h.version, h.timestamp);
    const t = this.timestamps.get(version);
    if (t === undefined) {
      throw new SyncError('time-travel', `Version ${version} of ${this.name} is not in its history.`, {
        table: this.name,
        version,
        hint: 'DESCRIBE HISTORY lists the versions that can be read; older ones were cleaned up.',
      });
    }
    return t;
  }

  /**
   * The table at `version` (latest by default). Its schema is the current one (getColumns):
   * Databricks has no time travel for metadata, so a version before a schema change reads
   * with the current columns.
   */
  async snapshot(version?: number): Promise<SourceSnapshot> {
    if (version !== undefined) checkVersion(version, 'The version');
    const v = version ?? (await this.latestVersion());
    const [timestamp, schema, props] = [await this.commitTimestamp(v), await this.columns(), await this.catalog.properties(this.table)];
    const { sql: list, decode } = selectList(schema);
    // The version is a checked integer; Databricks does not take a parameter marker here.
    const sql = `SELECT ${list} FROM ${quoteTableName(this.table)} VERSION AS OF ${v}`;
    const client = this.client;
    const name = this.name;
    return {
      version: v,
      timestamp,
      schema,
      cdfEnabled: isCdfEnabled(props),
      async *rows(opts: { batchSize?: number; signal?: AbortSignal } = {}): AsyncIterable<Row[]> {
        for await (const chunk of client.query(sql, { operation: 'snapshot', table: name, version: v }, opts)) yield chunk.map(decode);
      },
    };
  }

  /** Change rows of [start, end] (inclusive) ordered by commit version, in batches. */
  /** Ignores `preimageColumns`: table_changes() returns full preimages. */
  async *changes(start: number, end: number, opts: ChangeReadOptions = {}): AsyncIterable<ChangeRow[]> {
    checkVersion(start, 'The starting version');
    checkVersion(end, 'The ending version');
    if (start > end) {
      throw new SyncError('cdf-range', `The change range of ${this.name} is empty: start ${start} is after end ${end}.`, { table: this.name, version: start });
    }
    const schema = await this.columns();
    const { sql: list, decode } = selectList(schema);
    const sql =
      `SELECT ${list}, ${quoteIdentifier('_change_type')} AS ${quoteIdentifier('_change_type')}, ` +
      `${quoteIdentifier('_commit_version')} AS ${quoteIdentifier('_commit_version')}, ` +
      `unix_millis(${quoteIdentifier('_commit_timestamp')}) AS ${quoteIdentifier('_commit_ms')} ` +
      `FROM table_changes(:t, :start, :end) ORDER BY ${quoteIdentifier('_commit_version')}`;
    const params = { t: quoteTableName(this.table), start: BigInt(start), end: BigInt(end) };
    for await (const chunk of this.client.query(sql, { operation: 'changes', table: this.name, version: start }, { ...opts, params })) {
      yield chunk.map((r): ChangeRow => {
        const ct = r._change_type;
        if (!isChangeType(ct)) {
          throw new SyncError('delta-file', `table_changes returned an unknown _change_type ${String(ct)} for ${this.name}.`, { table: this.name });
        }
        return {
          changeType: ct,
          commitVersion: Number(r._commit_version),
          commitTimestamp: Number(r._commit_ms),
          values: decode(r),
        };
      });
    }
  }

  /**
   * A worker thread opens its own session with the same connection and reads there: the
   * driver's Arrow decoding, LZ4 and value conversion then leave the thread that runs COPY.
   * Undefined for a source made on a client it was handed (no connection to repeat).
   */
  workerSource(): WorkerSource | undefined {
    return this.connection ? { type: 'databricks', table: formatTableName(this.table), connection: this.connection } : undefined;
  }

  /** Closes the connection when the source opened it. */
  async close(): Promise<void> {
    this.polling?.close();
    if (this.ownsClient) await this.client.close();
  }
}
