import * as path from 'node:path';
import { SyncError } from '../sync/errors';
import { loadMappingFile, parseMapping } from '../sync/mapping/loadMapping';
import type { Mapping } from '../sync/mapping/mappingSchema';
import { openSource } from '../sync/open/openSource';
import { openTarget, mappingTarget } from '../sync/open/openTarget';
import type { OpenedTarget } from '../sync/open/openTarget';
import { SyncRunner } from '../sync/run/SyncRunner';
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
  'sandbox-dir': { type: 'string' },
};

export const PIPELINE_HELP = `  --mapping FILE     the mapping (JSON, see schemas/mapping.schema.json)
  Quick form, without a mapping file:
  --source PATH      Delta table folder
  --target URL       postgres:// URL, \${env:VAR}, or "sandbox" (embedded PGlite)
  --table S.T        target schema.table (schema defaults to public)
  --key COL[,COL]    key columns (default: the target table's primary key)
  --sandbox-dir DIR  where the sandbox database is kept (default: in memory)`;

export interface OpenedPipeline {
  mapping: Mapping;
  runner: SyncRunner;
  target: OpenedTarget;
  close(): Promise<void>;
}

/** The mapping from --mapping, or one built from the quick-form options. */
export function mappingFromArgs(args: ParsedArgs): Mapping {
  const file = stringOption(args, 'mapping');
  const quick = ['source', 'target', 'table', 'key'].filter((k) => args.values[k] !== undefined);
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
  const [schema, name] = table.includes('.') ? (table.split('.', 2) as [string, string]) : ['public', table];
  const key = stringOption(args, 'key');
  const slug = `${schema}-${name}`.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+/, '').slice(0, 63) || 'pipeline';
  return parseMapping({
    name: slug,
    source: { type: 'delta', path: path.resolve(source) },
    target: { connection: target, schema, table: name },
    ...(key ? { key: key.split(',').map((k) => k.trim()).filter(Boolean) } : {}),
  });
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

export async function openPipeline(args: ParsedArgs, io: CliIo): Promise<OpenedPipeline> {
  const mapping = mappingFromArgs(args);
  const logger = stderrLogger(io);
  const source = await openSource(mapping.source, { logger });
  const closeAll = async (target?: OpenedTarget): Promise<void> => {
    await Promise.allSettled([source.close?.(), target?.close()]);
  };
  let target: OpenedTarget | undefined;
  try {
    target = await openTarget(mapping.target.connection, { env: io.env, sandboxDir: stringOption(args, 'sandbox-dir') });
    const runner = new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target, logger), logger);
    const opened = target;
    return { mapping, runner, target, close: () => closeAll(opened) };
  } catch (e) {
    await closeAll(target);
    throw e;
  }
}
