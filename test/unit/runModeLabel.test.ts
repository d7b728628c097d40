import assert from 'node:assert/strict';
import { autoRunNote, runLabel, runModeLabel } from '../../src/protocol/runModeLabel';

describe('runModeLabel: run modes in the user\'s words (Progress history, Mappings tree)', () => {
  it('an initial load is called an initial load, never the engine\'s initial-swap / initial-merge', () => {
    assert.equal(runModeLabel('initial-swap'), 'initial load');
    assert.equal(runModeLabel('initial-merge'), 'initial load (merged)');
  });
  it('incremental stays as it is and a dry run is two words', () => {
    assert.equal(runModeLabel('incremental'), 'incremental');
    assert.equal(runModeLabel('dry-run'), 'dry run');
  });
  it('a run of mode auto names its path: the run log\'s "incremental" is "incremental (auto)", and the note says why', () => {
    const reason = 'incremental: 12 changes, 12% of 100 rows (at most auto.maxChangeShare 30%)';
    assert.equal(runLabel({ mode: 'incremental', auto: { path: 'incremental' } }), 'incremental (auto)');
    assert.equal(runLabel({ mode: 'auto-swap', auto: { path: 'snapshot' } }), 'snapshot load (auto)');
    assert.equal(runLabel({ mode: 'incremental' }), 'incremental');
    assert.equal(autoRunNote({ auto: { reason } }), `Mode auto: ${reason}.`);
    assert.equal(autoRunNote({}), undefined);
  });
});
