/**
 * Latency benchmark (issue 12, "network latency"): the engine's initial load and
 * incremental sync through a TCP proxy that adds a round-trip time, against the same runs
 * with no proxy, and against the seed's row-by-row INSERT loop through the same proxy.
 *
 *   npx tsx bench/latencyBench.ts [rows=100000 ...] [--reps 1] [--rtt 20] [--rbr 1000] [--update 0.1] [--no-handshake]
 *
 * Several sizes run one after the other, each `--reps` times, and a summary lists every
 * run's ratios with the load average it ran under: `100000 1000000 --reps 2` measures the
 * issue's size and bench/pgBench.ts's (1M rows, a 10% update: 100k changes). `--rbr 0`
 * leaves the row-by-row baseline out (at 1000 rows it takes 20-40 s per run).
 *
 * Source: a local Delta table (customer_profiles rows, src/fixtures/customerProfiles) with
 *   v1 a WRITE of `rows` rows and v2 an UPDATE of `--update` of them (cdc files), written
 *   into a temp folder each time.
 * Server: a throwaway cluster with the server's durability defaults (test/helpers/postgres,
 *   fast: false), or DATABASE_URL.
 * Latency: test/helpers/tcpProxy.ts, in a child process of its own (tcpProxyProcess.ts: its
 *   timers and socket work do not wait behind the engine's main thread, nor slow it down, as
 *   a real network would not), delays every chunk by rtt/2 each way (chunks in flight
 *   overlap, as on a real link, in order; no Nagle on its sockets; no bandwidth limit), and
 *   each new connection's first bytes by one more RTT, the TCP handshake a remote server
 *   costs (--no-handshake: not).
 * Methods (each on a table of its own):
 *   - engine, direct: SyncRunner initial load of v1, then incremental sync of v2;
 *   - engine, through the proxy: the same;
 *   - row-by-row through the proxy: `--rbr` rows of the loaded table, the seed article's
 *     foreachBatch loop as psycopg2 runs it (see rowByRow): a connection, BEGIN, one
 *     `INSERT ... VALUES ... ON CONFLICT DO UPDATE` simple query per row, COMMIT. Reading
 *     those rows is not timed.
 * Prints rows/s for each and the ratios: proxied / direct (target >= 0.8) and engine through
 * the proxy / row-by-row through the proxy (target >= 200).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { CUSTOMER_KEY, CUSTOMER_PROFILE_COLUMNS, customerAt, generateCustomers, upgradedCustomer } from '../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../src/fixtures/DeltaTableWriter';
import { parseMapping } from '../src/sync/mapping/loadMapping';
import { createPool } from '../src/sync/postgres/createPool';
import { openSource } from '../src/sync/open/openSource';
import { mappingTarget } from '../src/sync/open/openTarget';
import { SyncRunner } from '../src/sync/run/SyncRunner';
import { startTcpProxyProcess } from '../test/helpers/tcpProxyProcess';
import { benchDatabase, loadLine, runBench } from './benchSetup';

interface Args {
  sizes: number[];
  reps: number;
  rttMs: number;
  rbrRows: number;
  updateFraction: number;
  handshake: boolean;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { sizes: [], reps: 1, rttMs: 20, rbrRows: 1000, updateFraction: 0.1, handshake: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a number`);
      return v;
    };
    if (a === '--rtt') out.rttMs = num();
    else if (a === '--rbr') out.rbrRows = Math.round(num());
    else if (a === '--reps') out.reps = Math.max(1, Math.round(num()));
    else if (a === '--update') out.updateFraction = Math.min(1, num());
    else if (a === '--no-handshake') out.handshake = false;
    else if (/^\d+$/.test(a)) out.sizes.push(Number(a));
    else throw new Error(`unknown argument ${a} (usage: latencyBench.ts [rows ...] [--reps n] [--rtt ms] [--rbr rows] [--update fraction] [--no-handshake])`);
  }
  if (out.sizes.length === 0) out.sizes.push(100_000);
  return out;
}

async function writeSource(dir: string, rows: number, updateFraction: number): Promise<{ updated: number }> {
  const w = await DeltaTableWriter.create(dir, { columns: [...CUSTOMER_PROFILE_COLUMNS], configuration: { 'delta.enableChangeDataFeed': 'true' }, name: 'latency' });
  await w.append(generateCustomers(rows, 42), { rowsPerFile: 50_000 });
  const step = Math.max(1, Math.round(1 / Math.max(updateFraction, 1e-9)));
  const upd = [];
  for (let i = 1; i <= rows; i += step) upd.push(upgradedCustomer(customerAt(i, 42)));
  await w.update(CUSTOMER_KEY, upd, { rowsPerFile: 50_000 });
  return { updated: upd.length };
}

async function engineRuns(url: string, source: string, table: string): Promise<{ initialMs: number; incrementalMs: number; loaded: number; changed: number }> {
  const mapping = parseMapping({ name: `latency-${table}`, source: { type: 'delta', path: source }, target: { connection: 'bench', table }, key: [CUSTOMER_KEY] });
  const pool = createPool(url, { max: 4 });
  const src = await openSource(mapping.source);
  try {
    const runner = new SyncRunner(mapping, src, mappingTarget(pool, mapping.target));
    let t = performance.now();
    const initial = await runner.run({ mode: 'initial', toVersion: 1, maxAttempts: 1 });
    const initialMs = performance.now() - t;
    t = performance.now();
    const inc = await runner.run({ mode: 'incremental', toVersion: 2, maxAttempts: 1 });
    const incrementalMs = performance.now() - t;
    return { initialMs, incrementalMs, loaded: initial.inserted, changed: inc.inserted + inc.updated + inc.deleted + inc.unchanged };
  } finally {
    await pool.end();
    await (src as { close?: () => Promise<void> }).close?.();
  }
}

/**
 * The seed article's incremental loop (Step 4, `upsert_to_neon`), as psycopg2 runs it:
 * per micro-batch a new connection, then one `cur.execute(INSERT ... VALUES (...) ON
 * CONFLICT (key) DO UPDATE SET ...)` per row with the values interpolated client-side
 * (psycopg2 sends each as a simple query: one round trip per row, no prepared statement),
 * inside the transaction psycopg2 opens by itself (autocommit stays False, so a BEGIN goes
 * first), then `conn.commit()` and `conn.close()`. Timed from connect to close. The
 * article's `updated_at = NOW()` and `_commit_timestamp` guard are left out: the bench
 * table has neither column.
 */
async function rowByRow(directUrl: string, proxiedUrl: string, from: string, n: number): Promise<number> {
  const direct = new pg.Client({ connectionString: directUrl });
  await direct.connect();
  let rows: Array<Array<string | null>>;
  let cols: string[];
  try {
    await direct.query(`DROP TABLE IF EXISTS lat_rbr; CREATE TABLE lat_rbr (LIKE ${from} INCLUDING ALL)`);
    cols = (await direct.query<{ attname: string }>(`SELECT attname FROM pg_attribute WHERE attrelid = 'lat_rbr'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`)).rows.map((r) => r.attname);
    const list = cols.map((c) => `"${c}"::text`).join(', ');
    rows = (await direct.query<string[]>({ text: `SELECT ${list} FROM ${from} ORDER BY ${CUSTOMER_KEY} LIMIT $1`, values: [n], rowMode: 'array' })).rows;
  } finally {
    await direct.end();
  }
  const colList = cols.map((c) => `"${c}"`).join(', ');
  const set = cols.filter((c) => c !== CUSTOMER_KEY).map((c) => `"${c}" = EXCLUDED."${c}"`).join(', ');
  const t = performance.now();
  const c = new pg.Client({ connectionString: proxiedUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    for (const r of rows) {
      const values = r.map((v) => (v === null ? 'NULL' : pg.escapeLiteral(v))).join(', ');
      await c.query(`INSERT INTO lat_rbr (${colList}) VALUES (${values}) ON CONFLICT (${CUSTOMER_KEY}) DO UPDATE SET ${set}`);
    }
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
  return performance.now() - t;
}

async function dropTables(url: string, tables: readonly string[]): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(tables.map((t) => `DROP TABLE IF EXISTS public.${t}`).join(';\n'));
  } finally {
    await c.end();
  }
}

const rate = (rows: number, ms: number): number => Math.round(rows / (ms / 1000));

/** One measurement: a size's direct and proxied runs, and their ratios. */
interface Measured {
  rows: number;
  rep: number;
  load: string;
  initialVsDirect: number;
  incVsDirect: number;
}

async function measure(args: Args, url: string, proxiedUrl: string, dir: string, rows: number, rep: number): Promise<Measured> {
  const load = loadLine();
  console.log(`${new Date().toISOString()}  ${load}`);
  console.log(`source: ${rows} rows, then an update of ${Math.round(args.updateFraction * 100)}%; RTT through the proxy ${args.rttMs} ms${args.handshake ? ' (a TCP handshake RTT per new connection)' : ''}; run ${rep} of ${args.reps}`);
  const src = path.join(dir, `latency-${rows}-${rep}`);
  const { updated } = await writeSource(src, rows, args.updateFraction);
  // Tables (and pipelines) of their own per run: each run loads into a new table, as the first does.
  const suffix = `${rows}_${rep}`;
  const d = await engineRuns(url, src, `lat_direct_${suffix}`);
  const p = await engineRuns(proxiedUrl, src, `lat_proxied_${suffix}`);
  const rbrRows = Math.min(args.rbrRows, rows);
  const rbrMs = rbrRows > 0 ? await rowByRow(url, proxiedUrl, `public.lat_proxied_${suffix}`, rbrRows) : undefined;
  await dropTables(url, [`lat_direct_${suffix}`, `lat_proxied_${suffix}`, 'lat_rbr']);
  const row = (what: string, n: number, ms: number): string => `${what.padEnd(40)} ${String(n).padStart(9)} rows ${(ms / 1000).toFixed(2).padStart(8)} s ${String(rate(n, ms)).padStart(10)} rows/s`;
  console.log(row('engine initial load, direct', d.loaded, d.initialMs));
  console.log(row(`engine initial load, ${args.rttMs} ms RTT`, p.loaded, p.initialMs));
  console.log(row('engine incremental, direct', updated, d.incrementalMs));
  console.log(row(`engine incremental, ${args.rttMs} ms RTT`, updated, p.incrementalMs));
  if (rbrMs !== undefined) console.log(row(`row-by-row upserts, ${args.rttMs} ms RTT`, rbrRows, rbrMs));
  const ratio = (x: number): string => x.toFixed(x >= 10 ? 0 : 2);
  const initialVsDirect = d.initialMs / p.initialMs;
  const incVsDirect = d.incrementalMs / p.incrementalMs;
  console.log(`initial load through the proxy / direct:        ${ratio(initialVsDirect)}x (target >= 0.8) ${initialVsDirect >= 0.8 ? 'ok' : 'BELOW'}`);
  console.log(`incremental through the proxy / direct:         ${ratio(incVsDirect)}x (target >= 0.8) ${incVsDirect >= 0.8 ? 'ok' : 'BELOW'}`);
  if (rbrMs !== undefined) {
    const rbrRate = rbrRows / rbrMs;
    const initialVsRbr = p.loaded / p.initialMs / rbrRate;
    const incVsRbr = updated / p.incrementalMs / rbrRate;
    console.log(`initial load / row-by-row, both through proxy:  ${ratio(initialVsRbr)}x (target >= 200) ${initialVsRbr >= 200 ? 'ok' : 'BELOW'}`);
    console.log(`incremental / row-by-row, both through proxy:   ${ratio(incVsRbr)}x (target >= 200) ${incVsRbr >= 200 ? 'ok' : 'BELOW'}`);
  }
  if (d.changed !== updated || p.changed !== updated) console.log(`note: the incremental runs counted ${d.changed} / ${p.changed} changed rows, expected ${updated}`);
  console.log(`after: ${loadLine()}`);
  return { rows, rep, load, initialVsDirect, incVsDirect };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const db = await benchDatabase('latency');
  const { url, dir } = db;
  const u = new URL(url);
  const proxy = await startTcpProxyProcess({ host: u.hostname, port: Number(u.port || 5432) }, { latencyMs: args.rttMs / 2, handshakeMs: args.handshake ? args.rttMs : 0 });
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  try {
    console.log(`proxy pid ${proxy.pid}`);
    const all: Measured[] = [];
    for (const rows of args.sizes) {
      for (let rep = 1; rep <= args.reps; rep++) {
        all.push(await measure(args, url, proxied.toString(), dir, rows, rep));
        // Each run's source is written anew; the last one's is not needed any more.
        fs.rmSync(path.join(dir, `latency-${rows}-${rep}`), { recursive: true, force: true });
      }
    }
    if (all.length > 1) {
      console.log('\nsummary (proxied rows/s over direct rows/s of the same sync, same run):');
      for (const m of all) console.log(`  ${String(m.rows).padStart(8)} rows, run ${m.rep}: initial ${m.initialVsDirect.toFixed(2)}x, incremental ${m.incVsDirect.toFixed(2)}x  (${m.load} at its start)`);
    }
  } finally {
    await proxy.close();
    await db.close();
  }
}

runBench(main);
