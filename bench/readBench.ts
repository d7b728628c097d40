/**
 * Reader benchmark: reads a customer_profiles table (8 columns, default 1,000,000 rows at
 * v1, every log mechanism in later versions) through DeltaTable, once as a snapshot and
 * once as the Change Data Feed of v1..v5, and prints rows/s and peak RSS of each.
 * Target: peak RSS under 300 MB, independent of the table's size.
 *
 *   npx tsx bench/readBench.ts [--rows 1000000] [--batch-size 10000] [--phase snapshot|cdf|both]
 *                              [--row-group-rows N] [--regenerate] [--tsx]
 *
 * --rows 2000000 shows that the peak does not grow with the table. --row-group-rows N
 * writes N-row files of one row group each with small pages (the layout Spark writes),
 * which the reader decodes window by window.
 *
 * Each phase runs in its own child process, so that its peak RSS (the kernel's maxrss) is
 * its own. The child runs the reader bundled by esbuild under plain `node` with no flags,
 * the way the CLI ships; --tsx runs it under tsx instead (whose loader adds ~40 MB).
 * The table is generated once, in a child process too, and cached under bench/.data/.
 * Timings are printed, never asserted; row counts are checked, since a fast wrong reader
 * is useless.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createCustomerProfilesTable, customerProfilesPlan } from '../src/fixtures/customerProfiles';
import { DeltaTable } from '../src/sync/delta/DeltaTable';
import type { Row } from '../src/sync/delta/types';

type Phase = 'snapshot' | 'cdf';

interface Args {
  rows: number;
  batchSize: number;
  phases: Phase[];
  rowGroupRows?: number;
  regenerate: boolean;
  tsx: boolean;
  /** Child modes. */
  generateInto?: string;
  measure?: Phase;
  table?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rows: 1_000_000, batchSize: 10_000, phases: ['snapshot', 'cdf'], regenerate: false, tsx: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--rows') args.rows = Number(value());
    else if (a === '--batch-size') args.batchSize = Number(value());
    else if (a === '--phase') {
      const p = value();
      if (p === 'both') args.phases = ['snapshot', 'cdf'];
      else if (p === 'snapshot' || p === 'cdf') args.phases = [p];
      else throw new Error('--phase must be snapshot, cdf or both');
    } else if (a === '--cdf') args.phases = ['snapshot', 'cdf']; // the old flag: both phases are the default now
    else if (a === '--row-group-rows') args.rowGroupRows = Number(value());
    else if (a === '--regenerate') args.regenerate = true;
    else if (a === '--tsx') args.tsx = true;
    else if (a === '--generate-into') args.generateInto = value();
    else if (a === '--measure') {
      const p = value();
      if (p !== 'snapshot' && p !== 'cdf') throw new Error('--measure must be snapshot or cdf');
      args.measure = p;
    } else if (a === '--table') args.table = value();
    else throw new Error(`Unknown argument ${a}`);
  }
  if (!Number.isSafeInteger(args.rows) || args.rows < 10) throw new Error('--rows must be an integer >= 10');
  if (!Number.isSafeInteger(args.batchSize) || args.batchSize < 1) throw new Error('--batch-size must be a positive integer');
  if (args.rowGroupRows !== undefined && (!Number.isSafeInteger(args.rowGroupRows) || args.rowGroupRows < 1000)) {
    throw new Error('--row-group-rows must be an integer >= 1000');
  }
  return args;
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const maxRssBytes = (): number => process.resourceUsage().maxRSS * 1024;

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/** Small pages for --row-group-rows tables, so that even the boolean column (1 bit a value) has pages of at most 32k rows, as Spark's 20k-row page limit gives; only then does the reader decode a large row group window by window. */
const SMALL_PAGE_BYTES = 4 * 1024;

/** Child: generates the table into a temp folder, then renames it into place. */
async function generate(target: string, args: Args): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  const t0 = performance.now();
  const layout = args.rowGroupRows
    ? { rowsPerFile: args.rowGroupRows, rowGroupSize: args.rowGroupRows, pageSize: SMALL_PAGE_BYTES }
    : {};
  const { version } = await createCustomerProfilesTable(tmp, { rows: args.rows, ...layout });
  await fs.rename(tmp, target);
  const s = (performance.now() - t0) / 1000;
  console.log(`generated ${target} (versions 0..${version}) in ${s.toFixed(1)} s, generator peak RSS ${mb(maxRssBytes())}`);
}

/** Reads every value so lazy decoding cannot make the benchmark look faster than it is. */
function touch(row: Row, acc: { chars: number; nulls: number; score: number; active: number }): void {
  for (const key in row) {
    const v = row[key];
    if (v === null) acc.nulls++;
    else if (typeof v === 'string') acc.chars += v.length;
  }
  if (typeof row.propensity_score === 'number') acc.score += row.propensity_score;
  if (row.is_active === true) acc.active++;
}

interface PhaseResult {
  phase: Phase;
  version: number;
  rows: number;
  batches: number;
  seconds: number;
  rssBefore: number;
  peakRss: number;
  checksum: string;
}

/** Child: runs one phase and prints its result as one JSON line. */
async function measure(phase: Phase, table: string, batchSize: number): Promise<void> {
  const acc = { chars: 0, nulls: 0, score: 0, active: 0 };
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const dt = await DeltaTable.open(table);
  const snapshot = await dt.snapshot();
  let rows = 0;
  let batches = 0;
  if (phase === 'snapshot') {
    for await (const batch of snapshot.rows({ batchSize })) {
      batches++;
      rows += batch.length;
      for (const row of batch) touch(row, acc);
    }
  } else {
    for await (const batch of dt.changes({ startingVersion: 1, endingVersion: snapshot.version }, { batchSize })) {
      batches++;
      rows += batch.length;
      for (const c of batch) touch(c.values, acc);
    }
  }
  const result: PhaseResult = {
    phase,
    version: snapshot.version,
    rows,
    batches,
    seconds: (performance.now() - t0) / 1000,
    rssBefore,
    peakRss: maxRssBytes(),
    checksum: `${acc.chars} chars, ${acc.nulls} nulls, ${acc.active} active, score sum ${acc.score.toFixed(2)}`,
  };
  console.log(JSON.stringify(result));
}

/** The bench bundled for plain `node` (what the CLI runs), rebuilt on every run: it is quick. */
async function bundle(dataDir: string): Promise<string> {
  const esbuild = await import('esbuild');
  const outfile = path.join(dataDir, 'readBench.bundle.cjs');
  await esbuild.build({
    entryPoints: [__filename],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
    external: ['esbuild'],
  });
  return outfile;
}

function runChild(argv: string[], capture: boolean): string {
  const child = spawnSync(process.execPath, argv, { stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`child ${argv.join(' ')} failed (exit ${String(child.status)})`);
  return child.stdout ?? '';
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.generateInto) {
    await generate(args.generateInto, args);
    return;
  }
  if (args.measure) {
    if (!args.table) throw new Error('--measure needs --table');
    await measure(args.measure, args.table, args.batchSize);
    return;
  }

  const dataDir = path.join(__dirname, '.data');
  await fs.mkdir(dataDir, { recursive: true });
  // The suffix names the sample's layout; bump it when createCustomerProfilesTable changes.
  const layout = args.rowGroupRows ? `_rg${args.rowGroupRows}` : '';
  const table = path.join(dataDir, `customer_profiles_${args.rows}${layout}_v1`);
  if (args.regenerate) await fs.rm(table, { recursive: true, force: true });
  if (!(await exists(path.join(table, '_delta_log', '00000000000000000005.json')))) {
    console.log(`generating a ${args.rows}-row customer_profiles table (cached for later runs)...`);
    const gen = [__filename, '--rows', String(args.rows), '--generate-into', table];
    if (args.rowGroupRows) gen.push('--row-group-rows', String(args.rowGroupRows));
    runChild([...process.execArgv, ...gen], false);
  }

  const runner = args.tsx ? [...process.execArgv, __filename] : [await bundle(dataDir)];
  console.log(`table ${table}; batch size ${args.batchSize}; each phase in its own ${args.tsx ? 'tsx' : 'plain node (bundled)'} process`);
  const plan = customerProfilesPlan(args.rows);
  const expectedSnapshot = plan.rows + plan.more - plan.deleted.length - plan.dvDeleted.length;
  // v1 and v4 insert, v2 writes a pre- and post-image per update, v3 and v5 delete.
  const expectedCdf = plan.rows + plan.more + 2 * plan.updated.length + plan.deleted.length + plan.dvDeleted.length;
  let worst = 0;
  for (const phase of args.phases) {
    const out = runChild([...runner, '--measure', phase, '--table', table, '--batch-size', String(args.batchSize)], true);
    const line = out.trim().split('\n').pop() ?? '';
    const r = JSON.parse(line) as PhaseResult;
    worst = Math.max(worst, r.peakRss);
    const label = phase === 'snapshot' ? `snapshot v${r.version}` : `CDF v1..v${r.version}`;
    console.log(
      `${label}: ${r.rows} rows in ${r.batches} batches, ${r.seconds.toFixed(2)} s, ` +
        `${Math.round(r.rows / r.seconds).toLocaleString('en-US')} rows/s; peak RSS ${mb(r.peakRss)} (process at start ${mb(r.rssBefore)})`,
    );
    console.log(`  checksum: ${r.checksum}`);
    const expected = phase === 'snapshot' ? expectedSnapshot : expectedCdf;
    if (r.rows !== expected) throw new Error(`${label}: expected ${expected} rows, read ${r.rows}`);
  }
  console.log(`peak RSS ${mb(worst)} (target < 300 MB)`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
