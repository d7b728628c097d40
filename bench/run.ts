/**
 * Runs the benchmarks one after another, each in its own process (so one's memory and
 * timings do not leak into the next), printing their output as it comes:
 *
 *   npm run bench -- [--rows N] [--reps N] [--only encode,read,pg] [--experiments]
 *                    [--regenerate] [--tsx] [--<bench>-args "<more args>"]
 *
 *   encode       bench/encodeBench.ts       COPY text encoding speed (default 200,000 rows)
 *   read         bench/readBench.ts         the Delta reader: snapshot and CDF (default 1M rows)
 *   pg           bench/pgBench.ts           initial load and incremental sync against
 *                                           psql \copy (default 1M rows, 3 repetitions)
 *   lag          bench/lagBench.ts          commit -> visible in Postgres under a continuous
 *                                           sync (watchPipeline, 1 s poll floor), p50 / p95
 *                                           over 50 commits (default 20,000 rows loaded first)
 *   experiments  bench/applyExperiments.ts  exploratory apply variants; only with
 *                                           --experiments or --only experiments
 *   scale        bench/scaleBench.ts        issue 16 in one run: 1M and 10M rows (initial
 *                                           load and incremental vs \copy, peak RSS, time
 *                                           ratio, parallel COPY streams) and the Databricks
 *                                           path at 1M rows; one summary with the targets,
 *                                           also written to bench/.data/scale-summary.md;
 *                                           only with --only scale
 *   faults       bench/faults.ts            kill -9 fault suite: random SIGKILLs of the CLI
 *                                           and a server restart, each run checked against
 *                                           the snapshot (default 200,000 rows, 30 kills);
 *                                           only with --only faults
 *
 * --rows goes to every bench (each keeps its own default without it; scale runs that one size
 * and the Databricks path at it), --reps to pgBench,
 * --regenerate to the benches that cache a table (read, pg, scale, faults), --tsx to those that
 * bundle themselves (read, pg).
 * --<bench>-args adds that bench's own arguments, split on spaces: for example
 * `--pg-args "--order sequential --rbr 1000"` or `--read-args "--phase cdf"`; the header of
 * each bench file lists them. A bench that fails does not stop the others; the run exits 1
 * when any failed. Example of a quick run:
 *
 *   npm run bench -- --rows 20000 --reps 1
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

interface Bench {
  name: string;
  file: string;
  optIn?: boolean;
  /** This bench's arguments for the run's options (its own flags and positionals). */
  args(o: Options): string[];
}

interface Options {
  rows?: number;
  reps?: number;
  only?: string[];
  experiments: boolean;
  regenerate: boolean;
  tsx: boolean;
  extra: Map<string, string[]>;
}

const PG_DEFAULT_ROWS = 1_000_000;

const BENCHES: Bench[] = [
  { name: 'encode', file: 'encodeBench.ts', args: (o) => (o.rows === undefined ? [] : [String(o.rows)]) },
  {
    name: 'read',
    file: 'readBench.ts',
    args: (o) => [...(o.rows === undefined ? [] : ['--rows', String(o.rows)]), ...(o.regenerate ? ['--regenerate'] : []), ...(o.tsx ? ['--tsx'] : [])],
  },
  {
    name: 'pg',
    file: 'pgBench.ts',
    // Positional [rows] [reps]: the repetitions need the rows before them.
    args: (o) => [
      ...(o.rows !== undefined || o.reps !== undefined ? [String(o.rows ?? PG_DEFAULT_ROWS)] : []),
      ...(o.reps === undefined ? [] : [String(o.reps)]),
      ...(o.regenerate ? ['--regenerate'] : []),
      ...(o.tsx ? ['--tsx'] : []),
    ],
  },
  // Its commit count and poll floor are its own flags: --lag-args "20 --interval 500ms".
  { name: 'lag', file: 'lagBench.ts', args: (o) => (o.rows === undefined ? [] : ['--rows', String(o.rows)]) },
  { name: 'experiments', file: 'applyExperiments.ts', optIn: true, args: (o) => (o.rows === undefined ? [] : [String(o.rows)]) },
  {
    name: 'scale',
    file: 'scaleBench.ts',
    optIn: true,
    // --rows N: that size alone, and the Databricks path at N rows (the default is 1M and 10M
    // in one run, plus Databricks at 1M, which takes long).
    args: (o) => [
      ...(o.rows === undefined ? [] : ['--sizes', String(o.rows), '--databricks-rows', String(o.rows)]),
      ...(o.regenerate ? ['--regenerate'] : []),
      ...(o.tsx ? ['--tsx'] : []),
    ],
  },
  {
    name: 'faults',
    file: 'faults.ts',
    optIn: true,
    args: (o) => [...(o.rows === undefined ? [] : ['--rows', String(o.rows)]), ...(o.regenerate ? ['--regenerate'] : [])],
  },
];

function parseArgs(argv: string[]): Options {
  const o: Options = { experiments: false, regenerate: false, tsx: false, extra: new Map() };
  const names = BENCHES.map((b) => b.name);
  const count = (flag: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const extra = /^--(\w+)-args$/.exec(a);
    if (a === '--rows') o.rows = count(a, value(), 100);
    else if (a === '--reps') o.reps = count(a, value(), 1);
    else if (a === '--only') {
      o.only = value().split(',');
      const unknown = o.only.filter((n) => !names.includes(n));
      if (unknown.length > 0) throw new Error(`--only: unknown bench ${unknown.join(', ')} (known: ${names.join(', ')})`);
    } else if (a === '--experiments') o.experiments = true;
    else if (a === '--regenerate') o.regenerate = true;
    else if (a === '--tsx') o.tsx = true;
    else if (extra && names.includes(extra[1] as string)) o.extra.set(extra[1] as string, value().split(/\s+/).filter((s) => s !== ''));
    else throw new Error(`Unknown argument ${a} (see the header of bench/run.ts)`);
  }
  return o;
}

/** Runs one bench under tsx with inherited stdio; resolves to its exit code (or signal). */
function runBench(file: string, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, file), ...args], { stdio: 'inherit' });
  const stop = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve({ code, signal });
    });
  });
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const chosen = BENCHES.filter((b) => (o.only ? o.only.includes(b.name) : !b.optIn || (o.experiments && b.name === 'experiments')));
  const results: string[] = [];
  let failed = 0;
  for (const b of chosen) {
    const args = [...b.args(o), ...(o.extra.get(b.name) ?? [])];
    console.log(`\n=== ${b.name}: bench/${b.file} ${args.join(' ')}`.trimEnd());
    const t0 = Date.now();
    const { code, signal } = await runBench(b.file, args);
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    const ok = code === 0;
    if (!ok) failed++;
    results.push(`${b.name.padEnd(11)} ${ok ? 'ok    ' : 'FAILED'} ${seconds} s${ok ? '' : ` (${signal ?? `exit ${String(code)}`})`}`);
    if (signal === 'SIGINT' || signal === 'SIGTERM') break;
  }
  console.log(`\n=== summary\n${results.join('\n')}`);
  process.exitCode = failed > 0 ? 1 : 0;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(2);
});
