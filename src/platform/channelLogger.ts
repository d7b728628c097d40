import type * as vscode from 'vscode';
import type { Logger } from '../sync/ports/Logger';

/**
 * The engine's `Logger` over the extension's log channel: the engine gets the logger passed
 * in and never sees VS Code; the channel's own level setting filters what is shown.
 */
export function channelLogger(channel: vscode.LogOutputChannel): Logger {
  return {
    debug: (m) => channel.debug(m),
    info: (m) => channel.info(m),
    warn: (m) => channel.warn(m),
    error: (m) => channel.error(m),
  };
}
