import pg from 'pg';
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

/**
 * Statements that must not be wrapped in a transaction of ours: transaction and session
 * control (the caller manages those), and the few that cannot run inside a transaction block.
 */
const PASS_THROUGH = /^\s*(BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE|SET|RESET|DISCARD|LISTEN|UNLISTEN|VACUUM|ALTER\s+SYSTEM|(CREATE|DROP)\s+DATABASE|(CREATE|DROP)\s+INDEX\s+CONCURRENTLY|REINDEX)\b/i;

const prepareValue = (pg as unknown as { utils: { prepareValue: (v: unknown) => unknown } }).utils.prepareValue;

type QueryFn = (...args: unknown[]) => unknown;
interface RawResult {
  command?: string;
}

/**
 * Makes every statement that `client` would run outside a transaction run in one of its
 * own, opened with the pool's limits (beginSql: SET LOCAL statement_timeout, lock_timeout,
 * ...) and committed, in the SAME round trip: `BEGIN; SET LOCAL ...; <statement>; COMMIT`
 * as one simple-protocol query, its parameters sent as quoted literals (the server types
 * them as it types node-postgres's untyped parameters). Without it a catalog read, a lease
 * statement or a run-log write outside the engine's transactions had no limit at all: a
 * lock held by another session (an admin's ALTER TABLE, a stuck transaction) made it wait
 * for ever. Inside a transaction (the caller's BEGIN) statements pass as they are; so do
 * transaction control, stream queries (COPY) and anything with a callback or a name.
 * Installed once per connection by createPool: the one place, whatever the call site.
 */
export function limitStatementsOutsideTransactions(client: ClientBase): void {
  const begin = beginSql(client);
  if (begin === 'BEGIN') return;
  const beginCount = begin.split(';').length;
  const raw = client.query.bind(client) as QueryFn;
  const idle = (): boolean => {
    const c = client as unknown as { getTransactionStatus?: () => string | null; readyForQuery?: boolean; _queryQueue?: unknown[] };
    // Only when nothing is in flight: a queued statement would see a stale status.
    return c.getTransactionStatus?.() === 'I' && c.readyForQuery === true && (c._queryQueue?.length ?? 0) === 0;
  };
  (client as unknown as { query: QueryFn }).query = (...args: unknown[]): unknown => {
    const [a, b, cb] = args;
    let text: string | undefined;
    let values: unknown[] | undefined;
    if (typeof a === 'string' && (b === undefined || Array.isArray(b)) && cb === undefined) {
      text = a;
      values = b as unknown[] | undefined;
    } else if (typeof a === 'object' && a !== null && b === undefined && Object.keys(a).every((k) => k === 'text' || k === 'values')) {
      text = (a as { text?: unknown }).text as string | undefined;
      values = (a as { values?: unknown[] }).values;
    }
    if (typeof text !== 'string' || PASS_THROUGH.test(text) || !idle()) return raw(...args);
    const inlined = values && values.length > 0 ? inlineParameters(text, values) : text;
    if (inlined === undefined) return raw(...args);
    return (async () => {
      let results: unknown;
      try {
        results = await raw(`${begin};\n${inlined.replace(/;\s*$/, '')};\nCOMMIT`);
      } catch (e) {
        // The statement failed inside our transaction block: the rest of the query (COMMIT)
        // was skipped and the block is aborted until it is rolled back. (Always: the
        // failure may reach us before the server's ready-for-query with its status.)
        await (raw('ROLLBACK') as Promise<unknown>).catch(() => undefined);
        throw e;
      }
      const all = (Array.isArray(results) ? results : [results]) as RawResult[];
      const mine = all.slice(beginCount, -1);
      return mine.length === 1 ? mine[0] : mine;
    })();
  };
}

/**
 * `text` with its $n parameters replaced by quoted literals (pg's own value conversion,
 * then escapeLiteral), or undefined when a value cannot be written as text (binary).
 */
export function inlineParameters(text: string, values: readonly unknown[]): string | undefined {
  const lit: string[] = [];
  for (const v of values) {
    const p = prepareValue(v);
    if (p === null) lit.push('NULL');
    else if (typeof p === 'string') lit.push(pg.escapeLiteral(p));
    else return undefined;
  }
  let bad = false;
  const out = text.replace(/\$(\d+)/g, (m, n: string) => {
    const v = lit[Number(n) - 1];
    if (v === undefined) bad = true;
    return v ?? m;
  });
  return bad ? undefined : out;
}
