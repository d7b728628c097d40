import { isSyncError } from '../sync/errors';
import type { CliIo } from './CliCommand';
import { CommandRegistry } from './CommandRegistry';
import type { ResolvedCommand } from './CommandRegistry';
import { OutputClosedError } from './OutputStream';
import { databricksCommand } from './commands/databricksCommand';
import { deltaCommand } from './commands/deltaCommand';
import { demoCommand } from './commands/demoCommand';
import { grantsCommand } from './commands/grantsCommand';
import { neonCommand } from './commands/neonCommand';
import { previewCommand } from './commands/previewCommand';
import { repairCommand } from './commands/repairCommand';
import { statusCommand } from './commands/statusCommand';
import { syncCommand } from './commands/syncCommand';

export const PROGRAM = 'delta-neon-sync';

/** Every command the CLI knows. */
export function createRegistry(): CommandRegistry {
  return new CommandRegistry(PROGRAM)
    .register(syncCommand)
    .register(previewCommand)
    .register(repairCommand)
    .register(statusCommand)
    .register(grantsCommand)
    .register(demoCommand)
    .register(deltaCommand)
    .register(databricksCommand)
    .register(neonCommand);
}

/** `--help` / `-h` anywhere before a `--` terminator. */
function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/**
 * Runs one CLI invocation and resolves to its exit code: 0 on success (also when the reader
 * of stdout goes away early), 1 on any error. Errors go to stderr as the SyncError message
 * and hint; the stack only when DEBUG is set. Usage errors add the command's usage line.
 */
export async function main(argv: string[], io: CliIo, registry = createRegistry()): Promise<number> {
  const write = (s: string): void => {
    io.stderr.write(s.endsWith('\n') ? s : s + '\n');
  };
  if (argv.length === 0 || (argv.length === 1 && wantsHelp(argv))) {
    (argv.length === 0 ? write : (s: string) => io.stdout.write(s))(registry.programHelp());
    return argv.length === 0 ? 1 : 0;
  }
  const resolved = registry.resolve(argv);
  if (!resolved) {
    write(`${PROGRAM}: unknown command '${argv[0]}'\n${registry.programHelp()}`);
    return 1;
  }
  const { command, rest } = resolved;
  if (wantsHelp(rest)) {
    io.stdout.write(registry.helpText(resolved));
    return 0;
  }
  if (!command.run) {
    const what = rest.length ? `unknown command '${rest[0]}'` : 'missing command';
    write(`${PROGRAM} ${resolved.path.join(' ')}: ${what}\n${registry.helpText(resolved)}`);
    return 1;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    return reportError(e, io, registry, resolved);
  }
}

function reportError(e: unknown, io: CliIo, registry: CommandRegistry, resolved: ResolvedCommand): number {
  if (e instanceof OutputClosedError) return 0;
  const debug = !!io.env.DEBUG;
  const prefix = `${PROGRAM} ${resolved.path.join(' ')}`;
  let text: string;
  if (isSyncError(e) && e.kind === 'usage') {
    // A usage error's hint says what to run instead (e.g. --allow-mass-delete with --watch).
    text = `${prefix}: ${e.message}${e.hint ? `\nHint: ${e.hint}` : ''}\n${registry.usageLine(resolved)}\nRun '${prefix} --help' for details.`;
  } else if (isSyncError(e)) {
    text = `Error: ${e.describe()}`;
  } else if (e instanceof Error) {
    // Not classified by the engine: a bug or an environment failure; say so plainly.
    text = `Error: ${e.message}`;
  } else {
    text = `Error: ${String(e)}`;
  }
  if (debug && e instanceof Error && e.stack) text += `\n${e.stack}`;
  io.stderr.write(text + '\n');
  return 1;
}
