import type { CliCommand } from './CliCommand';

export interface ResolvedCommand {
  /** The deepest command matched (a leaf, or a group when no subcommand followed). */
  command: CliCommand;
  /** Names from the top, e.g. ['delta', 'cdf']. */
  path: string[];
  /** Arguments after the command path. */
  rest: string[];
}

/** A tree of commands, looked up by leading positional words. */
export class CommandRegistry {
  private readonly top = new Map<string, CliCommand>();

  constructor(readonly program: string) {}

  register(command: CliCommand): this {
    if (this.top.has(command.name)) throw new Error(`command registered twice: ${command.name}`);
    this.top.set(command.name, command);
    return this;
  }

  commands(): CliCommand[] {
    return [...this.top.values()];
  }

  /** Undefined when the first word names no command (or there is none). */
  resolve(argv: string[]): ResolvedCommand | undefined {
    const first = argv[0];
    const root = first === undefined ? undefined : this.top.get(first);
    if (!root) return undefined;
    let command = root;
    const path = [root.name];
    let i = 1;
    while (command.subcommands && i < argv.length) {
      const next = command.subcommands.find((c) => c.name === argv[i]);
      if (!next) break;
      command = next;
      path.push(next.name);
      i++;
    }
    return { command, path, rest: argv.slice(i) };
  }

  /** `delta-neon-sync delta cdf <table-path> ...` */
  usageLine(resolved: Pick<ResolvedCommand, 'command' | 'path'>): string {
    const { command, path } = resolved;
    const args = command.subcommands && !command.run ? '<command> [options]' : command.usage;
    return `Usage: ${[this.program, ...path].join(' ')}${args ? ` ${args}` : ''}`;
  }

  /** Full `--help` text for a command or group. */
  helpText(resolved: Pick<ResolvedCommand, 'command' | 'path'>): string {
    const { command } = resolved;
    const lines = [this.usageLine(resolved), '', command.summary];
    if (command.subcommands) {
      lines.push('', 'Commands:');
      lines.push(...listCommands(command.subcommands));
      lines.push('', `Run '${[this.program, ...resolved.path].join(' ')} <command> --help' for a command's options.`);
    }
    if (command.help) lines.push('', command.help.trimEnd());
    return lines.join('\n') + '\n';
  }

  /** Help for the program itself. */
  programHelp(): string {
    return [
      `Usage: ${this.program} <command> [options]`,
      '',
      'Commands:',
      ...listCommands(this.commands()),
      '',
      `Run '${this.program} <command> --help' for a command's options.`,
    ].join('\n') + '\n';
  }
}

function listCommands(commands: CliCommand[]): string[] {
  const width = Math.max(...commands.map((c) => c.name.length));
  return commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
}
