import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applySampleChanges, createCustomerProfilesTable } from '../../fixtures/customerProfiles';
import { SyncError } from '../../sync/errors';
import { parseMapping } from '../../sync/mapping/loadMapping';
import { openSource } from '../../sync/open/openSource';
import { SANDBOX_CONNECTION, openTarget, mappingTarget } from '../../sync/open/openTarget';
import { SyncRunner } from '../../sync/run/SyncRunner';
import type { CliCommand, CliIo } from '../CliCommand';
import { stderrLogger } from '../pipelineArgs';
import { ProgressPrinter } from '../ProgressPrinter';
import { renderTable } from './previewCommand';
import { parseCommandArgs, stringOption, versionOption } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';

const OPTIONS: OptionSpecs = { dir: { type: 'string' }, rows: { type: 'string' }, target: { type: 'string' }, 'sandbox-dir': { type: 'string' } };

/**
 * `demo`: the README's main job. Generates the sample customer_profiles Delta table, loads
 * it into an embedded Postgres (PGlite; or --target URL), changes the source, previews the
 * change, syncs it incrementally and checks the target equals the source.
 */
export const demoCommand: CliCommand = {
  options: OPTIONS,
  name: 'demo',
  summary: 'Generate the sample customer_profiles Delta table and sync it into an embedded Postgres, end to end',
  usage: '[--dir DIR] [--rows N] [--target URL | --sandbox-dir DIR]',
  help: `Options:
  --dir DIR          where to write the sample Delta table (default: a new temp folder)
  --rows N           customers in the sample (default 1000)
  --target URL       sync into this Postgres instead of the embedded sandbox
  --sandbox-dir DIR  keep the embedded database in DIR (default: in memory)
  -h, --help         show this help`,
  async run(argv: string[], io: CliIo): Promise<number> {
    const args = parseCommandArgs(argv, OPTIONS);
    if (args.positionals.length) throw new SyncError('usage', `unexpected argument '${args.positionals[0]}'`);
    const rows = versionOption(args, 'rows') ?? 1000;
    if (rows < 10) throw new SyncError('usage', '--rows must be at least 10');
    const dir = stringOption(args, 'dir') ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'delta-neon-sync-demo-')));
    const tablePath = path.resolve(dir, 'customer_profiles');
    const say = (s = ''): void => void io.stdout.write(s + '\n');

    try {
      await fs.access(path.join(tablePath, '_delta_log'));
      throw new SyncError('usage', `${tablePath} already holds a Delta table; pass another --dir`);
    } catch (e) {
      if (e instanceof SyncError) throw e;
    }
    say(`1. Writing the sample Delta table (Change Data Feed on) at ${tablePath}`);
    const sample = await createCustomerProfilesTable(tablePath, { rows });
    for (const v of sample.versions) say(`   v${v.version} ${v.operation}: ${v.description}`);

    const connection = stringOption(args, 'target') ?? SANDBOX_CONNECTION;
    const mapping = parseMapping({
      name: 'customer-profiles-demo',
      source: { type: 'delta', path: tablePath },
      target: { connection: connection === SANDBOX_CONNECTION ? SANDBOX_CONNECTION : '${env:DELTA_NEON_SYNC_DEMO_URL}', schema: 'public', table: 'customer_profiles' },
      key: ['customer_id'],
    });
    const env = { ...io.env, DELTA_NEON_SYNC_DEMO_URL: connection };
    const target = await openTarget(mapping.target.connection, { env, sandboxDir: stringOption(args, 'sandbox-dir') });
    try {
      const runner = new SyncRunner(mapping, await openSource(mapping.source), mappingTarget(target.pool, mapping.target, stderrLogger(io)), stderrLogger(io));
      const printer = new ProgressPrinter(io.stderr);
      say();
      say(`2. Initial load into ${target.label}`);
      say(await runner.renderDdl());
      const first = await runner.run({ mode: 'initial', signal: io.signal, onEvent: printer.onEvent });
      say(`   loaded ${first.inserted} rows at version ${first.toVersion}`);
      const sampleRows = await target.pool.query<Record<string, unknown>>(
        'SELECT customer_id, full_name, segment, total_spend, is_active FROM public.customer_profiles ORDER BY customer_id LIMIT 3',
      );
      for (const r of sampleRows.rows) say(`   ${JSON.stringify(r)}`);

      say();
      const v = await applySampleChanges(tablePath);
      say(`3. The source changed: version ${v} (a MERGE with updates, inserts and deletes)`);
      say();
      say('4. Preview of the next sync (nothing written yet):');
      say(renderTable(await runner.preview({ limit: 20 })).replace(/^/gm, '   ').trimEnd());
      say();
      say('5. Incremental sync from the Change Data Feed');
      const second = await runner.run({ mode: 'incremental', signal: io.signal, onEvent: printer.onEvent });
      say(`   versions ${second.fromVersion}..${second.toVersion}: ${second.inserted} inserted, ${second.updated} updated, ${second.deleted} deleted`);
      const again = await runner.run({ signal: io.signal });
      say(`   a second sync: ${again.status}`);
      say();
      const check = await runner.verify();
      say(`6. Check: the target ${check.equal ? 'equals' : 'DIFFERS from'} the Delta table at version ${check.version} (${check.sourceRows} source rows, ${check.targetRows} target rows, ${check.missing} missing, ${check.differing} differing, ${check.extra} extra)`);
      const status = await runner.status();
      say(`   checkpoint: version ${status.checkpoint?.version}, ${status.lag} version(s) behind; ${status.runs.length} runs recorded`);
      return check.equal ? 0 : 1;
    } finally {
      await target.close();
    }
  },
};
