import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SyncError } from '../../src/sync/errors';
import { missingRightsError } from '../../src/sync/ports/rights';
import { renderHint } from '../../src/sync/userActions';
import { logText, toProtocolError } from '../../src/views/toProtocolError';

describe('hints per surface: the error carries an action id, the CLI and VS Code word it', () => {
  it('renders the same hint as a CLI command for the terminal and as the palette command in VS Code', () => {
    const e = new SyncError('mapping', 'Pipeline "p" has no checkpoint: a dry run checks incremental changes; preview the initial load instead.', {
      hint: 'Preview the initial load instead: {action}.',
      action: { id: 'preview' },
    });
    assert.equal(e.hint, 'Preview the initial load instead: `delta-neon-sync preview --mapping <file>`.');
    assert.equal(e.describe(), `${e.message}\nHint: Preview the initial load instead: \`delta-neon-sync preview --mapping <file>\`.`);
    assert.equal(e.hintFor('vscode'), 'Preview the initial load instead: the "Delta Sync: Preview Changes" command on the mapping.');
    assert.equal(toProtocolError(e).hint, e.hintFor('vscode'));
  });

  it('keeps the action through withContext and names an argument (a preview branch) on both surfaces', () => {
    const e = new SyncError('target', 'x', { hint: 'Discard it ({action}) and preview again.', action: { id: 'neon-discard', arg: 'preview/orders-1' } }).withContext('branch main');
    assert.equal(e.hint, 'Discard it (`delta-neon-sync neon discard --mapping <file> preview/orders-1`) and preview again.');
    assert.equal(e.hintFor('vscode'), 'Discard it (the "Delta Sync: Discard Neon Preview Branch..." command on the mapping (branch preview/orders-1)) and preview again.');
  });

  it('words the missing-GRANTs refusal for each surface', () => {
    const e = missingRightsError(
      { role: 'app', table: 'public.orders', rights: [] } as unknown as Parameters<typeof missingRightsError>[0],
      [{ what: 'INSERT on public.orders', why: 'writing rows', sql: 'GRANT INSERT ON "public"."orders" TO "app";', held: false, purposes: ['incremental'] }] as unknown as Parameters<typeof missingRightsError>[1],
    );
    assert.match(e.hint ?? '', /`delta-neon-sync grants <mapping>` gives all the SQL/);
    assert.match(e.hintFor('vscode') ?? '', /the "Delta Sync: Copy Required GRANTs" command on the mapping gives all the SQL/);
    assert.doesNotMatch(e.hintFor('vscode') ?? '', /delta-neon-sync /);
  });

  it("the extension's log line words the hint for VS Code too (the dry run's refusal named the CLI there)", () => {
    const e = new SyncError('usage', 'Pipeline "p" has no checkpoint: a dry run checks incremental changes.', { hint: 'Preview the initial load instead: {action}.', action: { id: 'preview' } });
    const line = logText(e);
    assert.match(line, /Hint: Preview the initial load instead: the "Delta Sync: Preview Changes" command on the mapping\./);
    assert.doesNotMatch(line, /delta-neon-sync/);
  });

  it('leaves a hint without an action as written', () => {
    assert.equal(renderHint('Raise batch.maxRows.', undefined, 'vscode'), 'Raise batch.maxRows.');
  });

  it('no engine hint spells a CLI command itself (they go through userActions)', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const f of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, f.name);
        if (f.isDirectory()) walk(p);
        else if (p.endsWith('.ts') && !p.endsWith('userActions.ts')) {
          fs.readFileSync(p, 'utf8').split('\n').forEach((line, i) => {
            if (/hint[^\n]*delta-neon-sync [a-z]/.test(line) || /^\s*(const|let) [A-Z_]+ = '[^']*delta-neon-sync [a-z]/.test(line)) offenders.push(`${p}:${i + 1}`);
          });
        }
      }
    };
    walk(path.join(__dirname, '../../src/sync'));
    assert.deepEqual(offenders, []);
  });
});
