import * as https from 'node:https';
import { Config, WorkspaceClient } from '@databricks/sdk-experimental';
import type { sql } from '@databricks/sdk-experimental';
import type { DatabricksConnectionConfig } from '../ports/databricksConnection';
import { normalizeHost } from './DatabricksClient';

/** How long one state request may take, retries included (the watch asks again at its next poll). */
const STATE_TIMEOUT_SECONDS = 10;

/**
 * The SQL warehouse id in an HTTP path: `/sql/1.0/warehouses/<id>` (or the older
 * `/sql/1.0/endpoints/<id>`), a query string allowed. Undefined for a cluster's path
 * (`/sql/protocolv1/o/...`): clusters have no warehouse state to read.
 */
export function warehouseIdOf(httpPath: string): string | undefined {
  const m = /^\/?sql\/1\.0\/(?:warehouses|endpoints)\/([A-Za-z0-9]+)\/?(?:\?.*)?$/.exec(httpPath.trim());
  return m?.[1];
}

export interface WarehouseStateAnswer {
  /** RUNNING, STARTING, STOPPING, STOPPED, DELETING, DELETED (the SQL Warehouses API's `state`). */
  state: sql.State | undefined;
  name?: string;
  /** Minutes without a RUNNING query before the warehouse stops itself; 0: never. */
  autoStopMins?: number;
}

/**
 * The state of a connection's SQL warehouse, read with the SQL Warehouses REST API
 * (`GET /api/2.0/sql/warehouses/{id}`, the Databricks SDK's `warehouses.get`) with the
 * connection's host and credentials. That call goes to the workspace's control plane: it
 * runs no statement, so it neither wakes a stopped warehouse nor counts as activity that
 * keeps a running one from stopping itself. @databricks/sql has no such call (it speaks
 * only the warehouse's Thrift protocol), hence the SDK.
 */
export class WarehouseState {
  private constructor(
    readonly warehouseId: string,
    private readonly client: WorkspaceClient,
    private readonly agent: https.Agent,
  ) {}

  /** Undefined when the HTTP path names no SQL warehouse (a cluster). */
  static for(connection: DatabricksConnectionConfig): WarehouseState | undefined {
    const id = warehouseIdOf(connection.httpPath);
    if (!id) return undefined;
    const { host, port: hostPort } = normalizeHost(connection.host);
    const port = connection.port ?? hostPort;
    const url = `https://${host}${port !== undefined && port !== 443 ? `:${port}` : ''}`;
    const auth = connection.auth.type === 'pat'
      ? { authType: 'pat' as const, token: connection.auth.token }
      : { authType: 'oauth-m2m' as const, clientId: connection.auth.clientId, clientSecret: connection.auth.clientSecret };
    // env: {} so stray DATABRICKS_* variables cannot mix a second sign-in into this one.
    const config = new Config({ host: url, ...auth, env: {}, retryTimeoutSeconds: STATE_TIMEOUT_SECONDS, httpTimeoutSeconds: STATE_TIMEOUT_SECONDS });
    // The SDK's own agent does not verify certificates unless skipVerify is false; this one
    // does, trusting the connection's extra CA as the driver does.
    const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: true, ...(connection.customCaCert !== undefined ? { ca: connection.customCaCert } : {}) });
    return new WarehouseState(id, new WorkspaceClient(config, { agent }), agent);
  }

  async read(): Promise<WarehouseStateAnswer> {
    const w = await this.client.warehouses.get({ id: this.warehouseId });
    return { state: w.state, ...(w.name !== undefined ? { name: w.name } : {}), ...(w.auto_stop_mins !== undefined ? { autoStopMins: w.auto_stop_mins } : {}) };
  }

  /** Closes the kept-alive connections to the workspace. */
  close(): void {
    this.agent.destroy();
  }
}
