/**
 * The one registry of keys the extension keeps in `globalState` / `workspaceState`,
 * with their value types. Adding state means adding a key here, nowhere else.
 */
export interface ConnectionInfo {
  /** Unique, user-chosen name; also the SecretStorage key suffix. */
  name: string;
  /** Display only: host/database without credentials, e.g. "ep-x.neon.tech/app". */
  summary: string;
  addedAt: number;
}

export interface GlobalStateShape {
  'deltaSync.connections': ConnectionInfo[];
  'deltaSync.databricksConnections': DatabricksConnectionInfo[];
}

export type GlobalStateKey = keyof GlobalStateShape;

/** SecretStorage key of a connection string; connection strings live nowhere else. */
export function connectionSecretKey(name: string): string {
  return `deltaSync.connection/${name}`;
}

/**
 * A saved Databricks connection: everything but the credentials, which live in
 * SecretStorage under `databricksSecretKey(name)` only.
 */
export interface DatabricksConnectionInfo {
  /** Unique, user-chosen name; a mapping's `source.connection`. */
  name: string;
  /** Workspace host as entered (`https://` and a port are accepted). */
  host: string;
  /** The SQL warehouse's HTTP path, `/sql/1.0/warehouses/<id>`. */
  httpPath: string;
  /** Display only; the secret holds the credentials themselves. */
  authType: 'pat' | 'oauth-m2m';
  addedAt: number;
}

/** SecretStorage key of a Databricks connection's credentials (JSON of its `auth`). */
export function databricksSecretKey(name: string): string {
  return `deltaSync.databricks/${name}`;
}

/** SecretStorage key of the Neon API key (one Neon account); the key lives nowhere else. */
export const NEON_API_KEY_SECRET = 'deltaSync.neon/apiKey';
