import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { Pool } from 'pg';
import { CUSTOMER_PROFILE_COLUMNS, customerAt, customerId, generateCustomers, upgradedCustomer } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { SyncError } from '../../src/sync/errors';
import type { Mapping, MappingInput } from '../../src/sync/mapping/mappingSchema';
import type { SyncEvent } from '../../src/sync/ports/events';
import { buildMapping } from '../builders/mappings';
import type { MappingOverrides } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, pollUntil, tempDir } from '../helpers/syncHarness';
import type { OpenedRunner } from '../helpers/syncHarness';
import { assertTargetEquals, snapshotText, targetText } from '../helpers/targetEquality';
import type { ComparedColumn, TextRows } from '../helpers/targetEquality';

/**
 * Versions with more change rows than a part (batch.maxRows 20 here) are applied in parts
 * inside one transaction (planSteps + ApplyStream), read on a worker thread by default or
 * on the calling thread with DELTA_NEON_SYNC_READ_THREAD=main. Every expectation comes from
 * the Delta snapshots (targetEquality.ts), from how the fixture versions were written here,
 * or from the server itself (statement-level triggers, sequences), never from the engine.
 */

const KEY = ['customer_id'];
const COLUMNS: ComparedColumn[] = CUSTOMER_PROFILE_COLUMNS.map((c) => ({ source: c.name, target: c.name, type: c.type }));
/** Keys per part: small, so a version of ~300 change rows is applied in many parts. */
const MAX_ROWS = 20;
const THREADS = ['worker', 'main'] as const;
type Thread = (typeof THREADS)[number];

function range(a: number, b: number, keep: (i: number) => boolean = () => true): number[] {
  const out: number[] = [];
  for (let i = a; i <= b; i++) if (keep(i)) out.push(i);
  return out;
}

/** What v2 (the big MERGE) does, by customer index. */
const V2 = {
  deleted: range(1, 300, (i) => i % 10 === 5),
  upgraded: range(1, 200, (i) => i % 2 === 0),
  /** Matched by the MERGE and rewritten with the values they already have. */
  sameValues: range(1, 200, (i) => i % 10 === 3),
  inserted: range(301, 320),
};
/** v4 swaps the keys of these pairs in one UPDATE: each key is removed (preimage) and upserted (postimage) in one commit. */
const SWAPS: Array<[number, number]> = range(11, 40, (k) => k % 10 !== 5).map((k) => [k, k + 150]);
/** v5 deletes these in one commit (more than a part: a version of removals only). */
const V5_DELETED = range(201, 240, (i) => i % 10 !== 5);

interface PartsTable {
  path: string;
  latest: number;
}

/**
 * v0 create (CDF on), v1 customers 1..300, v2 one MERGE touching 170 keys (100 updates,
 * 20 rewrites with equal values, 30 deletes, 20 inserts), v3 a small MERGE (3 updates,
 * delete of a key inserted at v2), v4 key swaps (delete and re-insert of the same keys in
 * one commit), v5 36 deletes, v6 50 inserts.
 */
async function createPartsTable(dir: string): Promise<PartsTable> {
  const w = await DeltaTableWriter.create(dir, {
    columns: [...CUSTOMER_PROFILE_COLUMNS],
    configuration: { 'delta.enableChangeDataFeed': 'true' },
    name: 'parts',
  });
  const layout = { rowsPerFile: 100 };
  assert.equal(await w.append(generateCustomers(300), layout), 1);
  const v2 = await w.merge('customer_id', [
    ...V2.upgraded.map((i) => upgradedCustomer(customerAt(i))),
    ...V2.sameValues.map((i) => customerAt(i)),
    ...V2.inserted.map((i) => customerAt(i)),
  ], { ...layout, deleteKeys: V2.deleted.map(customerId) });
  assert.equal(v2, 2);
  await w.merge('customer_id', [1, 3, 7].map((i) => upgradedCustomer(upgradedCustomer(customerAt(i)))), { ...layout, deleteKeys: [customerId(301)] });
  const partner = new Map<string, string>();
  for (const [a, b] of SWAPS) {
    partner.set(customerId(a), customerId(b));
    partner.set(customerId(b), customerId(a));
  }
  await w.updateWhere((row) => partner.has(row.customer_id as string), (row) => ({ ...row, customer_id: partner.get(row.customer_id as string) as string }), layout);
  await w.delete('customer_id', V5_DELETED.map(customerId), layout);
  const latest = await w.append(generateCustomers(50, 42, 321), layout);
  assert.equal(latest, 6);
  return { path: w.path, latest };
}

/** Runs `fn` with DELTA_NEON_SYNC_READ_THREAD set for `thread`, restoring the variable after. */
async function onThread<T>(thread: Thread, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.DELTA_NEON_SYNC_READ_THREAD;
  process.env.DELTA_NEON_SYNC_READ_THREAD = thread; // 'worker' even for small reads
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
    else process.env.DELTA_NEON_SYNC_READ_THREAD = saved;
  }
}

/** Worker threads this process started and those that exited (process 'worker' event). */
const workers = { started: 0, exited: 0 };
function onWorker(w: Worker): void {
  workers.started++;
  w.once('exit', () => workers.exited++);
}

/** Worker threads started while `fn` ran. */
async function countWorkers<T>(fn: () => Promise<T>): Promise<{ value: T; started: number }> {
  const before = workers.started;
  const value = await fn();
  return { value, started: workers.started - before };
}

function mapping(name: string, tablePath: string, table: string, extra: MappingOverrides = {}): Mapping {
  return buildMapping({ name, source: tablePath, target: table, key: KEY, batch: { maxRows: MAX_ROWS }, ...extra });
}

/**
 * Statement-level triggers logging, per DML statement on `table` that changed rows, its
 * transaction id, kind and row count (transition tables): how the server saw the parts.
 */
async function logStatements(pool: Pool, table: string): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS public.dml_log (seq bigserial PRIMARY KEY, tbl text NOT NULL, tx bigint NOT NULL, op text NOT NULL, n bigint NOT NULL)`);
  await pool.query(`CREATE OR REPLACE FUNCTION public.log_dml() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO public.dml_log (tbl, tx, op, n) SELECT TG_TABLE_NAME, txid_current(), TG_OP, count(*) FROM nt; RETURN NULL; END $$`);
  for (const [op, ref] of [['INSERT', 'NEW'], ['UPDATE', 'NEW'], ['DELETE', 'OLD']] as const) {
    await pool.query(`CREATE TRIGGER "log_${op.toLowerCase()}" AFTER ${op} ON public."${table}" REFERENCING ${ref} TABLE AS nt FOR EACH STATEMENT EXECUTE FUNCTION public.log_dml()`);
  }
}

interface LoggedStatement {
  seq: number;
  tx: string;
  op: string;
  n: number;
}

/** Statements on `table` logged after `afterSeq` that changed at least one row. */
async function statementsSince(pool: Pool, table: string, afterSeq: number): Promise<LoggedStatement[]> {
  const r = await pool.query<{ seq: string; tx: string; op: string; n: string }>(`SELECT seq::text, tx::text, op, n::text FROM public.dml_log WHERE tbl = $1 AND seq > $2 AND n > 0 ORDER BY seq`, [table, afterSeq]);
  return r.rows.map((x) => ({ seq: Number(x.seq), tx: x.tx, op: x.op, n: Number(x.n) }));
}

async function lastSeq(pool: Pool): Promise<number> {
  const r = await pool.query<{ s: string | null }>(`SELECT max(seq)::text AS s FROM public.dml_log`);
  return Number(r.rows[0]?.s ?? 0);
}

async function checkpointRow(pool: Pool, pipeline: string): Promise<string | undefined> {
  const r = await pool.query<{ j: string }>(`SELECT row_to_json(c)::text AS j FROM delta_neon_sync.checkpoints c WHERE pipeline = $1`, [pipeline]);
  return r.rows[0]?.j;
}

/** Target rows changed by going from snapshot `a` to snapshot `b` (inserted, updated, deleted keys). */
function snapshotDiff(a: TextRows, b: TextRows): { inserted: string[]; updated: string[]; deleted: string[]; same: string[] } {
  const out = { inserted: [] as string[], updated: [] as string[], deleted: [] as string[], same: [] as string[] };
  for (const [k, row] of b) {
    const old = a.get(k);
    if (!old) out.inserted.push(k);
    else if (COLUMNS.some((c) => old[c.target] !== row[c.target])) out.updated.push(k);
    else out.same.push(k);
  }
  for (const k of a.keys()) if (!b.has(k)) out.deleted.push(k);
  return out;
}

/** Commit time (ms) of `version`, read from its commit file: inCommitTimestamp, else commitInfo.timestamp. */
async function commitMillis(tablePath: string, version: number): Promise<number> {
  const text = await fs.readFile(path.join(tablePath, '_delta_log', `${String(version).padStart(20, '0')}.json`), 'utf8');
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const ci = (JSON.parse(line) as { commitInfo?: { timestamp?: number; inCommitTimestamp?: number } }).commitInfo;
    if (ci) return ci.inCommitTimestamp ?? (ci.timestamp as number);
  }
  throw new Error(`no commitInfo in version ${version}`);
}

describe('sync of large versions in parts, on a worker thread or the calling thread (real server)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('sync_parts');
  let dir: string;
  /** A CDF table under `dir` at v1: customers 1..100 in files of 50. */
  async function customersWithCdf(name: string): Promise<DeltaTableWriter> {
    const w = await DeltaTableWriter.create(path.join(dir, name), { columns: [...CUSTOMER_PROFILE_COLUMNS], configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(generateCustomers(100), { rowsPerFile: 50 });
    return w;
  }
  let table: PartsTable;
  const snaps: TextRows[] = [];

  before(async function () {
    this.timeout(120_000);
    process.on('worker', onWorker);
    dir = await tempDir('dns-parts-');
    table = await createPartsTable(path.join(dir, 'parts'));
    for (let v = 0; v <= table.latest; v++) snaps.push((await snapshotText(table.path, v, { key: KEY })).rows);
  });
  after(() => {
    process.removeListener('worker', onWorker);
  });

  it('the fixture has the intended versions: v2 changes 170 keys, v4 swaps keys, v5 deletes 36 and v6 inserts 50 in one commit each', () => {
    // Guards the premises of the tests below (versions bigger than a part), from the snapshots.
    const d2 = snapshotDiff(snaps[1] as TextRows, snaps[2] as TextRows);
    assert.deepEqual([d2.inserted.length, d2.updated.length, d2.deleted.length], [V2.inserted.length, V2.upgraded.length, V2.deleted.length]);
    const d4 = snapshotDiff(snaps[3] as TextRows, snaps[4] as TextRows);
    assert.deepEqual([d4.inserted.length, d4.updated.length, d4.deleted.length], [0, SWAPS.length * 2, 0]);
    const d5 = snapshotDiff(snaps[4] as TextRows, snaps[5] as TextRows);
    assert.deepEqual([d5.inserted.length, d5.deleted.length], [0, V5_DELETED.length]);
    const d6 = snapshotDiff(snaps[5] as TextRows, snaps[6] as TextRows);
    assert.deepEqual([d6.inserted.length, d6.deleted.length], [50, 0]);
    for (const n of [d2.inserted.length + d2.updated.length + d2.deleted.length, d4.updated.length, d5.deleted.length, d6.inserted.length]) assert.ok(n > MAX_ROWS);
  });

  it('with DELTA_NEON_SYNC_READ_THREAD unset, a small version (under 1 MiB of change files, a continuous sync\'s usual commit) is read on the calling thread, a big one on a worker', async () => {
    const name = 'parts_auto_thread';
    const w = await customersWithCdf(name);
    const r = await openRunner(mapping(name.replace(/_/g, '-'), w.path, name), db().url);
    const saved = process.env.DELTA_NEON_SYNC_READ_THREAD;
    delete process.env.DELTA_NEON_SYNC_READ_THREAD;
    try {
      await r.runner.run({ mode: 'initial' });
      await w.update('customer_id', [upgradedCustomer(customerAt(3))], { rowsPerFile: 50 });
      const small = await countWorkers(() => r.runner.run({ mode: 'incremental' }));
      assert.equal(small.value.updated, 1);
      assert.equal(small.started, 0, 'one small commit: no worker thread');
      await assertTargetEquals(db().url, { schema: 'public', name }, w.path, w.version, { key: KEY });
      // Over 1 MiB of change files: 40,000 new customers (about 1.3 MiB of parquet).
      await w.append(generateCustomers(40_000, 7, 1_000), { rowsPerFile: 40_000 });
      const big = await countWorkers(() => r.runner.run({ mode: 'incremental' }));
      assert.equal(big.value.inserted, 40_000);
      assert.equal(big.started, 1, 'a big version: read on a worker thread');
      await assertTargetEquals(db().url, { schema: 'public', name }, w.path, w.version, { key: KEY });
    } finally {
      if (saved !== undefined) process.env.DELTA_NEON_SYNC_READ_THREAD = saved;
      await r.close();
    }
  });

  for (const thread of THREADS) {
    describe(`read on the ${thread} thread`, () => {
      it('initial load at v1, then one version per sync: after each the target equals the snapshot, verify() agrees, and a big version is one transaction of several statements', async () => {
        const name = `parts_step_${thread}`;
        const m = mapping(name.replace(/_/g, '-'), table.path, name);
        const r = await openRunner(m, db().url);
        try {
          const init = await onThread(thread, () => countWorkers(() => r.runner.run({ mode: 'initial', toVersion: 1 })));
          assert.equal(init.started, thread === 'worker' ? 1 : 0, 'the snapshot is read on a worker thread unless told not to');
          await assertTargetEquals(db().url, { schema: 'public', name }, table.path, 1, { key: KEY });
          await logStatements(r.pool, name);
          for (let v = 2; v <= table.latest; v++) {
            const seq = await lastSeq(r.pool);
            const res = await onThread(thread, () => countWorkers(() => r.runner.run({ mode: 'incremental', toVersion: v })));
            assert.equal(res.started, thread === 'worker' ? 1 : 0);
            assert.equal(res.value.toVersion, v);
            assert.equal(res.value.batches, 1, `version ${v} is one transaction`);
            await assertTargetEquals(db().url, { schema: 'public', name }, table.path, v, { key: KEY });
            const check = await r.runner.verify();
            assert.equal(check.version, v);
            assert.equal(check.equal, true, `verify() at version ${v}: ${JSON.stringify(check)}`);
            const diff = snapshotDiff(snaps[v - 1] as TextRows, snaps[v] as TextRows);
            const changed = diff.inserted.length + diff.updated.length + diff.deleted.length;
            const stmts = await statementsSince(r.pool, name, seq);
            assert.equal(new Set(stmts.map((s) => s.tx)).size, 1, `version ${v}: every statement in one transaction: ${JSON.stringify(stmts)}`);
            assert.equal(stmts.reduce((n, s) => n + s.n, 0), changed, `version ${v}: rows the server changed`);
            if (changed > MAX_ROWS * 2) {
              assert.ok(stmts.length > 1, `version ${v} (${changed} rows changed) was applied in parts: ${JSON.stringify(stmts)}`);
              assert.ok(Math.max(...stmts.map((s) => s.n)) < changed, `version ${v}: no statement carried the whole version`);
            }
          }
        } finally {
          await r.close();
        }
      });

      it('initial load at v1, then every later version in one sync: equal at the end, verify() agrees', async () => {
        const name = `parts_bulk_${thread}`;
        const m = mapping(name.replace(/_/g, '-'), table.path, name);
        const r = await openRunner(m, db().url);
        try {
          await onThread(thread, () => r.runner.run({ mode: 'initial', toVersion: 1 }));
          const res = await onThread(thread, () => countWorkers(() => r.runner.run({})));
          assert.equal(res.started, thread === 'worker' ? 1 : 0);
          assert.equal(res.value.mode, 'incremental');
          assert.equal(res.value.fromVersion, 2);
          assert.equal(res.value.toVersion, table.latest);
          const n = await assertTargetEquals(db().url, { schema: 'public', name }, table.path, table.latest, { key: KEY });
          const check = await r.runner.verify();
          assert.equal(check.equal, true, JSON.stringify(check));
          assert.equal(check.targetRows, n);
          // The range is several transactions (each big version ends one), so the counts are the
          // transactions' sums, not the range's net effect; but inserts minus deletes is the row count change.
          assert.equal(res.value.inserted - res.value.deleted, (snaps[table.latest] as TextRows).size - (snaps[1] as TextRows).size);
          assert.ok(res.value.batches > 1, `several transactions: ${res.value.batches}`);
        } finally {
          await r.close();
        }
      });

      it('the preview of the big version has the totals the parted sync reports, which are what the snapshots say; a second sync changes nothing', async () => {
        const name = `parts_counts_${thread}`;
        const m = mapping(name.replace(/_/g, '-'), table.path, name);
        const r = await openRunner(m, db().url);
        try {
          await onThread(thread, () => r.runner.run({ mode: 'initial', toVersion: 1 }));
          await logStatements(r.pool, name);
          const pv = await r.runner.preview({ toVersion: 2, limit: 10_000, include: ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] });
          const seq = await lastSeq(r.pool);
          const res = await onThread(thread, () => r.runner.run({ toVersion: 2 }));
          const counts = { insert: res.inserted, update: res.updated, delete: res.deleted, unchanged: res.unchanged };
          assert.deepEqual({ insert: pv.totals.insert, update: pv.totals.update, delete: pv.totals.delete, unchanged: pv.totals.unchanged }, counts);
          assert.equal(pv.totals['delete-missing'], 0);
          // Independently: the snapshots' difference, and the keys the MERGE rewrote with equal values.
          const diff = snapshotDiff(snaps[1] as TextRows, snaps[2] as TextRows);
          const sameTouched = diff.same.filter((k) => V2.sameValues.map(customerId).includes(k));
          assert.deepEqual(counts, { insert: diff.inserted.length, update: diff.updated.length, delete: diff.deleted.length, unchanged: sameTouched.length });
          const stmts = await statementsSince(r.pool, name, seq);
          assert.ok(stmts.length > 1, `applied in parts: ${JSON.stringify(stmts)}`);
          await assertTargetEquals(db().url, { schema: 'public', name }, table.path, 2, { key: KEY });

          // Nothing new: up to date, not a row touched.
          const seq2 = await lastSeq(r.pool);
          const again = await onThread(thread, () => r.runner.run({ toVersion: 2 }));
          assert.equal(again.status, 'up-to-date');
          assert.deepEqual(await statementsSince(r.pool, name, seq2), []);
          // The same range re-applied (checkpoint reset): every part finds its rows in place.
          await r.pool.query(`UPDATE delta_neon_sync.checkpoints SET version = 1 WHERE pipeline = $1`, [m.name]);
          const redo = await onThread(thread, () => r.runner.run({ toVersion: 2 }));
          assert.deepEqual({ i: redo.inserted, u: redo.updated, d: redo.deleted }, { i: 0, u: 0, d: 0 });
          assert.deepEqual(await statementsSince(r.pool, name, seq2), []);
          await assertTargetEquals(db().url, { schema: 'public', name }, table.path, 2, { key: KEY });
          assert.equal((await r.runner.verify()).equal, true);
        } finally {
          await r.close();
        }
      });

      for (const kind of ['boolean', 'timestamp'] as const) {
        it(`soft-delete policy (${kind} marker) in parts, one version per sync: keys deleted in Delta are kept and marked${kind === 'timestamp' ? ' with the commit time of their delete' : ''}, every other key is live, live rows equal the snapshot, preview totals equal the counts`, async () => {
          const name = `parts_soft_${kind}_${thread}`;
          const column = kind === 'boolean' ? 'deleted' : 'deleted_at';
          const m = mapping(name.replace(/_/g, '-'), table.path, name, { deletes: { mode: 'soft-delete', column, kind } });
          const r = await openRunner(m, db().url);
          try {
            await onThread(thread, () => r.runner.run({ mode: 'initial', toVersion: 1 }));
            const live = kind === 'boolean' ? `NOT "${column}"` : `"${column}" IS NULL`;
            await r.pool.query(`CREATE VIEW public."${name}_live" AS SELECT * FROM public."${name}" WHERE ${live}`);
            // Marker as text: 'true'/'false', or microseconds since the epoch (null = live).
            const markerText = kind === 'boolean' ? `"${column}"::text` : `(extract(epoch FROM "${column}") * 1000000)::int8::text`;
            const isMarked = (x: string | null | undefined): boolean => (kind === 'boolean' ? x === 'true' : x !== null && x !== undefined);
            const everSeen = new Set((snaps[1] as TextRows).keys());
            /** key -> version that deleted it (kept until it is live again). */
            const deletedAt = new Map<string, number>();
            for (let v = 2; v <= table.latest; v++) {
              const pv = await r.runner.preview({ toVersion: v, limit: 10_000, include: ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] });
              const res = await onThread(thread, () => r.runner.run({ toVersion: v }));
              assert.equal(res.toVersion, v);
              assert.deepEqual(
                { insert: pv.totals.insert, update: pv.totals.update, delete: pv.totals.delete, unchanged: pv.totals.unchanged },
                { insert: res.inserted, update: res.updated, delete: res.deleted, unchanged: res.unchanged },
                `version ${v}: preview totals equal the sync's counts`,
              );
              assert.equal(res.softDeleted, res.deleted, 'every delete was a soft delete');
              const snap = snaps[v] as TextRows;
              const prev = snaps[v - 1] as TextRows;
              const deletedNow = [...prev.keys()].filter((k) => !snap.has(k));
              assert.equal(res.deleted, deletedNow.length, `version ${v}: keys Delta deleted are marked`);
              for (const k of deletedNow) deletedAt.set(k, v);
              for (const k of snap.keys()) {
                everSeen.add(k);
                deletedAt.delete(k);
              }
              const marks = await r.pool.query<{ k: string; m: string | null }>(`SELECT customer_id AS k, ${markerText} AS m FROM public."${name}"`);
              const got = new Map(marks.rows.map((x) => [x.k, x.m]));
              // Synced one version at a time, the target holds every key any snapshot so far had.
              assert.deepEqual([...got.keys()].sort(), [...everSeen].sort());
              const expectedMarked = [...everSeen].filter((k) => !snap.has(k)).sort();
              assert.deepEqual([...got].filter(([, x]) => isMarked(x)).map(([k]) => k).sort(), expectedMarked, `version ${v}: marked keys`);
              if (kind === 'boolean') assert.deepEqual([...got].filter(([, x]) => x !== 'true' && x !== 'false'), [], 'the marker is never null');
              else {
                for (const k of expectedMarked) {
                  const dv = deletedAt.get(k) as number;
                  assert.equal(got.get(k), (BigInt(await commitMillis(table.path, dv)) * 1000n).toString(), `key ${k}: marked with the commit time of version ${dv}`);
                }
              }
              await assertTargetEquals(db().url, { schema: 'public', name: `${name}_live` }, table.path, v, { key: KEY });
              const check = await r.runner.verify();
              assert.equal(check.equal, true, `verify() at version ${v}: ${JSON.stringify(check)}`);
            }
            // v4 removed and re-inserted the swapped keys in one commit: all live.
            const swapped = await r.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM public."${name}_live" WHERE customer_id = ANY($1)`, [SWAPS.flat().map(customerId)]);
            assert.equal(Number(swapped.rows[0]?.n), SWAPS.length * 2);
          } finally {
            await r.close();
          }
        });
      }

      it('a row the target rejects in a later part fails the sync and leaves target and checkpoint exactly as before; without the constraint the rerun succeeds', async () => {
        const name = `parts_fail_${thread}`;
        const m = mapping(name.replace(/_/g, '-'), table.path, name);
        const r = await openRunner(m, db().url);
        try {
          await onThread(thread, () => r.runner.run({ mode: 'initial', toVersion: 1 }));
          // Customer 200 is among the last updates of v2 (files hold 1..100, 101..200, 201..300, read in that order).
          const victim = customerId(200);
          assert.ok(V2.upgraded.includes(200));
          const spend = (await r.pool.query<{ s: string | null }>(`SELECT total_spend::text AS s FROM public."${name}" WHERE customer_id = $1`, [victim])).rows[0]?.s;
          await r.pool.query(`ALTER TABLE public."${name}" ADD CONSTRAINT keep_200 CHECK (customer_id <> '${victim}' OR total_spend IS NOT DISTINCT FROM ${spend === null || spend === undefined ? 'NULL' : `'${spend}'::numeric`})`);
          // Rows written by statements that completed, counted outside the transaction (sequences ignore rollbacks).
          await r.pool.query(`CREATE SEQUENCE public."${name}_rows"`);
          await r.pool.query(`CREATE FUNCTION public."${name}_count"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('public."${name}_rows"'); RETURN NULL; END $$`);
          await r.pool.query(`CREATE TRIGGER count_rows AFTER INSERT OR UPDATE OR DELETE ON public."${name}" FOR EACH ROW EXECUTE FUNCTION public."${name}_count"()`);
          const before = await targetText(db().url, { schema: 'public', name }, COLUMNS, KEY);
          const cpBefore = await checkpointRow(r.pool, m.name);
          assert.ok(cpBefore);
          const events: SyncEvent[] = [];
          await expectSyncError(onThread(thread, () => r.runner.run({ toVersion: 2, onEvent: (e) => events.push(e) })), { kind: 'target', message: /keep_200|check constraint/i });
          const written = (await r.pool.query<{ n: string }>(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END::text AS n FROM public."${name}_rows"`)).rows[0]?.n;
          assert.ok(Number(written) > 0, `earlier parts were applied before the rejected one (${written} rows), then rolled back`);
          assert.deepEqual(await targetText(db().url, { schema: 'public', name }, COLUMNS, KEY), before);
          assert.equal(await checkpointRow(r.pool, m.name), cpBefore);
          assert.equal(events.filter((e) => e.type === 'batch-committed').length, 0);
          const st = await r.runner.status();
          assert.equal(st.runs[0]?.status, 'failed');
          assert.equal(st.checkpoint?.version, 1n);

          await r.pool.query(`ALTER TABLE public."${name}" DROP CONSTRAINT keep_200`);
          const ok = await onThread(thread, () => r.runner.run({ toVersion: 2 }));
          assert.equal(ok.toVersion, 2);
          await assertTargetEquals(db().url, { schema: 'public', name }, table.path, 2, { key: KEY });
          const rest = await onThread(thread, () => r.runner.run({}));
          assert.equal(rest.toVersion, table.latest);
          await assertTargetEquals(db().url, { schema: 'public', name }, table.path, table.latest, { key: KEY });
          assert.equal((await r.runner.verify()).equal, true);
        } finally {
          await r.close();
        }
      });

      it('an abort from the first progress event rejects as cancelled, changes nothing, leaves no reader thread, and the next run completes', async () => {
        const name = `parts_abort_${thread}`;
        const m = mapping(name.replace(/_/g, '-'), table.path, name);
        const r = await openRunner(m, db().url);
        try {
          await onThread(thread, () => r.runner.run({ mode: 'initial', toVersion: 1 }));
          const before = await targetText(db().url, { schema: 'public', name }, COLUMNS, KEY);
          const cpBefore = await checkpointRow(r.pool, m.name);
          const ac = new AbortController();
          const events: SyncEvent[] = [];
          const startedBefore = workers.started;
          await expectSyncError(
            onThread(thread, () => r.runner.run({
              signal: ac.signal,
              onEvent: (e) => {
                events.push(e);
                if (e.type === 'progress' && !ac.signal.aborted) ac.abort();
              },
            })),
            { kind: 'cancelled' },
          );
          assert.ok(ac.signal.aborted, 'a progress event came while reading');
          assert.equal(events.filter((e) => e.type === 'batch-committed').length, 0);
          const finished = events.at(-1);
          assert.ok(finished?.type === 'run-finished', JSON.stringify(finished));
          assert.equal(finished.status, 'cancelled');
          assert.equal(workers.started - startedBefore, thread === 'worker' ? 1 : 0);
          await pollUntil(async () => (workers.exited === workers.started ? true : undefined), { timeoutMs: 5_000, what: 'every reader thread to exit' });
          assert.deepEqual(await targetText(db().url, { schema: 'public', name }, COLUMNS, KEY), before);
          assert.equal(await checkpointRow(r.pool, m.name), cpBefore);
          assert.equal((await r.runner.status()).runs[0]?.status, 'cancelled');

          const res = await onThread(thread, () => r.runner.run({}));
          assert.equal(res.toVersion, table.latest);
          await assertTargetEquals(db().url, { schema: 'public', name }, table.path, table.latest, { key: KEY });
          await pollUntil(async () => (workers.exited === workers.started ? true : undefined), { timeoutMs: 5_000, what: 'every reader thread to exit' });
        } finally {
          await r.close();
        }
      });
    });
  }

  describe('a small version followed by a big one touching the same keys, in one sync', () => {
    /**
     * v1 customers 1..100; v2 (small) updates 90 and 95 and deletes 99; v3 (big MERGE)
     * updates 1..50, deletes 90 (upserted by v2, so applied in the first part before v3's
     * delete of it comes) and re-inserts 99 (deleted by v2, a removal held across parts).
     */
    let edgePath: string;
    before(async () => {
      const w = await customersWithCdf('edge');
      await w.merge('customer_id', [90, 95].map((i) => upgradedCustomer(customerAt(i))), { deleteKeys: [customerId(99)] });
      await w.merge('customer_id', [...range(1, 50).map((i) => upgradedCustomer(customerAt(i))), customerAt(99)], { deleteKeys: [customerId(90)] });
      edgePath = w.path;
    });

    for (const thread of THREADS) {
      it(`(${thread} thread) the target equals the last snapshot, the key v3 deleted is gone, the re-inserted key is there, and the counts equal the preview's`, async () => {
        const name = `edge_${thread}`;
        const m = mapping(name.replace(/_/g, '-'), edgePath, name);
        const r = await openRunner(m, db().url);
        try {
          await onThread(thread, () => r.runner.run({ mode: 'initial', toVersion: 1 }));
          await logStatements(r.pool, name);
          const seq = await lastSeq(r.pool);
          const pv = await r.runner.preview({ limit: 10_000, include: ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] });
          const res = await onThread(thread, () => r.runner.run({}));
          assert.equal(res.toVersion, 3);
          assert.equal(res.batches, 1, 'v2 and v3 are one transaction (v2 is smaller than a batch)');
          await assertTargetEquals(db().url, { schema: 'public', name }, edgePath, 3, { key: KEY });
          const present = await r.pool.query<{ k: string }>(`SELECT customer_id AS k FROM public."${name}" WHERE customer_id = ANY($1) ORDER BY 1`, [[customerId(90), customerId(99)]]);
          assert.deepEqual(present.rows.map((x) => x.k), [customerId(99)]);
          const stmts = await statementsSince(r.pool, name, seq);
          assert.equal(new Set(stmts.map((x) => x.tx)).size, 1);
          assert.ok(stmts.length > 1, `applied in parts: ${JSON.stringify(stmts)}`);
          assert.equal((await r.runner.verify()).equal, true);
          // The preview is the net effect of v2..v3 on the target, as the snapshots say (customer 99 was re-inserted with its v1 values).
          const diff = snapshotDiff((await snapshotText(edgePath, 1, { key: KEY })).rows, (await snapshotText(edgePath, 3, { key: KEY })).rows);
          assert.deepEqual(
            { insert: pv.totals.insert, update: pv.totals.update, delete: pv.totals.delete, unchanged: pv.totals.unchanged },
            { insert: diff.inserted.length, update: diff.updated.length, delete: diff.deleted.length, unchanged: 1 },
          );
          // One transaction: its counts are that net effect too (a key is counted once, not as an update by v2 and a delete by v3).
          assert.deepEqual(
            { insert: res.inserted, update: res.updated, delete: res.deleted, unchanged: res.unchanged },
            { insert: pv.totals.insert, update: pv.totals.update, delete: pv.totals.delete, unchanged: pv.totals.unchanged },
          );
        } finally {
          await r.close();
        }
      });
    }
  });

  describe('a range the sync commits in several transactions', () => {
    /**
     * v1 customers 1..100; v2 (big: 60 updates, so applied in parts, ending its
     * transaction) upgrades 1..60; v3 upgrades 1..5 again, inserts 101, deletes 10; v4
     * upgrades 101, deletes 2 and 70, re-inserts 10 with its v1 values. A sync of v2..v4
     * commits v2, then v3..v4: keys 1..5 are updated by both, so the sync's counts are not
     * the net effect of v2..v4 on the target, and the preview must count as the sync does.
     */
    let multiPath: string;
    before(async () => {
      const w = await customersWithCdf('multi');
      await w.merge('customer_id', range(1, 60).map((i) => upgradedCustomer(customerAt(i))));
      await w.merge('customer_id', [...range(1, 5).map((i) => upgradedCustomer(upgradedCustomer(customerAt(i)))), customerAt(101)], { deleteKeys: [customerId(10)] });
      await w.merge('customer_id', [upgradedCustomer(customerAt(101)), customerAt(10)], { deleteKeys: [customerId(2), customerId(70)] });
      multiPath = w.path;
    });

    for (const thread of THREADS) {
      for (const policy of ['delete', 'soft-delete'] as const) {
        it(`(${thread} thread, ${policy}) the preview's and the dry run's totals are the sum of what each transaction of the sync applies`, async () => {
          const name = `multi_${policy.replace('-', '_')}_${thread}`;
          const m = mapping(name.replace(/_/g, '-'), multiPath, name, policy === 'soft-delete' ? { deletes: { mode: 'soft-delete', column: 'deleted', kind: 'boolean' } } : {});
          const r = await openRunner(m, db().url);
          try {
            await onThread(thread, () => r.runner.run({ mode: 'initial', toVersion: 1 }));
            const all = ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] as const;
            const pv = await r.runner.preview({ limit: 10_000, include: all });
            // Pages of 7 (each computed afresh) put together are the whole listing: the order is total.
            const paged: unknown[] = [];
            for (let offset = 0; offset < pv.rows.length; offset += 7) paged.push(...(await r.runner.preview({ limit: 7, offset, include: all })).rows);
            assert.deepEqual(paged, pv.rows);
            // A dry run applies the same transactions in turn (and rolls them back).
            const dry = (await r.runner.dryRun()).result;
            const committed: Array<Extract<SyncEvent, { type: 'batch-committed' }>> = [];
            const res = await onThread(thread, () => r.runner.run({ onEvent: (e) => void (e.type === 'batch-committed' && committed.push(e)) }));
            assert.equal(res.toVersion, 4);
            assert.deepEqual(committed.map((e) => [e.fromVersion, e.toVersion]), [[2, 2], [3, 4]], 'v2 alone, then v3..v4');
            assert.deepEqual(
              { insert: pv.totals.insert, update: pv.totals.update, delete: pv.totals.delete, unchanged: pv.totals.unchanged },
              { insert: res.inserted, update: res.updated, delete: res.deleted, unchanged: res.unchanged },
            );
            assert.deepEqual(
              { insert: dry.inserted, update: dry.updated, delete: dry.deleted + (dry.softDeleted ?? 0), unchanged: dry.unchanged, rejected: dry.rejected.length },
              { insert: res.inserted, update: res.updated, delete: res.deleted, unchanged: res.unchanged, rejected: 0 },
              'the dry run counts what the sync applies',
            );
            // What each transaction did, by hand: v2 updates 60; v3..v4 updates 1, 3, 4, 5 and 10 (back
            // to its v1 values), deletes 2 and 70, inserts 101.
            assert.deepEqual({ insert: res.inserted, update: res.updated, delete: res.deleted }, { insert: 1, update: 65, delete: 2 });
            // The net effect of v2..v4 would have counted 1..5 once: that is not what the sync applies.
            const diff = snapshotDiff((await snapshotText(multiPath, 1, { key: KEY })).rows, (await snapshotText(multiPath, 4, { key: KEY })).rows);
            assert.ok(diff.updated.length < res.updated, `net ${diff.updated.length} updates, applied ${res.updated}`);
            // Rows: one per key and transaction, so keys 1, 3, 4 and 5 are listed twice.
            assert.equal(pv.rows.length, pv.totals.insert + pv.totals.update + pv.totals.delete + pv.totals['delete-missing'] + pv.totals.unchanged);
            const listed = new Map<string, number>();
            for (const row of pv.rows) listed.set(String(row.key.customer_id), (listed.get(String(row.key.customer_id)) ?? 0) + 1);
            assert.deepEqual([1, 2, 3, 4, 5, 10, 70, 101].map((i) => listed.get(customerId(i))), [2, 2, 2, 2, 2, 2, 1, 1]);
            assert.equal((await r.runner.verify()).equal, true, 'the target (its live rows) equals v4');
          } finally {
            await r.close();
          }
        });
      }
    }
  });

  describe('errors read on the worker thread keep kind, message, version and hint', () => {
    /** A small CDF table at v1 with its initial load done by a runner per thread. */
    async function faultTable(name: string): Promise<{ w: DeltaTableWriter; runners: Record<Thread, OpenedRunner> }> {
      const w = await customersWithCdf(name);
      const runners = {} as Record<Thread, OpenedRunner>;
      for (const thread of THREADS) {
        const t = `${name}_${thread}`;
        runners[thread] = await openRunner(mapping(t.replace(/_/g, '-'), w.path, t), db().url);
        await onThread(thread, () => runners[thread].runner.run({ mode: 'initial', toVersion: 1 }));
      }
      return { w, runners };
    }

    async function sameErrorOnBothThreads(runners: Record<Thread, OpenedRunner>): Promise<SyncError> {
      const viaWorker = await onThread('worker', () => countWorkers(() => expectSyncError(runners.worker.runner.run({}))));
      const viaMain = await onThread('main', () => countWorkers(() => expectSyncError(runners.main.runner.run({}))));
      assert.equal(viaWorker.started, 1, 'the worker run started a reader thread');
      assert.equal(viaMain.started, 0);
      const fields = (e: SyncError): Record<string, unknown> => ({ name: e.name, kind: e.kind, message: e.message, hint: e.hint, version: e.version, table: e.table, column: e.column, retry: e.retry });
      assert.deepEqual(fields(viaWorker.value), fields(viaMain.value));
      // Raised on the reader thread (its stack), not before it started.
      assert.match(viaWorker.value.stack ?? '', /changePlanWorker/);
      assert.doesNotMatch(viaMain.value.stack ?? '', /changePlanWorker/);
      for (const thread of THREADS) {
        const st = await runners[thread].runner.status();
        assert.equal(st.checkpoint?.version, 1n, `${thread}: the checkpoint stays`);
        assert.equal(st.runs[0]?.status, 'failed');
      }
      return viaWorker.value;
    }

    it('a corrupt commit file the snapshot skips (checkpoint after it) but the change feed reads: same delta-log error with and without the worker', async () => {
      const { w, runners } = await faultTable('fault_corrupt');
      try {
        const v = await w.merge('customer_id', range(1, 40).map((i) => upgradedCustomer(customerAt(i))), { rowsPerFile: 50 }); // v2
        await w.append(generateCustomers(10, 42, 101)); // v3
        await w.checkpoint();
        await fs.appendFile(path.join(w.path, '_delta_log', `${String(v).padStart(20, '0')}.json`), '{"add":{"path":"part-x.parquet","partitionValues":{\n');
        const err = await sameErrorOnBothThreads(runners);
        assert.equal(err.kind, 'delta-log', err.describe());
        assert.match(err.message, new RegExp(`\\b${v}\\b|${String(v).padStart(20, '0')}`));
        for (const thread of THREADS) await assertTargetEquals(db().url, { schema: 'public', name: `fault_corrupt_${thread}` }, w.path, 1, { key: KEY });
      } finally {
        for (const r of Object.values(runners)) await r.close();
      }
    });

    it('a CDF range whose commits were cleaned up and files vacuumed: same error with and without the worker', async () => {
      const { w, runners } = await faultTable('fault_vacuumed');
      try {
        await w.merge('customer_id', range(1, 40).map((i) => upgradedCustomer(customerAt(i))), { rowsPerFile: 50 }); // v2
        await w.update('customer_id', range(41, 60).map((i) => upgradedCustomer(customerAt(i)))); // v3
        await w.checkpoint();
        const expired = await w.expireLog();
        assert.ok(expired.includes('00000000000000000002.json'), expired.join(', '));
        await w.vacuum();
        const err = await sameErrorOnBothThreads(runners);
        assert.ok(['cdf-range', 'delta-log', 'time-travel'].includes(err.kind), err.describe());
        assert.match(err.message, /\b2\b/);
        assert.ok(err.hint && /initial/i.test(err.hint), err.describe());
      } finally {
        for (const r of Object.values(runners)) await r.close();
      }
    });
    for (const damage of ['missing', 'truncated'] as const) {
      it(`a ${damage} change data file of the range: same error with and without the worker`, async () => {
        const { w, runners } = await faultTable(`fault_cdc_${damage}`);
        try {
          await w.merge('customer_id', range(1, 40).map((i) => upgradedCustomer(customerAt(i))), { rowsPerFile: 50 }); // v2, with _change_data files
          const cdcDir = path.join(w.path, '_change_data');
          const files = (await fs.readdir(cdcDir)).filter((f) => f.endsWith('.parquet'));
          assert.ok(files.length > 0, 'the MERGE wrote change data files');
          const victim = path.join(cdcDir, files[0] as string);
          if (damage === 'missing') await fs.rm(victim);
          else await fs.writeFile(victim, (await fs.readFile(victim)).subarray(0, 40));
          const err = await sameErrorOnBothThreads(runners);
          if (damage === 'truncated') assert.equal(err.kind, 'delta-file', err.describe());
          else assert.ok(['cdf-range', 'delta-file'].includes(err.kind), err.describe());
          assert.ok(err.message.includes(path.basename(victim)), `names the file: ${err.message}`);
          for (const thread of THREADS) await assertTargetEquals(db().url, { schema: 'public', name: `fault_cdc_${damage}_${thread}` }, w.path, 1, { key: KEY });
        } finally {
          for (const r of Object.values(runners)) await r.close();
        }
      });
    }
    it('an initial load of a snapshot with a truncated data file: same delta-file error with and without the worker; no table, no checkpoint', async () => {
      const w = await customersWithCdf('fault_data');
      const files = (await fs.readdir(w.path)).filter((f) => f.endsWith('.parquet')).sort();
      assert.equal(files.length, 2);
      const victim = path.join(w.path, files[1] as string);
      await fs.writeFile(victim, (await fs.readFile(victim)).subarray(0, 40));
      const errors: Partial<Record<Thread, SyncError>> = {};
      for (const thread of THREADS) {
        const t = `fault_data_${thread}`;
        const r = await openRunner(mapping(t.replace(/_/g, '-'), w.path, t), db().url);
        try {
          const got = await onThread(thread, () => countWorkers(() => expectSyncError(r.runner.run({ mode: 'initial' }))));
          assert.equal(got.started, thread === 'worker' ? 1 : 0);
          errors[thread] = got.value;
          const st = await r.runner.status();
          assert.equal(st.targetExists, false);
          assert.equal(st.checkpoint, null);
          assert.equal(st.runs[0]?.status, 'failed');
        } finally {
          await r.close();
        }
      }
      const fields = (e: SyncError | undefined): Record<string, unknown> => ({ kind: e?.kind, message: e?.message, hint: e?.hint, version: e?.version, table: e?.table, retry: e?.retry });
      assert.deepEqual(fields(errors.worker), fields(errors.main));
      assert.equal(errors.worker?.kind, 'delta-file', errors.worker?.describe());
      assert.ok(errors.worker?.message.includes(path.basename(victim)), errors.worker?.message);
    });
  });

  describe('initial load through the worker', () => {
    let big: string;
    before(async function () {
      this.timeout(120_000);
      const w = await DeltaTableWriter.create(path.join(dir, 'big'), { columns: [...CUSTOMER_PROFILE_COLUMNS], configuration: { 'delta.enableChangeDataFeed': 'true' } });
      // Enough rows for several 1000-row read batches and more than one 1 MiB message of COPY text.
      await w.append(generateCustomers(20_000), { rowsPerFile: 5_000 });
      big = w.path;
    });

    it('with a mapping filter (and on the calling thread) loads exactly the snapshot rows the filter keeps', async () => {
      const segments = ['High Value', 'Loyal Customer'];
      const keep = (row: Row): boolean =>
        typeof row.segment === 'string' && segments.includes(row.segment) &&
        typeof row.total_spend === 'string' && Number(row.total_spend) >= 1000 &&
        row.is_active === true;
      const filter: MappingInput['filter'] = [
        { column: 'segment', op: 'in', values: segments },
        { column: 'total_spend', op: '>=', value: '1000.00' },
        { column: 'is_active', op: '=', value: true },
      ];
      const expected = (await snapshotText(big, 1, { key: KEY, filter: keep })).rows.size;
      assert.ok(expected > 0 && expected < 20_000, `the filter keeps some rows, not all (${expected})`);
      for (const thread of THREADS) {
        const name = `filtered_${thread}`;
        const r = await openRunner(mapping(name.replace(/_/g, '-'), big, name, { filter }), db().url);
        try {
          const res = await onThread(thread, () => countWorkers(() => r.runner.run({ mode: 'initial' })));
          assert.equal(res.started, thread === 'worker' ? 1 : 0);
          assert.equal(res.value.inserted, expected);
          assert.equal(res.value.rowsRead, 20_000, 'rows read include the ones the filter dropped');
          const n = await assertTargetEquals(db().url, { schema: 'public', name }, big, 1, { key: KEY, filter: keep });
          assert.equal(n, expected);
          assert.equal((await r.runner.verify()).equal, true);
        } finally {
          await r.close();
        }
      }
    });

    for (const thread of THREADS) {
      it(`(${thread} thread) aborted at its first progress event: cancelled, no target table, no checkpoint, no reader thread left; the next load completes`, async () => {
        const name = `abort_load_${thread}`;
        const r = await openRunner(mapping(name.replace(/_/g, '-'), big, name), db().url);
        try {
          const ac = new AbortController();
          const startedBefore = workers.started;
          await expectSyncError(
            onThread(thread, () => r.runner.run({
              mode: 'initial',
              signal: ac.signal,
              onEvent: (e) => {
                if (e.type === 'progress' && !ac.signal.aborted) ac.abort();
              },
            })),
            { kind: 'cancelled' },
          );
          assert.equal(workers.started - startedBefore, thread === 'worker' ? 1 : 0);
          await pollUntil(async () => (workers.exited === workers.started ? true : undefined), { timeoutMs: 5_000, what: 'every reader thread to exit' });
          // The aborted load dropped its staging table (not left for the next run to clean up).
          const leftovers = await r.pool.query<{ relname: string }>(`SELECT relname FROM pg_class WHERE relname LIKE $1 AND relkind = 'r'`, [`${name}\\_\\_dns\\_%`]);
          assert.deepEqual(leftovers.rows, []);
          const st = await r.runner.status();
          assert.equal(st.targetExists, false);
          assert.equal(st.checkpoint, null);
          assert.equal(st.runs[0]?.status, 'cancelled');
          const res = await onThread(thread, () => r.runner.run({}));
          assert.equal(res.mode, 'initial');
          const n = await assertTargetEquals(db().url, { schema: 'public', name }, big, 1, { key: KEY });
          assert.equal(res.inserted, n);
        } finally {
          await r.close();
        }
      });
    }
  });
});
