/**
 * A Databricks SQL warehouse connection as plain data: what DatabricksClient connects with,
 * and what a worker thread receives (structured clone) to open the same source there.
 * Secrets live here only in memory.
 */
export interface DatabricksConnectionConfig {
  /** Workspace host name (`adb-123.7.azuredatabricks.net`); `https://` and a trailing `/` are accepted. */
  host: string;
  /** The warehouse's HTTP path, `/sql/1.0/warehouses/<id>`. */
  httpPath: string;
  auth: { type: 'pat'; token: string } | { type: 'oauth-m2m'; clientId: string; clientSecret: string };
  /** Default 443 (or the port in `host`). */
  port?: number;
  /** Extra trusted CA (PEM), e.g. a TLS-inspecting proxy or a test warehouse. */
  customCaCert?: string | Buffer;
  /** Driver retries of idempotent calls (total attempts, default 5). */
  retryMaxAttempts?: number;
  /** Socket timeout in ms (default: the driver's 15 minutes). */
  socketTimeoutMs?: number;
  /**
   * Large results as files downloaded from the workspace's cloud storage (CloudFetch, the
   * driver's default). Off: every result comes inline through the warehouse, LZ4-compressed
   * when lz4-napi loads (for networks that cannot reach the cloud storage).
   */
  useCloudFetch?: boolean;
}
