/**
 * Postgres target benchmark: `npx tsx bench/pgBench.ts [rows]` (default 1,000,000).
 * One throwaway PostgreSQL cluster (fsync on), the same generated customer rows for every
 * method, one run each:
 *   1. `psql \copy` of a CSV into a table with its primary key (the baseline),
 *   2. initialLoad (swap) streaming the same rows generated in JS,
 *   3. 100k changes (90% updates, 10% deletes) with applyChanges,
 *   4. a row-by-row INSERT ... ON CONFLICT loop on a 5k-row sample (extrapolated).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Row } from '../src/sync/delta/types';
import { applyChanges } from '../src/sync/postgres/applyChanges';
import { createPool } from '../src/sync/postgres/createPool';
import { initialLoad } from '../src/sync/postgres/initialLoad';
import { defaultTargetColumns, renderCreateTable } from '../src/sync/postgres/renderCreateTable';
import { ensureStateTables } from '../src/sync/postgres/stateTables';
import { startThrowawayServer } from '../test/helpers/postgres';
import { dec, field, prim } from '../test/helpers/postgresFields';

const N = Number(process.argv[2] ?? 1_000_000);
const CHANGES = Math.min(100_000, Math.floor(N / 10));
const SAMPLE = 5_000;
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

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const rate = (rows: number, ms: number): number => Math.round((rows / ms) * 1000);
const fmt = (n: number): string => n.toLocaleString('en-US');

async function main(): Promise<void> {
  const t0 = Date.now();
  const server = await startThrowawayServer({ fast: false });
  const url = server.adminUrl;
  const pool = createPool(url, { max: 4 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-bench-'));
  fs.chmodSync(tmp, 0o755);
  try {
    console.log(`PostgreSQL ${(await pool.query('SHOW server_version')).rows[0].server_version}, fsync=${(await pool.query('SHOW fsync')).rows[0].fsync}, ${N.toLocaleString('en-US')} rows, ${os.cpus().length} cores`);
    const c0 = await pool.connect();
    await ensureStateTables(c0);
    c0.release();

    // 1. psql \copy baseline: CSV written first (not timed), then \copy into an indexed table.
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
    await pool.query(renderCreateTable({ name: 'customers_psql' }, columns, key));
    let t = Date.now();
    execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-c', `\\copy customers_psql FROM '${csv}' WITH (FORMAT csv)`], { stdio: 'pipe' });
    const psqlMs = Date.now() - t;
    const psqlRate = rate(N, psqlMs);
    console.log(`psql \\copy (CSV, table with PK):          ${fmt(psqlRate)} rows/s (${psqlMs} ms)`);

    // 2. initialLoad swap: rows generated in JS while streaming (generation is inside the timing).
    t = Date.now();
    const load = await initialLoad(pool, { table: { name: 'customers' }, columns, key, rows: batches(N, (i) => customer(i)), mode: 'swap', checkpoint: { pipeline: 'bench', source: 'generated', version: 0, commitTimestamp: Date.now() } });
    const loadMs = Date.now() - t;
    const loadRate = rate(N, loadMs);
    console.log(`initialLoad swap (JS rows -> COPY, PK after): ${fmt(loadRate)} rows/s (${loadMs} ms: copy ${load.timings.copyMs}, index+analyze ${load.timings.indexMs}, swap+commit ${load.timings.commitMs}) = ${(loadRate / psqlRate).toFixed(2)}x \\copy`);

    // 3. incremental: CHANGES changes spread over the table, 90% updates, 10% deletes.
    const stride = Math.floor(N / CHANGES);
    const upserts = (function* () {
      for (const b of batches(CHANGES, (j) => customer(j * stride, 1))) yield b.filter((_, idx) => (idx % 10) !== 9);
    })();
    const deletes = (function* () {
      for (const b of batches(CHANGES, (j) => customer(j * stride, 1))) yield b.filter((_, idx) => (idx % 10) === 9).map((r) => ({ customer_id: r.customer_id }));
    })();
    const client = await pool.connect();
    t = Date.now();
    const applied = await applyChanges(client, { table: { name: 'customers' }, columns, key, upserts, deletes, checkpoint: { pipeline: 'bench', source: 'generated', version: 1, commitTimestamp: Date.now() } });
    const applyMs = Date.now() - t;
    const applyRate = rate(CHANGES, applyMs);
    console.log(`applyChanges (${fmt(CHANGES)} changes: ${fmt(applied.updated)} updated, ${fmt(applied.deleted)} deleted, ${applied.inserted} inserted, ${applied.unchanged} unchanged): ${fmt(applyRate)} changes/s (${applyMs} ms) = ${(applyRate / psqlRate).toFixed(2)}x \\copy`);

    // 4. row-by-row INSERT ... ON CONFLICT on a sample (each statement autocommits), extrapolated.
    const sql = `INSERT INTO customers (customer_id, full_name, email, segment, last_purchase_date, total_spend, propensity_score, is_active)
                 VALUES ($1, $2, $3, $4, $5::timestamptz, $6::numeric, $7, $8)
                 ON CONFLICT (customer_id) DO UPDATE SET full_name = EXCLUDED.full_name, email = EXCLUDED.email, segment = EXCLUDED.segment,
                   last_purchase_date = EXCLUDED.last_purchase_date, total_spend = EXCLUDED.total_spend, propensity_score = EXCLUDED.propensity_score, is_active = EXCLUDED.is_active`;
    const sampleStride = Math.floor(N / SAMPLE);
    t = Date.now();
    for (let j = 0; j < SAMPLE; j++) {
      const r = customer(j * sampleStride + 1, 2);
      await client.query({ name: 'rbr', text: sql, values: [r.customer_id, r.full_name, r.email, r.segment, new Date(Number((r.last_purchase_date as bigint) / 1000n)).toISOString(), r.total_spend, r.propensity_score, r.is_active] });
    }
    const rbrMs = Date.now() - t;
    const rbrRate = rate(SAMPLE, rbrMs);
    client.release();
    console.log(`row-by-row INSERT ... ON CONFLICT (sample of ${fmt(SAMPLE)} rows, extrapolated): ${fmt(rbrRate)} rows/s (${rbrMs} ms; ${fmt(CHANGES)} would take ~${Math.round(CHANGES / rbrRate)} s)`);
    console.log(`applyChanges vs row-by-row: ${(applyRate / rbrRate).toFixed(1)}x`);
    const rssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    console.log(`peak RSS of this process: ${rssMb} MB`);
    console.log(`targets: load >= 0.7x \\copy: ${loadRate / psqlRate >= 0.7 ? 'met' : 'MISSED'}; incremental >= 0.4x \\copy: ${applyRate / psqlRate >= 0.4 ? 'met' : 'MISSED'}; >= 50x row-by-row: ${applyRate / rbrRate >= 50 ? 'met' : 'MISSED'}; RSS <= 300 MB: ${rssMb <= 300 ? 'met' : 'MISSED'}`);
    console.log(`total ${Math.round((Date.now() - t0) / 1000)} s`);
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
