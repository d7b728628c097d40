import { DBSQLClient, DBSQLParameter, DBSQLParameterType, LogLevel } from '@databricks/sql';
import type IDBSQLSession from '@databricks/sql/dist/contracts/IDBSQLSession';
import type IOperation from '@databricks/sql/dist/contracts/IOperation';
import type IDBSQLLogger from '@databricks/sql/dist/contracts/IDBSQLLogger';
import { SyncError } from '../errors';
import type { Logger } from '../ports/Logger';
import { silentLogger } from '../ports/Logger';
import type { DatabricksConnectionConfig } from '../ports/databricksConnection';
import { classifyDatabricksError } from './classifyDatabricksError';
import type { ErrorContext } from './classifyDatabricksError';

export type { DatabricksConnectionConfig } from '../ports/databricksConnection';

/** Bound statement parameters: strings, numbers, bigints (as BIGINT), booleans. */
export type StatementParams = Record<string, string | number | bigint | boolean>;

function toParameter(v: string | number | bigint | boolean): DBSQLParameter {
  if (typeof v === 'bigint') return new DBSQLParameter({ type: DBSQLParameterType.BIGINT, value: v });
  if (typeof v === 'number' && Number.isSafeInteger(v)) return new DBSQLParameter({ type: DBSQLParameterType.BIGINT, value: BigInt(v) });
  return new DBSQLParameter({ value: v });
}

/** Strips `https://`, a path and a trailing slash; splits `host:port`. */
export function normalizeHost(host: string): { host: string; port?: number } {
  let h = host.trim().replace(/^https?:\/\//i, '');
  h = h.replace(/\/.*$/, '');
  const m = /^(.*):(\d+)$/.exec(h);
  return m ? { host: m[1] as string, port: Number(m[2]) } : { host: h };
}

/** Routes driver log lines to the engine Logger (never stdout). */
function driverLogger(log: Logger): IDBSQLLogger {
  return {
    log(level: LogLevel, message: string): void {
      const line = `databricks: ${message}`;
      if (level === LogLevel.error) log.error(line);
      else if (level === LogLevel.warn) log.warn(line);
      else log.debug(line);
    },
  };
}

/**
 * One connection (client + session) to a Databricks SQL warehouse through @databricks/sql.
 * Always: telemetry off, BIGINT/DECIMAL precision kept, driver logs to the engine Logger.
 * Every failure is a SyncError (classifyDatabricksError).
 */
export class DatabricksClient {
  private constructor(
    private readonly client: DBSQLClient,
    private readonly session: IDBSQLSession,
    readonly host: string,
    private readonly log: Logger,
    /** Passed to every statement (the driver takes it per statement). */
    private readonly useCloudFetch?: boolean,
  ) {}

  static async connect(config: DatabricksConnectionConfig, opts: { logger?: Logger } = {}): Promise<DatabricksClient> {
    const log = opts.logger ?? silentLogger;
    const { host, port: hostPort } = normalizeHost(config.host);
    const ctx: ErrorContext = { operation: 'connect', host };
    if (!host) throw new SyncError('usage', 'The Databricks host is empty.', { setting: 'DATABRICKS_HOST', hint: 'Set DATABRICKS_HOST to the workspace URL.' });
    const client = new DBSQLClient({ logger: driverLogger(log) });
    // The client emits 'error' for connection failures it also throws; without a listener
    // EventEmitter would throw again.
    client.on('error', (e: unknown) => log.debug(`databricks: connection error ${e instanceof Error ? e.message : String(e)}`));
    const common = {
      host,
      port: config.port ?? hostPort ?? 443,
      path: config.httpPath.startsWith('/') ? config.httpPath : `/${config.httpPath}`,
      telemetryEnabled: false,
      preserveBigNumericPrecision: true,
      userAgentEntry: 'delta-neon-sync',
      ...(config.customCaCert !== undefined ? { customCaCert: pemOf(config.customCaCert) } : {}),
      ...(config.retryMaxAttempts !== undefined ? { retryMaxAttempts: config.retryMaxAttempts } : {}),
      ...(config.socketTimeoutMs !== undefined ? { socketTimeout: config.socketTimeoutMs } : {}),
    };
    try {
      if (config.auth.type === 'pat') {
        await client.connect({ ...common, authType: 'access-token', token: config.auth.token });
      } else {
        await client.connect({ ...common, authType: 'databricks-oauth', oauthClientId: config.auth.clientId, oauthClientSecret: config.auth.clientSecret });
      }
      const session = await client.openSession();
      log.debug(`databricks: session ${session.id} open on ${host}${common.path}`);
      return new DatabricksClient(client, session, host, log, config.useCloudFetch);
    } catch (e) {
      await client.close().catch(() => undefined);
      throw classifyDatabricksError(e, ctx);
    }
  }

  /**
   * Runs a statement and streams its rows in chunks of at most `batchSize` (memory bounded
   * by the chunk, never the result). Values are bound through `params` (`:name` markers).
   */
  query(sql: string, ctx: ErrorContext, opts: { params?: StatementParams; batchSize?: number; signal?: AbortSignal } = {}): AsyncGenerator<Record<string, unknown>[]> {
    const batchSize = Math.max(1, opts.batchSize ?? 10_000);
    return this.rows(
      () => {
        const namedParameters: Record<string, DBSQLParameter> = {};
        for (const [k, v] of Object.entries(opts.params ?? {})) namedParameters[k] = toParameter(v);
        this.log.debug(`databricks: ${sql}`);
        return this.session.executeStatement(sql, { namedParameters, maxRows: batchSize, ...(this.useCloudFetch !== undefined ? { useCloudFetch: this.useCloudFetch } : {}) });
      },
      ctx,
      batchSize,
      opts.signal,
    );
  }

  /**
   * The rows of the operation `start` begins, in non-empty chunks of at most `batchSize`.
   * Every failure (starting included) is classified; the operation is always closed.
   */
  private async *rows(start: () => Promise<IOperation>, ctx: ErrorContext, batchSize: number, signal?: AbortSignal): AsyncGenerator<Record<string, unknown>[]> {
    let op: IOperation | undefined;
    try {
      op = await start();
      for (;;) {
        if (signal?.aborted) throw new SyncError('cancelled', `Reading ${ctx.table ?? 'from Databricks'} was cancelled.`, { table: ctx.table, retry: 'manual' });
        const rows = (await op.fetchChunk({ maxRows: batchSize })) as Record<string, unknown>[];
        if (rows.length > 0) yield rows;
        if (!(await op.hasMoreRows())) break;
      }
    } catch (e) {
      throw classifyDatabricksError(e, { ...ctx, host: this.host });
    } finally {
      await op?.close().catch(() => undefined);
    }
  }

  /** All rows of a small result (metadata, history pages). */
  async all(sql: string, ctx: ErrorContext, params?: StatementParams): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for await (const chunk of this.query(sql, ctx, { params })) out.push(...chunk);
    return out;
  }

  /** Runs a statement without reading rows (DDL). */
  async execute(sql: string, ctx: ErrorContext): Promise<void> {
    let op: IOperation | undefined;
    try {
      this.log.debug(`databricks: ${sql}`);
      op = await this.session.executeStatement(sql, {});
      await op.finished();
    } catch (e) {
      throw classifyDatabricksError(e, { ...ctx, host: this.host });
    } finally {
      await op?.close().catch(() => undefined);
    }
  }

  /** Runs one of the driver's metadata calls and returns all its rows. */
  async metadata(kind: 'catalogs' | 'schemas' | 'tables' | 'columns', req: { catalogName?: string; schemaName?: string; tableName?: string }, ctx: ErrorContext): Promise<Record<string, unknown>[]> {
    const start = (): Promise<IOperation> =>
      kind === 'catalogs'
        ? this.session.getCatalogs()
        : kind === 'schemas'
          ? this.session.getSchemas(req)
          : kind === 'tables'
            ? this.session.getTables(req)
            : this.session.getColumns(req);
    const out: Record<string, unknown>[] = [];
    for await (const chunk of this.rows(start, ctx, 10_000)) out.push(...chunk);
    return out;
  }

  async close(): Promise<void> {
    try {
      await this.session.close();
    } catch (e) {
      this.log.debug(`databricks: closing the session failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    await this.client.close().catch(() => undefined);
  }
}

/**
 * The CA as the driver takes it (a string or a Buffer): a Buffer handed to a worker thread
 * (WorkerSource, by structured clone) arrives as a plain Uint8Array, which the driver refuses
 * ("`customCaCert` must be a PEM string or a Buffer").
 */
function pemOf(ca: string | Uint8Array): string | Buffer {
  return typeof ca === 'string' || Buffer.isBuffer(ca) ? ca : Buffer.from(ca.buffer, ca.byteOffset, ca.byteLength);
}
