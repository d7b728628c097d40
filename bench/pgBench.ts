/**
 * Postgres target benchmark: `npx tsx bench/pgBench.ts [rows] [reps]` (default 1,000,000 rows,
 * 3 repetitions). One throwaway PostgreSQL cluster (fsync, full_page_writes and
 * synchronous_commit on: the server's defaults), the same generated customer rows for
 * every method, all in one run:
 *   1. `psql \copy` of a CSV into a fresh table with its primary key (the baseline),
 *   2. initialLoad (swap) streaming the same rows generated in JS (generation included),
 *   3. applyChanges of 10% of the rows as changes (90% updates, 10% deletes) onto the
 *      loaded table,
 *   4. the seed article's row-by-row loop: one INSERT ... ON CONFLICT per row, one round trip
 *      each, all in one transaction committed at the end of the batch, on a 5k sample.
 * Fairness: every timed step starts after CHECKPOINT (no checkpoint lands inside one run
 * and not another). The incremental target is in the state a real one would be in: loaded,
 * then VACUUM ANALYZE (as autovacuum would), then checkpointed; each repetition starts from
 * an identical copy of it. The change rows are generated before timing, as the CSV of the
 * baseline is written before timing. \copy and applyChanges alternate so that load from
 * other processes on the machine hits both alike; medians are reported.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PoolClient } from 'pg';
import type { Row } from '../src/sync/delta/types';
import { applyChanges } from '../src/sync/postgres/applyChanges';
import type { ApplyResult, ApplyTimings } from '../src/sync/postgres/applyChanges';
import { createPool } from '../src/sync/postgres/createPool';
import { initialLoad } from '../src/sync/postgres/initialLoad';
import { defaultTargetColumns, renderCreateTable } from '../src/sync/postgres/renderCreateTable';
import { ensureStateTables } from '../src/sync/postgres/stateTables';
import { startThrowawayServer } from '../test/helpers/postgres';
import { dec, field, prim } from '../test/helpers/postgresFields';

const N = Number(process.argv[2] ?? 1_000_000);
const REPS = Math.max(1, Number(process.argv[3] ?? 3));
const CHANGES = Math.min(100_000, Math.floor(N / 10));
const SAMPLE = Math.min(5_000, CHANGES);
const BATCH = 10_000;
const SEGMENTS = ['consumer', 'smb', 'enterprise', 'public sector'];
const FIRST = ['Ada', 'Grace', 'Linus', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances'];
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Liskov', 'Thompson', 'Hamilton', 'Ritchie', 'Allen'];
const BASE_US = 1_600_000_000_000_000n;

const fields = [
  field('customer_id', prim('string'), false),
  field('full_name', prim('string')),
  field('email', prim('string')),
  field('segment', prim('string')),
  field('last_purchase_date', prim('timestamp')),
  field('total_spend', dec(10, 2)),
  field('propensity_score', prim('double')),
  field('is_active', prim('boolean')),
];
const columns = defaultTargetColumns(fields);
const key = ['customer_id'];

/** Row i, keys in a scrambled order (i * 7919 mod N is a permutation for N = 10^k). */
function customer(i: number, version = 0): Row {
  const k = (i * 7919 + 13) % N;
  const f = FIRST[k % 8] as string;
  const l = LAST[(k >> 3) % 8] as string;
  return {
    customer_id: `C${String(k).padStart(8, '0')}`,
    full_name: `${f} ${l} ${k}`,
    email: `${f}.${l}.${k}@example.com`.toLowerCase(),
    segment: SEGMENTS[k % 4] as string,
    last_purchase_date: BASE_US + BigInt(k) * 1_000_003n + BigInt(version) * 86_400_000_000n,
    total_spend: `${(k * 37 + version * 11) % 100_000}.${String((k + version) % 100).padStart(2, '0')}`,
    propensity_score: ((k * 2654435761) % 1_000_000) / 1_000_000 + version / 1e7,
    is_active: (k + version) % 3 !== 0,
  };
}

function* batches(n: number, make: (i: number) => Row): Generator<Row[]> {
  for (let i = 0; i < n; i += BATCH) {
    const b: Row[] = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) b.push(make(j));
    yield b;
  }
}

function* inBatches(rows: readonly Row[]): Generator<Row[]> {
  for (let i = 0; i < rows.length; i += BATCH) yield rows.slice(i, i + BATCH);
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const rate = (rows: number, ms: number): number => Math.round((rows / ms) * 1000);
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function walBytesSince(c: PoolClient, lsn: string): Promise<number> {
  return Number((await c.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::text AS d', [lsn])).rows[0]?.d ?? 0);
}

async function currentLsn(c: PoolClient): Promise<string> {
  return (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l as string;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const server = await startThrowawayServer({ fast: false });
  const url = server.adminUrl;
  const pool = createPool(url, { max: 4 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-bench-'));
  fs.chmodSync(tmp, 0o755);
  try {
    const c = await pool.connect();
    const setting = async (name: string): Promise<string> => (await c.query<Record<string, string>>(`SHOW ${name}`)).rows[0]?.[name] ?? '?';
    console.log(
      `PostgreSQL ${await setting('server_version')}, fsync=${await setting('fsync')}, full_page_writes=${await setting('full_page_writes')}, synchronous_commit=${await setting('synchronous_commit')}, shared_buffers=${await setting('shared_buffers')}; ` +
        `${fmt(N)} rows, ${fmt(CHANGES)} changes, ${REPS} repetitions, ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`,
    );
    await ensureStateTables(c);

    // The CSV for \copy (not timed).
    const csv = path.join(tmp, 'customers.csv');
    const fd = fs.openSync(csv, 'w');
    for (const b of batches(N, (i) => customer(i))) {
      let s = '';
      for (const r of b) {
        const ts = new Date(Number((r.last_purchase_date as bigint) / 1000n)).toISOString().replace('Z', '') + String((r.last_purchase_date as bigint) % 1000n).padStart(3, '0') + '+00';
        s += `${r.customer_id as string},${csvField(r.full_name as string)},${r.email as string},${csvField(r.segment as string)},${ts},${r.total_spend as string},${String(r.propensity_score)},${r.is_active ? 't' : 'f'}\n`;
      }
      fs.writeSync(fd, s);
    }
    fs.closeSync(fd);

    // initialLoad swap: rows generated in JS while streaming (generation is inside the timing).
    await c.query('CHECKPOINT');
    let t = Date.now();
    const load = await initialLoad(pool, { table: { name: 'customers' }, columns, key, rows: batches(N, (i) => customer(i)), mode: 'swap', checkpoint: { pipeline: 'bench', source: 'generated', version: 0, commitTimestamp: Date.now() } });
    const loadMs = Date.now() - t;
    // The realistic incremental target: vacuumed and analyzed; kept as a pristine copy so
    // that every repetition starts from the same physical state.
    await c.query('VACUUM ANALYZE customers');
    await c.query('CREATE TABLE customers_pristine AS SELECT * FROM customers');
    const size = (await c.query<{ t: string; i: string }>(`SELECT pg_size_pretty(pg_table_size('customers')) AS t, pg_size_pretty(pg_indexes_size('customers')) AS i`)).rows[0];

    // The changes: every (N / CHANGES)th loaded row, in load order; 9 in 10 updated, 1 in 10 deleted.
    const stride = Math.floor(N / CHANGES);
    let gen = Date.now();
    const changed = [...batches(CHANGES, (j) => customer(j * stride, 1))].flat();
    const upserts = changed.filter((_, idx) => idx % 10 !== 9);
    const deletes = changed.filter((_, idx) => idx % 10 === 9).map((r) => ({ customer_id: r.customer_id }));
    gen = Date.now() - gen;

    const copyMs: number[] = [];
    const applyMs: number[] = [];
    const applyWal: number[] = [];
    const applyTimings: ApplyTimings[] = [];
    let applied: ApplyResult | undefined;
    for (let rep = 0; rep < REPS; rep++) {
      // psql \copy into a fresh table with its primary key.
      await c.query('DROP TABLE IF EXISTS customers_psql');
      await c.query(renderCreateTable({ name: 'customers_psql' }, columns, key));
      await c.query('CHECKPOINT');
      t = Date.now();
      execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-c', `\\copy customers_psql FROM '${csv}' WITH (FORMAT csv)`], { stdio: 'pipe' });
      copyMs.push(Date.now() - t);
      await c.query('DROP TABLE customers_psql');

      // applyChanges onto an identical copy of the loaded, vacuumed target.
      if (rep > 0) {
        await c.query('DROP TABLE customers');
        await c.query('CREATE TABLE customers AS SELECT * FROM customers_pristine');
        await c.query('ALTER TABLE customers ADD PRIMARY KEY (customer_id)');
        await c.query('VACUUM ANALYZE customers');
      }
      await c.query('CHECKPOINT');
      const lsn = await currentLsn(c);
      t = Date.now();
      applied = await applyChanges(c, { table: { name: 'customers' }, columns, key, upserts: inBatches(upserts), deletes: inBatches(deletes), checkpoint: { pipeline: 'bench', source: 'generated', version: 1 + rep, commitTimestamp: Date.now() } });
      applyMs.push(Date.now() - t);
      applyWal.push(await walBytesSince(c, lsn));
      if (applied.timings) applyTimings.push(applied.timings);
      console.log(`  rep ${rep + 1}: \\copy ${copyMs[rep]} ms, applyChanges ${applyMs[rep]} ms (${Object.entries(applied.timings ?? {}).map(([k, v]) => `${k.replace(/Ms$/, '')} ${v}`).join(', ')}), WAL ${fmt((applyWal[rep] as number) / 1e6)} MB`);
    }

    // Row by row on the same table state, as the seed's foreachBatch does it: one statement
    // per row, one transaction per batch (commit at the end), extrapolated from the sample.
    const sql = `INSERT INTO customers (customer_id, full_name, email, segment, last_purchase_date, total_spend, propensity_score, is_active)
                 VALUES ($1, $2, $3, $4, $5::timestamptz, $6::numeric, $7, $8)
                 ON CONFLICT (customer_id) DO UPDATE SET full_name = EXCLUDED.full_name, email = EXCLUDED.email, segment = EXCLUDED.segment,
                   last_purchase_date = EXCLUDED.last_purchase_date, total_spend = EXCLUDED.total_spend, propensity_score = EXCLUDED.propensity_score, is_active = EXCLUDED.is_active`;
    const sampleStride = Math.floor(N / SAMPLE);
    await c.query('CHECKPOINT');
    t = Date.now();
    await c.query('BEGIN');
    for (let j = 0; j < SAMPLE; j++) {
      const r = customer(j * sampleStride + 1, 2);
      await c.query({ name: 'rbr', text: sql, values: [r.customer_id, r.full_name, r.email, r.segment, new Date(Number((r.last_purchase_date as bigint) / 1000n)).toISOString(), r.total_spend, r.propensity_score, r.is_active] });
    }
    await c.query('COMMIT');
    const rbrMs = Date.now() - t;
    c.release();

    const psqlRate = rate(N, median(copyMs));
    const loadRate = rate(N, loadMs);
    const applyRate = rate(CHANGES, median(applyMs));
    const rbrRate = rate(SAMPLE, rbrMs);
    const rssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    const a = applied as ApplyResult;
    const rows: Array<[string, number, string]> = [
      [`psql \\copy CSV -> table with PK (median of ${REPS})`, psqlRate, copyMs.join(' / ') + ' ms'],
      [`initialLoad swap (JS rows -> COPY, PK built after)`, loadRate, `${loadMs} ms: copy ${load.timings.copyMs}, index+analyze ${load.timings.indexMs}, swap+commit ${load.timings.commitMs}`],
      [`applyChanges ${fmt(CHANGES)} changes (median of ${REPS})`, applyRate, applyMs.join(' / ') + ' ms'],
      [`row-by-row INSERT ON CONFLICT (${fmt(SAMPLE)} sample)`, rbrRate, `${rbrMs} ms; ${fmt(CHANGES)} would take ~${Math.round(CHANGES / rbrRate)} s`],
    ];
    console.log('');
    console.log(`table ${size?.t}, index ${size?.i}; last apply: ${fmt(a.updated)} updated, ${fmt(a.deleted)} deleted, ${fmt(a.inserted)} inserted, ${fmt(a.unchanged)} unchanged`);
    console.log(`${'method'.padEnd(52)} ${'rows/s'.padStart(9)}  ${'vs \\copy'.padStart(8)}  ${'vs row-by-row'.padStart(13)}  detail`);
    for (const [name, r, detail] of rows) {
      console.log(`${name.padEnd(52)} ${fmt(r).padStart(9)}  ${(r / psqlRate).toFixed(2).padStart(7)}x  ${(r / rbrRate).toFixed(1).padStart(12)}x  ${detail}`);
    }
    const step = (k: keyof ApplyTimings): string => `${fmt(median(applyTimings.map((x) => x[k])))} ms`;
    console.log(`applyChanges steps (median): prepare ${step('prepareMs')}, encode+COPY to staging ${step('stageMs')}, DELETE USING ${step('deleteMs')}, INSERT ON CONFLICT ${step('upsertMs')}, checkpoint+COMMIT ${step('commitMs')}; WAL per apply ${fmt(median(applyWal) / 1e6)} MB`);
    console.log(`change rows generated in JS before timing: ${gen} ms (not included above)`);
    console.log(`peak RSS of this process: ${rssMb} MB`);
    console.log(
      `targets: load >= 0.7x \\copy: ${loadRate / psqlRate >= 0.7 ? 'met' : 'MISSED'}; incremental >= 0.4x \\copy: ${applyRate / psqlRate >= 0.4 ? 'met' : 'MISSED'}; ` +
        `>= 50x row-by-row: ${applyRate / rbrRate >= 50 ? 'met' : 'MISSED'}; RSS <= 300 MB: ${rssMb <= 300 ? 'met' : 'MISSED'}`,
    );
    console.log(`total ${Math.round((Date.now() - t0) / 1000)} s, load average now ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  } finally {
    await pool.end();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
