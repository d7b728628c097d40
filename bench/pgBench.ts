/**
 * Postgres target benchmark, the comparison on one machine, one server, the same rows:
 *
 *   npx tsx bench/pgBench.ts [rows=1000000] [reps=3] [--order random|sequential] [--ddl seed|pk]
 *                            [--rbr 10000] [--regenerate] [--tsx]
 *
 * Source: a local Delta table (cached under bench/.data/, generated once in a child process):
 *   v0 CREATE (CDF on), v1 WRITE of `rows` customer_profiles rows (src/fixtures/customerProfiles)
 *   in random key order (Delta files are not sorted by key; --order sequential writes them
 *   in key order instead), v2 MERGE of 10% of the keys drawn at random over all of them:
 *   90% updated (upgradedCustomer), 10% deleted, written copy-on-write with cdc files, the
 *   way Spark writes a MERGE.
 * Target: the seed article's table — customer_id VARCHAR(255) PRIMARY KEY, email
 *   VARCHAR(255) UNIQUE, ... (its updated_at column left out, since neither side writes it;
 *   is_active added, since the Delta table has it) — created with the same DDL for every
 *   method (--ddl pk drops the UNIQUE on email).
 * Methods, each repetition (the order of 1 and 2 alternates between repetitions):
 *   1. `psql \copy` of the v1 snapshot exported as CSV (same rows, same order; the export
 *      is not timed) into a fresh table with that DDL: the baseline;
 *   2. the engine's initial load: SyncRunner.run({ mode: 'initial', toVersion: 1 }) of a
 *      mapping onto the pre-created target — reading and decoding the Delta files is
 *      inside the timing; the swap keeps the seed table's UNIQUE constraint (rebuilt on the
 *      new table, also inside the timing);
 *   3. the engine's incremental sync of v2 (SyncRunner, mode 'incremental', default batch
 *      settings) onto the loaded target after VACUUM ANALYZE (as autovacuum would leave it):
 *      reading the Change Data Feed, netting, staging and applying, all timed.
 * Then once, on a target reloaded to v1 and vacuumed the same way:
 *   4. the seed's row-by-row loop on a sample of the same v2 changes (every n-th): one
 *      INSERT ... ON CONFLICT DO UPDATE round trip per upserted row, the deletes as one
 *      `DELETE ... WHERE customer_id = ANY($1)`, all in one transaction committed at the
 *      end, as the seed's foreachBatch does per micro-batch. The statement is prepared
 *      once (psycopg2 sends a new text query each time, which is slower), so this rate is,
 *      if anything, flattering to row-by-row. Reading the changes is not timed here,
 *      whereas the engine's incremental timing includes reading them.
 * Fairness: the server is a throwaway cluster with the server's durability defaults (fsync,
 * full_page_writes, synchronous_commit on); every timed step starts after CHECKPOINT.
 * Correctness: the \copy table and the engine's table are compared row for row (EXCEPT
 * ALL both ways) in the first repetition; the incremental run's counts are checked, and
 * in the first repetition SyncRunner.verify() compares the target with the v2 snapshot.
 * The targets are judged on the faithful configuration only: --order random --ddl seed.
 * The engine runs in a worker process (bench/pgBenchKit.ts bundled by esbuild, under plain node as
 * the CLI ships; --tsx runs it under tsx), so the peak RSS reported for it is the engine's
 * own and not the bench's CSV export. The engine reads the local Delta table on a worker
 * thread (src/sync/worker/changePlanWorker.ts) in parallel with the database work; when it
 * reads on its calling thread instead (DELTA_NEON_SYNC_READ_THREAD=main), each run also
 * reports the time spent inside the Delta reader's iterators ("reader on the calling
 * thread"), which splits it into reading and the rest.
 * On a local server a row-by-row round trip is ~0.1 ms; against a remote database (the
 * seed's Neon) each costs a network round trip, so row-by-row is far slower there and the
 * "x row-by-row" ratio measured here is the low end.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PoolClient } from 'pg';
import { DeltaTable } from '../src/sync/delta/DeltaTable';
import type { Row } from '../src/sync/delta/types';
import { createPool } from '../src/sync/postgres/createPool';
import { ensureStateTables } from '../src/sync/postgres/stateTables';
import { openSource } from '../src/sync/open/openSource';
import { SyncRunner } from '../src/sync/run/SyncRunner';
import { mappingTarget } from '../src/sync/open/openTarget';
import {
  CSV_COLUMNS, EngineWorker, benchMapping, changesFor, constraintsOf, count, currentLsn, deletesFor, ensureSourceTable, exportCsv, fmt, generate, loadAvg, mb, median, psqlCopy,
  rate, readerNote, targetDdl, timestampText, walMbSince,
} from './pgBenchKit';
import type { Ddl, EngineReply, Order } from './pgBenchKit';
import { startThrowawayServer } from '../test/helpers/postgres';


interface Args {
  rows: number;
  reps: number;
  order: Order;
  ddl: Ddl;
  /** Changes in the row-by-row sample. */
  rbr: number;
  regenerate: boolean;
  /** Child mode: write the source table there. */
  generateInto?: string;
  /** Run the engine worker under tsx instead of bundled under plain node. */
  tsx: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rows: 1_000_000, reps: 3, order: 'random', ddl: 'seed', rbr: 10_000, regenerate: false, tsx: false };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--order') {
      const v = value();
      if (v !== 'random' && v !== 'sequential') throw new Error('--order must be random or sequential');
      args.order = v;
    } else if (a === '--ddl') {
      const v = value();
      if (v !== 'seed' && v !== 'pk') throw new Error('--ddl must be seed or pk');
      args.ddl = v;
    } else if (a === '--rbr') args.rbr = Number(value());
    else if (a === '--regenerate') args.regenerate = true;
    else if (a === '--generate-into') args.generateInto = value();
    else if (a === '--tsx') args.tsx = true;
    else if (a.startsWith('--')) throw new Error(`Unknown argument ${a}`);
    else positional.push(a);
  }
  if (positional[0] !== undefined) args.rows = Number(positional[0]);
  if (positional[1] !== undefined) args.reps = Number(positional[1]);
  if (!Number.isSafeInteger(args.rows) || args.rows < 100) throw new Error('rows must be an integer >= 100');
  if (!Number.isSafeInteger(args.reps) || args.reps < 1) throw new Error('reps must be a positive integer');
  if (!Number.isSafeInteger(args.rbr) || args.rbr < 10) throw new Error('--rbr must be an integer >= 10');
  return args;
}

// ---------------------------------------------------------------- the benchmark

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.generateInto) {
    await generate(args.generateInto, args.rows, args.order);
    return;
  }
  const t0 = Date.now();
  const N = args.rows;
  const CHANGES = changesFor(N);
  const DELETES = deletesFor(CHANGES);
  const faithful = args.order === 'random' && args.ddl === 'seed';
  const sourceDir = ensureSourceTable({ rows: N, order: args.order, regenerate: args.regenerate });

  const server = await startThrowawayServer({ fast: false });
  const url = server.adminUrl;
  const pool = createPool(url, { max: 4 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-bench-'));
  fs.chmodSync(tmp, 0o755);
  let held: PoolClient | undefined;
  let worker: EngineWorker | undefined;
  try {
    const c = await pool.connect();
    held = c;
    const setting = async (name: string): Promise<string> => (await c.query<Record<string, string>>(`SHOW ${name}`)).rows[0]?.[name] ?? '?';
    console.log(
      `PostgreSQL ${await setting('server_version')} (fsync=${await setting('fsync')}, full_page_writes=${await setting('full_page_writes')}, ` +
        `synchronous_commit=${await setting('synchronous_commit')}, shared_buffers=${await setting('shared_buffers')}, max_wal_size=${await setting('max_wal_size')}); ` +
        `${execFileSync('psql', ['--version'], { encoding: 'utf8' }).trim()}; ${os.cpus().length} cores`,
    );
    console.log(
      `configuration: ${args.order} key order, ${args.ddl === 'seed' ? 'seed DDL (PK customer_id + UNIQUE email)' : 'PK only'} ` +
        `${faithful ? '[the faithful one: targets are judged on it]' : '[NOT the faithful configuration: targets are not judged on it]'}; ` +
        `${fmt(N)} rows, ${fmt(CHANGES)} changes (${fmt(CHANGES - DELETES)} updates + ${fmt(DELETES)} deletes at random keys), ${args.reps} repetitions; ` +
        `source ${sourceDir}; load average ${loadAvg()}`,
    );
    await ensureStateTables(c);

    // The CSV for \copy: the v1 snapshot as the reader returns it (same rows, same order). Not timed.
    const csv = path.join(tmp, 'customers.csv');
    let t = Date.now();
    const table = await DeltaTable.open(sourceDir);
    const exported = await exportCsv(table, 1, csv);
    if (exported !== N) throw new Error(`snapshot v1 has ${exported} rows, expected ${N}`);
    const csvMs = Date.now() - t;

    // The v2 changes as the seed's foreachBatch sees them (insert/update_postimage rows
    // upserted, delete rows deleted); every n-th kept as the row-by-row sample. Reading the
    // whole CDF alone is timed, to show how much of the engine's incremental time is reading.
    const every = Math.max(1, Math.round(CHANGES / args.rbr));
    const sampleUpserts: Row[] = [];
    const sampleDeletes: string[] = [];
    let seenUp = 0;
    let seenDel = 0;
    let cdfRows = 0;
    t = Date.now();
    for await (const batch of table.changes({ startingVersion: 2, endingVersion: 2 }, { batchSize: 10_000 })) {
      cdfRows += batch.length;
      for (const ch of batch) {
        if (ch.changeType === 'insert' || ch.changeType === 'update_postimage') {
          if (seenUp++ % every === 0) sampleUpserts.push(ch.values);
        } else if (ch.changeType === 'delete') {
          if (seenDel++ % every === 0) sampleDeletes.push(ch.values.customer_id as string);
        }
      }
    }
    const cdfMs = Date.now() - t;
    if (seenUp !== CHANGES - DELETES || seenDel !== DELETES) throw new Error(`v2 CDF has ${seenUp} upserts and ${seenDel} deletes, expected ${CHANGES - DELETES} and ${DELETES}`);
    console.log(`not timed: CSV export ${csvMs} ms (${fmt(fs.statSync(csv).size / 1e6)} MB); v2 CDF read alone ${cdfMs} ms (${fmt(cdfRows)} change rows)`);

    // The engine: a mapping onto the pre-created seed table (its types, so the swapped-in table is the seed's too).
    // The parent's runner only verifies (read-only); the timed runs happen in the worker.
    const mapping = benchMapping(sourceDir);
    const runner = new SyncRunner(mapping, await openSource(mapping.source), mappingTarget(pool, mapping.target));
    worker = await EngineWorker.start(args, url, sourceDir);
    const engine = worker;
    await c.query(targetDdl('customer_profiles', args.ddl));
    const expectedConstraints = await constraintsOf(c, 'customer_profiles');

    const copyMs: number[] = [];
    const loadMs: number[] = [];
    const incMs: number[] = [];
    const incWal: number[] = [];
    let lastInc: EngineReply['result'] | undefined;
    let engineRss = 0;
    const loadReadMs: number[] = [];
    const incReadMs: number[] = [];

    const copy = async (rep: number, keep: boolean): Promise<void> => {
      await c.query('DROP TABLE IF EXISTS customer_profiles_copy');
      await c.query(targetDdl('customer_profiles_copy', args.ddl));
      await c.query('CHECKPOINT');
      copyMs.push(psqlCopy(url, 'customer_profiles_copy', csv));
      console.log(`  rep ${rep + 1}: \\copy ${copyMs.at(-1)} ms (load average ${loadAvg()})`);
      if (!keep) await c.query('DROP TABLE customer_profiles_copy');
    };

    const load = async (label: string): Promise<number> => {
      await c.query('CHECKPOINT');
      const { result: r, ms, readMs, maxRss, heapAfterGc, log } = await engine.run('initial', { toVersion: 1 });
      for (const line of log) console.log(`    worker: ${line}`);
      loadReadMs.push(readMs);
      engineRss = Math.max(engineRss, maxRss);
      if (r.rowsRead !== N || r.inserted !== N) throw new Error(`initial load read ${r.rowsRead} and loaded ${r.inserted} rows, expected ${N}`);
      const cons = await constraintsOf(c, 'customer_profiles');
      if (cons !== expectedConstraints) throw new Error(`after the swap the target has constraints [${cons}], expected [${expectedConstraints}]`);
      console.log(`  ${label}: engine initial load ${ms} ms (${readerNote(readMs)}; worker peak RSS so far ${mb(maxRss)}, heap after GC ${mb(heapAfterGc)}) (load average ${loadAvg()})`);
      // As autovacuum would leave a loaded table before the next sync; not timed.
      await c.query('VACUUM ANALYZE customer_profiles');
      return ms;
    };

    const incremental = async (rep: number, verify: boolean): Promise<void> => {
      await c.query('CHECKPOINT');
      const lsn = await currentLsn(c);
      const { result: r, ms, readMs, maxRss, heapAfterGc, log } = await engine.run('incremental');
      for (const line of log) console.log(`    worker: ${line}`);
      incReadMs.push(readMs);
      engineRss = Math.max(engineRss, maxRss);
      incMs.push(ms);
      incWal.push(await walMbSince(c, lsn));
      if (r.updated !== CHANGES - DELETES || r.deleted !== DELETES || r.inserted !== 0 || r.toVersion !== 2) {
        throw new Error(`incremental: ${r.updated} updated, ${r.deleted} deleted, ${r.inserted} inserted up to v${r.toVersion}; expected ${CHANGES - DELETES}, ${DELETES}, 0 up to v2`);
      }
      const left = await count(c, 'SELECT count(*) AS n FROM customer_profiles');
      if (left !== N - DELETES) throw new Error(`after the incremental sync the target has ${left} rows, expected ${N - DELETES}`);
      lastInc = r;
      let verified = '';
      if (verify) {
        const v = await runner.verify();
        if (!v.equal) throw new Error(`verify after the incremental sync: ${v.missing} missing, ${v.differing} differing, ${v.extra} extra`);
        verified = '; verify(): target equals the v2 snapshot';
      }
      console.log(
        `  rep ${rep + 1}: engine incremental ${incMs.at(-1)} ms (${readerNote(readMs)}; worker peak RSS so far ${mb(maxRss)}, heap after GC ${mb(heapAfterGc)}), ${r.batches} batch(es), ${fmt(r.rowsRead)} change rows read, ` +
          `WAL ${fmt(incWal.at(-1) as number)} MB${verified} (load average ${loadAvg()})`,
      );
    };

    for (let rep = 0; rep < args.reps; rep++) {
      if (rep % 2 === 0) {
        await copy(rep, rep === 0);
        loadMs.push(await load(`rep ${rep + 1}`));
        if (rep === 0) {
          // The same rows by both paths: compare the tables row for row (not timed).
          const diff = await count(
            c,
            `SELECT (SELECT count(*) FROM (SELECT * FROM customer_profiles EXCEPT ALL SELECT * FROM customer_profiles_copy) a)
                  + (SELECT count(*) FROM (SELECT * FROM customer_profiles_copy EXCEPT ALL SELECT * FROM customer_profiles) b) AS n`,
          );
          if (diff !== 0) throw new Error(`the engine's table and the \\copy table differ in ${diff} rows`);
          console.log(`  rep 1: the engine's table equals the \\copy table row for row (${fmt(N)} rows)`);
          await c.query('DROP TABLE customer_profiles_copy');
        }
        await incremental(rep, rep === 0);
      } else {
        loadMs.push(await load(`rep ${rep + 1}`));
        await incremental(rep, false);
        await copy(rep, false);
      }
    }

    // Row by row on a target in the same state as before each incremental run.
    const reloadMs = await load('before row-by-row');
    const sql = `INSERT INTO customer_profiles (customer_id, full_name, email, segment, last_purchase_date, total_spend, propensity_score, is_active)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (customer_id) DO UPDATE SET full_name = EXCLUDED.full_name, email = EXCLUDED.email, segment = EXCLUDED.segment,
                   last_purchase_date = EXCLUDED.last_purchase_date, total_spend = EXCLUDED.total_spend,
                   propensity_score = EXCLUDED.propensity_score, is_active = EXCLUDED.is_active`;
    const param = (v: Row[string]): string | number | boolean | null => {
      if (v === null || v === undefined) return null;
      if (typeof v === 'bigint') return timestampText(v);
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      throw new Error('unexpected value type');
    };
    await c.query('CHECKPOINT');
    t = Date.now();
    await c.query('BEGIN');
    let upserted = 0;
    for (const r of sampleUpserts) {
      const res = await c.query({ name: 'rbr_upsert', text: sql, values: CSV_COLUMNS.map((name) => param(r[name])) });
      upserted += res.rowCount ?? 0;
    }
    const del = await c.query('DELETE FROM customer_profiles WHERE customer_id = ANY($1)', [sampleDeletes]);
    await c.query('COMMIT');
    const rbrMs = Date.now() - t;
    const rbrN = sampleUpserts.length + sampleDeletes.length;
    if (upserted !== sampleUpserts.length || del.rowCount !== sampleDeletes.length) {
      throw new Error(`row-by-row: ${upserted} upserted, ${String(del.rowCount)} deleted; expected ${sampleUpserts.length} and ${sampleDeletes.length}`);
    }
    console.log(`  row-by-row: ${fmt(sampleUpserts.length)} upserts + ${fmt(sampleDeletes.length)} deletes in ${rbrMs} ms (load average ${loadAvg()})`);
    const size = (await c.query<{ t: string; i: string }>(`SELECT pg_size_pretty(pg_table_size('customer_profiles')) AS t, pg_size_pretty(pg_indexes_size('customer_profiles')) AS i`)).rows[0];
    c.release();
    held = undefined;

    const copyRate = rate(N, median(copyMs));
    const loadRate = rate(N, median(loadMs));
    const incRate = rate(CHANGES, median(incMs));
    const rbrRate = rate(rbrN, rbrMs);
    const lines: Array<[string, number, string]> = [
      [`psql \\copy CSV -> the table (median of ${copyMs.length})`, copyRate, `${copyMs.join(' / ')} ms`],
      [`engine initial load from Delta (median of ${loadMs.length})`, loadRate, `${loadMs.join(' / ')} ms, ${readerNote(...loadReadMs.slice(0, loadMs.length))} (+ ${reloadMs} ms before row-by-row, not in the median)`],
      [`engine incremental ${fmt(CHANGES)} changes (median of ${incMs.length})`, incRate, `${incMs.join(' / ')} ms, ${readerNote(...incReadMs)}`],
      [`row-by-row ON CONFLICT, 1 txn (${fmt(rbrN)} sample)`, rbrRate, `${rbrMs} ms; ${fmt(CHANGES)} changes would take ~${Math.round(CHANGES / rbrRate)} s`],
    ];
    console.log('');
    console.log(`target ${size?.t} + indexes ${size?.i}; constraints ${expectedConstraints}`);
    console.log(`last incremental: ${fmt(lastInc?.updated ?? 0)} updated, ${fmt(lastInc?.deleted ?? 0)} deleted, ${fmt(lastInc?.unchanged ?? 0)} unchanged; WAL median ${fmt(median(incWal))} MB`);
    console.log(`${'method'.padEnd(50)} ${'rows/s'.padStart(9)}  ${'vs \\copy'.padStart(8)}  ${'vs row-by-row'.padStart(13)}  detail`);
    for (const [name, r, detail] of lines) {
      console.log(`${name.padEnd(50)} ${fmt(r).padStart(9)}  ${(r / copyRate).toFixed(2).padStart(7)}x  ${(r / rbrRate).toFixed(1).padStart(12)}x  ${detail}`);
    }
    console.log(
      `peak RSS: engine worker (${args.tsx ? 'tsx' : 'bundled, plain node'}; every initial load and incremental run) ${mb(engineRss)}; ` +
        `bench process (CSV export, CDF sample, row-by-row) ${mb(process.resourceUsage().maxRSS * 1024)}`,
    );
    console.log(
      `per repetition (each engine run against the \\copy of the same repetition): ` +
        copyMs.map((cm, i) => `rep ${i + 1}: initial ${(cm / (loadMs[i] as number)).toFixed(2)}x, incremental ${(rate(CHANGES, incMs[i] as number) / rate(N, cm)).toFixed(2)}x`).join('; '),
    );
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    console.log(
      `targets${faithful ? '' : ' (NOT judged: not the faithful configuration)'}: initial load >= 0.7x \\copy: ${verdict(loadRate / copyRate >= 0.7)}; ` +
        `incremental >= 0.4x \\copy: ${verdict(incRate / copyRate >= 0.4)}; >= 50x row-by-row: ${verdict(incRate / rbrRate >= 50)}; ` +
        `engine peak RSS <= 300 MB: ${verdict(engineRss <= 300 * 2 ** 20)} (${mb(engineRss)})`,
    );
    console.log(`total ${Math.round((Date.now() - t0) / 1000)} s, load average now ${loadAvg()}`);
  } finally {
    // A client still checked out (after an error) would make pool.end() wait forever.
    held?.release(true);
    await worker?.stop();
    await pool.end();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
