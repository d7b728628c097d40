import type { ClientBase } from 'pg';

/**
 * The engine's limits travel with each transaction, not with the session: behind a
 * transaction pooler (PgBouncer in transaction mode, Neon's `-pooler` endpoints) every
 * transaction may run on another server connection, and a session-level SET would stay on
 * that connection for the next client of the pool. createPool attaches the statement that
 * opens a transaction with the pool's limits (`SET LOCAL`, undone at COMMIT or ROLLBACK) to
 * each client it opens; clients of other pools (the sandbox) open a plain BEGIN.
 */
const BEGIN_SQL = Symbol.for('delta-neon-sync.beginSql');

/** Makes `begin` (BEGIN plus SET LOCAL statements) the way transactions on `client` start. */
export function setBeginSql(client: object, begin: string): void {
  (client as Record<symbol, unknown>)[BEGIN_SQL] = begin;
}

/** The statement that opens a transaction on `client`, with its pool's limits. */
export function beginSql(client: object): string {
  const s = (client as Record<symbol, unknown>)[BEGIN_SQL];
  return typeof s === 'string' ? s : 'BEGIN';
}

/** Opens a transaction on `client` with its pool's limits set for that transaction only. */
export async function beginTransaction(client: ClientBase): Promise<void> {
  await client.query(beginSql(client));
}

/**
 * Runs `fn` in a transaction of its own (with the pool's limits), for a statement that
 * would otherwise run on its own outside one, under no limit of ours (a snapshot COPY, an
 * index build). Commits what `fn` did; rolls back and rethrows when it fails.
 */
export async function inTransaction<T>(client: ClientBase, fn: () => Promise<T>): Promise<T> {
  await beginTransaction(client);
  try {
    const r = await fn();
    await client.query('COMMIT');
    return r;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
