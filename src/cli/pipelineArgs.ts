import * as path from 'node:path';
import { SyncError } from '../sync/errors';
import { loadMappingFile, parseMapping } from '../sync/mapping/loadMapping';
import type { Mapping } from '../sync/mapping/mappingSchema';
import { openSource } from '../sync/open/openSource';
import { openTarget, mappingTarget } from '../sync/open/openTarget';
import type { OpenedTarget } from '../sync/open/openTarget';
import { SyncRunner } from '../sync/run/SyncRunner';
import type { ChangeSource } from '../sync/ports/ChangeSource';
import type { Logger } from '../sync/ports/Logger';
import type { CliIo } from './CliCommand';
import { stringOption } from './parseCommandArgs';
import type { OptionSpecs, ParsedArgs } from './parseCommandArgs';

/** Options every pipeline command takes: a mapping file, or the quick form without one. */
export const PIPELINE_OPTIONS: OptionSpecs = {
  mapping: { type: 'string', short: 'm' },
  source: { type: 'string' },
  target: { type: 'string' },
  table: { type: 'string' },
  key: { type: 'string' },
  'max-change-share': { type: 'string' },
  'sandbox-dir': { type: 'string' },
};

export const PIPELINE_HELP = `  --mapping FILE     the mapping (JSON, see schemas/mapping.schema.json)
  Quick form, without a mapping file:
  --source PATH      Delta table folder
  --target URL       postgres:// URL without a password (PGPASSWORD or ~/.pgpass
                     supply it), \${env:VAR} naming a variable that holds the full
                     URL, "sandbox" (embedded PGlite), or a Neon branch
                     neon:<project>/<branch>/<database>[?role=R&pooled=true]
                     (NEON_API_KEY; the URI is fetched from the Neon API)
  --table S.T        target schema.table (schema defaults to public)
  --key COL[,COL]    key columns (default: the target table's primary key)
  --max-change-share S  mapping mode "auto": pending changes above this share of the
                     table (0 < S <= 1, e.g. 0.3) are loaded as the snapshot instead of
                     applied from the Change Data Feed
  --sandbox-dir DIR  where the sandbox database is kept (default: in memory)`;

export interface OpenedPipeline {
  mapping: Mapping;
  runner: SyncRunner;
  source: ChangeSource;
  target: OpenedTarget;
  close(): Promise<void>;
}

/** The mapping from --mapping, or one built from the quick-form options. */
export function mappingFromArgs(args: ParsedArgs): Mapping {
  const file = stringOption(args, 'mapping');
  const quick = ['source', 'target', 'table', 'key', 'max-change-share'].filter((k) => args.values[k] !== undefined);
  if (file) {
    if (quick.length) throw new SyncError('usage', `--mapping cannot be combined with ${quick.map((q) => `--${q}`).join(', ')}`);
    return loadMappingFile(path.resolve(file));
  }
  const source = stringOption(args, 'source');
  const target = stringOption(args, 'target');
  const table = stringOption(args, 'table');
  if (!source || !target || !table) {
    throw new SyncError('usage', 'give --mapping FILE, or all of --source PATH --target URL --table schema.table [--key COL]');
  }
  const [schema, name] = quickTableName(table);
  checkQuickTarget(target);
  const key = stringOption(args, 'key');
  const shareText = stringOption(args, 'max-change-share');
  const share = shareText === undefined ? undefined : Number(shareText);
  if (share !== undefined && !(share > 0 && share <= 1)) {
    throw new SyncError('usage', `--max-change-share must be a share of the table's rows above 0 and at most 1 (e.g. 0.3 for 30%), got '${shareText}'`, { setting: '--max-change-share' });
  }
  const slug = `${schema}-${name}`.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+/, '').slice(0, 63) || 'pipeline';
  return parseMapping({
    name: slug,
    source: { type: 'delta', path: path.resolve(source) },
    target: { connection: target, schema, table: name },
    ...(key ? { key: key.split(',').map((k) => k.trim()).filter(Boolean) } : {}),
    ...(share !== undefined ? { mode: 'auto', auto: { maxChangeShare: share } } : {}),
  });
}

/**
 * `--table S.T` or `T` (schema public). Anything else is refused rather than guessed: a
 * third part used to be dropped, so `public.x.y` silently wrote `public.x`.
 */
function quickTableName(table: string): [string, string] {
  const parts = table.split('.');
  if (parts.length === 1 && parts[0]) return ['public', parts[0]];
  if (parts.length === 2 && parts[0] && parts[1]) return [parts[0], parts[1]];
  throw new SyncError('usage', `--table '${table}' must be schema.table or table (one dot at most, no empty part); for other names use a mapping file (--mapping)`);
}

/**
 * A password in `--target` is refused, with the CLI's own wording (not the mapping file's):
 * a command line ends up in shell history and process lists. The hint names the ways
 * that keep it out: the URL in an environment variable, or PGPASSWORD / ~/.pgpass.
 */
function checkQuickTarget(target: string): void {
  if (!/^postgres(ql)?:\/\//i.test(target) || !hasPassword(target)) return;
  throw new SyncError('mapping', '--target contains a password; a password on the command line is kept in shell history and visible to other users in the process list.', {
    setting: '--target',
    hint: "put the URL in an environment variable and pass its name: export DATABASE_URL='postgresql://user:password@host/db?sslmode=require' then --target '${env:DATABASE_URL}'; or leave the password out of the URL and set PGPASSWORD or add it to ~/.pgpass",
  });
}

function hasPassword(url: string): boolean {
  try {
    const u = new URL(url);
    return u.password !== '' || u.searchParams.has('password');
  } catch {
    return false;
  }
}

export function stderrLogger(io: CliIo): Logger {
  const debug = !!io.env.DEBUG;
  return {
    debug: (m) => (debug ? void io.stderr.write(`debug: ${m}\n`) : undefined),
    info: (m) => void io.stderr.write(`${m}\n`),
    warn: (m) => void io.stderr.write(`warning: ${m}\n`),
    error: (m) => (debug ? void io.stderr.write(`error: ${m}\n`) : undefined),
  };
}

export async function openPipeline(args: ParsedArgs, io: CliIo, opts: { deferConnect?: boolean } = {}): Promise<OpenedPipeline> {
  const mapping = mappingFromArgs(args);
  const logger = stderrLogger(io);
  // deferConnect (status): a Databricks source opens its warehouse session at its first read only.
  const source = await openSource(mapping.source, { logger, ...(opts.deferConnect ? { deferConnect: true } : {}) });
  const closeAll = async (target?: OpenedTarget): Promise<void> => {
    await Promise.allSettled([source.close?.(), target?.close()]);
  };
  let target: OpenedTarget | undefined;
  try {
    target = await openTarget(mapping.target.connection, { env: io.env, sandboxDir: stringOption(args, 'sandbox-dir'), neon: { logger, signal: io.signal } });
    const runner = new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target, logger), logger);
    const opened = target;
    return { mapping, runner, source, target, close: () => closeAll(opened) };
  } catch (e) {
    await closeAll(target);
    throw e;
  }
}
