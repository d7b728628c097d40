import { SyncError } from '../errors';

/**
 * Durations as users type them (`500ms`, `1s`, `5m`, `1h`, or a bare number of seconds) and
 * as the CLI and the extension print them: one parser for `--interval`/`--every` and for the
 * extension's "Run Every…" box.
 */
export function parseDuration(text: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text.trim());
  const unit = m ? ({ ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : 0;
  const ms = m ? Number(m[1]) * unit : NaN;
  if (!Number.isFinite(ms) || ms < 50) throw new SyncError('usage', `${name} must be a duration such as 500ms, 1s, 5m or 1h (at least 50ms), got '${text}'`);
  return ms;
}

export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
