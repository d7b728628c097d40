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
