/**
 * The one conversion of a thrown value into what users see. A SyncError keeps its kind and
 * hint (the engine classified it where it entered); anything else is its message. Webview
 * responses and run snapshots carry the `ProtocolError`; trees, toasts, input validation
 * and log lines show its one-line `errorText`; failures logged as such get `logText`.
 */
import type { ProtocolError } from '../protocol/messages';
import { isSyncError } from '../sync/errors';

export function toProtocolError(e: unknown): ProtocolError {
  if (isSyncError(e)) return { message: e.message, kind: e.kind, hint: e.hint };
  return { message: e instanceof Error ? e.message : String(e) };
}

/** One line: the message, then the hint in parentheses when there is one. */
export function errorText(e: unknown): string {
  const error = toProtocolError(e);
  return error.hint ? `${error.message} (${error.hint})` : error.message;
}

/**
 * For the log: a SyncError is an expected, classified failure, so its message and hint say
 * it all; anything else is a bug, so its stack goes to the log.
 */
export function logText(e: unknown): string {
  if (isSyncError(e)) return e.describe();
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}
