/**
 * Reader benchmark: streams the snapshot of a customer_profiles table (8 columns, default
 * 1,000,000 rows at v1, every log mechanism in later versions) through DeltaTable and
 * reports rows/s and peak RSS. Target: peak RSS under 300 MB.
 *
 *   npx tsx bench/readBench.ts [--rows 1000000] [--batch-size 10000] [--cdf] [--regenerate]
 *
 * The table is generated once and cached under bench/.data/. Generation runs in a child
 * process so that its memory does not count towards the reader's peak RSS. Timings are
 * printed, never asserted; the row count is checked, since a fast wrong reader is useless.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createCustomerProfilesTable, customerProfilesPlan } from '../src/fixtures/customerProfiles';
import { DeltaTable } from '../src/sync/delta/DeltaTable';
import type { Row } from '../src/sync/delta/types';

interface Args {
  rows: number;
  batchSize: number;
  cdf: boolean;
  regenerate: boolean;
  generateInto?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rows: 1_000_000, batchSize: 10_000, cdf: false, regenerate: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--rows') args.rows = Number(value());
    else if (a === '--batch-size') args.batchSize = Number(value());
    else if (a === '--cdf') args.cdf = true;
    else if (a === '--regenerate') args.regenerate = true;
    else if (a === '--generate-into') args.generateInto = value();
    else throw new Error(`Unknown argument ${a}`);
  }
  if (!Number.isSafeInteger(args.rows) || args.rows < 10) throw new Error('--rows must be an integer >= 10');
  if (!Number.isSafeInteger(args.batchSize) || args.batchSize < 1) throw new Error('--batch-size must be a positive integer');
  return args;
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/** Generates the table (in this process) into a temp folder, then renames it into place. */
async function generate(target: string, rows: number): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  const t0 = performance.now();
  const { version } = await createCustomerProfilesTable(tmp, { rows });
  await fs.rename(tmp, target);
  const s = (performance.now() - t0) / 1000;
  console.log(`generated ${target} (versions 0..${version}) in ${s.toFixed(1)} s, generator peak RSS ${mb(process.resourceUsage().maxRSS)}`);
}

/** Reads every value so lazy decoding cannot make the benchmark look faster than it is. */
function touch(row: Row, acc: { chars: number; nulls: number; score: number; spend: number; active: number }): void {
  for (const key in row) {
    const v = row[key];
    if (v === null) acc.nulls++;
    else if (typeof v === 'string') acc.chars += v.length;
  }
  if (typeof row.propensity_score === 'number') acc.score += row.propensity_score;
  if (typeof row.total_spend === 'string') acc.spend += row.total_spend.length;
  if (row.is_active === true) acc.active++;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.generateInto) {
    await generate(args.generateInto, args.rows);
    return;
  }
  const dataDir = path.join(__dirname, '.data');
  await fs.mkdir(dataDir, { recursive: true });
  // The suffix names the sample's layout; bump it when createCustomerProfilesTable changes.
  const table = path.join(dataDir, `customer_profiles_${args.rows}_v1`);
  if (args.regenerate) await fs.rm(table, { recursive: true, force: true });
  if (!(await exists(path.join(table, '_delta_log', '00000000000000000005.json')))) {
    console.log(`generating a ${args.rows}-row customer_profiles table (cached for later runs)...`);
    const child = spawnSync(process.execPath, [...process.execArgv, __filename, '--rows', String(args.rows), '--generate-into', table], {
      stdio: 'inherit',
    });
    if (child.status !== 0) throw new Error(`table generation failed (exit ${String(child.status)})`);
  }

  const plan = customerProfilesPlan(args.rows);
  const expected = plan.rows + plan.more - plan.deleted.length - plan.dvDeleted.length;
  const acc = { chars: 0, nulls: 0, score: 0, spend: 0, active: 0 };
  const rssBefore = process.resourceUsage().maxRSS;

  const t0 = performance.now();
  const dt = await DeltaTable.open(table);
  const snapshot = await dt.snapshot();
  let rows = 0;
  let batches = 0;
  for await (const batch of snapshot.rows({ batchSize: args.batchSize })) {
    batches++;
    rows += batch.length;
    for (const row of batch) touch(row, acc);
  }
  const seconds = (performance.now() - t0) / 1000;
  const usage = process.resourceUsage();
  console.log(
    `snapshot v${snapshot.version}: ${rows} rows in ${batches} batches, ${seconds.toFixed(2)} s, ` +
      `${Math.round(rows / seconds).toLocaleString('en-US')} rows/s; peak RSS ${mb(usage.maxRSS)} ` +
      `(before reading ${mb(rssBefore)}); heap used now ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MB`,
  );
  console.log(`checksum: ${acc.chars} chars, ${acc.nulls} nulls, ${acc.active} active, score sum ${acc.score.toFixed(2)}`);
  if (rows !== expected) throw new Error(`expected ${expected} rows, read ${rows}`);

  if (args.cdf) {
    const t1 = performance.now();
    let changes = 0;
    for await (const batch of dt.changes({ startingVersion: 1, endingVersion: snapshot.version }, { batchSize: args.batchSize })) {
      changes += batch.length;
      for (const c of batch) touch(c.values, acc);
    }
    const s = (performance.now() - t1) / 1000;
    console.log(
      `CDF v1..v${snapshot.version}: ${changes} change rows, ${s.toFixed(2)} s, ` +
        `${Math.round(changes / s).toLocaleString('en-US')} rows/s; peak RSS ${mb(process.resourceUsage().maxRSS)}`,
    );
  }
  console.log(`peak RSS ${mb(process.resourceUsage().maxRSS)} (target < 300 MB)`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
