import assert from 'node:assert/strict';
import { runModeLabel } from '../../src/protocol/runModeLabel';

describe('runModeLabel: run modes in the user\'s words (Progress history, Mappings tree)', () => {
  it('an initial load is called an initial load, never the engine\'s initial-swap / initial-merge', () => {
    assert.equal(runModeLabel('initial-swap'), 'initial load');
    assert.equal(runModeLabel('initial-merge'), 'initial load (merged)');
  });
  it('incremental stays as it is and a dry run is two words', () => {
    assert.equal(runModeLabel('incremental'), 'incremental');
    assert.equal(runModeLabel('dry-run'), 'dry run');
  });
});
