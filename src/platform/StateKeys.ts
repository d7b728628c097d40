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
}

export type GlobalStateKey = keyof GlobalStateShape;

/** SecretStorage key of a connection string; connection strings live nowhere else. */
export function connectionSecretKey(name: string): string {
  return `deltaSync.connection/${name}`;
}
