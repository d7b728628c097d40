import pg from 'pg';
import { mulberry32 } from '../../src/fixtures/prng';
import { CUSTOMER_PROFILE_COLUMNS, customerAt, customerId, generateCustomers, upgradedCustomer } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { runCli, startCli, writeMappingFile } from './syncHarness';
import type { CliResult } from './syncHarness';
import { assertTargetEquals } from './targetEquality';
import { checkpointVersion, queryOnce } from './pgQuery';

/**
 * The kill -9 fault suite, shared by bench/faults.ts (the full form) and
 * test/integration/faults-kill.test.ts (the short form in CI).
 *
 * Each round takes one target table through the sync's kinds of run, every run SIGKILLed
 * at a random moment (a delay drawn from a seeded PRNG, up to the kind's measured run
 * time) and then run again to completion with the same command:
 *   1. initial load that creates the target (swap mapping), --to-version a
 *   2. incremental, --to-version b
 *   3. initial load in merge mode onto the existing target, --to-version c
 *   4. initial load in swap mode onto the existing target, --to-version d
 *   5. incremental to the latest version
 * with a < b <= c <= d < latest drawn per round. After each kill the target must be
 * exactly the snapshot at whatever checkpoint it has (a run commits its data and its
 * checkpoint together or not at all); after each re-run the checkpoint must be the asked
 * version and the target equal to that snapshot. Both checks go through
 * assertTargetEquals, which reads the snapshot with the Delta reader's plain snapshot path
 * and the target with its own `::text` query, not through the sync's apply path.
 * Rounds repeat until at least `kills` runs were killed (a run that ends before its kill
 * time is checked the same way but not counted as a kill).
 */

export const FAULT_KEY = ['customer_id'];

export interface FaultTable {
  path: string;
  latest: number;
  rows: number;
}

/**
 * A customer_profiles table for the suite: v0 create (CDF on), then 6 appends of rows/6
 * customers each; after the 3rd append an update of 10% of the customers so far and a
 * delete of 1% (copy-on-write with cdc files, as Spark writes them): 9 versions (0..8).
 */
export async function createFaultTable(dir: string, rows: number): Promise<FaultTable> {
  const appends = 6;
  const per = Math.ceil(rows / appends);
  const w = await DeltaTableWriter.create(dir, {
    columns: [...CUSTOMER_PROFILE_COLUMNS],
    configuration: { 'delta.enableChangeDataFeed': 'true' },
    name: 'faults',
  });
  let next = 1;
  for (let i = 0; i < appends; i++) {
    await w.append(generateCustomers(per, 42, next), { rowsPerFile: Math.ceil(per / 2) });
    next += per;
    if (i === 2) {
      const written = next - 1;
      const upd: number[] = [];
      for (let k = 1; k <= written; k += 10) upd.push(k);
      await w.update('customer_id', upd.map((k) => upgradedCustomer(customerAt(k, 42))), { rowsPerFile: Math.ceil(per / 2) });
      const del: string[] = [];
      for (let k = 5; k <= written; k += 100) del.push(customerId(k));
      await w.delete('customer_id', del, { rowsPerFile: Math.ceil(per / 2) });
    }
  }
  return { path: dir, latest: w.version, rows: per * appends };
}

export interface FaultSuiteOptions {
  /** The target database (each round uses its own table and pipeline in it). */
  url: string;
  /** Its name, to see the killed run's backends go away. */
  database: string;
  table: FaultTable;
  /** Stop after the round in which this many runs were killed. */
  kills: number;
  seed: number;
  /** Where the mapping files go. */
  workDir: string;
  /** Rows per incremental transaction (batch.maxRows); default a tenth of the table. */
  batchRows?: number;
  /**
   * When set, one more round ends with an incremental run during which the server is
   * restarted (this function): the run must retry and end at the latest version.
   */
  restartServer?: () => Promise<void>;
  log?: (line: string) => void;
}

export interface FaultSuiteResult {
  seed: number;
  /** Runs killed by SIGKILL. */
  kills: number;
  /** Killed runs whose checks (after the kill, and after the re-run) all passed. */
  survived: number;
  /** Runs that finished before their kill time (checked, not counted). */
  finishedFirst: number;
  /** Kills per phase the run had printed last ('start' before its first phase line). */
  killedIn: Record<string, number>;
  failures: string[];
  restart?: { survived: boolean; retried: boolean; detail: string };
  seconds: number;
}

type StepKind = 'initial-create' | 'incremental' | 'initial-merge' | 'initial-swap';

interface Step {
  kind: StepKind;
  /** --to-version, or the latest version when undefined. */
  to?: number;
}

/** Waits until the server has ended the killed client's backends (it rolls their transactions back). */
async function backendsGone(url: string, database: string): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    const rows = await queryOnce<{ n: number }>(
      url,
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'delta-neon-sync' AND pid <> pg_backend_pid()`,
      [database],
    );
    if (rows[0]?.n === 0) return;
    if (Date.now() > end) throw new Error(`the killed run's backends were still there after 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function cliArgs(mappingFile: string, step: Step): string[] {
  const mode = step.kind === 'incremental' ? 'incremental' : 'initial';
  return ['sync', '--mapping', mappingFile, '--mode', mode, ...(step.to === undefined ? [] : ['--to-version', String(step.to)])];
}

/** The last phase the CLI printed (to a non-terminal stderr it prints a line per phase: `  <phase>: <detail>`). */
function lastPhase(stderr: string): string {
  const phases = [...stderr.matchAll(/^ {2}([a-z-]+)(?::|$)/gm)].map((x) => x[1] as string).filter((p) => p !== 'warning');
  return phases[phases.length - 1] ?? 'start';
}

interface TimedRun {
  result: CliResult;
  killed: boolean;
  /** From the first phase line to the end (undefined when killed or when no phase was printed). */
  workMs?: number;
}

/**
 * Runs the CLI; with `killAfterMs`, SIGKILLs it that long after its first phase line
 * (the CLI's own start, ~1-2 s of module loading on a busy machine, touches nothing, so
 * the random moment is drawn over the run's work, not over node starting up).
 */
async function runTimed(args: string[], killAfterMs?: number): Promise<TimedRun> {
  const { child, done } = startCli(args);
  let workStart: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let seen = '';
  child.stderr?.on('data', (d: string) => {
    if (workStart !== undefined) return;
    seen += d;
    if (!/^ {2}[a-z-]+:/m.test(seen)) return;
    workStart = Date.now();
    if (killAfterMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  });
  const result = await done;
  clearTimeout(timer);
  const killed = result.signal === 'SIGKILL';
  return { result, killed, workMs: killed || workStart === undefined ? undefined : Date.now() - workStart };
}

function describeStep(step: Step): string {
  return `${step.kind}${step.to === undefined ? ' to latest' : ` --to-version ${step.to}`}`;
}

/** a < b <= c <= d < latest, drawn with `rand`. */
function roundSteps(latest: number, rand: () => number): Step[] {
  const between = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const a = between(1, latest - 3);
  const b = between(a + 1, latest - 2);
  const c = between(b, latest - 1);
  const d = between(c, latest - 1);
  return [
    { kind: 'initial-create', to: a },
    { kind: 'incremental', to: b },
    { kind: 'initial-merge', to: c },
    { kind: 'initial-swap', to: d },
    { kind: 'incremental' },
  ];
}

export async function runFaultSuite(o: FaultSuiteOptions): Promise<FaultSuiteResult> {
  const t0 = Date.now();
  const log = o.log ?? ((): void => undefined);
  const rand = mulberry32(o.seed);
  const latest = o.table.latest;
  const batchRows = o.batchRows ?? Math.max(1000, Math.floor(o.table.rows / 10));
  // Kill delays are drawn up to the longest uninterrupted run (its work) of the kind seen so far.
  const estimateMs = new Map<'initial' | 'incremental', number>([
    ['initial', 300 + o.table.rows / 30],
    ['incremental', 300 + o.table.rows / 60],
  ]);
  const result: FaultSuiteResult = { seed: o.seed, kills: 0, survived: 0, finishedFirst: 0, killedIn: {}, failures: [], seconds: 0 };

  const mappings = async (round: number): Promise<{ pipeline: string; table: string; swap: string; merge: string }> => {
    const pipeline = `faults-r${round}`;
    const table = `faults_r${round}`;
    const base = {
      name: pipeline,
      source: { type: 'delta', path: o.table.path },
      target: { connection: o.url, schema: 'public', table },
      key: FAULT_KEY,
      batch: { maxRows: batchRows },
    };
    return {
      pipeline,
      table,
      swap: await writeMappingFile(o.workDir, `${pipeline}-swap`, { ...base, initialLoad: { mode: 'swap' } }),
      merge: await writeMappingFile(o.workDir, `${pipeline}-merge`, { ...base, initialLoad: { mode: 'merge' } }),
    };
  };

  const equalsAt = async (table: string, version: number): Promise<void> => {
    await assertTargetEquals(o.url, { schema: 'public', name: table }, o.table.path, version, { key: FAULT_KEY });
  };

  for (let round = 1; result.kills < o.kills; round++) {
    const m = await mappings(round);
    log(`round ${round}: table public.${m.table}`);
    for (const step of roundSteps(latest, rand)) {
      const file = step.kind === 'initial-merge' ? m.merge : m.swap;
      const args = cliArgs(file, step);
      const estKey = step.kind === 'incremental' ? 'incremental' : 'initial';
      const delay = Math.floor(rand() * (estimateMs.get(estKey) as number));
      const what = `round ${round} ${describeStep(step)}, kill ${delay} ms into its work (seed ${o.seed})`;
      const before = await checkpointVersion(o.url, m.pipeline);
      const run = await runTimed(args, delay);
      const first = run.result;
      const killed = run.killed;
      const expected = step.to ?? latest;
      const learn = (ms: number | undefined): void => {
        if (ms !== undefined) estimateMs.set(estKey, Math.max(estimateMs.get(estKey) as number, ms));
      };
      try {
        if (killed) {
          result.kills++;
          const phase = `${step.kind === 'incremental' ? 'incremental' : 'initial'} ${lastPhase(first.stderr)}`;
          result.killedIn[phase] = (result.killedIn[phase] ?? 0) + 1;
          await backendsGone(o.url, o.database);
          // Whatever the kill interrupted, the target is exactly at a committed checkpoint:
          // the one before the run, or one the run committed (never past the asked version).
          const at = await checkpointVersion(o.url, m.pipeline);
          if (at !== undefined) {
            if (before !== undefined && at < before) throw new Error(`checkpoint went back from ${before} to ${at}`);
            if (at > expected) throw new Error(`checkpoint ${at} is past the asked version ${expected}`);
            await equalsAt(m.table, at);
          } else if (before !== undefined) throw new Error(`the checkpoint (${before}) is gone`);
          const again = await runTimed(args);
          if (again.result.code !== 0) throw new Error(`the re-run exited ${String(again.result.code ?? again.result.signal)}: ${again.result.stderr.slice(-2000)}`);
          // An incremental re-run from a later checkpoint is shorter than the whole run.
          if (step.kind !== 'incremental' || before === at) learn(again.workMs);
          log(`  ${describeStep(step)}: killed ${delay} ms into its work in ${phase}, at checkpoint ${at ?? 'none'}; re-run ${again.workMs ?? '?'} ms`);
        } else {
          if (first.code !== 0) throw new Error(`the run exited ${String(first.code ?? first.signal)} on its own: ${first.stderr.slice(-2000)}`);
          result.finishedFirst++;
          learn(run.workMs);
          log(`  ${describeStep(step)}: finished ${run.workMs ?? '?'} ms into its work, before its kill at ${delay} ms`);
        }
        const cp = await checkpointVersion(o.url, m.pipeline);
        if (cp !== expected) throw new Error(`checkpoint ${String(cp)} after the run, expected ${expected}`);
        await equalsAt(m.table, expected);
        if (killed) result.survived++;
      } catch (e) {
        const msg = `${what}: ${e instanceof Error ? e.message : String(e)}`;
        result.failures.push(msg);
        log(`  FAILED ${msg}`);
        break; // the round's table is no longer a known state: start a fresh one
      }
    }
    await queryOnce(o.url, `DROP TABLE IF EXISTS public."${m.table}"`);
  }

  if (o.restartServer) result.restart = await restartRound(o, rand, latest, equalsAt, mappings, log);
  result.seconds = (Date.now() - t0) / 1000;
  return result;
}

/** Initial load to a version in the first half, then an incremental run to the latest with a server restart in its middle. */
async function restartRound(
  o: FaultSuiteOptions,
  rand: () => number,
  latest: number,
  equalsAt: (table: string, version: number) => Promise<void>,
  mappings: (round: number) => Promise<{ pipeline: string; table: string; swap: string }>,
  log: (line: string) => void,
): Promise<NonNullable<FaultSuiteResult['restart']>> {
  const m = await mappings(0);
  const from = 1 + Math.floor(rand() * Math.max(1, Math.floor(latest / 2)));
  const init = await runCli(cliArgs(m.swap, { kind: 'initial-create', to: from }));
  if (init.code !== 0) return { survived: false, retried: false, detail: `the initial load failed: ${init.stderr.slice(-2000)}` };
  const { done } = startCli(cliArgs(m.swap, { kind: 'incremental' }));
  // Restart once the run has committed its first batch (or after 5 s, whichever first).
  const end = Date.now() + 5000;
  while (Date.now() < end && ((await checkpointVersion(o.url, m.pipeline)) ?? from) <= from) await new Promise((r) => setTimeout(r, 20));
  const at = await checkpointVersion(o.url, m.pipeline);
  await (o.restartServer as () => Promise<void>)();
  const res = await done;
  const retried = /retrying in \d+ ms/.test(res.stdout + res.stderr);
  try {
    if (res.code !== 0) throw new Error(`the run exited ${String(res.code ?? res.signal)}: ${res.stderr.slice(-2000)}`);
    const cp = await checkpointVersion(o.url, m.pipeline);
    if (cp !== latest) throw new Error(`checkpoint ${String(cp)}, expected ${latest}`);
    await equalsAt(m.table, latest);
    const detail = `restarted at checkpoint ${String(at)} (from ${from}), ${retried ? 'the run retried' : 'no retry was needed'}, ended at ${latest}`;
    log(`restart round: ${detail}`);
    return { survived: true, retried, detail };
  } catch (e) {
    const detail = `restart round (seed ${o.seed}): ${e instanceof Error ? e.message : String(e)}`;
    log(`  FAILED ${detail}`);
    return { survived: false, retried, detail };
  } finally {
    await queryOnce(o.url, `DROP TABLE IF EXISTS public."${m.table}"`).catch(() => undefined);
  }
}
