import type { OptionSpecs } from './parseCommandArgs';

/**
 * What every CLI command module provides. A command is either a leaf (`run`) or a group
 * (`subcommands`, e.g. `delta`); the registry walks groups by name, so adding `sync`,
 * `preview`, `status` or `demo` later means registering one more module.
 */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
  /** Aborted on SIGINT / SIGTERM; long reads pass it down so they stop promptly. */
  signal: AbortSignal;
  /**
   * A command that treats SIGINT/SIGTERM as its normal end (`sync --watch`) calls this
   * so the process exits with the command's code (0) rather than 130.
   */
  stoppedBySignalCleanly?(): void;
}

export interface CliCommand {
  name: string;
  /** One line for the parent's command list. */
  summary: string;
  /** Arguments after the command path, e.g. `<table-path> [--version N] --format jsonl`. */
  usage: string;
  /** Extra text for `--help`: options and examples. */
  help?: string;
  /**
   * Leaf commands: the flags `run` parses (with parseCommandArgs; `--help` comes on top). The
   * check that every hint names a flag that exists reads them (test/unit/hintTargets.test.ts).
   */
  options?: OptionSpecs;
  /** Leaf commands: runs with the arguments after the command path; resolves to the exit code. */
  run?: (argv: string[], io: CliIo) => Promise<number>;
  /** Group commands. */
  subcommands?: CliCommand[];
}
