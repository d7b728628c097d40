/**
 * Where does the time of an incremental apply go? `npx tsx bench/applyExperiments.ts [rows] [variants]`
 * Loads `rows` customers once (initialLoad swap, then VACUUM ANALYZE + CHECKPOINT like an
 * autovacuumed target), then runs each variant on its own disjoint set of 10% of the keys
 * (90% updates, 10% deletes), timing every step, with VACUUM + CHECKPOINT between variants.
 * Exploratory: the figures it prints fed the choices in applyChanges/mergeSql.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { ClientBase } from 'pg';
import { CUSTOMER_PROFILE_COLUMNS } from '../src/fixtures/customerProfiles';
import type { Row } from '../src/sync/delta/types';
import { CopyRowEncoder } from '../src/sync/postgres/copyEncoder';
import { copyRows } from '../src/sync/postgres/copyRows';
import { createPool } from '../src/sync/postgres/createPool';
import { initialLoad } from '../src/sync/postgres/initialLoad';
import { defaultTargetColumns, renderCreateTable } from '../src/sync/postgres/renderCreateTable';
import { ensureStateTables } from '../src/sync/postgres/stateTables';
import { fieldsOf } from '../test/builders/deltaFields';
import { startThrowawayServer } from '../test/helpers/postgres';

const N = Number(process.argv[2] ?? 1_000_000);
const ONLY = process.argv[3]?.split(',');
const CHANGES = Math.min(100_000, Math.floor(N / 10));
const BATCH = 10_000;
const SEGMENTS = ['consumer', 'smb', 'enterprise', 'public sector'];
const FIRST = ['Ada', 'Grace', 'Linus', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances'];
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Liskov', 'Thompson', 'Hamilton', 'Ritchie', 'Allen'];
const BASE_US = 1_600_000_000_000_000n;

const fields = fieldsOf(CUSTOMER_PROFILE_COLUMNS);
const columns = defaultTargetColumns(fields);
const keyCols = columns.filter((c) => c.name === 'customer_id');
const COLS = columns.map((c) => c.name).join(', ');
const NONKEY = columns.filter((c) => c.name !== 'customer_id').map((c) => c.name);

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

type Step = [string, number];
interface Ctx {
  c: ClientBase;
  up: Row[];
  del: Row[];
  steps: Step[];
  explain: boolean;
}

async function timed(ctx: Ctx, name: string, sql: string): Promise<void> {
  const t = performance.now();
  if (ctx.explain && /^\s*(WITH|INSERT|UPDATE|DELETE|MERGE)/i.test(sql)) {
    const r = await ctx.c.query(`EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF) ${sql}`);
    console.log(`  -- ${name}\n${r.rows.map((x: Record<string, string>) => '     ' + x['QUERY PLAN']).join('\n')}`);
  } else {
    await ctx.c.query(sql);
  }
  ctx.steps.push([name, performance.now() - t]);
}

async function step<T>(ctx: Ctx, name: string, f: () => Promise<T>): Promise<T> {
  const t = performance.now();
  const r = await f();
  ctx.steps.push([name, performance.now() - t]);
  return r;
}

async function stage(ctx: Ctx, opts: { orderedCopy?: boolean; analyze?: boolean } = {}): Promise<void> {
  await timed(ctx, 'create temp', `CREATE TEMP TABLE su (LIKE customers) ON COMMIT DROP`);
  await timed(ctx, 'create temp', `CREATE TEMP TABLE sd (customer_id text) ON COMMIT DROP`);
  const up = opts.orderedCopy ? [...ctx.up].sort((a, b) => ((a.customer_id as string) < (b.customer_id as string) ? -1 : 1)) : ctx.up;
  await step(ctx, 'copy upserts', () => copyRows(ctx.c, { name: 'su' }, columns, [up]));
  await step(ctx, 'copy deletes', () => copyRows(ctx.c, { name: 'sd' }, keyCols, [ctx.del]));
  if (opts.analyze !== false) {
    await timed(ctx, 'analyze', 'ANALYZE su');
    await timed(ctx, 'analyze', 'ANALYZE sd');
  }
}

async function nestLoopOnly(ctx: Ctx): Promise<void> {
  await timed(ctx, 'set', 'SET LOCAL enable_hashjoin = off');
  await timed(ctx, 'set', 'SET LOCAL enable_mergejoin = off');
}

const distinct = (a: string, b: string): string => `(${NONKEY.map((c) => `${a}.${c}`).join(', ')}) IS DISTINCT FROM (${NONKEY.map((c) => `${b}.${c}`).join(', ')})`;
const setList = (src: string): string => NONKEY.map((c) => `${c} = ${src}.${c}`).join(', ');
const upsertSql = (order: string, where = true): string => `WITH r AS (INSERT INTO customers AS t (${COLS}) SELECT ${COLS} FROM su ${order}
  ON CONFLICT (customer_id) DO UPDATE SET ${setList('EXCLUDED')} ${where ? `WHERE ${distinct('t', 'EXCLUDED')}` : ''} RETURNING (t.xmax = 0) AS ins)
  SELECT count(*) FILTER (WHERE ins) AS i, count(*) FILTER (WHERE NOT ins) AS u FROM r`;
const deleteSql = `DELETE FROM customers AS t USING sd AS d WHERE t.customer_id = d.customer_id`;

const variants: Record<string, (ctx: Ctx) => Promise<void>> = {
  current: async (ctx) => {
    await stage(ctx);
    await timed(ctx, 'delete using', deleteSql);
    await timed(ctx, 'insert on conflict', upsertSql(''));
  },
  orderByKey: async (ctx) => {
    await stage(ctx);
    await timed(ctx, 'delete using', deleteSql);
    await timed(ctx, 'insert on conflict (order by key)', upsertSql('ORDER BY customer_id'));
  },
  orderByCtid: async (ctx) => {
    // Rows in the target's physical order: join to find the heap position, then sort by it.
    await stage(ctx);
    await timed(ctx, 'delete using', deleteSql);
    await timed(ctx, 'insert on conflict (order by target ctid)', `WITH r AS (INSERT INTO customers AS t (${COLS}) SELECT ${columns.map((c) => 's.' + c.name).join(', ')} FROM su s LEFT JOIN customers x ON x.customer_id = s.customer_id ORDER BY x.ctid
  ON CONFLICT (customer_id) DO UPDATE SET ${setList('EXCLUDED')} WHERE ${distinct('t', 'EXCLUDED')} RETURNING (t.xmax = 0) AS ins)
  SELECT count(*) FILTER (WHERE ins) AS i, count(*) FILTER (WHERE NOT ins) AS u FROM r`);
  },
  noWhere: async (ctx) => {
    await stage(ctx);
    await timed(ctx, 'delete using', deleteSql);
    await timed(ctx, 'insert on conflict (no distinct check)', upsertSql('', false));
  },
  updateFrom: async (ctx) => {
    await stage(ctx);
    await timed(ctx, 'delete using', deleteSql);
    await timed(ctx, 'update from', `UPDATE customers AS t SET ${setList('s')} FROM su s WHERE t.customer_id = s.customer_id AND ${distinct('t', 's')}`);
    await timed(ctx, 'insert missing', `INSERT INTO customers (${COLS}) SELECT ${columns.map((c) => 's.' + c.name).join(', ')} FROM su s WHERE NOT EXISTS (SELECT 1 FROM customers t WHERE t.customer_id = s.customer_id)`);
  },
  updateFromNoHash: async (ctx) => {
    await stage(ctx);
    await timed(ctx, 'no hashjoin', 'SET LOCAL enable_hashjoin = off');
    await timed(ctx, 'no mergejoin', 'SET LOCAL enable_mergejoin = off');
    await timed(ctx, 'delete using', deleteSql);
    await timed(ctx, 'update from (nested loop)', `UPDATE customers AS t SET ${setList('s')} FROM su s WHERE t.customer_id = s.customer_id AND ${distinct('t', 's')}`);
    await timed(ctx, 'insert missing', `INSERT INTO customers (${COLS}) SELECT ${columns.map((c) => 's.' + c.name).join(', ')} FROM su s WHERE NOT EXISTS (SELECT 1 FROM customers t WHERE t.customer_id = s.customer_id)`);
  },
  merge: async (ctx) => {
    await stage(ctx);
    await timed(ctx, 'delete using', deleteSql);
    await timed(ctx, 'merge', `MERGE INTO customers AS t USING su s ON t.customer_id = s.customer_id
      WHEN MATCHED AND ${distinct('t', 's')} THEN UPDATE SET ${setList('s')}
      WHEN NOT MATCHED THEN INSERT (${COLS}) VALUES (${columns.map((c) => 's.' + c.name).join(', ')})`);
  },
  workMem: async (ctx) => {
    await timed(ctx, 'work_mem', `SET LOCAL work_mem = '256MB'`);
    await stage(ctx);
    await timed(ctx, 'delete using', deleteSql);
    await timed(ctx, 'insert on conflict', upsertSql(''));
  },
  nlDelete: async (ctx) => {
    await stage(ctx, { analyze: false });
    await nestLoopOnly(ctx);
    await timed(ctx, 'delete using (nested loop)', deleteSql);
    await timed(ctx, 'insert on conflict', upsertSql(''));
  },
  nlOrdered: async (ctx) => {
    await stage(ctx, { analyze: false });
    await nestLoopOnly(ctx);
    await timed(ctx, 'delete using (nested loop)', deleteSql);
    await timed(ctx, 'insert on conflict (order by key)', upsertSql('ORDER BY customer_id'));
  },
  nlOrderedWm: async (ctx) => {
    await stage(ctx, { analyze: false });
    await nestLoopOnly(ctx);
    await timed(ctx, 'work_mem', `SET LOCAL work_mem = '64MB'`);
    await timed(ctx, 'delete using (nested loop)', deleteSql);
    await timed(ctx, 'insert on conflict (order by key)', upsertSql('ORDER BY customer_id'));
  },
  nlOrderedCopy: async (ctx) => {
    // Sorted before COPY (in JS) instead of ORDER BY in SQL.
    await stage(ctx, { analyze: false, orderedCopy: true });
    await nestLoopOnly(ctx);
    await timed(ctx, 'delete using (nested loop)', deleteSql);
    await timed(ctx, 'insert on conflict (copied in key order)', upsertSql(''));
  },
  mergeNLOrdered: async (ctx) => {
    await stage(ctx, { analyze: false });
    await nestLoopOnly(ctx);
    await timed(ctx, 'work_mem', `SET LOCAL work_mem = '64MB'`);
    await timed(ctx, 'delete using (nested loop)', deleteSql);
    await timed(ctx, 'merge (nested loop, by key)', `MERGE INTO customers AS t USING (SELECT * FROM su ORDER BY customer_id) s ON t.customer_id = s.customer_id
      WHEN MATCHED AND ${distinct('t', 's')} THEN UPDATE SET ${setList('s')}
      WHEN NOT MATCHED THEN INSERT (${COLS}) VALUES (${columns.map((c) => 's.' + c.name).join(', ')})`);
  },
  updateNLOrdered: async (ctx) => {
    await stage(ctx, { analyze: false });
    await nestLoopOnly(ctx);
    await timed(ctx, 'work_mem', `SET LOCAL work_mem = '64MB'`);
    await timed(ctx, 'delete using (nested loop)', deleteSql);
    await timed(ctx, 'update from (nested loop, by key)', `UPDATE customers AS t SET ${setList('s')} FROM (SELECT * FROM su ORDER BY customer_id) s WHERE t.customer_id = s.customer_id AND ${distinct('t', 's')}`);
    await timed(ctx, 'insert missing (nested loop)', `INSERT INTO customers (${COLS}) SELECT ${columns.map((c) => 's.' + c.name).join(', ')} FROM su s WHERE NOT EXISTS (SELECT 1 FROM customers t WHERE t.customer_id = s.customer_id)`);
  },
  updateFromSeq: async (ctx) => {
    // Hash join over a sequential scan of the target: rows are updated in physical order.
    await stage(ctx, { analyze: false });
    await nestLoopOnly(ctx);
    await timed(ctx, 'delete using (nested loop)', deleteSql);
    await timed(ctx, 'hash on', 'SET LOCAL enable_hashjoin = on');
    await timed(ctx, 'nestloop off', 'SET LOCAL enable_nestloop = off');
    await timed(ctx, 'update from (hash, seq scan)', `UPDATE customers AS t SET ${setList('s')} FROM su s WHERE t.customer_id = s.customer_id AND ${distinct('t', 's')}`);
    await timed(ctx, 'nestloop on', 'SET LOCAL enable_nestloop = on');
    await timed(ctx, 'insert missing', `INSERT INTO customers (${COLS}) SELECT ${columns.map((c) => 's.' + c.name).join(', ')} FROM su s WHERE NOT EXISTS (SELECT 1 FROM customers t WHERE t.customer_id = s.customer_id)`);
  },
  ctidAll: async (ctx) => {
    // Deletes and updates in the target's physical order, both through ctid.
    await stage(ctx, { analyze: false });
    await nestLoopOnly(ctx);
    await timed(ctx, 'delete by ctid', `DELETE FROM customers t WHERE t.ctid = ANY (ARRAY(SELECT x.ctid FROM sd d JOIN customers x ON x.customer_id = d.customer_id ORDER BY x.ctid))`);
    await timed(ctx, 'upsert ordered by ctid', `WITH r AS (INSERT INTO customers AS t (${COLS}) SELECT ${columns.map((c) => 's.' + c.name).join(', ')} FROM su s LEFT JOIN customers x ON x.customer_id = s.customer_id ORDER BY x.ctid
  ON CONFLICT (customer_id) DO UPDATE SET ${setList('EXCLUDED')} WHERE ${distinct('t', 'EXCLUDED')} RETURNING (t.xmax = 0) AS ins)
  SELECT count(*) FILTER (WHERE ins) AS i, count(*) FILTER (WHERE NOT ins) AS u FROM r`);
  },
  copyOnly: async (ctx) => {
    await stage(ctx);
  },
};

async function main(): Promise<void> {
  const server = await startThrowawayServer({ fast: false });
  const pool = createPool(server.adminUrl, { max: 2 });
  try {
    const c = await pool.connect();
    console.log(`PostgreSQL ${(await c.query('SHOW server_version')).rows[0].server_version}, ${N} rows, ${os.cpus().length} cores, shared_buffers ${(await c.query('SHOW shared_buffers')).rows[0].shared_buffers}, temp_buffers ${(await c.query('SHOW temp_buffers')).rows[0].temp_buffers}`);
    await ensureStateTables(c);
    void renderCreateTable;
    await initialLoad(pool, { table: { name: 'customers' }, columns, key: ['customer_id'], rows: batches(N, (i) => customer(i)), mode: 'swap', checkpoint: { pipeline: 'x', source: 'x', version: 0, commitTimestamp: null } });
    await c.query('VACUUM ANALYZE customers');
    await c.query('CHECKPOINT');
    const sizes = await c.query(`SELECT pg_size_pretty(pg_table_size('customers')) t, pg_size_pretty(pg_indexes_size('customers')) i`);
    console.log(`table ${sizes.rows[0].t}, index ${sizes.rows[0].i}`);

    // Pure JS cost of encoding the change rows (no server).
    {
      const enc = new CopyRowEncoder(columns);
      const rows = [...batches(CHANGES, (j) => customer(j * 10, 1))].flat();
      const t = performance.now();
      let bytes = 0;
      for (const r of rows) bytes += enc.encode(r).length;
      console.log(`JS encode of ${rows.length} rows: ${(performance.now() - t).toFixed(0)} ms (${bytes} chars)`);
      const t2 = performance.now();
      [...batches(CHANGES, (j) => customer(j * 10, 1))];
      console.log(`JS generation of ${CHANGES} rows: ${(performance.now() - t2).toFixed(0)} ms`);
    }

    const names = ONLY ?? Object.keys(variants);
    const rounds = Number(process.env.ROUNDS ?? 2);
    // A pristine copy in the same physical order: every variant starts from the same state.
    await c.query('CREATE TABLE pristine AS SELECT * FROM customers');
    const stride = Math.floor(N / CHANGES);
    const all = [...batches(CHANGES, (j) => customer(j * stride, 1))].flat();
    const up = all.filter((_, i) => i % 10 !== 9);
    const del = all.filter((_, i) => i % 10 === 9).map((r) => ({ customer_id: r.customer_id }));
    const results = new Map<string, number[]>();
    for (let round = 1; round <= rounds; round++) {
      for (const name of names) {
        const v = variants[name];
        if (!v) throw new Error(`no variant ${name}`);
        await c.query('DROP TABLE customers');
        // FILLFACTOR=n: the target keeps n% of each page filled (room for HOT updates); EMAIL=1 adds the seed's UNIQUE (email).
        await c.query(`CREATE TABLE customers ${process.env.FILLFACTOR ? `WITH (fillfactor = ${Number(process.env.FILLFACTOR)}) ` : ''}AS SELECT * FROM pristine`);
        await c.query('ALTER TABLE customers ADD PRIMARY KEY (customer_id)');
        if (process.env.EMAIL === '1') await c.query('ALTER TABLE customers ADD UNIQUE (email)');
        await c.query('VACUUM ANALYZE customers');
        if (process.env.STEADY === '1') {
          // A target that has seen updates before: 10% of rows updated once, then vacuumed.
          await c.query(`UPDATE customers SET is_active = NOT is_active WHERE hashtext(customer_id) % 10 = 3`);
          await c.query('VACUUM ANALYZE customers');
        }
        await c.query('CHECKPOINT');
        const ctx: Ctx = { c, up, del, steps: [], explain: process.env.EXPLAIN === '1' && round === 1 };
        const lsn0 = (await c.query('SELECT pg_current_wal_lsn() l')).rows[0].l as string;
        const pid = (await c.query('SELECT pg_backend_pid() p')).rows[0].p as number;
        const cpu = (): number => {
          // utime + stime of the backend in clock ticks (100/s): CPU it used, whatever else the machine runs.
          const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
          return (Number(f[11]) + Number(f[12])) * 10;
        };
        const cpu0 = cpu();
        const ncpu0 = process.cpuUsage();
        const t = performance.now();
        await step(ctx, 'begin', () => c.query('BEGIN'));
        await v(ctx);
        await step(ctx, 'commit', () => c.query('COMMIT'));
        const total = performance.now() - t;
        const cpuMs = cpu() - cpu0;
        const n = process.cpuUsage(ncpu0);
        ctx.steps.push(['[server cpu]', cpuMs], ['[node cpu]', (n.user + n.system) / 1000]);
        const wal = (await c.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) d`, [lsn0])).rows[0].d as string;
        const merged = new Map<string, number>();
        for (const [n, ms] of ctx.steps) merged.set(n, (merged.get(n) ?? 0) + ms);
        results.set(name, [...(results.get(name) ?? []), total]);
        console.log(`round ${round} ${name.padEnd(18)} total ${total.toFixed(0).padStart(5)} ms = ${Math.round((CHANGES / total) * 1000)} changes/s, WAL ${(Number(wal) / 1e6).toFixed(0)} MB | ${[...merged].map(([n, ms]) => `${n} ${ms.toFixed(0)}`).join(', ')}`);
      }
    }
    for (const [name, ts] of results) console.log(`${name.padEnd(18)} ${ts.map((x) => x.toFixed(0)).join(' / ')} ms  best ${Math.round((CHANGES / Math.min(...ts)) * 1000)} changes/s`);
    c.release();
  } finally {
    await pool.end();
    await server.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
