/**
 * Round trips of an initial load and of an incremental run, statement by statement
 * (issue 12, "network latency"): runs both against a throwaway server with
 * DELTA_NEON_SYNC_TRACE_QUERIES=1, so createPool logs each statement on stderr.
 *
 *   npx tsx bench/roundTrips.ts [rows=2000]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CUSTOMER_KEY, CUSTOMER_PROFILE_COLUMNS, customerAt, generateCustomers, upgradedCustomer } from '../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../src/fixtures/DeltaTableWriter';
import { parseMapping } from '../src/sync/mapping/loadMapping';
import { createPool } from '../src/sync/postgres/createPool';
import { openSource } from '../src/sync/open/openSource';
import { mappingTarget } from '../src/sync/open/openTarget';
import { SyncRunner } from '../src/sync/run/SyncRunner';
import { startThrowawayServer } from '../test/helpers/postgres';

async function main(): Promise<void> {
  if (process.env.DELTA_NEON_SYNC_TRACE_QUERIES !== '1') throw new Error('run with DELTA_NEON_SYNC_TRACE_QUERIES=1');
  const rows = Number(process.argv[2] ?? 2000);
  const server = await startThrowawayServer({});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-rtt-'));
  try {
    const w = await DeltaTableWriter.create(dir, { columns: [...CUSTOMER_PROFILE_COLUMNS], configuration: { 'delta.enableChangeDataFeed': 'true' }, name: 'rtt' });
    await w.append(generateCustomers(rows, 42));
    const upd = [];
    for (let i = 1; i <= rows; i += 10) upd.push(upgradedCustomer(customerAt(i, 42)));
    await w.update(CUSTOMER_KEY, upd);
    const mapping = parseMapping({ name: 'rtt', source: { type: 'delta', path: dir }, target: { connection: 'bench', table: 'rtt' }, key: [CUSTOMER_KEY] });
    const pool = createPool(server.adminUrl, { max: 4 });
    const src = await openSource(mapping.source);
    try {
      const runner = new SyncRunner(mapping, src, mappingTarget(pool, mapping.target));
      // The first command on a database creates the state tables: not what a run pays after.
      process.stderr.write('=== status (creates the state tables)\n');
      await runner.status();
      process.stderr.write('=== initial load\n');
      await runner.run({ mode: 'initial', toVersion: 1, maxAttempts: 1 });
      process.stderr.write('=== incremental\n');
      await runner.run({ mode: 'incremental', toVersion: 2, maxAttempts: 1 });
      process.stderr.write('=== end\n');
    } finally {
      await pool.end();
      await (src as { close?: () => Promise<void> }).close?.();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
