/**
 * A run's mode in the user's words, for every view that lists runs (the Progress panel's
 * history, the Mappings tree's Last run): the run log stores the engine's names
 * (initial-swap, initial-merge), which the user never chose. Shared by the host and media/.
 */
export function runModeLabel(mode: string): string {
  switch (mode) {
    case 'initial-swap':
      return 'initial load';
    case 'initial-merge':
      return 'initial load (merged)';
    case 'auto-swap':
      return 'snapshot load (auto)';
    case 'auto-merge':
      return 'snapshot load (auto, merged)';
    case 'dry-run':
      return 'dry run';
    default:
      return mode;
  }
}

/**
 * A run of the run log in the user's words: its mode, and for a run of mapping mode "auto"
 * the path it took ("incremental (auto)": the run log's mode says only "incremental").
 */
export function runLabel(run: { mode: string; auto?: { path: string } }): string {
  const label = runModeLabel(run.mode);
  return run.auto && run.mode === 'incremental' ? `${label} (auto)` : label;
}

/** Why a run of mapping mode "auto" took its path, as the history shows it ("Mode auto: incremental: 12 changes, ..."); undefined outside mode auto. */
export function autoRunNote(run: { auto?: { reason: string } }): string | undefined {
  return run.auto ? `Mode auto: ${run.auto.reason}.` : undefined;
}
