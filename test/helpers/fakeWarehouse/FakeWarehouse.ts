import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Server } from 'node:tls';
import { thrift as dbThrift } from '@databricks/sql';
import type { sql } from '@databricks/sdk-experimental';
import * as thrift from 'thrift';
import { DeltaTable } from '../../../src/sync/delta/DeltaTable';
import type { DeltaField, DeltaType, DeltaValue, Row } from '../../../src/sync/delta/types';
import { isSyncError } from '../../../src/sync/errors';
import { field, integer, long, string, struct, timestamp } from '../../builders/deltaFields';
import { batchMessage, schemaMessage } from './arrowResults';
import { ResultFileServer, lz4Frame } from './ResultFileServer';
import type { ResultColumn } from './arrowResults';
import { parseTableRef, recogniseStatement } from './recogniseStatement';
import type { SelectItem, TableRef } from './recogniseStatement';
import { WarehouseTableError } from './WarehouseTable';
import type { HistoryEntry, WarehouseChange, WarehouseTable } from './WarehouseTable';

/**
 * A local Databricks SQL warehouse for tests: the Thrift-over-HTTPS protocol that
 * @databricks/sql speaks (TCLIService, served by the `thrift` package with the driver's own
 * generated processor), on 127.0.0.1 with a self-signed certificate, a random port and a
 * warehouse-like HTTP path. Results are computed from REAL Delta tables through the
 * project's local reader: catalogs map to {schema: {table: folder}}. A table may instead be
 * a WarehouseTable (e.g. ExpectedCdfTable: the expected CDF files of delta-rs /
 * delta-kernel-rs), answered without the project's reader, so the Databricks path can be
 * checked against an independent oracle rather than against the local reader.
 *
 * Statement results go over Arrow (schema message + record-batch messages, 128-bit
 * decimals, microsecond timestamps); metadata calls (getCatalogs, ...) over columnar
 * results, as real warehouses do. Only the SQL shapes of recogniseStatement.ts are known;
 * anything else fails like a Databricks syntax error.
 */

const T = dbThrift.TCLIService_types;
const nodeRequire = createRequire(__filename);
type Int64T = InstanceType<typeof T.TSparkArrowBatch>['rowCount'];
const Int64 = nodeRequire('node-int64') as new (v: number) => Int64T;
type TStatusT = InstanceType<typeof T.TStatus>;
type TOpStatusT = InstanceType<typeof T.TGetOperationStatusResp>;
type TMetaT = InstanceType<typeof T.TGetResultSetMetadataResp>;
type TFetchT = InstanceType<typeof T.TFetchResultsResp>;
type TRowSetT = InstanceType<typeof T.TRowSet>;
type TOpHandleT = InstanceType<typeof T.TOperationHandle>;
type TSessionHandleT = InstanceType<typeof T.TSessionHandle>;
type TDirectT = InstanceType<typeof T.TSparkDirectResults>;

/** Catalog -> schema -> table -> a Delta table folder (read by the local reader) or a WarehouseTable. */
export type CatalogMap = Record<string, Record<string, Record<string, string | WarehouseTable>>>;

export interface FakeWarehouseOptions {
  catalogs: CatalogMap;
  token?: string;
  httpPath?: string;
  /** How large results are served (CloudFetch); defaults below. `false`: always inline. */
  cloudFetch?: Partial<CloudFetchOptions> | false;
  /**
   * Keep the result files of each statement (by its text and parameters) and serve them again
   * to the same statement without running it, like the warehouse's query result cache.
   */
  resultCache?: boolean;
}

/**
 * CloudFetch as a SQL warehouse does it: a result of at least `minRows` rows, for a client
 * that sets `canDownloadResult`, is written as Arrow IPC stream files (schema, then record
 * batches of `rowsPerBatch`; LZ4-frame-compressed when the client sets
 * `canDecompressLZ4Result`, or always with `lz4: 'always'`), and FetchResults returns
 * `resultLinks` to them, at most `linksPerFetch` at a time, each presigned for `linkTtlMs`
 * from the moment it is handed out.
 */
export interface CloudFetchOptions {
  minRows: number;
  rowsPerFile: number;
  rowsPerBatch: number;
  linksPerFetch: number;
  linkTtlMs: number;
  /**
   * 'requested': compress only for a client that asks (`canDecompressLZ4Result`), as the
   * protocol has it. @databricks/sql 2.1.0 never asks while it asks for CloudFetch, so its
   * CloudFetch files are then uncompressed; 'always' compresses them anyway, which exercises
   * the driver's LZ4 decoding of result files.
   */
  lz4: 'requested' | 'always';
}

const CLOUD_FETCH_DEFAULTS: CloudFetchOptions = { minRows: 20_000, rowsPerFile: 50_000, rowsPerBatch: 10_000, linksPerFetch: 16, linkTtlMs: 15 * 60_000, lz4: 'requested' };

interface ResultFile {
  id: string;
  startRow: number;
  rowCount: number;
  bytes: number;
}

export interface DatabricksErrorSpec {
  errorClass: string;
  message: string;
  sqlState: string;
}

interface Operation {
  columns: ResultColumn[];
  rows: DeltaValue[][];
  /** Rows produced as the statement runs (a large snapshot): never all in memory with `files`. */
  batches?: AsyncIterable<DeltaValue[][]>;
  cursor: number;
  format: 'arrow' | 'columnar';
  error?: DatabricksErrorSpec;
  /** Inline Arrow batches (or result files) are LZ4 frames. */
  lz4?: boolean;
  /** CloudFetch: the result files, in row order; `cursor` counts files handed out. */
  files?: ResultFile[];
  /** Files kept by the result cache (not deleted on close). */
  cached?: boolean;
}

type CachedResult = Pick<Operation, 'columns' | 'files' | 'lz4'> & { rows: number };

interface ThriftRequest {
  [k: string]: unknown;
}

class FakeError extends Error {
  constructor(readonly spec: DatabricksErrorSpec) {
    super(`[${spec.errorClass}] ${spec.message}`);
  }
}

/** Databricks' SQL spelling of a type, as getColumns' TYPE_NAME shows it (independent of the source's formatter). */
export function sqlTypeName(t: DeltaType): string {
  switch (t.kind) {
    case 'decimal':
      return `DECIMAL(${t.precision},${t.scale})`;
    case 'array':
      return `ARRAY<${sqlTypeName(t.elementType)}>`;
    case 'map':
      return `MAP<${sqlTypeName(t.keyType)}, ${sqlTypeName(t.valueType)}>`;
    case 'struct':
      return `STRUCT<${t.fields.map((f) => `${f.name}: ${sqlTypeName(f.type)}${f.nullable ? '' : ' NOT NULL'}`).join(', ')}>`;
    case 'primitive':
      return ({ long: 'BIGINT', integer: 'INT', short: 'SMALLINT', byte: 'TINYINT' } as Record<string, string>)[t.name] ?? t.name.toUpperCase();
  }
}

function ttypeId(t: DeltaType): number {
  switch (t.kind) {
    case 'decimal':
      return T.TTypeId.DECIMAL_TYPE;
    case 'struct':
      return T.TTypeId.STRUCT_TYPE;
    case 'array':
      return T.TTypeId.ARRAY_TYPE;
    case 'map':
      return T.TTypeId.MAP_TYPE;
    case 'primitive':
      if (t.name === 'variant') return T.TTypeId.STRING_TYPE;
      return {
        string: T.TTypeId.STRING_TYPE,
        long: T.TTypeId.BIGINT_TYPE,
        integer: T.TTypeId.INT_TYPE,
        short: T.TTypeId.SMALLINT_TYPE,
        byte: T.TTypeId.TINYINT_TYPE,
        float: T.TTypeId.FLOAT_TYPE,
        double: T.TTypeId.DOUBLE_TYPE,
        boolean: T.TTypeId.BOOLEAN_TYPE,
        binary: T.TTypeId.BINARY_TYPE,
        date: T.TTypeId.DATE_TYPE,
        timestamp: T.TTypeId.TIMESTAMP_TYPE,
        timestamp_ntz: T.TTypeId.TIMESTAMP_TYPE,
      }[t.name];
  }
}

/** Spark's CAST(timestamp_ntz AS STRING): 'yyyy-MM-dd HH:mm:ss[.fraction without trailing zeros]'. */
function ntzText(micros: bigint): string {
  const day = 86_400_000_000n;
  let days = micros / day;
  let rem = micros % day;
  if (rem < 0n) {
    rem += day;
    days -= 1n;
  }
  const d = new Date(Number(days) * 86_400_000);
  const secs = Number(rem / 1_000_000n);
  const frac = Number(rem % 1_000_000n);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const date = `${String(d.getUTCFullYear()).padStart(4, '0')}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}`;
  const time = `${p2(Math.floor(secs / 3600))}:${p2(Math.floor((secs % 3600) / 60))}:${p2(secs % 60)}`;
  return `${date} ${time}${frac ? '.' + String(frac).padStart(6, '0').replace(/0+$/, '') : ''}`;
}

function guid(): Buffer {
  return Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
}

function success(): TStatusT {
  return new T.TStatus({ statusCode: T.TStatusCode.SUCCESS_STATUS });
}

/** A self-signed certificate for IP 127.0.0.1 (openssl), for the test only. */
function selfSignedCert(): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-warehouse-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    return { key: readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class FakeWarehouse {
  readonly token: string;
  readonly httpPath: string;
  /** PEM of the server certificate: give it to the client as customCaCert. */
  readonly caCert: string;
  /**
   * 'stopped': the warehouse is not running. A Thrift request then answers HTTP 503, or,
   * with `autoResume`, starts it (as a real warehouse does for a statement); the SQL
   * Warehouses API reports STOPPED either way.
   */
  mode: 'running' | 'stopped' = 'running';
  /** A Thrift request to a stopped warehouse starts it (counted in `resumes`) instead of failing. */
  autoResume = false;
  /** Times a Thrift request started the stopped warehouse. */
  resumes = 0;
  /** `GET /api/2.0/sql/warehouses/{id}` requests answered (none of them runs a statement). */
  stateReads = 0;
  /** Refuse the SQL Warehouses API with 403 PERMISSION_DENIED (a principal that may not read the warehouse's settings). */
  restDenied = false;
  /** Thrift requests being answered. */
  private inFlight = 0;
  /** Every statement text received, in order. */
  readonly statements: string[] = [];
  /** Every statement's bound parameters, in order. */
  readonly parameters: Array<Record<string, string>> = [];
  private readonly cdfOverrides = new Set<string>();
  private readonly operations = new Map<string, Operation>();
  private readonly tables = new Map<string, Promise<DeltaTable>>();
  private server?: Server;
  private port = 0;
  /** CloudFetch settings; undefined: results always inline. */
  readonly cloudFetch?: CloudFetchOptions;
  /** The result files' storage (presigned HTTPS links). */
  files!: ResultFileServer;
  private readonly resultCache?: Map<string, CachedResult>;
  private readonly tls: { key: string; cert: string };
  /** Statements answered from the result cache. */
  cacheHits = 0;
  /** Called after each FetchResults that hands out CloudFetch links (a test may change linkTtlMs then). */
  onLinks?: (links: number) => void;
  /** OpenSession calls (a worker thread that reads a source opens its own session). */
  sessionsOpened = 0;
  /** How each statement's result was served, in order (errors and metadata calls left out). */
  readonly results: Array<{ statement: string; cloudFetch: boolean; lz4: boolean; rows: number; files: number; bytes: number }> = [];

  private constructor(private readonly catalogs: CatalogMap, opts: FakeWarehouseOptions) {
    this.token = opts.token ?? `dapi${randomBytes(16).toString('hex')}`;
    this.httpPath = opts.httpPath ?? `/sql/1.0/warehouses/${randomBytes(8).toString('hex')}`;
    this.caCert = '';
    const { key, cert } = selfSignedCert();
    this.caCert = cert;
    const tls = { key, cert };
    this.tls = tls;
    if (opts.cloudFetch !== false) this.cloudFetch = { ...CLOUD_FETCH_DEFAULTS, ...(opts.cloudFetch ?? {}) };
    if (opts.resultCache) this.resultCache = new Map();
    const server = thrift.createWebServer({
      tls,
      services: {
        [this.httpPath]: {
          processor: dbThrift.TCLIService.Processor as unknown as thrift.TProcessorConstructor<unknown, unknown>,
          handler: this.handler(),
          protocol: thrift.TBinaryProtocol,
          transport: thrift.TBufferedTransport,
        },
      },
    } as unknown as thrift.WebServerOptions<unknown, unknown>) as Server;
    // Auth and the stopped mode sit in front of the Thrift service, like the workspace's gateway.
    const thriftListeners = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const auth = req.headers.authorization;
      if (!auth) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error_code":"UNAUTHENTICATED","message":"Credential was not sent"}');
        return;
      }
      if (auth !== `Bearer ${this.token}`) {
        res.writeHead(403, { 'content-type': 'application/json' }).end('{"error_code":"PERMISSION_DENIED","message":"Invalid access token."}');
        return;
      }
      if (req.url?.startsWith('/api/2.0/')) {
        this.restRequest(req, res);
        return;
      }
      this.inFlight++;
      res.once('close', () => this.inFlight--);
      if (this.mode === 'stopped' && this.autoResume) {
        this.mode = 'running';
        this.resumes++;
      }
      if (this.mode === 'stopped') {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error_code":"TEMPORARILY_UNAVAILABLE","message":"The SQL warehouse is stopped."}');
        return;
      }
      for (const l of thriftListeners) l.call(server, req, res);
    });
    this.server = server;
  }

  /**
   * Stops the warehouse once it is idle, as auto-stop does: no Thrift request being answered
   * and no operation open. (A client may still send a statement right after; with
   * `autoResume` that starts it again, as on a real warehouse.)
   */
  async stopWhenIdle(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.inFlight > 0 || this.operations.size > 0) {
      if (Date.now() > until) throw new Error(`the fake warehouse was not idle within ${timeoutMs} ms (${this.inFlight} requests, ${this.operations.size} operations open)`);
      await new Promise((r) => setTimeout(r, 2));
    }
    this.mode = 'stopped';
  }

  /** The warehouse id of the HTTP path (`/sql/1.0/warehouses/<id>`). */
  get warehouseId(): string {
    return this.httpPath.split('/').pop() as string;
  }

  /**
   * The workspace's REST API, as far as the source uses it: the SQL Warehouses API's get
   * (`GET /api/2.0/sql/warehouses/{id}`), answered in the SDK's own type; anything else is
   * the workspace's 404 ENDPOINT_NOT_FOUND.
   */
  private restRequest(req: IncomingMessage, res: ServerResponse): void {
    const json = (status: number, body: object): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const m = /^\/api\/2\.0\/sql\/warehouses\/([^/?]+)(?:\?.*)?$/.exec(req.url ?? '');
    if (!m || req.method !== 'GET') return json(404, { error_code: 'ENDPOINT_NOT_FOUND', message: `No API found for '${req.method} ${req.url}'` });
    if (m[1] !== this.warehouseId) return json(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Warehouse ${m[1]} does not exist.` });
    if (this.restDenied) return json(403, { error_code: 'PERMISSION_DENIED', message: `You do not have permission to view warehouse ${m[1]}.` });
    this.stateReads++;
    const answer: sql.GetWarehouseResponse = {
      id: this.warehouseId,
      name: 'Fake Warehouse',
      state: this.mode === 'running' ? 'RUNNING' : 'STOPPED',
      auto_stop_mins: 10,
      cluster_size: '2X-Small',
      num_clusters: this.mode === 'running' ? 1 : 0,
      odbc_params: { hostname: this.host, path: this.httpPath, port: this.port, protocol: 'https' },
    };
    json(200, answer);
  }

  /** Starts a warehouse on 127.0.0.1 at a random port. */
  static async start(opts: FakeWarehouseOptions): Promise<FakeWarehouse> {
    const w = new FakeWarehouse(opts.catalogs, opts);
    w.files = await ResultFileServer.start(w.tls);
    await new Promise<void>((resolve) => w.server?.listen(0, '127.0.0.1', resolve));
    w.port = (w.server?.address() as AddressInfo).port;
    return w;
  }

  get host(): string {
    return '127.0.0.1';
  }
  get serverPort(): number {
    return this.port;
  }

  /** A connection config for the source (token overridable, e.g. to test a wrong one). */
  config(token = this.token): { host: string; port: number; httpPath: string; auth: { type: 'pat'; token: string }; customCaCert: string; retryMaxAttempts: number } {
    return { host: this.host, port: this.port, httpPath: this.httpPath, auth: { type: 'pat', token }, customCaCert: this.caCert, retryMaxAttempts: 1 };
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await this.files.stop();
    (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  // ---------------------------------------------------------------- tables

  private pathOf(ref: TableRef): string | WarehouseTable | undefined {
    const cat = this.catalogs[ref.catalog] ?? this.catalogs[ref.catalog.toLowerCase()];
    const sch = cat?.[ref.schema] ?? cat?.[ref.schema.toLowerCase()];
    return sch?.[ref.table] ?? sch?.[ref.table.toLowerCase()];
  }

  private fullName(ref: TableRef): string {
    return `\`${ref.catalog}\`.\`${ref.schema}\`.\`${ref.table}\``;
  }

  /** The table's WarehouseTable when it is served without the local reader. */
  private served(ref: TableRef): WarehouseTable | undefined {
    const p = this.pathOf(ref);
    return p !== undefined && typeof p !== 'string' ? p : undefined;
  }

  private async open(ref: TableRef): Promise<DeltaTable> {
    const p = this.pathOf(ref);
    if (typeof p !== 'string') {
      throw new FakeError({
        errorClass: 'TABLE_OR_VIEW_NOT_FOUND',
        sqlState: '42P01',
        message: `The table or view ${this.fullName(ref)} cannot be found. Verify the spelling and correctness of the schema and catalog.`,
      });
    }
    let t = this.tables.get(p);
    if (!t) {
      t = DeltaTable.open(p);
      this.tables.set(p, t);
    }
    return t;
  }

  private async cdfEnabled(ref: TableRef, table: DeltaTable): Promise<boolean> {
    return this.cdfOverrides.has(this.fullName(ref)) || (await table.snapshot()).cdfEnabled;
  }

  // ---------------------------------------------------------------- statements

  private async run(sql: string, params: Record<string, string>): Promise<Omit<Operation, 'cursor'>> {
    const st = recogniseStatement(sql);
    if (!st) {
      throw new FakeError({ errorClass: 'PARSE_SYNTAX_ERROR', sqlState: '42601', message: `Syntax error: the fake warehouse does not know this statement: ${sql.slice(0, 200)}` });
    }
    const servedRef = st.kind === 'changes' ? parseTableRef(params.t ?? '') : st.kind === 'ping' ? undefined : st.table;
    const served = servedRef ? this.served(servedRef) : undefined;
    if (served) return this.runServed(served, st, servedRef as TableRef, params);
    switch (st.kind) {
      case 'ping':
        return { format: 'arrow', columns: [{ name: 'ok', type: integer() }], rows: [[1]] };
      case 'history': {
        const table = await this.open(st.table);
        const h = await table.history();
        const rows = (st.limit !== undefined ? h.slice(0, st.limit) : h).map((e) => [BigInt(e.version), BigInt(e.timestamp) * 1000n, e.operation ?? null, e.engineInfo ?? null]);
        return { format: 'arrow', columns: [{ name: 'version', type: long() }, { name: 'timestamp', type: timestamp() }, { name: 'operation', type: string() }, { name: 'engineInfo', type: string() }], rows };
      }
      case 'properties': {
        const table = await this.open(st.table);
        const s = await table.snapshot();
        const props: Record<string, string> = { ...s.metadata.configuration };
        if (this.cdfOverrides.has(this.fullName(st.table))) props['delta.enableChangeDataFeed'] = 'true';
        props['delta.minReaderVersion'] = String(s.protocol.minReaderVersion);
        props['delta.minWriterVersion'] = String(s.protocol.minWriterVersion);
        return { format: 'arrow', columns: [{ name: 'key', type: string() }, { name: 'value', type: string() }], rows: Object.entries(props).map(([k, v]) => [k, v]) };
      }
      case 'enable-cdf':
        await this.open(st.table);
        this.cdfOverrides.add(this.fullName(st.table));
        return { format: 'arrow', columns: [], rows: [] };
      case 'snapshot': {
        const table = await this.open(st.table);
        const latest = await table.latestVersion();
        if (st.version > latest) {
          throw new FakeError({ errorClass: 'DELTA_VERSION_NOT_FOUND', sqlState: '22003', message: `Cannot time travel Delta table to version ${st.version}. Available versions: [0, ${latest}].` });
        }
        const snap = await table.snapshot({ version: st.version }).catch((e: unknown) => {
          throw isSyncError(e) ? new FakeError({ errorClass: 'DELTA_TRUNCATED_TRANSACTION_LOG', sqlState: '42K03', message: `Unable to reconstruct state at version ${st.version} as the transaction log has been truncated: ${e.message}` }) : e;
        });
        const columns = this.project(st.items, snap.schema);
        const evaluate = (r: Row): DeltaValue[] => this.evaluate(st.items, snap.schema, r);
        const batches = async function* (): AsyncGenerator<DeltaValue[][]> {
          for await (const batch of snap.rows({ batchSize: 10_000 })) yield batch.map(evaluate);
        };
        return { format: 'arrow', columns, rows: [], batches: batches() };
      }
      case 'changes': {
        const ref = parseTableRef(params.t ?? '');
        if (!ref) throw new FakeError({ errorClass: 'INVALID_PARAMETER_VALUE', sqlState: '22023', message: `table_changes: bad table name ${params.t}` });
        const table = await this.open(ref);
        const start = Number(params.start);
        let end = Number(params.end);
        const latest = await table.latestVersion();
        if (start > latest) {
          throw new FakeError({ errorClass: 'DELTA_CDC_START_VERSION_AFTER_LATEST', sqlState: '42K0B', message: `Provided Start version(${start}) for reading change data is invalid. Start version cannot be greater than the latest version of the table(${latest}).` });
        }
        if (end < start) {
          throw new FakeError({ errorClass: 'DELTA_INVALID_CDC_RANGE', sqlState: '22003', message: `CDC range from start ${start} to end ${end} was invalid. End cannot be before start.` });
        }
        end = Math.min(end, latest);
        if (!this.cdfOverrides.has(this.fullName(ref)) && !(await table.snapshot({ version: end })).cdfEnabled) {
          throw this.missingChangeData(start, end, start);
        }
        const schema = (await table.snapshot({ version: end })).schema;
        const extended = [...schema, field('_change_type', string()), field('_commit_version', long()), field('_commit_timestamp', timestamp())];
        const columns = this.project(st.items, extended);
        const rows: DeltaValue[][] = [];
        try {
          for await (const batch of table.changes({ startingVersion: start, endingVersion: end })) {
            for (const c of batch) {
              const r: Row = { ...c.values, _change_type: c.changeType, _commit_version: BigInt(c.commitVersion), _commit_timestamp: BigInt(c.commitTimestamp) * 1000n };
              rows.push(this.evaluate(st.items, extended, r));
            }
          }
        } catch (e) {
          if (isSyncError(e) && e.kind === 'cdf-not-enabled') throw this.missingChangeData(start, end, e.version ?? start);
          if (isSyncError(e) && e.kind === 'cdf-range') {
            throw new FakeError({ errorClass: 'DELTA_TRUNCATED_TRANSACTION_LOG', sqlState: '42K03', message: `Unable to read changes at version ${e.version ?? start} as the transaction log or its files have been cleaned up: ${e.message}` });
          }
          throw e;
        }
        rows.sort((a, b) => {
          const va = a[items(st.items, '_commit_version')] as bigint;
          const vb = b[items(st.items, '_commit_version')] as bigint;
          return va < vb ? -1 : va > vb ? 1 : 0;
        });
        return { format: 'arrow', columns, rows };
      }
    }
  }

  /** A statement on a WarehouseTable: the same results and errors as from a folder, computed by the table. */
  private runServed(table: WarehouseTable, st: Exclude<ReturnType<typeof recogniseStatement>, undefined>, ref: TableRef, params: Record<string, string>): Omit<Operation, 'cursor'> {
    const call = <T>(f: () => T): T => {
      try {
        return f();
      } catch (e) {
        if (e instanceof WarehouseTableError) throw new FakeError({ errorClass: e.errorClass, sqlState: e.sqlState, message: e.message });
        throw e;
      }
    };
    const latest = table.latestVersion();
    switch (st.kind) {
      case 'ping':
        return { format: 'arrow', columns: [{ name: 'ok', type: integer() }], rows: [[1]] };
      case 'history': {
        const h: HistoryEntry[] = table.history();
        const rows = (st.limit !== undefined ? h.slice(0, st.limit) : h).map((e) => [BigInt(e.version), BigInt(e.timestamp) * 1000n, e.operation ?? null, e.engineInfo ?? null]);
        return { format: 'arrow', columns: [{ name: 'version', type: long() }, { name: 'timestamp', type: timestamp() }, { name: 'operation', type: string() }, { name: 'engineInfo', type: string() }], rows };
      }
      case 'properties': {
        const props = { ...table.properties() };
        if (this.cdfOverrides.has(this.fullName(ref))) props['delta.enableChangeDataFeed'] = 'true';
        return { format: 'arrow', columns: [{ name: 'key', type: string() }, { name: 'value', type: string() }], rows: Object.entries(props).map(([k, v]) => [k, v]) };
      }
      case 'enable-cdf':
        this.cdfOverrides.add(this.fullName(ref));
        return { format: 'arrow', columns: [], rows: [] };
      case 'snapshot': {
        if (st.version > latest) {
          throw new FakeError({ errorClass: 'DELTA_VERSION_NOT_FOUND', sqlState: '22003', message: `Cannot time travel Delta table to version ${st.version}. Available versions: [0, ${latest}].` });
        }
        const schema = table.schema();
        const columns = this.project(st.items, schema);
        return { format: 'arrow', columns, rows: call(() => table.rows(st.version)).map((r) => this.evaluate(st.items, schema, r)) };
      }
      case 'changes': {
        const start = Number(params.start);
        const end = Math.min(Number(params.end), latest);
        if (start > latest) {
          throw new FakeError({ errorClass: 'DELTA_CDC_START_VERSION_AFTER_LATEST', sqlState: '42K0B', message: `Provided Start version(${start}) for reading change data is invalid. Start version cannot be greater than the latest version of the table(${latest}).` });
        }
        if (Number(params.end) < start) {
          throw new FakeError({ errorClass: 'DELTA_INVALID_CDC_RANGE', sqlState: '22003', message: `CDC range from start ${start} to end ${params.end} was invalid. End cannot be before start.` });
        }
        for (let v = start; v <= end; v++) if (!this.cdfOverrides.has(this.fullName(ref)) && !table.cdfEnabled(v)) throw this.missingChangeData(start, end, v);
        const extended = [...table.schema(), field('_change_type', string()), field('_commit_version', long()), field('_commit_timestamp', timestamp())];
        const columns = this.project(st.items, extended);
        const rows = call(() => table.changes(start, end))
          .sort((a: WarehouseChange, b: WarehouseChange) => a.commitVersion - b.commitVersion)
          .map((c) => this.evaluate(st.items, extended, { ...c.values, _change_type: c.changeType, _commit_version: BigInt(c.commitVersion), _commit_timestamp: BigInt(c.commitTimestamp) * 1000n }));
        return { format: 'arrow', columns, rows };
      }
    }
  }

  private missingChangeData(start: number, end: number, version: number): FakeError {
    return new FakeError({
      errorClass: 'DELTA_MISSING_CHANGE_DATA',
      sqlState: 'KD002',
      message:
        `Error getting change data for range [${start} , ${end}] as change data was not recorded for version [${version}]. ` +
        "If you've enabled change data feed on this table, use `DESCRIBE HISTORY` to see when it was first enabled. " +
        'Otherwise, to start recording change data, use `ALTER TABLE table_name SET TBLPROPERTIES (delta.enableChangeDataFeed=true)`.',
    });
  }

  private column(schema: readonly DeltaField[], name: string): DeltaField {
    const f = schema.find((x) => x.name === name);
    if (!f) throw new FakeError({ errorClass: 'UNRESOLVED_COLUMN.WITH_SUGGESTION', sqlState: '42703', message: `A column, variable, or function parameter with name \`${name}\` cannot be resolved.` });
    return f;
  }

  private project(list: readonly SelectItem[], schema: readonly DeltaField[]): ResultColumn[] {
    return list.map((it) => {
      const f = this.column(schema, it.column);
      switch (it.kind) {
        case 'column':
          return { name: it.alias, type: f.type };
        case 'unix_micros':
        case 'unix_millis':
          if (!(f.type.kind === 'primitive' && f.type.name === 'timestamp')) {
            throw new FakeError({ errorClass: 'DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE', sqlState: '42K09', message: `${it.kind}(${it.column}) needs a TIMESTAMP` });
          }
          return { name: it.alias, type: long() };
        case 'cast_string':
          return { name: it.alias, type: string() };
        case 'map_entries':
          if (f.type.kind !== 'map') throw new FakeError({ errorClass: 'DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE', sqlState: '42K09', message: `map_entries(${it.column}) needs a MAP` });
          return {
            name: it.alias,
            type: {
              kind: 'array',
              containsNull: false,
              elementType: struct(field('key', f.type.keyType, { nullable: false }), field('value', f.type.valueType)),
            },
          };
      }
    });
  }

  private evaluate(list: readonly SelectItem[], schema: readonly DeltaField[], row: Row): DeltaValue[] {
    return list.map((it) => {
      const f = this.column(schema, it.column);
      const v = row[f.name] ?? null;
      if (v === null) return null;
      switch (it.kind) {
        case 'column':
          return v;
        case 'unix_micros':
          return v;
        case 'unix_millis': {
          const us = v as bigint;
          return us >= 0n ? us / 1000n : -((-us + 999n) / 1000n);
        }
        case 'cast_string':
          if (f.type.kind === 'primitive' && f.type.name === 'timestamp_ntz') return ntzText(v as bigint);
          return typeof v === 'string' ? v : String(v);
        case 'map_entries':
          return [...(v as Map<DeltaValue, DeltaValue>)].map(([key, value]) => ({ key, value }));
      }
    });
  }

  // ---------------------------------------------------------------- thrift

  /**
   * Files the statement's rows (CloudFetch) when the client can download results and there
   * are at least `minRows` of them; otherwise collects them for inline pages. Rows of a
   * streamed result are encoded file by file, so a large snapshot is never held as rows.
   */
  private async materialise(op: Omit<Operation, 'cursor'>, req: ThriftRequest): Promise<Omit<Operation, 'cursor'>> {
    const arrow = op.format === 'arrow' && !op.error;
    const inlineLz4 = arrow && req.canDecompressLZ4Result === true;
    const cf = arrow && req.canDownloadResult === true ? this.cloudFetch : undefined;
    if (!cf) {
      const rows = [...op.rows];
      if (op.batches) for await (const b of op.batches) rows.push(...b);
      return { ...op, rows, batches: undefined, lz4: inlineLz4 };
    }
    const lz4 = inlineLz4 || cf.lz4 === 'always';
    const files: ResultFile[] = [];
    let pending: DeltaValue[][] = [];
    let filed = 0;
    const fileOut = (rows: DeltaValue[][]): void => {
      const parts = [schemaMessage(op.columns)];
      for (let i = 0; i < rows.length; i += cf.rowsPerBatch) parts.push(batchMessage(op.columns, rows.slice(i, i + cf.rowsPerBatch)));
      const raw = Buffer.concat(parts);
      const bytes = lz4 ? lz4Frame().compressFrameSync(raw) : raw;
      const id = randomUUID();
      this.files.put(id, { bytes, rawBytes: raw.length });
      files.push({ id, startRow: filed, rowCount: rows.length, bytes: bytes.length });
      filed += rows.length;
    };
    const take = (rows: readonly DeltaValue[][]): void => {
      for (const r of rows) pending.push(r);
      // Below minRows nothing is filed yet: a small result stays inline.
      if (files.length === 0 && pending.length < cf.minRows) return;
      while (pending.length >= cf.rowsPerFile) {
        fileOut(pending.slice(0, cf.rowsPerFile));
        pending = pending.slice(cf.rowsPerFile);
      }
    };
    take(op.rows);
    if (op.batches) for await (const b of op.batches) take(b);
    if (files.length === 0 && pending.length < cf.minRows) return { ...op, rows: pending, batches: undefined, lz4: inlineLz4 };
    if (pending.length > 0) fileOut(pending);
    return { ...op, rows: [], batches: undefined, files, lz4 };
  }

  private cacheKey(sql: string, params: Record<string, string>, req: ThriftRequest): string {
    return JSON.stringify([sql, params, req.canDownloadResult === true, req.canDecompressLZ4Result === true]);
  }

  private register(op: Omit<Operation, 'cursor'>): TOpHandleT {
    const id = guid();
    this.operations.set(id.toString('hex'), { ...op, cursor: 0 });
    return new T.TOperationHandle({
      operationId: new T.THandleIdentifier({ guid: id, secret: randomBytes(16) }),
      operationType: T.TOperationType.EXECUTE_STATEMENT,
      hasResultSet: true,
    });
  }

  private opOf(req: ThriftRequest): Operation {
    const handle = req.operationHandle as { operationId: { guid: Buffer } };
    const op = this.operations.get(Buffer.from(handle.operationId.guid).toString('hex'));
    if (!op) throw new Error('Invalid OperationHandle');
    return op;
  }

  private statusResp(op: Operation): TOpStatusT {
    if (op.error) {
      return new T.TGetOperationStatusResp({
        status: success(),
        operationState: T.TOperationState.ERROR_STATE,
        sqlState: op.error.sqlState,
        errorMessage: `[${op.error.errorClass}] ${op.error.message} SQLSTATE: ${op.error.sqlState}`,
        displayMessage: `[${op.error.errorClass}] ${op.error.message} SQLSTATE: ${op.error.sqlState}`,
        hasResultSet: true,
      });
    }
    return new T.TGetOperationStatusResp({ status: success(), operationState: T.TOperationState.FINISHED_STATE, hasResultSet: true });
  }

  private metadataResp(op: Operation): TMetaT {
    const schema = new T.TTableSchema({
      columns: op.columns.map(
        (c, i) =>
          new T.TColumnDesc({
            columnName: c.name,
            position: i + 1,
            typeDesc: new T.TTypeDesc({ types: [new T.TTypeEntry({ primitiveEntry: new T.TPrimitiveTypeEntry({ type: ttypeId(c.type) }) })] }),
          }),
      ),
    });
    return new T.TGetResultSetMetadataResp({
      status: success(),
      schema,
      resultFormat: op.files ? T.TSparkRowSetType.URL_BASED_SET : op.format === 'arrow' ? T.TSparkRowSetType.ARROW_BASED_SET : T.TSparkRowSetType.COLUMN_BASED_SET,
      lz4Compressed: op.lz4 === true,
      ...(op.format === 'arrow' ? { arrowSchema: schemaMessage(op.columns) } : {}),
    });
  }

  /** The next links of a CloudFetch result, each presigned from now for `linkTtlMs`. */
  private linksResp(op: Operation & { files: ResultFile[] }): TFetchT {
    const cf = this.cloudFetch as CloudFetchOptions;
    const batch = op.files.slice(op.cursor, op.cursor + cf.linksPerFetch);
    op.cursor += batch.length;
    const expiresAt = Date.now() + cf.linkTtlMs;
    const resultLinks = batch.map(
      (f) =>
        new T.TSparkArrowResultLink({
          fileLink: this.files.link(f.id, expiresAt),
          expiryTime: new Int64(expiresAt),
          startRowOffset: new Int64(f.startRow),
          rowCount: new Int64(f.rowCount),
          bytesNum: new Int64(f.bytes),
          httpHeaders: {},
        }),
    );
    this.onLinks?.(resultLinks.length);
    return new T.TFetchResultsResp({
      status: success(),
      hasMoreRows: op.cursor < op.files.length,
      results: new T.TRowSet({ startRowOffset: new Int64(batch[0]?.startRow ?? 0), rows: [], resultLinks }),
    });
  }

  private fetchResp(op: Operation, maxRows: number): TFetchT {
    if (op.files) return this.linksResp(op as Operation & { files: ResultFile[] });
    const start = op.cursor;
    const page = op.rows.slice(start, start + Math.max(1, maxRows));
    op.cursor += page.length;
    let results: TRowSetT;
    if (op.format === 'arrow') {
      results = new T.TRowSet({
        startRowOffset: new Int64(start),
        rows: [],
        arrowBatches: page.length ? [new T.TSparkArrowBatch({ batch: op.lz4 ? lz4Frame().compressFrameSync(batchMessage(op.columns, page)) : batchMessage(op.columns, page), rowCount: new Int64(page.length) })] : [],
      });
    } else {
      const columns = op.columns.map((c, j) => {
        const vals = page.map((r) => r[j] ?? null);
        const nulls = Buffer.alloc(Math.ceil(vals.length / 8) || 1);
        vals.forEach((v, i) => {
          if (v === null) nulls[i >> 3] = (nulls[i >> 3] as number) | (1 << (i & 7));
        });
        if (c.type.kind === 'primitive' && c.type.name === 'integer') return new T.TColumn({ i32Val: new T.TI32Column({ values: vals.map((v) => (v === null ? 0 : (v as number))), nulls }) });
        return new T.TColumn({ stringVal: new T.TStringColumn({ values: vals.map((v) => (v === null ? '' : String(v))), nulls }) });
      });
      results = new T.TRowSet({ startRowOffset: new Int64(start), rows: [], columns });
    }
    return new T.TFetchResultsResp({ status: success(), hasMoreRows: op.cursor < op.rows.length, results });
  }

  private directResults(handle: TOpHandleT, req: ThriftRequest): TDirectT {
    const op = this.opOf({ operationHandle: handle });
    const max = req.getDirectResults ? Number((req.getDirectResults as { maxRows: { toNumber(): number } }).maxRows.toNumber()) : 0;
    return new T.TSparkDirectResults({
      operationStatus: this.statusResp(op),
      ...(op.error ? {} : { resultSetMetadata: this.metadataResp(op), ...(max > 0 ? { resultSet: this.fetchResp(op, max) } : {}) }),
    });
  }

  private async metadataOp(req: ThriftRequest, build: () => Promise<{ columns: ResultColumn[]; rows: DeltaValue[][] }>): Promise<object> {
    const { columns, rows } = await build();
    const handle = this.register({ format: 'columnar', columns, rows });
    return { status: success(), operationHandle: handle, directResults: this.directResults(handle, req) };
  }

  private matches(pattern: unknown, name: string): boolean {
    if (pattern === undefined || pattern === null || pattern === '' || pattern === '%' || pattern === '*') return true;
    return String(pattern).toLowerCase() === name.toLowerCase();
  }

  /** Catalog, schema, table and folder of every table the request's name patterns match, in catalog order. */
  private *tablesMatching(req: { catalogName?: unknown; schemaName?: unknown; tableName?: unknown }): Generator<{ c: string; s: string; t: string; p: string | WarehouseTable }> {
    for (const [c, schemas] of Object.entries(this.catalogs)) {
      if (!this.matches(req.catalogName, c)) continue;
      for (const [s, tables] of Object.entries(schemas)) {
        if (!this.matches(req.schemaName, s)) continue;
        for (const [t, p] of Object.entries(tables)) if (this.matches(req.tableName, t)) yield { c, s, t, p };
      }
    }
  }

  private handler(): Record<string, (req: ThriftRequest) => unknown> {
    const sessionHandle = (): TSessionHandleT => new T.TSessionHandle({ sessionId: new T.THandleIdentifier({ guid: guid(), secret: randomBytes(16) }) });
    return {
      OpenSession: (_req) => {
        this.sessionsOpened++;
        return new T.TOpenSessionResp({ status: success(), serverProtocolVersion: T.TProtocolVersion.SPARK_CLI_SERVICE_PROTOCOL_V8, sessionHandle: sessionHandle() });
      },
      CloseSession: (_req) => new T.TCloseSessionResp({ status: success() }),
      GetInfo: (_req) => new T.TGetInfoResp({ status: success(), infoValue: new T.TGetInfoValue({ stringValue: 'Fake Databricks SQL' }) }),
      ExecuteStatement: async (req) => {
        const sql = String(req.statement);
        const params: Record<string, string> = {};
        for (const p of (req.parameters as Array<{ name?: string; value?: { stringValue?: string } }> | undefined) ?? []) {
          if (p.name) params[p.name] = p.value?.stringValue ?? '';
        }
        this.statements.push(sql);
        this.parameters.push(params);
        const key = this.resultCache ? this.cacheKey(sql, params, req) : '';
        const hit = this.resultCache?.get(key);
        let op: Omit<Operation, 'cursor'>;
        if (hit) {
          this.cacheHits++;
          op = { format: 'arrow', columns: hit.columns, rows: [], files: hit.files, lz4: hit.lz4, cached: true };
        } else {
          try {
            op = await this.materialise(await this.run(sql, params), req);
          } catch (e) {
            if (!(e instanceof FakeError)) throw e;
            op = { format: 'arrow', columns: [], rows: [], error: e.spec };
          }
          if (this.resultCache && op.files) {
            this.resultCache.set(key, { columns: op.columns, files: op.files, lz4: op.lz4, rows: op.files.reduce((n, f) => n + f.rowCount, 0) });
            op = { ...op, cached: true };
          }
        }
        if (!op.error) {
          const files = op.files ?? [];
          this.results.push({
            statement: sql, cloudFetch: op.files !== undefined, lz4: op.lz4 === true, files: files.length,
            rows: op.files ? files.reduce((n, f) => n + f.rowCount, 0) : op.rows.length, bytes: files.reduce((n, f) => n + f.bytes, 0),
          });
        }
        const handle = this.register(op);
        return new T.TExecuteStatementResp({ status: success(), operationHandle: handle, directResults: this.directResults(handle, req) });
      },
      GetOperationStatus: (req) => this.statusResp(this.opOf(req)),
      GetResultSetMetadata: (req) => this.metadataResp(this.opOf(req)),
      FetchResults: (req) => this.fetchResp(this.opOf(req), Number((req.maxRows as { toNumber(): number }).toNumber())),
      CloseOperation: (req) => {
        const handle = req.operationHandle as { operationId: { guid: Buffer } };
        const id = Buffer.from(handle.operationId.guid).toString('hex');
        const op = this.operations.get(id);
        if (op?.files && !op.cached) for (const f of op.files) this.files.delete(f.id);
        this.operations.delete(id);
        return new T.TCloseOperationResp({ status: success() });
      },
      CancelOperation: (_req) => new T.TCancelOperationResp({ status: success() }),
      GetCatalogs: (req) => this.metadataOp(req, async () => ({ columns: [{ name: 'TABLE_CAT', type: string() }], rows: Object.keys(this.catalogs).map((c) => [c]) })),
      GetSchemas: (req) =>
        this.metadataOp(req, async () => {
          const rows: DeltaValue[][] = [];
          for (const [c, schemas] of Object.entries(this.catalogs)) {
            if (!this.matches(req.catalogName, c)) continue;
            for (const s of Object.keys(schemas)) if (this.matches(req.schemaName, s)) rows.push([s, c]);
          }
          return { columns: [{ name: 'TABLE_SCHEM', type: string() }, { name: 'TABLE_CATALOG', type: string() }], rows };
        }),
      GetTables: (req) =>
        this.metadataOp(req, async () => {
          const rows: DeltaValue[][] = [...this.tablesMatching(req)].map(({ c, s, t }) => [c, s, t, 'TABLE', null]);
          return { columns: ['TABLE_CAT', 'TABLE_SCHEM', 'TABLE_NAME', 'TABLE_TYPE', 'REMARKS'].map((name) => ({ name, type: string() })), rows };
        }),
      GetColumns: (req) =>
        this.metadataOp(req, async () => {
          const rows: DeltaValue[][] = [];
          for (const { c, s, t, p } of this.tablesMatching(req)) {
            const schema = typeof p === 'string' ? (await (await DeltaTable.open(p)).snapshot()).schema : p.schema();
            schema.forEach((f, i) => {
              if (!this.matches(req.columnName, f.name)) return;
              const comment = typeof f.metadata.comment === 'string' ? f.metadata.comment : null;
              rows.push([c, s, t, f.name, sqlTypeName(f.type), f.nullable ? 1 : 0, comment, i + 1]);
            });
          }
          return {
            columns: [
              { name: 'TABLE_CAT', type: string() },
              { name: 'TABLE_SCHEM', type: string() },
              { name: 'TABLE_NAME', type: string() },
              { name: 'COLUMN_NAME', type: string() },
              { name: 'TYPE_NAME', type: string() },
              { name: 'NULLABLE', type: integer() },
              { name: 'REMARKS', type: string() },
              { name: 'ORDINAL_POSITION', type: integer() },
            ],
            rows,
          };
        }),
    };
  }
}

function items(list: readonly SelectItem[], alias: string): number {
  return list.findIndex((it) => it.alias === alias);
}
