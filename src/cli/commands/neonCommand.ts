import { SyncError } from '../../sync/errors';
import type { NeonClient } from '../../sync/neon/NeonClient';
import { neonClientFor } from '../../sync/neon/resolveNeonConnection';
import type { NeonResolveOptions } from '../../sync/neon/resolveNeonConnection';
import { PREVIEW_ANNOTATION, applyBranchToParent, discardPreviewBranch, listPreviewBranches, previewOnBranch } from '../../sync/open/neonBranchPreview';
import { openSource } from '../../sync/open/openSource';
import type { RunResult } from '../../sync/ports/reports';
import type { CliCommand, CliIo } from '../CliCommand';
import { OutputStream } from '../OutputStream';
import { ProgressPrinter } from '../ProgressPrinter';
import { PIPELINE_HELP, PIPELINE_OPTIONS, mappingFromArgs, stderrLogger } from '../pipelineArgs';
import { formatOption, parseCommandArgs, versionOption } from '../parseCommandArgs';
import type { OptionSpecs } from '../parseCommandArgs';
import { renderTable } from './previewCommand';
import type { ParsedArgs } from '../parseCommandArgs';

const ENV_HELP = `Environment:
  NEON_API_KEY       a Neon API key (Neon Console > Account settings > API keys)
  NEON_API_HOST      the API's base URL (default https://console.neon.tech/api/v2)
  --format text|json output format (default text)`;

function neonOptions(io: CliIo): NeonResolveOptions {
  // Progress lines (waits, retries) reach stderr through the logger.
  return { env: io.env, logger: stderrLogger(io), signal: io.signal };
}

function positionals(args: ParsedArgs, names: readonly string[]): string[] {
  if (args.positionals.length < names.length) throw new SyncError('usage', `missing ${names[args.positionals.length]}`);
  if (args.positionals.length > names.length) throw new SyncError('usage', `unexpected argument '${args.positionals[names.length]}'`);
  return args.positionals;
}

/** The options of the listing commands (projects, branches, databases, previews). */
const LIST_OPTIONS: OptionSpecs = { format: { type: 'string' } };

async function withClient(argv: string[], io: CliIo, names: readonly string[], fn: (client: NeonClient, pos: string[], json: boolean, out: OutputStream) => Promise<void>): Promise<number> {
  const args = parseCommandArgs(argv, LIST_OPTIONS);
  const pos = positionals(args, names);
  const json = formatOption(args, ['text', 'json'] as const) === 'json';
  const client = await neonClientFor(neonOptions(io));
  const out = new OutputStream(io.stdout);
  await fn(client, pos, json, out);
  await out.flush();
  return 0;
}

const projectsCommand: CliCommand = {
  name: 'projects',
  options: LIST_OPTIONS,
  summary: 'List the Neon projects the API key can see',
  usage: '[--format text|json]',
  help: ENV_HELP,
  run: (argv, io) =>
    withClient(argv, io, [], async (client, _pos, json, out) => {
      const projects = await client.listProjects();
      if (json) return out.write(JSON.stringify(projects.map((p) => ({ id: p.id, name: p.name, region: p.region_id, pgVersion: p.pg_version, createdAt: p.created_at })), null, 2) + '\n');
      if (!projects.length) return out.write('No projects are visible to this API key.\n');
      for (const p of projects) await out.write(`${p.id}\t${p.name}\t${p.region_id}\tPostgres ${p.pg_version}\n`);
    }),
};

const branchesCommand: CliCommand = {
  name: 'branches',
  options: LIST_OPTIONS,
  summary: 'List the branches of a project (default marked, parent, created at)',
  usage: '<project> [--format text|json]',
  help: ENV_HELP,
  run: (argv, io) =>
    withClient(argv, io, ['<project>'], async (client, [projectRef], json, out) => {
      const project = await client.findProject(projectRef as string);
      const branches = await client.listBranches(project.id);
      const byId = new Map(branches.map((b) => [b.branch.id, b.branch.name]));
      if (json) {
        return out.write(JSON.stringify(branches.map(({ branch: b, annotations }) => ({ id: b.id, name: b.name, default: b.default, parentId: b.parent_id ?? null, createdAt: b.created_at, state: b.current_state, annotations })), null, 2) + '\n');
      }
      for (const { branch: b, annotations } of branches) {
        const parent = b.parent_id ? `parent ${byId.get(b.parent_id) ?? b.parent_id}` : 'root';
        const preview = annotations[PREVIEW_ANNOTATION.mapping] ? `\tpreview of ${annotations[PREVIEW_ANNOTATION.mapping]}` : '';
        await out.write(`${b.id}\t${b.name}${b.default ? ' (default)' : ''}\t${parent}\tcreated ${b.created_at}${preview}\n`);
      }
    }),
};

const databasesCommand: CliCommand = {
  name: 'databases',
  options: LIST_OPTIONS,
  summary: 'List the databases (and owners) of a branch, and its roles',
  usage: '<project> <branch> [--format text|json]',
  help: ENV_HELP,
  run: (argv, io) =>
    withClient(argv, io, ['<project>', '<branch>'], async (client, [projectRef, branchRef], json, out) => {
      const project = await client.findProject(projectRef as string);
      const { branch } = await client.findBranch(project.id, branchRef as string);
      const [dbs, roles] = await Promise.all([client.listDatabases(project.id, branch.id), client.listRoles(project.id, branch.id)]);
      if (json) return out.write(JSON.stringify({ databases: dbs.map((d) => ({ name: d.name, owner: d.owner_name })), roles: roles.map((r) => r.name) }, null, 2) + '\n');
      for (const d of dbs) await out.write(`${d.name}\towner ${d.owner_name}\tneon:${project.id}/${branch.name}/${d.name}\n`);
      await out.write(`Roles: ${roles.map((r) => r.name).join(', ') || '(none)'}\n`);
    }),
};

function counts(r: RunResult): string {
  return r.status === 'up-to-date'
    ? `up to date at version ${r.toVersion}`
    : `${r.mode} sync to version ${r.toVersion}: ${r.inserted} insert, ${r.updated} update, ${r.deleted} delete, ${r.unchanged} unchanged${r.deadLettered ? `, ${r.deadLettered} dead-lettered` : ''}`;
}

const MAPPING_OPTIONS = { ...PIPELINE_OPTIONS, format: { type: 'string' as const } };
const PREVIEW_OPTIONS: OptionSpecs = { ...MAPPING_OPTIONS, 'to-version': { type: 'string' }, rows: { type: 'string' } };
const APPLY_OPTIONS: OptionSpecs = { ...MAPPING_OPTIONS, 'keep-branch': { type: 'boolean' } };

/** Rows of the change list `neon preview` prints unless --rows says otherwise. */
const SAMPLE_ROWS = 20;

const previewCommand: CliCommand = {
  name: 'preview',
  options: PREVIEW_OPTIONS,
  summary: 'Run the mapping\'s sync into a new child branch of its Neon target branch, and print its connection string',
  usage: '--mapping FILE [--to-version N] [--rows N] [--format text|json]',
  help: `Options:
${PIPELINE_HELP}
  --to-version N     sync the branch up to version N (default: the latest)
  --rows N           list the first N rows Apply to Parent will change (default ${SAMPLE_ROWS}; 0: counts only)

The mapping's target.connection must be neon:<project>/<branch>/<database>. The branch is
named delta-sync-preview-<mapping>-<time> and annotated; a failed or cancelled preview
deletes it. Then: 'neon apply --mapping FILE <branch>' or 'neon discard --mapping FILE <branch>'.

${ENV_HELP}`,
  async run(argv, io) {
    const args = parseCommandArgs(argv, PREVIEW_OPTIONS);
    if (args.positionals.length) throw new SyncError('usage', `unexpected argument '${args.positionals[0]}'`);
    const json = formatOption(args, ['text', 'json'] as const) === 'json';
    const mapping = mappingFromArgs(args);
    const logger = stderrLogger(io);
    const source = await openSource(mapping.source, { logger });
    try {
      const printer = new ProgressPrinter(io.stderr);
      const toVersion = versionOption(args, 'to-version');
      const rows = versionOption(args, 'rows') ?? SAMPLE_ROWS;
      // The row list is the preview against the parent pinned to the version the branch reached (limit 0 still counts).
      const r = await previewOnBranch({
        mapping, source, neon: neonOptions(io), logger, signal: io.signal, onEvent: printer.onEvent, changes: { limit: rows, checks: true }, ...(toVersion !== undefined ? { toVersion } : {}),
      });
      const out = new OutputStream(io.stdout);
      if (json) {
        await out.write(JSON.stringify({
          project: r.projectId, branch: { id: r.branch.id, name: r.branch.name }, parent: { id: r.parent.id, name: r.parent.name },
          parentCheckpoint: r.parentCheckpoint === null ? null : String(r.parentCheckpoint), connectionUri: r.connectionUri,
          result: { mode: r.result.mode, status: r.result.status, fromVersion: r.result.fromVersion, toVersion: r.result.toVersion, inserted: r.result.inserted, updated: r.result.updated, deleted: r.result.deleted, unchanged: r.result.unchanged },
          changes: r.changes ? { totals: r.changes.totals, matching: r.changes.matching, rows: r.changes.rows, warnings: r.changes.warnings ?? [] } : null,
        }, null, 2) + '\n');
      } else {
        await out.write([
          `Preview branch ${r.branch.name} (${r.branch.id}) of ${r.parent.name}: ${counts(r.result)}`,
          `Connection string (role ${r.role}): ${r.connectionUri}`,
          `Apply to ${r.parent.name}: delta-neon-sync neon apply --mapping <file> ${r.branch.name}`,
          `Discard:  delta-neon-sync neon discard --mapping <file> ${r.branch.name}`,
        ].join('\n') + '\n');
        if (r.changes) {
          await out.write(`\nWhat Apply to ${r.parent.name} will change (the rows the branch now has different from ${r.parent.name}):\n`);
          await out.write(renderTable(r.changes).replace('(use --offset / --limit)', '(use --rows N)'));
        }
      }
      await out.flush();
      return 0;
    } finally {
      await source.close?.();
    }
  },
};

const applyCommand: CliCommand = {
  name: 'apply',
  options: APPLY_OPTIONS,
  summary: 'Run the same sync on the preview branch\'s parent, for the same versions (refused if the parent moved)',
  usage: '--mapping FILE <preview-branch> [--keep-branch]',
  help: `Options:
${PIPELINE_HELP}
  --keep-branch      keep the preview branch after applying (default: delete it)

${ENV_HELP}`,
  async run(argv, io) {
    const args = parseCommandArgs(argv, APPLY_OPTIONS);
    const [branchRef] = positionals(args, ['<preview-branch>']);
    const mapping = mappingFromArgs(args);
    const logger = stderrLogger(io);
    const source = await openSource(mapping.source, { logger });
    try {
      const printer = new ProgressPrinter(io.stderr);
      const r = await applyBranchToParent({ mapping, source, branch: branchRef as string, discard: args.values['keep-branch'] !== true, neon: neonOptions(io), logger, signal: io.signal, onEvent: printer.onEvent });
      io.stdout.write(`Applied to ${r.parent.name}: ${counts(r.result)}${r.discarded ? `. Deleted preview branch ${r.branch.name}.` : ''}\n`);
      return 0;
    } finally {
      await source.close?.();
    }
  },
};

const discardCommand: CliCommand = {
  name: 'discard',
  options: MAPPING_OPTIONS,
  summary: 'Delete a preview branch made by this tool',
  usage: '--mapping FILE <preview-branch> | <project> <preview-branch>',
  help: ENV_HELP,
  async run(argv, io) {
    const args = parseCommandArgs(argv, MAPPING_OPTIONS);
    const withMapping = args.values.mapping !== undefined || args.values.target !== undefined;
    const pos = positionals(args, withMapping ? ['<preview-branch>'] : ['<project>', '<preview-branch>']);
    const mapping = withMapping ? mappingFromArgs(args) : undefined;
    const branch = await discardPreviewBranch({
      ...(mapping ? { mapping } : { project: pos[0] as string }), branch: pos[pos.length - 1] as string, neon: neonOptions(io), logger: stderrLogger(io),
    });
    io.stdout.write(`Deleted preview branch ${branch.name} (${branch.id}).\n`);
    return 0;
  },
};

const previewsCommand: CliCommand = {
  name: 'previews',
  options: LIST_OPTIONS,
  summary: 'List the preview branches this tool made in a project',
  usage: '<project> [--format text|json]',
  help: ENV_HELP,
  run: (argv, io) =>
    withClient(argv, io, ['<project>'], async (client, [projectRef], json, out) => {
      const project = await client.findProject(projectRef as string);
      const previews = await listPreviewBranches(client, project.id);
      if (json) return out.write(JSON.stringify(previews.map(({ branch: b, annotations }) => ({ id: b.id, name: b.name, createdAt: b.created_at, mapping: annotations[PREVIEW_ANNOTATION.mapping], parentCheckpoint: annotations[PREVIEW_ANNOTATION.parentCheckpoint] })), null, 2) + '\n');
      if (!previews.length) return out.write('No preview branches.\n');
      for (const { branch: b, annotations } of previews) await out.write(`${b.id}\t${b.name}\tmapping ${annotations[PREVIEW_ANNOTATION.mapping]}\tcreated ${b.created_at}\n`);
    }),
};

/** `neon`: browse Neon projects, branches and databases; preview a sync on a branch. */
export const neonCommand: CliCommand = {
  name: 'neon',
  summary: 'Neon: list projects, branches and databases; preview a sync on a branch, apply it to the parent, discard it',
  usage: '<command> [options]',
  subcommands: [projectsCommand, branchesCommand, databasesCommand, previewCommand, applyCommand, discardCommand, previewsCommand],
};
