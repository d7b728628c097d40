import { DatabricksCatalog } from '../../sync/databricks/DatabricksCatalog';
import { DatabricksClient } from '../../sync/databricks/DatabricksClient';
import { parseTableName } from '../../sync/databricks/databricksTypes';
import { formatDeltaType } from '../../sync/delta/schema';
import { DEFAULT_DATABRICKS_CONNECTION, resolveDatabricksConnection } from '../../sync/databricks/resolveDatabricksConnection';
import { SyncError } from '../../sync/errors';
import type { Logger } from '../../sync/ports/Logger';
import type { CliCommand, CliIo } from '../CliCommand';
import { OutputStream } from '../OutputStream';
import { formatOption, parseCommandArgs, singlePositional, stringOption } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';

const OPTIONS: OptionSpecs = { connection: { type: 'string' }, format: { type: 'string' } };

const ENV_HELP = `Connection (environment):
  DATABRICKS_HOST        workspace host, e.g. adb-1234567890123456.7.azuredatabricks.net
  DATABRICKS_HTTP_PATH   the SQL warehouse's HTTP path, /sql/1.0/warehouses/<id>
  DATABRICKS_TOKEN       a personal access token, or
  DATABRICKS_CLIENT_ID + DATABRICKS_CLIENT_SECRET   OAuth machine-to-machine (service principal)
  --connection NAME      use DELTA_NEON_SYNC_DATABRICKS_<NAME>_HOST/_HTTP_PATH/_TOKEN/... instead
  --format text|json     output format (default text)`;

/** Driver log lines go to stderr only with DEBUG set: stdout stays clean for programs. */
function stderrLogger(io: CliIo): Logger {
  const w = (level: string) => (m: string): void => {
    if (io.env.DEBUG || level !== 'debug') io.stderr.write(`[${level}] ${m}\n`);
  };
  return { debug: w('debug'), info: w('info'), warn: w('warn'), error: w('error') };
}

async function withCatalog(argv: string[], io: CliIo, positional: string | undefined, fn: (cat: DatabricksCatalog, arg: string, json: boolean, out: OutputStream) => Promise<void>): Promise<number> {
  const args = parseCommandArgs(argv, OPTIONS);
  const arg = positional === undefined ? '' : singlePositional(args, positional);
  const json = formatOption(args, ['text', 'json'] as const) === 'json';
  const config = await resolveDatabricksConnection(stringOption(args, 'connection') ?? DEFAULT_DATABRICKS_CONNECTION, { env: io.env });
  const client = await DatabricksClient.connect(config, { logger: stderrLogger(io) });
  const out = new OutputStream(io.stdout);
  try {
    await fn(new DatabricksCatalog(client), arg, json, out);
    await out.flush();
  } finally {
    await client.close();
  }
  return 0;
}

const testCommand: CliCommand = {
  name: 'test',
  options: OPTIONS,
  summary: 'Connect to the SQL warehouse and list the catalogs it shows',
  usage: '[--connection NAME] [--format text|json]',
  help: ENV_HELP,
  run: (argv, io) =>
    withCatalog(argv, io, undefined, async (cat, _arg, json, out) => {
      const catalogs = await cat.catalogs();
      await out.write(json ? JSON.stringify({ ok: true, catalogs }) + '\n' : `Connected. ${catalogs.length} catalog(s) visible: ${catalogs.join(', ')}\n`);
    }),
};

const catalogsCommand: CliCommand = {
  name: 'catalogs',
  options: OPTIONS,
  summary: 'List catalogs and their schemas',
  usage: '[--connection NAME] [--format text|json]',
  help: ENV_HELP,
  run: (argv, io) =>
    withCatalog(argv, io, undefined, async (cat, _arg, json, out) => {
      const result: Record<string, string[]> = {};
      for (const c of await cat.catalogs()) result[c] = await cat.schemas(c);
      if (json) await out.write(JSON.stringify(result, null, 2) + '\n');
      else for (const [c, schemas] of Object.entries(result)) await out.write(`${c}\n${schemas.map((s) => `  ${c}.${s}\n`).join('')}`);
    }),
};

const tablesCommand: CliCommand = {
  name: 'tables',
  options: OPTIONS,
  summary: 'List the tables of a schema',
  usage: '<catalog.schema> [--connection NAME] [--format text|json]',
  help: ENV_HELP,
  run: (argv, io) =>
    withCatalog(argv, io, '<catalog.schema>', async (cat, arg, json, out) => {
      const parts = arg.split('.');
      if (parts.length !== 2 || !parts[0] || !parts[1]) throw new SyncError('usage', `"${arg}" is not catalog.schema.`);
      const tables = await cat.tables(parts[0], parts[1]);
      if (json) await out.write(JSON.stringify(tables, null, 2) + '\n');
      else for (const t of tables) await out.write(`${t.catalog}.${t.schema}.${t.name}\t${t.type}${t.comment ? `\t${t.comment}` : ''}\n`);
    }),
};

const describeCommand: CliCommand = {
  name: 'describe',
  options: OPTIONS,
  summary: 'Columns, current version and change data feed state of a table',
  usage: '<catalog.schema.table> [--connection NAME] [--format text|json]',
  help: ENV_HELP,
  run: (argv, io) =>
    withCatalog(argv, io, '<catalog.schema.table>', async (cat, arg, json, out) => {
      const d = await cat.describe(parseTableName(arg));
      if (json) {
        await out.write(JSON.stringify({ ...d, columns: d.columns.map((c) => ({ name: c.name, type: formatDeltaType(c.type), nullable: c.nullable })) }, null, 2) + '\n');
        return;
      }
      const lines = [
        `Table:    ${d.name}`,
        `Version:  ${d.version} (${new Date(d.timestamp).toISOString()}${d.operation ? `, ${d.operation}` : ''})`,
        `CDF:      ${d.cdfEnabled ? 'enabled' : 'not enabled'}`,
        ...(d.enableCdfStatement ? [`          enable it with: ${d.enableCdfStatement}`] : []),
        'Columns:',
        ...d.columns.map((c) => `  ${c.name}  ${formatDeltaType(c.type)}${c.nullable ? '' : ' not null'}`),
      ];
      await out.write(lines.join('\n') + '\n');
    }),
};

/** `databricks`: check a connection and browse a workspace through a SQL warehouse. */
export const databricksCommand: CliCommand = {
  name: 'databricks',
  summary: 'Databricks SQL warehouse: test the connection, list catalogs and tables, describe a table',
  usage: '<command> [options]',
  subcommands: [testCommand, catalogsCommand, tablesCommand, describeCommand],
};
