import assert from 'node:assert/strict';
import * as path from 'node:path';
import { useTestDatabase } from '../helpers/postgres';
import { createFaultTable, runFaultSuite } from '../helpers/faultSuite';
import type { FaultTable } from '../helpers/faultSuite';
import { buildCli, tempDir } from '../helpers/syncHarness';

/**
 * The short form of the kill -9 fault suite (bench/faults.ts is the full form): the CLI
 * process is SIGKILLed at random moments during initial loads (create, swap, merge),
 * incremental runs and --to-version runs; after each kill the target is exactly the
 * snapshot at its checkpoint, and after the re-run the checkpoint is the asked version and
 * the target equals that snapshot. The seed is random per run and printed; replay a
 * failure with FAULTS_SEED=<seed>.
 */
describe('kill -9 at random moments, re-run to completion (short fault suite, real server, CLI process)', function () {
  this.timeout(240_000);
  const db = useTestDatabase('faults_kill');
  let table: FaultTable;
  let dir: string;

  before(async function () {
    this.timeout(120_000);
    await buildCli();
    dir = await tempDir('dns-faults-');
    table = await createFaultTable(path.join(dir, 'faults'), 12_000);
  });

  it('every killed run leaves the target at a committed checkpoint, and its re-run ends equal to the snapshot at the asked version', async () => {
    const seed = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : Math.floor(Math.random() * 2 ** 31);
    const lines: string[] = [];
    const r = await runFaultSuite({ url: db().url, database: db().database, table, kills: 5, seed, workDir: dir, log: (l) => lines.push(l) });
    const summary = `seed ${seed}: ${r.survived}/${r.kills} kills survived, ${r.finishedFirst} runs ended before their kill, ${r.seconds.toFixed(1)} s`;
    console.log(`      ${summary}`);
    assert.deepEqual(r.failures, [], `${summary}\n${lines.join('\n')}`);
    assert.ok(r.kills >= 5, summary);
    assert.equal(r.survived, r.kills, summary);
  });
});
