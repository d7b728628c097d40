import { parseArgs } from 'node:util';
import { SyncError } from '../sync/errors';

/** Option specs as node:util parseArgs takes them; every command also gets `--help`. */
export type OptionSpecs = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  help: boolean;
}

/**
 * Strict parsing: unknown flags, missing option values and repeated options become
 * `usage` SyncErrors, which the CLI reports with the command's usage line and exit code 1.
 */
export function parseCommandArgs(argv: string[], options: OptionSpecs): ParsedArgs {
  let parsed: ReturnType<typeof parseWithTokens>;
  try {
    parsed = parseWithTokens(argv, options);
  } catch (e) {
    // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes and readable messages.
    throw new SyncError('usage', e instanceof Error ? e.message : String(e), { cause: e });
  }
  // parseArgs silently keeps the last of a repeated option; a repeated bound is a mistake.
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw new SyncError('usage', `option --${t.name} given more than once`);
    seen.add(t.name);
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [k, v] of Object.entries(parsed.values)) values[k] = Array.isArray(v) ? v[v.length - 1] : v;
  return { values, positionals: parsed.positionals, help: values.help === true };
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A non-negative integer (table versions). */
export function versionOption(args: ParsedArgs, name: string): number | undefined {
  const raw = stringOption(args, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new SyncError('usage', `--${name} must be a non-negative integer version, got '${raw}'`);
  }
  return Number(raw);
}

/**
 * An ISO 8601 timestamp, returned as a canonical UTC string (`...Z`). A value without a zone
 * is read as UTC, not local time, so the same command means the same thing on every machine.
 */
export function timestampOption(args: ParsedArgs, name: string): string | undefined {
  const raw = stringOption(args, name);
  if (raw === undefined) return undefined;
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i.exec(raw.trim());
  if (!m) {
    throw new SyncError('usage', `--${name} must be an ISO 8601 timestamp (e.g. 2024-01-06T15:44:59.570Z), got '${raw}'`);
  }
  const [, date, time, zone] = m;
  // Date keeps milliseconds only: commit timestamps are milliseconds, so nothing is lost.
  const ms = Date.parse(`${date}T${time ?? '00:00:00'}${zone ?? 'Z'}`.replace(/(\.\d{3})\d+/, '$1'));
  if (Number.isNaN(ms)) throw new SyncError('usage', `--${name}: not a valid date/time: '${raw}'`);
  return new Date(ms).toISOString();
}

/** Exactly one positional argument, named in the message when missing. */
export function singlePositional(args: ParsedArgs, what: string): string {
  if (args.positionals.length === 0) throw new SyncError('usage', `missing ${what}`);
  if (args.positionals.length > 1) {
    throw new SyncError('usage', `unexpected argument '${args.positionals[1]}' (only one ${what} is taken)`);
  }
  return args.positionals[0];
}

/** At most one of the named options. */
export function exclusive(args: ParsedArgs, ...names: string[]): void {
  const given = names.filter((n) => args.values[n] !== undefined);
  if (given.length > 1) {
    throw new SyncError('usage', `${given.map((n) => `--${n}`).join(' and ')} cannot be used together`);
  }
}

/** `--format`: one of `allowed`, default the first. */
export function formatOption<T extends string>(args: ParsedArgs, allowed: readonly T[]): T {
  const raw = stringOption(args, 'format');
  if (raw === undefined) return allowed[0];
  const found = allowed.find((a) => a === raw);
  if (!found) throw new SyncError('usage', `--format must be ${allowed.join(' or ')}, got '${raw}'`);
  return found;
}

function parseWithTokens(argv: string[], options: OptionSpecs) {
  return parseArgs({
    args: argv,
    options: { ...options, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
    tokens: true,
  });
}

/** `--batch-size N`: rows per read batch, which bounds memory; default 10000. */
export function batchSizeOption(args: ParsedArgs): number {
  const raw = stringOption(args, 'batch-size');
  if (raw === undefined) return 10_000;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 10_000_000) {
    throw new SyncError('usage', `--batch-size must be an integer from 1 to 10000000, got '${raw}'`);
  }
  return n;
}

/** `<table-path> [--version N | --timestamp ISO]`: the table and which version of it. */
export function tableAtVersion(args: ParsedArgs): { tablePath: string; version: number | undefined; timestamp: string | undefined } {
  const tablePath = singlePositional(args, '<table-path>');
  exclusive(args, 'version', 'timestamp');
  return { tablePath, version: versionOption(args, 'version'), timestamp: timestampOption(args, 'timestamp') };
}
