import * as assert from 'node:assert/strict';
import { SyncError } from '../../src/sync/errors';
import { classifyPgError } from '../../src/sync/postgres/classifyPgError';
import type { ValueEncodeError } from '../../src/sync/postgres/copyEncoder';
import { fieldEncoderFor } from '../../src/sync/postgres/copyEncoder';
import { aboutMappingFile, locateSetting, openableSetting, settingRefOf } from '../../src/views/settingLocation';

/** A mapping file as Create Mapping writes it (JSON.stringify, two spaces). */
const mappingText = JSON.stringify(
  {
    name: 'orders',
    source: { type: 'delta', path: '/data/orders "copy" {1}' },
    target: { connection: 'sandbox', schema: 'public', table: 'orders' },
    key: ['id'],
    filter: [{ column: 'deadLetter', op: 'is not null' }],
    safety: { maxDeleteShare: 0.5 },
    schemaDrift: 'fail',
  },
  null,
  2,
);

/** The text at a location, as the editor selects it. */
const at = (text: string, l: { offset: number; length: number }): string => text.slice(l.offset, l.offset + l.length);

describe('the setting an error names, and where it is in the mapping file (Open Setting)', () => {
  it('finds a nested key by its dotted path: the cursor lands on its name', () => {
    const l = locateSetting(mappingText, 'safety.maxDeleteShare');
    assert.equal(at(mappingText, l), '"maxDeleteShare"');
    assert.equal(l.exact, true);
    // Its own line, not safety's.
    assert.equal(mappingText.split('\n')[mappingText.slice(0, l.offset).split('\n').length - 1]?.trim(), '"maxDeleteShare": 0.5');
  });

  it('finds a top-level key, not a same-named value or a key inside an array (filter conditions)', () => {
    const l = locateSetting(mappingText, 'schemaDrift');
    assert.equal(at(mappingText, l), '"schemaDrift"');
    assert.equal(l.exact, true);
    // "deadLetter" is only a filter column here: the file does not set the deadLetter setting.
    const d = locateSetting(mappingText, 'deadLetter');
    assert.equal(d.exact, false);
    assert.equal(d.found, '');
    assert.equal(at(mappingText, d), '{');
    assert.equal(d.offset, 0);
  });

  it('a key the file lacks under an object it has: the cursor goes to that object\'s key, and says it is not the key', () => {
    const l = locateSetting(mappingText, 'safety.maxDeleteRows');
    assert.equal(l.exact, false);
    assert.equal(l.found, 'safety');
    assert.equal(at(mappingText, l), '"safety"');
    const i = locateSetting(mappingText, 'initialLoad.mode');
    assert.equal(i.found, '');
    assert.equal(at(mappingText, i), '{');
  });

  it('a file that is not JSON locates what it could read before the error, else the start', () => {
    const broken = '{\n  "name": "x",\n  "safety": { "maxDeleteShare": 0.5,, }';
    assert.equal(at(broken, locateSetting(broken, 'safety.maxDeleteShare')), '"maxDeleteShare"');
    const l = locateSetting('not json', 'deadLetter');
    assert.deepEqual({ offset: l.offset, exact: l.exact }, { offset: 0, exact: false });
  });

  it('names the mapping\'s settings and the deltaSync.* settings, never connection-string parameters', () => {
    assert.deepEqual(settingRefOf(new SyncError('target', 'x', { setting: 'safety.maxDeleteShare' })), { scope: 'mapping', key: 'safety.maxDeleteShare' });
    assert.deepEqual(settingRefOf(new SyncError('schema-drift', 'x', { setting: 'schemaDrift' })), { scope: 'mapping', key: 'schemaDrift' });
    assert.deepEqual(settingRefOf(new SyncError('usage', 'x', { setting: 'deltaSync.preview.pageSize' })), { scope: 'vscode', key: 'deltaSync.preview.pageSize' });
    for (const setting of ['lock_timeout', 'sslmode', 'NEON_API_KEY', 'run_lease_timeout']) assert.equal(settingRefOf(new SyncError('target', 'x', { setting })), undefined, setting);
    assert.equal(settingRefOf(new Error('plain')), undefined);
  });

  it('a row the target refuses (a constraint, a trigger) names deadLetter, the setting its hint offers', () => {
    for (const code of ['23505', '23514', 'P0001']) {
      const e = classifyPgError(Object.assign(new Error('refused'), { code, table: 'orders', schema: 'public' }));
      assert.match(e.hint ?? '', /"deadLetter": true/);
      assert.deepEqual(settingRefOf(e), { scope: 'mapping', key: 'deadLetter' }, code);
    }
    // Text with a NUL, which no Postgres text column holds: its hint offers dead letters too, also once it names the row.
    const nul = ((): unknown => {
      try {
        fieldEncoderFor({ kind: 'primitive', name: 'string' }, 'note')('a\u0000b');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.match((nul as Error | undefined)?.message ?? '', /NUL/);
    assert.deepEqual(settingRefOf(nul), { scope: 'mapping', key: 'deadLetter' });
    assert.deepEqual(settingRefOf((nul as ValueEncodeError).withKey('id=4')), { scope: 'mapping', key: 'deadLetter' });
    // A value that does not fit its column type: no setting to open.
    assert.equal(settingRefOf(classifyPgError(Object.assign(new Error('too long'), { code: '22001' }))), undefined);
  });

  it('a failed command on a mapping picked in the palette opens the setting in that mapping\'s file; without one, only deltaSync.* settings open', () => {
    const drift = new SyncError('schema-drift', 'Column "x" was added.', { setting: 'schemaDrift' });
    assert.equal(openableSetting(drift), undefined);
    assert.deepEqual(openableSetting(aboutMappingFile(drift, '/ws/.delta-sync/orders.json')), { setting: { scope: 'mapping', key: 'schemaDrift' }, file: '/ws/.delta-sync/orders.json' });
    // The tree row's file wins over none noted.
    assert.deepEqual(openableSetting(new SyncError('mapping', 'x', { setting: 'after' }), '/a.json'), { setting: { scope: 'mapping', key: 'after' }, file: '/a.json' });
    assert.deepEqual(openableSetting(new SyncError('usage', 'x', { setting: 'deltaSync.deltaFolders' })), { setting: { scope: 'vscode', key: 'deltaSync.deltaFolders' }, file: undefined });
    assert.equal(openableSetting(aboutMappingFile(new Error('plain'), '/a.json')), undefined);
  });
});
