/**
 * The kill -9 fault suite, full form (test/integration/faults-kill.test.ts runs a short
 * form in CI; both drive test/helpers/faultSuite.ts):
 *
 *   npx tsx bench/faults.ts [--rows 200000] [--kills 30] [--seed N] [--no-restart] [--regenerate]
 *   npm run bench -- --only faults [--rows N] [--faults-args "--kills 50 --seed 123"]
 *
 * Source: a customer_profiles Delta table of `rows` rows over 9 versions (create, 6
 * appends, an update of 10% and a delete of 1% of the rows; createFaultTable), cached
 * under bench/.data/.
 * Target: a throwaway PostgreSQL cluster (test/helpers/postgres.ts; fsync off, which an
 * immediate shutdown does not make unsafe: the OS does not crash, so WAL recovery finds
 * every commit).
 * The CLI (dist/cli.js, built from this tree like the tests build it) is SIGKILLed at
 * random moments (seeded PRNG; the seed is printed, --seed replays a run) during initial
 * loads (creating the target, swap onto it, merge into it), incremental runs and
 * --to-version runs; each killed run is checked (the target is the snapshot at its
 * checkpoint), run again to completion, and checked again (the checkpoint is the asked
 * version and the target equals that snapshot, through assertTargetEquals' independent
 * reader path). Unless --no-restart, one more round restarts the server (pg_ctl stop -m
 * immediate, then start) in the middle of an incremental run, which must retry and end
 * equal to the latest snapshot. Prints survived/total and the time; exits 1 on any failure.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../src/fixtures/DeltaTableWriter';
import { startThrowawayServer } from '../test/helpers/postgres';
import { createFaultTable, runFaultSuite } from '../test/helpers/faultSuite';
import type { FaultTable } from '../test/helpers/faultSuite';
import { buildCli } from '../test/helpers/syncHarness';

interface Args {
  rows: number;
  kills: number;
  seed: number;
  restart: boolean;
  regenerate: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rows: 200_000, kills: 30, seed: Math.floor(Math.random() * 2 ** 31), restart: true, regenerate: false };
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--rows') args.rows = int(a, argv[++i], 1000);
    else if (a === '--kills') args.kills = int(a, argv[++i], 1);
    else if (a === '--seed') args.seed = int(a, argv[++i], 0);
    else if (a === '--no-restart') args.restart = false;
    else if (a === '--regenerate') args.regenerate = true;
    else throw new Error(`Unknown argument ${a} (see the header of bench/faults.ts)`);
  }
  return args;
}

/** The cached source table for `rows` (written to a temp folder, then renamed, so a half-written table is never reused). */
async function ensureTable(rows: number, regenerate: boolean): Promise<FaultTable> {
  const dataDir = path.join(__dirname, '.data');
  fs.mkdirSync(dataDir, { recursive: true });
  // Bump the suffix when createFaultTable changes.
  const dir = path.join(dataDir, `faults_${rows}_v1`);
  if (regenerate) fs.rmSync(dir, { recursive: true, force: true });
  if (!fs.existsSync(dir)) {
    console.log(`generating the ${rows}-row source Delta table (cached for later runs)...`);
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    await createFaultTable(tmp, rows);
    fs.renameSync(tmp, dir);
  }
  const w = await DeltaTableWriter.open(dir);
  return { path: dir, latest: w.version, rows };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  console.log(`faults: seed ${args.seed} (replay with --seed ${args.seed}), ${args.rows} rows, at least ${args.kills} kills${args.restart ? ', one server restart' : ''}`);
  const table = await ensureTable(args.rows, args.regenerate);
  await buildCli();
  const server = await startThrowawayServer();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-faults-'));
  try {
    const database = 'faults';
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const u = new URL(server.adminUrl);
    u.pathname = `/${database}`;
    const r = await runFaultSuite({
      url: u.toString(),
      database,
      table,
      kills: args.kills,
      seed: args.seed,
      workDir,
      restartServer: args.restart ? () => server.restart('immediate') : undefined,
      log: (l) => console.log(l),
    });
    console.log(`\nsurvived ${r.survived}/${r.kills} kills (${r.finishedFirst} runs ended before their kill time) in ${r.seconds.toFixed(1)} s, seed ${r.seed}`);
    console.log(`killed in (kind, last phase printed): ${Object.entries(r.killedIn).sort().map(([k, n]) => `${k} ${n}`).join(', ')}`);
    if (r.restart) console.log(`server restart: ${r.restart.survived ? 'survived' : 'FAILED'}: ${r.restart.detail}`);
    for (const f of r.failures) console.log(`FAILED ${f}`);
    process.exitCode = r.failures.length === 0 && r.survived === r.kills && (r.restart?.survived ?? true) ? 0 : 1;
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(2);
});
