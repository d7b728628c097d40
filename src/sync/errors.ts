import { renderHint } from './userActions';
import type { Surface, UserAction } from './userActions';

/**
 * Every failure the engine reports is a SyncError: classified where it enters, with a
 * `kind` for programs, a `retry` policy, and a `hint` telling the user what to do next.
 */
export type SyncErrorKind =
  | 'delta-protocol' // unsupported reader version / feature
  | 'delta-log' // missing, corrupt or cleaned-up log
  | 'delta-file' // a data / DV / cdc file is missing or corrupt
  | 'cdf-not-enabled'
  | 'cdf-range' // invalid or vacuumed CDF range
  | 'time-travel' // version / timestamp outside the table's history
  | 'mapping' // bad mapping file
  | 'schema-drift'
  | 'target' // Postgres errors that are not transient
  | 'connection' // transient connection problems
  | 'auth'
  | 'cancelled'
  | 'usage'; // bad CLI arguments

export type RetryPolicy = 'auto' | 'manual' | 'never';

export interface SyncErrorDetails {
  /** Table path or name at fault, when there is one. */
  table?: string;
  version?: number;
  column?: string;
  setting?: string;
  /** What to do next; `{action}` stands for `action`, worded per surface (src/sync/userActions.ts). */
  hint?: string;
  /** The command the hint points to, by id: the CLI and VS Code name it their own way. */
  action?: UserAction;
  retry?: RetryPolicy;
  cause?: unknown;
  /**
   * For errors retried automatically: what the user is told while the run retries it
   * (for example that it waits for a server to start), instead of the message.
   */
  progress?: string;
}

export class SyncError extends Error {
  readonly kind: SyncErrorKind;
  readonly table?: string;
  readonly version?: number;
  readonly column?: string;
  readonly setting?: string;
  /** The hint as the CLI (and the log) words it; hintFor('vscode') for the editor. */
  readonly hint?: string;
  readonly action?: UserAction;
  /** The hint as written, `{action}` unfilled. */
  readonly hintTemplate?: string;
  readonly retry: RetryPolicy;
  readonly progress?: string;

  constructor(kind: SyncErrorKind, message: string, details: SyncErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'SyncError';
    this.kind = kind;
    this.table = details.table;
    this.version = details.version;
    this.column = details.column;
    this.setting = details.setting;
    this.action = details.action;
    this.hintTemplate = details.hint;
    this.hint = details.hint === undefined ? undefined : renderHint(details.hint, details.action, 'cli');
    this.retry = details.retry ?? 'never';
    this.progress = details.progress;
  }

  /**
   * The same error with more context, where a layer that knows more (which source, which
   * version, which server) rethrows it: `detail` is appended to the message in
   * parentheses, and `details` override the fields they set. Kind and retry stay unless
   * `details` sets them; the original error becomes the cause.
   */
  withContext(detail: string | undefined, details: SyncErrorDetails = {}): SyncError {
    const e = new SyncError(this.kind, detail ? `${this.message} (${detail})` : this.message, {
      table: this.table, version: this.version, column: this.column, setting: this.setting, hint: this.hintTemplate, action: this.action, retry: this.retry, progress: this.progress,
      cause: this.cause ?? this,
      ...details,
    });
    return e;
  }

  /** The hint worded for a surface: the command to type in the CLI, the palette command in VS Code. */
  hintFor(surface: Surface): string | undefined {
    return this.hintTemplate === undefined ? undefined : renderHint(this.hintTemplate, this.action, surface);
  }

  /** One line for logs and CLI stderr: message, then the hint. */
  describe(): string {
    return this.hint ? `${this.message}\nHint: ${this.hint}` : this.message;
  }
}

export function isSyncError(e: unknown): e is SyncError {
  return e instanceof SyncError;
}
